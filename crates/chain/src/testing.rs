//! Test support: a throw-away anvil node on a free loopback port.

use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use alloy::primitives::U256;
use alloy::providers::{Provider, ProviderBuilder};

use crate::client::{parse_url, Chain};
use crate::error::ChainError;

/// Keys of anvil's default accounts (the `test test … junk` mnemonic), each funded with
/// 10,000 ETH at start.
pub const DEV_KEYS: [&str; 5] = [
    "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80",
    "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d",
    "0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a",
    "0x7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6",
    "0x47e179ec197488593b187f80a00eb0da91f1b9d0b13f8733639f19c30a34926a",
];

/// How long to wait for anvil to answer.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// A running anvil, killed (with its process group) on drop.
#[derive(Debug)]
pub struct Anvil {
    child: Child,
    port: u16,
}

/// The anvil binary: `LIVEFARM_ANVIL`, else `<repo>/.tools/chain/node_modules/.bin/anvil`
/// (from `scripts/install-chain-tools.sh`), if that exists.
pub fn anvil_path() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("LIVEFARM_ANVIL") {
        return Some(PathBuf::from(p));
    }
    let default = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../.tools/chain/node_modules/.bin/anvil");
    default.exists().then_some(default)
}

impl Anvil {
    /// Starts anvil and waits until it answers `eth_chainId`.
    pub async fn start() -> Result<Anvil, ChainError> {
        let bin = anvil_path().ok_or_else(|| {
            ChainError::Anvil(
                "anvil not found: run scripts/install-chain-tools.sh or set LIVEFARM_ANVIL".into(),
            )
        })?;
        let port = free_port()?;
        let mut cmd = Command::new(&bin);
        cmd.args(["--host", "127.0.0.1", "--port", &port.to_string()]);
        // LIVEFARM_ANVIL_LOG=<file> keeps anvil's request log for debugging a test.
        match std::env::var_os("LIVEFARM_ANVIL_LOG") {
            Some(path) => {
                let log = std::fs::File::create(&path)
                    .map_err(|e| ChainError::Anvil(format!("creating anvil log: {e}")))?;
                cmd.stdout(log);
            }
            None => {
                cmd.arg("--silent").stdout(Stdio::null());
            }
        }
        cmd.stdin(Stdio::null())
            .stderr(Stdio::inherit())
            // The npm package starts anvil through a node wrapper: a group of its own lets drop
            // kill the wrapper and the real node together.
            .process_group(0);
        let child = cmd
            .spawn()
            .map_err(|e| ChainError::Anvil(format!("spawning {}: {e}", bin.display())))?;
        let mut anvil = Anvil { child, port };
        anvil.wait_ready().await?;
        Ok(anvil)
    }

    async fn wait_ready(&mut self) -> Result<(), ChainError> {
        let provider = ProviderBuilder::new().connect_http(parse_url(&self.endpoint())?);
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(status) = self
                .child
                .try_wait()
                .map_err(|e| ChainError::Anvil(format!("waiting for anvil: {e}")))?
            {
                return Err(ChainError::Anvil(format!("exited early with {status}")));
            }
            if provider.get_chain_id().await.is_ok() {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(ChainError::Anvil(format!(
                    "no answer on port {} within {START_TIMEOUT:?}",
                    self.port
                )));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The loopback port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Mines `blocks` empty blocks (`anvil_mine`).
    pub async fn mine(&self, blocks: u64) -> Result<(), ChainError> {
        let provider = ProviderBuilder::new().connect_http(parse_url(&self.endpoint())?);
        // anvil answers null.
        let () = provider
            .raw_request("anvil_mine".into(), (U256::from(blocks),))
            .await?;
        Ok(())
    }

    /// Mines to the start of the next round and initialises it; returns the new round.
    pub async fn advance_round(&self, chain: &Chain) -> Result<u64, ChainError> {
        let start = chain.current_round_start_block().await?;
        let len = chain.round_length().await?;
        let now = chain.block_number().await?;
        // The next transaction lands in block now+1; it must be at least start+len.
        let needed = (start + len).saturating_sub(now + 1);
        if needed > 0 {
            self.mine(needed).await?;
        }
        chain.initialize_round().await?;
        chain.current_round().await
    }
}

impl Drop for Anvil {
    fn drop(&mut self) {
        if let Ok(pid) = i32::try_from(self.child.id()) {
            // SAFETY: kill(2) with a negative pid signals the process group we created for
            // this child; it touches no memory.
            unsafe {
                libc::kill(-pid, libc::SIGKILL);
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> Result<u16, ChainError> {
    let listener = TcpListener::bind("127.0.0.1:0")
        .map_err(|e| ChainError::Anvil(format!("finding a free port: {e}")))?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|e| ChainError::Anvil(format!("finding a free port: {e}")))
}
