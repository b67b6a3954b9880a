//! The live lifecycle and recordings with real parts: the in-process bus (`memory://`), a
//! SQLite store in a temporary directory, in-memory object storage, real MPEG-TS segments cut
//! by the ffmpeg CLI, playlists and the MP4 fetched over real HTTP and read back with the HLS
//! parser and FFmpeg. Timings are shortened through `LifecycleConfig`; waits poll the claimed
//! condition (`wait_until`), never sleep for a fixed time.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use livefarm_api::lifecycle::{
    EventSink, Lifecycle, LifecycleConfig, LifecycleEvent, SinkFuture, StreamRenderer,
};
use livefarm_api::recording;
use livefarm_bus::{Headers, JobBus};
use livefarm_jobs::{
    RenditionResult, ResultStatus, SegmentResult, StreamEvent, StreamEventKind, RESULTS_STREAM,
    STREAM_EVENTS,
};
use livefarm_runtime::Shutdown;
use livefarm_storage::{keys, Storage};
use livefarm_store::{NewStream, RecordingStatus, Store, StoreOptions, StreamRecord};
use livefarm_testkit::{http_request_async, wait_until, HttpReply};
use serde_json::{json, Value};

/// Records every event handed over; keeps the first of each id, as the webhook outbox does.
#[derive(Debug, Default)]
struct RecordingSink {
    raw: Mutex<Vec<LifecycleEvent>>,
}

impl RecordingSink {
    /// Distinct events (by id) in the order first seen.
    fn events(&self) -> Vec<LifecycleEvent> {
        let raw = self.raw.lock().expect("lock");
        let mut seen = std::collections::HashSet::new();
        raw.iter()
            .filter(|e| seen.insert(e.id.clone()))
            .cloned()
            .collect()
    }

    fn names_for(&self, stream_id: &str) -> Vec<&'static str> {
        self.events()
            .into_iter()
            .filter(|e| e.stream.as_ref().and_then(|s| s["id"].as_str()) == Some(stream_id))
            .map(|e| e.event)
            .collect()
    }
}

impl EventSink for RecordingSink {
    fn emit<'a>(&'a self, event: &'a LifecycleEvent) -> SinkFuture<'a> {
        Box::pin(async move {
            self.raw.lock().expect("lock").push(event.clone());
            Ok(())
        })
    }
}

fn config() -> LifecycleConfig {
    LifecycleConfig {
        idle_grace_ms: 400,
        idle_timeout_ms: 1_500,
        sweep_interval_ms: 50,
        activity_interval_ms: 50,
        recording_results_wait_ms: 2_000,
        recording_deadline_ms: 10_000,
        recording_lease_ms: 5_000,
        reclaim_after_ms: 1_000,
        poll_interval_ms: 50,
    }
}

struct Harness {
    store: Store,
    storage: Storage,
    bus: Arc<dyn JobBus>,
    sink: Arc<RecordingSink>,
    shutdown: Shutdown,
    tenant: String,
    _dir: tempfile::TempDir,
}

fn renderer() -> StreamRenderer {
    Arc::new(|s: &StreamRecord| json!({"id": s.id, "name": s.name, "isActive": s.is_active}))
}

impl Harness {
    async fn new(name: &str) -> Harness {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("sqlite://{}/lf.db", dir.path().display());
        let store = Store::open(&url, &StoreOptions::default())
            .await
            .expect("store");
        let tenant = store.create_tenant("acme").await.expect("tenant").id;
        let bus = livefarm_bus::connect(&format!("memory://lifecycle-{name}"))
            .await
            .expect("bus");
        Harness {
            store,
            storage: Storage::from_url("memory://").await.expect("storage"),
            bus,
            sink: Arc::new(RecordingSink::default()),
            shutdown: Shutdown::new(),
            tenant,
            _dir: dir,
        }
    }

    fn lifecycle(&self) -> Arc<Lifecycle> {
        let lifecycle = Lifecycle::new(
            self.store.clone(),
            self.storage.clone(),
            self.bus.clone(),
            self.sink.clone(),
            renderer(),
            config(),
            "http://api.example",
        );
        lifecycle.spawn(self.shutdown.clone());
        lifecycle
    }

    async fn stream(&self, record: bool) -> StreamRecord {
        self.store
            .create_stream(
                &self.tenant,
                NewStream {
                    name: "cam".to_owned(),
                    record,
                    spec: json!({"profiles": [{"name": "360p0", "width": 640, "height": 360}]})
                        .as_object()
                        .cloned()
                        .expect("object"),
                    ..NewStream::default()
                },
            )
            .await
            .expect("stream")
    }

    async fn send(&self, event: &StreamEvent) {
        let payload = serde_json::to_vec(event).expect("json");
        self.bus
            .publish(STREAM_EVENTS, &payload, &Headers::new())
            .await
            .expect("publish");
    }

    async fn is_active(&self, stream_id: &str) -> bool {
        self.store
            .stream_by_id(stream_id)
            .await
            .expect("read")
            .expect("stream")
            .is_active
    }
}

fn event(kind: StreamEventKind, stream: &str, session: &str, first: u64, next: u64) -> StreamEvent {
    StreamEvent {
        event: kind,
        stream_id: stream.to_owned(),
        session_id: session.to_owned(),
        protocol: "rtmp".to_owned(),
        first_seq: first,
        next_seq: next,
        segments: next - first,
        duration_ms: (next - first) * 2_000,
        discontinuity: false,
        at_ms: livefarm_jobs::now_ms(),
    }
}

const WAIT: Duration = Duration::from_secs(20);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn started_and_ended_make_one_started_and_one_idle_after_the_grace() {
    let h = Harness::new("once").await;
    let lifecycle = h.lifecycle();
    let stream = h.stream(false).await;
    let started = event(StreamEventKind::Started, &stream.id, "sess-1", 0, 0);
    h.send(&started).await;
    wait_until(WAIT, "stream.started", || async {
        h.sink.names_for(&stream.id) == ["stream.started"]
    })
    .await;
    assert!(h.is_active(&stream.id).await);

    let ended = event(StreamEventKind::Ended, &stream.id, "sess-1", 0, 3);
    h.send(&ended).await;
    let idle = wait_until(WAIT, "stream.idle", || async {
        h.sink
            .events()
            .into_iter()
            .find(|e| e.event == "stream.idle")
    })
    .await;
    assert!(!h.is_active(&stream.id).await);
    let waited = idle.created_at - ended.at_ms as i64;
    assert!(
        waited >= 400,
        "idle {waited} ms after the end; grace is 400 ms"
    );
    assert_eq!(idle.stream.as_ref().expect("stream")["isActive"], false);
    assert_eq!(
        h.sink.names_for(&stream.id),
        ["stream.started", "stream.idle"]
    );

    // the same entries again (a redelivery): handled, and nothing new is emitted
    h.send(&started).await;
    h.send(&ended).await;
    wait_until(WAIT, "replays handled", || async {
        lifecycle.handled_events() == 4
    })
    .await;
    Arc::clone(&lifecycle).sweep().await.expect("sweep");
    assert_eq!(
        h.sink.names_for(&stream.id),
        ["stream.started", "stream.idle"]
    );
    assert_eq!(
        h.sink.raw.lock().expect("lock").len(),
        2,
        "not even a duplicate id was handed over"
    );
    assert!(
        !h.is_active(&stream.id).await,
        "an old `started` does not revive it"
    );
    let session = h
        .store
        .session(&h.tenant, "sess-1")
        .await
        .expect("read")
        .expect("session");
    assert_eq!(session.next_seq, Some(3));
    assert_eq!(session.counters.source_segments, 3);
    h.shutdown.trigger();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reconnect_within_the_grace_keeps_the_stream_active() {
    let h = Harness::new("reconnect").await;
    let lifecycle = h.lifecycle();
    let stream = h.stream(false).await;
    h.send(&event(StreamEventKind::Started, &stream.id, "a", 0, 0))
        .await;
    h.send(&event(StreamEventKind::Ended, &stream.id, "a", 0, 5))
        .await;
    h.send(&event(StreamEventKind::Started, &stream.id, "b", 5, 5))
        .await;
    wait_until(WAIT, "three events handled", || async {
        lifecycle.handled_events() == 3
    })
    .await;
    // several sweeps past the grace after a's end: b is live, so the stream stays active
    let grace_passed = livefarm_jobs::now_ms() + 500;
    wait_until(WAIT, "the grace to pass", || async {
        livefarm_jobs::now_ms() > grace_passed
    })
    .await;
    Arc::clone(&lifecycle).sweep().await.expect("sweep");
    assert!(h.is_active(&stream.id).await);
    assert_eq!(h.sink.names_for(&stream.id), ["stream.started"]);

    h.send(&event(StreamEventKind::Ended, &stream.id, "b", 5, 9))
        .await;
    wait_until(WAIT, "stream.idle", || async {
        h.sink.names_for(&stream.id) == ["stream.started", "stream.idle"]
    })
    .await;
    let idle = h
        .sink
        .events()
        .into_iter()
        .find(|e| e.event == "stream.idle")
        .expect("idle");
    assert_eq!(
        idle.id,
        livefarm_api::lifecycle::event_id("b", "stream.idle")
    );
    h.shutdown.trigger();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_in_the_group_handle_each_event_once() {
    let h = Harness::new("group").await;
    let (one, two) = (h.lifecycle(), h.lifecycle());
    let mut streams = Vec::new();
    for i in 0..5 {
        let stream = h.stream(false).await;
        let session = format!("g-{i}");
        h.send(&event(StreamEventKind::Started, &stream.id, &session, 0, 0))
            .await;
        h.send(&event(StreamEventKind::Ended, &stream.id, &session, 0, 2))
            .await;
        streams.push(stream);
    }
    wait_until(WAIT, "every stream started and went idle", || async {
        streams
            .iter()
            .all(|s| h.sink.names_for(&s.id) == ["stream.started", "stream.idle"])
    })
    .await;
    assert_eq!(one.handled_events() + two.handled_events(), 10);
    // both replicas read the group: both got work (a check that the group is shared)
    let pending = h
        .bus
        .group_stats(STREAM_EVENTS, livefarm_api::lifecycle::LIFECYCLE_GROUP)
        .await
        .expect("stats");
    assert_eq!(pending.pending, 0, "every entry acknowledged");
    assert_eq!(h.sink.events().len(), 10);
    h.shutdown.trigger();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_ended_makes_the_stream_idle_after_the_timeout() {
    let h = Harness::new("timeout").await;
    let _lifecycle = h.lifecycle();
    let stream = h.stream(false).await;
    let started = event(StreamEventKind::Started, &stream.id, "lost", 7, 7);
    h.send(&started).await;
    wait_until(WAIT, "stream.started", || async {
        h.sink.names_for(&stream.id) == ["stream.started"]
    })
    .await;
    let idle = wait_until(WAIT, "stream.idle without an `ended`", || async {
        h.sink
            .events()
            .into_iter()
            .find(|e| e.event == "stream.idle")
    })
    .await;
    let waited = idle.created_at - started.at_ms as i64;
    assert!(
        waited >= 1_500,
        "idle {waited} ms after the start; timeout is 1500 ms"
    );
    let session = h
        .store
        .session_by_id("lost")
        .await
        .expect("read")
        .expect("session");
    assert!(session.ended_at.is_some(), "the open session was ended");
    assert_eq!(
        h.sink.names_for(&stream.id),
        ["stream.started", "stream.idle"]
    );
    h.shutdown.trigger();
}

/// Three 2 s segments (H.264 + AAC) of `width`x`height`, cut by the ffmpeg CLI.
fn make_segments(dir: &Path, width: u32, height: u32) -> Vec<Bytes> {
    let sub = dir.join(format!("{width}x{height}"));
    std::fs::create_dir_all(&sub).expect("dir");
    let status = std::process::Command::new("ffmpeg")
        .current_dir(&sub)
        .args(["-v", "error", "-f", "lavfi", "-i"])
        .arg(format!("testsrc2=size={width}x{height}:rate=30"))
        .args([
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:sample_rate=44100",
            "-t",
            "6",
        ])
        .args(["-c:v", "libx264", "-pix_fmt", "yuv420p"])
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
        .map(|i| Bytes::from(std::fs::read(sub.join(format!("seg{i}.ts"))).expect("segment")))
        .collect()
}

async fn serve(router: axum::Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, router).await });
    addr
}

async fn get(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> HttpReply {
    http_request_async(addr, "GET", path, headers, b"")
        .await
        .unwrap_or_else(|e| panic!("GET {path}: {e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recorded_session_becomes_playable_hls_and_an_mp4_with_audio() {
    livefarm_media::init().expect("ffmpeg");
    let h = Harness::new("recording").await;
    let lifecycle = h.lifecycle();
    let stream = h.stream(true).await;
    let media = tempfile::tempdir().expect("tempdir");
    let ladder = [
        ("240p0", 426, 240, make_segments(media.path(), 426, 240)),
        ("360p0", 640, 360, make_segments(media.path(), 640, 360)),
    ];
    let first = 10;
    h.send(&event(
        StreamEventKind::Started,
        &stream.id,
        "rec-1",
        first,
        first,
    ))
    .await;
    wait_until(WAIT, "session opened", || async {
        lifecycle.handled_events() == 1
    })
    .await;
    for i in 0..3u64 {
        let seq = first + i;
        let mut result = SegmentResult::new(&stream.id, seq, "w-1", ResultStatus::Ok);
        for (name, width, height, segments) in &ladder {
            let key = keys::rendition_segment(&stream.id, name, seq, "ts");
            let bytes = segments[i as usize].clone();
            h.storage.put(&key, bytes.clone()).await.expect("put");
            result.renditions.push(RenditionResult {
                name: (*name).to_owned(),
                key,
                width: *width,
                height: *height,
                frames: 60,
                pixels: 60 * u64::from(*width) * u64::from(*height),
                duration: 2.0,
                bytes: bytes.len() as u64,
                codecs: livefarm_hls::tsprobe::probe(&bytes).codecs(),
            });
        }
        h.bus
            .publish(RESULTS_STREAM, &result.encode(), &result.headers())
            .await
            .expect("result");
    }
    h.send(&event(
        StreamEventKind::Ended,
        &stream.id,
        "rec-1",
        first,
        first + 3,
    ))
    .await;
    let session = wait_until(WAIT, "recording ready", || async {
        let Some(session) = h.store.session_by_id("rec-1").await.expect("read") else {
            return Err("no session yet".to_owned());
        };
        match session.recording_status {
            RecordingStatus::Waiting => Err(format!("{session:?}")),
            _ => Ok(session),
        }
    })
    .await;
    assert_eq!(
        session.recording_status,
        RecordingStatus::Ready,
        "{:?}",
        session.error
    );
    let ready_after =
        session.recording_ready_at.expect("ready at") - session.ended_at.expect("ended");
    eprintln!("recording ready {ready_after} ms after the session ended");

    // the events, once each, in order, with the session and the URLs
    wait_until(WAIT, "recording.ready emitted", || async {
        h.sink.names_for(&stream.id).contains(&"recording.ready")
    })
    .await;
    let events = h.sink.events();
    let names: Vec<&str> = events.iter().map(|e| e.event).collect();
    let without_idle: Vec<&str> = names
        .iter()
        .copied()
        .filter(|n| *n != "stream.idle")
        .collect();
    assert_eq!(
        without_idle,
        [
            "stream.started",
            "recording.started",
            "recording.waiting",
            "recording.ready"
        ],
        "{names:?}"
    );
    assert!(names.iter().filter(|n| **n == "stream.idle").count() <= 1);
    let ready = events
        .iter()
        .find(|e| e.event == "recording.ready")
        .expect("ready");
    let payload = ready.payload.as_ref().expect("payload");
    assert_eq!(
        payload["recordingUrl"],
        "http://api.example/recordings/rec-1/index.m3u8"
    );
    assert_eq!(
        payload["mp4Url"],
        "http://api.example/recordings/rec-1/output.mp4"
    );
    assert_eq!(payload["session"]["id"], "rec-1");
    assert_eq!(
        payload["session"]["parentId"],
        Value::from(stream.id.clone())
    );
    assert_eq!(
        payload["session"]["playbackId"],
        Value::from(stream.playback_id.clone())
    );
    let started = events
        .iter()
        .find(|e| e.event == "recording.started")
        .expect("started");
    assert_eq!(
        started.payload.as_ref().expect("payload")["session"]["recordingStatus"],
        "waiting"
    );

    // the session object and playback info
    let object = recording::session_json(&session, "http://api.example/");
    assert_eq!(object["recordingStatus"], "ready");
    assert_eq!(object["kind"], "session");
    assert_eq!(object["sourceSegments"], 3);
    // the stream object counts the session too
    let counted = h
        .store
        .stream_by_id(&stream.id)
        .await
        .expect("read")
        .expect("stream");
    assert_eq!(
        livefarm_api::studio::objects::stream_json(&counted, false)["sourceSegments"],
        3
    );
    assert_eq!(
        object["mp4Url"],
        "http://api.example/recordings/rec-1/output.mp4"
    );
    let info = serde_json::to_value(
        livefarm_api::studio::recording_playback(&session, "").expect("playback info"),
    )
    .expect("serializes");
    assert_eq!(info["type"], "recording");
    assert_eq!(info["meta"]["source"][0]["hrn"], "HLS (TS)");
    assert_eq!(
        info["meta"]["source"][0]["url"],
        "/recordings/rec-1/index.m3u8"
    );

    // served over HTTP: every playlist parses, every segment resolves
    let addr = serve(recording::routes(h.storage.clone())).await;
    let master = get(addr, "/recordings/rec-1/index.m3u8", &[]).await;
    assert_eq!(master.status, 200, "{}", master.text());
    assert_eq!(
        master.header("content-type"),
        Some("application/vnd.apple.mpegurl")
    );
    let master = livefarm_hls::parse_master(&master.text()).expect("master");
    let mut uris: Vec<&str> = master.variants.iter().map(|v| v.uri.as_str()).collect();
    uris.sort_unstable();
    assert_eq!(uris, ["240p0/index.m3u8", "360p0/index.m3u8"]);
    for variant in &master.variants {
        assert!(
            variant
                .codecs
                .as_deref()
                .is_some_and(|c| c.contains("mp4a")),
            "{variant:?}"
        );
        let path = format!("/recordings/rec-1/{}", variant.uri);
        let reply = get(addr, &path, &[]).await;
        assert_eq!(reply.status, 200, "{path}");
        let playlist = livefarm_hls::parse_media(&reply.text()).expect("media");
        assert!(playlist.ended, "EXT-X-ENDLIST");
        assert_eq!(playlist.segments.len(), 3);
        assert!((playlist.duration() - 6.0).abs() < 0.01);
        let dir = path.trim_end_matches("index.m3u8");
        for segment in &playlist.segments {
            let reply = get(addr, &format!("{dir}{}", segment.uri), &[]).await;
            assert_eq!(reply.status, 200, "{}", segment.uri);
            assert_eq!(reply.header("content-type"), Some("video/mp2t"));
            assert_eq!(reply.body.first(), Some(&0x47), "a TS packet");
        }
    }

    // the MP4: the top rendition, video and audio, 6 s
    let mp4 = get(addr, "/recordings/rec-1/output.mp4", &[]).await;
    assert_eq!(mp4.status, 200);
    assert_eq!(mp4.header("content-type"), Some("video/mp4"));
    let file = media.path().join("downloaded.mp4");
    std::fs::write(&file, &mp4.body).expect("write");
    let (video, audio, duration) = livefarm_media::probe_tracks(&file).expect("readable mp4");
    assert!(video && audio, "video {video} audio {audio}");
    assert!((duration - 6.0).abs() <= 1.0, "duration {duration}");
    let probe = std::process::Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-select_streams",
            "v:0",
            "-show_entries",
            "stream=width,height",
        ])
        .args(["-of", "csv=p=0"])
        .arg(&file)
        .output()
        .expect("ffprobe");
    assert_eq!(String::from_utf8_lossy(&probe.stdout).trim(), "640,360");
    // faststart: the index (moov) before the media (mdat)
    let body = &mp4.body;
    let find = |tag: &[u8]| body.windows(4).position(|w| w == tag);
    assert!(find(b"moov") < find(b"mdat"), "moov after mdat");
    let part = get(
        addr,
        "/recordings/rec-1/output.mp4",
        &[("Range", "bytes=0-99")],
    )
    .await;
    assert_eq!(part.status, 206);
    assert_eq!(part.body.len(), 100);

    // what is not there is a 404, odd ids included
    for path in [
        "/recordings/rec-2/index.m3u8",
        "/recordings/rec-1/720p0/index.m3u8",
        "/recordings/rec-1/360p0/..%2F..%2Fx.ts",
        "/recordings/rec-1/360p0/abc.ts",
        "/recordings/rec-1/secret.txt",
    ] {
        assert_eq!(get(addr, path, &[]).await.status, 404, "{path}");
    }

    // counters came from the results
    let counters = h
        .store
        .session_by_id("rec-1")
        .await
        .expect("read")
        .expect("session")
        .counters;
    assert_eq!(counters.transcoded_segments, 6, "{counters:?}");
    assert_eq!(counters.transcoded_duration_ms, 12_000);
    h.shutdown.trigger();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_whose_segments_never_arrive_fails_within_the_deadline() {
    let h = Harness::new("never").await;
    let _lifecycle = h.lifecycle();
    let stream = h.stream(true).await;
    h.send(&event(StreamEventKind::Started, &stream.id, "empty", 0, 0))
        .await;
    let ended = event(StreamEventKind::Ended, &stream.id, "empty", 0, 4);
    h.send(&ended).await;
    let session = wait_until(Duration::from_secs(15), "recording failed", || async {
        let Some(session) = h.store.session_by_id("empty").await.expect("read") else {
            return Err("no session yet".to_owned());
        };
        match session.recording_status {
            RecordingStatus::Failed => Ok(session),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    assert!(
        session
            .error
            .as_deref()
            .is_some_and(|e| e.contains("no segment")),
        "{:?}",
        session.error
    );
    let names = h.sink.names_for(&stream.id);
    assert!(!names.contains(&"recording.ready"), "{names:?}");
    assert!(names.contains(&"recording.waiting"), "{names:?}");
    assert_eq!(
        recording::session_json(&session, "")["recordingStatus"],
        "failed"
    );
    assert!(livefarm_api::studio::recording_playback(&session, "").is_none());
    h.shutdown.trigger();
}
