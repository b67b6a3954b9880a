//! SIGTERM/SIGINT handling, checked on a child process: this test binary re-runs itself with
//! an environment variable that turns `signal_child` into the process under test.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use livefarm_runtime::{drain_with_deadline, install_signal_handlers, DrainOutcome, Shutdown};

const CHILD_ENV: &str = "LIVEFARM_RUNTIME_SIGNAL_CHILD";

/// The child's body; a no-op in a normal test run.
#[test]
fn signal_child() {
    let Some(mode) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let drain = if mode == "quick" {
        Duration::from_millis(50)
    } else {
        Duration::from_secs(60)
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async move {
        let shutdown = Shutdown::new();
        install_signal_handlers(shutdown.clone()).expect("signal handlers");
        println!("CHILD_READY");
        shutdown.triggered().await;
        println!("CHILD_DRAINING");
        let outcome =
            drain_with_deadline(tokio::time::sleep(drain), Duration::from_secs(120)).await;
        assert_eq!(outcome, DrainOutcome::Drained(()));
        println!("CHILD_DRAINED");
    });
}

/// Kills the child if the test fails half-way.
struct ChildGuard(Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn_child(mode: &str) -> (ChildGuard, mpsc::Receiver<String>) {
    let exe = std::env::current_exe().expect("test binary path");
    let mut child = Command::new(exe)
        .args(["--exact", "signal_child", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, mode)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn child");
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    (ChildGuard(child), rx)
}

fn wait_for(rx: &mpsc::Receiver<String>, marker: &str) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) if line.contains(marker) => return seen,
            Ok(line) => seen.push(line),
            Err(_) => panic!("child never printed {marker}; output: {seen:?}"),
        }
    }
}

fn send(child: &ChildGuard, signal: libc::c_int) {
    let pid = libc::pid_t::try_from(child.0.id()).expect("pid fits pid_t");
    // SAFETY: kill(2) with our own child's pid and a valid signal number
    let rc = unsafe { libc::kill(pid, signal) };
    assert_eq!(rc, 0, "kill failed");
}

fn wait_exit(child: &mut ChildGuard) -> std::process::ExitStatus {
    livefarm_testkit::wait_until_blocking(Duration::from_secs(30), "the child to exit", || {
        child.0.try_wait().expect("try_wait")
    })
}

#[test]
fn second_sigterm_exits_with_130() {
    let (mut child, rx) = spawn_child("slow");
    wait_for(&rx, "CHILD_READY");
    send(&child, libc::SIGTERM);
    wait_for(&rx, "CHILD_DRAINING");
    send(&child, libc::SIGTERM);
    let status = wait_exit(&mut child);
    assert_eq!(status.code(), Some(130), "{status:?}");
    let rest: Vec<String> = rx.try_iter().collect();
    assert!(
        !rest.iter().any(|l| l.contains("CHILD_DRAINED")),
        "drain finished despite second signal: {rest:?}"
    );
}

#[test]
fn single_sigint_drains_and_exits_cleanly() {
    let (mut child, rx) = spawn_child("quick");
    wait_for(&rx, "CHILD_READY");
    send(&child, libc::SIGINT);
    wait_for(&rx, "CHILD_DRAINING");
    wait_for(&rx, "CHILD_DRAINED");
    let status = wait_exit(&mut child);
    assert!(status.success(), "{status:?}");
}
