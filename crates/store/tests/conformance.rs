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
    session_events, Backend, Migration, NewSession, NewStream, Page, RecordingStatus,
    SessionCounters, SessionFilter, Store, StoreError, StoreOptions, StreamPatch, Terminate,
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
    ("sessions", |s, u| Box::pin(sessions(s, u))),
    ("session_transitions", |s, u| {
        Box::pin(session_transitions(s, u))
    }),
    ("recordings", |s, u| Box::pin(recordings(s, u))),
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
    let Some(server) = PgServer::start_or_skip() else {
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

async fn live_stream(store: &Store, tenant: &str, record: bool) -> livefarm_store::StreamRecord {
    store
        .create_stream(
            tenant,
            NewStream {
                name: "live".to_owned(),
                record,
                spec: spec(json!({"profiles": [{"name": "360p0"}]})),
                ..NewStream::default()
            },
        )
        .await
        .expect("create")
}

fn new_session(
    id: &str,
    stream: &livefarm_store::StreamRecord,
    at: i64,
    first_seq: i64,
) -> NewSession {
    NewSession {
        id: id.to_owned(),
        stream_id: stream.id.clone(),
        tenant_id: stream.tenant_id.clone(),
        name: stream.name.clone(),
        record: stream.record,
        spec: spec(json!({"profiles": [{"name": "360p0"}]})),
        protocol: "rtmp".to_owned(),
        created_at: at,
        first_seq,
    }
}

async fn sessions(store: Store, _url: String) {
    let tenant = store.create_tenant("acme").await.expect("tenant");
    let other = store.create_tenant("other").await.expect("tenant");
    let recorded = live_stream(&store, &tenant.id, true).await;
    let plain = live_stream(&store, &tenant.id, false).await;

    let (made, created) = store
        .open_session(&new_session("s-1", &recorded, 1_000, 0))
        .await
        .expect("open");
    assert!(created);
    assert_eq!(made.recording_status, RecordingStatus::Waiting);
    assert_eq!(made.first_seq, 0);
    assert_eq!(made.ended_at, None);
    assert_eq!(
        Value::Object(made.spec.clone()),
        json!({"profiles": [{"name": "360p0"}]})
    );
    // a replayed `started` keeps the first row
    let mut replay = new_session("s-1", &recorded, 9_999, 7);
    replay.name = "changed".to_owned();
    let (again, created) = store.open_session(&replay).await.expect("reopen");
    assert!(!created);
    assert_eq!(again, made);
    let (plain_session, _) = store
        .open_session(&new_session("s-2", &plain, 2_000, 0))
        .await
        .expect("open");
    assert_eq!(plain_session.recording_status, RecordingStatus::None);
    assert!(matches!(
        store
            .open_session(&NewSession {
                stream_id: "no-such-stream".to_owned(),
                ..new_session("s-x", &plain, 1, 0)
            })
            .await,
        Err(StoreError::NotFound { .. })
    ));

    // counters converge on the highest absolute values, whatever order replicas write in
    let high = SessionCounters {
        source_segments: 5,
        transcoded_segments: 20,
        source_duration_ms: 10_000,
        transcoded_duration_ms: 40_000,
        source_bytes: 5_000,
        transcoded_bytes: 9_000,
    };
    let low = SessionCounters {
        source_segments: 3,
        transcoded_bytes: 10_000,
        ..SessionCounters::default()
    };
    assert!(store
        .update_session_counters("s-1", &high, 5_000)
        .await
        .expect("write"));
    assert!(store
        .update_session_counters("s-1", &low, 4_000)
        .await
        .expect("write"));
    assert!(store
        .update_session_counters("s-1", &high, 5_000)
        .await
        .expect("rewrite"));
    let read = store
        .session(&tenant.id, "s-1")
        .await
        .expect("get")
        .expect("found");
    assert_eq!(
        read.counters,
        SessionCounters {
            transcoded_bytes: 10_000,
            ..high
        }
    );
    assert_eq!(read.last_seen, 5_000);
    let s1_counters = read.counters;
    assert!(!store
        .update_session_counters("nope", &high, 1)
        .await
        .expect("unknown"));

    // tenancy
    assert_eq!(store.session(&other.id, "s-1").await.expect("get"), None);
    let (none, _) = store
        .list_sessions(&other.id, &SessionFilter::default(), &page(100, None))
        .await
        .expect("list");
    assert!(none.is_empty());

    // filters: record, stream, with segments
    let all = SessionFilter::default();
    let ids = |list: Vec<livefarm_store::SessionRecord>| {
        list.into_iter().map(|s| s.id).collect::<Vec<_>>()
    };
    let (listed, next) = store
        .list_sessions(&tenant.id, &all, &page(100, None))
        .await
        .expect("list");
    assert_eq!(
        (ids(listed), next),
        (vec!["s-2".to_owned(), "s-1".to_owned()], None)
    );
    let recorded_only = SessionFilter {
        record: Some(true),
        ..SessionFilter::default()
    };
    let (listed, _) = store
        .list_sessions(&tenant.id, &recorded_only, &page(100, None))
        .await
        .expect("list");
    assert_eq!(ids(listed), ["s-1"]);
    let unrecorded = SessionFilter {
        record: Some(false),
        ..SessionFilter::default()
    };
    assert_eq!(
        store
            .count_sessions(&tenant.id, &unrecorded)
            .await
            .expect("count"),
        1
    );
    let of_plain_with_segments = SessionFilter {
        stream_id: Some(plain.id.clone()),
        with_segments: true,
        ..SessionFilter::default()
    };
    let (listed, _) = store
        .list_sessions(&tenant.id, &of_plain_with_segments, &page(100, None))
        .await
        .expect("list");
    assert!(listed.is_empty(), "s-2 has no segments");
    let of_recorded_with_segments = SessionFilter {
        stream_id: Some(recorded.id.clone()),
        with_segments: true,
        ..SessionFilter::default()
    };
    let (listed, _) = store
        .list_sessions(&tenant.id, &of_recorded_with_segments, &page(100, None))
        .await
        .expect("list");
    assert_eq!(ids(listed), ["s-1"]);

    // pagination over many sessions, some sharing a start time
    for i in 0..23 {
        store
            .open_session(&new_session(
                &format!("p-{i:02}"),
                &plain,
                10_000 + i / 3,
                100,
            ))
            .await
            .expect("open");
    }
    let mut seen = Vec::new();
    let mut cursor = None;
    loop {
        let (list, next) = store
            .list_sessions(&tenant.id, &all, &page(10, cursor))
            .await
            .expect("page");
        seen.extend(list.into_iter().map(|s| (s.created_at, s.id)));
        match next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    assert_eq!(seen.len(), 25);
    let mut sorted = seen.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(seen, sorted, "newest first, every session once");
    assert!(matches!(
        store
            .list_sessions(&tenant.id, &all, &page(10, Some("' OR 1=1 --".to_owned())))
            .await,
        Err(StoreError::Invalid {
            field: "cursor",
            ..
        })
    ));
    assert_eq!(
        store.count_sessions(&tenant.id, &all).await.expect("count"),
        25
    );
    assert_eq!(
        store
            .stream_sessions(&recorded.id, 10)
            .await
            .expect("of stream")
            .len(),
        1
    );
    // the stream carries the sum over its sessions, kept right by rewrites
    let stream_counters = |id: String| {
        let store = store.clone();
        async move {
            store
                .stream_by_id(&id)
                .await
                .expect("read")
                .expect("stream")
                .counters
        }
    };
    assert_eq!(stream_counters(recorded.id.clone()).await, s1_counters);
    let (_, created) = store
        .open_session(&new_session("s-3", &recorded, 6_000, 9))
        .await
        .expect("open a second session");
    assert!(created);
    let more = SessionCounters {
        source_segments: 2,
        transcoded_segments: 8,
        source_duration_ms: 4_000,
        transcoded_duration_ms: 16_000,
        source_bytes: 1_000,
        transcoded_bytes: 3_000,
    };
    for _ in 0..2 {
        assert!(store
            .update_session_counters("s-3", &more, 7_000)
            .await
            .expect("write"));
    }
    assert_eq!(
        stream_counters(recorded.id.clone()).await,
        SessionCounters {
            source_segments: 7,
            transcoded_segments: 28,
            source_duration_ms: 14_000,
            transcoded_duration_ms: 56_000,
            source_bytes: 6_000,
            transcoded_bytes: 13_000,
        }
    );
    assert_eq!(
        stream_counters(plain.id.clone()).await,
        SessionCounters::default()
    );
}

fn page(limit: u32, cursor: Option<String>) -> Page {
    Page { limit, cursor }
}

async fn session_transitions(store: Store, _url: String) {
    let tenant = store.create_tenant("acme").await.expect("tenant");
    let stream = live_stream(&store, &tenant.id, false).await;
    let store = Arc::new(store);
    store
        .open_session(&new_session("a", &stream, 1_000, 0))
        .await
        .expect("open");

    // replicas racing on the same `started`: one transition, owed by the session
    let mut racers = Vec::new();
    for i in 0..6 {
        let store = Arc::clone(&store);
        let id = stream.id.clone();
        racers.push(tokio::spawn(async move {
            store
                .activate_stream_for_session(&id, "a", 1_000 + i)
                .await
                .expect("activate")
        }));
    }
    for racer in racers {
        assert!(
            racer.await.expect("no panic"),
            "the session owes stream.started"
        );
    }
    let session = store.session_by_id("a").await.expect("get").expect("found");
    assert_eq!(
        session.unsent_events(),
        [(session_events::STREAM_STARTED, "stream.started")]
    );
    store
        .mark_events_sent("a", session_events::STREAM_STARTED)
        .await
        .expect("sent");
    assert!(store
        .session_by_id("a")
        .await
        .expect("get")
        .expect("found")
        .unsent_events()
        .is_empty());
    assert!(store
        .sessions_owing_events(10)
        .await
        .expect("owing")
        .is_empty());

    // a reconnect: session b starts while the stream is active; b owes no stream.started
    store
        .open_session(&new_session("b", &stream, 2_000, 10))
        .await
        .expect("open b");
    assert!(!store
        .activate_stream_for_session(&stream.id, "b", 2_000)
        .await
        .expect("activate"));
    assert!(store.end_session("a", 1_900, 10).await.expect("end a"));
    assert!(!store.end_session("a", 5_000, 99).await.expect("replay"));
    let a = store.session_by_id("a").await.expect("get").expect("found");
    assert_eq!((a.ended_at, a.next_seq), (Some(1_900), Some(10)));

    // b is open: never a candidate by grace; only by the timeout on lastSeen
    store
        .touch_stream_last_seen(&stream.id, 3_000)
        .await
        .expect("touch");
    assert!(store
        .idle_candidates(10_000, 2_000)
        .await
        .expect("c")
        .is_empty());
    assert!(store
        .make_stream_idle(&stream.id, 10_000, 2_000)
        .await
        .expect("idle")
        .is_none());
    // b ended: a candidate once its end is older than the grace
    assert!(store.end_session("b", 4_000, 20).await.expect("end b"));
    assert!(store.idle_candidates(3_999, 0).await.expect("c").is_empty());
    assert_eq!(
        store.idle_candidates(4_000, 0).await.expect("c"),
        vec![stream.id.clone()]
    );
    let mut racers = Vec::new();
    for _ in 0..6 {
        let store = Arc::clone(&store);
        let id = stream.id.clone();
        racers.push(tokio::spawn(async move {
            store.make_stream_idle(&id, 4_000, 0).await.expect("idle")
        }));
    }
    let mut transitions = Vec::new();
    for racer in racers {
        transitions.extend(racer.await.expect("no panic"));
    }
    assert_eq!(transitions.len(), 1, "{transitions:?}");
    assert_eq!(transitions[0].session_id.as_deref(), Some("b"));
    let b = store.session_by_id("b").await.expect("get").expect("found");
    assert_eq!(
        b.unsent_events(),
        [(session_events::STREAM_IDLE, "stream.idle")]
    );
    assert!(
        !store
            .stream_by_id(&stream.id)
            .await
            .expect("get")
            .expect("found")
            .is_active
    );

    // ingest vanished: no `ended`; the timeout idles it and ends the open session
    store
        .open_session(&new_session("c", &stream, 6_000, 20))
        .await
        .expect("open c");
    assert!(store
        .activate_stream_for_session(&stream.id, "c", 6_000)
        .await
        .expect("activate"));
    store
        .update_session_counters("c", &SessionCounters::default(), 7_000)
        .await
        .expect("seen");
    store
        .touch_stream_last_seen(&stream.id, 7_000)
        .await
        .expect("touch");
    assert!(store.idle_candidates(0, 7_000).await.expect("c").is_empty());
    assert_eq!(
        store.idle_candidates(0, 7_001).await.expect("c"),
        vec![stream.id.clone()]
    );
    let idle = store
        .make_stream_idle(&stream.id, 0, 7_001)
        .await
        .expect("idle")
        .expect("made idle");
    assert_eq!(idle.session_id.as_deref(), Some("c"));
    let c = store.session_by_id("c").await.expect("get").expect("found");
    assert_eq!((c.ended_at, c.next_seq), (Some(7_000), None));
    // ingest's late `ended` fills in the range but does not end it again
    assert!(!store.end_session("c", 9_000, 25).await.expect("late end"));
    let c = store.session_by_id("c").await.expect("get").expect("found");
    assert_eq!((c.ended_at, c.next_seq), (Some(7_000), Some(25)));
    let owing: Vec<String> = store
        .sessions_owing_events(10)
        .await
        .expect("owing")
        .into_iter()
        .map(|s| s.id)
        .collect();
    assert_eq!(owing, ["b", "c"]);
}

async fn recordings(store: Store, _url: String) {
    let tenant = store.create_tenant("acme").await.expect("tenant");
    let stream = live_stream(&store, &tenant.id, true).await;
    let (opened, _) = store
        .open_session(&new_session("r-1", &stream, 1_000, 0))
        .await
        .expect("open");
    assert_eq!(
        opened.unsent_events(),
        [(session_events::RECORDING_STARTED, "recording.started")]
    );
    // not ended: nothing to finalize, no claim
    assert!(store
        .recordings_to_finalize(10_000, 10)
        .await
        .expect("list")
        .is_empty());
    assert!(!store
        .claim_recording("r-1", "x", 10_000, 1_000)
        .await
        .expect("claim"));
    assert!(store.end_session("r-1", 2_000, 5).await.expect("end"));
    let ended = store
        .session_by_id("r-1")
        .await
        .expect("get")
        .expect("found");
    assert!(ended.events_owed & session_events::RECORDING_WAITING != 0);

    // one replica holds the lease; another gets it only after it lapsed
    let found = store.recordings_to_finalize(3_000, 10).await.expect("list");
    assert_eq!(found.len(), 1);
    assert!(store
        .claim_recording("r-1", "one", 3_000, 1_000)
        .await
        .expect("claim"));
    assert!(!store
        .claim_recording("r-1", "two", 3_500, 1_000)
        .await
        .expect("claim"));
    assert!(store
        .recordings_to_finalize(3_500, 10)
        .await
        .expect("list")
        .is_empty());
    assert!(store
        .claim_recording("r-1", "one", 3_600, 1_000)
        .await
        .expect("renew"));
    assert!(store
        .claim_recording("r-1", "two", 4_601, 1_000)
        .await
        .expect("lapsed"));

    assert!(store
        .mark_recording_ready("r-1", 5_000)
        .await
        .expect("ready"));
    assert!(!store
        .mark_recording_ready("r-1", 5_001)
        .await
        .expect("twice"));
    assert!(!store
        .mark_recording_failed("r-1", "late")
        .await
        .expect("after ready"));
    let ready = store
        .session_by_id("r-1")
        .await
        .expect("get")
        .expect("found");
    assert_eq!(ready.recording_status, RecordingStatus::Ready);
    assert_eq!(ready.recording_ready_at, Some(5_000));
    assert!(ready.events_owed & session_events::RECORDING_READY != 0);

    // the hard deadline fails what still waits; a finalizer that comes later loses
    store
        .open_session(&new_session("r-2", &stream, 6_000, 5))
        .await
        .expect("open");
    assert!(store.end_session("r-2", 7_000, 9).await.expect("end"));
    assert!(store
        .fail_overdue_recordings(7_000, "deadline")
        .await
        .expect("not yet")
        .is_empty());
    assert_eq!(
        store
            .fail_overdue_recordings(7_001, "recording not ready within 60 s")
            .await
            .expect("overdue"),
        ["r-2"]
    );
    assert!(!store
        .mark_recording_ready("r-2", 8_000)
        .await
        .expect("late"));
    let failed = store
        .session_by_id("r-2")
        .await
        .expect("get")
        .expect("found");
    assert_eq!(failed.recording_status, RecordingStatus::Failed);
    assert_eq!(
        failed.error.as_deref(),
        Some("recording not ready within 60 s")
    );
}
