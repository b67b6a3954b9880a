//! Live ingest end to end with real ffmpeg publishers: RTMP and SRT into ingest's listeners,
//! segmented by the segmenter (in-process, or over gRPC), segments in a storage directory and
//! jobs on a memory bus; publishers authorised against the control plane's store and ended
//! by `livefarm:stream-control` orders. Needs `ffmpeg` and `ffprobe` (apt-get install ffmpeg).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use livefarm_bus::JobBus;
use livefarm_ingest::{
    AllowAnyAuth, AuthorizedStream, GrpcSink, IngestConfig, LiveIngest, PublisherAuth,
    SegmenterSink, StaticAuth, StoreAuth, WebhookAuth, DEFAULT_CACHE_TTL,
};
use livefarm_jobs::{SegmentJob, StreamControl, StreamControlAction, STREAM_CONTROL};
use livefarm_profiles::{preset, Profile};
use livefarm_runtime::Shutdown;
use livefarm_segmenter::{LiveSegmenter, StreamEvent, StreamEventKind, STREAM_EVENTS};
use livefarm_storage::Storage;
use livefarm_testkit::wait_until;

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/media/bbb-720p25-5s.mp4")
}

/// Big Buck Bunny (5 s) re-encoded small with a keyframe every 2 s, made once per run.
fn gop2_source() -> &'static Path {
    static SOURCE: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    let (_, path) = SOURCE.get_or_init(|| {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("bbb-240p-gop2.mp4");
        let status = std::process::Command::new("ffmpeg")
            .args(["-hide_banner", "-nostdin", "-v", "error", "-y", "-i"])
            .arg(fixture())
            .args([
                "-vf",
                "scale=426:240",
                "-c:v",
                "libx264",
                "-preset",
                "ultrafast",
            ])
            .args([
                "-g",
                "50",
                "-keyint_min",
                "50",
                "-sc_threshold",
                "0",
                "-c:a",
                "copy",
            ])
            .arg(&path)
            .status()
            .expect("ffmpeg must be installed (apt-get install ffmpeg)");
        assert!(status.success(), "ffmpeg could not make the test source");
        (dir, path)
    });
    path
}

/// Duration (seconds) of the video stream of `path`, by ffprobe.
fn video_duration(path: &Path) -> f64 {
    let out = std::process::Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0"])
        .args(["-show_entries", "stream=duration", "-of", "csv=p=0"])
        .arg(path)
        .output()
        .expect("ffprobe must be installed (apt-get install ffmpeg)");
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("a duration")
}

fn ladder() -> Vec<Profile> {
    vec![preset("P144p30fps16x9").expect("preset")]
}

struct Harness {
    _dir: tempfile::TempDir,
    objects: PathBuf,
    bus: Arc<dyn JobBus>,
    live: LiveIngest,
    rtmp: std::net::SocketAddr,
    srt: std::net::SocketAddr,
    shutdown: Shutdown,
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.shutdown.trigger();
    }
}

enum Link {
    InProcess,
    Grpc,
}

async fn harness(auth: Arc<dyn PublisherAuth>, target: f64, link: Link) -> Harness {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let dir = tempfile::tempdir().expect("tempdir");
    let objects = dir.path().join("objects");
    let storage = Storage::from_url(&format!("file://{}", objects.display()))
        .await
        .expect("storage");
    let name = format!(
        "memory://live-ingest-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    let bus = livefarm_bus::connect(&name).await.expect("bus");
    let shutdown = Shutdown::new();
    let core = Arc::new(LiveSegmenter::new(
        Arc::clone(&bus),
        storage,
        target,
        Duration::from_secs(5),
    ));
    let sink: Arc<dyn SegmenterSink> = match link {
        Link::InProcess => core,
        Link::Grpc => {
            let any = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
            let server = livefarm_segmenter::serve_grpc(core, any, shutdown.clone())
                .await
                .expect("grpc server");
            Arc::new(GrpcSink::new(&format!("http://{}", server.local_addr)).expect("sink"))
        }
    };
    let config = IngestConfig {
        rtmp_listen: Some(([127, 0, 0, 1], 0).into()),
        srt_listen: Some(([127, 0, 0, 1], 0).into()),
        idle_timeout_ms: 5_000,
        ..IngestConfig::default()
    };
    let live = LiveIngest::new(auth, sink);
    // as the service does: orders appended from now on are obeyed
    livefarm_ingest::follow_stream_control(Arc::clone(&bus), live.clone(), shutdown.clone()).await;
    let listeners = livefarm_ingest::start_live(&config, live.clone(), shutdown.clone())
        .await
        .expect("listeners");
    Harness {
        _dir: dir,
        objects,
        bus,
        live,
        rtmp: listeners.rtmp.expect("rtmp"),
        srt: listeners.srt.expect("srt"),
        shutdown,
    }
}

/// Runs ffmpeg publishing `input` (stream copy, real-time pace) to `url` in `format`.
async fn push(input: &Path, format: &str, url: String) -> std::process::ExitStatus {
    tokio::process::Command::new("ffmpeg")
        .args(["-hide_banner", "-nostdin", "-v", "error", "-re", "-i"])
        .arg(input)
        .args(["-c", "copy", "-f", format, &url])
        .stdin(Stdio::null())
        .status()
        .await
        .expect("ffmpeg must be installed (apt-get install ffmpeg)")
}

impl Harness {
    fn rtmp_url(&self, path: &str) -> String {
        format!("rtmp://{}/{path}", self.rtmp)
    }

    /// Every job enqueued for `stream_id` so far, in order.
    async fn jobs(&self, stream_id: &str) -> Vec<SegmentJob> {
        let stream = livefarm_jobs::jobs_stream(stream_id);
        let mut jobs = Vec::new();
        loop {
            let batch = self
                .bus
                .consume(&stream, "test", "reader", 100, Duration::ZERO)
                .await
                .expect("consume");
            if batch.is_empty() {
                return jobs;
            }
            jobs.extend(
                batch
                    .iter()
                    .map(|d| SegmentJob::decode(&d.payload).expect("job")),
            );
        }
    }

    /// Waits for `sessions` more `ended` events of `stream_id` (the segmenter flushed them).
    async fn wait_ended(&self, stream_id: &str, sessions: usize) -> Vec<StreamEvent> {
        let events = &std::sync::Mutex::new(Vec::new());
        let group = &format!("test-{stream_id}");
        wait_until(
            Duration::from_secs(30),
            &format!("stream {stream_id} to end"),
            || async move {
                let batch = self
                    .bus
                    .consume(STREAM_EVENTS, group, "r", 100, Duration::from_millis(200))
                    .await
                    .expect("consume events");
                let mut events = events.lock().expect("events lock");
                events.extend(
                    batch
                        .iter()
                        .map(|d| serde_json::from_slice::<StreamEvent>(&d.payload).expect("event"))
                        .filter(|e| e.stream_id == stream_id),
                );
                let ended = events
                    .iter()
                    .filter(|e| e.event == StreamEventKind::Ended)
                    .count();
                if ended >= sessions {
                    Ok(events.clone())
                } else {
                    Err(format!("{events:?}"))
                }
            },
        )
        .await
    }

    /// Every event of `stream_id` so far, read without consuming them.
    async fn events(&self, stream_id: &str) -> Vec<StreamEvent> {
        let entries = self
            .bus
            .range(STREAM_EVENTS, None, 10_000)
            .await
            .expect("range events");
        entries
            .iter()
            .map(|e| serde_json::from_slice::<StreamEvent>(&e.payload).expect("event"))
            .filter(|e| e.stream_id == stream_id)
            .collect()
    }

    /// Waits until the segmenter has started a session of `stream_id` (its publisher is live).
    async fn wait_started(&self, stream_id: &str) {
        wait_until(
            Duration::from_secs(30),
            &format!("stream {stream_id} to start"),
            || async move {
                let events = self.events(stream_id).await;
                if events.iter().any(|e| e.event == StreamEventKind::Started) {
                    Ok(())
                } else {
                    Err(format!("{events:?}"))
                }
            },
        )
        .await;
    }

    /// Video start time and duration (seconds) of a stored segment, read by ffprobe.
    fn probe(&self, job: &SegmentJob) -> (f64, f64) {
        let path = self.objects.join(&job.source_key);
        let out = std::process::Command::new("ffprobe")
            .args(["-v", "error", "-select_streams", "v:0"])
            .args([
                "-show_entries",
                "stream=start_time,duration",
                "-of",
                "csv=p=0",
            ])
            .arg(&path)
            .output()
            .expect("ffprobe");
        assert!(out.status.success(), "{} does not probe", path.display());
        let text = String::from_utf8_lossy(&out.stdout);
        let mut fields = text
            .trim()
            .split(',')
            .map(|f| f.parse::<f64>().unwrap_or(f64::NAN));
        (
            fields.next().unwrap_or(f64::NAN),
            fields.next().unwrap_or(f64::NAN),
        )
    }

    /// Checks seqs run on from `first_seq`, each segment starts where the previous ended, and
    /// returns the summed duration in seconds.
    fn check_continuous(&self, jobs: &[SegmentJob], first_seq: u64) -> f64 {
        assert!(!jobs.is_empty(), "no jobs");
        let mut expected_start: Option<f64> = None;
        let mut total = 0.0;
        for (i, job) in jobs.iter().enumerate() {
            assert_eq!(job.seq, first_seq + i as u64, "seqs run on");
            assert!(
                self.objects.join(&job.source_key).is_file(),
                "segment stored"
            );
            let (start, _) = self.probe(job);
            if let Some(expected) = expected_start {
                assert!(
                    (start - expected).abs() < 0.05,
                    "segment {} starts at {start}, previous ended at {expected}",
                    job.seq
                );
            }
            expected_start = Some(start + job.duration_ms as f64 / 1000.0);
            total += job.duration_ms as f64 / 1000.0;
        }
        total
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rtmp_push_is_segmented_and_enqueued() {
    let source = gop2_source();
    let h = harness(
        Arc::new(AllowAnyAuth {
            profiles: ladder(),
            record: true,
        }),
        2.0,
        Link::InProcess,
    )
    .await;
    let status = push(source, "flv", h.rtmp_url("live/rtmpkey")).await;
    assert!(status.success(), "ffmpeg rtmp push failed");
    let events = h.wait_ended("rtmpkey", 1).await;
    let jobs = h.jobs("rtmpkey").await;
    assert!(
        jobs.len() >= 3,
        "5 s at a 2 s gop makes 3 segments: {jobs:?}"
    );
    let total = h.check_continuous(&jobs, 0);
    assert!(
        (total - video_duration(source)).abs() < 0.1,
        "segments sum to {total} s"
    );
    assert!(jobs
        .iter()
        .all(|j| j.profiles == ladder() && !j.discontinuity));
    assert!(
        jobs.iter().all(|j| j.duration_ms <= 2_100),
        "cut at each 2 s keyframe: {jobs:?}"
    );
    let ended = events
        .iter()
        .find(|e| e.event == StreamEventKind::Ended)
        .expect("ended");
    assert_eq!(ended.segments, jobs.len() as u64);
    assert_eq!(ended.next_seq, jobs.len() as u64);
    // record: the session is kept under recordings/
    let recordings = h.objects.join("recordings/rtmpkey").join(&ended.session_id);
    let kept = std::fs::read_dir(&recordings)
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(kept, jobs.len(), "recording keeps every segment");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn srt_push_over_grpc_is_segmented() {
    let source = gop2_source();
    let h = harness(
        Arc::new(AllowAnyAuth {
            profiles: ladder(),
            record: false,
        }),
        2.0,
        Link::Grpc,
    )
    .await;
    let url = format!("srt://{}?streamid=live/srtman/srtkey", h.srt);
    let status = push(source, "mpegts", url).await;
    assert!(status.success(), "ffmpeg srt push failed");
    h.wait_ended("srtman", 1).await;
    let jobs = h.jobs("srtman").await;
    assert!(jobs.len() >= 3, "{jobs:?}");
    let total = h.check_continuous(&jobs, 0);
    assert!(
        (total - video_duration(source)).abs() < 0.15,
        "segments sum to {total} s"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnect_marks_a_discontinuity_and_continues() {
    let source = gop2_source();
    let h = harness(
        Arc::new(AllowAnyAuth {
            profiles: ladder(),
            record: false,
        }),
        2.0,
        Link::InProcess,
    )
    .await;
    let url = h.rtmp_url("live/again");
    assert!(push(source, "flv", url.clone()).await.success());
    h.wait_ended("again", 1).await;
    let first = h.jobs("again").await;
    assert!(push(source, "flv", url.clone()).await.success());
    h.wait_ended("again", 1).await;
    let second = h.jobs("again").await;
    assert!(!first.is_empty() && !second.is_empty());
    assert!(
        second[0].discontinuity,
        "the first job after a reconnect is a discontinuity"
    );
    assert!(second[1..].iter().all(|j| !j.discontinuity));
    let all: Vec<SegmentJob> = first.iter().chain(&second).cloned().collect();
    let total = h.check_continuous(&all, 0);
    assert!(
        (total - 2.0 * video_duration(source)).abs() < 0.2,
        "two 5 s sessions sum to {total} s"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_key_is_refused_and_others_go_on() {
    let source = gop2_source();
    let mut auth = StaticAuth::default();
    auth.insert(
        "goodkey",
        AuthorizedStream {
            stream_id: "good".into(),
            profiles: ladder(),
            record: false,
        },
    );
    let h = harness(Arc::new(auth), 2.0, Link::InProcess).await;
    let good = push(source, "flv", h.rtmp_url("live/goodkey"));
    let intruder = async {
        // the intruders come while the good stream is live, and are refused before it ends
        h.wait_started("good").await;
        let rtmp = push(source, "flv", h.rtmp_url("live/badkey")).await;
        let srt = push(source, "mpegts", format!("srt://{}?streamid=badkey", h.srt)).await;
        let events = h.events("good").await;
        assert!(
            events.iter().all(|e| e.event != StreamEventKind::Ended),
            "the good stream ended before the intruders were refused: {events:?}"
        );
        (rtmp, srt)
    };
    let (good, (bad_rtmp, bad_srt)) = tokio::join!(good, intruder);
    assert!(good.success(), "the good stream kept going");
    assert!(!bad_rtmp.success(), "unknown rtmp key refused");
    assert!(!bad_srt.success(), "unknown srt key refused");
    h.wait_ended("good", 1).await;
    let jobs = h.jobs("good").await;
    let total = h.check_continuous(&jobs, 0);
    assert!(
        (total - video_duration(source)).abs() < 0.1,
        "the good stream is whole: {total} s"
    );
    assert!(h.jobs("badkey").await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_mid_stream_over_srt_does_not_stop_the_stream() {
    let dir = tempfile::tempdir().expect("tempdir");
    let ts = dir.path().join("src.ts");
    let status = std::process::Command::new("ffmpeg")
        .args(["-hide_banner", "-nostdin", "-v", "error", "-y", "-i"])
        .arg(gop2_source())
        .args(["-c", "copy", "-f", "mpegts"])
        .arg(&ts)
        .status()
        .expect("ffmpeg");
    assert!(status.success());
    let mut bytes = std::fs::read(&ts).expect("ts");
    // 40 KB of noise (not a multiple of 188, no sync bytes) in the middle of the stream
    let middle = bytes.len() / 2;
    let noise: Vec<u8> = (0..40_000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8 | 1)
        .map(|b| if b == 0x47 { 0x46 } else { b })
        .collect();
    bytes.splice(middle..middle, noise);

    let h = harness(
        Arc::new(AllowAnyAuth {
            profiles: ladder(),
            record: false,
        }),
        2.0,
        Link::InProcess,
    )
    .await;
    use futures_util::SinkExt;
    let mut socket = srt_tokio::SrtSocket::builder()
        .call(h.srt, Some("live/noisy"))
        .await
        .expect("srt connect");
    for chunk in bytes.chunks(1316) {
        socket
            .send((
                std::time::Instant::now(),
                bytes::Bytes::copy_from_slice(chunk),
            ))
            .await
            .expect("send");
        tokio::time::sleep(Duration::from_micros(800)).await;
    }
    socket.close().await.expect("close");
    h.wait_ended("noisy", 1).await;
    let jobs = h.jobs("noisy").await;
    assert!(jobs.len() >= 2, "segments after the noise too: {jobs:?}");
    let total: f64 = jobs.iter().map(|j| j.duration_ms as f64 / 1000.0).sum();
    assert!(total > 4.0, "most of the stream survived: {total} s");
    assert!(jobs.windows(2).all(|w| w[1].seq == w[0].seq + 1));
    // every stored segment is playable
    for job in &jobs {
        let (start, _) = h.probe(job);
        assert!(start.is_finite(), "segment {} probes", job.seq);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sparse_keyframes_make_too_long_segments() {
    // the fixture has one keyframe in 5 s; a 1 s target caps segments at 3 s
    let h = harness(
        Arc::new(AllowAnyAuth {
            profiles: ladder(),
            record: false,
        }),
        1.0,
        Link::InProcess,
    )
    .await;
    assert!(push(&fixture(), "flv", h.rtmp_url("live/sparse"))
        .await
        .success());
    let events = h.wait_ended("sparse", 1).await;
    let jobs = h.jobs("sparse").await;
    assert_eq!(jobs.len(), 1, "one keyframe, one segment");
    assert!(jobs[0].duration_ms > 4_500);
    assert!(events.iter().any(|e| e.event == StreamEventKind::Ended));
    let metrics = livefarm_telemetry::metrics::render();
    assert!(
        metrics.lines().any(
            |l| l.starts_with("livefarm_segmenter_too_long_segments_total") && !l.ends_with(" 0")
        ),
        "too long segments are counted"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_decides_stream_and_ladder() {
    use axum::routing::post;
    let app = axum::Router::new().route(
        "/auth",
        post(|body: String| async move {
            let request: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
            let url = request["url"].as_str().unwrap_or_default().to_string();
            if url.ends_with("/live/letmein") {
                (
                    axum::http::StatusCode::OK,
                    r#"{"manifestID":"hooked","presets":["P240p30fps16x9"]}"#.to_string(),
                )
            } else {
                (axum::http::StatusCode::FORBIDDEN, String::new())
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let hook = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    let auth = WebhookAuth::new(
        format!("http://{hook}/auth"),
        Duration::from_secs(5),
        ladder(),
    );
    let h = harness(Arc::new(auth), 2.0, Link::InProcess).await;
    let (allowed, denied) = tokio::join!(
        push(gop2_source(), "flv", h.rtmp_url("live/letmein")),
        push(gop2_source(), "flv", h.rtmp_url("live/keepout")),
    );
    assert!(allowed.success());
    assert!(!denied.success(), "the webhook's 403 refuses");
    h.wait_ended("hooked", 1).await;
    let jobs = h.jobs("hooked").await;
    assert!(!jobs.is_empty());
    let names: Vec<&str> = jobs[0].profiles.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(
        names,
        ["P240p30fps16x9"],
        "the webhook's presets are the ladder"
    );
    assert!(h.jobs("keepout").await.is_empty() && h.jobs("letmein").await.is_empty());
}

/// An endless live publisher (the source looped at real-time pace), killed when dropped.
fn live_publisher(format: &str, url: String) -> tokio::process::Child {
    tokio::process::Command::new("ffmpeg")
        .args(["-hide_banner", "-nostdin", "-v", "error", "-re"])
        .args(["-stream_loop", "-1", "-i"])
        .arg(gop2_source())
        .args(["-c", "copy", "-f", format, &url])
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("ffmpeg must be installed (apt-get install ffmpeg)")
}

impl Harness {
    async fn control(&self, stream_id: &str, action: StreamControlAction) {
        let control = StreamControl {
            stream_id: stream_id.to_owned(),
            action,
        };
        self.bus
            .publish(
                STREAM_CONTROL,
                &serde_json::to_vec(&control).expect("json"),
                &livefarm_bus::Headers::new(),
            )
            .await
            .expect("publish control");
    }

    /// Waits for a live publish of `stream_id` whose segments reach the bus, until it has
    /// `segments` jobs in all (a publish ended before its first segment is never segmented).
    async fn wait_live(&self, stream_id: &str, segments: usize) {
        wait_until(
            Duration::from_secs(30),
            &format!("a live publish of {stream_id} with {segments} segment(s) in all"),
            || async move {
                let jobs = self
                    .bus
                    .range(&livefarm_jobs::jobs_stream(stream_id), None, 10_000)
                    .await
                    .expect("range jobs")
                    .len();
                let live = self.live.sessions.count(stream_id);
                if live == 1 && jobs >= segments {
                    Ok(())
                } else {
                    Err(format!("{live} live, {jobs} segments"))
                }
            },
        )
        .await;
    }
}

/// Waits for a publisher to exit (ingest closed its connection).
async fn wait_exit(child: &mut tokio::process::Child, what: &str) {
    tokio::time::timeout(Duration::from_secs(15), child.wait())
        .await
        .unwrap_or_else(|_| panic!("{what}: the publisher is still connected after 15 s"))
        .expect("wait ffmpeg");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_control_ends_live_publishes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("sqlite://{}", dir.path().join("livefarm.db").display());
    let store = livefarm_store::Store::open(&url, &livefarm_store::StoreOptions::default())
        .await
        .expect("store");
    let tenant = store.create_tenant("t").await.expect("tenant");
    let new = |name: &str| livefarm_store::NewStream {
        name: name.to_owned(),
        ..livefarm_store::NewStream::default()
    };
    let stream = store
        .create_stream(&tenant.id, new("cam"))
        .await
        .expect("stream");
    let other = store
        .create_stream(&tenant.id, new("srt"))
        .await
        .expect("stream");
    let auth = StoreAuth::with_store(store.clone(), ladder(), DEFAULT_CACHE_TTL);
    let h = harness(Arc::new(auth), 2.0, Link::InProcess).await;
    let rtmp = h.rtmp_url(&format!("live/{}", stream.stream_key));

    // terminate: the live RTMP publish ends, its session is closed, and a reconnect is let in
    let mut publisher = live_publisher("flv", rtmp.clone());
    h.wait_live(&stream.id, 1).await;
    h.control(&stream.id, StreamControlAction::Terminate).await;
    wait_exit(&mut publisher, "terminate").await;
    h.wait_ended(&stream.id, 1).await;
    assert_eq!(h.live.sessions.count(&stream.id), 0);
    let first = h.events(&stream.id).await.last().expect("ended").next_seq as usize;
    let mut publisher = live_publisher("flv", rtmp.clone());
    h.wait_live(&stream.id, first + 1).await;

    // suspend (the store first, then the order, as the api does): ended, and refused at once
    let suspend = livefarm_store::StreamPatch {
        suspended: Some(true),
        ..livefarm_store::StreamPatch::default()
    };
    store
        .update_stream(&tenant.id, &stream.id, suspend)
        .await
        .expect("update")
        .expect("suspended");
    h.control(&stream.id, StreamControlAction::Suspend).await;
    wait_exit(&mut publisher, "suspend").await;
    h.wait_ended(&stream.id, 1).await;
    let retry = push(gop2_source(), "flv", rtmp).await;
    assert!(
        !retry.success(),
        "a suspended stream's publish must be refused"
    );
    assert_eq!(h.live.sessions.count(&stream.id), 0);

    // delete (the store first, then the order): a live SRT publish ends too
    let mut srt = live_publisher(
        "mpegts",
        format!("srt://{}?streamid=live/{}", h.srt, other.stream_key),
    );
    h.wait_live(&other.id, 1).await;
    assert!(store
        .delete_stream(&tenant.id, &other.id)
        .await
        .expect("delete"));
    h.control(&other.id, StreamControlAction::Delete).await;
    h.wait_ended(&other.id, 1).await;
    assert_eq!(h.live.sessions.count(&other.id), 0);
    let _ = srt.kill().await;
}
