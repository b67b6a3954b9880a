//! HLS playlists for Livefarm's playback: master playlists over a ladder's
//! renditions, VOD and live media playlists (with a sliding [`LiveWindow`]),
//! RFC 6381 `CODECS` strings from H.264 parameter sets (and from MPEG-TS
//! segments, [`tsprobe`]), and a small parser that reads our own playlists
//! (and common encoders' ones) back for tests.
//!
//! Pure Rust, no I/O. Output follows RFC 8216, protocol version 3.

pub mod codecs;
mod datetime;
mod error;
mod master;
mod media;
mod parse;
mod render;
pub mod tsprobe;

pub use datetime::UtcMillis;
pub use error::HlsError;
pub use master::{MasterPlaylist, Variant};
pub use media::{target_for, LiveWindow, MediaPlaylist, PlaylistType, Segment};
pub use parse::{parse_master, parse_media};
