//! One conformance suite, run against a local directory, the in-memory store, and a private
//! S3-compatible server (`moto_server`), both at a bucket's root and under a prefix.
//!
//! The S3 half fails (never skips) when `moto_server` is missing: run
//! `scripts/install-test-tools.sh`.

use std::any::Any;
use std::sync::atomic::{AtomicUsize, Ordering};

use livefarm_storage::testing::S3Server;
use livefarm_storage::Storage;

/// A store plus whatever must live as long as it (a temporary directory, a server).
struct Fixture {
    storage: Storage,
    _guard: Box<dyn Any + Send>,
}

async fn local() -> Fixture {
    let dir = tempfile::tempdir().expect("tempdir");
    let storage = Storage::from_url(dir.path().to_str().expect("utf-8 tempdir"))
        .await
        .expect("open local storage");
    Fixture {
        storage,
        _guard: Box::new(dir),
    }
}

async fn memory() -> Fixture {
    Fixture {
        storage: Storage::from_url("memory://")
            .await
            .expect("open memory storage"),
        _guard: Box::new(()),
    }
}

fn bucket_name() -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    format!(
        "conformance-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

async fn s3() -> Fixture {
    let server = S3Server::shared();
    let storage = server.storage(&bucket_name()).await;
    Fixture {
        storage,
        _guard: Box::new(server),
    }
}

async fn s3_prefixed() -> Fixture {
    let server = S3Server::shared();
    let bucket = bucket_name();
    server
        .create_bucket(&bucket)
        .unwrap_or_else(|error| panic!("{error}"));
    // Something outside the prefix, which the store must never see.
    let root = Storage::from_url(&server.url(&bucket))
        .await
        .expect("open bucket root");
    root.put("live/outside/source/0000000001.ts", "x".into())
        .await
        .expect("put outside the prefix");
    let url = server.url(&bucket).replacen('?', "/tenant-a/farm?", 1);
    let storage = Storage::from_url(&url)
        .await
        .expect("open prefixed storage");
    Fixture {
        storage,
        _guard: Box::new((server, root)),
    }
}

macro_rules! conformance {
    ($backend:ident) => {
        mod $backend {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn put_get_overwrite() {
                crate::suite::put_get_overwrite(&super::$backend().await.storage).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn missing_objects() {
                crate::suite::missing_objects(&super::$backend().await.storage).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn delete() {
                crate::suite::delete(&super::$backend().await.storage).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn list() {
                crate::suite::list(&super::$backend().await.storage).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn invalid_keys() {
                crate::suite::invalid_keys(&super::$backend().await.storage).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn large_object() {
                crate::suite::large_object(&super::$backend().await.storage).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn concurrent_puts() {
                crate::suite::concurrent_puts(&super::$backend().await.storage).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn retention() {
                crate::suite::retention(&super::$backend().await.storage).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn key_layout() {
                crate::suite::key_layout(&super::$backend().await.storage).await;
            }
        }
    };
}

conformance!(local);
conformance!(memory);
conformance!(s3);
conformance!(s3_prefixed);

mod suite {
    use std::collections::BTreeMap;
    use std::time::{Duration, SystemTime};

    use bytes::Bytes;
    use livefarm_storage::{keys, RetentionPolicy, Storage, StorageError};

    /// Deterministic bytes that differ per `seed`, so a mixed-up object shows.
    fn payload(seed: u64, len: usize) -> Bytes {
        let mut state = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        (0..len)
            .map(|_| {
                state = state
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                (state >> 56) as u8
            })
            .collect::<Vec<u8>>()
            .into()
    }

    fn keys_of(objects: &[livefarm_storage::ObjectInfo]) -> Vec<&str> {
        objects.iter().map(|o| o.key.as_str()).collect()
    }

    pub async fn put_get_overwrite(storage: &Storage) {
        let key = "live/s1/source/0000000001.ts";
        storage.put(key, payload(1, 1_000)).await.expect("put");
        assert_eq!(storage.get(key).await.expect("get"), payload(1, 1_000));
        assert!(storage.exists(key).await.expect("exists"));

        // Overwrite with shorter content: no trailing bytes of the old object survive.
        storage.put(key, payload(2, 10)).await.expect("overwrite");
        assert_eq!(storage.get(key).await.expect("get"), payload(2, 10));

        storage.put("empty", Bytes::new()).await.expect("put empty");
        assert_eq!(storage.get("empty").await.expect("get empty"), Bytes::new());
        assert!(storage.exists("empty").await.expect("exists empty"));
    }

    pub async fn missing_objects(storage: &Storage) {
        let key = "live/nobody/source/0000000001.ts";
        match storage.get(key).await {
            Err(error @ StorageError::NotFound { .. }) => {
                assert!(!error.is_retryable());
                let StorageError::NotFound { key: reported } = &error else {
                    unreachable!()
                };
                assert_eq!(reported, key);
            }
            other => panic!("get of a missing key gave {other:?}"),
        }
        assert!(!storage.exists(key).await.expect("exists"));
        storage.delete(key).await.expect("delete of a missing key");
        // A folder that exists is not an object.
        storage
            .put("live/s/source/0000000001.ts", "x".into())
            .await
            .expect("put");
        assert!(!storage.exists("live/s").await.expect("exists folder"));
        assert!(matches!(
            storage.get("live/s").await,
            Err(StorageError::NotFound { .. })
        ));
    }

    pub async fn delete(storage: &Storage) {
        let (a, b) = ("live/s/source/0000000001.ts", "live/s/source/0000000002.ts");
        storage.put(a, payload(1, 5)).await.expect("put a");
        storage.put(b, payload(2, 5)).await.expect("put b");
        storage.delete(a).await.expect("delete");
        assert!(!storage.exists(a).await.expect("exists a"));
        assert!(matches!(
            storage.get(a).await,
            Err(StorageError::NotFound { .. })
        ));
        storage.delete(a).await.expect("second delete");
        // The sibling is untouched, and the key can be written again.
        assert_eq!(storage.get(b).await.expect("get b"), payload(2, 5));
        storage.put(a, payload(3, 7)).await.expect("put again");
        assert_eq!(storage.get(a).await.expect("get again"), payload(3, 7));
    }

    pub async fn list(storage: &Storage) {
        assert!(storage.list("").await.expect("list empty store").is_empty());
        assert!(storage
            .list("live/")
            .await
            .expect("list missing")
            .is_empty());

        let before = SystemTime::now() - Duration::from_secs(300);
        let objects = [
            ("live/a/source/0000000002.ts", 2),
            ("live/a/source/0000000001.ts", 1),
            ("live/a/720p/0000000001.ts", 3),
            ("live/ab/source/0000000001.ts", 4),
            ("recordings/a/s1/0000000001.ts", 5),
            ("top", 6),
        ];
        for (key, len) in objects {
            storage
                .put(key, payload(len, len as usize * 100))
                .await
                .expect("put");
        }
        let after = SystemTime::now() + Duration::from_secs(300);

        let under_a = storage.list("live/a/").await.expect("list live/a/");
        assert_eq!(
            keys_of(&under_a),
            [
                "live/a/720p/0000000001.ts",
                "live/a/source/0000000001.ts",
                "live/a/source/0000000002.ts"
            ]
        );
        let sizes: Vec<u64> = under_a.iter().map(|o| o.size).collect();
        assert_eq!(sizes, [300, 100, 200]);
        for object in &under_a {
            assert!(
                object.last_modified > before && object.last_modified < after,
                "{object:?} has an implausible timestamp"
            );
        }

        // A string prefix, not a folder: `live/a` also matches `live/ab/`.
        assert_eq!(
            keys_of(&storage.list("live/a").await.expect("list live/a")),
            [
                "live/a/720p/0000000001.ts",
                "live/a/source/0000000001.ts",
                "live/a/source/0000000002.ts",
                "live/ab/source/0000000001.ts"
            ]
        );
        assert_eq!(
            keys_of(
                &storage
                    .list("live/a/source/0000000001")
                    .await
                    .expect("partial name")
            ),
            ["live/a/source/0000000001.ts"]
        );
        assert_eq!(
            storage.list("").await.expect("list all").len(),
            objects.len()
        );
        assert_eq!(keys_of(&storage.list("t").await.expect("list t")), ["top"]);
        assert!(storage
            .list("live/b/")
            .await
            .expect("list live/b/")
            .is_empty());
    }

    pub async fn invalid_keys(storage: &Storage) {
        let bad_keys = [
            "".to_owned(),
            "/abs".to_owned(),
            "trailing/".to_owned(),
            "a//b".to_owned(),
            "../escape".to_owned(),
            "live/../../etc/passwd".to_owned(),
            "live/./x".to_owned(),
            "ctl/\u{1}".to_owned(),
            "new\nline".to_owned(),
            "back\\slash".to_owned(),
            "hash#1".to_owned(),
            "x".repeat(keys::MAX_KEY_LEN + 1),
            keys::source_segment("..", 1),
            keys::source_segment("a/b", 1),
            keys::source_segment("", 1),
            keys::rendition_segment("s", "720p\0", 1, "ts"),
            keys::rendition_segment("s", "720p", 1, "../ts"),
        ];
        for key in &bad_keys {
            let is_invalid =
                |r: &Result<(), StorageError>| matches!(r, Err(StorageError::InvalidKey { .. }));
            let put = storage.put(key, "x".into()).await;
            assert!(is_invalid(&put), "put {key:?} gave {put:?}");
            let get = storage.get(key).await.map(|_| ());
            assert!(is_invalid(&get), "get {key:?} gave {get:?}");
            let exists = storage.exists(key).await.map(|_| ());
            assert!(is_invalid(&exists), "exists {key:?} gave {exists:?}");
            let delete = storage.delete(key).await;
            assert!(is_invalid(&delete), "delete {key:?} gave {delete:?}");
            if let Err(error) = put {
                assert!(!error.is_retryable());
            }
        }
        for prefix in [
            "/",
            "a//",
            "../",
            &keys::stream_prefix("a/b"),
            &keys::stream_prefix(".."),
        ] {
            assert!(
                matches!(
                    storage.list(prefix).await,
                    Err(StorageError::InvalidKey { .. })
                ),
                "list {prefix:?} was accepted"
            );
        }
        assert!(
            storage.list("").await.expect("list").is_empty(),
            "nothing was written"
        );
    }

    pub async fn large_object(storage: &Storage) {
        const LEN: usize = 5 * 1024 * 1024;
        let key = keys::rendition_segment("big", "1080p", 1, "ts");
        let data = payload(42, LEN);
        storage.put(&key, data.clone()).await.expect("put 5 MB");
        let back = storage.get(&key).await.expect("get 5 MB");
        assert_eq!(back.len(), LEN);
        assert!(back == data, "5 MB object came back different");
        let listed = storage
            .list(&keys::stream_prefix("big"))
            .await
            .expect("list");
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].size, LEN as u64);
    }

    pub async fn concurrent_puts(storage: &Storage) {
        const WRITERS: u64 = 8;
        const DISTINCT: u64 = 32;
        const LEN: usize = 256 * 1024;
        let shared = "live/race/source/0000000001.ts";
        let mut tasks = tokio::task::JoinSet::new();
        for seq in 0..DISTINCT {
            let storage = storage.clone();
            tasks.spawn(async move {
                let key = keys::source_segment("many", seq);
                storage.put(&key, payload(seq, 1_000 + seq as usize)).await
            });
        }
        // Writers of one key, each with its own fill byte, and a reader that must only ever
        // see one writer's whole object.
        for writer in 0..WRITERS {
            let storage = storage.clone();
            tasks.spawn(async move {
                for _ in 0..3 {
                    storage
                        .put(shared, Bytes::from(vec![writer as u8 + 1; LEN]))
                        .await?;
                }
                Ok(())
            });
        }
        let reader = {
            let storage = storage.clone();
            tokio::spawn(async move {
                let mut seen = 0;
                for _ in 0..40 {
                    match storage.get(shared).await {
                        Ok(data) => {
                            assert_eq!(data.len(), LEN, "read a partial object");
                            assert!(
                                data.iter().all(|b| *b == data[0]),
                                "read a mix of two writers"
                            );
                            seen += 1;
                        }
                        Err(StorageError::NotFound { .. }) => {}
                        Err(error) => panic!("concurrent get failed: {error}"),
                    }
                    tokio::task::yield_now().await;
                }
                seen
            })
        };
        while let Some(result) = tasks.join_next().await {
            result.expect("task panicked").expect("concurrent put");
        }
        reader.await.expect("reader panicked");

        let listed = storage
            .list(&keys::stream_prefix("many"))
            .await
            .expect("list");
        assert_eq!(listed.len(), DISTINCT as usize, "{:?}", keys_of(&listed));
        for seq in 0..DISTINCT {
            let key = keys::source_segment("many", seq);
            assert_eq!(
                storage.get(&key).await.expect("get"),
                payload(seq, 1_000 + seq as usize),
                "{key}"
            );
        }
        let last = storage.get(shared).await.expect("get shared");
        assert_eq!(last.len(), LEN);
        assert!((1..=WRITERS as u8).contains(&last[0]));
        assert!(last.iter().all(|b| *b == last[0]));
        assert_eq!(
            storage.list("live/race/").await.expect("list race").len(),
            1,
            "no temporary files are visible"
        );
    }

    pub async fn retention(storage: &Storage) {
        let ttl = Duration::from_secs(600);
        let old_live = [
            (keys::source_segment("s1", 1), 100),
            (keys::rendition_segment("s1", "720p", 1, "ts"), 60),
            (keys::source_segment("s2", 1), 30),
        ];
        let recordings = [(
            format!("{}0000000001.ts", keys::recording_prefix("s1", "r1")),
            500,
        )];
        let other = [("config/ladder.json".to_owned(), 7)];
        for (key, len) in old_live.iter().chain(&recordings).chain(&other) {
            storage.put(key, payload(1, *len)).await.expect("put old");
        }
        // Some backends stamp whole seconds; more than one apart keeps old and new distinct.
        tokio::time::sleep(Duration::from_millis(1_100)).await;
        let new_live = [
            (keys::source_segment("s1", 2), 11),
            (keys::rendition_segment("s1", "720p", 2, "ts"), 12),
        ];
        for (key, len) in &new_live {
            storage.put(key, payload(2, *len)).await.expect("put new");
        }

        // Derive `now` from the backend's own stamps: just past the TTL for the old batch,
        // not yet for the new one.
        let stamps: BTreeMap<String, SystemTime> = storage
            .list("")
            .await
            .expect("list")
            .into_iter()
            .map(|o| (o.key, o.last_modified))
            .collect();
        let newest_old = old_live.iter().map(|(k, _)| stamps[k]).max().expect("old");
        let oldest_new = new_live.iter().map(|(k, _)| stamps[k]).min().expect("new");
        let gap = oldest_new
            .duration_since(newest_old)
            .expect("new objects are stamped after old ones");
        assert!(gap > Duration::ZERO);
        let now = newest_old + ttl + gap / 2;

        let policy = RetentionPolicy {
            live_ttl: ttl,
            ..RetentionPolicy::default()
        };
        assert!(policy.keep_recordings, "recordings are kept by default");
        assert_eq!(
            RetentionPolicy::default().live_ttl,
            Duration::from_secs(600)
        );
        let report = storage
            .apply_retention(&policy, now)
            .await
            .expect("retention");
        assert_eq!(report.live_deleted, old_live.len() as u64);
        assert_eq!(report.live_bytes_deleted, 190);
        assert_eq!(report.live_kept, new_live.len() as u64);
        assert_eq!((report.recordings_deleted, report.failed), (0, 0));
        for (key, _) in &old_live {
            assert!(
                !storage.exists(key).await.expect("exists"),
                "{key} survived"
            );
        }
        for (key, _) in new_live.iter().chain(&recordings).chain(&other) {
            assert!(
                storage.exists(key).await.expect("exists"),
                "{key} was deleted"
            );
        }

        // Far in the future, kept recordings still stay.
        let later = now + Duration::from_secs(30 * 24 * 3600);
        let report = storage
            .apply_retention(&policy, later)
            .await
            .expect("retention");
        assert_eq!(report.live_deleted, new_live.len() as u64);
        assert_eq!(report.live_bytes_deleted, 23);
        assert_eq!(report.recordings_deleted, 0);
        assert!(storage.exists(&recordings[0].0).await.expect("exists"));

        // Not kept: recordings older than their TTL go, and only they.
        let young = RetentionPolicy {
            keep_recordings: false,
            recording_ttl: Duration::from_secs(3600),
            ..policy.clone()
        };
        let report = storage
            .apply_retention(&young, now)
            .await
            .expect("retention");
        assert_eq!(
            report.recordings_deleted, 0,
            "recording is younger than its ttl"
        );
        let report = storage
            .apply_retention(&young, later)
            .await
            .expect("retention");
        assert_eq!(report.recordings_deleted, 1);
        assert_eq!(report.recordings_bytes_deleted, 500);
        assert_eq!(
            storage
                .list("")
                .await
                .expect("list")
                .into_iter()
                .map(|o| o.key)
                .collect::<Vec<_>>(),
            vec![other[0].0.clone()],
            "only objects outside live/ and recordings/ remain"
        );
    }

    pub async fn key_layout(storage: &Storage) {
        for seq in [10, 2, 1] {
            storage
                .put(&keys::source_segment("cam", seq), payload(seq, 10))
                .await
                .expect("put source");
            storage
                .put(
                    &keys::rendition_segment("cam", "360p", seq, "ts"),
                    payload(seq, 10),
                )
                .await
                .expect("put rendition");
        }
        let listed = storage
            .list(&keys::stream_prefix("cam"))
            .await
            .expect("list");
        assert_eq!(
            keys_of(&listed),
            [
                "live/cam/360p/0000000001.ts",
                "live/cam/360p/0000000002.ts",
                "live/cam/360p/0000000010.ts",
                "live/cam/source/0000000001.ts",
                "live/cam/source/0000000002.ts",
                "live/cam/source/0000000010.ts",
            ]
        );
    }
}
