//! Waits for the worker pool's results: one reader of the results stream per ingest process
//! hands each result to the push request waiting for it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use livefarm_bus::JobBus;
use livefarm_jobs::{SegmentResult, RESULTS_STREAM};
use livefarm_runtime::Shutdown;
use tokio::sync::oneshot;

type Key = (String, u64);

/// Push requests waiting for their segment's result, by (stream id, seq).
#[derive(Clone, Default)]
pub struct ResultWaiters(Arc<Mutex<HashMap<Key, oneshot::Sender<SegmentResult>>>>);

impl ResultWaiters {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Key, oneshot::Sender<SegmentResult>>> {
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

    pub fn forget(&self, stream_id: &str, seq: u64) {
        self.lock().remove(&(stream_id.to_string(), seq));
    }

    /// Hands a result to its waiter; the first result of a (stream, seq) wins.
    fn deliver(&self, result: SegmentResult) {
        let waiter = self.lock().remove(&(result.stream_id.clone(), result.seq));
        if let Some(tx) = waiter {
            let _ = tx.send(result);
        }
    }
}

fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    if getrandom::fill(&mut buf).is_err() {
        // Uniqueness only matters between ingest processes; the pid and time are a fallback.
        let seed = u64::from(std::process::id()) ^ livefarm_jobs::now_ms();
        for (i, b) in buf.iter_mut().enumerate() {
            *b = (seed >> ((i % 8) * 8)) as u8;
        }
    }
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

pub(crate) fn boundary() -> String {
    random_hex(10)
}

/// Reads the results stream with a consumer group of this process's own, so every ingest
/// process sees every result.
pub(crate) async fn dispatch(bus: Arc<dyn JobBus>, waiters: ResultWaiters, shutdown: Shutdown) {
    let group = format!("ingest-{}", random_hex(6));
    let consumer = "dispatcher";
    let mut backoff = Duration::from_millis(100);
    while !shutdown.is_triggered() {
        let deliveries = tokio::select! {
            read = bus.consume(RESULTS_STREAM, &group, consumer, 100, Duration::from_millis(500)) => read,
            () = shutdown.triggered() => break,
        };
        match deliveries {
            Ok(deliveries) => {
                backoff = Duration::from_millis(100);
                let ids: Vec<_> = deliveries.iter().map(|d| d.id).collect();
                for delivery in deliveries {
                    match SegmentResult::decode(&delivery.payload) {
                        Ok(result) => waiters.deliver(result),
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
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
    // The bus has no group deletion yet: a departed process's group only costs Redis memory.
}
