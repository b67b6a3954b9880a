//! What a viewer sees of each rendition: size, frame count, keyframes, audio sync, bitrate,
//! clean decoding and picture quality (SSIM against the source), on real footage (the Big Buck
//! Bunny clip) and on synthetic 1080p.

mod common;

use std::path::Path;

use common::*;
use livefarm_profiles::Profile;

/// Checks every rendition of a transcoded clip; returns (name, SSIM, video bits per second).
fn check_ladder(
    dir: &Path,
    source: &Path,
    profiles: &[Profile],
    outputs: &[livefarm_media::SegmentOutput],
    ssim_floor: f64,
) -> Vec<(String, f64, f64)> {
    let source_frames = video_frames(source);
    let source_video = video_stream(source);
    let renditions = write_renditions(dir, outputs);
    assert_eq!(renditions.len(), profiles.len(), "one output per profile");
    let mut figures = Vec::new();
    for (files, profile) in renditions.iter().zip(profiles) {
        let name = &files.name;
        assert_eq!(name, &profile.name);

        // Requested resolution, 8-bit 4:2:0 H.264.
        let video = video_stream(&files.whole);
        assert_eq!(
            (video.width, video.height),
            (profile.width, profile.height),
            "{name}: size"
        );
        assert_eq!(video.codec_name, "h264", "{name}: codec");
        assert_eq!(video.pix_fmt, "yuv420p", "{name}: pixel format");

        // Frame rate passed through: as many frames as the source, every one decodable.
        let frames = video_frames(&files.whole);
        assert_eq!(frames.len(), source_frames.len(), "{name}: frame count");
        let reported: u64 = outputs
            .iter()
            .map(|o| {
                o.renditions
                    .iter()
                    .find(|r| &r.name == name)
                    .expect("rendition")
                    .frames
            })
            .sum();
        assert_eq!(
            reported,
            frames.len() as u64,
            "{name}: frames reported = frames decoded"
        );
        assert!(frames
            .iter()
            .all(|f| (f.width, f.height) == (profile.width, profile.height)));
        assert!(
            frames[0].key && frames[0].pict_type == "I",
            "{name}: first frame {:?}",
            frames[0]
        );

        // Audio present and in sync with the video.
        let audio = audio_stream(&files.whole).unwrap_or_else(|| panic!("{name}: no audio"));
        assert_eq!(audio.codec_name, "aac");
        let (v_start, v_span) = span(&files.whole, "v:0");
        let (a_start, a_span) = span(&files.whole, "a:0");
        let frame = 1.0 / 25.0;
        assert!(
            (a_start - v_start).abs() <= frame + 1e-3,
            "{name}: audio starts at {a_start:.3} s, video at {v_start:.3} s"
        );
        assert!(
            (a_span - v_span).abs() <= 0.1,
            "{name}: audio lasts {a_span:.3} s, video {v_span:.3} s"
        );
        assert!(
            (v_span - source_frames.len() as f64 * frame).abs() < 1e-3,
            "{name}: video lasts {v_span:.3} s for {} frames",
            source_frames.len()
        );

        // Decodes without a single error, segment by segment and as a whole.
        assert_decodes_cleanly(&files.whole);
        for segment in &files.segments {
            assert_decodes_cleanly(segment);
        }

        let quality = ssim(&files.whole, source, profile.width, profile.height);
        let bitrate = video_bitrate(&files.whole, v_span);
        println!(
            "{name}: {}x{} ssim {quality:.4} video {:.0} kbps (target {} kbps)",
            profile.width,
            profile.height,
            bitrate / 1000.0,
            profile.bitrate / 1000
        );
        assert!(
            quality > ssim_floor,
            "{name}: ssim {quality:.4} <= {ssim_floor}"
        );
        figures.push((name.clone(), quality, bitrate));
    }
    assert!(source_video.width > 0);
    figures
}

/// First timestamp and span (seconds) of a stream, from its packets: the last packet lasts as
/// long as its own duration, or the usual step between packets when the container has none.
fn span(path: &Path, selector: &str) -> (f64, f64) {
    let packets = packets(path, selector);
    assert!(
        !packets.is_empty(),
        "{} has no {selector} packets",
        path.display()
    );
    let mut pts: Vec<i64> = packets.iter().filter_map(|p| p.pts).collect();
    pts.sort_unstable();
    let mut steps: Vec<i64> = pts.windows(2).map(|w| w[1] - w[0]).collect();
    steps.sort_unstable();
    let step = steps.get(steps.len() / 2).copied().unwrap_or(0);
    let last = packets
        .iter()
        .filter_map(|p| Some(p.pts? + p.duration.filter(|d| *d > 0).unwrap_or(step)))
        .max()
        .expect("pts");
    (pts[0] as f64 / 90_000.0, (last - pts[0]) as f64 / 90_000.0)
}

#[test]
fn big_buck_bunny_ladder_looks_right_and_hits_its_bitrates() {
    let dir = scratch();
    // Ten seconds of real footage with a keyframe every 2 s, so the segmenter cuts 5 segments.
    let source = dir.path().join("bbb-10s.mp4");
    ffmpeg(&[
        "-stream_loop",
        "1",
        "-i",
        bbb_clip().to_str().expect("utf-8 path"),
        "-t",
        "10",
        "-c:v",
        "libx264",
        "-preset",
        "veryfast",
        "-crf",
        "16",
        "-g",
        "50",
        "-keyint_min",
        "50",
        "-sc_threshold",
        "0",
        "-c:a",
        "aac",
        "-b:a",
        "128k",
        source.to_str().expect("utf-8 path"),
    ]);
    let segments = segments_of(&source, 2.0);
    assert_eq!(
        segments.len(),
        5,
        "10 s with 2 s GOPs cut into 2 s segments"
    );
    let profiles = vec![
        profile("720p0", 1280, 720, 3_000_000),
        profile("480p0", 854, 480, 1_600_000),
    ];
    let mut session = session(profiles.clone());
    let outputs = transcode_all(&mut session, &segments);
    let figures = check_ladder(dir.path(), &source, &profiles, &outputs, 0.90);
    for ((name, _, bitrate), profile) in figures.iter().zip(&profiles) {
        let target = f64::from(profile.bitrate);
        assert!(
            (bitrate - target).abs() <= 0.25 * target,
            "{name}: {:.0} kbps is not within 25% of {:.0} kbps",
            bitrate / 1000.0,
            target / 1000.0
        );
    }
}

#[test]
fn synthetic_1080p_ladder_looks_right() {
    let dir = scratch();
    let source = dir.path().join("src-1080p.ts");
    let data = Synth::new(1920, 1080, "25", 2.0).gop(25).write(&source);
    let profiles = vec![
        profile("720p", 1280, 720, 3_000_000),
        profile("360p", 640, 360, 800_000),
    ];
    let mut session = session(profiles.clone());
    let outputs = transcode_all(&mut session, &[data]);
    assert_eq!(
        (outputs[0].source_width, outputs[0].source_height),
        (1920, 1080)
    );
    check_ladder(dir.path(), &source, &profiles, &outputs, 0.85);
}
