//! Errors of the indexer client.

/// What went wrong talking to the indexer.
#[derive(Debug, thiserror::Error)]
pub enum ChainIndexError {
    /// The endpoint is not a URI.
    #[error("indexer endpoint {endpoint}: {reason}")]
    Endpoint { endpoint: String, reason: String },
    /// The indexer cannot be reached or answered with an error.
    #[error("indexer: {0}")]
    Rpc(String),
    /// The cached state did not reach a block in time.
    #[error("indexer state still at block {at} after {waited:?}, waiting for {wanted}")]
    Behind {
        at: u64,
        wanted: u64,
        waited: std::time::Duration,
    },
}
