//! Errors for playlist parsing, date-times and codec strings.

/// Everything that can go wrong in this crate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HlsError {
    /// The text does not start with `#EXTM3U`.
    #[error("not an m3u8 playlist: missing #EXTM3U header")]
    MissingHeader,
    /// A line of a playlist could not be read; `line` counts from 1.
    #[error("playlist line {line}: {reason}")]
    Parse { line: usize, reason: String },
    /// A date-time is not RFC 3339.
    #[error("invalid rfc 3339 date-time {0:?}")]
    DateTime(String),
    /// No H.264 sequence parameter set was found in the buffer.
    #[error("no h.264 sps found")]
    NoSps,
    /// An SPS or avcC record is too short to hold profile and level.
    #[error("truncated h.264 parameter set: {0}")]
    Truncated(&'static str),
}
