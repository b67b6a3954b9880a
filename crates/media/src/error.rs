//! Errors of the media engine. A [`SegmentError`] concerns one segment only: the session that
//! returned it stays usable for the next segment.

use livefarm_profiles::ProfileError;

/// Why one segment could not be transcoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SegmentError {
    #[error("segment is empty")]
    Empty,
    #[error("segment is not a readable media container: {0}")]
    Demux(String),
    #[error("segment has no video stream")]
    NoVideo,
    #[error("unsupported video codec {0} (supported: h264, hevc, vp8, vp9)")]
    UnsupportedCodec(String),
    #[error("segment holds no decodable video frame")]
    NoFrames,
    #[error("segment timestamps go backwards: {0}")]
    NonMonotonic(String),
    #[error("video decoder failed: {0}")]
    Decode(String),
    #[error("encoder of rendition {rendition} failed: {reason}")]
    Encode { rendition: String, reason: String },
    #[error("muxer of rendition {rendition} failed: {reason}")]
    Mux { rendition: String, reason: String },
    #[error("audio could not be transcoded: {0}")]
    Audio(String),
    #[error("transcode session has stopped")]
    SessionClosed,
}

impl SegmentError {
    /// A short, bounded label for metrics (`errors by kind`).
    pub fn kind(&self) -> &'static str {
        match self {
            SegmentError::Empty => "empty",
            SegmentError::Demux(_) => "demux",
            SegmentError::NoVideo => "no_video",
            SegmentError::UnsupportedCodec(_) => "unsupported_codec",
            SegmentError::NoFrames => "no_frames",
            SegmentError::NonMonotonic(_) => "non_monotonic",
            SegmentError::Decode(_) => "decode",
            SegmentError::Encode { .. } => "encode",
            SegmentError::Mux { .. } => "mux",
            SegmentError::Audio(_) => "audio",
            SegmentError::SessionClosed => "session_closed",
        }
    }

    /// Whether the same bytes could succeed on another try (a worker may retry these).
    pub fn is_retryable(&self) -> bool {
        matches!(self, SegmentError::SessionClosed)
    }
}

/// Why a session (or the file pipeline around it) could not be built.
#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    #[error("ffmpeg could not be initialised: {0}")]
    Init(String),
    #[error("no profiles were given")]
    NoProfiles,
    #[error(transparent)]
    Profile(#[from] ProfileError),
    #[error(transparent)]
    Accel(#[from] crate::accel::AccelError),
    #[error("encoder {0} is not available in this FFmpeg build")]
    MissingEncoder(String),
    #[error("cannot read {path}: {reason}")]
    Input { path: String, reason: String },
    #[error("cannot write {path}: {reason}")]
    Output { path: String, reason: String },
    #[error(transparent)]
    Segment(#[from] SegmentError),
}

pub(crate) fn ff(error: ffmpeg_next::Error) -> String {
    error.to_string().to_lowercase()
}
