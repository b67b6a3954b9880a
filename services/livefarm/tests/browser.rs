//! Issue 4, test 7: a real browser plays a live ladder. `livefarm up` runs as a user runs it,
//! a stream is created with `livefarm stream create --api`, real footage (Big Buck Bunny,
//! looped) is pushed over go-livepeer's HTTP push path at real-time pace, and headless
//! Chromium with hls.js (driven by playwright-core, `tests/browser/play.cjs`) plays the master
//! playlist past 3 s, switches level, keeps advancing, and leaves a screenshot in
//! `target/test-artifacts/browser-playback.png`.
//!
//! Needs `scripts/install-browser-tools.sh` (Chromium, node, playwright-core and hls.js under
//! `.tools/browser`). Without them the test is skipped loudly, unless
//! `LIVEFARM_REQUIRE_BROWSER` is set (CI), where it fails.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

mod common;

use common::request;
use livefarm_testkit::{free_addr, wait_until_blocking};

/// Segment length the footage is cut into, seconds.
const SEGMENT_SECONDS: u64 = 2;
/// The 5 s clip played 10 times: 50 s of live stream, well past what the browser needs.
const LOOPS: u32 = 10;
/// The rendition ladder besides the source (a 640x360 cut of the footage).
const PROFILES: &str = "P240p30fps16x9,P144p30fps16x9";

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// What the browser side needs, or why it is missing.
struct BrowserTools {
    chromium: PathBuf,
    tools_dir: PathBuf,
}

fn find_browser_tools() -> Result<BrowserTools, String> {
    let chromium = std::env::var_os("LIVEFARM_CHROMIUM")
        .map(PathBuf::from)
        .or_else(|| {
            ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
                .into_iter()
                .map(PathBuf::from)
                .find(|p| p.exists())
        })
        .ok_or("chromium is not installed")?;
    let tools_dir = std::env::var_os("LIVEFARM_BROWSER_TOOLS")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join(".tools/browser"));
    for module in ["playwright-core", "hls.js"] {
        let dir = tools_dir.join("node_modules").join(module);
        if !dir.is_dir() {
            return Err(format!("{} is missing", dir.display()));
        }
    }
    let node = Command::new("node").arg("--version").output();
    if !node.is_ok_and(|o| o.status.success()) {
        return Err("node is not installed".to_owned());
    }
    Ok(BrowserTools {
        chromium,
        tools_dir,
    })
}

/// Where the screenshot is kept for CI to upload.
fn artifacts_dir() -> PathBuf {
    std::env::var_os("LIVEFARM_TEST_ARTIFACTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target/test-artifacts"))
}

/// The fixture looped and cut into 2 s MPEG-TS segments at forced keyframes (the clip itself
/// has a single keyframe), scaled to 640x360 to spare the shared CPUs.
fn cut_footage(dir: &Path) -> Vec<Vec<u8>> {
    let fixture = repo_root().join("fixtures/media/bbb-720p25-5s.mp4");
    assert!(fixture.exists(), "missing {}", fixture.display());
    let gop = (25 * SEGMENT_SECONDS).to_string();
    let status = Command::new("ffmpeg")
        .args(["-hide_banner", "-nostdin", "-v", "error", "-y"])
        .args(["-stream_loop", &(LOOPS - 1).to_string(), "-i"])
        .arg(&fixture)
        .args([
            "-vf",
            "scale=640:360",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
        ])
        .args(["-profile:v", "main", "-pix_fmt", "yuv420p"])
        .args(["-g", &gop, "-keyint_min", &gop, "-sc_threshold", "0"])
        .args(["-c:a", "aac", "-b:a", "96k", "-f", "segment"])
        .args(["-segment_time", &SEGMENT_SECONDS.to_string()])
        .args(["-segment_format", "mpegts", "-reset_timestamps", "0"])
        .arg(dir.join("seg%03d.ts"))
        .status()
        .expect("ffmpeg must be installed (apt-get install ffmpeg)");
    assert!(status.success(), "ffmpeg failed: {status}");
    let mut segments = Vec::new();
    while let Ok(bytes) = std::fs::read(dir.join(format!("seg{:03}.ts", segments.len()))) {
        segments.push(bytes);
    }
    assert!(
        segments.len() >= 20,
        "expected 25 segments, got {}",
        segments.len()
    );
    segments
}

/// Stops `livefarm up` (SIGTERM) when the test ends, however it ends.
struct Up(Child);

impl Drop for Up {
    fn drop(&mut self) {
        // SAFETY: signalling our own child by pid.
        unsafe { libc::kill(self.0.id() as i32, libc::SIGTERM) };
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(20) {
            if self.0.try_wait().ok().flatten().is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_browser_plays_the_live_ladder_and_switches_level() {
    let tools = match find_browser_tools() {
        Ok(tools) => tools,
        Err(missing) if std::env::var_os("LIVEFARM_REQUIRE_BROWSER").is_none() => {
            eprintln!(
                "\n*** SKIPPED browser playback test: {missing}; run scripts/install-browser-tools.sh \
                 (set LIVEFARM_REQUIRE_BROWSER=1 to make this a failure) ***\n"
            );
            return;
        }
        Err(missing) => panic!(
            "LIVEFARM_REQUIRE_BROWSER is set but {missing}; run scripts/install-browser-tools.sh"
        ),
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let segments = cut_footage(dir.path());

    let (push, playback, admin) = (free_addr(), free_addr(), free_addr());
    let up = Command::new(env!("CARGO_BIN_EXE_livefarm"))
        .args(["--set", "media.x264_preset=ultrafast", "up", "--data-dir"])
        .arg(dir.path().join("data"))
        .args(["--push-listen", &push.to_string()])
        .args(["--playback-listen", &playback.to_string()])
        .args(["--admin-listen", &admin.to_string()])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .expect("start livefarm up");
    let _up = Up(up);
    wait_until_blocking(Duration::from_secs(30), "livefarm up to be ready", || {
        request(admin, "GET", "/readyz", "", b"").map(|r| r.0) == Some(200)
    });

    // the stream, created the way a user does it
    let created = Command::new(env!("CARGO_BIN_EXE_livefarm"))
        .args([
            "stream",
            "create",
            "--name",
            "browser",
            "--profiles",
            PROFILES,
        ])
        .args(["--api", &format!("http://{playback}")])
        // the key `livefarm up` wrote to its data directory
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .env_remove("LIVEFARM_API_KEY")
        .output()
        .expect("run livefarm stream create");
    assert!(
        created.status.success(),
        "stream create failed: {}",
        String::from_utf8_lossy(&created.stderr)
    );
    let stream: serde_json::Value =
        serde_json::from_slice(&created.stdout).expect("stream create prints json");
    let stream_id = stream["id"].as_str().expect("id").to_owned();
    let playback_id = stream["playbackId"].as_str().expect("playbackId");
    let master_url = stream["hlsUrl"].as_str().expect("hlsUrl").to_owned();
    assert_eq!(
        master_url,
        format!("http://{playback}/hls/{playback_id}/index.m3u8")
    );
    let ladder = livefarm_profiles::parse_profiles_arg(PROFILES).expect("profiles");
    let transcode_config = format!(
        "Livepeer-Transcode-Configuration: {{\"profiles\":{}}}\r\n",
        livefarm_profiles::to_json_profiles(&ladder)
    );

    // one segment every 2 s, as a live encoder delivers them, until the browser is done
    let stop = Arc::new(AtomicBool::new(false));
    let pusher = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let start = Instant::now();
            for (seq, segment) in segments.iter().enumerate() {
                let due = Duration::from_secs(SEGMENT_SECONDS * seq as u64);
                if let Some(wait) = due.checked_sub(start.elapsed()) {
                    std::thread::sleep(wait);
                }
                if stop.load(Ordering::Relaxed) {
                    return seq;
                }
                let headers = format!(
                    "{transcode_config}Content-Duration: {}\r\nContent-Type: video/mp2t\r\n",
                    SEGMENT_SECONDS * 1000
                );
                let path = format!("/live/{stream_id}/{seq}.ts");
                let (status, body) =
                    request(push, "PUT", &path, &headers, segment).expect("push segment");
                assert_eq!(status, 200, "{path}: {}", String::from_utf8_lossy(&body));
            }
            segments.len()
        })
    };

    // the browser starts once the master lists the source and both renditions
    let master_path = format!("/hls/{playback_id}/index.m3u8");
    wait_until_blocking(
        Duration::from_secs(60),
        "the master playlist to list source + 2 renditions",
        || {
            let master = request(playback, "GET", &master_path, "", b"");
            let variants = master.as_ref().map_or(0, |(status, body)| {
                if *status == 200 {
                    String::from_utf8_lossy(body)
                        .matches("#EXT-X-STREAM-INF")
                        .count()
                } else {
                    0
                }
            });
            if variants >= 3 {
                return Ok(());
            }
            assert!(!pusher.is_finished(), "the pusher ended first: {master:?}");
            Err(format!("{master:?}"))
        },
    );

    let screenshot = artifacts_dir().join("browser-playback.png");
    std::fs::create_dir_all(artifacts_dir()).expect("artifacts dir");
    let _ = std::fs::remove_file(&screenshot);
    let driver = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser/play.cjs");
    let config = serde_json::json!({
        "masterUrl": master_url,
        "toolsDir": tools.tools_dir,
        "chromium": tools.chromium,
        "screenshot": screenshot,
    });
    let output = Command::new("node")
        .arg(&driver)
        .arg(config.to_string())
        .stderr(Stdio::inherit())
        .output()
        .expect("run node");
    stop.store(true, Ordering::Relaxed);
    let pushed = pusher.join().expect("pusher finished");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let report: serde_json::Value = stdout
        .lines()
        .rev()
        .find_map(|line| serde_json::from_str(line).ok())
        .unwrap_or_else(|| panic!("the driver printed no report: {stdout}"));
    let shown = serde_json::to_string_pretty(&report).expect("json");
    eprintln!("browser report ({pushed} segments pushed): {shown}");
    assert_eq!(report["ok"], true, "playback failed: {shown}");
    assert!(output.status.success());

    // the ladder as the player saw it: the source and both renditions. The source variant
    // carries no RESOLUTION yet (the API does not read it from the source's SPS), so its height
    // is 0 to hls.js; the renditions' heights are exact.
    let levels = report["levels"].as_array().expect("levels");
    assert_eq!(levels.len(), 3, "{shown}");
    let mut heights: Vec<u64> = levels
        .iter()
        .filter_map(|l| l["height"].as_u64())
        .filter(|h| *h != 0 && *h != 360)
        .collect();
    heights.sort_unstable();
    assert_eq!(heights, [144, 240], "{shown}");
    // played for real: media time past 3 s, and 3 s of it played in this browser
    let playing = &report["playing"];
    let current = playing["currentTime"].as_f64().expect("currentTime");
    let first = report["firstTime"].as_f64().expect("firstTime");
    assert!(current > 3.0 && current - first > 3.0, "{shown}");
    assert!(playing["frames"].as_u64().expect("frames") > 50, "{shown}");
    // the forced switch happened and the new level's frames are the ones on screen
    let target = report["switchTo"].as_u64().expect("switchTo");
    let target_level = &report["levels"][target as usize];
    assert_ne!(target_level["height"], playing["height"], "{shown}");
    assert!(
        report["switchedLevels"]
            .as_array()
            .expect("switched")
            .iter()
            .any(|l| l.as_u64() == Some(target)),
        "{shown}"
    );
    let after = &report["afterSwitch"];
    let advanced = &report["advanced"];
    assert_eq!(after["height"], target_level["height"], "{shown}");
    assert_eq!(after["width"], target_level["width"], "{shown}");
    assert_eq!(advanced["height"], target_level["height"], "{shown}");
    assert!(
        advanced["currentTime"].as_f64() > after["currentTime"].as_f64().map(|t| t + 1.5),
        "{shown}"
    );
    assert!(
        advanced["frames"].as_u64() > after["frames"].as_u64().map(|f| f + 10),
        "{shown}"
    );
    // a picture, not a blank frame
    assert!(
        report["frameSpread"].as_f64().expect("spread") > 10.0,
        "{shown}"
    );
    let png = std::fs::read(&screenshot).expect("screenshot written");
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "not a png");
    assert!(png.len() > 10_000, "screenshot of {} bytes", png.len());
    eprintln!("screenshot kept at {}", screenshot.display());
}
