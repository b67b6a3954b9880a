//! Bad and unusual input: each bad segment fails alone with a typed [`SegmentError`] and the same
//! session transcodes the next good segment; unusual but valid input (resolution or codec
//! changes, 10-bit, 4:2:2, non-AAC audio, no audio, clocks going backwards) plays.

mod common;

use std::path::Path;

use bytes::Bytes;
use common::*;
use livefarm_media::{
    AudioMode, InputFormat, SegmentError, SegmentInput, SegmentOutput, TranscodeSession,
};
use livefarm_profiles::Profile;

fn ladder() -> Vec<Profile> {
    vec![
        profile("small", 320, 180, 300_000),
        profile("tiny", 160, 90, 100_000),
    ]
}

/// `count` good one-second segments with continuous timestamps.
fn good_segments(dir: &Path, count: usize) -> Vec<Bytes> {
    let path = dir.join("good.ts");
    Synth::new(320, 180, "25", count as f64)
        .gop(25)
        .write(&path);
    let segments = segments_of(&path, 1.0);
    assert_eq!(segments.len(), count);
    segments
}

/// Transcodes a good segment and checks every rendition of it plays.
fn assert_good(
    session: &mut TranscodeSession,
    seq: u64,
    data: &Bytes,
    dir: &Path,
) -> SegmentOutput {
    let output = session
        .transcode(input(seq, data.clone()))
        .unwrap_or_else(|e| panic!("good segment {seq} after a bad one failed: {e}"));
    assert_eq!(output.decoded_frames, 25);
    for rendition in &output.renditions {
        assert_eq!(rendition.frames, 25);
        let path = dir.join(format!("{seq}-{}.ts", rendition.name));
        std::fs::write(&path, &rendition.data).expect("write");
        assert_decodes_cleanly(&path);
        assert_eq!(video_frames(&path).len(), 25);
    }
    output
}

fn transcode_err(
    session: &mut TranscodeSession,
    seq: u64,
    data: Bytes,
    format: InputFormat,
) -> SegmentError {
    match session.transcode(SegmentInput { seq, data, format }) {
        Ok(output) => panic!(
            "segment {seq} should fail, got {} frames",
            output.decoded_frames
        ),
        Err(error) => error,
    }
}

/// Deterministic pseudo-random bytes (xorshift64*).
fn noise(len: usize, mut seed: u64) -> Vec<u8> {
    (0..len)
        .map(|_| {
            seed ^= seed >> 12;
            seed ^= seed << 25;
            seed ^= seed >> 27;
            (seed.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 56) as u8
        })
        .collect()
}

/// Writes a rendition to a file and returns its path.
fn save(dir: &Path, name: &str, data: &[u8]) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, data).expect("write");
    path
}

#[test]
fn empty_garbage_and_truncated_segments_fail_alone() {
    let dir = scratch();
    let good = good_segments(dir.path(), 6);
    let mut session = session(ladder());
    assert_good(&mut session, 0, &good[0], dir.path());

    let error = transcode_err(&mut session, 1, Bytes::new(), InputFormat::MpegTs);
    assert_eq!(error, SegmentError::Empty);
    assert_good(&mut session, 2, &good[1], dir.path());

    let garbage = Bytes::from(noise(64 * 1024, 7));
    let error = transcode_err(&mut session, 3, garbage.clone(), InputFormat::Auto);
    assert!(
        matches!(error, SegmentError::Demux(_)),
        "garbage (auto): {error:?}"
    );
    assert_good(&mut session, 4, &good[2], dir.path());

    let error = transcode_err(&mut session, 5, garbage, InputFormat::MpegTs);
    assert!(
        matches!(error, SegmentError::NoVideo | SegmentError::Demux(_)),
        "garbage (ts): {error:?}"
    );
    assert_good(&mut session, 6, &good[3], dir.path());

    // The first half of a segment: fewer frames that still play, or a clean error.
    let half = good[4].slice(..good[4].len() / 2);
    match session.transcode(input(7, half)) {
        Ok(output) => {
            assert!(
                output.decoded_frames > 0 && output.decoded_frames < 25,
                "{} frames",
                output.decoded_frames
            );
            for r in &output.renditions {
                let path = save(dir.path(), &format!("half-{}.ts", r.name), &r.data);
                assert_decodes_cleanly(&path);
                assert_eq!(video_frames(&path).len() as u64, r.frames);
            }
        }
        Err(error) => println!("truncated segment failed cleanly: {error}"),
    }
    assert_good(&mut session, 8, &good[5], dir.path());
}

#[test]
fn segments_without_video_frames_fail_alone() {
    let dir = scratch();
    let good = good_segments(dir.path(), 4);
    let mut session = session(ladder());
    assert_good(&mut session, 0, &good[0], dir.path());

    let audio_only = dir.path().join("audio.ts");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "sine=duration=1",
        "-c:a",
        "aac",
        "-f",
        "mpegts",
        audio_only.to_str().expect("path"),
    ]);
    let error = transcode_err(
        &mut session,
        1,
        Bytes::from(std::fs::read(&audio_only).expect("read")),
        InputFormat::MpegTs,
    );
    assert_eq!(error, SegmentError::NoVideo);
    assert_good(&mut session, 2, &good[1], dir.path());

    // A video stream in the program table but not one video packet.
    let source = dir.path().join("good.ts");
    let no_packets = dir.path().join("no-packets.ts");
    ffmpeg(&[
        "-i",
        source.to_str().expect("path"),
        "-map",
        "0",
        "-c",
        "copy",
        "-bsf:v",
        "filter_units=remove_types=0-31",
        "-f",
        "mpegts",
        no_packets.to_str().expect("path"),
    ]);
    assert_eq!(video_stream(&no_packets).codec_name, "h264");
    let error = transcode_err(
        &mut session,
        3,
        Bytes::from(std::fs::read(&no_packets).expect("read")),
        InputFormat::MpegTs,
    );
    assert_eq!(error, SegmentError::NoFrames);
    assert_good(&mut session, 4, &good[2], dir.path());

    // Video packets that hold no picture (SEI only).
    let sei_only = dir.path().join("sei-only.ts");
    ffmpeg(&[
        "-i",
        source.to_str().expect("path"),
        "-map",
        "0",
        "-c",
        "copy",
        "-bsf:v",
        "filter_units=pass_types=6",
        "-f",
        "mpegts",
        sei_only.to_str().expect("path"),
    ]);
    let error = transcode_err(
        &mut session,
        5,
        Bytes::from(std::fs::read(&sei_only).expect("read")),
        InputFormat::MpegTs,
    );
    assert!(
        matches!(error, SegmentError::NoFrames | SegmentError::Decode(_)),
        "sei only: {error:?}"
    );
    assert_good(&mut session, 6, &good[3], dir.path());
}

#[test]
fn timestamps_going_backwards_keep_the_output_clock_continuous() {
    let dir = scratch();
    let late = Synth::new(320, 180, "25", 1.0)
        .gop(25)
        .extra(&["-output_ts_offset", "10"])
        .write(&dir.path().join("late.ts"));
    let early = Synth::new(320, 180, "25", 1.0)
        .gop(25)
        .write(&dir.path().join("early.ts"));
    let mut session = session(ladder());
    let first = session.transcode(input(0, late)).expect("first segment");
    // The publisher restarted: the clock jumps back 10 s.
    let second = session
        .transcode(input(1, early.clone()))
        .expect("segment after a clock reset");
    assert!(second.discontinuity);
    assert_eq!(second.dropped_frames, 0);
    assert_eq!(
        second.start_pts,
        first.start_pts + 25 * 3600,
        "output clock continues"
    );
    for index in 0..2 {
        let a = save(
            dir.path(),
            &format!("a{index}.ts"),
            &first.renditions[index].data,
        );
        let b = save(
            dir.path(),
            &format!("b{index}.ts"),
            &second.renditions[index].data,
        );
        let last_a = packets(&a, "v:0")
            .iter()
            .filter_map(|p| p.pts)
            .max()
            .expect("pts");
        let first_b = packets(&b, "v:0")
            .iter()
            .filter_map(|p| p.pts)
            .min()
            .expect("pts");
        assert_eq!(
            first_b - last_a,
            3600,
            "rendition {index}: one frame between segments"
        );
        assert_decodes_cleanly(&b);
    }

    // Inside one segment: the second half repeats timestamps already shown.
    let ahead = Synth::new(320, 180, "25", 1.0)
        .gop(25)
        .extra(&["-output_ts_offset", "30"])
        .write(&dir.path().join("ahead.ts"));
    let behind = Synth::new(320, 180, "25", 1.0)
        .gop(25)
        .extra(&["-output_ts_offset", "29.5"])
        .write(&dir.path().join("behind.ts"));
    let mut mixed = ahead.to_vec();
    mixed.extend_from_slice(&behind);
    let third = session
        .transcode(input(2, Bytes::from(mixed)))
        .expect("segment with backwards frames");
    assert!(third.dropped_frames > 0, "backwards frames are dropped");
    assert_eq!(third.decoded_frames + third.dropped_frames, 50);
    for r in &third.renditions {
        let path = save(dir.path(), &format!("mixed-{}.ts", r.name), &r.data);
        assert_decodes_cleanly(&path);
        let pts: Vec<i64> = video_frames(&path).iter().filter_map(|f| f.pts).collect();
        assert_eq!(pts.len() as u64, r.frames);
        assert!(
            pts.windows(2).all(|w| w[1] > w[0]),
            "{}: output pts go forward: {pts:?}",
            r.name
        );
    }
    // And the session still takes an ordinary segment.
    session
        .transcode(input(3, early))
        .expect("good segment after backwards frames");
}

#[test]
fn resolution_change_keeps_rendition_sizes() {
    let dir = scratch();
    let small = Synth::new(640, 360, "25", 1.0)
        .gop(25)
        .write(&dir.path().join("small.ts"));
    let large = Synth::new(1280, 720, "25", 1.0)
        .gop(25)
        .extra(&["-output_ts_offset", "1"])
        .write(&dir.path().join("large.ts"));
    let back = Synth::new(640, 360, "25", 1.0)
        .gop(25)
        .extra(&["-output_ts_offset", "2"])
        .write(&dir.path().join("back.ts"));
    let mut session = session(ladder());
    for (seq, (data, size)) in [(small, (640, 360)), (large, (1280, 720))]
        .into_iter()
        .enumerate()
    {
        let output = session.transcode(input(seq as u64, data)).expect("segment");
        assert_eq!((output.source_width, output.source_height), size);
        assert!(!output.reinitialized, "same codec, no rebuild");
        for r in &output.renditions {
            let path = save(dir.path(), &format!("{seq}-{}.ts", r.name), &r.data);
            let stream = video_stream(&path);
            let want = if r.name == "small" {
                (320, 180)
            } else {
                (160, 90)
            };
            assert_eq!(
                (stream.width, stream.height),
                want,
                "{} keeps its size",
                r.name
            );
            assert_decodes_cleanly(&path);
        }
    }
    // The size changes in the middle of one segment.
    let mixed = {
        let mut bytes = Synth::new(1280, 720, "25", 1.0)
            .gop(25)
            .extra(&["-output_ts_offset", "3"])
            .write(&dir.path().join("l2.ts"))
            .to_vec();
        bytes.extend_from_slice(
            &Synth::new(640, 360, "25", 1.0)
                .gop(25)
                .extra(&["-output_ts_offset", "4"])
                .write(&dir.path().join("s2.ts")),
        );
        Bytes::from(bytes)
    };
    session.transcode(input(2, back)).expect("back to 360p");
    let output = session
        .transcode(input(3, mixed))
        .expect("segment changing size midway");
    assert_eq!(output.decoded_frames, 50);
    for r in &output.renditions {
        let path = save(dir.path(), &format!("mixed-{}.ts", r.name), &r.data);
        let frames = video_frames(&path);
        assert_eq!(frames.len(), 50);
        assert!(
            frames
                .iter()
                .all(|f| (f.width, f.height) == (r.width, r.height)),
            "{}: one size per segment",
            r.name
        );
        assert_decodes_cleanly(&path);
    }
}

#[test]
fn codec_change_rebuilds_the_decoder() {
    let dir = scratch();
    let h264 = Synth::new(320, 180, "25", 1.0)
        .gop(25)
        .write(&dir.path().join("h264.ts"));
    let hevc = Synth::new(320, 180, "25", 1.0)
        .gop(25)
        .video(&[
            "-c:v",
            "libx265",
            "-preset",
            "ultrafast",
            "-x265-params",
            "log-level=error",
            "-pix_fmt",
            "yuv420p",
        ])
        .extra(&["-output_ts_offset", "1"])
        .write(&dir.path().join("hevc.ts"));
    assert_eq!(video_stream(&dir.path().join("hevc.ts")).codec_name, "hevc");
    let h264_again = Synth::new(320, 180, "25", 1.0)
        .gop(25)
        .extra(&["-output_ts_offset", "2"])
        .write(&dir.path().join("h264b.ts"));
    let mut session = session(ladder());
    let first = session.transcode(input(0, h264)).expect("h264");
    assert!(!first.reinitialized);
    let second = session.transcode(input(1, hevc)).expect("hevc");
    assert!(second.reinitialized, "decoder rebuilt for hevc");
    assert_eq!(second.decoded_frames, 25);
    let third = session.transcode(input(2, h264_again)).expect("h264 again");
    assert!(third.reinitialized, "decoder rebuilt for h264");
    for (seq, output) in [second, third].iter().enumerate() {
        for r in &output.renditions {
            let path = save(dir.path(), &format!("{seq}-{}.ts", r.name), &r.data);
            assert_eq!(video_stream(&path).codec_name, "h264");
            assert_eq!(video_frames(&path).len(), 25);
            assert_decodes_cleanly(&path);
        }
    }
}

#[test]
fn unsupported_codecs_are_refused() {
    let dir = scratch();
    let good = good_segments(dir.path(), 2);
    let mpeg4 = Synth::new(320, 180, "25", 1.0)
        .video(&["-c:v", "mpeg4"])
        .write(&dir.path().join("mpeg4.ts"));
    let mjpeg = Synth::new(320, 180, "25", 1.0)
        .video(&["-c:v", "mjpeg", "-pix_fmt", "yuvj420p"])
        .audio(None)
        .muxer("mp4")
        .write(&dir.path().join("mjpeg.mp4"));
    let mut session = session(ladder());
    let error = transcode_err(&mut session, 0, mpeg4, InputFormat::MpegTs);
    assert_eq!(error, SegmentError::UnsupportedCodec("mpeg4".to_string()));
    assert_good(&mut session, 1, &good[0], dir.path());
    let error = transcode_err(&mut session, 2, mjpeg, InputFormat::Mp4);
    assert_eq!(error, SegmentError::UnsupportedCodec("mjpeg".to_string()));
    assert_good(&mut session, 3, &good[1], dir.path());
}

#[test]
fn high_bit_depth_and_422_become_8_bit_420() {
    let dir = scratch();
    let ten_bit = Synth::new(320, 180, "25", 1.0)
        .gop(25)
        .video(&[
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-pix_fmt",
            "yuv420p10le",
        ])
        .write(&dir.path().join("10bit.ts"));
    let four_two_two = Synth::new(320, 180, "25", 1.0)
        .gop(25)
        .video(&[
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-pix_fmt",
            "yuv422p",
        ])
        .extra(&["-output_ts_offset", "1"])
        .write(&dir.path().join("422.ts"));
    assert_eq!(
        video_stream(&dir.path().join("10bit.ts")).pix_fmt,
        "yuv420p10le"
    );
    assert_eq!(video_stream(&dir.path().join("422.ts")).pix_fmt, "yuv422p");
    let mut session = session(ladder());
    for (seq, data) in [ten_bit, four_two_two].into_iter().enumerate() {
        let output = session.transcode(input(seq as u64, data)).expect("segment");
        for r in &output.renditions {
            let path = save(dir.path(), &format!("{seq}-{}.ts", r.name), &r.data);
            let stream = video_stream(&path);
            assert_eq!(stream.pix_fmt, "yuv420p", "{}: 8-bit 4:2:0", r.name);
            assert!(
                !stream.profile.contains("10") && !stream.profile.contains("4:2:2"),
                "{}",
                stream.profile
            );
            assert_eq!(video_frames(&path).len(), 25);
            assert_decodes_cleanly(&path);
        }
    }
}

#[test]
fn non_aac_audio_is_transcoded_and_silent_streams_work() {
    let dir = scratch();
    let mp3 = Synth::new(320, 180, "25", 2.0)
        .gop(25)
        .audio(Some(&["-c:a", "libmp3lame", "-b:a", "96k"]))
        .write(&dir.path().join("mp3.ts"));
    let ac3 = Synth::new(320, 180, "25", 2.0)
        .gop(25)
        .audio(Some(&["-c:a", "ac3", "-b:a", "96k"]))
        .extra(&["-output_ts_offset", "2"])
        .write(&dir.path().join("ac3.ts"));
    let silent = Synth::new(320, 180, "25", 2.0)
        .gop(25)
        .audio(None)
        .extra(&["-output_ts_offset", "4"])
        .write(&dir.path().join("silent.ts"));
    let mut session = session(ladder());
    for (seq, (data, codec)) in [(mp3, "mp3"), (ac3, "ac3")].into_iter().enumerate() {
        let output = session.transcode(input(seq as u64, data)).expect("segment");
        assert_eq!(output.audio, AudioMode::Transcoded, "{codec}");
        for r in &output.renditions {
            let path = save(dir.path(), &format!("{codec}-{}.ts", r.name), &r.data);
            let audio = audio_stream(&path).unwrap_or_else(|| panic!("{codec}: audio kept"));
            assert_eq!(audio.codec_name, "aac", "{codec} becomes aac");
            assert!(r.codecs.ends_with(",mp4a.40.2"), "{}", r.codecs);
            let audio_packets = packets(&path, "a:0");
            let audio_seconds = audio_packets
                .iter()
                .map(|p| p.duration.unwrap_or(0))
                .sum::<i64>() as f64
                / 90_000.0;
            println!("{codec} -> aac: {audio_seconds:.3} s of audio for 2 s of video");
            assert!(
                audio_seconds > 1.5,
                "{codec}: only {audio_seconds:.3} s of audio"
            );
            assert_decodes_cleanly(&path);
        }
    }
    let output = session
        .transcode(input(2, silent))
        .expect("segment without audio");
    assert_eq!(output.audio, AudioMode::None);
    for r in &output.renditions {
        let path = save(dir.path(), &format!("silent-{}.ts", r.name), &r.data);
        assert!(audio_stream(&path).is_none());
        assert!(!r.codecs.contains("mp4a"));
        assert_eq!(video_frames(&path).len(), 50);
        assert_decodes_cleanly(&path);
    }
}

#[test]
fn a_session_fed_garbage_does_not_disturb_another() {
    let dir = scratch();
    let good = good_segments(dir.path(), 4);
    // Reference: the good stream alone.
    let mut alone = session(ladder());
    let reference: Vec<Vec<Vec<u8>>> = transcode_all(&mut alone, &good)
        .into_iter()
        .map(|o| o.renditions.into_iter().map(|r| r.data).collect())
        .collect();
    drop(alone);

    let bad = std::thread::spawn(move || {
        let mut session = session(ladder());
        for seq in 0..40u64 {
            let data = Bytes::from(noise(4096 + seq as usize * 997, seq + 1));
            assert!(session.transcode(input(seq, data)).is_err());
        }
    });
    let good_thread = std::thread::spawn(move || {
        let mut session = session(ladder());
        transcode_all(&mut session, &good)
            .into_iter()
            .map(|o| o.renditions.into_iter().map(|r| r.data).collect::<Vec<_>>())
            .collect::<Vec<_>>()
    });
    bad.join().expect("garbage session thread");
    let outputs = good_thread.join().expect("good session thread");
    assert_eq!(outputs.len(), reference.len());
    for (seq, (got, want)) in outputs.iter().zip(&reference).enumerate() {
        for (index, (g, w)) in got.iter().zip(want).enumerate() {
            let path = save(dir.path(), &format!("{seq}-{index}.ts"), g);
            assert_decodes_cleanly(&path);
            assert_eq!(video_frames(&path).len(), 25);
            // x264's frame-threaded rate control is not bit-exact run to run: compare sizes.
            let ratio = g.len() as f64 / w.len() as f64;
            assert!(
                (0.9..1.1).contains(&ratio),
                "segment {seq} rendition {index}: {} bytes, {} alone",
                g.len(),
                w.len()
            );
        }
    }
}
