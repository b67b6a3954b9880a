//! Shared helpers of Livefarm's integration tests: the in-process cluster ([`Sandbox`]) and
//! real media segments. The primitives (`wait_until`, ports, Redis, service processes) are
//! `livefarm-testkit`'s.

use std::path::Path;
use std::process::Command;

mod sandbox;

// Kept here too so the tests' `livefarm_integration_tests::service_bin` calls read as before.
pub use livefarm_testkit::service_bin;
pub use sandbox::{Sandbox, SandboxBuilder};

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
