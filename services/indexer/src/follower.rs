//! The follower: backfills the contracts' logs with batched `eth_getLogs`, then follows the
//! head block by block, checking each block's parent hash against the last one applied. A
//! mismatch (or a vanished cursor block) rolls the derived state back one block at a time
//! through the per-block undo journals until the chains agree again. Cursor, journals and
//! state are saved together after every step, so a restart resumes exactly where it stopped.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use alloy::primitives::{Address, B256, U256};
use futures_util::stream::{self, StreamExt};
use livefarm_bus::{Headers, StreamBus};
use livefarm_runtime::Shutdown;
use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, Notify};
use tracing::{debug, error, info, warn};

use crate::error::IndexerError;
use crate::rpc::{get_logs_split, RawHeader, RawLog, Rpc};
use crate::state::{Applied, ChainData, Contracts, Undo};
use crate::store::Store;

/// Version of the stored state layout; another version is discarded and re-indexed.
const STATE_VERSION: u32 = 1;

/// Blocks applied one by one per step near the head before the state is saved.
const FOLLOW_BATCH: u64 = 256;

/// How the contracts are found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ContractsSource {
    /// Resolved through `Controller.getContract` (§12.1).
    Controller(Address),
    /// Given.
    Explicit(Contracts),
}

/// What the follower is told.
#[derive(Clone, Debug)]
pub struct FollowerOptions {
    /// JSON-RPC endpoint (HTTP).
    pub rpc_url: String,
    /// The contracts to follow.
    pub contracts: ContractsSource,
    /// First block to index when nothing is stored.
    pub start_block: u64,
    /// Blocks behind the head the follower stays (0: follow the head itself).
    pub confirmations: u64,
    /// Recent blocks kept with undo journals; a reorg deeper than this re-indexes from
    /// `start_block`.
    pub reorg_window: u64,
    /// Largest `eth_getLogs` range (ranges the node refuses are halved further).
    pub max_block_range: u64,
    /// `eth_getLogs` requests in flight during a backfill.
    pub concurrency: usize,
    /// Blocks per backfill step; the state is saved after each.
    pub batch_blocks: u64,
    /// Pause between polls once at the head.
    pub poll_interval: Duration,
    /// WebSocket endpoint whose `newHeads` subscription wakes [`Follower::run`] at once;
    /// empty: polling only.
    pub ws_url: String,
    /// Prefix of the store key (`livefarm:indexer`).
    pub key_prefix: String,
    /// Bus stream new blocks and rounds are published on.
    pub events_stream: String,
}

impl FollowerOptions {
    /// Defaults for `rpc_url` and `contracts`.
    pub fn new(rpc_url: impl Into<String>, contracts: ContractsSource) -> FollowerOptions {
        FollowerOptions {
            rpc_url: rpc_url.into(),
            contracts,
            start_block: 0,
            confirmations: 0,
            reorg_window: 64,
            max_block_range: 2000,
            concurrency: 4,
            batch_blocks: 50_000,
            poll_interval: Duration::from_millis(1000),
            ws_url: String::new(),
            key_prefix: livefarm_jobs::INDEXER_KEY_PREFIX.to_owned(),
            events_stream: crate::EVENTS_STREAM.to_owned(),
        }
    }
}

/// The block the state stands at.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor {
    /// Block number.
    pub number: u64,
    /// Block hash.
    pub hash: B256,
    /// Its L1 block number (the number itself on L1 chains).
    pub l1_block: u64,
}

/// A recent block and how to undo it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockRecord {
    /// Block number.
    pub number: u64,
    /// Block hash.
    pub hash: B256,
    /// Parent hash.
    pub parent_hash: B256,
    /// L1 block number.
    pub l1_block: u64,
    /// Its changes, oldest first.
    pub undo: Vec<Undo>,
}

/// Everything the follower stores: where it is, how to step back, and what it derived.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexState {
    /// Layout version.
    pub version: u32,
    /// `eth_chainId`.
    pub chain_id: u64,
    /// The contracts followed.
    pub contracts: Contracts,
    /// The first block indexed.
    pub start_block: u64,
    /// The last block applied; `None` before the first.
    pub cursor: Option<Cursor>,
    /// The last blocks applied, oldest first, with their undo journals.
    pub recent: VecDeque<BlockRecord>,
    /// The derived state at `cursor`.
    pub data: ChainData,
    /// `eth_gasPrice` at the last poll.
    #[serde(default)]
    pub gas_price: U256,
}

impl IndexState {
    fn fresh(chain_id: u64, contracts: Contracts, start_block: u64) -> IndexState {
        IndexState {
            version: STATE_VERSION,
            chain_id,
            contracts,
            start_block,
            cursor: None,
            recent: VecDeque::new(),
            data: ChainData::default(),
            gas_price: U256::ZERO,
        }
    }

    /// The block number the state stands at (`start_block - 1` before the first block).
    pub fn block_number(&self) -> u64 {
        self.cursor
            .map(|c| c.number)
            .unwrap_or(self.start_block.saturating_sub(1))
    }

    /// The L1 block number at the cursor.
    pub fn l1_block(&self) -> u64 {
        self.cursor.map(|c| c.l1_block).unwrap_or(0)
    }

    /// `currentRound()` at the cursor.
    pub fn current_round(&self) -> u64 {
        self.data.rounds.current_round(self.l1_block())
    }
}

/// A block applied (or a rollback), as subscribers see it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct BlockEvent {
    /// Block number.
    pub number: u64,
    /// Block hash.
    pub hash: B256,
    /// L1 block number.
    pub l1_block: u64,
    /// The round this block initialised, if it did.
    pub new_round: Option<u64>,
    /// Set on a rollback: the block the state went back to.
    pub reorg_to: Option<u64>,
    /// Whether the derived state changed.
    pub state_changed: bool,
}

/// Counters for operators and tests.
#[derive(Debug)]
pub struct Stats {
    /// The lowest block whose logs this process requested (`u64::MAX`: none yet).
    pub first_block_fetched: AtomicU64,
    /// Blocks applied.
    pub blocks: AtomicU64,
    /// Logs applied.
    pub logs: AtomicU64,
    /// Blocks rolled back.
    pub rollbacks: AtomicU64,
    /// Re-indexes after a reorg deeper than the window.
    pub resets: AtomicU64,
    /// `eth_getLogs` ranges halved.
    pub splits: AtomicU64,
    /// `newHeads` notifications received over the WebSocket.
    pub ws_heads: AtomicU64,
    /// `newHeads` subscriptions set up (the first one and each reconnect).
    pub ws_subscriptions: AtomicU64,
    /// Whether the `newHeads` subscription is up now.
    pub ws_connected: AtomicBool,
    /// The latest head block number `eth_blockNumber` returned (0: none yet).
    pub head: AtomicU64,
}

impl Default for Stats {
    fn default() -> Self {
        Stats {
            first_block_fetched: AtomicU64::new(u64::MAX),
            blocks: AtomicU64::new(0),
            logs: AtomicU64::new(0),
            rollbacks: AtomicU64::new(0),
            resets: AtomicU64::new(0),
            splits: AtomicU64::new(0),
            ws_heads: AtomicU64::new(0),
            ws_subscriptions: AtomicU64::new(0),
            ws_connected: AtomicBool::new(false),
            head: AtomicU64::new(0),
        }
    }
}

/// A shared view of the follower's state, its events and counters.
#[derive(Clone, Debug)]
pub struct IndexHandle {
    state: Arc<RwLock<IndexState>>,
    events: broadcast::Sender<BlockEvent>,
    stats: Arc<Stats>,
}

impl IndexHandle {
    /// Runs `f` on the current state (keep it short: the follower waits meanwhile).
    pub fn read<R>(&self, f: impl FnOnce(&IndexState) -> R) -> R {
        let guard = self
            .state
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&guard)
    }

    fn write<R>(&self, f: impl FnOnce(&mut IndexState) -> R) -> R {
        let mut guard = self
            .state
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        f(&mut guard)
    }

    /// New blocks, rounds and rollbacks from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<BlockEvent> {
        self.events.subscribe()
    }

    /// The counters.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// An event describing the current block.
    pub fn current_event(&self) -> BlockEvent {
        self.read(|s| BlockEvent {
            number: s.block_number(),
            hash: s.cursor.map(|c| c.hash).unwrap_or_default(),
            l1_block: s.l1_block(),
            new_round: None,
            reorg_to: None,
            state_changed: true,
        })
    }
}

/// Follows one deployment on one chain.
#[derive(Debug)]
pub struct Follower {
    rpc: Rpc,
    store: Store,
    key: String,
    opts: FollowerOptions,
    contracts: Contracts,
    addresses: Vec<Address>,
    topics: Vec<B256>,
    handle: IndexHandle,
    bus: Option<Arc<dyn StreamBus>>,
}

impl Follower {
    /// Connects, resolves the contracts and loads the stored state (a state stored for
    /// another chain, deployment or start block is discarded).
    pub async fn new(opts: FollowerOptions, store: Store) -> Result<Follower, IndexerError> {
        let rpc = Rpc::connect(&opts.rpc_url)?;
        let chain_id = rpc.chain_id().await?;
        let contracts = match opts.contracts {
            ContractsSource::Explicit(c) => c,
            ContractsSource::Controller(controller) => {
                let d = livefarm_chain::resolve(&opts.rpc_url, controller).await?;
                Contracts {
                    ticket_broker: d.ticket_broker,
                    rounds_manager: d.rounds_manager,
                    bonding_manager: d.bonding_manager,
                    service_registry: d.service_registry,
                }
            }
        };
        let key = format!(
            "{}:{chain_id}:{}:state",
            opts.key_prefix,
            alloy::hex::encode(contracts.ticket_broker)
        );
        let stored = match store.load(&key).await? {
            Some(bytes) => match serde_json::from_slice::<IndexState>(&bytes) {
                Ok(s) => Some(s),
                Err(e) => {
                    warn!(key, error = %e, "stored indexer state unreadable, re-indexing");
                    None
                }
            },
            None => None,
        };
        let state = match stored {
            Some(s)
                if s.version == STATE_VERSION
                    && s.chain_id == chain_id
                    && s.contracts == contracts
                    && s.start_block == opts.start_block =>
            {
                info!(key, block = s.block_number(), "resuming from stored state");
                s
            }
            Some(_) => {
                warn!(
                    key,
                    "stored indexer state is for another setup, re-indexing"
                );
                IndexState::fresh(chain_id, contracts, opts.start_block)
            }
            None => IndexState::fresh(chain_id, contracts, opts.start_block),
        };
        let (events, _) = broadcast::channel(1024);
        let handle = IndexHandle {
            state: Arc::new(RwLock::new(state)),
            events,
            stats: Arc::new(Stats::default()),
        };
        let follower = Follower {
            rpc,
            store,
            key,
            opts,
            contracts,
            addresses: contracts.addresses(),
            topics: Contracts::topics(),
            handle,
            bus: None,
        };
        if follower.handle.read(|s| s.cursor.is_none()) {
            follower.load_round_params_latest().await;
        }
        Ok(follower)
    }

    /// Also publishes every block event on `bus` (stream `events_stream`).
    pub fn with_bus(mut self, bus: Arc<dyn StreamBus>) -> Follower {
        self.bus = Some(bus);
        self
    }

    /// A handle on the state, events and counters.
    pub fn handle(&self) -> IndexHandle {
        self.handle.clone()
    }

    /// The store key of the state.
    pub fn store_key(&self) -> &str {
        &self.key
    }

    /// The contracts followed.
    pub fn contracts(&self) -> Contracts {
        self.contracts
    }

    async fn load_round_params_latest(&self) {
        match self
            .rpc
            .round_params(self.contracts.rounds_manager, None)
            .await
        {
            Ok(p) => self.handle.write(|s| s.data.rounds.params = p),
            Err(e) => warn!(error = %e, "cannot read the round length parameters"),
        }
    }

    /// Steps until the state stands at the head (less the confirmations).
    pub async fn sync_to_head(&self) -> Result<(), IndexerError> {
        while self.step().await? {}
        Ok(())
    }

    /// Follows until `shutdown` fires; errors are logged and retried with backoff. At the
    /// head it polls every `poll_interval`, or sooner when `ws_url`'s `newHeads`
    /// subscription reports a block.
    pub async fn run(self, shutdown: Shutdown) {
        let wake = Arc::new(Notify::new());
        let _watcher = (!self.opts.ws_url.is_empty()).then(|| {
            crate::ws::spawn(
                self.opts.ws_url.clone(),
                wake.clone(),
                self.handle.stats.clone(),
                shutdown.clone(),
            )
        });
        let mut backoff = self.opts.poll_interval;
        loop {
            let (wait, wakeable) = tokio::select! {
                r = self.step() => match r {
                    Ok(true) => {
                        backoff = self.opts.poll_interval;
                        continue;
                    }
                    Ok(false) => (self.opts.poll_interval, true),
                    Err(error) => {
                        warn!(%error, "chain follower step failed, retrying");
                        backoff = (backoff * 2).min(Duration::from_secs(30));
                        // a failing node is not hammered once per new head
                        (backoff, false)
                    }
                },
                _ = shutdown.triggered() => return,
            };
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = wake.notified(), if wakeable => {}
                _ = shutdown.triggered() => return,
            }
        }
    }

    /// One step: verify the cursor block, then roll back one block, backfill a batch or
    /// apply the blocks up to the head. `Ok(false)` when there was nothing to do.
    pub async fn step(&self) -> Result<bool, IndexerError> {
        let head = self.rpc.block_number().await?;
        self.handle.stats.head.store(head, Ordering::Relaxed);
        let target = head.saturating_sub(self.opts.confirmations);
        let cursor = self.handle.read(|s| s.cursor);
        debug!(head, target, cursor = ?cursor.map(|c| c.number), "follower step");
        if let Some(c) = cursor {
            match self.rpc.header(c.number).await? {
                Some(h) if h.hash == c.hash => {}
                _ => {
                    self.rollback_one().await?;
                    return Ok(true);
                }
            }
        }
        let next = match cursor {
            Some(c) => c.number + 1,
            None => self.opts.start_block,
        };
        if next > target {
            match self.rpc.gas_price().await {
                Ok(p) => self.handle.write(|s| s.gas_price = p),
                Err(e) => debug!(error = %e, "gas price unavailable"),
            }
            return Ok(false);
        }
        if target - next + 1 > self.opts.reorg_window {
            let end = (target - self.opts.reorg_window)
                .min(next.saturating_add(self.opts.batch_blocks.max(1) - 1));
            self.backfill(next, end).await?;
        } else {
            self.follow(next, target.min(next + FOLLOW_BATCH - 1))
                .await?;
        }
        Ok(true)
    }

    fn note_fetch(&self, from: u64) {
        self.handle
            .stats
            .first_block_fetched
            .fetch_min(from, Ordering::Relaxed);
    }

    /// Applies `[from, end]` from batched `eth_getLogs` without journals: blocks this deep
    /// are taken as final.
    async fn backfill(&self, from: u64, end: u64) -> Result<(), IndexerError> {
        self.note_fetch(from);
        let step = self.opts.max_block_range.max(1);
        let mut ranges = Vec::new();
        let mut a = from;
        while a <= end {
            let b = a.saturating_add(step - 1).min(end);
            ranges.push((a, b));
            a = b + 1;
        }
        let rpc = &self.rpc;
        let addresses = &self.addresses;
        let topics = &self.topics;
        let mut fetched = stream::iter(ranges)
            .map(|(a, b)| get_logs_split(a, b, move |x, y| rpc.logs(x, y, addresses, topics)))
            .buffered(self.opts.concurrency.max(1));
        let mut changed = false;
        let mut new_round = None;
        while let Some(result) = fetched.next().await {
            let (logs, splits) = result?;
            self.handle
                .stats
                .splits
                .fetch_add(splits, Ordering::Relaxed);
            let mut scratch = Vec::new();
            let (applied, params_at) = self.apply_logs(&logs, &mut scratch)?;
            changed |= applied.changed;
            if let Some(r) = applied_round(&applied, &self.handle) {
                new_round = Some(r);
            }
            if let Some(block) = params_at {
                let p = self
                    .rpc
                    .round_params(self.contracts.rounds_manager, Some(block))
                    .await?;
                self.handle
                    .write(|s| s.data.set_round_params(p, &mut Vec::new()));
            }
        }
        let header = self.rpc.header(end).await?.ok_or(IndexerError::Rpc {
            method: "eth_getBlockByNumber",
            reason: format!("block {end} not found"),
            too_many_results: false,
        })?;
        self.handle.write(|s| {
            s.cursor = Some(cursor_of(&header));
            // these blocks are now final; older journals would skip the backfilled ones
            s.recent.clear();
        });
        self.handle
            .stats
            .blocks
            .fetch_add(end - from + 1, Ordering::Relaxed);
        self.save().await?;
        debug!(from, end, "backfilled");
        self.publish(vec![BlockEvent {
            number: header.number,
            hash: header.hash,
            l1_block: header.l1_block(),
            new_round,
            reorg_to: None,
            state_changed: changed,
        }])
        .await;
        Ok(())
    }

    /// Applies blocks `[from, to]` one by one, each with its undo journal. Headers come
    /// concurrently and must link by parent hash to the cursor and to each other; the logs of
    /// the whole span come in one `eth_getLogs` and must carry their header's hash; the last
    /// header is read again afterwards, so logs and headers are of one chain. Whatever does
    /// not check out is left for the next step.
    async fn follow(&self, from: u64, to: u64) -> Result<(), IndexerError> {
        let rpc = &self.rpc;
        let mut headers = Vec::new();
        let mut fetched = stream::iter(from..=to)
            .map(|n| rpc.header(n))
            .buffered(self.opts.concurrency.max(1));
        while let Some(h) = fetched.next().await {
            match h? {
                Some(h) => headers.push(h),
                None => break,
            }
        }
        drop(fetched);
        let Some(last) = headers.last().copied() else {
            return Ok(());
        };
        self.note_fetch(from);
        let (logs, splits) = get_logs_split(from, last.number, |a, b| {
            rpc.logs(a, b, &self.addresses, &self.topics)
        })
        .await?;
        self.handle
            .stats
            .splits
            .fetch_add(splits, Ordering::Relaxed);
        let still = self.rpc.header(last.number).await?;
        if still.map(|h| h.hash) != Some(last.hash) {
            debug!(block = last.number, "head moved while fetching, retrying");
            return Ok(());
        }

        let mut events = Vec::new();
        let mut rolled_back = false;
        let mut logs = logs.into_iter().peekable();
        let mut parent = self.handle.read(|s| s.cursor.map(|c| c.hash));
        for header in headers {
            if parent.is_some_and(|p| p != header.parent_hash) {
                // a fork below the first fetched block: step back (after saving what was
                // applied); a fork between fetched blocks: retry next step
                rolled_back = events.is_empty();
                break;
            }
            let mut block_logs = Vec::new();
            while let Some(l) = logs.next_if(|l| l.block_number == header.number) {
                block_logs.push(l);
            }
            if block_logs.iter().any(|l| l.block_hash != header.hash) {
                debug!(block = header.number, "logs of another fork, retrying");
                break;
            }
            let n = header.number;
            let mut undo = Vec::new();
            let (applied, params_at) = self.apply_logs(&block_logs, &mut undo)?;
            if params_at.is_some() {
                let p = self
                    .rpc
                    .round_params(self.contracts.rounds_manager, Some(n))
                    .await?;
                self.handle.write(|s| s.data.set_round_params(p, &mut undo));
            }
            let new_round = applied_round(&applied, &self.handle);
            let window = self.opts.reorg_window.max(1) as usize;
            self.handle.write(|s| {
                s.cursor = Some(cursor_of(&header));
                s.recent.push_back(BlockRecord {
                    number: header.number,
                    hash: header.hash,
                    parent_hash: header.parent_hash,
                    l1_block: header.l1_block(),
                    undo,
                });
                while s.recent.len() > window {
                    s.recent.pop_front();
                }
            });
            parent = Some(header.hash);
            self.handle.stats.blocks.fetch_add(1, Ordering::Relaxed);
            events.push(BlockEvent {
                number: header.number,
                hash: header.hash,
                l1_block: header.l1_block(),
                new_round,
                reorg_to: None,
                state_changed: applied.changed,
            });
        }
        if !events.is_empty() {
            self.save().await?;
            self.publish(events).await;
        }
        if rolled_back {
            self.rollback_one().await?;
        }
        Ok(())
    }

    /// Folds logs into the state under one lock. Returns what changed and the block of the
    /// last round parameter update, if any.
    fn apply_logs(
        &self,
        logs: &[RawLog],
        undo: &mut Vec<Undo>,
    ) -> Result<(Applied, Option<u64>), IndexerError> {
        let contracts = self.contracts;
        let mut total = Applied::default();
        let mut params_at = None;
        self.handle.write(|s| {
            for log in logs.iter().filter(|l| !l.removed) {
                let applied =
                    s.data
                        .apply(&contracts, log, undo)
                        .map_err(|e| IndexerError::Decode {
                            event: "contract",
                            block: log.block_number,
                            reason: e.to_string(),
                        })?;
                total.changed |= applied.changed;
                total.new_round |= applied.new_round;
                if applied.round_params {
                    params_at = Some(log.block_number);
                }
            }
            Ok::<_, IndexerError>(())
        })?;
        self.handle
            .stats
            .logs
            .fetch_add(logs.len() as u64, Ordering::Relaxed);
        Ok((total, params_at))
    }

    /// Undoes the newest block; with no journal left (a reorg deeper than the window),
    /// starts over from `start_block`.
    async fn rollback_one(&self) -> Result<(), IndexerError> {
        let reset = self.handle.write(|s| match s.recent.pop_back() {
            Some(rec) => {
                s.data.rollback(rec.undo);
                s.cursor = Some(Cursor {
                    number: rec.number.saturating_sub(1),
                    hash: rec.parent_hash,
                    l1_block: s.recent.back().map(|r| r.l1_block).unwrap_or(rec.l1_block),
                });
                if rec.number == 0 {
                    s.cursor = None;
                }
                false
            }
            None => {
                let fresh = IndexState::fresh(s.chain_id, s.contracts, s.start_block);
                *s = fresh;
                true
            }
        });
        if reset {
            error!("reorg deeper than the reorg window, re-indexing from the start block");
            self.handle.stats.resets.fetch_add(1, Ordering::Relaxed);
            self.load_round_params_latest().await;
        } else {
            self.handle.stats.rollbacks.fetch_add(1, Ordering::Relaxed);
        }
        self.save().await?;
        let ev = BlockEvent {
            reorg_to: Some(self.handle.read(|s| s.block_number())),
            ..self.handle.current_event()
        };
        info!(to = ev.number, "rolled back one block after a reorg");
        self.publish(vec![ev]).await;
        Ok(())
    }

    async fn save(&self) -> Result<(), IndexerError> {
        let bytes = self
            .handle
            .read(serde_json::to_vec)
            .map_err(|e| IndexerError::Corrupt(e.to_string()))?;
        self.store.save(&self.key, bytes).await
    }

    async fn publish(&self, events: Vec<BlockEvent>) {
        if let Some(bus) = &self.bus {
            let headers = Headers::new();
            for ev in &events {
                let Ok(payload) = serde_json::to_vec(ev) else {
                    continue;
                };
                if let Err(error) = bus
                    .publish(&self.opts.events_stream, &payload, &headers)
                    .await
                {
                    warn!(%error, "cannot publish a chain event on the bus");
                    break;
                }
            }
        }
        for ev in events {
            // no subscriber is fine
            let _ = self.handle.events.send(ev);
        }
    }
}

fn applied_round(applied: &Applied, handle: &IndexHandle) -> Option<u64> {
    applied
        .new_round
        .then(|| handle.read(|s| s.data.rounds.last_initialized_round))
}

fn cursor_of(h: &RawHeader) -> Cursor {
    Cursor {
        number: h.number,
        hash: h.hash,
        l1_block: h.l1_block(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_state_round_trips_through_json() {
        let mut s = IndexState::fresh(
            31337,
            Contracts {
                ticket_broker: Address::repeat_byte(1),
                rounds_manager: Address::repeat_byte(2),
                bonding_manager: Address::repeat_byte(3),
                service_registry: Address::repeat_byte(4),
            },
            7,
        );
        let sender = Address::repeat_byte(9);
        let undo = vec![Undo::Sender(sender, None)];
        s.data.senders.entry(sender).or_default().deposit = U256::from(123u64);
        s.data
            .senders
            .entry(sender)
            .or_default()
            .claims
            .entry(4)
            .or_default()
            .by_claimant
            .insert(Address::repeat_byte(5), U256::from(6u64));
        s.data.redeemed.insert(B256::repeat_byte(3), 11);
        s.data.rounds.block_hashes.insert(4, B256::repeat_byte(4));
        s.cursor = Some(Cursor {
            number: 12,
            hash: B256::repeat_byte(0xaa),
            l1_block: 12,
        });
        s.recent.push_back(BlockRecord {
            number: 12,
            hash: B256::repeat_byte(0xaa),
            parent_hash: B256::repeat_byte(0xbb),
            l1_block: 12,
            undo,
        });
        let bytes = serde_json::to_vec(&s).expect("serialises");
        let back: IndexState = serde_json::from_slice(&bytes).expect("deserialises");
        assert_eq!(back, s);
    }
}
