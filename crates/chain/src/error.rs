//! Errors of the chain client.

use alloy::primitives::{Address, TxHash};

/// Everything that can go wrong talking to the contracts.
#[derive(Debug, thiserror::Error)]
pub enum ChainError {
    /// The RPC URL does not parse.
    #[error("invalid rpc url {url}: {reason}")]
    InvalidUrl {
        /// The URL as given.
        url: String,
        /// Why it was refused.
        reason: String,
    },
    /// The signer key is not a 32-byte hex secp256k1 key.
    #[error("invalid signer key")]
    InvalidKey,
    /// A call or transaction was refused by the contract with a revert reason
    /// (for instance `ticket is used`, §12.3).
    #[error("{call} reverted: {reason}")]
    Reverted {
        /// The contract function.
        call: &'static str,
        /// The `Error(string)` reason, or the raw revert data in hex when it has none.
        reason: String,
    },
    /// A call or transaction failed for another reason (transport, ABI decoding).
    #[error("{call} failed: {source}")]
    Contract {
        /// The contract function.
        call: &'static str,
        /// The underlying error.
        #[source]
        source: Box<alloy::contract::Error>,
    },
    /// The transaction was mined with status 0. The redeemer treats this as final (§11.2).
    #[error("transaction failed: {call} in {tx_hash}")]
    TxFailed {
        /// The contract function.
        call: &'static str,
        /// The mined transaction.
        tx_hash: TxHash,
    },
    /// Waiting for a receipt failed.
    #[error("waiting for {call} receipt: {source}")]
    Receipt {
        /// The contract function.
        call: &'static str,
        /// The underlying error.
        #[source]
        source: Box<alloy::providers::PendingTransactionError>,
    },
    /// A plain RPC request failed.
    #[error("rpc request failed: {0}")]
    Rpc(#[source] Box<alloy::transports::TransportError>),
    /// A name is missing from the Controller.
    #[error("{name} is not registered in controller {controller}")]
    NotRegistered {
        /// Contract name, e.g. `TicketBroker`.
        name: &'static str,
        /// The Controller asked.
        controller: Address,
    },
    /// The anvil test helper could not start or reach anvil.
    #[error("anvil: {0}")]
    Anvil(String),
}

impl ChainError {
    /// The contract's revert reason, if this is a revert.
    pub fn revert_reason(&self) -> Option<&str> {
        match self {
            ChainError::Reverted { reason, .. } => Some(reason),
            _ => None,
        }
    }

    /// Classifies a contract error: a revert becomes [`ChainError::Reverted`].
    pub(crate) fn from_contract(call: &'static str, source: alloy::contract::Error) -> ChainError {
        if let Some(revert) = source.as_decoded_error::<alloy::sol_types::Revert>() {
            return ChainError::Reverted {
                call,
                reason: revert.reason,
            };
        }
        if let Some(data) = source.as_revert_data() {
            return ChainError::Reverted {
                call,
                reason: data.to_string(),
            };
        }
        ChainError::Contract {
            call,
            source: Box::new(source),
        }
    }
}

impl From<alloy::transports::TransportError> for ChainError {
    fn from(e: alloy::transports::TransportError) -> Self {
        ChainError::Rpc(Box::new(e))
    }
}
