//! Helpers for tests, here and in other crates: a private S3-compatible server (`moto_server`
//! from `pip install 'moto[server]'`, see `scripts/install-test-tools.sh`) on a free loopback
//! port, stopped by PID when dropped. A test that needs it fails with an install hint when it
//! is missing; it never passes silently.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use crate::Storage;

/// Environment variable naming the `moto_server` executable (default: `moto_server` on PATH,
/// else `$LIVEFARM_TOOLS_DIR/venv/bin/moto_server`, `LIVEFARM_TOOLS_DIR` defaulting to
/// `~/.cache/livefarm-tools`).
pub const MOTO_SERVER_ENV: &str = "LIVEFARM_MOTO_SERVER";

const INSTALL_HINT: &str =
    "install it with scripts/install-test-tools.sh (python3 -m pip install 'moto[server]==5.2.1')";

/// How long the server may take to start listening (Python imports are slow on a busy CI box).
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// A running `moto_server`; killed by PID when dropped.
#[derive(Debug)]
pub struct S3Server {
    child: Child,
    port: u16,
    log: PathBuf,
}

static SHARED: Mutex<Weak<S3Server>> = Mutex::new(Weak::new());

impl S3Server {
    /// Starts a `moto_server` on a free loopback port and waits until it listens.
    pub fn start() -> Result<S3Server, String> {
        let program = moto_program();
        let mut last_error = String::new();
        // A port found free may be taken before the server binds it; try a few.
        for _ in 0..3 {
            let port = free_port().map_err(|e| format!("cannot find a free port: {e}"))?;
            let log = std::env::temp_dir()
                .join(format!("livefarm-moto-{}-{port}.log", std::process::id()));
            let log_file =
                std::fs::File::create(&log).map_err(|e| format!("cannot create {log:?}: {e}"))?;
            let child = Command::new(&program)
                .args(["-H", "127.0.0.1", "-p", &port.to_string()])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log_file)
                .spawn()
                .map_err(|e| {
                    let _ = std::fs::remove_file(&log);
                    format!("cannot run {program:?}: {e}; {INSTALL_HINT}")
                })?;
            let mut server = S3Server { child, port, log };
            match server.wait_ready() {
                Ok(()) => return Ok(server),
                Err(error) => last_error = error,
            }
        }
        Err(last_error)
    }

    /// A server shared by every caller while at least one holds it; the last holder to drop
    /// it stops it. Tests isolate themselves with their own bucket.
    ///
    /// # Panics
    /// If the server is missing or does not start.
    pub fn shared() -> Arc<S3Server> {
        let mut slot = SHARED
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(server) = slot.upgrade() {
            return server;
        }
        let server = Arc::new(
            S3Server::start()
                .unwrap_or_else(|error| panic!("this test needs an S3 server: {error}")),
        );
        *slot = Arc::downgrade(&server);
        server
    }

    /// `http://127.0.0.1:PORT`
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The storage URL of `bucket` on this server (with dummy credentials, which moto accepts).
    pub fn url(&self, bucket: &str) -> String {
        format!(
            "s3://{bucket}?endpoint={}&region=us-east-1&allow_http=true\
             &access_key_id=testing&secret_access_key=testing",
            self.endpoint()
        )
    }

    /// Creates `bucket` with a plain `PUT /bucket` (object_store cannot create buckets).
    pub fn create_bucket(&self, bucket: &str) -> Result<(), String> {
        let mut stream = TcpStream::connect((Ipv4Addr::LOCALHOST, self.port))
            .map_err(|e| format!("cannot connect to moto_server: {e}"))?;
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .map_err(|e| e.to_string())?;
        write!(
            stream,
            "PUT /{bucket} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            self.port
        )
        .map_err(|e| format!("cannot send create-bucket request: {e}"))?;
        let mut reply = String::new();
        stream
            .read_to_string(&mut reply)
            .map_err(|e| format!("cannot read create-bucket reply: {e}"))?;
        let status = reply.lines().next().unwrap_or_default();
        if status.split(' ').nth(1) == Some("200") {
            Ok(())
        } else {
            Err(format!("create bucket {bucket:?} failed: {status:?}"))
        }
    }

    /// Creates `bucket` and opens a [`Storage`] on it.
    ///
    /// # Panics
    /// If the bucket cannot be created or the URL does not open.
    pub async fn storage(&self, bucket: &str) -> Storage {
        self.create_bucket(bucket)
            .unwrap_or_else(|error| panic!("{error}"));
        Storage::from_url(&self.url(bucket))
            .await
            .unwrap_or_else(|error| panic!("cannot open s3 storage: {error}"))
    }

    fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + START_TIMEOUT;
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, self.port));
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!(
                    "moto_server exited with {status} before listening: {}",
                    self.log_tail()
                ));
            }
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "moto_server did not listen on {addr} within {START_TIMEOUT:?}: {}",
                    self.log_tail()
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let start = text.len().saturating_sub(2_000);
        text.get(start..).unwrap_or_default().trim().to_owned()
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        // Child::kill signals exactly this PID; wait reaps it so no zombie is left.
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
    }
}

/// `$LIVEFARM_MOTO_SERVER`, else `moto_server` on PATH, else the virtual environment that
/// `scripts/install-test-tools.sh` falls back to.
fn moto_program() -> PathBuf {
    if let Some(program) = std::env::var_os(MOTO_SERVER_ENV) {
        return program.into();
    }
    let on_path = std::env::var_os("PATH").is_some_and(|path| {
        std::env::split_paths(&path).any(|dir| dir.join("moto_server").is_file())
    });
    if !on_path {
        let tools = std::env::var_os("LIVEFARM_TOOLS_DIR")
            .map(PathBuf::from)
            .or_else(|| {
                std::env::var_os("HOME")
                    .map(|home| PathBuf::from(home).join(".cache/livefarm-tools"))
            });
        if let Some(venv_program) = tools.map(|dir| dir.join("venv/bin/moto_server")) {
            if venv_program.is_file() {
                return venv_program;
            }
        }
    }
    PathBuf::from("moto_server")
}

fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
        .local_addr()?
        .port())
}
