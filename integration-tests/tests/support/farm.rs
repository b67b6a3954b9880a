//! A live farm in separate processes on a real Redis, for the observability tests: the segmenter,
//! ingest (RTMP, any key let in, one small rendition), `workers` transcoders and the api, each
//! with its admin port (`/metrics`), and ffmpeg publishers of real footage at real-time pace.
//! Shared by `observability.rs` and `traces.rs` (`#[path]` module: Cargo builds no test of it).
//!
//! Needs `redis-server` and the ffmpeg CLI (apt: redis-server ffmpeg).

// Each test file uses a part of it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use livefarm_integration_tests::service_bin;
use livefarm_testkit::{free_port, start_redis, wait_until_blocking, RedisServer, ServiceProcess};

/// The rendition every segment is transcoded to: the smallest preset, so several streams fit
/// on a CI machine.
pub const PRESET: &str = "P144p30fps16x9";

pub struct FarmOptions {
    pub workers: usize,
    /// Sessions each worker takes.
    pub max_sessions: u32,
    /// A worker lets a stream go after this long without a segment.
    pub session_idle_ms: u64,
    /// Where every service exports its spans (OTLP/gRPC), if anywhere.
    pub otlp_endpoint: Option<String>,
}

/// One service process and what it is, for scrape targets.
pub struct Member {
    /// `ingest`, `segmenter`, `transcoder`, `api`: the chart's component name.
    pub component: &'static str,
    pub admin: u16,
    pub process: ServiceProcess,
}

pub struct Farm {
    pub dir: tempfile::TempDir,
    _redis: RedisServer,
    pub members: Vec<Member>,
    pub rtmp: u16,
    pub api: u16,
    /// The Redis the farm runs on.
    pub bus_url: String,
}

impl Farm {
    pub fn start(options: &FarmOptions) -> Farm {
        let dir = tempfile::tempdir().expect("tempdir");
        let redis = start_redis();
        let objects = dir.path().join("objects");
        std::fs::create_dir_all(&objects).expect("objects");
        let storage = format!("file://{}", objects.display());
        let bus = redis.url();
        let database_url = format!("sqlite://{}", dir.path().join("livefarm.db").display());
        let (api, rtmp, segmenter) = (free_port(), free_port(), free_port());
        let mut farm = Farm {
            dir,
            _redis: redis,
            members: Vec::new(),
            rtmp,
            api,
            bus_url: bus.clone(),
        };
        let common = |name: &str, extra: Vec<String>| {
            let mut sets = vec![format!("bus_url={bus}"), format!("storage_url={storage}")];
            sets.extend(extra);
            if let Some(endpoint) = &options.otlp_endpoint {
                sets.push(format!("telemetry.otlp_endpoint={endpoint}"));
                sets.push(format!("telemetry.service_name={name}"));
            }
            sets
        };
        farm.spawn(
            "segmenter",
            "segmenter",
            service_bin(
                "livefarm-segmenter",
                "livefarm-segmenter",
                "LIVEFARM_SEGMENTER_BIN",
            ),
            common(
                "segmenter",
                vec![format!("grpc_listen=127.0.0.1:{segmenter}")],
            ),
        );
        for i in 0..options.workers {
            let name = format!("transcoder-{i}");
            let sets = common(
                &name,
                vec![
                    format!("worker_id=w{i}"),
                    "accel=cpu".to_string(),
                    "x264_preset=ultrafast".to_string(),
                    format!("max_sessions={}", options.max_sessions),
                    format!("session_idle_ms={}", options.session_idle_ms),
                    format!("grpc_listen=127.0.0.1:{}", free_port()),
                ],
            );
            farm.spawn(
                "transcoder",
                &name,
                service_bin(
                    "livefarm-transcoder",
                    "livefarm-transcoder",
                    "LIVEFARM_TRANSCODER_BIN",
                ),
                sets,
            );
        }
        farm.spawn(
            "ingest",
            "ingest",
            service_bin("livefarm-ingest", "livefarm-ingest", "LIVEFARM_INGEST_BIN"),
            common(
                "ingest",
                vec![
                    format!("http_listen=127.0.0.1:{}", free_port()),
                    format!("rtmp_listen=127.0.0.1:{rtmp}"),
                    format!("srt_listen=127.0.0.1:{}", free_port()),
                    format!("segmenter_url=http://127.0.0.1:{segmenter}"),
                    "auth.mode=allow_any".to_string(),
                    format!("auth.default_presets=[\"{PRESET}\"]"),
                ],
            ),
        );
        farm.spawn(
            "api",
            "api",
            service_bin("livefarm-api", "livefarm-api", "LIVEFARM_API_BIN"),
            common(
                "api",
                vec![
                    format!("listen=127.0.0.1:{api}"),
                    format!("database_url={database_url}"),
                ],
            ),
        );
        let admins: Vec<u16> = farm.members.iter().map(|m| m.admin).collect();
        for port in admins.into_iter().chain([api, rtmp, segmenter]) {
            farm.wait_port(port);
        }
        farm
    }

    fn spawn(&mut self, component: &'static str, name: &str, bin: PathBuf, mut sets: Vec<String>) {
        let admin = free_port();
        sets.push(format!("admin_listen=127.0.0.1:{admin}"));
        let process = ServiceProcess::spawn(name, &bin, &sets, self.dir.path(), "info");
        self.members.push(Member {
            component,
            admin,
            process,
        });
    }

    pub fn logs(&self) -> String {
        self.members
            .iter()
            .map(|m| m.process.log_tail(30))
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn wait_port(&self, port: u16) {
        wait_until_blocking(
            Duration::from_secs(30),
            &format!("port {port} to open"),
            || {
                if let Some((name, status)) = self
                    .members
                    .iter()
                    .find_map(|m| m.process.exited().map(|status| (&m.process.name, status)))
                {
                    panic!("{name} exited with {status}\n{}", self.logs());
                }
                std::net::TcpStream::connect(("127.0.0.1", port))
                    .map_err(|e| format!("{e}\n{}", self.logs()))
            },
        );
    }

    /// Publishes `clip` over RTMP as stream `stream_id` at real-time pace: once, or looped
    /// until the publisher is killed.
    pub fn publish(&self, clip: &Path, stream_id: &str, looped: bool) -> Publisher {
        let mut cmd = Command::new("ffmpeg");
        cmd.args(["-hide_banner", "-nostdin", "-loglevel", "error", "-re"]);
        if looped {
            cmd.args(["-stream_loop", "-1"]);
        }
        let child = cmd
            .arg("-i")
            .arg(clip)
            .args(["-c", "copy", "-f", "flv"])
            .arg(format!("rtmp://127.0.0.1:{}/live/{stream_id}", self.rtmp))
            .stdin(Stdio::null())
            .spawn()
            .expect("the ffmpeg CLI publishes");
        Publisher(child)
    }
}

/// An ffmpeg publisher, killed when dropped (its RTMP connection closes: the publish ends).
pub struct Publisher(pub Child);

impl Publisher {
    /// Waits for a publish of a clip that is not looped to end.
    pub fn wait(mut self) -> std::process::ExitStatus {
        self.0.wait().expect("publisher")
    }
}

impl Drop for Publisher {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The bundled footage cut to `seconds`, 320x180, a keyframe every 2 s, AAC audio.
pub fn clip(dir: &Path, seconds: u32) -> PathBuf {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/media/bbb-720p25-5s.mp4");
    let out = dir.join(format!("clip-{seconds}s.mp4"));
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
    assert!(status.success(), "ffmpeg failed: {status}");
    out
}

/// The workspace root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("integration-tests lives in the workspace")
        .to_path_buf()
}

/// A tool from `.tools/<dir>/bin` (what the install scripts put there), else from `PATH`.
pub fn tool(dir: &str, name: &str) -> Option<PathBuf> {
    let local = repo().join(".tools").join(dir).join("bin").join(name);
    if local.is_file() {
        return Some(local);
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join(name))
            .find(|p| p.is_file())
    })
}
