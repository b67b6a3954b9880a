//! Waiting for one job's result: a process that enqueues jobs and must answer a request when
//! the result arrives (HTTP push, the orchestrator's `/segment`) registers a waiter, and one
//! dispatcher per process reads the results stream and hands each result to its waiter.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use livefarm_bus::JobBus;
use tokio::sync::oneshot;

use crate::{SegmentResult, RESULTS_STREAM};

type Key = (String, u64);
type Waiting = HashMap<Key, oneshot::Sender<SegmentResult>>;

/// Requests waiting for their segment's result, by (stream id, seq).
#[derive(Clone, Default)]
pub struct ResultWaiters(Arc<Mutex<Waiting>>);

impl ResultWaiters {
    fn lock(&self) -> std::sync::MutexGuard<'_, Waiting> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Registers interest before the job is enqueued, so a fast result is never missed.
    pub fn register(&self, stream_id: &str, seq: u64) -> oneshot::Receiver<SegmentResult> {
        let (tx, rx) = oneshot::channel();
        self.lock().insert((stream_id.to_string(), seq), tx);
        rx
    }

    /// Drops a registration whose request gave up.
    pub fn forget(&self, stream_id: &str, seq: u64) {
        self.lock().remove(&(stream_id.to_string(), seq));
    }

    /// Requests waiting now.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether nothing is waiting.
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    /// Hands a result to its waiter; the first result of a (stream, seq) wins. Returns
    /// whether someone was waiting.
    pub fn deliver(&self, result: SegmentResult) -> bool {
        let waiter = self.lock().remove(&(result.stream_id.clone(), result.seq));
        match waiter {
            Some(tx) => tx.send(result).is_ok(),
            None => false,
        }
    }
}

/// A consumer group name no other process uses, so every process sees every result.
pub fn private_group(prefix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut random = [0u8; 6];
    let entropy = match getrandom::fill(&mut random) {
        Ok(()) => random.iter().map(|b| format!("{b:02x}")).collect(),
        // Uniqueness only matters between processes: pid and time are a fallback.
        Err(_) => format!("{}-{}", std::process::id(), crate::now_ms()),
    };
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{prefix}-{entropy}-{n}")
}

/// Reads [`RESULTS_STREAM`] under `group` until `stop` resolves and hands every result to
/// `waiters`; bus errors are retried with backoff.
pub async fn dispatch_results(
    bus: Arc<dyn JobBus>,
    waiters: ResultWaiters,
    group: String,
    stop: impl Future<Output = ()>,
) {
    let consumer = "dispatcher";
    let mut backoff = Duration::from_millis(100);
    tokio::pin!(stop);
    loop {
        let deliveries = tokio::select! {
            read = bus.consume(RESULTS_STREAM, &group, consumer, 100, Duration::from_millis(500)) => read,
            () = &mut stop => break,
        };
        match deliveries {
            Ok(deliveries) => {
                backoff = Duration::from_millis(100);
                let ids: Vec<_> = deliveries.iter().map(|d| d.id).collect();
                for delivery in deliveries {
                    match SegmentResult::decode(&delivery.payload) {
                        Ok(result) => {
                            waiters.deliver(result);
                        }
                        Err(error) => tracing::warn!(%error, "undecodable result skipped"),
                    }
                }
                if !ids.is_empty() {
                    if let Err(error) = bus.ack_batch(RESULTS_STREAM, &group, &ids).await {
                        tracing::warn!(%error, "results could not be acknowledged");
                    }
                }
            }
            Err(error) => {
                tracing::warn!(%error, "reading results failed; retrying");
                tokio::select! {
                    () = tokio::time::sleep(backoff) => {}
                    () = &mut stop => break,
                }
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
    // The bus has no group deletion yet: a departed process's group only costs Redis memory.
}
