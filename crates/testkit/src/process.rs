//! Service binaries of this workspace run as child processes, killed when the test drops them.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use crate::wait_until_blocking;

/// A service binary of this workspace: taken from the environment variable `env_override`
/// when set; with `LIVEFARM_PREBUILT_BINS` set (scripts/test.sh, after `cargo test
/// --workspace` built every service binary with the workspace's unified features), the one
/// next to the running test; otherwise built by cargo there first (same target directory and
/// profile; cargo has released its build lock while tests run).
pub fn service_bin(package: &str, bin: &str, env_override: &str) -> PathBuf {
    if let Some(path) = std::env::var_os(env_override) {
        return PathBuf::from(path);
    }
    let exe = std::env::current_exe().expect("test executable path");
    // target/<profile>/deps/<test> -> target/<profile>
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("test executable lives in target/<profile>/deps")
        .to_path_buf();
    let prebuilt = profile_dir.join(bin);
    if std::env::var_os("LIVEFARM_PREBUILT_BINS").is_some() {
        assert!(
            prebuilt.exists(),
            "{} missing: LIVEFARM_PREBUILT_BINS expects `cargo test --workspace` to build it",
            prebuilt.display()
        );
        return prebuilt;
    }
    let target_dir = profile_dir.parent().expect("target dir").to_path_buf();
    let profile = profile_dir
        .file_name()
        .and_then(|n| n.to_str())
        .expect("profile dir name")
        .to_owned();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let mut cmd = Command::new(cargo);
    cmd.args(["build", "--quiet", "-p", package, "--bin", bin])
        .env("CARGO_TARGET_DIR", &target_dir)
        .current_dir(env!("CARGO_MANIFEST_DIR"));
    match profile.as_str() {
        "debug" => {}
        "release" => {
            cmd.arg("--release");
        }
        other => {
            cmd.args(["--profile", other]);
        }
    }
    let status = cmd
        .status()
        .unwrap_or_else(|e| panic!("cannot run cargo to build {bin}: {e}"));
    assert!(status.success(), "building {bin} failed: {status}");
    let path = profile_dir.join(bin);
    assert!(path.exists(), "{} missing after build", path.display());
    path
}

/// A service process configured with `--set key=value` flags, its stderr in a log file; killed
/// (SIGKILL) and reaped when dropped.
#[derive(Debug)]
pub struct ServiceProcess {
    pub name: String,
    pub log: PathBuf,
    // behind a lock so that a shared reference can ask whether it exited (`try_wait`)
    child: Mutex<Child>,
    pid: u32,
}

impl ServiceProcess {
    /// Starts `bin` with one `--set` per entry of `sets`, logging to `<log_dir>/<name>.log` at
    /// `rust_log`.
    pub fn spawn(name: &str, bin: &Path, sets: &[String], log_dir: &Path, rust_log: &str) -> Self {
        let log = log_dir.join(format!("{name}.log"));
        let mut cmd = Command::new(bin);
        for set in sets {
            cmd.arg("--set").arg(set);
        }
        let child = cmd
            // test-harness switches are not the service's configuration
            .env_remove("LIVEFARM_PREBUILT_BINS")
            .env_remove("LIVEFARM_REQUIRE_ANVIL")
            .env_remove("LIVEFARM_REQUIRE_BROWSER")
            .env("RUST_LOG", rust_log)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("service log file"))
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {name} ({}): {e}", bin.display()));
        Self {
            name: name.to_owned(),
            log,
            pid: child.id(),
            child: Mutex::new(child),
        }
    }

    fn child(&self) -> MutexGuard<'_, Child> {
        // a panic while holding it leaves a usable child
        self.child
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Its exit status if it has exited (it is reaped then).
    pub fn exited(&self) -> Option<ExitStatus> {
        self.child().try_wait().ok().flatten()
    }

    /// Sends `signal` (`libc::SIGTERM`, ...) to the process.
    ///
    /// # Panics
    /// If the process is gone (reaped) or the signal cannot be sent.
    pub fn signal(&self, signal: libc::c_int) {
        let pid = libc::pid_t::try_from(self.pid).expect("a pid fits pid_t");
        let child = self.child();
        // SAFETY: kill(2) on the pid of a child we spawned; holding the lock, nobody reaps it
        // (and frees the pid for reuse) while we signal it.
        let rc = unsafe { libc::kill(pid, signal) };
        drop(child);
        assert_eq!(rc, 0, "kill({}, {signal}) failed", self.name);
    }

    /// Stops the process (SIGSTOP) and waits until every thread of it has stopped: from then
    /// on it does nothing (writes nothing, answers nothing) until [`Self::resume`] or a kill.
    pub fn freeze(&self) {
        self.signal(libc::SIGSTOP);
        let what = format!("every thread of {} to stop", self.name);
        wait_until_blocking(Duration::from_secs(10), &what, || self.running_thread());
    }

    /// Continues a [`Self::freeze`]d process.
    pub fn resume(&self) {
        self.signal(libc::SIGCONT);
    }

    /// `Ok` when every thread is stopped, `Err(a running thread and its state)` otherwise.
    fn running_thread(&self) -> Result<(), String> {
        let tasks = std::fs::read_dir(format!("/proc/{}/task", self.pid))
            .map_err(|e| format!("cannot list threads: {e}"))?;
        for task in tasks.flatten() {
            let stat = std::fs::read_to_string(task.path().join("stat")).unwrap_or_default();
            // "tid (comm) state ...": comm may hold spaces and parentheses
            let state = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.trim_start().chars().next());
            if state != Some('T') {
                let tid = task.file_name();
                return Err(format!("thread {tid:?} in state {state:?}"));
            }
        }
        Ok(())
    }

    /// Everything it logged so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Its last `lines` log lines under a `--- name ---` header, for failure messages.
    pub fn log_tail(&self, lines: usize) -> String {
        let text = self.log_text();
        let tail: Vec<&str> = text.lines().rev().take(lines).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        format!("--- {} ---\n{}", self.name, tail.join("\n"))
    }
}

impl Drop for ServiceProcess {
    fn drop(&mut self) {
        let mut child = self.child();
        // It may have exited already; waiting reaps it either way.
        let _ = child.kill();
        let _ = child.wait();
    }
}
