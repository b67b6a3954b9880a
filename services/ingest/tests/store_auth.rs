//! Publisher auth against the control plane's store, on SQLite (a file) and on a real
//! PostgreSQL server (`livefarm_store::testing::PgServer`; skipped loudly unless
//! `LIVEFARM_REQUIRE_POSTGRES` is set, as `make test` does): a key opens its own stream with
//! its ladder, suspended and deleted streams are refused within 5 s of the change, and an
//! unreachable store refuses as unavailable without failing anything else.

use std::time::{Duration, Instant};

use livefarm_ingest::{AuthError, PublishRequest, PublisherAuth, StoreAuth, DEFAULT_CACHE_TTL};
use livefarm_profiles::{studio_default_ladder, Profile};
use livefarm_store::testing::PgServer;
use livefarm_store::{NewStream, Store, StoreOptions, StreamPatch};
use livefarm_testkit::wait_until;
use serde_json::{json, Map, Value};

fn request(manifest: Option<&str>, key: &str) -> PublishRequest {
    PublishRequest {
        protocol: "rtmp",
        url: format!("rtmp://127.0.0.1/live/{key}"),
        manifest_id: manifest.map(str::to_owned),
        stream_key: key.to_owned(),
    }
}

fn spec(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        other => panic!("not an object: {other}"),
    }
}

/// Every case, on a store at `url` (already migrated) opened again by ingest through the URL.
async fn suite(store: Store, url: &str) {
    let tenant = store.create_tenant("acme").await.expect("tenant");
    let laddered = store
        .create_stream(
            &tenant.id,
            NewStream {
                name: "laddered".to_owned(),
                record: true,
                // Studio's FfmpegProfile objects, as the api stores them
                spec: spec(json!({"profiles": [
                    {"name": "720p", "width": 1280, "height": 720, "bitrate": 3000000, "fps": 30},
                    {"name": "360p", "width": 640, "height": 360, "bitrate": 1000000, "fps": 0}
                ]})),
                created_by_key_name: None,
            },
        )
        .await
        .expect("stream");
    let plain = store
        .create_stream(
            &tenant.id,
            NewStream {
                name: "plain".to_owned(),
                ..NewStream::default()
            },
        )
        .await
        .expect("stream");
    let auth = StoreAuth::new(url, studio_default_ladder(), DEFAULT_CACHE_TTL).expect("auth");

    let ok = auth
        .authorize(&request(None, &laddered.stream_key))
        .await
        .expect("a stream's key opens it");
    assert_eq!(ok.stream_id, laddered.id);
    assert!(ok.record);
    let sizes: Vec<(String, u32, u32, u32, u32)> = ok
        .profiles
        .iter()
        .map(|p: &Profile| (p.name.clone(), p.width, p.height, p.bitrate, p.fps))
        .collect();
    assert_eq!(
        sizes,
        [
            ("720p".to_owned(), 1280, 720, 3_000_000, 30),
            ("360p".to_owned(), 640, 360, 1_000_000, 0)
        ]
    );
    let ok = auth
        .authorize(&request(None, &plain.stream_key))
        .await
        .expect("plain stream");
    assert_eq!(
        ok.profiles,
        studio_default_ladder(),
        "no profiles: defaults"
    );
    assert!(!ok.record);
    // go-livepeer's /live/{manifestID}/{key}: only the key's own stream
    auth.authorize(&request(Some(&plain.id), &plain.stream_key))
        .await
        .expect("the right manifest id");
    let refused = auth
        .authorize(&request(Some(&laddered.id), &plain.stream_key))
        .await;
    assert!(matches!(refused, Err(AuthError::Refused(_))), "{refused:?}");
    let refused = auth.authorize(&request(None, "not-a-key")).await;
    assert!(matches!(refused, Err(AuthError::Refused(_))), "{refused:?}");

    // a suspend in the store (no control message) is obeyed within 5 s
    store
        .update_stream(
            &tenant.id,
            &plain.id,
            StreamPatch {
                suspended: Some(true),
                ..StreamPatch::default()
            },
        )
        .await
        .expect("update")
        .expect("suspended");
    let since = Instant::now();
    let reason = wait_until(
        Duration::from_secs(5),
        "the suspended stream to be refused",
        || async {
            match auth.authorize(&request(None, &plain.stream_key)).await {
                Err(AuthError::Refused(reason)) => Ok(reason),
                other => Err(format!("{other:?}")),
            }
        },
    )
    .await;
    assert!(since.elapsed() < Duration::from_secs(5));
    assert!(reason.contains("suspended"), "{reason}");

    // unsuspended and cached again, then deleted: refused within 5 s too
    store
        .update_stream(
            &tenant.id,
            &plain.id,
            StreamPatch {
                suspended: Some(false),
                ..StreamPatch::default()
            },
        )
        .await
        .expect("update")
        .expect("unsuspended");
    wait_until(
        Duration::from_secs(5),
        "the stream to open again",
        || async {
            auth.authorize(&request(None, &plain.stream_key))
                .await
                .is_ok()
        },
    )
    .await;
    assert!(store
        .delete_stream(&tenant.id, &plain.id)
        .await
        .expect("delete"));
    let since = Instant::now();
    wait_until(
        Duration::from_secs(5),
        "the deleted stream to be refused",
        || async {
            matches!(
                auth.authorize(&request(None, &plain.stream_key)).await,
                Err(AuthError::Refused(_))
            )
        },
    )
    .await;
    assert!(since.elapsed() < Duration::from_secs(5));

    // what the control follower does on suspend: the cached answer goes, the next publish
    // is checked against the store at once
    auth.authorize(&request(None, &laddered.stream_key))
        .await
        .expect("cached as open");
    store
        .update_stream(
            &tenant.id,
            &laddered.id,
            StreamPatch {
                suspended: Some(true),
                ..StreamPatch::default()
            },
        )
        .await
        .expect("update")
        .expect("suspended");
    auth.forget_stream(&laddered.id);
    let refused = auth.authorize(&request(None, &laddered.stream_key)).await;
    assert!(matches!(refused, Err(AuthError::Refused(_))), "{refused:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_auth_on_sqlite() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}", dir.path().join("livefarm.db").display());
    let store = Store::open(&url, &StoreOptions::default())
        .await
        .expect("open sqlite");
    suite(store, &url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_auth_on_postgres() {
    let Some(server) = PgServer::start_or_skip() else {
        return;
    };
    let url = server.fresh_database("ingest_auth").await;
    let store = Store::open(&url, &StoreOptions::default())
        .await
        .expect("open postgres");
    suite(store, &url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_store_refuses_as_retryable() {
    // a port nothing listens on: the connection is refused at once
    let port = livefarm_testkit::free_port();
    let auth = StoreAuth::new(
        &format!("postgres://livefarm:secret@127.0.0.1:{port}/livefarm"),
        studio_default_ladder(),
        DEFAULT_CACHE_TTL,
    )
    .expect("a valid url");
    for _ in 0..2 {
        match auth.authorize(&request(None, "some-key")).await {
            Err(AuthError::Unavailable(reason)) => {
                assert!(reason.contains("try again"), "{reason}");
                assert!(!reason.contains("secret"), "{reason}");
            }
            other => panic!("expected unavailable, got {other:?}"),
        }
    }
    assert!(StoreAuth::new("redis://127.0.0.1", Vec::new(), DEFAULT_CACHE_TTL).is_err());

    // a SQLite file that is not there yet is not made by ingest: unavailable until the api
    // has made it, then the keys in it open their streams
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("livefarm.db");
    let url = format!("sqlite://{}", path.display());
    let auth = StoreAuth::new(&url, studio_default_ladder(), DEFAULT_CACHE_TTL).expect("url");
    let early = auth.authorize(&request(None, "some-key")).await;
    assert!(matches!(early, Err(AuthError::Unavailable(_))), "{early:?}");
    assert!(!path.exists(), "ingest made the database file");
    let store = Store::open(&url, &StoreOptions::default())
        .await
        .expect("the api makes it");
    let tenant = store.create_tenant("t").await.expect("tenant");
    let stream = store
        .create_stream(
            &tenant.id,
            NewStream {
                name: "late".to_owned(),
                ..NewStream::default()
            },
        )
        .await
        .expect("stream");
    let ok = auth
        .authorize(&request(None, &stream.stream_key))
        .await
        .expect("open once the database is there");
    assert_eq!(ok.stream_id, stream.id);
}
