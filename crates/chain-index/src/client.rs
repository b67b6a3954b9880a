//! [`IndexerChainState`]: the orchestrator's `ChainState` backed by the indexer's gRPC API.
//! The trait is synchronous, so it reads a local copy of the indexer's state, fetched whole
//! at connect time and again whenever the event stream says the state changed.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use livefarm_pm::{Address as PmAddress, ChainState, PmError, ReserveInfo, SenderInfo, U256};
use livefarm_proto::chain::v1 as pb;
use tokio::task::JoinHandle;
use tonic::transport::{Channel, Endpoint};
use tracing::{debug, warn};

use crate::error::ChainIndexError;
use pb::chain_index_client::ChainIndexClient;

/// The cached state, as one snapshot of the indexer.
#[derive(Clone, Debug, Default)]
struct Cache {
    block_number: u64,
    l1_block: u64,
    round: i64,
    round_hash: [u8; 32],
    pre_round_hash: [u8; 32],
    senders: HashMap<PmAddress, SenderInfo>,
    orchestrators: HashMap<PmAddress, (i64, i64)>,
    claims: HashMap<(PmAddress, PmAddress), U256>,
    pool_size: u64,
    gas_price: U256,
}

fn u256(bytes: &[u8]) -> U256 {
    U256::try_from_be_slice(bytes).unwrap_or_default()
}

fn hash32(bytes: &[u8]) -> [u8; 32] {
    <[u8; 32]>::try_from(bytes).unwrap_or_default()
}

fn pm_address(bytes: &[u8]) -> Option<PmAddress> {
    <[u8; 20]>::try_from(bytes).ok().map(PmAddress)
}

fn round_i64(r: u64) -> i64 {
    i64::try_from(r).unwrap_or(i64::MAX)
}

impl Cache {
    fn from_snapshot(s: pb::Snapshot) -> Cache {
        let rounds = s.rounds.unwrap_or_default();
        let block = s.block.unwrap_or_default();
        let senders = s
            .senders
            .iter()
            .filter_map(|info| {
                Some((
                    pm_address(&info.sender)?,
                    SenderInfo {
                        deposit: u256(&info.deposit),
                        reserve: ReserveInfo {
                            funds_remaining: u256(&info.reserve_funds_remaining),
                            claimed_in_current_round: u256(&info.reserve_claimed_in_current_round),
                        },
                        withdraw_round: round_i64(info.withdraw_round),
                    },
                ))
            })
            .collect();
        let orchestrators = s
            .orchestrators
            .iter()
            .filter_map(|o| {
                Some((
                    pm_address(&o.address)?,
                    (
                        round_i64(o.activation_round),
                        round_i64(o.deactivation_round),
                    ),
                ))
            })
            .collect();
        let claims = s
            .claims
            .iter()
            .filter_map(|c| {
                Some((
                    (pm_address(&c.sender)?, pm_address(&c.claimant)?),
                    u256(&c.amount),
                ))
            })
            .collect();
        Cache {
            block_number: block.block_number,
            l1_block: block.l1_block,
            round: round_i64(rounds.last_initialized_round),
            round_hash: hash32(&rounds.last_initialized_block_hash),
            pre_round_hash: hash32(&rounds.pre_last_initialized_block_hash),
            senders,
            orchestrators,
            claims,
            pool_size: s.transcoder_pool_size,
            gas_price: u256(&s.gas_price),
        }
    }
}

/// A `livefarm_pm::ChainState` fed by a running indexer.
#[derive(Debug)]
pub struct IndexerChainState {
    cache: Arc<RwLock<Cache>>,
    client: ChainIndexClient<Channel>,
    refresher: JoinHandle<()>,
}

impl Drop for IndexerChainState {
    fn drop(&mut self) {
        self.refresher.abort();
    }
}

fn read(cache: &RwLock<Cache>) -> std::sync::RwLockReadGuard<'_, Cache> {
    cache
        .read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn client_err(e: impl std::fmt::Display) -> ChainIndexError {
    ChainIndexError::Rpc(e.to_string())
}

async fn fetch(client: &mut ChainIndexClient<Channel>) -> Result<Cache, ChainIndexError> {
    let snap = client
        .get_snapshot(pb::GetSnapshotRequest {})
        .await
        .map_err(client_err)?
        .into_inner();
    Ok(Cache::from_snapshot(snap))
}

impl IndexerChainState {
    /// Connects to the indexer at `endpoint` (`http://host:port`), loads its state and keeps
    /// it fresh in the background (reconnecting when the stream breaks). Must be called in a
    /// tokio runtime.
    pub async fn connect(endpoint: &str) -> Result<IndexerChainState, ChainIndexError> {
        let channel = Endpoint::from_shared(endpoint.to_owned())
            .map_err(|e| ChainIndexError::Endpoint {
                endpoint: endpoint.to_owned(),
                reason: e.to_string(),
            })?
            .connect_timeout(Duration::from_secs(5))
            .connect()
            .await
            .map_err(client_err)?;
        let mut client = ChainIndexClient::new(channel);
        let cache = Arc::new(RwLock::new(fetch(&mut client).await?));
        let refresher = tokio::spawn(refresh_loop(client.clone(), cache.clone()));
        Ok(IndexerChainState {
            cache,
            client,
            refresher,
        })
    }

    /// Fetches the whole state now.
    pub async fn refresh(&self) -> Result<(), ChainIndexError> {
        let fresh = fetch(&mut self.client.clone()).await?;
        *self
            .cache
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = fresh;
        Ok(())
    }

    /// The block number the cached state stands at.
    pub fn block_number(&self) -> u64 {
        read(&self.cache).block_number
    }

    /// Waits until the cached state stands at `block` or later.
    pub async fn wait_for_block(
        &self,
        block: u64,
        timeout: Duration,
    ) -> Result<(), ChainIndexError> {
        let deadline = tokio::time::Instant::now() + timeout;
        while self.block_number() < block {
            if tokio::time::Instant::now() > deadline {
                return Err(ChainIndexError::Behind {
                    at: self.block_number(),
                    wanted: block,
                    waited: timeout,
                });
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(())
    }
}

async fn refresh_loop(mut client: ChainIndexClient<Channel>, cache: Arc<RwLock<Cache>>) {
    let mut backoff = Duration::from_millis(200);
    loop {
        match follow_stream(&mut client, &cache).await {
            Ok(()) => debug!("indexer event stream ended, reconnecting"),
            Err(error) => warn!(%error, "indexer event stream failed, reconnecting"),
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

async fn follow_stream(
    client: &mut ChainIndexClient<Channel>,
    cache: &RwLock<Cache>,
) -> Result<(), ChainIndexError> {
    let mut stream = client
        .subscribe(pb::SubscribeRequest {})
        .await
        .map_err(client_err)?
        .into_inner();
    // anything may have changed while the stream was down
    let mut stale = true;
    while let Some(ev) = stream.message().await.map_err(client_err)? {
        stale |= ev.state_changed || ev.new_round.is_some() || ev.reorg_to.is_some();
        if stale {
            let fresh = fetch(client).await?;
            *cache
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = fresh;
            stale = false;
        } else if let Some(block) = ev.block {
            let mut c = cache
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            c.block_number = block.block_number;
            c.l1_block = block.l1_block;
        }
    }
    Ok(())
}

impl ChainState for IndexerChainState {
    fn last_initialized_round(&self) -> i64 {
        read(&self.cache).round
    }

    fn last_initialized_block_hash(&self) -> [u8; 32] {
        read(&self.cache).round_hash
    }

    fn pre_last_initialized_block_hash(&self) -> [u8; 32] {
        read(&self.cache).pre_round_hash
    }

    fn last_seen_l1_block(&self) -> u64 {
        read(&self.cache).l1_block
    }

    fn sender_info(&self, sender: &PmAddress) -> Result<SenderInfo, PmError> {
        Ok(read(&self.cache)
            .senders
            .get(sender)
            .cloned()
            .unwrap_or_default())
    }

    fn is_active(&self, orchestrator: &PmAddress, round: i64) -> bool {
        matches!(read(&self.cache).orchestrators.get(orchestrator),
            Some((a, d)) if *a > 0 && *a <= round && round < *d)
    }

    fn transcoder_pool_size(&self) -> u64 {
        read(&self.cache).pool_size
    }

    fn claimed_reserve(&self, sender: &PmAddress, claimant: &PmAddress) -> U256 {
        read(&self.cache)
            .claims
            .get(&(*sender, *claimant))
            .copied()
            .unwrap_or_default()
    }

    fn gas_price(&self) -> U256 {
        read(&self.cache).gas_price
    }
}
