//! The official Livepeer SDKs as the conformance suite of Livefarm's Studio-compatible API:
//! `livefarm up` started as a user starts it (the real binary, a fresh data directory, free
//! loopback ports), then `integration-tests/sdk/conformance.mjs` (npm `livepeer@3.5.0`) and
//! `integration-tests/sdk/conformance.py` (PyPI `livepeer==0.3.0`) drive every SDK method of
//! studio-api.md §12 items 1-9 and 14 against it over HTTP, with a real RTMP publish (ffmpeg)
//! and a webhook receiver of their own that checks every signature.
//!
//! The SDKs come from `scripts/install-sdk-tools.sh` (`<repo>/.tools/sdk`, or
//! `LIVEFARM_SDK_TOOLS`). Without them the test skips loudly, and fails when
//! `LIVEFARM_REQUIRE_SDK=1` (scripts/test.sh installs them and sets it).

use std::io::Read;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

use livefarm_testkit::{free_addr, http_request, service_bin, wait_until_blocking};

/// How long one suite may run: a 10 s publish, then the recording's bounded wait (180 s by
/// default inside the suites) and the webhook checks.
const SUITE_TIMEOUT: Duration = Duration::from_secs(600);

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("integration-tests lives in the repository")
        .to_path_buf()
}

/// The installed SDKs: `(tools dir, the venv's python)`, or why they are missing.
fn sdk_tools() -> Result<(PathBuf, PathBuf), String> {
    let tools = std::env::var_os("LIVEFARM_SDK_TOOLS")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join(".tools/sdk"));
    let js = tools.join("node_modules/livepeer/package.json");
    let zod = tools.join("node_modules/zod/package.json");
    let python = tools.join("venv/bin/python");
    for needed in [&js, &zod, &python] {
        if !needed.exists() {
            return Err(format!("{} is missing", needed.display()));
        }
    }
    for tool in ["node", "ffmpeg"] {
        let found = Command::new(tool)
            .arg(if tool == "node" {
                "--version"
            } else {
                "-version"
            })
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !found {
            return Err(format!("`{tool}` does not run"));
        }
    }
    Ok((tools, python))
}

/// `livefarm up`, stopped by PID when dropped (SIGKILL if a test failed before [`Up::stop`]).
struct Up {
    child: Option<Child>,
    log: PathBuf,
}

impl Up {
    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(60)..].join("\n")
    }

    /// Its exit status if it has exited.
    fn exited(&mut self) -> Option<ExitStatus> {
        self.child.as_mut()?.try_wait().ok().flatten()
    }

    /// SIGTERM, then the clean exit `livefarm up` promises.
    fn stop(mut self) {
        let mut child = self.child.take().expect("running");
        let pid = libc::pid_t::try_from(child.id()).expect("a pid fits pid_t");
        // SAFETY: kill(2) on the pid of our own child, not yet reaped.
        let rc = unsafe { libc::kill(pid, libc::SIGTERM) };
        assert_eq!(rc, 0, "SIGTERM to livefarm up failed");
        let status = wait_until_blocking(
            Duration::from_secs(40),
            "livefarm up to stop on SIGTERM",
            || child.try_wait().expect("wait"),
        );
        assert!(status.success(), "livefarm up exited {status:?}");
    }
}

impl Drop for Up {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

struct Addrs {
    playback: SocketAddr,
    rtmp: SocketAddr,
    admin: SocketAddr,
}

fn start_up(livefarm: &Path, data_dir: &Path, log: &Path) -> (Up, Addrs) {
    let addrs = Addrs {
        playback: free_addr(),
        rtmp: free_addr(),
        admin: free_addr(),
    };
    let child = Command::new(livefarm)
        .args(["--set", "media.x264_preset=ultrafast", "up", "--data-dir"])
        .arg(data_dir)
        .args(["--playback-listen", &addrs.playback.to_string()])
        .args(["--admin-listen", &addrs.admin.to_string()])
        .args(["--rtmp-listen", &addrs.rtmp.to_string()])
        .args(["--push-listen", &free_addr().to_string()])
        .args(["--srt-listen", &free_addr().to_string()])
        .arg("--no-orchestrator")
        .env("RUST_LOG", "info")
        .env_remove("LIVEFARM_PREBUILT_BINS")
        .env_remove("LIVEFARM_API_KEY")
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(log.with_extension("stdout")).expect("stdout file"))
        .stderr(std::fs::File::create(log).expect("log file"))
        .spawn()
        .unwrap_or_else(|e| panic!("start {}: {e}", livefarm.display()));
    let up = Up {
        child: Some(child),
        log: log.to_path_buf(),
    };
    (up, addrs)
}

/// A key of a second tenant: `livefarm api-key create --tenant` first (as an operator would);
/// if this build's CLI cannot make a tenant, straight through the store on the same database.
fn second_tenant_key(livefarm: &Path, data_dir: &Path) -> String {
    let cli = Command::new(livefarm)
        .args(["api-key", "create", "--name", "second"])
        .args(["--tenant", "sdk-conformance-other", "--data-dir"])
        .arg(data_dir)
        .env_remove("LIVEFARM_API_KEY")
        .output()
        .expect("run livefarm api-key create");
    if cli.status.success() {
        let printed: serde_json::Value = serde_json::from_slice(&cli.stdout).unwrap_or_else(|e| {
            panic!(
                "api-key create printed no JSON ({e}): {}",
                String::from_utf8_lossy(&cli.stdout)
            )
        });
        let key = printed["key"].as_str().expect("`key` in the printed JSON");
        eprintln!("second tenant's key: from `livefarm api-key create --tenant`");
        return key.to_owned();
    }
    eprintln!(
        "`livefarm api-key create --tenant` failed ({}): {}; making the second tenant through \
         livefarm_store on {}/livefarm.db",
        cli.status,
        String::from_utf8_lossy(&cli.stderr).trim(),
        data_dir.display()
    );
    let url = format!("sqlite://{}", data_dir.join("livefarm.db").display());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let store = livefarm_store::Store::connect(&url, &livefarm_store::StoreOptions::default())
            .await
            .expect("open the data directory's store");
        let tenant = store
            .create_tenant("sdk-conformance-other")
            .await
            .expect("create the second tenant");
        let key = store
            .create_api_key(&tenant.id, "second")
            .await
            .expect("create the second tenant's key");
        store.close().await;
        key.secret
    })
}

/// Runs one suite with the server's settings; its output (one line per check) is returned.
fn run_suite(program: &Path, script: &Path, env: &[(&str, String)]) -> (ExitStatus, String) {
    let mut cmd = Command::new(program);
    cmd.arg(script)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (name, value) in env {
        cmd.env(name, value);
    }
    let mut child = Killed(
        cmd.spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", program.display())),
    );
    // Both pipes are drained on threads so a chatty suite never blocks on a full pipe.
    let mut stdout = child.0.stdout.take().expect("stdout");
    let mut stderr = child.0.stderr.take().expect("stderr");
    let out = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stdout.read_to_string(&mut text);
        text
    });
    let err = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    let what = format!("{} to finish", script.display());
    // On a timeout this panics and `Killed` stops the suite (and with it its ffmpeg's input).
    let status = wait_until_blocking(SUITE_TIMEOUT, &what, || {
        child.0.try_wait().expect("wait for the suite")
    });
    let mut text = out.join().expect("stdout reader");
    let errors = err.join().expect("stderr reader");
    if !errors.trim().is_empty() {
        text.push_str("--- stderr ---\n");
        text.push_str(&errors);
    }
    (status, text)
}

/// A suite's process, killed by PID (SIGKILL) and reaped if the test gives up on it.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn official_sdks_pass_the_conformance_suite_against_livefarm_up() {
    let (tools, python) = match sdk_tools() {
        Ok(found) => found,
        Err(why) if std::env::var("LIVEFARM_REQUIRE_SDK").as_deref() == Ok("1") => {
            panic!("LIVEFARM_REQUIRE_SDK=1 but the SDKs are not installed: {why} (run scripts/install-sdk-tools.sh)")
        }
        Err(why) => {
            eprintln!(
                "SKIPPED official_sdks_pass_the_conformance_suite_against_livefarm_up: {why}; \
                 run scripts/install-sdk-tools.sh (LIVEFARM_REQUIRE_SDK=1 makes this a failure)"
            );
            return;
        }
    };
    let livefarm = service_bin("livefarm", "livefarm", "LIVEFARM_BIN");
    let dir = tempfile::tempdir().expect("tempdir");
    let data_dir = dir.path().join("data");
    let log = dir.path().join("livefarm-up.log");
    let (up, addrs) = start_up(&livefarm, &data_dir, &log);

    let mut up = up;
    wait_until_blocking(Duration::from_secs(60), "livefarm up to be ready", || {
        if let Some(status) = up.exited() {
            panic!("livefarm up exited {status}:\n{}", up.log_tail());
        }
        http_request(addrs.admin, "GET", "/readyz", &[], b"").is_ok_and(|reply| reply.status == 200)
    });
    let key_file = data_dir.join("api-key");
    let api_key = wait_until_blocking(
        Duration::from_secs(30),
        "livefarm up to write <data-dir>/api-key",
        || {
            let key = std::fs::read_to_string(&key_file).ok()?;
            let key = key.trim().to_owned();
            (!key.is_empty()).then_some(key)
        },
    );
    let other_key = second_tenant_key(&livefarm, &data_dir);
    assert_ne!(api_key, other_key, "the two tenants' keys");

    let env = [
        ("LIVEFARM_API_URL", format!("http://{}/api", addrs.playback)),
        ("LIVEFARM_API_KEY", api_key),
        ("LIVEFARM_OTHER_API_KEY", other_key),
        ("LIVEFARM_RTMP_URL", format!("rtmp://{}/live", addrs.rtmp)),
        (
            "LIVEFARM_WEBHOOK_URL",
            "http://127.0.0.1:0/hooks".to_owned(),
        ),
        ("LIVEFARM_SDK_TOOLS", tools.display().to_string()),
    ];
    let suites = repo_root().join("integration-tests/sdk");
    let mut failed = Vec::new();
    for (name, program, script) in [
        (
            "typescript (livepeer@3.5.0)",
            PathBuf::from("node"),
            suites.join("conformance.mjs"),
        ),
        (
            "python (livepeer==0.3.0)",
            python.clone(),
            suites.join("conformance.py"),
        ),
    ] {
        let (status, output) = run_suite(&program, &script, &env);
        println!("=== {name}: {status}\n{output}");
        if !status.success() {
            let failures: Vec<&str> = output.lines().filter(|l| l.starts_with("FAIL")).collect();
            failed.push(format!("{name} ({status}):\n{}", failures.join("\n")));
        }
    }
    if !failed.is_empty() {
        let tail = up.log_tail();
        panic!(
            "the SDK conformance suite failed:\n{}\n--- livefarm up (last lines) ---\n{tail}",
            failed.join("\n")
        );
    }
    up.stop();
}
