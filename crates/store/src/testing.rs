//! A private PostgreSQL server for tests: `initdb` into a temporary directory, then `postgres`
//! on a free loopback port with its socket in that directory, stopped (by the PID in
//! `postmaster.pid`) and removed on drop. As root the server runs as the `postgres` user
//! (PostgreSQL refuses to run as root). Binaries come from `LIVEFARM_PG_BIN` or the newest
//! `/usr/lib/postgresql/*/bin` (Debian's `postgresql` package).

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use sqlx::AnyPool;

use crate::{Store, StoreOptions};

/// The store's connection pool, for tests that look at rows directly.
pub fn pool(store: &Store) -> &AnyPool {
    store.pool()
}

/// A running PostgreSQL server.
#[derive(Debug)]
pub struct PgServer {
    port: u16,
    dir: tempfile::TempDir,
    child: Child,
}

/// Where the PostgreSQL server binaries are, if installed.
pub fn pg_bin_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("LIVEFARM_PG_BIN") {
        return Some(PathBuf::from(dir));
    }
    let mut dirs: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let version = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            bin.join("postgres").exists().then_some((version, bin))
        })
        .collect();
    dirs.sort();
    dirs.pop().map(|(_, bin)| bin)
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|out| String::from_utf8_lossy(&out.stdout).trim() == "0")
        .unwrap_or(false)
}

/// `program args...`, as the `postgres` user when we are root.
fn as_server_user(program: &Path, root: bool) -> Command {
    if root {
        let mut cmd = Command::new("runuser");
        cmd.args(["-u", "postgres", "--"]).arg(program);
        cmd
    } else {
        Command::new(program)
    }
}

impl PgServer {
    /// [`PgServer::start`] for a test: `None` (the test skips, saying so on stderr) when
    /// PostgreSQL is not installed, unless `LIVEFARM_REQUIRE_POSTGRES` is set (`make test` sets
    /// it), which makes a missing server a failure.
    pub fn start_or_skip() -> Option<PgServer> {
        let server = PgServer::start();
        if server.is_none() {
            assert!(
                std::env::var_os("LIVEFARM_REQUIRE_POSTGRES").is_none(),
                "PostgreSQL is required (LIVEFARM_REQUIRE_POSTGRES) but not installed"
            );
            eprintln!("SKIPPED: PostgreSQL is not installed (apt-get install postgresql)");
        }
        server
    }

    /// Starts a server, or `None` when PostgreSQL is not installed. Panics if it is installed
    /// but does not start (a test machine problem worth a loud failure).
    pub fn start() -> Option<PgServer> {
        let bin = pg_bin_dir()?;
        let root = is_root();
        let dir = tempfile::Builder::new()
            .prefix("livefarm-pg-")
            .tempdir()
            .expect("temporary directory for PostgreSQL");
        let data = dir.path().join("data");
        if root {
            let status = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(dir.path())
                .status()
                .expect("run chown");
            assert!(status.success(), "chown of the PostgreSQL directory failed");
        }
        let out = as_server_user(&bin.join("initdb"), root)
            .arg("-D")
            .arg(&data)
            .args(["-U", "livefarm", "--auth=trust", "-E", "UTF8", "--no-sync"])
            .stdin(Stdio::null())
            .output()
            .expect("run initdb");
        assert!(
            out.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let child = as_server_user(&bin.join("postgres"), root)
            .arg("-D")
            .arg(&data)
            .args(["-p", &port.to_string(), "-h", "127.0.0.1", "-k"])
            .arg(dir.path())
            // durability is not what these tests are about: no fsync, fewer connections
            .args([
                "-F",
                "-c",
                "max_connections=200",
                "-c",
                "shared_buffers=32MB",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start postgres");
        let server = PgServer { port, dir, child };
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "postgres did not listen within 30 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Some(server)
    }

    /// The URL of database `db` on this server.
    pub fn url(&self, db: &str) -> String {
        format!("postgres://livefarm@127.0.0.1:{}/{db}", self.port)
    }

    /// Creates an empty database and returns its URL (one per test keeps tests apart).
    pub async fn fresh_database(&self, name: &str) -> String {
        let admin = Store::connect(&self.url("postgres"), &StoreOptions::default())
            .await
            .expect("connect to the postgres database");
        // names come from tests, never from users: checked anyway, as they are not bound
        assert!(
            name.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'),
            "database name {name:?}"
        );
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(admin.pool())
            .await
            .expect("create database");
        admin.close().await;
        self.url(name)
    }

    fn postmaster_pid(&self) -> Option<String> {
        let text = std::fs::read_to_string(self.dir.path().join("data/postmaster.pid")).ok()?;
        text.lines().next().map(str::to_owned)
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        // SIGQUIT: immediate shutdown; the data is thrown away anyway
        if let Some(pid) = self.postmaster_pid() {
            let _ = Command::new("kill").args(["-QUIT", &pid]).status();
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
