//! One suite for both databases: every case runs on SQLite (a file in a temporary directory)
//! and on a real PostgreSQL server started for the test (Debian's `postgresql`; see
//! `livefarm_store::testing`). Without PostgreSQL installed the PostgreSQL half fails when
//! `LIVEFARM_REQUIRE_POSTGRES` is set (as `make test` does) and is skipped loudly otherwise.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use livefarm_store::ids::api_key_hash;
use livefarm_store::testing::PgServer;
use livefarm_store::{
    Backend, Migration, NewStream, Page, Store, StoreError, StoreOptions, StreamPatch, Terminate,
    MIGRATIONS,
};
use serde_json::{json, Map, Value};
use sqlx::Row;

type Case = fn(Store, String) -> Pin<Box<dyn Future<Output = ()> + Send>>;

/// Every case, by name. Each gets a migrated store on a fresh database and that database's URL.
const CASES: &[(&str, Case)] = &[
    ("migrations", |s, u| Box::pin(migrations(s, u))),
    ("api_keys", |s, u| Box::pin(api_keys(s, u))),
    ("streams", |s, u| Box::pin(streams(s, u))),
    ("pagination", |s, u| Box::pin(pagination(s, u))),
    ("transitions", |s, u| Box::pin(transitions(s, u))),
    ("tenancy", |s, u| Box::pin(tenancy(s, u))),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_conformance() {
    let dir = tempfile::tempdir().expect("tempdir");
    for (name, case) in CASES {
        let url = format!("sqlite://{}/{name}.db", dir.path().display());
        let store = Store::open(&url, &StoreOptions::default())
            .await
            .expect("open sqlite");
        assert_eq!(store.backend(), Backend::Sqlite);
        eprintln!("sqlite: {name}");
        case(store, url).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_conformance() {
    let Some(server) = PgServer::start() else {
        assert!(
            std::env::var_os("LIVEFARM_REQUIRE_POSTGRES").is_none(),
            "PostgreSQL is required (LIVEFARM_REQUIRE_POSTGRES) but not installed"
        );
        eprintln!("SKIPPED: PostgreSQL is not installed (apt-get install postgresql)");
        return;
    };
    for (name, case) in CASES {
        let url = server.fresh_database(&format!("case_{name}")).await;
        let store = Store::open(&url, &StoreOptions::default())
            .await
            .expect("open postgres");
        assert_eq!(store.backend(), Backend::Postgres);
        eprintln!("postgres: {name}");
        case(store.clone(), url).await;
        store.close().await;
    }
}

#[tokio::test]
async fn sqlite_in_memory_keeps_its_data_across_calls() {
    let store = Store::open("sqlite::memory:", &StoreOptions::default())
        .await
        .expect("open");
    let tenant = store.create_tenant("t").await.expect("tenant");
    assert_eq!(store.tenant(&tenant.id).await.expect("read"), Some(tenant));
}

#[tokio::test]
async fn bad_urls_are_refused_without_leaking_passwords() {
    let error = Store::connect("mysql://u:hunter2@h/db", &StoreOptions::default())
        .await
        .expect_err("mysql");
    assert!(matches!(error, StoreError::InvalidUrl { .. }), "{error}");
    assert!(!error.to_string().contains("hunter2"));
}

fn spec(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        other => panic!("not an object: {other}"),
    }
}

async fn migrations(store: Store, url: String) {
    // applied by open(); again is a no-op, also from several connections at once
    let mut racers = Vec::new();
    for _ in 0..4 {
        let url = url.clone();
        racers.push(tokio::spawn(async move {
            let other = Store::connect(&url, &StoreOptions::default())
                .await
                .expect("connect");
            let report = other.migrate().await.expect("migrate");
            other.close().await;
            report
        }));
    }
    for racer in racers {
        let report = racer.await.expect("no panic");
        assert!(report.applied.is_empty(), "{report:?}");
        assert_eq!(report.version, MIGRATIONS.last().expect("one").version);
    }

    // a migration changed after it was applied is refused, and changes nothing
    let mut changed = MIGRATIONS.to_vec();
    changed[0].sql = "CREATE TABLE sneaky (id TEXT)";
    let error = store.migrate_with(&changed).await.expect_err("changed");
    assert!(
        matches!(&error, StoreError::Migration(m) if m.contains("differs")),
        "{error}"
    );

    // a newer build's migration is reported, not fatal, to an older build
    let mut newer = MIGRATIONS.to_vec();
    newer.push(Migration {
        version: 999,
        name: "from a newer build",
        sql: "CREATE TABLE from_the_future (id TEXT PRIMARY KEY)",
    });
    assert_eq!(
        store.migrate_with(&newer).await.expect("newer").applied,
        vec![999]
    );
    let report = store.migrate().await.expect("older build");
    assert_eq!(report.unknown, vec![999]);
    assert_eq!(report.version, 999);

    // a failing migration leaves nothing half-applied
    let mut broken = MIGRATIONS.to_vec();
    broken.push(Migration {
        version: 1000,
        name: "broken",
        sql: "CREATE TABLE half (id TEXT); THIS IS NOT SQL;",
    });
    assert!(store.migrate_with(&broken).await.is_err());
    let rows = sqlx::query("SELECT version FROM livefarm_migrations WHERE version = 1000")
        .fetch_all(livefarm_store::testing::pool(&store))
        .await
        .expect("query");
    assert!(rows.is_empty(), "failed migration recorded");
    let half = sqlx::query("SELECT id FROM half")
        .fetch_all(livefarm_store::testing::pool(&store))
        .await;
    assert!(half.is_err(), "a failed migration left a table behind");
}

async fn api_keys(store: Store, _url: String) {
    let tenant = store.create_tenant("acme").await.expect("tenant");
    let created = store.create_api_key(&tenant.id, "ci").await.expect("key");
    assert!(created.secret.starts_with("lf_"));
    assert!(created.secret.starts_with(&created.key.prefix));

    let auth = store
        .authenticate(&created.secret)
        .await
        .expect("auth")
        .expect("known key");
    assert_eq!(auth.tenant_id, tenant.id);
    assert_eq!(auth.key_name, "ci");

    // the secret is nowhere in the table, only its hash
    let rows = sqlx::query("SELECT key_hash, key_prefix, name FROM api_keys")
        .fetch_all(livefarm_store::testing::pool(&store))
        .await
        .expect("rows");
    assert_eq!(rows.len(), 1);
    let hash: String = rows[0].try_get("key_hash").expect("hash");
    assert_eq!(hash, api_key_hash(&created.secret));
    for column in ["key_hash", "key_prefix", "name"] {
        let value: String = rows[0].try_get(column).expect("column");
        assert!(
            !value.contains(&created.secret[3..]),
            "{column} holds the secret"
        );
    }

    for wrong in [
        "",
        "lf_000000000000000000000000000000000000000000000000",
        &"x".repeat(10_000),
        "' OR '1'='1",
    ] {
        assert_eq!(
            store.authenticate(wrong).await.expect("auth"),
            None,
            "{wrong:.20}"
        );
    }

    let listed = store.api_keys(&tenant.id).await.expect("list");
    assert_eq!(
        listed,
        vec![created.key.clone()]
            .into_iter()
            .map(|mut k| {
                k.last_used_at = listed[0].last_used_at;
                k
            })
            .collect::<Vec<_>>()
    );
    assert!(
        listed[0].last_used_at.is_some(),
        "authentication records use"
    );

    let other = store.create_tenant("other").await.expect("tenant");
    assert!(!store
        .revoke_api_key(&other.id, &created.key.id)
        .await
        .expect("revoke"));
    assert!(store
        .revoke_api_key(&tenant.id, &created.key.id)
        .await
        .expect("revoke"));
    assert_eq!(
        store.authenticate(&created.secret).await.expect("auth"),
        None
    );
    assert!(!store
        .revoke_api_key(&tenant.id, &created.key.id)
        .await
        .expect("revoke twice"));

    assert!(matches!(
        store.create_api_key("no-such-tenant", "x").await,
        Err(StoreError::NotFound { what: "tenant", .. })
    ));
    assert!(matches!(
        store.create_api_key(&tenant.id, "  ").await,
        Err(StoreError::Invalid { field: "name", .. })
    ));
}

async fn streams(store: Store, _url: String) {
    let tenant = store.create_tenant("acme").await.expect("tenant");
    let hostile = "Robert'); DROP TABLE streams;--";
    let made = store
        .create_stream(
            &tenant.id,
            NewStream {
                name: hostile.to_owned(),
                record: true,
                spec: spec(
                    json!({"profiles": [{"name": "720p", "width": 1280}], "userTags": {"a": 1}}),
                ),
                created_by_key_name: Some("ci".to_owned()),
            },
        )
        .await
        .expect("create");
    assert_eq!(made.name, hostile, "stored verbatim");
    assert_eq!(&made.stream_key[0..4], &made.id[0..4]);
    assert_eq!(&made.playback_id[0..4], &made.id[0..4]);
    assert!(!made.is_active && !made.suspended && made.record);
    assert_eq!(made.last_seen, 0);

    let read = store
        .stream(&tenant.id, &made.id)
        .await
        .expect("get")
        .expect("found");
    assert_eq!(read, made);
    assert_eq!(
        store.stream_by_key(&made.stream_key).await.expect("by key"),
        Some(made.clone())
    );
    assert_eq!(
        store
            .stream_by_playback_id(&made.playback_id)
            .await
            .expect("by pid"),
        Some(made.clone())
    );
    assert_eq!(store.stream_by_key("nope").await.expect("by key"), None);

    let patched = store
        .update_stream(
            &tenant.id,
            &made.id,
            StreamPatch {
                suspended: Some(true),
                spec: Some(spec(json!({"userTags": {"b": "2"}}))),
                ..StreamPatch::default()
            },
        )
        .await
        .expect("patch")
        .expect("found");
    assert!(patched.suspended);
    assert_eq!(patched.name, hostile, "untouched by the patch");
    assert!(patched.record, "untouched by the patch");
    assert_eq!(
        Value::Object(patched.spec.clone()),
        json!({"userTags": {"b": "2"}})
    );
    assert!(patched.updated_at >= made.updated_at);
    // ingest still finds a suspended stream, to refuse it with the reason
    assert!(
        store
            .stream_by_key(&made.stream_key)
            .await
            .expect("by key")
            .expect("found")
            .suspended
    );

    assert!(store
        .delete_stream(&tenant.id, &made.id)
        .await
        .expect("delete"));
    assert!(!store
        .delete_stream(&tenant.id, &made.id)
        .await
        .expect("again"));
    assert_eq!(store.stream(&tenant.id, &made.id).await.expect("get"), None);
    assert_eq!(
        store.stream_by_key(&made.stream_key).await.expect("key"),
        None
    );
    assert_eq!(
        store
            .stream_by_playback_id(&made.playback_id)
            .await
            .expect("pid"),
        None
    );
    assert_eq!(
        store
            .update_stream(&tenant.id, &made.id, StreamPatch::default())
            .await
            .expect("patch deleted"),
        None
    );

    assert!(matches!(
        store
            .create_stream(
                "no-such-tenant",
                NewStream {
                    name: "x".to_owned(),
                    ..NewStream::default()
                }
            )
            .await,
        Err(StoreError::NotFound { what: "tenant", .. })
    ));
    let mut huge = Map::new();
    huge.insert("userTags".to_owned(), Value::String("x".repeat(70_000)));
    assert!(matches!(
        store
            .create_stream(
                &tenant.id,
                NewStream {
                    name: "x".to_owned(),
                    spec: huge,
                    ..NewStream::default()
                }
            )
            .await,
        Err(StoreError::Invalid { field: "spec", .. })
    ));
}

async fn pagination(store: Store, _url: String) {
    let tenant = store.create_tenant("acme").await.expect("tenant");
    let mut made = Vec::new();
    for i in 0..25 {
        let stream = store
            .create_stream(
                &tenant.id,
                NewStream {
                    name: format!("s{i}"),
                    ..NewStream::default()
                },
            )
            .await
            .expect("create");
        made.push(stream.id);
    }
    assert_eq!(store.count_streams(&tenant.id).await.expect("count"), 25);
    let mut seen = Vec::new();
    let mut cursor = None;
    let mut pages = 0;
    loop {
        let (page, next) = store
            .list_streams(&tenant.id, &Page { limit: 10, cursor })
            .await
            .expect("page");
        pages += 1;
        seen.extend(page.into_iter().map(|s| (s.created_at, s.id)));
        match next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(seen.len(), 25);
    let mut sorted = seen.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(seen, sorted, "newest first, stable across pages");
    let mut ids: Vec<String> = seen.into_iter().map(|(_, id)| id).collect();
    ids.sort();
    made.sort();
    assert_eq!(ids, made, "every stream exactly once");

    // a full last page ends without a next cursor; limits are clamped
    let (all, next) = store
        .list_streams(
            &tenant.id,
            &Page {
                limit: 25,
                cursor: None,
            },
        )
        .await
        .expect("all");
    assert_eq!((all.len(), next), (25, None));
    let (one, _) = store
        .list_streams(&tenant.id, &Page::default())
        .await
        .expect("limit 0");
    assert_eq!(one.len(), 1);
    let (capped, _) = store
        .list_streams(
            &tenant.id,
            &Page {
                limit: u32::MAX,
                cursor: None,
            },
        )
        .await
        .expect("huge limit");
    assert_eq!(capped.len(), 25);
    assert!(matches!(
        store
            .list_streams(
                &tenant.id,
                &Page {
                    limit: 10,
                    cursor: Some("z.' OR 1=1 --".to_owned()),
                }
            )
            .await,
        Err(StoreError::Invalid {
            field: "cursor",
            ..
        })
    ));
}

async fn transitions(store: Store, _url: String) {
    let tenant = store.create_tenant("acme").await.expect("tenant");
    let stream = store
        .create_stream(
            &tenant.id,
            NewStream {
                name: "live".to_owned(),
                ..NewStream::default()
            },
        )
        .await
        .expect("create");
    let store = Arc::new(store);

    // many writers see the publisher at once: exactly one of them starts the stream
    let mut racers = Vec::new();
    for i in 0..8 {
        let store = Arc::clone(&store);
        let id = stream.id.clone();
        racers.push(tokio::spawn(async move {
            store
                .mark_stream_active(&id, 1_000 + i)
                .await
                .expect("active")
        }));
    }
    let mut started = 0;
    for racer in racers {
        started += usize::from(racer.await.expect("no panic"));
    }
    assert_eq!(started, 1, "stream.started must be emitted once");
    let live = store
        .stream(&tenant.id, &stream.id)
        .await
        .expect("get")
        .expect("found");
    assert!(live.is_active);
    assert!(live.last_seen >= 1_000);
    assert!(!store
        .mark_stream_active(&stream.id, 5_000)
        .await
        .expect("again"));
    assert!(!store
        .mark_stream_active(&stream.id, 10)
        .await
        .expect("older"));
    let seen = store
        .stream(&tenant.id, &stream.id)
        .await
        .expect("get")
        .expect("found")
        .last_seen;
    assert_eq!(seen, 5_000, "lastSeen only moves forward");

    assert_eq!(
        store.stale_active_streams(5_001).await.expect("stale"),
        vec![stream.id.clone()]
    );
    assert!(store
        .stale_active_streams(5_000)
        .await
        .expect("stale")
        .is_empty());

    let mut racers = Vec::new();
    for _ in 0..8 {
        let store = Arc::clone(&store);
        let id = stream.id.clone();
        racers.push(tokio::spawn(async move {
            store.mark_stream_idle(&id).await.expect("idle")
        }));
    }
    let mut idled = 0;
    for racer in racers {
        idled += usize::from(racer.await.expect("no panic"));
    }
    assert_eq!(idled, 1, "stream.idle must be emitted once");

    assert_eq!(
        store
            .terminate_stream(&tenant.id, &stream.id, 5_000)
            .await
            .expect("terminate"),
        Terminate::Terminated
    );
    assert_eq!(
        store
            .terminate_stream(&tenant.id, &stream.id, 5_000)
            .await
            .expect("terminate"),
        Terminate::TooSoon
    );
    assert_eq!(
        store
            .terminate_stream(&tenant.id, &stream.id, 0)
            .await
            .expect("terminate"),
        Terminate::Terminated
    );
    assert_eq!(
        store
            .terminate_stream(&tenant.id, "nope", 0)
            .await
            .expect("terminate"),
        Terminate::NotFound
    );
}

async fn tenancy(store: Store, _url: String) {
    let (a, b) = (
        store.create_tenant("a").await.expect("a"),
        store.create_tenant("b").await.expect("b"),
    );
    let stream = store
        .create_stream(
            &a.id,
            NewStream {
                name: "a's".to_owned(),
                ..NewStream::default()
            },
        )
        .await
        .expect("create");
    // b cannot see, change, delete or terminate a's stream
    assert_eq!(store.stream(&b.id, &stream.id).await.expect("get"), None);
    assert_eq!(
        store
            .update_stream(
                &b.id,
                &stream.id,
                StreamPatch {
                    suspended: Some(true),
                    ..StreamPatch::default()
                }
            )
            .await
            .expect("patch"),
        None
    );
    assert!(!store
        .delete_stream(&b.id, &stream.id)
        .await
        .expect("delete"));
    assert_eq!(
        store
            .terminate_stream(&b.id, &stream.id, 0)
            .await
            .expect("terminate"),
        Terminate::NotFound
    );
    let (listed, _) = store
        .list_streams(
            &b.id,
            &Page {
                limit: 100,
                cursor: None,
            },
        )
        .await
        .expect("list");
    assert!(listed.is_empty());
    assert_eq!(store.count_streams(&b.id).await.expect("count"), 0);
    let untouched = store
        .stream(&a.id, &stream.id)
        .await
        .expect("get")
        .expect("a still has it");
    assert!(!untouched.suspended);
    assert_eq!(untouched.last_terminated_at, None);
    assert_eq!(store.tenants().await.expect("tenants").len(), 2);
}
