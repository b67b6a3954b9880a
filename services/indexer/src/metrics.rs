//! The indexer's Prometheus metrics. One collector, registered once in the process-wide
//! registry, reads the running service's [`Stats`](crate::Stats) and state at scrape time,
//! so the follower keeps a single set of counters. Tests may build several followers in one
//! process: only the one [`run`](crate::run) exports is scraped (the latest started).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex, PoisonError};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

use crate::follower::IndexHandle;

/// The handle of the service being exported, tagged so that an older service stopping does
/// not clear a newer one's.
#[derive(Debug, Default)]
struct Source {
    current: Mutex<Option<(u64, IndexHandle)>>,
}

static SOURCE: LazyLock<Arc<Source>> = LazyLock::new(|| {
    let source = Arc::new(Source::default());
    livefarm_telemetry::metrics::registry().register_collector(Box::new(source.clone()));
    source
});

static NEXT_ID: AtomicU64 = AtomicU64::new(0);

/// Keeps `handle` exported until dropped.
#[derive(Debug)]
pub(crate) struct Exported {
    id: u64,
}

impl Drop for Exported {
    fn drop(&mut self) {
        let mut current = SOURCE
            .current
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if current.as_ref().is_some_and(|(id, _)| *id == self.id) {
            *current = None;
        }
    }
}

/// Exports `handle`'s counters and state on `/metrics` until the guard is dropped.
pub(crate) fn export(handle: IndexHandle) -> Exported {
    let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
    *SOURCE
        .current
        .lock()
        .unwrap_or_else(PoisonError::into_inner) = Some((id, handle));
    Exported { id }
}

/// One scrape's values, read without holding any lock while encoding.
struct Snapshot {
    blocks: u64,
    logs: u64,
    rollbacks: u64,
    resets: u64,
    splits: u64,
    ws_heads: u64,
    ws_subscriptions: u64,
    ws_connected: bool,
    head: u64,
    block: u64,
    l1_block: u64,
    last_initialized_round: u64,
}

impl Snapshot {
    fn of(handle: &IndexHandle) -> Snapshot {
        let stats = handle.stats();
        let (block, l1_block, last_initialized_round) = handle.read(|s| {
            (
                s.block_number(),
                s.l1_block(),
                s.data.rounds.last_initialized_round,
            )
        });
        Snapshot {
            blocks: stats.blocks.load(Ordering::Relaxed),
            logs: stats.logs.load(Ordering::Relaxed),
            rollbacks: stats.rollbacks.load(Ordering::Relaxed),
            resets: stats.resets.load(Ordering::Relaxed),
            splits: stats.splits.load(Ordering::Relaxed),
            ws_heads: stats.ws_heads.load(Ordering::Relaxed),
            ws_subscriptions: stats.ws_subscriptions.load(Ordering::Relaxed),
            ws_connected: stats.ws_connected.load(Ordering::Relaxed),
            head: stats.head.load(Ordering::Relaxed),
            block,
            l1_block,
            last_initialized_round,
        }
    }
}

fn counter(encoder: &mut DescriptorEncoder, name: &str, help: &str, v: u64) -> std::fmt::Result {
    // the text encoder appends `_total` to counters
    let metric = ConstCounter::new(v);
    metric.encode(encoder.encode_descriptor(name, help, None, metric.metric_type())?)
}

fn gauge(encoder: &mut DescriptorEncoder, name: &str, help: &str, v: u64) -> std::fmt::Result {
    // gauges encode as i64; block numbers and rounds stay far below its range
    let metric = ConstGauge::new(i64::try_from(v).unwrap_or(i64::MAX));
    metric.encode(encoder.encode_descriptor(name, help, None, metric.metric_type())?)
}

impl Collector for Source {
    fn encode(&self, mut encoder: DescriptorEncoder) -> std::fmt::Result {
        let snapshot = {
            let current = self.current.lock().unwrap_or_else(PoisonError::into_inner);
            match current.as_ref() {
                Some((_, handle)) => Snapshot::of(handle),
                None => return Ok(()),
            }
        };
        let s = snapshot;
        let e = &mut encoder;
        counter(e, "livefarm_indexer_blocks", "blocks applied", s.blocks)?;
        counter(e, "livefarm_indexer_logs", "contract logs applied", s.logs)?;
        counter(
            e,
            "livefarm_indexer_reorg_blocks",
            "blocks rolled back by reorgs",
            s.rollbacks,
        )?;
        counter(
            e,
            "livefarm_indexer_reindexes",
            "re-indexes from the start block after a reorg deeper than the window",
            s.resets,
        )?;
        counter(
            e,
            "livefarm_indexer_get_logs_splits",
            "eth_getLogs ranges halved because the node refused them",
            s.splits,
        )?;
        gauge(
            e,
            "livefarm_indexer_block",
            "block number the index stands at",
            s.block,
        )?;
        gauge(
            e,
            "livefarm_indexer_l1_block",
            "L1 block number of the block the index stands at",
            s.l1_block,
        )?;
        gauge(
            e,
            "livefarm_indexer_head_block",
            "latest chain head block number seen (0: none yet)",
            s.head,
        )?;
        gauge(
            e,
            "livefarm_indexer_lag_blocks",
            "blocks between the chain head seen and the index",
            s.head.saturating_sub(s.block),
        )?;
        gauge(
            e,
            "livefarm_indexer_last_initialized_round",
            "last initialised round at the indexed block",
            s.last_initialized_round,
        )?;
        counter(
            e,
            "livefarm_indexer_ws_new_heads",
            "newHeads notifications received over the WebSocket",
            s.ws_heads,
        )?;
        counter(
            e,
            "livefarm_indexer_ws_subscriptions",
            "newHeads subscriptions set up (the first one and each reconnect)",
            s.ws_subscriptions,
        )?;
        gauge(
            e,
            "livefarm_indexer_ws_connected",
            "whether the newHeads subscription is up (1) or not (0)",
            u64::from(s.ws_connected),
        )
    }
}
