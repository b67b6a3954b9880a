//! `livefarm up` as a user runs it: the real binary, segments pushed over HTTP with go-livepeer's
//! push contract or a live stream published over RTMP by ffmpeg, the ladder played back over
//! HLS with ffprobe, and a clean stop on SIGTERM. The first start makes an API key, prints it
//! and keeps it in `<data-dir>/api-key`; later starts print the same one.

use std::io::BufRead;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

mod common;

use common::request;
use livefarm_store::{Store, StoreOptions};
use livefarm_testkit::{free_addr, wait_until_blocking};
use serde_json::Value;

#[test]
fn up_takes_http_push_and_plays_hls() {
    let dir = tempfile::tempdir().expect("tempdir");
    let made = Command::new("ffmpeg")
        .args([
            "-hide_banner",
            "-nostdin",
            "-v",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
        ])
        .arg("testsrc2=size=320x180:rate=25:duration=4")
        .args([
            "-f",
            "lavfi",
            "-i",
            "sine=duration=4",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
        ])
        .args([
            "-g",
            "50",
            "-c:a",
            "aac",
            "-shortest",
            "-f",
            "segment",
            "-segment_time",
            "2",
        ])
        .args(["-reset_timestamps", "0"])
        .arg(dir.path().join("seg%d.ts"))
        .status()
        .expect("ffmpeg must be installed (apt-get install ffmpeg)");
    assert!(made.success());

    let (push, playback, admin) = (free_addr(), free_addr(), free_addr());
    let child = Command::new(env!("CARGO_BIN_EXE_livefarm"))
        .args(["--set", "media.x264_preset=ultrafast", "up", "--data-dir"])
        .arg(dir.path().join("data"))
        .args([
            "--push-listen",
            &push.to_string(),
            "--playback-listen",
            &playback.to_string(),
        ])
        .args(["--admin-listen", &admin.to_string()])
        .args(["--rtmp-listen", &free_addr().to_string()])
        .args(["--srt-listen", &free_addr().to_string()])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .expect("start livefarm up");

    let child = Up(Some(child));
    wait_ready(admin);
    let config = "Livepeer-Transcode-Configuration: {\"profiles\":[{\"name\":\"90p\",\"width\":160,\"height\":90,\"bitrate\":100000}]}\r\n";
    for seq in 0..2 {
        let segment = std::fs::read(dir.path().join(format!("seg{seq}.ts"))).expect("segment");
        let (status, body) = request(
            push,
            "PUT",
            &format!("/live/uptest/{seq}.ts"),
            config,
            &segment,
        )
        .expect("push");
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    }
    // Results reach playback through the bus; give it a moment.
    let master = format!("http://{playback}/stream/uptest.m3u8");
    wait_until_blocking(
        Duration::from_secs(20),
        "the playlist to list both segments",
        || {
            let media = request(playback, "GET", "/stream/uptest/90p.m3u8", "", b"");
            if media.as_ref().is_some_and(|(s, body)| {
                *s == 200 && String::from_utf8_lossy(body).matches("#EXTINF").count() == 2
            }) {
                Ok(())
            } else {
                Err(format!("{media:?}"))
            }
        },
    );
    let probe = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "stream=width,height",
            "-of",
            "csv=p=0",
            &master,
        ])
        .output()
        .expect("ffprobe");
    assert!(
        probe.status.success(),
        "{}",
        String::from_utf8_lossy(&probe.stderr)
    );
    assert!(
        String::from_utf8_lossy(&probe.stdout).contains("160,90"),
        "the 90p rendition plays"
    );

    // SIGTERM: every service drains and the process exits 0.
    stop(child);
}

fn wait_ready(admin: SocketAddr) {
    wait_until_blocking(Duration::from_secs(30), "livefarm up to be ready", || {
        request(admin, "GET", "/readyz", "", b"").map(|r| r.0) == Some(200)
    });
}

/// Kills `livefarm up` if the test fails before stopping it, so no server outlives the test.
struct Up(Option<std::process::Child>);

impl Drop for Up {
    fn drop(&mut self) {
        if let Some(child) = self.0.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn stop(mut up: Up) {
    let mut child = up.0.take().expect("running");
    // SAFETY: signalling our own child by pid.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let status = wait_until_blocking(
        Duration::from_secs(40),
        "livefarm up to stop on SIGTERM",
        || child.try_wait().expect("wait"),
    );
    assert!(status.success(), "exit status {status:?}");
}

#[test]
fn up_takes_an_rtmp_publish_and_lists_the_renditions() {
    let dir = tempfile::tempdir().expect("tempdir");
    let source = dir.path().join("live.mp4");
    let made = Command::new("ffmpeg")
        .args(["-hide_banner", "-nostdin", "-v", "error", "-y"])
        .args([
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=320x180:rate=25:duration=6",
        ])
        .args(["-f", "lavfi", "-i", "sine=duration=6"])
        .args(["-c:v", "libx264", "-preset", "ultrafast", "-g", "25"])
        .args(["-c:a", "aac", "-shortest"])
        .arg(&source)
        .status()
        .expect("ffmpeg must be installed (apt-get install ffmpeg)");
    assert!(made.success());

    let (rtmp, playback, admin) = (free_addr(), free_addr(), free_addr());
    let child = Up(Some(
        Command::new(env!("CARGO_BIN_EXE_livefarm"))
            .args(["--set", "media.x264_preset=ultrafast", "up", "--data-dir"])
            .arg(dir.path().join("data"))
            .args(["--push-listen", &free_addr().to_string()])
            .args(["--playback-listen", &playback.to_string()])
            .args(["--admin-listen", &admin.to_string()])
            .args(["--rtmp-listen", &rtmp.to_string()])
            .args(["--srt-listen", &free_addr().to_string()])
            .args(["--live-presets", "P144p30fps16x9"])
            .args(["--orchestrator-listen", &free_addr().to_string()])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .expect("start livefarm up"),
    ));
    wait_ready(admin);
    // the demo stream is in the database: its key publishes, with its ladder; others do not
    let demo = demo_stream(&dir.path().join("data"));
    let key = demo["streamKey"].as_str().expect("streamKey");
    let id = demo["id"].as_str().expect("id");
    let refused = Command::new("ffmpeg")
        .args(["-hide_banner", "-nostdin", "-v", "error", "-re", "-i"])
        .arg(&source)
        .args(["-t", "1", "-c", "copy", "-f", "flv"])
        .arg(format!("rtmp://{rtmp}/live/not-a-key"))
        .status()
        .expect("ffmpeg");
    assert!(!refused.success(), "an unknown key must be refused");

    let pushed = Command::new("ffmpeg")
        .args(["-hide_banner", "-nostdin", "-v", "error", "-re", "-i"])
        .arg(&source)
        .args(["-c", "copy", "-f", "flv"])
        .arg(format!("rtmp://{rtmp}/live/{key}"))
        .status()
        .expect("ffmpeg");
    assert!(pushed.success(), "ffmpeg rtmp push failed");

    // 6 s cut at the 2 s target: three segments, each through the worker.
    let master = wait_until_blocking(
        Duration::from_secs(60),
        "the rendition to list the stream's segments",
        || {
            let master = request(playback, "GET", &format!("/stream/{id}.m3u8"), "", b"");
            let media = request(
                playback,
                "GET",
                &format!("/stream/{id}/P144p30fps16x9.m3u8"),
                "",
                b"",
            );
            let listed = media.as_ref().map_or(0, |(s, body)| {
                if *s == 200 {
                    String::from_utf8_lossy(body).matches("#EXTINF").count()
                } else {
                    0
                }
            });
            if listed >= 3 {
                Ok(master.expect("master").1)
            } else {
                Err(format!("{media:?}"))
            }
        },
    );
    let master = String::from_utf8_lossy(&master).to_string();
    assert!(master.contains("RESOLUTION=256x144"), "{master}");
    assert!(master.contains("P144p30fps16x9"), "{master}");
    let probe = Command::new("ffprobe")
        .args(["-v", "error", "-show_entries", "stream=width,height"])
        .args(["-of", "csv=p=0"])
        .arg(format!("http://{playback}/stream/{id}.m3u8"))
        .output()
        .expect("ffprobe");
    assert!(
        probe.status.success(),
        "{}",
        String::from_utf8_lossy(&probe.stderr)
    );
    assert!(String::from_utf8_lossy(&probe.stdout).contains("256,144"));
    stop(child);
}

fn demo_stream(data: &Path) -> Value {
    let text = std::fs::read(data.join("demo-stream.json")).expect("demo-stream.json");
    serde_json::from_slice(&text).expect("demo stream json")
}

/// Starts `livefarm up` on `data` and returns it with the key its banner printed and its api
/// address.
fn start_with_banner(data: &Path) -> (Up, String, SocketAddr) {
    let (admin, playback) = (free_addr(), free_addr());
    let mut child = Command::new(env!("CARGO_BIN_EXE_livefarm"))
        .args(["up", "--data-dir"])
        .arg(data)
        .args(["--push-listen", &free_addr().to_string()])
        .args(["--playback-listen", &playback.to_string()])
        .args(["--admin-listen", &admin.to_string()])
        .args(["--rtmp-listen", &free_addr().to_string()])
        .args(["--srt-listen", &free_addr().to_string()])
        .arg("--no-orchestrator")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .expect("start livefarm up");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { return };
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    let up = Up(Some(child));
    let key = wait_until_blocking(Duration::from_secs(30), "the banner's API key", || {
        while let Ok(line) = rx.try_recv() {
            if let Some(rest) = line.trim().strip_prefix("API key: ") {
                return Some(rest.split_whitespace().next().expect("a key").to_owned());
            }
        }
        None
    });
    wait_ready(admin);
    (up, key, playback)
}

#[test]
fn up_makes_an_api_key_once_and_keeps_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let (up, key, playback) = start_with_banner(&data);
    let path = data.join("api-key");
    assert_eq!(std::fs::read_to_string(&path).expect("api-key"), key);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).expect("stat").permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "the key file is the owner's alone");
    }
    let demo = demo_stream(&data);
    for field in ["id", "name", "streamKey", "playbackId"] {
        assert!(demo[field].is_string(), "{field} in {demo}");
    }
    // the key is a real key of the database, and the demo stream belongs to its tenant
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let url = format!("sqlite://{}", data.join("livefarm.db").display());
    runtime.block_on(async {
        let store = Store::open(&url, &StoreOptions::default())
            .await
            .expect("open the database");
        let caller = store
            .authenticate(&key)
            .await
            .expect("authenticate")
            .expect("the printed key authenticates");
        let stream = store
            .stream(&caller.tenant_id, demo["id"].as_str().expect("id"))
            .await
            .expect("lookup")
            .expect("the demo stream is the key's tenant's");
        assert_eq!(stream.stream_key, demo["streamKey"].as_str().expect("key"));
        store.close().await;
    });
    // the CLI finds the key in the data directory with no key flag
    let created = Command::new(env!("CARGO_BIN_EXE_livefarm"))
        .args(["stream", "create", "--name", "cli"])
        .args(["--api", &format!("http://{playback}"), "--data-dir"])
        .arg(&data)
        .env_remove("LIVEFARM_API_KEY")
        .output()
        .expect("run livefarm stream create");
    assert!(
        created.status.success(),
        "stream create failed: {}",
        String::from_utf8_lossy(&created.stderr)
    );
    let created: Value = serde_json::from_slice(&created.stdout).expect("stream json");
    assert!(created["streamKey"].is_string(), "{created}");
    stop(up);

    // a restart prints the same key and keeps the demo stream
    let (up, again, _) = start_with_banner(&data);
    assert_eq!(again, key);
    assert_eq!(demo_stream(&data)["id"], demo["id"]);
    stop(up);

    // with the file gone, a new key is made and written
    std::fs::remove_file(&path).expect("remove api-key");
    let (up, fresh, _) = start_with_banner(&data);
    assert_ne!(fresh, key);
    assert_eq!(std::fs::read_to_string(&path).expect("api-key"), fresh);
    stop(up);
}
