//! Errors of the redeemer.

use livefarm_bus::BusError;
use livefarm_chain::ChainError;

/// Everything that can go wrong redeeming tickets.
#[derive(Debug, thiserror::Error)]
pub enum RedeemerError {
    /// A configuration value is wrong (exit 64).
    #[error("invalid config {key}: {reason}")]
    Config {
        /// The key.
        key: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The job bus failed.
    #[error("bus: {0}")]
    Bus(#[from] BusError),
    /// The state store (Redis) failed.
    #[error("state store: {0}")]
    Store(String),
    /// The Kubernetes Lease could not be read or written.
    #[error("leader lease: {0}")]
    Lease(#[from] livefarm_lease::LeaseError),
    /// A newer redeemer took the lock: this one must stop writing and submitting.
    #[error("fenced: fencing token {token} is stale")]
    Fenced {
        /// The token this redeemer held.
        token: u64,
    },
    /// A chain read or transaction failed.
    #[error("chain: {0}")]
    Chain(#[from] ChainError),
    /// A raw JSON-RPC request failed.
    #[error("rpc: {0}")]
    Rpc(String),
    /// Signing a transaction failed.
    #[error("signing transaction: {0}")]
    Sign(String),
    /// A stored record does not decode.
    #[error("corrupt record {key}: {reason}")]
    Corrupt {
        /// The Redis key.
        key: String,
        /// The decoding error.
        reason: String,
    },
    /// A server could not start.
    #[error("{what}: {reason}")]
    Server {
        /// Which server.
        what: &'static str,
        /// Why.
        reason: String,
    },
    /// The benchmark or test network could not be set up.
    #[error("setup: {0}")]
    Setup(String),
}

impl livefarm_runtime::RunError for RedeemerError {
    /// A bad value, or a bus or chain URL that does not parse.
    fn is_config(&self) -> bool {
        matches!(
            self,
            RedeemerError::Config { .. }
                | RedeemerError::Bus(BusError::InvalidUrl { .. })
                | RedeemerError::Chain(ChainError::InvalidUrl { .. })
        )
    }
}

impl From<redis::RedisError> for RedeemerError {
    fn from(e: redis::RedisError) -> Self {
        RedeemerError::Store(e.to_string())
    }
}

impl From<alloy::transports::TransportError> for RedeemerError {
    fn from(e: alloy::transports::TransportError) -> Self {
        RedeemerError::Rpc(e.to_string())
    }
}
