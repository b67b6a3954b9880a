//! Arbitrary bytes as one segment of a long-lived session: the session must never panic, and
//! whatever it returns must be self-consistent. The first byte picks the container hint.

#![no_main]

use std::cell::RefCell;

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use livefarm_media::{EncoderSettings, InputFormat, SegmentInput, SessionConfig, TranscodeSession};
use livefarm_profiles::Profile;

thread_local! {
    // One session for the whole run, as a worker keeps one per stream: state carried from one
    // input to the next (decoder, clocks, audio encoder) is part of what is fuzzed.
    static SESSION: RefCell<(TranscodeSession, u64)> = RefCell::new((new_session(), 0));
}

fn new_session() -> TranscodeSession {
    livefarm_media::init().expect("ffmpeg initialises");
    let config = SessionConfig {
        profiles: vec![Profile::new("tiny", 64, 36, 100_000)],
        settings: EncoderSettings {
            x264_preset: "ultrafast".to_string(),
            ..EncoderSettings::default()
        },
    };
    TranscodeSession::new(config, None).expect("session starts")
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let format = if selector & 1 == 0 {
        InputFormat::Auto
    } else {
        InputFormat::MpegTs
    };
    SESSION.with(|cell| {
        let (session, seq) = &mut *cell.borrow_mut();
        *seq += 1;
        let input = SegmentInput {
            seq: *seq,
            data: Bytes::copy_from_slice(rest),
            format,
        };
        if let Ok(output) = session.transcode(input) {
            assert_eq!(output.renditions.len(), 1);
            assert!(output.decoded_frames > 0);
            // Frames of one segment may differ in size (a mid-segment resolution change), so the
            // pixel count is bounded rather than equal to frames x the last frame's size.
            assert!(output.decoded_pixels >= output.decoded_frames);
            assert!(output.decoded_pixels <= output.decoded_frames * 16_384 * 16_384);
            let rendition = &output.renditions[0];
            assert!(!rendition.data.is_empty());
            assert_eq!(
                rendition.pixels,
                rendition.frames * u64::from(rendition.width) * u64::from(rendition.height)
            );
            assert!(rendition.width <= 64 && rendition.height <= 64);
        }
    });
});
