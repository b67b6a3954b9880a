//! Runs a private `redis-server` on a loopback port, for tests and `livefarm bench bus`.
//!
//! The process is started directly (no shell, no daemonizing) and killed by PID when the
//! [`RedisServer`] is dropped.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::BusError;

/// Environment variable naming the `redis-server` binary to use instead of the one on `PATH`.
pub const REDIS_SERVER_ENV: &str = "LIVEFARM_REDIS_SERVER";

const STARTUP_TIMEOUT: Duration = Duration::from_secs(15);

/// How to run the server.
#[derive(Debug, Clone, Default)]
pub struct RedisServerConfig {
    /// Port to listen on; a free loopback port when `None`.
    pub port: Option<u16>,
    /// `Some(dir)`: persist with an append-only file in `dir` (`appendonly yes`,
    /// `appendfsync always`), so data survives a kill and restart. `None`: no persistence.
    pub aof_dir: Option<PathBuf>,
    /// `Some`: also listen for TLS on a second free port (see [`RedisServer::tls_url`]).
    pub tls: Option<RedisServerTls>,
}

/// PEM files for a server that speaks TLS; clients are not asked for certificates.
#[derive(Debug, Clone)]
pub struct RedisServerTls {
    /// The server's certificate (chain).
    pub cert_file: PathBuf,
    /// Its private key.
    pub key_file: PathBuf,
    /// The CA that signed it, which clients are told to trust.
    pub ca_file: PathBuf,
}

/// A `redis-server` child process on 127.0.0.1, killed when dropped.
#[derive(Debug)]
pub struct RedisServer {
    binary: PathBuf,
    port: u16,
    tls_port: Option<u16>,
    config: RedisServerConfig,
    child: Option<Child>,
}

/// Finds an executable on `PATH`.
pub fn find_binary(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// The `redis-server` binary from [`REDIS_SERVER_ENV`] or `PATH`.
pub fn redis_server_binary() -> Result<PathBuf, BusError> {
    if let Some(path) = std::env::var_os(REDIS_SERVER_ENV) {
        let path = PathBuf::from(path);
        return if is_executable(&path) {
            Ok(path)
        } else {
            Err(BusError::Process(format!(
                "{REDIS_SERVER_ENV}={} is not an executable file",
                path.display()
            )))
        };
    }
    find_binary("redis-server").ok_or_else(|| {
        BusError::Process(format!(
            "redis-server not found on PATH: install it (apt-get install redis-server) or set {REDIS_SERVER_ENV}"
        ))
    })
}

/// A loopback port nobody listens on right now.
pub fn free_port() -> Result<u16, BusError> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .map_err(|e| BusError::Process(format!("cannot find a free port: {e}")))?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|e| BusError::Process(format!("cannot find a free port: {e}")))
}

impl RedisServer {
    /// Starts a server without persistence on a free port.
    pub fn start() -> Result<Self, BusError> {
        Self::start_with(RedisServerConfig::default())
    }

    /// Starts a server as `config` says, waiting until it answers PING.
    pub fn start_with(config: RedisServerConfig) -> Result<Self, BusError> {
        let binary = redis_server_binary()?;
        // A free port can be taken between probing and binding; try a few.
        let attempts = if config.port.is_some() { 1 } else { 5 };
        let mut last_error = None;
        for _ in 0..attempts {
            let port = match config.port {
                Some(port) => port,
                None => free_port()?,
            };
            let tls_port = match config.tls {
                Some(_) => Some(free_port()?),
                None => None,
            };
            let mut server = Self {
                binary: binary.clone(),
                port,
                tls_port,
                config: config.clone(),
                child: None,
            };
            match server.spawn() {
                Ok(()) => return Ok(server),
                Err(error) => last_error = Some(error),
            }
        }
        Err(last_error
            .unwrap_or_else(|| BusError::Process("redis-server did not start".to_owned())))
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `redis://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// `rediss://127.0.0.1:<tls port>?ca_file=<ca>` when started with TLS.
    pub fn tls_url(&self) -> Option<String> {
        let tls = self.config.tls.as_ref()?;
        Some(format!(
            "rediss://127.0.0.1:{}?{}={}",
            self.tls_port?,
            crate::redis_connect::CA_FILE_PARAM,
            tls.ca_file.display()
        ))
    }

    /// PID of the running process, if it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Kills the process with SIGKILL (no shutdown save) and waits for it.
    pub fn kill(&mut self) -> Result<(), BusError> {
        if let Some(mut child) = self.child.take() {
            // It may have exited already; waiting reaps it either way.
            let _ = child.kill();
            child
                .wait()
                .map_err(|e| BusError::Process(format!("cannot wait for redis-server: {e}")))?;
        }
        Ok(())
    }

    /// Kills the process if it runs and starts it again on the same port with the same
    /// configuration (an AOF in `aof_dir` is loaded again).
    pub fn restart(&mut self) -> Result<(), BusError> {
        self.kill()?;
        self.spawn()
    }

    fn spawn(&mut self) -> Result<(), BusError> {
        let mut cmd = Command::new(&self.binary);
        cmd.arg("--port")
            .arg(self.port.to_string())
            .args(["--bind", "127.0.0.1", "--daemonize", "no", "--save", ""])
            .args(["--loglevel", "warning", "--logfile", ""]);
        if let (Some(tls), Some(port)) = (&self.config.tls, self.tls_port) {
            cmd.arg("--tls-port")
                .arg(port.to_string())
                .arg("--tls-cert-file")
                .arg(&tls.cert_file)
                .arg("--tls-key-file")
                .arg(&tls.key_file)
                .arg("--tls-ca-cert-file")
                .arg(&tls.ca_file)
                .args(["--tls-auth-clients", "no"]);
        }
        match &self.config.aof_dir {
            Some(dir) => {
                cmd.args(["--appendonly", "yes", "--appendfsync", "always", "--dir"])
                    .arg(dir);
            }
            None => {
                cmd.args(["--appendonly", "no"]);
            }
        }
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        let child = cmd.spawn().map_err(|e| {
            BusError::Process(format!("cannot start {}: {e}", self.binary.display()))
        })?;
        self.child = Some(child);
        if let Err(error) = self.wait_ready() {
            let _ = self.kill();
            return Err(error);
        }
        Ok(())
    }

    fn wait_ready(&mut self) -> Result<(), BusError> {
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    return Err(BusError::Process(format!(
                        "redis-server exited with {status} while starting on port {} (port in use?)",
                        self.port
                    )));
                }
            }
            // A server still loading its AOF answers -LOADING; keep waiting for +PONG.
            if ping(self.port) {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(BusError::Process(format!(
                    "redis-server on port {} did not answer within {STARTUP_TIMEOUT:?}",
                    self.port
                )));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Whether a server on `port` answers PING with PONG.
fn ping(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect((Ipv4Addr::LOCALHOST, port)) else {
        return false;
    };
    let timeout = Some(Duration::from_secs(1));
    if stream.set_read_timeout(timeout).is_err() || stream.write_all(b"PING\r\n").is_err() {
        return false;
    }
    let mut reply = [0u8; 64];
    match stream.read(&mut reply) {
        Ok(n) => reply[..n].starts_with(b"+PONG"),
        Err(_) => false,
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        if let Err(error) = self.kill() {
            tracing::warn!(%error, port = self.port, "cannot stop redis-server");
        }
    }
}
