//! Waiting for one job's result: a process that enqueues jobs and must answer a request when
//! the result arrives (HTTP push, the orchestrator's `/segment`) registers a waiter, and one
//! dispatcher per process tails the results stream (without a consumer group, so every
//! process sees every result) and hands each result to its waiter.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
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

/// Results read per call.
const BATCH: usize = 100;
/// Longest one read blocks, so that `stop` is noticed between reads too.
const BLOCK: Duration = Duration::from_millis(500);

/// Tails [`RESULTS_STREAM`] until `stop` resolves and hands every result to `waiters`; bus
/// errors are retried with backoff.
///
/// No consumer group is used, so any number of processes each see every result and leave
/// nothing behind in Redis when they go. Results published before the dispatcher started have
/// no waiter and are skipped: it first takes the stream's last id, then reads everything after
/// it, so a result published between start-up and the first read is not missed. Spawn it
/// before the process enqueues jobs.
pub async fn dispatch_results(
    bus: Arc<dyn JobBus>,
    waiters: ResultWaiters,
    stop: impl Future<Output = ()>,
) {
    tokio::pin!(stop);
    let mut backoff = Backoff::default();
    let mut cursor = loop {
        let last = tokio::select! {
            last = bus.last_id(RESULTS_STREAM) => last,
            () = &mut stop => return,
        };
        match last {
            Ok(last) => break last.unwrap_or_default(),
            Err(error) => {
                tracing::warn!(%error, "cannot find where the results stream ends; retrying");
                if !backoff.wait(&mut stop).await {
                    return;
                }
            }
        }
    };
    loop {
        let read = tokio::select! {
            read = bus.read_after(RESULTS_STREAM, cursor, BATCH, BLOCK) => read,
            () = &mut stop => return,
        };
        match read {
            Ok(messages) => {
                backoff = Backoff::default();
                for message in messages {
                    cursor = message.id;
                    match SegmentResult::decode(&message.payload) {
                        Ok(result) => {
                            waiters.deliver(result);
                        }
                        Err(error) => tracing::warn!(%error, "undecodable result skipped"),
                    }
                }
            }
            Err(error) => {
                tracing::warn!(%error, "reading results failed; retrying");
                if !backoff.wait(&mut stop).await {
                    return;
                }
            }
        }
    }
}

/// Doubling delays between retries, from 100 ms up to 5 s.
struct Backoff(Duration);

impl Default for Backoff {
    fn default() -> Self {
        Self(Duration::from_millis(100))
    }
}

impl Backoff {
    /// Sleeps the current delay and doubles it; false if `stop` resolved first.
    async fn wait(&mut self, stop: &mut Pin<&mut impl Future<Output = ()>>) -> bool {
        let delay = self.0;
        self.0 = (self.0 * 2).min(Duration::from_secs(5));
        tokio::select! {
            () = tokio::time::sleep(delay) => true,
            () = stop.as_mut() => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use livefarm_bus::{
        BusFuture, BusOptions, Delivery, GroupStats, Headers, JobBus, KvStore, MemoryBus, Message,
        MessageId, StreamBus,
    };
    use tokio::sync::oneshot;

    use super::*;
    use crate::{ResultStatus, Timings};

    fn result(stream_id: &str, seq: u64, worker_id: &str) -> SegmentResult {
        SegmentResult {
            stream_id: stream_id.to_owned(),
            seq,
            worker_id: worker_id.to_owned(),
            status: ResultStatus::Ok,
            renditions: vec![],
            decoded_pixels: 0,
            discontinuity: false,
            source_width: 0,
            source_height: 0,
            timings: Timings::default(),
            error: None,
            attempt: 1,
        }
    }

    async fn publish(bus: &dyn JobBus, result: &SegmentResult) {
        bus.publish(RESULTS_STREAM, &result.encode(), &result.headers())
            .await
            .expect("publish result");
    }

    /// Starts a dispatcher; dropping or firing the sender stops it.
    fn spawn(
        bus: Arc<dyn JobBus>,
        waiters: &ResultWaiters,
    ) -> (oneshot::Sender<()>, tokio::task::JoinHandle<()>) {
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(dispatch_results(bus, waiters.clone(), async move {
            let _ = stopped.await;
        }));
        (stop, task)
    }

    async fn received(rx: oneshot::Receiver<SegmentResult>) -> SegmentResult {
        tokio::time::timeout(Duration::from_secs(5), rx)
            .await
            .expect("result within 5 s")
            .expect("waiter kept")
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_dispatcher_gets_new_results_and_skips_older_ones() {
        let bus: Arc<dyn JobBus> = Arc::new(MemoryBus::new(BusOptions::default()));
        publish(bus.as_ref(), &result("cam", 1, "before-start")).await;

        let (one, two) = (ResultWaiters::default(), ResultWaiters::default());
        let (stop_one, task_one) = spawn(Arc::clone(&bus), &one);
        let (stop_two, task_two) = spawn(Arc::clone(&bus), &two);
        // Let both take their starting point.
        tokio::time::sleep(Duration::from_millis(200)).await;

        let (one_old, two_old) = (one.register("cam", 1), two.register("cam", 1));
        let (one_new, two_new) = (one.register("cam", 2), two.register("cam", 2));
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert_eq!(one.len(), 2, "a result from before start-up was delivered");

        publish(bus.as_ref(), &result("cam", 2, "w")).await;
        publish(bus.as_ref(), &result("cam", 1, "again")).await;
        for rx in [one_new, two_new] {
            assert_eq!(received(rx).await, result("cam", 2, "w"));
        }
        for rx in [one_old, two_old] {
            assert_eq!(received(rx).await.worker_id, "again");
        }
        assert!(one.is_empty() && two.is_empty());

        // Neither created a consumer group: its backlog would show as pending or lag.
        assert_eq!(
            bus.group_stats(RESULTS_STREAM, "any").await.expect("stats"),
            GroupStats { pending: 0, lag: 3 }
        );

        stop_one.send(()).expect("dispatcher running");
        drop(stop_two);
        for task in [task_one, task_two] {
            tokio::time::timeout(Duration::from_secs(5), task)
                .await
                .expect("stops promptly")
                .expect("no panic");
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_result_published_right_after_start_up_is_not_missed() {
        let inner = MemoryBus::new(BusOptions::default());
        publish(&inner, &result("cam", 1, "before-start")).await;
        let bus: Arc<dyn JobBus> = Arc::new(PublishAfterLastId {
            inner,
            result: result("cam", 2, "racer"),
        });
        let waiters = ResultWaiters::default();
        let rx = waiters.register("cam", 2);
        let (_stop, _task) = spawn(bus, &waiters);
        assert_eq!(received(rx).await.worker_id, "racer");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn undecodable_results_are_skipped() {
        let bus: Arc<dyn JobBus> = Arc::new(MemoryBus::new(BusOptions::default()));
        let waiters = ResultWaiters::default();
        let (_stop, _task) = spawn(Arc::clone(&bus), &waiters);
        tokio::time::sleep(Duration::from_millis(200)).await;
        let rx = waiters.register("cam", 4);
        bus.publish(RESULTS_STREAM, b"not json", &Headers::new())
            .await
            .expect("publish");
        publish(bus.as_ref(), &result("cam", 4, "w")).await;
        assert_eq!(received(rx).await.seq, 4);
    }

    /// A memory bus that publishes `result` right after answering `last_id`, as a worker
    /// would if it finished between the dispatcher's start-up and its first read.
    #[derive(Debug)]
    struct PublishAfterLastId {
        inner: MemoryBus,
        result: SegmentResult,
    }

    impl StreamBus for PublishAfterLastId {
        fn options(&self) -> &BusOptions {
            self.inner.options()
        }
        fn ping(&self) -> BusFuture<'_, ()> {
            self.inner.ping()
        }
        fn publish<'a>(
            &'a self,
            stream: &'a str,
            payload: &'a [u8],
            headers: &'a Headers,
        ) -> BusFuture<'a, MessageId> {
            self.inner.publish(stream, payload, headers)
        }
        fn ensure_group<'a>(&'a self, stream: &'a str, group: &'a str) -> BusFuture<'a, ()> {
            self.inner.ensure_group(stream, group)
        }
        fn consume<'a>(
            &'a self,
            stream: &'a str,
            group: &'a str,
            consumer: &'a str,
            max: usize,
            block: Duration,
        ) -> BusFuture<'a, Vec<Delivery>> {
            self.inner.consume(stream, group, consumer, max, block)
        }
        fn ack<'a>(
            &'a self,
            stream: &'a str,
            group: &'a str,
            id: MessageId,
        ) -> BusFuture<'a, bool> {
            self.inner.ack(stream, group, id)
        }
        fn reclaim<'a>(
            &'a self,
            stream: &'a str,
            group: &'a str,
            consumer: &'a str,
            min_idle: Duration,
            max: usize,
        ) -> BusFuture<'a, Vec<Delivery>> {
            self.inner.reclaim(stream, group, consumer, min_idle, max)
        }
        fn group_stats<'a>(&'a self, stream: &'a str, group: &'a str) -> BusFuture<'a, GroupStats> {
            self.inner.group_stats(stream, group)
        }
        fn stream_len<'a>(&'a self, stream: &'a str) -> BusFuture<'a, u64> {
            self.inner.stream_len(stream)
        }
        fn range<'a>(
            &'a self,
            stream: &'a str,
            after: Option<MessageId>,
            count: usize,
        ) -> BusFuture<'a, Vec<Message>> {
            self.inner.range(stream, after, count)
        }
        fn read_after<'a>(
            &'a self,
            stream: &'a str,
            after: MessageId,
            max: usize,
            block: Duration,
        ) -> BusFuture<'a, Vec<Message>> {
            self.inner.read_after(stream, after, max, block)
        }
        fn last_id<'a>(&'a self, stream: &'a str) -> BusFuture<'a, Option<MessageId>> {
            Box::pin(async move {
                let last = self.inner.last_id(stream).await?;
                publish(&self.inner, &self.result).await;
                Ok(last)
            })
        }
        fn delete_stream<'a>(&'a self, stream: &'a str) -> BusFuture<'a, bool> {
            self.inner.delete_stream(stream)
        }
    }

    impl KvStore for PublishAfterLastId {
        fn set_with_ttl<'a>(
            &'a self,
            key: &'a str,
            value: &'a [u8],
            ttl: Duration,
        ) -> BusFuture<'a, ()> {
            self.inner.set_with_ttl(key, value, ttl)
        }
        fn get<'a>(&'a self, key: &'a str) -> BusFuture<'a, Option<Vec<u8>>> {
            self.inner.get(key)
        }
        fn delete<'a>(&'a self, key: &'a str) -> BusFuture<'a, bool> {
            self.inner.delete(key)
        }
        fn scan_prefix<'a>(&'a self, prefix: &'a str) -> BusFuture<'a, Vec<(String, Vec<u8>)>> {
            self.inner.scan_prefix(prefix)
        }
        fn claim_affinity<'a>(
            &'a self,
            key: &'a str,
            owner: &'a str,
            ttl: Duration,
        ) -> BusFuture<'a, bool> {
            self.inner.claim_affinity(key, owner, ttl)
        }
        fn renew_affinity<'a>(
            &'a self,
            key: &'a str,
            owner: &'a str,
            ttl: Duration,
        ) -> BusFuture<'a, bool> {
            self.inner.renew_affinity(key, owner, ttl)
        }
        fn release_affinity<'a>(&'a self, key: &'a str, owner: &'a str) -> BusFuture<'a, bool> {
            self.inner.release_affinity(key, owner)
        }
    }
}
