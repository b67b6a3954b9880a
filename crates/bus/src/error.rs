//! Errors of the job bus.

use std::time::Duration;

/// Everything that can go wrong talking to the job bus.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    /// The URL names no known backend or has a bad parameter.
    #[error("invalid bus url {url:?}: {reason}")]
    InvalidUrl {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The backend cannot be reached right now (connection refused or dropped, timeout,
    /// server loading its data set); the same call may succeed later.
    #[error("bus unavailable: {0}")]
    Unavailable(String),
    /// The backend answered with an error that retrying will not fix.
    #[error("bus backend error: {0}")]
    Backend(String),
    /// The backend answered with something this crate does not understand.
    #[error("unexpected reply from bus backend: {0}")]
    Protocol(String),
    /// A message id that is not `<ms>-<seq>`.
    #[error("invalid message id {0:?}")]
    InvalidMessageId(String),
    /// A call ran longer than its deadline.
    #[error("bus call timed out after {0:?}")]
    Timeout(Duration),
    /// Starting or driving a helper process (`redis-server`, `redis-benchmark`) failed.
    #[error("process error: {0}")]
    Process(String),
}

impl BusError {
    /// Whether the same call may succeed if tried again later (the backend is down or
    /// restarting); callers back off and retry these, and give up on the others.
    pub fn is_retryable(&self) -> bool {
        matches!(self, BusError::Unavailable(_) | BusError::Timeout(_))
    }
}

impl From<redis::RedisError> for BusError {
    fn from(error: redis::RedisError) -> Self {
        if crate::redis_connect::is_transient(&error) {
            BusError::Unavailable(error.to_string())
        } else {
            BusError::Backend(error.to_string())
        }
    }
}

impl From<crate::redis_connect::RedisConnectError> for BusError {
    fn from(error: crate::redis_connect::RedisConnectError) -> Self {
        use crate::redis_connect::RedisConnectError;
        match error {
            RedisConnectError::InvalidUrl { url, reason } => BusError::InvalidUrl { url, reason },
            error @ RedisConnectError::Redis { .. } if error.is_retryable() => {
                BusError::Unavailable(error.to_string())
            }
            error => BusError::Backend(error.to_string()),
        }
    }
}
