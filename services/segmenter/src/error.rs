//! Errors of the segmenter service.

use livefarm_proto::ServiceError;
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

impl From<SegmenterError> for tonic::Status {
    fn from(error: SegmenterError) -> Self {
        ServiceError::from(error).into()
    }
}
