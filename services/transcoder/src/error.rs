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

impl livefarm_runtime::RunError for TranscoderError {
    /// A bad value, or a bus or storage URL that does not parse.
    fn is_config(&self) -> bool {
        matches!(
            self,
            TranscoderError::Config { .. }
                | TranscoderError::Bus(BusError::InvalidUrl { .. })
                | TranscoderError::Storage(StorageError::InvalidUrl { .. })
        )
    }
}
