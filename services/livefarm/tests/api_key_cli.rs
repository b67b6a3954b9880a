//! `livefarm api-key` as an operator runs it, on the data directory's SQLite file: a new key
//! is printed once as JSON and authenticates through the store; list and revoke work on the
//! same tenant; mistakes exit 64. `livefarm stream create` without a key says where it looked.

use std::path::Path;
use std::process::{Command, Output};

use livefarm_store::{Store, StoreOptions};
use serde_json::Value;

fn livefarm(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_livefarm"))
        .args(args)
        .env_remove("LIVEFARM_DATABASE_URL")
        .env_remove("LIVEFARM_API_KEY")
        .output()
        .expect("run livefarm")
}

fn json(out: &Output) -> Value {
    assert!(
        out.status.success(),
        "livefarm failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("one JSON document")
}

fn store(data: &Path) -> (tokio::runtime::Runtime, Store) {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let url = format!("sqlite://{}", data.join("livefarm.db").display());
    let store = runtime
        .block_on(Store::open(&url, &StoreOptions::default()))
        .expect("open the database");
    (runtime, store)
}

#[test]
fn api_keys_are_made_listed_and_revoked_in_the_data_directory() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let data_arg = data.to_str().expect("utf-8 path");

    let first = json(&livefarm(&[
        "api-key",
        "create",
        "--name",
        "ci",
        "--data-dir",
        data_arg,
    ]));
    for field in ["key", "id", "name", "tenantId", "prefix", "createdAt"] {
        assert!(!first[field].is_null(), "{field} in {first}");
    }
    assert_eq!(first["name"], "ci");
    let key = first["key"].as_str().expect("key");
    assert!(key.starts_with(first["prefix"].as_str().expect("prefix")));

    let (runtime, store) = store(&data);
    let caller = runtime
        .block_on(store.authenticate(key))
        .expect("authenticate")
        .expect("the printed key authenticates");
    assert_eq!(
        caller.tenant_id,
        first["tenantId"].as_str().expect("tenant")
    );
    assert_eq!(caller.key_name, "ci");

    // without --tenant the same (first) tenant; with it, that tenant
    let second = json(&livefarm(&[
        "api-key",
        "create",
        "--name",
        "deploy",
        "--data-dir",
        data_arg,
    ]));
    assert_eq!(second["tenantId"], first["tenantId"]);
    let tenant = first["tenantId"].as_str().expect("tenant");
    let url = format!("sqlite://{}", data.join("livefarm.db").display());
    let by_url = json(&livefarm(&[
        "api-key",
        "create",
        "--name",
        "by-url",
        "--tenant",
        tenant,
        "--database-url",
        &url,
    ]));
    assert_eq!(by_url["tenantId"], first["tenantId"]);

    let listed = json(&livefarm(&["api-key", "list", "--data-dir", data_arg]));
    let names: Vec<&str> = listed
        .as_array()
        .expect("an array")
        .iter()
        .map(|k| k["name"].as_str().expect("name"))
        .collect();
    assert_eq!(names, ["ci", "deploy", "by-url"]);
    assert!(
        listed
            .as_array()
            .expect("array")
            .iter()
            .all(|k| k.get("key").is_none()),
        "a list never shows secrets: {listed}"
    );

    let id = first["id"].as_str().expect("id");
    let revoked = json(&livefarm(&[
        "api-key",
        "revoke",
        id,
        "--data-dir",
        data_arg,
    ]));
    assert_eq!(revoked["revoked"], true);
    let after = runtime
        .block_on(store.authenticate(key))
        .expect("authenticate");
    assert!(after.is_none(), "a revoked key no longer authenticates");
    let again = livefarm(&["api-key", "revoke", id, "--data-dir", data_arg]);
    assert_eq!(again.status.code(), Some(1));
    runtime.block_on(store.close());
}

#[test]
fn an_operator_adds_a_customer_as_a_tenant_with_its_own_first_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let data_arg = data.to_str().expect("utf-8 path");
    // the operator's own (default) tenant exists first, as after `livefarm up`
    let own = json(&livefarm(&[
        "api-key",
        "create",
        "--name",
        "ops",
        "--data-dir",
        data_arg,
    ]));

    let acme = json(&livefarm(&[
        "tenant",
        "create",
        "--name",
        "Acme Video",
        "--data-dir",
        data_arg,
    ]));
    assert_eq!(acme["name"], "Acme Video");
    let acme_id = acme["id"].as_str().expect("id");
    assert_ne!(Some(acme_id), own["tenantId"].as_str());
    assert!(acme["createdAt"].is_i64(), "{acme}");
    let key = acme["apiKey"]["key"]
        .as_str()
        .expect("the first key, shown once");
    assert_eq!(acme["apiKey"]["tenantId"], acme["id"]);
    assert_eq!(acme["apiKey"]["name"], "default");

    let (runtime, store) = store(&data);
    let caller = runtime
        .block_on(store.authenticate(key))
        .expect("authenticate")
        .expect("the printed key authenticates");
    assert_eq!(caller.tenant_id, acme_id);

    let tenants = json(&livefarm(&["tenant", "list", "--data-dir", data_arg]));
    let names: Vec<&str> = tenants
        .as_array()
        .expect("an array")
        .iter()
        .map(|t| t["name"].as_str().expect("name"))
        .collect();
    assert_eq!(names, ["default", "Acme Video"]);
    let keys = json(&livefarm(&[
        "api-key",
        "list",
        "--tenant",
        acme_id,
        "--data-dir",
        data_arg,
    ]));
    assert_eq!(keys.as_array().map(Vec::len), Some(1), "{keys}");
    assert!(keys[0].get("key").is_none(), "a list never shows secrets");

    let blank = livefarm(&["tenant", "create", "--name", " ", "--data-dir", data_arg]);
    assert_eq!(blank.status.code(), Some(64));
    runtime.block_on(store.close());
}

#[test]
fn mistakes_exit_64() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let data_arg = data.to_str().expect("utf-8 path");
    for (args, says) in [
        (vec!["api-key", "create", "--data-dir", data_arg], "--name"),
        (
            vec!["api-key", "create", "--name", " ", "--data-dir", data_arg],
            "--name",
        ),
        (
            vec![
                "api-key",
                "create",
                "--name",
                "x",
                "--tenant",
                "nope",
                "--data-dir",
                data_arg,
            ],
            "no tenant",
        ),
        (
            vec![
                "api-key",
                "create",
                "--name",
                "x",
                "--database-url",
                "mysql://u:hunter2@db/x",
            ],
            "sqlite://",
        ),
        (
            vec![
                "api-key",
                "create",
                "--name",
                "x",
                "--data-dir",
                data_arg,
                "--database-url",
                "sqlite::memory:",
            ],
            "--data-dir",
        ),
    ] {
        let out = livefarm(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(64), "{args:?}: {stderr}");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
        assert!(!stderr.contains("hunter2"), "{stderr}");
    }
}

#[test]
fn stream_create_without_a_key_says_where_it_looked() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("empty");
    let out = livefarm(&[
        "stream",
        "create",
        "--name",
        "x",
        "--api",
        "http://127.0.0.1:9",
        "--data-dir",
        data.to_str().expect("utf-8 path"),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(64), "{stderr}");
    for place in [
        "--api-key",
        "LIVEFARM_API_KEY",
        &data.join("api-key").display().to_string(),
    ] {
        assert!(stderr.contains(place), "{place} missing in {stderr}");
    }
}
