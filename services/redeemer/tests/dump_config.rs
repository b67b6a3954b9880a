//! `livefarm-redeemer --dump-config` lists every key even before the configuration is valid
//! (the defaults lack a Controller address), and still says what is missing.

use std::process::Command;

#[test]
fn dump_config_prints_every_key_and_names_what_is_missing() {
    let out = Command::new(env!("CARGO_BIN_EXE_livefarm-redeemer"))
        .arg("--dump-config")
        .env_remove("LIVEFARM_CONTROLLER")
        .output()
        .expect("run livefarm-redeemer");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    for key in [
        "controller",
        "leader_election",
        "lease_name",
        "lock_ttl_ms",
        "rpc_url",
    ] {
        assert!(
            stdout.lines().any(|l| l.starts_with(&format!("{key} ="))),
            "{key} missing from:\n{stdout}"
        );
    }
    assert_eq!(out.status.code(), Some(64), "{stderr}");
    assert!(stderr.contains("controller"), "{stderr}");

    let out = Command::new(env!("CARGO_BIN_EXE_livefarm-redeemer"))
        .args(["--dump-config", "--set"])
        .arg(format!("controller=0x{}", "11".repeat(20)))
        .output()
        .expect("run livefarm-redeemer");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
