//! Errors of the transcoder worker.

use livefarm_bus::BusError;
use livefarm_media::MediaError;
use livefarm_storage::StorageError;

/// Why the worker could not start or keep running.
#[derive(Debug, thiserror::Error)]
pub enum TranscoderError {
    /// A config value is out of range (exit code 64).
    #[error("invalid config value for {key}: {reason}")]
    Config {
        /// The config key.
        key: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The job bus failed.
    #[error(transparent)]
    Bus(#[from] BusError),
    /// The object store failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The media engine could not start.
    #[error(transparent)]
    Media(#[from] MediaError),
    /// A listener could not bind or a server failed.
    #[error("{what} failed: {reason}")]
    Server {
        /// Which server.
        what: &'static str,
        /// The underlying error.
        reason: String,
    },
}

impl TranscoderError {
    /// The process exit code: 64 for a bad config, 1 otherwise.
    pub fn exit_code(&self) -> i32 {
        match self {
            TranscoderError::Config { .. } => livefarm_runtime::EXIT_BAD_CONFIG,
            _ => livefarm_runtime::EXIT_FAILURE,
        }
    }
}
