//! Errors of the job wire schema.

use livefarm_bus::BusError;

/// Why a job or result could not be encoded, decoded or enqueued.
#[derive(Debug, thiserror::Error)]
pub enum JobsError {
    /// The payload is not the JSON this crate writes.
    #[error("malformed {what}: {reason}")]
    Malformed {
        /// `segment job` or `segment result`.
        what: &'static str,
        /// What the decoder said.
        reason: String,
    },
    /// A field holds a value the schema forbids (an empty stream id, for example).
    #[error("invalid {field}: {reason}")]
    Invalid {
        /// The field.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The bus refused the message.
    #[error(transparent)]
    Bus(#[from] BusError),
}

impl JobsError {
    /// Whether the same call may succeed later (the bus is down or restarting).
    pub fn is_retryable(&self) -> bool {
        matches!(self, JobsError::Bus(error) if error.is_retryable())
    }
}
