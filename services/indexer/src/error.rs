//! Errors of the chain indexer.

use livefarm_bus::BusError;
use livefarm_chain::ChainError;

/// Why the indexer could not start, follow the chain or answer.
#[derive(Debug, thiserror::Error)]
pub enum IndexerError {
    /// A config value is out of range (exit code 64).
    #[error("invalid config value for {key}: {reason}")]
    Config {
        /// The config key.
        key: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// A JSON-RPC request failed.
    #[error("{method} failed: {reason}")]
    Rpc {
        /// The JSON-RPC method.
        method: &'static str,
        /// The node's or the transport's message.
        reason: String,
        /// The node refused because the answer would be too large (`eth_getLogs` ranges
        /// are split on this).
        too_many_results: bool,
    },
    /// Resolving or calling the contracts failed.
    #[error(transparent)]
    Chain(#[from] ChainError),
    /// Redis (the state store) failed.
    #[error("state store: {0}")]
    Store(String),
    /// The stored state does not decode.
    #[error("stored state is unreadable: {0}")]
    Corrupt(String),
    /// A log of a watched contract does not decode.
    #[error("undecodable {event} log in block {block}: {reason}")]
    Decode {
        /// Which event.
        event: &'static str,
        /// Its block.
        block: u64,
        /// The decoder's message.
        reason: String,
    },
    /// The job bus failed.
    #[error(transparent)]
    Bus(#[from] BusError),
    /// A listener could not bind or a server failed.
    #[error("{what} failed: {reason}")]
    Server {
        /// Which server.
        what: &'static str,
        /// The underlying error.
        reason: String,
    },
    /// The indexer's gRPC API could not be reached or refused a request.
    #[error("indexer api: {0}")]
    Client(String),
    /// The benchmark could not set up its chain.
    #[error("bench: {0}")]
    Bench(String),
}

impl livefarm_runtime::RunError for IndexerError {
    /// A bad value, or a chain or bus URL that does not parse.
    fn is_config(&self) -> bool {
        matches!(
            self,
            IndexerError::Config { .. }
                | IndexerError::Chain(ChainError::InvalidUrl { .. })
                | IndexerError::Bus(BusError::InvalidUrl { .. })
        )
    }
}

impl From<redis::RedisError> for IndexerError {
    fn from(e: redis::RedisError) -> Self {
        IndexerError::Store(e.to_string())
    }
}
