//! Errors of the live ingest paths (RTMP, SRT, publisher auth, the segmenter link).

use thiserror::Error;

/// Why a publisher was not let in.
#[derive(Debug, Error)]
pub enum AuthError {
    /// The key is unknown or the webhook said no.
    #[error("publish refused: {0}")]
    Refused(String),
    /// The authority could not be asked (store or webhook down, bad reply); retryable.
    #[error("publisher auth unavailable: {0}")]
    Unavailable(String),
}

/// Errors of the live ingest service.
#[derive(Debug, Error)]
pub enum IngestError {
    #[error(transparent)]
    Auth(#[from] AuthError),
    /// A stream path or SRT stream id that names no stream.
    #[error("bad stream path {path:?}: {reason}")]
    BadPath { path: String, reason: String },
    /// The segmenter stopped reading this publish's bytes.
    #[error("segmenter stopped reading the stream")]
    SinkClosed,
    /// The control plane ended the publish (terminate, suspend or delete of the stream).
    #[error("publish of stream {0:?} stopped by the control plane")]
    Stopped(String),
    #[error("rtmp: {0}")]
    Rtmp(String),
    #[error("{what}: {source}")]
    Io {
        what: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("bad config: {0}")]
    Config(String),
    #[error("bus: {0}")]
    Bus(#[from] livefarm_bus::BusError),
    #[error("storage: {0}")]
    Storage(#[from] livefarm_storage::StorageError),
}

impl livefarm_runtime::RunError for IngestError {
    /// A bad value, or a bus or storage URL that does not parse.
    fn is_config(&self) -> bool {
        matches!(
            self,
            IngestError::Config(_)
                | IngestError::Bus(livefarm_bus::BusError::InvalidUrl { .. })
                | IngestError::Storage(livefarm_storage::StorageError::InvalidUrl { .. })
        )
    }
}
