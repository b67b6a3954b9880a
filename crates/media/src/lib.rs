//! livefarm-media: Livefarm's ladder transcoder.
//!
//! A [`TranscodeSession`] per live stream turns segments (MPEG-TS, FLV or MP4 bytes) into every
//! rendition of a ladder: each segment is decoded once, scaled and frame-rate converted per
//! rendition, encoded (libx264, or NVENC where the GPU has it) and muxed to MPEG-TS or MP4 in
//! memory. Bad input fails that segment with a typed [`SegmentError`]; the session goes on.
//! [`segmenter`] cuts a file or live container stream into keyframe-aligned MPEG-TS segments.

pub mod accel;
mod audio;
mod bsf;
pub mod encode;
mod error;
pub mod fps;
mod gpu_scale;
mod hw;
pub mod io;
mod remux;
mod rendition;
pub mod segmenter;
mod session;

pub use accel::{AccelChoice, GpuInventory, GpuLease, GpuPool, StagePlan};
pub use encode::EncoderSettings;
pub use error::{MediaError, SegmentError};
pub use io::InputFormat;
pub use remux::{probe_duration, probe_tracks, remux_ts_to_mp4, RemuxReport, JUMP_TOLERANCE_US};
pub use rendition::RenditionOutput;
pub use session::{AudioMode, SegmentInput, SegmentOutput, SessionConfig, TranscodeSession};

/// Initialises FFmpeg once per process and quiets its logging to errors (Livefarm logs itself).
pub fn init() -> Result<(), MediaError> {
    ffmpeg_next::init().map_err(|e| MediaError::Init(e.to_string()))?;
    ffmpeg_next::util::log::set_level(ffmpeg_next::util::log::Level::Error);
    Ok(())
}
