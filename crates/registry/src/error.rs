//! Errors of the stream registry.

/// Everything a registry call can fail with.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The registry URL names no known backend or is malformed.
    #[error("invalid registry url {url:?}: {reason}")]
    InvalidUrl {
        /// The URL given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Another stream already holds this id, stream key or playback id.
    #[error("stream {field} {value:?} is already taken")]
    Conflict {
        /// `id`, `streamKey` or `playbackId`.
        field: &'static str,
        /// The value that is taken.
        value: String,
    },
    /// A stream that cannot be stored as given.
    #[error("invalid stream: {0}")]
    InvalidStream(String),
    /// A stored stream that cannot be read back.
    #[error("stored stream {id:?} is corrupt: {reason}")]
    Corrupt {
        /// The stream id.
        id: String,
        /// Why it cannot be decoded.
        reason: String,
    },
    /// Redis failed or could not be reached.
    #[error("redis registry: {0}")]
    Redis(#[from] redis::RedisError),
    /// Opening Redis failed.
    #[error("redis registry: {0}")]
    Connect(#[from] livefarm_bus::redis_connect::RedisConnectError),
    /// No randomness for ids and keys.
    #[error("cannot generate random id: {0}")]
    Randomness(String),
}

impl RegistryError {
    /// Whether trying again later may succeed (Redis unreachable or timing out).
    pub fn is_retryable(&self) -> bool {
        match self {
            RegistryError::Redis(error) => livefarm_bus::redis_connect::is_transient(error),
            RegistryError::Connect(error) => error.is_retryable(),
            _ => false,
        }
    }
}
