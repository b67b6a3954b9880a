//! Running a service binary as an operator would, for the tests that check its exit code.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// How long a service may take to give up on a bad configuration.
const LIMIT: Duration = Duration::from_secs(60);

/// Runs `bin` with one `--set` per entry of `overrides` and no `LIVEFARM_*` environment, and
/// returns its exit code (`None` when it had to be killed) and what it wrote to stderr.
pub fn run_service(bin: &str, overrides: &[&str]) -> (Option<i32>, String) {
    let mut command = Command::new(bin);
    for set in overrides {
        command.args(["--set", set]);
    }
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("LIVEFARM_") {
            command.env_remove(key);
        }
    }
    let mut child = command
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {bin}: {e}"));
    // read stderr while the service runs, so a chatty one never blocks on a full pipe
    let reader = child.stderr.take().map(|mut pipe| {
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = std::io::Read::read_to_string(&mut pipe, &mut text);
            text
        })
    });
    let started = Instant::now();
    let code = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status.code(),
            Ok(None) if started.elapsed() < LIMIT => std::thread::sleep(Duration::from_millis(50)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
        }
    };
    let stderr = reader
        .and_then(|thread| thread.join().ok())
        .unwrap_or_default();
    (code, stderr)
}

/// Asserts that `bin` with `overrides` exits 64 (a bad configuration) and names `mentions`
/// (the offending key or value) on stderr.
pub fn assert_bad_config(bin: &str, overrides: &[&str], mentions: &str) {
    let (code, stderr) = run_service(bin, overrides);
    assert_eq!(code, Some(64), "{overrides:?}: {stderr}");
    assert!(stderr.contains(mentions), "{overrides:?}: {stderr}");
}
