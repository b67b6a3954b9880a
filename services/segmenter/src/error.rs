//! Errors of the segmenter service.

use livefarm_bus::BusError;
use livefarm_proto::ServiceError;
use livefarm_publish::PublishError;
use livefarm_storage::StorageError;
use thiserror::Error;

#[derive(Debug, Error)]
pub enum SegmenterError {
    /// The publish's first message is missing or malformed.
    #[error("bad publish start: {0}")]
    BadStart(String),
    /// Another publish of the same stream is still running.
    #[error("stream {0} is already publishing")]
    Busy(String),
    /// The container could not be opened (no video stream, garbage from the start).
    #[error("cannot open the live stream: {0}")]
    Open(String),
    #[error("bus: {0}")]
    Bus(#[from] livefarm_jobs::JobsError),
    #[error("storage: {0}")]
    Storage(#[from] livefarm_storage::StorageError),
    /// The stream's saved timeline could not be read, so its next seq is unknown.
    #[error("reading the stream timeline: {0}")]
    Timeline(String),
    #[error("segmenter thread failed: {0}")]
    Thread(String),
}

impl From<SegmenterError> for ServiceError {
    fn from(error: SegmenterError) -> Self {
        let message = error.to_string();
        match error {
            SegmenterError::BadStart(_) | SegmenterError::Open(_) => {
                ServiceError::InvalidArgument(message)
            }
            SegmenterError::Busy(_) => ServiceError::FailedPrecondition(message),
            SegmenterError::Bus(_) | SegmenterError::Storage(_) | SegmenterError::Timeline(_) => {
                ServiceError::Unavailable(message)
            }
            SegmenterError::Thread(_) => ServiceError::Internal(message),
        }
    }
}

impl livefarm_runtime::RunError for SegmenterError {
    /// A bus or storage URL that does not parse.
    fn is_config(&self) -> bool {
        matches!(
            self,
            SegmenterError::Bus(livefarm_jobs::JobsError::Bus(BusError::InvalidUrl { .. }))
                | SegmenterError::Storage(StorageError::InvalidUrl { .. })
        )
    }
}

/// What an in-process ingest sees: the classification the gRPC link answers with.
impl From<SegmenterError> for PublishError {
    fn from(error: SegmenterError) -> Self {
        match ServiceError::from(error) {
            ServiceError::InvalidArgument(message) => PublishError::BadStart(message),
            ServiceError::FailedPrecondition(message) => PublishError::Busy(message),
            ServiceError::Unavailable(message) => PublishError::Unavailable(message),
            ServiceError::NotFound(message) | ServiceError::Internal(message) => {
                PublishError::Failed(message)
            }
        }
    }
}

impl From<SegmenterError> for tonic::Status {
    fn from(error: SegmenterError) -> Self {
        ServiceError::from(error).into()
    }
}
