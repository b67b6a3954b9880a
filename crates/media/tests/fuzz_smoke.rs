//! A stable, `cargo test`-driven smoke fuzzer (the nightly cargo-fuzz target is
//! fuzz/fuzz_targets/segment_input.rs): real segments mutated with a fixed seed (bit flips,
//! truncation, splices, byte runs, random bytes) go to one long-lived session, which must never
//! panic and must still transcode a good segment afterwards.

mod common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use common::*;
use livefarm_media::{EncoderSettings, InputFormat, SegmentInput, SessionConfig, TranscodeSession};

const ITERATIONS: u32 = 2000;
const TIME_BUDGET: Duration = Duration::from_secs(20);

/// xorshift64*: reproducible without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

fn mutate(rng: &mut Rng, seeds: &[Bytes]) -> Vec<u8> {
    let seed = &seeds[rng.below(seeds.len())];
    let mut data = seed.to_vec();
    match rng.below(7) {
        // A few flipped bits.
        0 => {
            for _ in 0..1 + rng.below(16) {
                let i = rng.below(data.len());
                data[i] ^= 1 << rng.below(8);
            }
        }
        // Truncated anywhere.
        1 => data.truncate(rng.below(data.len())),
        // The head of one segment spliced onto the tail of another.
        2 => {
            let other = &seeds[rng.below(seeds.len())];
            data.truncate(rng.below(data.len()));
            data.extend_from_slice(&other[rng.below(other.len())..]);
        }
        // A run of one byte value over a random range.
        3 => {
            let start = rng.below(data.len());
            let end = (start + rng.below(4096)).min(data.len());
            let value = rng.next() as u8;
            data[start..end].fill(value);
        }
        // Whole 188-byte MPEG-TS packets dropped or repeated.
        4 => {
            let packets = data.len() / 188;
            let mut out = Vec::with_capacity(data.len());
            for p in 0..packets {
                let chunk = &data[p * 188..(p + 1) * 188];
                match rng.below(20) {
                    0 => {}
                    1 => {
                        out.extend_from_slice(chunk);
                        out.extend_from_slice(chunk);
                    }
                    _ => out.extend_from_slice(chunk),
                }
            }
            data = out;
        }
        // Random bytes.
        5 => {
            data = (0..rng.below(64 * 1024))
                .map(|_| rng.next() as u8)
                .collect()
        }
        // Random bytes inside a valid MPEG-TS packet header layout (sync bytes kept).
        _ => {
            for (i, byte) in data.iter_mut().enumerate() {
                if i % 188 != 0 && rng.below(50) == 0 {
                    *byte = rng.next() as u8;
                }
            }
        }
    }
    data
}

fn tiny_session() -> TranscodeSession {
    livefarm_media::init().expect("ffmpeg initialises");
    // Damaged input makes the decoders log by the thousand; the test judges outcomes instead.
    ffmpeg_next::util::log::set_level(ffmpeg_next::util::log::Level::Quiet);
    TranscodeSession::new(
        SessionConfig {
            profiles: vec![profile("tiny", 64, 36, 100_000)],
            settings: EncoderSettings {
                x264_preset: "ultrafast".to_string(),
                ..EncoderSettings::default()
            },
        },
        None,
    )
    .expect("session starts")
}

fn assert_transcodes(session: &mut TranscodeSession, seq: u64, good: &Bytes) {
    let output = session
        .transcode(input(seq, good.clone()))
        .unwrap_or_else(|e| panic!("good segment after fuzzing (iteration {seq}) failed: {e}"));
    assert_eq!(
        output.decoded_frames, 10,
        "iteration {seq}: dropped {}, discontinuity {}, start {}",
        output.dropped_frames, output.discontinuity, output.start_pts
    );
    assert_eq!(output.renditions[0].frames, 10);
    assert_eq!(
        (output.renditions[0].width, output.renditions[0].height),
        (64, 36)
    );
}

#[test]
fn mutated_segments_never_break_the_session() {
    let dir = scratch();
    let seeds = vec![
        Synth::new(96, 54, "25", 0.4)
            .gop(5)
            .write(&dir.path().join("a.ts")),
        Synth::new(64, 64, "30", 0.4)
            .gop(6)
            .video(&[
                "-c:v",
                "libx264",
                "-preset",
                "ultrafast",
                "-bf",
                "2",
                "-pix_fmt",
                "yuv420p",
            ])
            .audio(Some(&["-c:a", "libmp3lame", "-b:a", "32k"]))
            .write(&dir.path().join("b.ts")),
        Synth::new(80, 48, "25", 0.4)
            .gop(5)
            .video(&[
                "-c:v",
                "libx265",
                "-preset",
                "ultrafast",
                "-x265-params",
                "log-level=error",
            ])
            .audio(None)
            .write(&dir.path().join("c.ts")),
    ];
    let good = Synth::new(128, 72, "25", 0.4)
        .gop(10)
        .write(&dir.path().join("good.ts"));
    let mut session = tiny_session();
    let mut rng = Rng(0x5eed_1234_abcd_0001);
    let started = Instant::now();
    let (mut ok, mut failed, mut seq) = (0u32, 0u32, 0u64);
    for iteration in 0..ITERATIONS {
        if started.elapsed() > TIME_BUDGET {
            break;
        }
        let data = mutate(&mut rng, &seeds);
        let format = if rng.below(2) == 0 {
            InputFormat::Auto
        } else {
            InputFormat::MpegTs
        };
        seq += 1;
        match session.transcode(SegmentInput {
            seq,
            data: Bytes::from(data),
            format,
        }) {
            Ok(output) => {
                ok += 1;
                let r = &output.renditions[0];
                assert!(output.decoded_frames > 0 && !r.data.is_empty());
                assert_eq!(
                    r.pixels,
                    r.frames * u64::from(r.width) * u64::from(r.height)
                );
            }
            Err(_) => failed += 1,
        }
        if iteration % 50 == 49 {
            seq += 1;
            assert_transcodes(&mut session, seq, &good);
        }
    }
    seq += 1;
    assert_transcodes(&mut session, seq, &good);
    println!(
        "fuzz smoke: {} inputs in {:.1} s ({ok} transcoded, {failed} refused)",
        ok + failed,
        started.elapsed().as_secs_f64()
    );
    assert!(ok + failed >= 50, "too few inputs tried in the time budget");
}
