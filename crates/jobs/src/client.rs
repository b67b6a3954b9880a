//! [`SegmentClient`]: the one way to hand a segment to the worker pool and wait for its
//! result (HTTP push, the orchestrator's `/segment`, and any other producer that answers a
//! request with the renditions).
//!
//! One client per process: it owns the process's only tail of [`RESULTS_STREAM`] (read without
//! a consumer group, so every process sees every result and leaves nothing behind in Redis)
//! and hands each result to the submitter waiting for its `(stream_id, seq)`. Clones share the
//! tail.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use livefarm_bus::JobBus;
use tokio::sync::{oneshot, watch};

use crate::tail::{Tail, TailFrom, TailOptions};
use crate::{JobsError, ResultError, ResultStatus, SegmentJob, SegmentResult, RESULTS_STREAM};

/// Why a submitted segment has no renditions.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SubmitError {
    /// The job could not be put on the bus (or was invalid).
    #[error("enqueueing the segment failed: {0}")]
    Enqueue(String),
    /// No result arrived in time (or the client was stopped).
    #[error("no result within {0:?}")]
    Timeout(Duration),
    /// The pool gave up on the segment.
    #[error("{kind}: {message}")]
    Failed { kind: String, message: String },
    /// The segment's deadline passed before a worker got to it.
    #[error("segment missed its deadline")]
    Dropped,
}

impl From<JobsError> for SubmitError {
    fn from(error: JobsError) -> Self {
        SubmitError::Enqueue(error.to_string())
    }
}

type Key = (String, u64);

/// Submitters waiting for their segment's result, by `(stream_id, seq)`.
#[derive(Default)]
struct Waiters(Mutex<HashMap<Key, oneshot::Sender<SegmentResult>>>);

impl Waiters {
    fn lock(&self) -> MutexGuard<'_, HashMap<Key, oneshot::Sender<SegmentResult>>> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn register(&self, key: Key) -> oneshot::Receiver<SegmentResult> {
        let (tx, rx) = oneshot::channel();
        self.lock().insert(key, tx);
        rx
    }

    /// Drops the registration of `key` if its submitter is gone (a later submitter of the same
    /// key keeps its own).
    fn forget_if_gone(&self, key: &Key) {
        let mut waiting = self.lock();
        if waiting.get(key).is_some_and(oneshot::Sender::is_closed) {
            waiting.remove(key);
        }
    }

    /// Hands a result to its waiter; the first result of a `(stream_id, seq)` wins.
    fn deliver(&self, result: SegmentResult) -> bool {
        let waiter = self.lock().remove(&(result.stream_id.clone(), result.seq));
        waiter.is_some_and(|tx| tx.send(result).is_ok())
    }
}

/// Submits segment jobs and waits for their results over one results tail (see the module
/// docs). Cheap to clone.
#[derive(Clone)]
pub struct SegmentClient {
    bus: Arc<dyn JobBus>,
    waiters: Arc<Waiters>,
    /// Turns true once the tail's starting point is fixed: nothing is enqueued before, so no
    /// result can slip between the tail's start and its first read.
    ready: watch::Receiver<bool>,
}

impl std::fmt::Debug for SegmentClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SegmentClient")
            .field("waiting", &self.waiting())
            .field("ready", &*self.ready.borrow())
            .finish_non_exhaustive()
    }
}

impl SegmentClient {
    /// Starts the client's results tail on `bus` (a tokio task that runs until `stop`
    /// resolves). Results published before it started are not delivered.
    pub fn start(bus: Arc<dyn JobBus>, stop: impl Future<Output = ()> + Send + 'static) -> Self {
        let waiters = Arc::new(Waiters::default());
        let (ready_tx, ready) = watch::channel(false);
        let mut tail = Tail::new(
            Arc::clone(&bus),
            RESULTS_STREAM,
            TailFrom::End,
            TailOptions::default(),
        );
        let delivering = Arc::clone(&waiters);
        tokio::spawn(async move {
            tokio::pin!(stop);
            tokio::select! {
                _ = tail.start() => {}
                () = &mut stop => return,
            }
            let _ = ready_tx.send(true);
            loop {
                let message = tokio::select! {
                    message = tail.next() => message,
                    () = &mut stop => return,
                };
                match SegmentResult::decode(&message.payload) {
                    Ok(result) => {
                        delivering.deliver(result);
                    }
                    Err(error) => tracing::warn!(%error, "undecodable result skipped"),
                }
            }
        });
        SegmentClient {
            bus,
            waiters,
            ready,
        }
    }

    /// The bus the client enqueues on.
    pub fn bus(&self) -> &Arc<dyn JobBus> {
        &self.bus
    }

    /// Submitters waiting now.
    pub fn waiting(&self) -> usize {
        self.waiters.lock().len()
    }

    /// Enqueues `job` (its source must be stored at `job.source_key`) and waits up to `wait`
    /// for its result; only an `ok` result is returned as such. The job's `(stream_id, seq)`
    /// must be new: a result of an earlier job with the same key would answer this one.
    pub async fn submit(
        &self,
        job: &SegmentJob,
        wait: Duration,
    ) -> Result<SegmentResult, SubmitError> {
        let key = (job.stream_id.clone(), job.seq);
        // registered before the job exists, so even the fastest result finds its waiter
        let mut registration = Registration {
            waiters: &self.waiters,
            rx: Some(self.waiters.register(key.clone())),
            key,
        };
        let result = self.enqueue_and_wait(job, wait, &mut registration).await;
        drop(registration);
        let result = result?;
        match result.status {
            ResultStatus::Ok => Ok(result),
            ResultStatus::Dropped => Err(SubmitError::Dropped),
            ResultStatus::Failed => {
                let ResultError { kind, message } = result.error.unwrap_or(ResultError {
                    kind: "unknown".to_owned(),
                    message: "transcode failed".to_owned(),
                });
                Err(SubmitError::Failed { kind, message })
            }
        }
    }

    async fn enqueue_and_wait(
        &self,
        job: &SegmentJob,
        wait: Duration,
        registration: &mut Registration<'_>,
    ) -> Result<SegmentResult, SubmitError> {
        let deadline = tokio::time::Instant::now() + wait;
        let mut ready = self.ready.clone();
        match tokio::time::timeout_at(deadline, ready.wait_for(|ready| *ready)).await {
            Ok(Ok(_)) => {}
            _ => return Err(SubmitError::Timeout(wait)),
        }
        crate::enqueue(self.bus.as_ref(), job).await?;
        let Some(waiting) = registration.rx.as_mut() else {
            return Err(SubmitError::Timeout(wait));
        };
        match tokio::time::timeout_at(deadline, waiting).await {
            Ok(Ok(result)) => Ok(result),
            _ => Err(SubmitError::Timeout(wait)),
        }
    }
}

/// One submitter's registration: dropping it (the submit finished, or its caller gave up)
/// removes the waiter unless a later submitter of the same key replaced it.
struct Registration<'a> {
    waiters: &'a Waiters,
    key: Key,
    rx: Option<oneshot::Receiver<SegmentResult>>,
}

impl Drop for Registration<'_> {
    fn drop(&mut self) {
        // the receiver goes first, so the sender left in the map reads as gone
        drop(self.rx.take());
        self.waiters.forget_if_gone(&self.key);
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use livefarm_bus::{BusOptions, GroupStats, Headers, JobBus, MemoryBus};
    use livefarm_profiles::Profile;
    use tokio::sync::oneshot;

    use super::*;
    use crate::testbus::HookedBus;
    use crate::{jobs_stream, SourceFormat};

    fn job(stream_id: &str, seq: u64) -> SegmentJob {
        SegmentJob::new(
            stream_id,
            seq,
            format!("live/{stream_id}/source/{seq}.ts"),
            SourceFormat::Mpegts,
            2000,
            vec![Profile::new("144p", 256, 144, 200_000)],
        )
    }

    fn result(stream_id: &str, seq: u64, status: ResultStatus) -> SegmentResult {
        SegmentResult::new(stream_id, seq, "w", status)
    }

    async fn publish(bus: &dyn JobBus, result: &SegmentResult) {
        bus.publish(RESULTS_STREAM, &result.encode(), &result.headers())
            .await
            .expect("publish result");
    }

    /// A client whose tail stops when the returned sender fires or is dropped.
    fn client(bus: Arc<dyn JobBus>) -> (SegmentClient, oneshot::Sender<()>) {
        let (stop, stopped) = oneshot::channel::<()>();
        let client = SegmentClient::start(bus, async move {
            let _ = stopped.await;
        });
        (client, stop)
    }

    /// Answers every job enqueued on `stream_id`'s job stream with `answer(seq)`, as a worker.
    fn worker(
        bus: Arc<dyn JobBus>,
        stream_id: &'static str,
        answer: impl Fn(u64) -> SegmentResult + Send + 'static,
    ) {
        tokio::spawn(async move {
            let mut jobs = Tail::new(
                Arc::clone(&bus),
                jobs_stream(stream_id),
                TailFrom::Start,
                TailOptions::default(),
            );
            loop {
                let message = jobs.next().await;
                let job = SegmentJob::decode(&message.payload).expect("job");
                publish(bus.as_ref(), &answer(job.seq)).await;
            }
        });
    }

    fn memory_bus() -> Arc<dyn JobBus> {
        Arc::new(MemoryBus::new(BusOptions::default()))
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn one_tail_serves_many_submitters() {
        let bus = memory_bus();
        worker(Arc::clone(&bus), "cam", |seq| {
            result("cam", seq, ResultStatus::Ok)
        });
        let (client, _stop) = client(Arc::clone(&bus));
        let submits = (0..20).map(|seq| {
            let client = client.clone();
            tokio::spawn(async move {
                client
                    .submit(&job("cam", seq), Duration::from_secs(10))
                    .await
            })
        });
        for (seq, submit) in (0..20).zip(submits.collect::<Vec<_>>()) {
            let result = submit.await.expect("no panic").expect("ok result");
            assert_eq!(result.key(), ("cam", seq));
        }
        assert_eq!(client.waiting(), 0);
        // the tail made no consumer group: its backlog would show as pending or lag
        assert_eq!(
            bus.group_stats(RESULTS_STREAM, "any").await.expect("stats"),
            GroupStats {
                pending: 0,
                lag: 20
            }
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn failed_and_dropped_results_map_to_their_errors() {
        let bus = memory_bus();
        worker(Arc::clone(&bus), "cam", |seq| match seq {
            1 => SegmentResult {
                error: Some(ResultError {
                    kind: "decode".to_owned(),
                    message: "bad bytes".to_owned(),
                }),
                ..result("cam", seq, ResultStatus::Failed)
            },
            2 => result("cam", seq, ResultStatus::Failed),
            _ => result("cam", seq, ResultStatus::Dropped),
        });
        let (client, _stop) = client(bus);
        let wait = Duration::from_secs(10);
        let failed = client.submit(&job("cam", 1), wait).await;
        assert_eq!(
            failed,
            Err(SubmitError::Failed {
                kind: "decode".to_owned(),
                message: "bad bytes".to_owned()
            })
        );
        assert_eq!(failed.expect_err("failed").to_string(), "decode: bad bytes");
        assert!(matches!(
            client.submit(&job("cam", 2), wait).await,
            Err(SubmitError::Failed { .. })
        ));
        let dropped = client.submit(&job("cam", 3), wait).await;
        assert_eq!(dropped, Err(SubmitError::Dropped));
        assert_eq!(client.waiting(), 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_timeout_forgets_the_waiter() {
        let bus = memory_bus();
        let (client, _stop) = client(Arc::clone(&bus));
        let wait = Duration::from_millis(200);
        assert_eq!(
            client.submit(&job("idle", 1), wait).await,
            Err(SubmitError::Timeout(wait))
        );
        assert_eq!(client.waiting(), 0);
        // the job was enqueued all the same
        assert_eq!(bus.stream_len(&jobs_stream("idle")).await.expect("len"), 1);

        // a caller that gives up mid-wait leaves nothing behind either
        let second = job("idle", 2);
        let long = client.submit(&second, Duration::from_secs(60));
        assert!(tokio::time::timeout(Duration::from_millis(200), long)
            .await
            .is_err());
        assert_eq!(client.waiting(), 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_invalid_job_is_refused_before_the_bus() {
        let (client, _stop) = client(memory_bus());
        let mut bad = job("cam", 1);
        bad.profiles.clear();
        assert!(matches!(
            client.submit(&bad, Duration::from_secs(1)).await,
            Err(SubmitError::Enqueue(_))
        ));
        assert_eq!(client.waiting(), 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn older_results_and_undecodable_entries_are_skipped() {
        let bus = memory_bus();
        publish(bus.as_ref(), &result("cam", 1, ResultStatus::Dropped)).await;
        let (client, _stop) = client(Arc::clone(&bus));
        bus.publish(RESULTS_STREAM, b"not json", &Headers::new())
            .await
            .expect("publish");
        worker(Arc::clone(&bus), "cam", |seq| {
            result("cam", seq, ResultStatus::Ok)
        });
        // the dropped result of seq 1 from before start-up does not answer this submit
        let ok = client.submit(&job("cam", 1), Duration::from_secs(10)).await;
        assert_eq!(ok.map(|r| r.status), Ok(ResultStatus::Ok));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_result_published_right_after_start_up_is_not_missed() {
        let inner = MemoryBus::new(BusOptions::default());
        publish(&inner, &result("cam", 1, ResultStatus::Dropped)).await;
        let racer = SegmentResult {
            worker_id: "racer".to_owned(),
            ..result("cam", 2, ResultStatus::Ok)
        };
        let bus: Arc<dyn JobBus> = Arc::new(HookedBus::new(inner).publish_after_last_id(
            RESULTS_STREAM,
            racer.encode(),
            racer.headers(),
        ));
        let (client, _stop) = client(bus);
        let result = client
            .submit(&job("cam", 2), Duration::from_secs(5))
            .await
            .expect("the racing result");
        assert_eq!(result.worker_id, "racer");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_stopped_client_times_out() {
        let (client, stop) = client(memory_bus());
        stop.send(()).expect("tail running");
        let wait = Duration::from_millis(100);
        // whether or not the tail had started, nothing will answer
        assert!(matches!(
            client.submit(&job("cam", 1), wait).await,
            Err(SubmitError::Timeout(_))
        ));
    }
}
