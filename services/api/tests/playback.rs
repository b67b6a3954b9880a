//! End-to-end playback: a stream created over HTTP (with an API key, in a real SQLite
//! database), real MPEG-TS segments in storage, results on a memory bus (carrying sizes and
//! codecs, as the transcoder writes them), playlists and segments fetched over real HTTP and
//! checked with the HLS parser and ffprobe; playlists built from results alone, and restored
//! from snapshots after a restart.

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use livefarm_api::{ApiConfig, ApiServer, Store, StoreOptions};
use livefarm_bus::JobBus;
use livefarm_hls::{parse_master, parse_media, MediaPlaylist, PlaylistType};
use livefarm_jobs::{RenditionResult, ResultStatus, SegmentResult, RESULTS_STREAM};
use livefarm_runtime::Shutdown;
use livefarm_storage::{keys, Storage};
use livefarm_testkit::{http_request_async, start_redis, wait_until, HttpReply as Response};

const RENDITION: &str = "180p";

/// A minimal HTTP/1.1 request, as a player's browser sends it (an `Origin`, a JSON body).
async fn request(addr: SocketAddr, method: &str, path: &str, body: Option<&str>) -> Response {
    authed(addr, None, method, path, body).await
}

/// [`request`] with an API key.
async fn authed(
    addr: SocketAddr,
    key: Option<&str>,
    method: &str,
    path: &str,
    body: Option<&str>,
) -> Response {
    let auth = key.map(|k| format!("Bearer {k}"));
    let mut headers = vec![
        ("Origin", "http://player.example"),
        ("Content-Type", "application/json"),
    ];
    if let Some(auth) = &auth {
        headers.push(("Authorization", auth));
    }
    let body = body.unwrap_or_default().as_bytes();
    http_request_async(addr, method, path, &headers, body)
        .await
        .unwrap_or_else(|error| panic!("{method} {path}: {error}"))
}

async fn get(addr: SocketAddr, path: &str) -> Response {
    request(addr, "GET", path, None).await
}

/// Three 2 s 320x180 H.264 Main + AAC segments cut by the ffmpeg CLI.
fn make_segments(dir: &Path) -> Vec<Bytes> {
    let status = std::process::Command::new("ffmpeg")
        .current_dir(dir)
        .args([
            "-v",
            "error",
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=320x180:rate=30",
        ])
        .args([
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:sample_rate=44100",
            "-t",
            "6",
        ])
        .args([
            "-c:v",
            "libx264",
            "-profile:v",
            "main",
            "-pix_fmt",
            "yuv420p",
        ])
        .args(["-g", "60", "-keyint_min", "60", "-sc_threshold", "0"])
        .args([
            "-c:a",
            "aac",
            "-b:a",
            "64k",
            "-f",
            "segment",
            "-segment_time",
            "2",
        ])
        .args(["-segment_format", "mpegts", "seg%d.ts"])
        .status()
        .expect("the ffmpeg CLI must be installed (apt-get install ffmpeg)");
    assert!(status.success(), "ffmpeg failed: {status}");
    (0..3)
        .map(|i| Bytes::from(std::fs::read(dir.join(format!("seg{i}.ts"))).expect("segment")))
        .collect()
}

struct Harness {
    server: ApiServer,
    bus: Arc<dyn JobBus>,
    storage: Storage,
    shutdown: Shutdown,
    key: String,
    _db: tempfile::TempDir,
}

/// A SQLite database in a new directory with one tenant and key: (dir, url, store, key).
async fn database() -> (tempfile::TempDir, String, Store, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}/livefarm.db", dir.path().display());
    let store = Store::open(&url, &StoreOptions::default())
        .await
        .expect("store");
    let (_, key) = common::tenant_with_key(&store, "acme").await;
    (dir, url, store, key)
}

/// Stores segment `seq` of `stream_id` (source and one rendition) and publishes its result.
async fn store_and_publish(
    storage: &Storage,
    bus: &dyn JobBus,
    stream_id: &str,
    seq: u64,
    bytes: &Bytes,
) {
    let result = result_for(stream_id, seq, bytes);
    storage
        .put(&result.renditions[0].key, bytes.clone())
        .await
        .expect("put");
    storage
        .put(&result.source_key, bytes.clone())
        .await
        .expect("put");
    publish(bus, &result).await;
}

async fn publish(bus: &dyn JobBus, result: &SegmentResult) {
    bus.publish(RESULTS_STREAM, &result.encode(), &result.headers())
        .await
        .expect("publish");
}

/// The result a worker publishes for segment `seq` whose source and rendition are `bytes`:
/// sizes and codecs measured as the transcoder measures them.
fn result_for(stream_id: &str, seq: u64, bytes: &Bytes) -> SegmentResult {
    let key = keys::rendition_segment(stream_id, RENDITION, seq, "ts");
    let codecs = livefarm_hls::tsprobe::probe(bytes).codecs();
    SegmentResult {
        renditions: vec![RenditionResult {
            name: RENDITION.to_owned(),
            key,
            width: 320,
            height: 180,
            frames: 60,
            pixels: 60 * 320 * 180,
            duration: 2.0,
            bytes: bytes.len() as u64,
            codecs: codecs.clone(),
        }],
        source_width: 640,
        source_height: 360,
        source_key: keys::source_segment(stream_id, seq),
        source_bytes: bytes.len() as u64,
        source_codecs: codecs,
        ..SegmentResult::new(stream_id, seq, "w1", ResultStatus::Ok)
    }
}

async fn harness(window: usize) -> Harness {
    let name = common::unique("api-test");
    let (db, _, store, key) = database().await;
    let config = ApiConfig {
        listen: "127.0.0.1:0".parse().expect("addr"),
        admin_listen: "127.0.0.1:0".parse().expect("addr"),
        bus_url: format!("memory://{name}"),
        live_window: window,
        poll_interval_ms: 50,
        ..ApiConfig::default()
    };
    let bus = livefarm_bus::connect(&config.bus_url).await.expect("bus");
    let storage = Storage::from_url("memory://").await.expect("storage");
    let shutdown = Shutdown::new();
    let server = livefarm_api::start_with(
        &config,
        bus.clone(),
        storage.clone(),
        store,
        shutdown.clone(),
    )
    .await
    .expect("server starts");
    Harness {
        server,
        bus,
        storage,
        shutdown,
        key,
        _db: db,
    }
}

impl Harness {
    fn addr(&self) -> SocketAddr {
        self.server.local_addr()
    }

    /// Stores segment `seq` (source and one rendition) and publishes its result.
    async fn publish(&self, stream_id: &str, seq: u64, bytes: &Bytes) {
        store_and_publish(&self.storage, self.bus.as_ref(), stream_id, seq, bytes).await;
    }

    /// Waits until the media playlist satisfies `done`.
    async fn media_until(
        &self,
        path: &str,
        done: impl Fn(&MediaPlaylist) -> bool,
    ) -> MediaPlaylist {
        media_until(self.addr(), path, done).await
    }

    async fn stop(self) {
        self.shutdown.trigger();
        self.server.wait().await.expect("clean shutdown");
    }
}

/// Waits until the media playlist at `path` on `addr` satisfies `done`.
async fn media_until(
    addr: SocketAddr,
    path: &str,
    done: impl Fn(&MediaPlaylist) -> bool,
) -> MediaPlaylist {
    let done = &done;
    wait_until(
        Duration::from_secs(10),
        &format!("the awaited playlist at {path}"),
        || async move {
            let response = get(addr, path).await;
            if response.status == 200 {
                let playlist = parse_media(&response.text()).expect("media playlist parses");
                if done(&playlist) {
                    return Ok(playlist);
                }
            }
            Err(format!("{} {}", response.status, response.text()))
        },
    )
    .await
}

async fn create_stream(addr: SocketAddr, key: &str, body: &str) -> serde_json::Value {
    let response = authed(addr, Some(key), "POST", "/api/stream", Some(body)).await;
    assert_eq!(response.status, 201, "{}", response.text());
    serde_json::from_slice(&response.body).expect("json stream")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_playback_over_http() {
    let dir = tempfile::tempdir().expect("tempdir");
    let segments = make_segments(dir.path());
    let h = harness(6).await;
    let addr = h.addr();

    let stream = create_stream(
        addr,
        &h.key,
        r#"{"name":"cam","record":true,"profiles":[{"name":"180p","width":320,"height":180,"bitrate":400000,"fps":0}]}"#,
    )
    .await;
    let id = stream["id"].as_str().expect("id").to_owned();
    let playback = stream["playbackId"]
        .as_str()
        .expect("playbackId")
        .to_owned();
    assert!(stream["streamKey"].as_str().expect("streamKey").len() >= 16);
    assert_eq!(stream["record"], true);
    assert_eq!(stream["profiles"][0]["name"], "180p");
    let fetched = authed(
        addr,
        Some(&h.key),
        "GET",
        &format!("/api/stream/{id}"),
        None,
    )
    .await;
    assert_eq!(fetched.status, 200);
    let fetched: serde_json::Value = serde_json::from_slice(&fetched.body).expect("json");
    assert_eq!(fetched, stream);

    // no segments yet: a clear 404
    let early = get(addr, &format!("/hls/{playback}/index.m3u8")).await;
    assert_eq!(early.status, 404);
    assert!(early.text().contains("no segments yet"), "{}", early.text());

    for seq in 0..3 {
        h.publish(&id, seq, &segments[seq as usize]).await;
    }
    let media_path = format!("/hls/{playback}/{RENDITION}/index.m3u8");
    let media = h.media_until(&media_path, |p| p.segments.len() == 3).await;
    assert_eq!(media.media_sequence, 0);
    assert!(!media.ended);
    assert_eq!(media.segments[0].uri, "0.ts");
    let pdt: Vec<i64> = media
        .segments
        .iter()
        .map(|s| s.program_date_time.expect("program date time").0)
        .collect();
    assert_eq!(pdt[1] - pdt[0], 2_000);
    assert_eq!(pdt[2] - pdt[1], 2_000);

    let master = get(addr, &format!("/hls/{playback}/index.m3u8")).await;
    assert_eq!(master.status, 200);
    assert_eq!(
        master.header("content-type"),
        Some(livefarm_api::PLAYLIST_TYPE)
    );
    assert_eq!(master.header("cache-control"), Some("max-age=1"));
    assert_eq!(master.header("access-control-allow-origin"), Some("*"));
    let parsed = parse_master(&master.text()).expect("master parses");
    let uris: Vec<&str> = parsed.variants.iter().map(|v| v.uri.as_str()).collect();
    assert_eq!(uris, ["source/index.m3u8", "180p/index.m3u8"]);
    assert_eq!(
        parsed.variants[0].resolution,
        Some((640, 360)),
        "the source variant has the decoded size"
    );
    let total: usize = segments.iter().map(Bytes::len).sum();
    let peak = segments
        .iter()
        .map(|s| s.len() as u64 * 8 / 2)
        .max()
        .expect("peak");
    for variant in &parsed.variants {
        // ffmpeg reported Main profile, level 1.3 with AAC-LC audio
        let codecs = variant.codecs.as_deref().expect("codecs");
        assert!(codecs.starts_with("avc1.4d"), "{codecs}");
        assert!(codecs.ends_with("0d,mp4a.40.2"), "{codecs}");
        assert!(
            variant.bandwidth.abs_diff(peak) <= 1,
            "{} vs {peak}",
            variant.bandwidth
        );
        let average = (total as f64 * 8.0 / 6.0).round() as u64;
        assert_eq!(variant.average_bandwidth, Some(average));
    }
    let rendition = &parsed.variants[1];
    assert_eq!(rendition.resolution, Some((320, 180)));
    assert_eq!(rendition.frame_rate, Some(30.0));

    let segment = get(addr, &format!("/hls/{playback}/{RENDITION}/1.ts")).await;
    assert_eq!(segment.status, 200);
    assert_eq!(
        segment.header("content-type"),
        Some(livefarm_api::SEGMENT_TYPE)
    );
    assert_eq!(segment.body, segments[1].to_vec());

    let probe = tokio::process::Command::new("ffprobe")
        .args(["-v", "error"])
        .arg(format!("http://{addr}/hls/{playback}/index.m3u8"))
        .output();
    let probe = tokio::time::timeout(Duration::from_secs(60), probe)
        .await
        .expect("ffprobe finished in time")
        .expect("the ffprobe CLI must be installed (apt-get install ffmpeg)");
    assert!(
        probe.status.success(),
        "ffprobe failed: {}",
        String::from_utf8_lossy(&probe.stderr)
    );

    // 8 segments through a window of 6: the first two slide out
    for seq in 3..8 {
        h.publish(&id, seq, &segments[seq as usize % 3]).await;
    }
    let media = h.media_until(&media_path, |p| p.media_sequence == 2).await;
    assert_eq!(media.segments.len(), 6);
    assert_eq!(media.segments[0].uri, "2.ts");
    assert!(media.segments.iter().all(|s| !s.discontinuity));

    // seq 8 never arrives: 9 follows a discontinuity
    h.publish(&id, 9, &segments[0]).await;
    let media = h.media_until(&media_path, |p| p.media_sequence == 3).await;
    let last = media.segments.last().expect("segments");
    assert_eq!(last.uri, "9.ts");
    assert!(last.discontinuity);
    assert_eq!(media.segments.iter().filter(|s| s.discontinuity).count(), 1);

    // go-livepeer aliases by stream id
    let alias = get(addr, &format!("/stream/{id}.m3u8")).await;
    assert_eq!(alias.status, 200);
    let alias = parse_master(&alias.text()).expect("alias master parses");
    assert_eq!(alias.variants[1].uri, format!("{id}/{RENDITION}.m3u8"));
    let alias_media = get(addr, &format!("/stream/{id}/{RENDITION}.m3u8")).await;
    assert_eq!(alias_media.status, 200);
    let alias_media = parse_media(&alias_media.text()).expect("alias media parses");
    assert_eq!(alias_media.segments[0].uri, format!("{RENDITION}/3.ts"));
    let alias_segment = get(addr, &format!("/stream/{id}/{RENDITION}/3.ts")).await;
    assert_eq!(alias_segment.status, 200);
    assert_eq!(alias_segment.body, segments[0].to_vec());

    // end of stream: ENDLIST on the live playlist, the recording has every segment
    let ended = authed(
        addr,
        Some(&h.key),
        "POST",
        &format!("/api/stream/{id}/end"),
        None,
    )
    .await;
    assert_eq!(ended.status, 204);
    let media = h.media_until(&media_path, |p| p.ended).await;
    assert_eq!(media.media_sequence, 3);
    let recording = get(addr, &format!("/hls/{playback}/{RENDITION}/recording.m3u8")).await;
    assert_eq!(recording.status, 200);
    let recording = parse_media(&recording.text()).expect("recording parses");
    assert!(recording.ended);
    assert_eq!(recording.playlist_type, Some(PlaylistType::Vod));
    let seqs: Vec<&str> = recording.segments.iter().map(|s| s.uri.as_str()).collect();
    assert_eq!(
        seqs,
        ["0.ts", "1.ts", "2.ts", "3.ts", "4.ts", "5.ts", "6.ts", "7.ts", "9.ts"]
    );
    let flags: Vec<bool> = recording.segments.iter().map(|s| s.discontinuity).collect();
    assert_eq!(flags.iter().filter(|d| **d).count(), 1);
    assert!(flags[8], "9.ts follows a gap");
    // the whole session as one adaptive VOD: a master over every rendition's recording
    let vod_master = get(addr, &format!("/hls/{playback}/recording.m3u8")).await;
    assert_eq!(vod_master.status, 200, "{}", vod_master.text());
    assert_eq!(vod_master.header("cache-control"), Some("max-age=3600"));
    let vod_master = parse_master(&vod_master.text()).expect("vod master parses");
    let uris: Vec<&str> = vod_master.variants.iter().map(|v| v.uri.as_str()).collect();
    assert_eq!(uris, ["source/recording.m3u8", "180p/recording.m3u8"]);
    let source_vod = get(addr, &format!("/hls/{playback}/source/recording.m3u8")).await;
    let source_vod = parse_media(&source_vod.text()).expect("source recording parses");
    assert_eq!(source_vod.segments.len(), 9);
    let probe = tokio::process::Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "format=duration",
            "-of",
            "csv=p=0",
        ])
        .arg(format!("http://{addr}/hls/{playback}/recording.m3u8"))
        .output();
    let probe = tokio::time::timeout(Duration::from_secs(60), probe)
        .await
        .expect("ffprobe finished in time")
        .expect("ffprobe");
    assert!(
        probe.status.success(),
        "{}",
        String::from_utf8_lossy(&probe.stderr)
    );
    let seconds: f64 = String::from_utf8_lossy(&probe.stdout)
        .trim()
        .parse()
        .expect("duration");
    // nine 2 s segments
    assert!((seconds - 18.0).abs() < 1.0, "recording lasts {seconds} s");

    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_cors_and_unknown_ids() {
    let h = harness(6).await;
    let addr = h.addr();

    let key = Some(h.key.as_str());
    for (body, status, needle) in [
        ("not json", 400, "malformed JSON"),
        (r#"[1]"#, 422, "invalid type"),
        (r#"{"profiles":null}"#, 422, "missing field `name`"),
        (r#"{"name":"x","profiles":["P999p"]}"#, 422, "profiles[0]"),
        (r#"{"name":"x","profiles":{"a":1}}"#, 422, "profiles"),
        (r#"{"name":"x","record":"yes"}"#, 422, "record"),
    ] {
        let response = authed(addr, key, "POST", "/api/stream", Some(body)).await;
        assert_eq!(response.status, status, "{body}: {}", response.text());
        let error: serde_json::Value = serde_json::from_slice(&response.body).expect("json error");
        let message = error["errors"][0].as_str().expect("message");
        assert!(message.contains(needle), "{body}: {message}");
        assert_eq!(response.header("access-control-allow-origin"), Some("*"));
    }

    let stream = create_stream(
        addr,
        &h.key,
        r#"{"name":"two","profiles":[{"name":"240p0","width":426,"height":240,"bitrate":250000,"fps":0},{"name":"360p0","width":640,"height":360,"bitrate":800000,"fps":30}]}"#,
    )
    .await;
    assert_eq!(stream["profiles"].as_array().expect("profiles").len(), 2);
    assert_eq!(stream["record"], false);
    let defaults = create_stream(addr, &h.key, r#"{"name":"defaults"}"#).await;
    assert_eq!(
        defaults["profiles"].as_array().expect("profiles").len(),
        4,
        "Studio's default ladder"
    );
    assert_ne!(defaults["id"], stream["id"]);
    let playback = stream["playbackId"].as_str().expect("playbackId");

    for path in [
        "/api/nope".to_owned(),
        "/hls/nope/index.m3u8".to_owned(),
        format!("/hls/{playback}/index.m3u8"),
        format!("/hls/{playback}/180p/index.m3u8"),
        format!("/hls/{playback}/180p/0.ts"),
        "/stream/nope.m3u8".to_owned(),
        "/stream/nope/180p.m3u8".to_owned(),
        "/stream/nope/180p/0.ts".to_owned(),
        "/no/such/route".to_owned(),
    ] {
        let response = get(addr, &path).await;
        assert_eq!(response.status, 404, "{path}");
        let error: serde_json::Value = serde_json::from_slice(&response.body).expect("json error");
        assert!(error["errors"][0].is_string(), "{path}");
        assert_eq!(response.header("access-control-allow-origin"), Some("*"));
    }
    let unknown = get(addr, "/hls/nope/index.m3u8").await;
    assert!(unknown.text().contains("playback id"), "{}", unknown.text());
    let end = authed(addr, key, "POST", "/api/stream/nope/end", None).await;
    assert_eq!(end.status, 404);
    let unauthenticated = request(addr, "GET", "/api/stream/nope", None).await;
    assert_eq!(unauthenticated.status, 401);
    assert_eq!(
        unauthenticated.header("access-control-allow-origin"),
        Some("*")
    );

    let preflight = request(
        addr,
        "OPTIONS",
        &format!("/hls/{playback}/index.m3u8"),
        None,
    )
    .await;
    assert_eq!(preflight.status, 204);
    assert_eq!(preflight.header("access-control-allow-origin"), Some("*"));
    assert!(preflight
        .header("access-control-allow-methods")
        .expect("allow-methods")
        .contains("GET"));

    // not recorded: no recording master
    let no_vod = get(addr, &format!("/hls/{playback}/recording.m3u8")).await;
    assert_eq!(no_vod.status, 404);

    // list, then delete: the playback id stops resolving and the key is freed
    let listed = authed(addr, key, "GET", "/api/stream", None).await;
    assert_eq!(listed.status, 200);
    let listed: Vec<serde_json::Value> = serde_json::from_slice(&listed.body).expect("json list");
    let ids: Vec<&serde_json::Value> = listed.iter().map(|s| &s["id"]).collect();
    // newest first
    assert_eq!(ids, [&defaults["id"], &stream["id"]]);
    let id = stream["id"].as_str().expect("id");
    let deleted = authed(addr, key, "DELETE", &format!("/api/stream/{id}"), None).await;
    assert_eq!(deleted.status, 204);
    let gone = authed(addr, key, "GET", &format!("/api/stream/{id}"), None).await;
    assert_eq!(gone.status, 404);
    let again = authed(addr, key, "DELETE", &format!("/api/stream/{id}"), None).await;
    assert_eq!(again.status, 404);
    let listed = authed(addr, key, "GET", "/api/stream", None).await;
    let listed: Vec<serde_json::Value> = serde_json::from_slice(&listed.body).expect("json list");
    assert_eq!(listed.len(), 1);

    let admin = get(h.server.admin_addr(), "/livez").await;
    assert_eq!(admin.status, 200);

    h.stop().await;
}

/// Replicas share one database: streams created through one are found by another (and by
/// anything else reading the store, such as ingest checking stream keys).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shared_database_serves_every_replica() {
    let redis = start_redis();
    let (_db, url, store, key) = database().await;
    let start = || {
        let config = ApiConfig {
            storage_url: "memory://".to_owned(),
            ..common::config(&redis.url(), &url)
        };
        async move {
            let shutdown = Shutdown::new();
            let server = livefarm_api::start(&config, shutdown.clone())
                .await
                .expect("server starts");
            (server, shutdown)
        }
    };
    let (one, stop_one) = start().await;
    let (two, stop_two) = start().await;
    let stream = create_stream(one.local_addr(), &key, r#"{"name":"shared","record":true}"#).await;
    let id = stream["id"].as_str().expect("id");
    let fetched = authed(
        two.local_addr(),
        Some(&key),
        "GET",
        &format!("/api/stream/{id}"),
        None,
    )
    .await;
    assert_eq!(fetched.status, 200, "{}", fetched.text());
    let fetched: serde_json::Value = serde_json::from_slice(&fetched.body).expect("json");
    assert_eq!(fetched, stream);

    let stream_key = stream["streamKey"].as_str().expect("streamKey");
    let by_key = store.stream_by_key(stream_key).await.expect("lookup");
    assert_eq!(by_key.map(|s| s.id), Some(id.to_owned()));

    stop_one.trigger();
    stop_two.trigger();
    one.wait().await.expect("clean shutdown");
    two.wait().await.expect("clean shutdown");
}

/// Replicas share one bus and need no setting of their own: each reads every result, so each
/// serves the whole playlist, and one started later rebuilds it (from the snapshots the first
/// saved and the results since, or from the whole results stream before any snapshot).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_replica_builds_playlists_from_every_result() {
    let redis = start_redis();
    let objects = tempfile::tempdir().expect("tempdir");
    let (_db, url, _, key) = database().await;
    let config = ApiConfig {
        storage_url: objects.path().display().to_string(),
        ..common::config(&redis.url(), &url)
    };
    let start = || async {
        let shutdown = Shutdown::new();
        let server = livefarm_api::start(&config, shutdown.clone())
            .await
            .expect("server starts");
        (server, shutdown)
    };
    let bus = livefarm_bus::connect(&redis.url()).await.expect("bus");
    let storage = Storage::from_url(&config.storage_url)
        .await
        .expect("storage");
    // Not real MPEG-TS: the playlists need only the sizes and the durations in the results.
    let segment = Bytes::from_static(b"segment bytes");

    let (one, stop_one) = start().await;
    let stream = create_stream(one.local_addr(), &key, r#"{"name":"replicated"}"#).await;
    let id = stream["id"].as_str().expect("id");
    let playback = stream["playbackId"].as_str().expect("playbackId");
    let path = format!("/hls/{playback}/{RENDITION}/index.m3u8");
    for seq in 0..2 {
        store_and_publish(&storage, bus.as_ref(), id, seq, &segment).await;
    }
    let uris = |p: &MediaPlaylist| p.segments.iter().map(|s| s.uri.clone()).collect::<Vec<_>>();
    let first = media_until(one.local_addr(), &path, |p| p.segments.len() == 2).await;
    assert_eq!(uris(&first), ["0.ts", "1.ts"]);

    // Started after those results: it rebuilds from snapshots or the stream's start.
    let (two, stop_two) = start().await;
    let rebuilt = media_until(two.local_addr(), &path, |p| p.segments.len() == 2).await;
    assert_eq!(uris(&rebuilt), ["0.ts", "1.ts"]);

    store_and_publish(&storage, bus.as_ref(), id, 2, &segment).await;
    for server in [&one, &two] {
        let media = media_until(server.local_addr(), &path, |p| p.segments.len() == 3).await;
        assert_eq!(uris(&media), ["0.ts", "1.ts", "2.ts"]);
    }

    stop_one.trigger();
    stop_two.trigger();
    one.wait().await.expect("clean shutdown");
    two.wait().await.expect("clean shutdown");
}

/// A result of `seq` naming objects that do not exist, with the size and codecs a worker
/// measured: the api must take everything from the result.
fn unstored_result(stream_id: &str, seq: u64) -> SegmentResult {
    let mut result = result_for(stream_id, seq, &Bytes::from(vec![0u8; 50_000]));
    result.renditions[0].codecs = Some("avc1.4d400d,mp4a.40.2".to_owned());
    result.source_codecs = Some("avc1.640028,mp4a.40.2".to_owned());
    result.source_bytes = 100_000;
    result
}

async fn start_api(
    bus: &Arc<dyn JobBus>,
    storage: &Storage,
    store: &Store,
) -> (ApiServer, Shutdown) {
    let config = ApiConfig {
        listen: "127.0.0.1:0".parse().expect("addr"),
        admin_listen: "127.0.0.1:0".parse().expect("addr"),
        poll_interval_ms: 50,
        snapshot_interval_ms: 50,
        ..ApiConfig::default()
    };
    let shutdown = Shutdown::new();
    let server = livefarm_api::start_with(
        &config,
        bus.clone(),
        storage.clone(),
        store.clone(),
        shutdown.clone(),
    )
    .await
    .expect("server starts");
    (server, shutdown)
}

/// Playlists, sizes and codecs come from the results alone: no segment object exists.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn playlists_are_built_from_results_alone() {
    let h = harness(6).await;
    let addr = h.addr();
    let stream = create_stream(addr, &h.key, r#"{"name":"unstored"}"#).await;
    let id = stream["id"].as_str().expect("id");
    let playback = stream["playbackId"].as_str().expect("playbackId");
    for seq in 0..3 {
        publish(h.bus.as_ref(), &unstored_result(id, seq)).await;
    }
    let path = format!("/hls/{playback}/{RENDITION}/index.m3u8");
    let media = h.media_until(&path, |p| p.segments.len() == 3).await;
    assert_eq!(media.segments[2].uri, "2.ts");
    let master = get(addr, &format!("/hls/{playback}/index.m3u8")).await;
    let master = parse_master(&master.text()).expect("master parses");
    type Summary<'a> = (&'a str, u64, Option<&'a str>, Option<(u32, u32)>);
    let summary: Vec<Summary> = master
        .variants
        .iter()
        .map(|v| {
            (
                v.uri.as_str(),
                v.bandwidth,
                v.codecs.as_deref(),
                v.resolution,
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (
                "source/index.m3u8",
                400_000,
                Some("avc1.640028,mp4a.40.2"),
                Some((640, 360))
            ),
            (
                "180p/index.m3u8",
                200_000,
                Some("avc1.4d400d,mp4a.40.2"),
                Some((320, 180))
            ),
        ]
    );
    let source = get(addr, &format!("/hls/{playback}/source/index.m3u8")).await;
    assert_eq!(source.status, 200);

    // a result whose source lies elsewhere than playback serves it lists no source rung
    let other = create_stream(addr, &h.key, r#"{"name":"other"}"#).await;
    let other_id = other["id"].as_str().expect("id");
    let mut moved = unstored_result(other_id, 0);
    moved.source_key = format!("uploads/{other_id}.mp4");
    publish(h.bus.as_ref(), &moved).await;
    let other_playback = other["playbackId"].as_str().expect("playbackId");
    h.media_until(
        &format!("/hls/{other_playback}/{RENDITION}/index.m3u8"),
        |p| p.segments.len() == 1,
    )
    .await;
    let master = get(addr, &format!("/hls/{other_playback}/index.m3u8")).await;
    let master = parse_master(&master.text()).expect("master parses");
    assert_eq!(master.variants.len(), 1, "only the rendition");
    h.stop().await;
}

/// A restarted api serves the same playlists from its snapshots without the results that
/// built them, then goes on with new results.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_api_serves_the_same_playlists_from_snapshots() {
    let name = common::unique("api-snapshots");
    let bus = livefarm_bus::connect(&format!("memory://{name}"))
        .await
        .expect("bus");
    let storage = Storage::from_url("memory://").await.expect("storage");
    let (_db, _, store, key) = database().await;
    let (one, stop_one) = start_api(&bus, &storage, &store).await;
    let stream = create_stream(one.local_addr(), &key, r#"{"name":"kept","record":true}"#).await;
    let id = stream["id"].as_str().expect("id");
    let playback = stream["playbackId"].as_str().expect("playbackId");
    // 4 and 5 never arrive: 6 follows a gap
    for seq in [0, 1, 2, 3, 6, 7, 8, 9] {
        publish(bus.as_ref(), &unstored_result(id, seq)).await;
    }
    let media_path = format!("/hls/{playback}/{RENDITION}/index.m3u8");
    media_until(one.local_addr(), &media_path, |p| {
        p.segments.last().is_some_and(|s| s.uri == "9.ts")
    })
    .await;
    let paths = [
        format!("/hls/{playback}/index.m3u8"),
        media_path.clone(),
        format!("/hls/{playback}/source/index.m3u8"),
        format!("/hls/{playback}/recording.m3u8"),
        format!("/hls/{playback}/{RENDITION}/recording.m3u8"),
        format!("/stream/{id}/{RENDITION}.m3u8"),
    ];
    let mut before = Vec::new();
    for path in &paths {
        let response = get(one.local_addr(), path).await;
        assert_eq!(response.status, 200, "{path}");
        before.push(response.text());
    }
    stop_one.trigger();
    one.wait().await.expect("clean shutdown");

    // the results that built the playlists are gone: only the snapshots can rebuild them
    assert!(bus.delete_stream(RESULTS_STREAM).await.expect("delete"));
    let (two, stop_two) = start_api(&bus, &storage, &store).await;
    for (path, before) in paths.iter().zip(&before) {
        let response = get(two.local_addr(), path).await;
        assert_eq!(response.status, 200, "{path}");
        assert_eq!(&response.text(), before, "{path}");
    }
    publish(bus.as_ref(), &unstored_result(id, 10)).await;
    let media = media_until(two.local_addr(), &media_path, |p| {
        p.segments.last().is_some_and(|s| s.uri == "10.ts")
    })
    .await;
    assert!(media
        .segments
        .iter()
        .all(|s| !s.discontinuity || s.uri == "6.ts"));

    let metrics = get(two.admin_addr(), "/metrics").await.text();
    for needle in [
        "livefarm_api_snapshots_total{outcome=\"loaded\"}",
        "livefarm_api_results_total{outcome=\"applied\"}",
        "livefarm_api_http_requests_total{route=\"/hls/{playback_id}/index.m3u8\",status=\"2xx\"}",
        "livefarm_api_http_request_duration_seconds_count{route=\"/api/stream\"}",
    ] {
        assert!(metrics.contains(needle), "{needle} missing in\n{metrics}");
    }
    assert!(!metrics.contains(playback), "raw paths never become labels");
    stop_two.trigger();
    two.wait().await.expect("clean shutdown");
}
