//! livefarm-publish: how ingest hands one live publish to a segmenter. A [`SegmenterSink`]
//! takes a [`PublishStart`] and the container bytes until the publisher leaves, and answers
//! with a [`PublishSummary`].
//!
//! These are domain types: the segmenter implements the sink in process (`livefarm up`), and
//! the gRPC link (`livefarm.segmenter.v1`) converts them to and from its messages only at its
//! two ends, ingest's client and the segmenter's server.

mod error;

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;

use bytes::Bytes;
use livefarm_profiles::Profile;
use tokio::sync::mpsc;

pub use error::PublishError;

/// A boxed future, so that the sink trait stays object safe.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The container of a publish's bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ContainerFormat {
    /// Not said: the segmenter probes the bytes.
    #[default]
    Probe,
    /// FLV, from RTMP.
    Flv,
    /// MPEG-TS, from SRT.
    MpegTs,
}

/// The start of one publish session.
#[derive(Debug, Clone, PartialEq)]
pub struct PublishStart {
    /// The live stream (a valid stream id).
    pub stream_id: String,
    /// Unique per publish (connection); a new session of a known stream is a reconnect.
    pub session_id: String,
    pub format: ContainerFormat,
    /// The rendition ladder every segment's job carries.
    pub profiles: Vec<Profile>,
    /// Keep the whole session as a recording.
    pub record: bool,
    /// How the publisher reached ingest (`rtmp`, `srt`), for logs and stream events.
    pub protocol: String,
}

/// What a segmenter cut from one publish session.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct PublishSummary {
    /// Segments stored and enqueued in this session.
    pub segments: u64,
    /// Seq of the first segment of the session.
    pub first_seq: u64,
    /// The seq the next session starts at.
    pub next_seq: u64,
    /// Sum of the session's segment durations.
    pub duration_seconds: f64,
    /// Segments that could not be muxed or stored.
    pub failed_segments: u64,
    /// Segments longer than the cap (the source's keyframes are too far apart).
    pub too_long_segments: u64,
}

/// What ingest sends a segmenter during a publish, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Chunk {
    /// Container bytes.
    Data(Bytes),
    /// A video keyframe comes next in the data. The segment that starts at it continues
    /// ingest's trace, so each segment's trace begins where its media entered the farm.
    Keyframe(KeyframeMark),
}

impl From<Bytes> for Chunk {
    fn from(bytes: Bytes) -> Self {
        Chunk::Data(bytes)
    }
}

/// A video keyframe as ingest saw it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct KeyframeMark {
    /// Its decode timestamp in the container's clock, milliseconds (the FLV tag timestamp).
    pub timestamp_ms: u64,
    /// W3C trace context of ingest's span for the media from this keyframe on.
    pub trace: HashMap<String, String>,
}

/// A segmenter that takes one publish session: `start` first, then the chunks in `chunks`
/// until the sender is dropped (the publisher left). Resolves when the session has been
/// segmented.
pub trait SegmenterSink: Send + Sync {
    fn publish(
        &self,
        start: PublishStart,
        chunks: mpsc::Receiver<Chunk>,
    ) -> BoxFuture<'_, Result<PublishSummary, PublishError>>;
}
