//! `livefarm migrate` as an operator runs it: on the data directory's SQLite file by default,
//! once applying the schema and then finding nothing to do; a bad URL fails with a clear
//! message that does not print the password. (The same migrations on PostgreSQL are covered
//! by crates/store's conformance suite.)

use std::process::{Command, Output};

use serde_json::Value;

fn migrate(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_livefarm"))
        .arg("migrate")
        .args(args)
        .env_remove("LIVEFARM_DATABASE_URL")
        .output()
        .expect("run livefarm migrate")
}

fn report(out: &Output) -> Value {
    assert!(
        out.status.success(),
        "livefarm migrate failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("one JSON object")
}

#[test]
fn migrates_the_data_directory_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let data_arg = data.to_str().expect("utf-8 path");

    // every migration this build embeds, in order, once
    let all: Vec<i64> = livefarm_store::MIGRATIONS
        .iter()
        .map(|m| m.version)
        .collect();
    let latest = *all.last().expect("at least one migration");
    let first = report(&migrate(&["--data-dir", data_arg]));
    assert_eq!(first["applied"], serde_json::json!(all));
    assert_eq!(first["version"], latest);
    assert!(data.join("livefarm.db").exists());

    let again = report(&migrate(&["--data-dir", data_arg]));
    assert_eq!(again["applied"], serde_json::json!([]));
    assert_eq!(again["version"], latest);

    let url = format!("sqlite://{}", data.join("livefarm.db").display());
    let by_url = report(&migrate(&["--database-url", &url]));
    assert_eq!(by_url["version"], latest);
}

#[test]
fn a_bad_url_fails_without_printing_the_password() {
    let out = migrate(&["--database-url", "mysql://admin:hunter2@db/livefarm"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("sqlite://"), "{stderr}");
    assert!(!stderr.contains("hunter2"), "{stderr}");
}
