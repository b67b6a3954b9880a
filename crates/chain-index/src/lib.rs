//! The on-chain state the orchestrator's ticket checks read (`livefarm_pm::ChainState`:
//! rounds, senders, the active set, gas price, L1 block), served by Livefarm's chain indexer
//! over gRPC (`livefarm.chain.v1`). A small crate of its own so that the ingest service can
//! run the orchestrator on-chain without linking the EVM client stack the indexer needs.

mod client;
mod error;

pub use client::IndexerChainState;
pub use error::ChainIndexError;
