//! `livefarm transcode` as a user runs it: a real clip becomes a playable HLS ladder, and
//! mistakes exit non-zero with a message in plain words. Needs the ffmpeg and ffprobe CLIs; a
//! missing one fails the test.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn livefarm(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_livefarm"))
        .args(args)
        .env("RUST_LOG", "warn")
        .env_remove("LIVEFARM_LOG_FORMAT")
        .output()
        .expect("run livefarm")
}

fn tool(name: &str, args: &[&str]) -> Output {
    Command::new(name).args(args).output().unwrap_or_else(|e| {
        panic!(
            "cannot run `{name}` ({e}): this test needs the ffmpeg and ffprobe command-line tools"
        )
    })
}

fn bbb_clip() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/media/bbb-720p25-5s.mp4")
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("utf-8 path")
}

/// Decoded video frames of a playlist or file, counted by ffprobe.
fn frame_count(path: &Path) -> u64 {
    let out = tool(
        "ffprobe",
        &[
            "-v",
            "error",
            "-select_streams",
            "v:0",
            "-count_frames",
            "-show_entries",
            "stream=nb_read_frames",
            "-of",
            "csv=p=0",
            path_str(path),
        ],
    );
    assert!(
        out.status.success(),
        "ffprobe {}: {}",
        path.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    // An HLS input repeats the stream under its program: every line holds the same count.
    let text = String::from_utf8_lossy(&out.stdout);
    let counts: Vec<u64> = text
        .lines()
        .filter_map(|l| l.trim().trim_matches(',').parse().ok())
        .collect();
    assert!(!counts.is_empty(), "no frame count in {text:?}");
    assert!(counts.iter().all(|c| *c == counts[0]), "{text:?}");
    counts[0]
}

#[test]
fn transcodes_the_bbb_clip_into_a_playable_ladder() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out_dir = dir.path().join("ladder");
    let started = std::time::Instant::now();
    let out = livefarm(&[
        "transcode",
        path_str(&bbb_clip()),
        "--out",
        path_str(&out_dir),
        "--profiles",
        "360p0,240p0",
        "--accel",
        "cpu",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "livefarm transcode failed ({}): {stderr}",
        out.status
    );
    println!("transcode took {:.1} s", started.elapsed().as_secs_f64());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("master playlist:"), "{stdout}");

    // The master playlist lists the source and both renditions at their sizes.
    let master_path = out_dir.join("index.m3u8");
    let master = livefarm_hls::parse_master(
        &std::fs::read_to_string(&master_path).expect("master playlist"),
    )
    .expect("master playlist parses");
    let mut found: Vec<(String, Option<(u32, u32)>)> = master
        .variants
        .iter()
        .map(|v| (v.uri.clone(), v.resolution))
        .collect();
    found.sort();
    assert_eq!(
        found,
        vec![
            ("240p0/index.m3u8".to_string(), Some((426, 240))),
            ("360p0/index.m3u8".to_string(), Some((640, 360))),
            ("source/index.m3u8".to_string(), Some((1280, 720))),
        ]
    );
    for variant in &master.variants {
        assert!(variant.bandwidth > 0);
        assert!(
            variant
                .codecs
                .as_deref()
                .is_some_and(|c| c.starts_with("avc1.") && c.contains("mp4a.40.2")),
            "{variant:?}"
        );
        let media_path = out_dir.join(&variant.uri);
        let media = livefarm_hls::parse_media(
            &std::fs::read_to_string(&media_path).expect("media playlist"),
        )
        .expect("media playlist parses");
        assert!(media.ended, "{}: VOD playlist ends", variant.uri);
        assert!(!media.segments.is_empty());
        let total: f64 = media.segments.iter().map(|s| s.duration).sum();
        assert!(
            (total - 5.28).abs() < 0.1,
            "{}: {total:.3} s of segments",
            variant.uri
        );
        for segment in &media.segments {
            let file = media_path.parent().expect("dir").join(&segment.uri);
            assert!(file.is_file(), "{} is missing", file.display());
        }
        // Every frame of the clip is in every rendition.
        assert_eq!(frame_count(&media_path), 132, "{}", variant.uri);
    }

    // Players open it: ffprobe reads the master, ffmpeg decodes its first video without errors.
    let probe = tool("ffprobe", &["-v", "error", path_str(&master_path)]);
    assert!(
        probe.status.success(),
        "ffprobe on the master: {}",
        String::from_utf8_lossy(&probe.stderr)
    );
    let play = tool(
        "ffmpeg",
        &[
            "-hide_banner",
            "-nostdin",
            "-v",
            "error",
            "-i",
            path_str(&master_path),
            "-map",
            "0:v:0",
            "-f",
            "null",
            "-",
        ],
    );
    assert!(
        play.status.success(),
        "ffmpeg on the master: {}",
        String::from_utf8_lossy(&play.stderr)
    );
    assert!(
        play.stderr.is_empty(),
        "decode errors: {}",
        String::from_utf8_lossy(&play.stderr)
    );
}

/// Asserts a failed run: the exit code, one `error:` line in words, no panic or debug dump.
fn assert_fails(out: &Output, code: Option<i32>, words: &[&str]) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "should fail: {stderr}");
    if let Some(code) = code {
        assert_eq!(out.status.code(), Some(code), "exit code; stderr: {stderr}");
    }
    assert!(stderr.contains("error:"), "no error line: {stderr}");
    assert!(
        !stderr.contains("panicked") && !stderr.contains("RUST_BACKTRACE"),
        "{stderr}"
    );
    let lower = stderr.to_lowercase();
    for word in words {
        assert!(
            lower.contains(&word.to_lowercase()),
            "stderr should mention {word:?}: {stderr}"
        );
    }
}

#[test]
fn a_missing_input_is_a_usage_error() {
    let dir = tempfile::tempdir().expect("temp dir");
    let missing = dir.path().join("nope.mp4");
    let out = livefarm(&[
        "transcode",
        path_str(&missing),
        "--out",
        path_str(&dir.path().join("out")),
    ]);
    assert_fails(&out, Some(64), &["nope.mp4", "does not exist"]);
}

#[test]
fn an_unknown_preset_is_a_usage_error() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = livefarm(&[
        "transcode",
        path_str(&bbb_clip()),
        "--out",
        path_str(&dir.path().join("out")),
        "--profiles",
        "P999p99fps",
    ]);
    assert_fails(&out, Some(64), &["--profiles", "P999p99fps"]);
    assert!(
        !dir.path().join("out").join("index.m3u8").exists(),
        "nothing written"
    );
}

#[test]
fn nvidia_without_a_gpu_is_refused() {
    if !livefarm_media::GpuInventory::detect().gpus.is_empty() {
        // The refusal is what a GPU-less machine must do; with a GPU the run may succeed.
        eprintln!("an nvidia gpu is present: the refusal cannot be checked on this machine");
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let out = livefarm(&[
        "transcode",
        path_str(&bbb_clip()),
        "--out",
        path_str(&dir.path().join("out")),
        "--accel",
        "nvidia",
    ]);
    assert_fails(&out, Some(64), &["nvidia", "gpu"]);
}

#[test]
fn an_mp4_profile_is_refused_for_an_hls_ladder() {
    let dir = tempfile::tempdir().expect("temp dir");
    let ladder = dir.path().join("ladder.json");
    std::fs::write(
        &ladder,
        r#"[{"name":"mp4rung","width":320,"height":180,"bitrate":300000,"format":"mp4"}]"#,
    )
    .expect("write ladder");
    let profiles = format!("@{}", path_str(&ladder));
    let out = livefarm(&[
        "transcode",
        path_str(&bbb_clip()),
        "--out",
        path_str(&dir.path().join("out")),
        "--profiles",
        &profiles,
    ]);
    assert_fails(&out, Some(64), &["mp4rung", "mpeg-ts"]);
}
