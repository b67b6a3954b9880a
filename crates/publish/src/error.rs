//! Why a segmenter did not take or finish a publish.

use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PublishError {
    /// The start message is malformed (bad stream id, no profiles, unreadable container).
    #[error("publish refused: {0}")]
    BadStart(String),
    /// Another publish of the same stream is still running.
    #[error("publish refused: {0}")]
    Busy(String),
    /// The segmenter or what it writes to (bus, object store) cannot be reached.
    #[error("segmenter unavailable: {0}")]
    Unavailable(String),
    /// The segmenter failed otherwise.
    #[error("segmenter failed: {0}")]
    Failed(String),
}
