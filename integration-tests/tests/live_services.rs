//! The live path with every service in its own process on a real Redis (the bus) and the
//! control plane's database (a SQLite file here), as a cluster runs it: a stream is in the
//! database, `livefarm-ingest` takes an RTMP publish of real footage from the ffmpeg CLI at
//! real-time pace and checks its key against the database, `livefarm-segmenter` cuts and
//! enqueues it, `livefarm-transcoder` transcodes, and the api serves HLS that ffprobe plays,
//! ending with `EXT-X-ENDLIST`. An unknown stream key is refused while the good stream plays. HTTP push goes through the
//! same processes. `livefarm-orchestrator` runs beside them; ingest's and the orchestrator's
//! `/metrics` show what happened.
//!
//! Needs `redis-server`, `ffmpeg` and `ffprobe` (apt: redis-server ffmpeg).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use livefarm_integration_tests::service_bin;
use livefarm_store::{NewStream, Store, StoreOptions};
use livefarm_testkit::{
    free_port, http_request, start_redis, wait_until_blocking, RedisServer, ServiceProcess,
};

struct Cluster {
    dir: tempfile::TempDir,
    _redis: RedisServer,
    /// The control plane's database, shared by the api and ingest.
    database_url: String,
    services: Vec<ServiceProcess>,
    api: u16,
    push: u16,
    rtmp: u16,
    /// Admin ports (`/metrics`) of ingest and the orchestrator.
    ingest_admin: u16,
    orchestrator_admin: u16,
}

impl Cluster {
    fn start() -> Cluster {
        let dir = tempfile::tempdir().expect("tempdir");
        let redis = start_redis();
        let objects = dir.path().join("objects");
        std::fs::create_dir_all(&objects).expect("objects");
        let storage = format!("file://{}", objects.display());
        let bus = redis.url();
        let database_url = format!("sqlite://{}", dir.path().join("livefarm.db").display());
        let (api, push, rtmp, segmenter) = (free_port(), free_port(), free_port(), free_port());
        let (orchestrator, ingest_admin, orchestrator_admin) =
            (free_port(), free_port(), free_port());
        let mut cluster = Cluster {
            dir,
            _redis: redis,
            database_url: database_url.clone(),
            services: Vec::new(),
            api,
            push,
            rtmp,
            ingest_admin,
            orchestrator_admin,
        };
        let with_admin = |extra: Vec<String>, admin: u16| {
            let mut sets = vec![format!("bus_url={bus}"), format!("storage_url={storage}")];
            sets.extend(extra);
            sets.push(format!("admin_listen=127.0.0.1:{admin}"));
            sets
        };
        let common = |extra: Vec<String>| with_admin(extra, free_port());
        cluster.spawn(
            "segmenter",
            service_bin(
                "livefarm-segmenter",
                "livefarm-segmenter",
                "LIVEFARM_SEGMENTER_BIN",
            ),
            common(vec![format!("grpc_listen=127.0.0.1:{segmenter}")]),
        );
        cluster.spawn(
            "transcoder",
            service_bin(
                "livefarm-transcoder",
                "livefarm-transcoder",
                "LIVEFARM_TRANSCODER_BIN",
            ),
            common(vec![
                "worker_id=w0".to_string(),
                "accel=cpu".to_string(),
                "x264_preset=ultrafast".to_string(),
                format!("grpc_listen=127.0.0.1:{}", free_port()),
            ]),
        );
        cluster.spawn(
            "ingest",
            service_bin("livefarm-ingest", "livefarm-ingest", "LIVEFARM_INGEST_BIN"),
            with_admin(
                vec![
                    format!("http_listen=127.0.0.1:{push}"),
                    format!("rtmp_listen=127.0.0.1:{rtmp}"),
                    format!("srt_listen=127.0.0.1:{}", free_port()),
                    format!("segmenter_url=http://127.0.0.1:{segmenter}"),
                    "auth.mode=store".to_string(),
                    format!("auth.database_url={database_url}"),
                ],
                ingest_admin,
            ),
        );
        cluster.spawn(
            "orchestrator",
            service_bin(
                "livefarm-orchestrator-service",
                "livefarm-orchestrator",
                "LIVEFARM_ORCHESTRATOR_BIN",
            ),
            with_admin(
                vec![format!("orchestrator.listen=127.0.0.1:{orchestrator}")],
                orchestrator_admin,
            ),
        );
        cluster.spawn(
            "api",
            service_bin("livefarm-api", "livefarm-api", "LIVEFARM_API_BIN"),
            common(vec![
                format!("listen=127.0.0.1:{api}"),
                format!("database_url={database_url}"),
            ]),
        );
        for port in [api, push, rtmp, segmenter, orchestrator, orchestrator_admin] {
            cluster.wait_port(port);
        }
        cluster
    }

    fn spawn(&mut self, name: &'static str, bin: PathBuf, sets: Vec<String>) {
        let service = ServiceProcess::spawn(name, &bin, &sets, self.dir.path(), "info");
        self.services.push(service);
    }

    fn logs(&self) -> String {
        self.services
            .iter()
            .map(|s| s.log_tail(30))
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn wait_port(&mut self, port: u16) {
        wait_until_blocking(
            Duration::from_secs(30),
            &format!("port {port} to open"),
            || {
                if let Some((name, status)) = self
                    .services
                    .iter()
                    .find_map(|s| s.exited().map(|status| (&s.name, status)))
                {
                    panic!("{name} exited with {status}\n{}", self.logs());
                }
                std::net::TcpStream::connect(("127.0.0.1", port))
                    .map_err(|e| format!("{e}\n{}", self.logs()))
            },
        );
    }

    fn http(&self, port: u16, method: &str, path: &str, body: &[u8]) -> (u16, Vec<u8>) {
        self.http_with(
            port,
            method,
            path,
            body,
            &[("Content-Type", "application/json")],
        )
    }

    fn http_with(
        &self,
        port: u16,
        method: &str,
        path: &str,
        body: &[u8],
        headers: &[(&str, &str)],
    ) -> (u16, Vec<u8>) {
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
        let reply = http_request(addr, method, path, headers, body)
            .unwrap_or_else(|error| panic!("{method} {path}: {error}"));
        (reply.status, reply.body)
    }

    fn get_text(&self, path: &str) -> Option<String> {
        let (status, body) = self.http(self.api, "GET", path, b"");
        (status == 200).then(|| String::from_utf8_lossy(&body).to_string())
    }
}

/// The fixture, looped to `seconds`, 2 s GOP, 320x180.
fn source(dir: &Path, seconds: u32) -> PathBuf {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/media/bbb-720p25-5s.mp4");
    let out = dir.join("live.mp4");
    let status = Command::new("ffmpeg")
        .args(["-hide_banner", "-nostdin", "-loglevel", "error", "-y"])
        .args(["-stream_loop", "-1", "-i"])
        .arg(&fixture)
        .args(["-t", &seconds.to_string(), "-vf", "scale=320:180"])
        .args(["-c:v", "libx264", "-preset", "ultrafast", "-g", "50"])
        .args(["-keyint_min", "50", "-sc_threshold", "0", "-c:a", "aac"])
        .arg(&out)
        .status()
        .expect("needs the ffmpeg CLI");
    assert!(status.success());
    out
}

fn publish(source: &Path, url: &str) -> Child {
    Command::new("ffmpeg")
        .args([
            "-hide_banner",
            "-nostdin",
            "-loglevel",
            "error",
            "-re",
            "-i",
        ])
        .arg(source)
        .args(["-c", "copy", "-f", "flv", url])
        .stdin(Stdio::null())
        .spawn()
        .expect("ffmpeg publisher")
}

fn probe_duration(url: &str) -> f64 {
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "format=duration",
            "-of",
            "csv=p=0",
        ])
        .arg(url)
        .output()
        .expect("ffprobe");
    assert!(out.status.success(), "ffprobe cannot play {url}");
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("no duration for {url}"))
}

/// Seconds of real footage published at real-time pace.
const SECONDS: u32 = 30;
const LADDER: [(&str, u32, u32); 3] = [
    ("P144p30fps16x9", 256, 144),
    ("P240p30fps16x9", 426, 240),
    ("P360p30fps16x9", 640, 360),
];

fn probe_size(url: &str) -> (u32, u32) {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0"])
        .args(["-show_entries", "stream=width,height", "-of", "csv=p=0"])
        .arg(url)
        .output()
        .expect("ffprobe");
    let text = String::from_utf8_lossy(&out.stdout);
    let mut fields = text.lines().next().unwrap_or_default().split(',');
    let mut next = || {
        fields
            .next()
            .and_then(|f| f.trim().parse().ok())
            .unwrap_or(0)
    };
    (next(), next())
}

#[test]
fn rtmp_to_hls_across_separate_processes_on_redis() {
    let cluster = Cluster::start();
    // the stream as `POST /api/stream` stores it: Studio's profiles in its spec
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let stream = runtime.block_on(async {
        let store = Store::open(&cluster.database_url, &StoreOptions::default())
            .await
            .expect("open the database");
        let tenant = store.create_tenant("acme").await.expect("tenant");
        let profiles: Vec<serde_json::Value> = LADDER
            .iter()
            .map(|(name, width, height)| {
                serde_json::json!({"name": name, "width": width, "height": height,
                    "bitrate": 400_000, "fps": 30})
            })
            .collect();
        let mut spec = serde_json::Map::new();
        spec.insert("profiles".to_owned(), profiles.into());
        let stream = store
            .create_stream(
                &tenant.id,
                NewStream {
                    name: "multi".to_owned(),
                    record: true,
                    spec,
                    created_by_key_name: None,
                },
            )
            .await
            .expect("stream");
        store.close().await;
        stream
    });
    let key = stream.stream_key.clone();
    let id = stream.id.clone();

    let clip = source(cluster.dir.path(), SECONDS);
    let mut good = publish(
        &clip,
        &format!("rtmp://127.0.0.1:{}/live/{key}", cluster.rtmp),
    );
    // An unknown key is refused (ffmpeg fails) while the good stream goes on: it plays (its
    // master playlist is served) before the intruder comes and still publishes after.
    let master_path = format!("/stream/{id}.m3u8");
    wait_until_blocking(Duration::from_secs(40), "the good stream to play", || {
        cluster.get_text(&master_path).ok_or_else(|| cluster.logs())
    });
    let refused = publish(
        &clip,
        &format!("rtmp://127.0.0.1:{}/live/not-a-key", cluster.rtmp),
    )
    .wait_with_output()
    .expect("refused publisher");
    assert!(!refused.status.success(), "an unknown key must be refused");
    assert!(
        good.try_wait().expect("publisher").is_none(),
        "the good publish ended before the unknown key was refused"
    );

    wait_until_blocking(
        Duration::from_secs(40),
        "the whole ladder in the master playlist",
        || match cluster.get_text(&master_path) {
            Some(master)
                if LADDER.iter().all(|(name, w, h)| {
                    master.contains(name) && master.contains(&format!("RESOLUTION={w}x{h}"))
                }) =>
            {
                Ok(())
            }
            master => Err(format!("{master:?}\n{}", cluster.logs())),
        },
    );
    let status = good.wait().expect("publisher");
    assert!(
        status.success(),
        "the good publish failed\n{}",
        cluster.logs()
    );

    // The publish ended: every playlist ends too and keeps a 6-segment live window, at the
    // right size in every rendition.
    for (name, width, height) in LADDER {
        let media_path = format!("/stream/{id}/{name}.m3u8");
        let media = wait_until_blocking(Duration::from_secs(60), &format!("{name} to end"), || {
            let media = cluster.get_text(&media_path).unwrap_or_default();
            if media.contains("#EXT-X-ENDLIST") {
                Ok(media)
            } else {
                Err(format!("{media}\n{}", cluster.logs()))
            }
        });
        assert!(media.contains("#EXT-X-TARGETDURATION"));
        let url = format!("http://127.0.0.1:{}{media_path}", cluster.api);
        let live = probe_duration(&url);
        assert!(
            (10.0..=13.0).contains(&live),
            "{name}: live window of {live} s"
        );
        assert_eq!(probe_size(&url), (width, height), "{name} size");
    }

    // go-livepeer's HTTP push through the same processes, renditions back in the reply.
    let segment = cluster.dir.path().join("push.ts");
    let status = Command::new("ffmpeg")
        .args(["-hide_banner", "-nostdin", "-loglevel", "error", "-y", "-i"])
        .arg(&clip)
        .args(["-t", "2", "-c", "copy", "-f", "mpegts"])
        .arg(&segment)
        .status()
        .expect("ffmpeg");
    assert!(status.success());
    let bytes = std::fs::read(&segment).expect("segment");
    let (status, reply) = cluster.http_with(
        cluster.push,
        "PUT",
        "/live/pushed/0.ts",
        &bytes,
        &[
            ("Accept", "multipart/mixed"),
            ("Content-Duration", "2000"),
            (
                "Livepeer-Transcode-Configuration",
                r#"{"presets":["P144p30fps16x9"]}"#,
            ),
        ],
    );
    assert_eq!(
        status,
        200,
        "{}\n{}",
        String::from_utf8_lossy(&reply),
        cluster.logs()
    );
    let text = String::from_utf8_lossy(&reply);
    assert!(text.contains("Rendition-Name: P144p30fps16x9"), "{text}");

    // What happened shows in ingest's metrics; the orchestrator serves its own.
    let (status, metrics) = cluster.http(cluster.ingest_admin, "GET", "/metrics", b"");
    assert_eq!(status, 200);
    let metrics = String::from_utf8_lossy(&metrics);
    for line in [
        "livefarm_ingest_publishes_started_total{protocol=\"rtmp\"} 1",
        "livefarm_ingest_publishes_ended_total{protocol=\"rtmp\",outcome=\"ok\"} 1",
        "livefarm_ingest_publishes_refused_total{protocol=\"rtmp\",reason=\"unauthorized\"} 1",
        "livefarm_ingest_push_requests_total{status=\"2xx\"} 1",
        &format!(
            "livefarm_ingest_received_bytes_total{{protocol=\"http_push\"}} {}",
            bytes.len()
        ),
    ] {
        assert!(metrics.contains(line), "{line} missing in\n{metrics}");
    }
    let (status, metrics) = cluster.http(cluster.orchestrator_admin, "GET", "/metrics", b"");
    assert_eq!(status, 200);
    let metrics = String::from_utf8_lossy(&metrics);
    assert!(
        metrics.contains("livefarm_orchestrator_segments_transcoded_total 0"),
        "{metrics}"
    );
}
