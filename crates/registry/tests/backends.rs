//! The same behaviour checked against both backends: the in-process registry and a real
//! `redis-server` started on a free loopback port.

use std::sync::Arc;

use livefarm_profiles::{preset, Profile};
use livefarm_registry::{MemoryRegistry, RegistryError, Stream, StreamRegistry, KEY_PREFIX};
use livefarm_testkit::{free_port, start_redis};

fn ladder() -> Vec<Profile> {
    ["P720p30fps16x9", "P360p30fps16x9"]
        .iter()
        .map(|name| preset(name).expect("preset"))
        .collect()
}

async fn finds_streams_by_each_id(registry: &dyn StreamRegistry) {
    let stream = registry
        .create("cam".to_owned(), ladder(), true)
        .await
        .expect("created");
    assert_eq!(stream.profiles, ladder());
    assert!(stream.record);
    assert_ne!(stream.id, stream.playback_id);
    assert_ne!(stream.stream_key, stream.playback_id);
    let by_id = registry.get(&stream.id).await.expect("get");
    let by_key = registry
        .by_stream_key(&stream.stream_key)
        .await
        .expect("key");
    let by_pb = registry
        .by_playback_id(&stream.playback_id)
        .await
        .expect("playback");
    assert_eq!(by_id.as_ref(), Some(&stream));
    assert_eq!(by_key.as_ref(), Some(&stream));
    assert_eq!(by_pb.as_ref(), Some(&stream));
    // a playback id is not a stream key, nor the other way round
    assert!(registry
        .by_stream_key(&stream.playback_id)
        .await
        .expect("key")
        .is_none());
    assert!(registry
        .by_playback_id(&stream.stream_key)
        .await
        .expect("pb")
        .is_none());
    assert!(registry.get("nope").await.expect("get").is_none());
}

async fn refuses_taken_keys_and_frees_them_on_delete(registry: &dyn StreamRegistry) {
    let first = registry
        .create("one".to_owned(), Vec::new(), false)
        .await
        .expect("created");
    let mut clash = Stream::new("two".to_owned(), Vec::new(), false).expect("stream");
    clash.stream_key = first.stream_key.clone();
    match registry.insert(clash.clone()).await {
        Err(RegistryError::Conflict { field, value }) => {
            assert_eq!(field, "streamKey");
            assert_eq!(value, first.stream_key);
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
    // nothing of the refused stream was stored
    assert!(registry.get(&clash.id).await.expect("get").is_none());
    assert!(registry
        .by_playback_id(&clash.playback_id)
        .await
        .expect("pb")
        .is_none());
    let mut same_playback = Stream::new("three".to_owned(), Vec::new(), false).expect("stream");
    same_playback.playback_id = first.playback_id.clone();
    assert!(matches!(
        registry.insert(same_playback).await,
        Err(RegistryError::Conflict {
            field: "playbackId",
            ..
        })
    ));

    assert!(registry.delete(&first.id).await.expect("delete"));
    assert!(!registry.delete(&first.id).await.expect("delete again"));
    assert!(registry.get(&first.id).await.expect("get").is_none());
    assert!(registry
        .by_stream_key(&first.stream_key)
        .await
        .expect("key")
        .is_none());
    // the key is free again
    let reused = registry.insert(clash).await.expect("key freed by delete");
    assert_eq!(
        registry
            .by_stream_key(&first.stream_key)
            .await
            .expect("key")
            .map(|s| s.id),
        Some(reused.id)
    );
}

async fn lists_oldest_first(registry: &dyn StreamRegistry) {
    let mut made = Vec::new();
    for (i, created_at) in [30, 10, 20].into_iter().enumerate() {
        let mut stream = Stream::new(format!("s{i}"), Vec::new(), false).expect("stream");
        stream.created_at = created_at;
        made.push(registry.insert(stream).await.expect("insert"));
    }
    let listed = registry.list().await.expect("list");
    let names: Vec<&str> = listed.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["s1", "s2", "s0"]);
    registry.delete(&made[1].id).await.expect("delete");
    assert_eq!(registry.list().await.expect("list").len(), 2);
}

async fn concurrent_creators_never_share_a_key(registry: Arc<dyn StreamRegistry>) {
    // many writers race to take the same stream key; exactly one wins
    let key = livefarm_registry::random_id(24).expect("random");
    let mut tasks = Vec::new();
    for i in 0..16 {
        let registry = registry.clone();
        let key = key.clone();
        tasks.push(tokio::spawn(async move {
            let mut stream = Stream::new(format!("racer{i}"), Vec::new(), false).expect("stream");
            stream.stream_key = key;
            registry.insert(stream).await
        }));
    }
    let mut won = 0;
    for task in tasks {
        match task.await.expect("join") {
            Ok(_) => won += 1,
            Err(RegistryError::Conflict { .. }) => {}
            Err(other) => panic!("unexpected error {other}"),
        }
    }
    assert_eq!(won, 1);
}

#[tokio::test]
async fn memory_backend() {
    let registry = MemoryRegistry::new();
    finds_streams_by_each_id(&registry).await;
    refuses_taken_keys_and_frees_them_on_delete(&registry).await;
    lists_oldest_first(&MemoryRegistry::new()).await;
    concurrent_creators_never_share_a_key(Arc::new(MemoryRegistry::new())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_backend() {
    let server = start_redis();
    let registry = livefarm_registry::connect(&server.url())
        .await
        .expect("connect");
    finds_streams_by_each_id(registry.as_ref()).await;
    refuses_taken_keys_and_frees_them_on_delete(registry.as_ref()).await;
    concurrent_creators_never_share_a_key(registry.clone()).await;

    // a second client (another replica) sees the same streams
    let other = livefarm_registry::connect(&server.url())
        .await
        .expect("connect");
    let stream = registry
        .create("shared".to_owned(), ladder(), false)
        .await
        .expect("create");
    assert_eq!(
        other.by_stream_key(&stream.stream_key).await.expect("key"),
        Some(stream.clone())
    );

    // everything lives under the documented prefix
    let keys = std::process::Command::new("redis-cli")
        .args(["-p", &server.port().to_string(), "--raw", "KEYS", "*"])
        .output();
    if let Ok(keys) = keys {
        let keys = String::from_utf8_lossy(&keys.stdout).into_owned();
        assert!(!keys.trim().is_empty());
        assert!(keys.lines().all(|k| k.starts_with(KEY_PREFIX)), "{keys}");
    }

    // a fresh database for the ordering test
    let fresh = start_redis();
    let listing = livefarm_registry::connect(&fresh.url())
        .await
        .expect("connect");
    lists_oldest_first(listing.as_ref()).await;
}

#[tokio::test]
async fn unreachable_redis_is_a_retryable_error() {
    let port = free_port();
    let error = livefarm_registry::connect(&format!("redis://127.0.0.1:{port}"))
        .await
        .expect_err("nothing listens there");
    assert!(error.is_retryable(), "{error}");
}
