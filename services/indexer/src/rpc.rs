//! The JSON-RPC calls the follower makes, as raw requests into lean types: block headers with
//! Arbitrum's optional `l1BlockNumber`, and `eth_getLogs` split into halves when the node
//! refuses a range as too large.

use std::future::Future;

use alloy::eips::BlockId;
use alloy::primitives::{Address, Bytes, B256, U256, U64};
use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use alloy::transports::{RpcError, TransportErrorKind};
use livefarm_chain::bindings::RoundsManager;
use serde::{Deserialize, Deserializer};
use serde_json::json;

use crate::error::IndexerError;
use crate::state::RoundParams;

/// A block header, as far as the follower needs it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RawHeader {
    /// Block number.
    #[serde(deserialize_with = "quantity")]
    pub number: u64,
    /// Block hash.
    pub hash: B256,
    /// Parent block hash.
    pub parent_hash: B256,
    /// Arbitrum's L1 block number; absent on L1 chains.
    #[serde(default, deserialize_with = "opt_quantity")]
    pub l1_block_number: Option<u64>,
}

impl RawHeader {
    /// The L1 block number: Arbitrum's `l1BlockNumber`, else the block number (§12.1).
    pub fn l1_block(&self) -> u64 {
        self.l1_block_number.unwrap_or(self.number)
    }
}

/// A log, as far as the fold needs it.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RawLog {
    /// Emitting contract.
    pub address: Address,
    /// Topics, `topic0` first.
    pub topics: Vec<B256>,
    /// ABI-encoded non-indexed arguments.
    pub data: Bytes,
    /// Block number.
    #[serde(deserialize_with = "quantity")]
    pub block_number: u64,
    /// Block hash.
    pub block_hash: B256,
    /// Position in the block.
    #[serde(deserialize_with = "quantity")]
    pub log_index: u64,
    /// Set by nodes on logs of a block that left the canonical chain.
    #[serde(default)]
    pub removed: bool,
}

fn quantity<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    let v = U64::deserialize(d)?;
    Ok(v.to::<u64>())
}

fn opt_quantity<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    let v = Option::<U64>::deserialize(d)?;
    Ok(v.map(|v| v.to::<u64>()))
}

/// Whether a node's error says the answer would be too large, so a smaller range may work.
/// Providers word it differently: Infura's `query returned more than 10000 results`,
/// Alchemy's `log response size exceeded`, others `block range too large` or code -32005.
pub fn is_too_many_results(code: Option<i64>, message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    code == Some(-32005)
        || m.contains("more than")
        || m.contains("too many")
        || m.contains("too large")
        || m.contains("limit")
        || m.contains("exceed")
        || m.contains("range")
        || m.contains("response size")
}

fn rpc_error(method: &'static str, e: RpcError<TransportErrorKind>) -> IndexerError {
    let too_many_results = match &e {
        RpcError::ErrorResp(payload) => is_too_many_results(Some(payload.code), &payload.message),
        // an answer too big for the transport (a proxy's 413, a cut-off body) gets smaller
        // with a smaller range too
        RpcError::Transport(kind) => is_too_many_results(None, &kind.to_string()),
        _ => false,
    };
    IndexerError::Rpc {
        method,
        reason: e.to_string(),
        too_many_results,
    }
}

/// Fetches the logs of `[from, to]` with `fetch`, halving any range the node refuses as too
/// large until single blocks; logs come back in block order. Returns the logs and the number
/// of splits.
pub async fn get_logs_split<F, Fut>(
    from: u64,
    to: u64,
    fetch: F,
) -> Result<(Vec<RawLog>, u64), IndexerError>
where
    F: Fn(u64, u64) -> Fut,
    Fut: Future<Output = Result<Vec<RawLog>, IndexerError>>,
{
    let mut out = Vec::new();
    let mut splits = 0;
    // depth-first, lower half first, so the output stays in block order
    let mut todo = vec![(from, to)];
    while let Some((a, b)) = todo.pop() {
        match fetch(a, b).await {
            Ok(logs) => out.extend(logs),
            Err(IndexerError::Rpc {
                too_many_results: true,
                ..
            }) if a < b => {
                let mid = a + (b - a) / 2;
                todo.push((mid + 1, b));
                todo.push((a, mid));
                splits += 1;
            }
            Err(e) => return Err(e),
        }
    }
    Ok((out, splits))
}

/// A read-only JSON-RPC connection.
#[derive(Clone, Debug)]
pub struct Rpc {
    provider: DynProvider,
}

fn hex(n: u64) -> String {
    format!("{n:#x}")
}

impl Rpc {
    /// Connects over HTTP.
    pub fn connect(url: &str) -> Result<Rpc, IndexerError> {
        let parsed = url.parse().map_err(|e| IndexerError::Config {
            key: "rpc_url",
            reason: format!("{url}: {e}"),
        })?;
        let provider = ProviderBuilder::new().connect_http(parsed).erased();
        Ok(Rpc { provider })
    }

    /// The provider, for typed contract calls.
    pub fn provider(&self) -> &DynProvider {
        &self.provider
    }

    /// `eth_chainId`.
    pub async fn chain_id(&self) -> Result<u64, IndexerError> {
        self.provider
            .get_chain_id()
            .await
            .map_err(|e| rpc_error("eth_chainId", e))
    }

    /// `eth_blockNumber`.
    pub async fn block_number(&self) -> Result<u64, IndexerError> {
        self.provider
            .get_block_number()
            .await
            .map_err(|e| rpc_error("eth_blockNumber", e))
    }

    /// `eth_gasPrice`.
    pub async fn gas_price(&self) -> Result<U256, IndexerError> {
        self.provider
            .get_gas_price()
            .await
            .map(U256::from)
            .map_err(|e| rpc_error("eth_gasPrice", e))
    }

    /// `eth_getBlockByNumber(n, false)`; `None` when the node has no such block.
    pub async fn header(&self, number: u64) -> Result<Option<RawHeader>, IndexerError> {
        self.provider
            .raw_request::<_, Option<RawHeader>>(
                "eth_getBlockByNumber".into(),
                (hex(number), false),
            )
            .await
            .map_err(|e| rpc_error("eth_getBlockByNumber", e))
    }

    /// `eth_getLogs` over `[from, to]` for `addresses`, `topic0` in `topics`.
    pub async fn logs(
        &self,
        from: u64,
        to: u64,
        addresses: &[Address],
        topics: &[B256],
    ) -> Result<Vec<RawLog>, IndexerError> {
        self.get_logs(json!({
            "fromBlock": hex(from),
            "toBlock": hex(to),
            "address": addresses,
            "topics": [topics],
        }))
        .await
    }

    /// `eth_getLogs` of one block by hash (EIP-234), so the logs belong to that very block
    /// even while the chain reorganises.
    pub async fn logs_at(
        &self,
        block_hash: B256,
        addresses: &[Address],
        topics: &[B256],
    ) -> Result<Vec<RawLog>, IndexerError> {
        self.get_logs(json!({
            "blockHash": block_hash,
            "address": addresses,
            "topics": [topics],
        }))
        .await
    }

    async fn get_logs(&self, filter: serde_json::Value) -> Result<Vec<RawLog>, IndexerError> {
        self.provider
            .raw_request::<_, Vec<RawLog>>("eth_getLogs".into(), (filter,))
            .await
            .map_err(|e| rpc_error("eth_getLogs", e))
    }

    /// RoundsManager's round length parameters at `block` (`None`: latest).
    pub async fn round_params(
        &self,
        rounds_manager: Address,
        block: Option<u64>,
    ) -> Result<RoundParams, IndexerError> {
        let rm = RoundsManager::new(rounds_manager, self.provider.clone());
        let at = block.map(BlockId::number).unwrap_or(BlockId::latest());
        let err = |call: &'static str| {
            move |e: alloy::contract::Error| IndexerError::Rpc {
                method: call,
                reason: e.to_string(),
                too_many_results: false,
            }
        };
        let round_length = rm
            .roundLength()
            .block(at)
            .call()
            .await
            .map_err(err("roundLength"))?;
        let length_update_round = rm
            .lastRoundLengthUpdateRound()
            .block(at)
            .call()
            .await
            .map_err(err("lastRoundLengthUpdateRound"))?;
        let length_update_start_block = rm
            .lastRoundLengthUpdateStartBlock()
            .block(at)
            .call()
            .await
            .map_err(err("lastRoundLengthUpdateStartBlock"))?;
        Ok(RoundParams {
            round_length: round_length.saturating_to(),
            length_update_round: length_update_round.saturating_to(),
            length_update_start_block: length_update_start_block.saturating_to(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    fn log_at(block: u64) -> RawLog {
        RawLog {
            address: Address::ZERO,
            topics: vec![],
            data: Bytes::new(),
            block_number: block,
            block_hash: B256::ZERO,
            log_index: 0,
            removed: false,
        }
    }

    #[tokio::test]
    async fn ranges_split_until_the_node_accepts_them() {
        // a node that answers at most 3 blocks' worth and holds one log per block
        let calls = Mutex::new(Vec::new());
        let (logs, splits) = get_logs_split(10, 29, |a, b| {
            calls.lock().expect("not poisoned").push((a, b));
            async move {
                if b - a + 1 > 3 {
                    Err(IndexerError::Rpc {
                        method: "eth_getLogs",
                        reason: "query returned more than 10000 results".into(),
                        too_many_results: true,
                    })
                } else {
                    Ok((a..=b).map(log_at).collect())
                }
            }
        })
        .await
        .expect("splits until it fits");
        let blocks: Vec<u64> = logs.iter().map(|l| l.block_number).collect();
        assert_eq!(blocks, (10..=29).collect::<Vec<_>>());
        assert!(splits >= 4, "20 blocks need several halvings, got {splits}");
        let calls = calls.into_inner().expect("not poisoned");
        assert!(calls.iter().all(|(a, b)| a >= &10 && b <= &29 && a <= b));
    }

    #[tokio::test]
    async fn other_errors_and_single_blocks_are_not_split() {
        let err = get_logs_split(1, 8, |_, _| async {
            Err::<Vec<RawLog>, _>(IndexerError::Rpc {
                method: "eth_getLogs",
                reason: "connection refused".into(),
                too_many_results: false,
            })
        })
        .await;
        assert!(err.is_err());
        let calls = Mutex::new(0u32);
        let err = get_logs_split(5, 5, |_, _| {
            *calls.lock().expect("not poisoned") += 1;
            async {
                Err::<Vec<RawLog>, _>(IndexerError::Rpc {
                    method: "eth_getLogs",
                    reason: "too many results".into(),
                    too_many_results: true,
                })
            }
        })
        .await;
        assert!(err.is_err());
        assert_eq!(calls.into_inner().expect("not poisoned"), 1);
    }

    #[test]
    fn provider_messages_are_classified() {
        assert!(is_too_many_results(
            Some(-32005),
            "query returned more than 10000 results"
        ));
        assert!(is_too_many_results(
            Some(-32602),
            "Log response size exceeded."
        ));
        assert!(is_too_many_results(None, "block range is too wide"));
        assert!(!is_too_many_results(Some(-32000), "header not found"));
    }

    #[test]
    fn headers_decode_with_and_without_l1_block() {
        let l1: RawHeader = serde_json::from_value(json!({
            "number": "0x10", "hash": B256::repeat_byte(1), "parentHash": B256::repeat_byte(2),
            "timestamp": "0x1"
        }))
        .expect("decodes");
        assert_eq!((l1.number, l1.l1_block()), (16, 16));
        let arb: RawHeader = serde_json::from_value(json!({
            "number": "0x10", "hash": B256::repeat_byte(1), "parentHash": B256::repeat_byte(2),
            "l1BlockNumber": "0x2a"
        }))
        .expect("decodes");
        assert_eq!(arb.l1_block(), 42);
    }
}
