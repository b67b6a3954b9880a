//! Shared helpers for Livefarm's multi-process integration tests.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A service binary of this workspace: taken from the environment variable `env_override`
/// when set; with `LIVEFARM_PREBUILT_BINS` set (scripts/test.sh, after `cargo test
/// --workspace` built every service binary with the workspace's unified features), the one
/// next to the running test; otherwise built by cargo there first (same target directory and
/// profile; cargo has released its build lock while tests run).
pub fn service_bin(package: &str, bin: &str, env_override: &str) -> PathBuf {
    if let Some(path) = std::env::var_os(env_override) {
        return PathBuf::from(path);
    }
    let exe = std::env::current_exe().expect("test executable path");
    // target/<profile>/deps/<test> -> target/<profile>
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("test executable lives in target/<profile>/deps")
        .to_path_buf();
    let prebuilt = profile_dir.join(bin);
    if std::env::var_os("LIVEFARM_PREBUILT_BINS").is_some() {
        assert!(
            prebuilt.exists(),
            "{} missing: LIVEFARM_PREBUILT_BINS expects `cargo test --workspace` to build it",
            prebuilt.display()
        );
        return prebuilt;
    }
    let target_dir = profile_dir.parent().expect("target dir").to_path_buf();
    let profile = profile_dir
        .file_name()
        .and_then(|n| n.to_str())
        .expect("profile dir name")
        .to_owned();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let mut cmd = Command::new(cargo);
    cmd.args(["build", "--quiet", "-p", package, "--bin", bin])
        .env("CARGO_TARGET_DIR", &target_dir)
        .current_dir(env!("CARGO_MANIFEST_DIR"));
    match profile.as_str() {
        "debug" => {}
        "release" => {
            cmd.arg("--release");
        }
        other => {
            cmd.args(["--profile", other]);
        }
    }
    let status = cmd
        .status()
        .unwrap_or_else(|e| panic!("cannot run cargo to build {bin}: {e}"));
    assert!(status.success(), "building {bin} failed: {status}");
    let path = profile_dir.join(bin);
    assert!(path.exists(), "{} missing after build", path.display());
    path
}

/// Real 2 s MPEG-TS segments: the bundled clip looped to `seconds`, 320x180, a keyframe every
/// 2 s, AAC audio, cut by Livefarm's segmenter. Needs the ffmpeg CLI.
pub fn fixture_segments(seconds: u32) -> Vec<bytes::Bytes> {
    let dir = tempfile::tempdir().expect("tempdir");
    let clip = dir.path().join("clip.mp4");
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/media/bbb-720p25-5s.mp4");
    let status = Command::new("ffmpeg")
        .args(["-y", "-loglevel", "error", "-stream_loop", "-1", "-i"])
        .arg(&fixture)
        .args([
            "-t",
            &seconds.to_string(),
            "-vf",
            "scale=320:180",
            "-c:v",
            "libx264",
        ])
        .args(["-preset", "ultrafast", "-g", "50", "-keyint_min", "50"])
        .args(["-sc_threshold", "0", "-c:a", "aac", "-b:a", "48k"])
        .arg(&clip)
        .status()
        .expect("this test needs the ffmpeg CLI (apt-get install ffmpeg)");
    assert!(status.success(), "ffmpeg failed: {status}");
    let mut segmenter =
        livefarm_media::segmenter::Segmenter::open_file(&clip, 2.0).expect("open clip");
    let mut out = Vec::new();
    while let Some(segment) = segmenter.next_segment() {
        out.push(segment.expect("segment").data);
    }
    out
}
