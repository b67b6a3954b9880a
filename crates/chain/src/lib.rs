//! Livefarm's link to the Livepeer-ABI-compatible contracts (`contracts/`): bindings generated
//! from the committed artifacts, deployment of a whole protocol onto any EVM node (anvil in tests
//! and `livefarm up`), resolution of the contract addresses through the Controller as
//! go-livepeer does (§12.1), and typed calls for the redeemer, the indexer and tests.

pub mod bindings;
pub mod client;
pub mod deploy;
pub mod error;
pub mod testing;
pub mod ticket;

pub use alloy::primitives::{Address, B256, U256};
pub use client::{Chain, Receipt, SenderInfo, TranscoderInfo};
pub use deploy::{contract_id, deploy, resolve, DeployOptions, Deployment, CONTRACT_NAMES};
pub use error::ChainError;
pub use ticket::{onchain_ticket, onchain_ticket_from_pm};

/// Result alias of this crate.
pub type Result<T, E = ChainError> = std::result::Result<T, E>;
