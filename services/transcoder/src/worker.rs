//! The worker: a scheduler that claims live streams, one task per claimed stream that feeds
//! its segments through a warm session, and a heartbeat that keeps claims and registration
//! alive. See the README for the design and its guarantees.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use livefarm_bus::{Delivery, JobBus, MessageId};
use livefarm_jobs::{
    affinity_key, jobs_stream, now_ms, worker_key, RenditionResult, ResultError, ResultStatus,
    SegmentJob, SegmentResult, SourceFormat, Tail, TailFrom, TailOptions, Timings, INDEX_STREAM,
    WORKER_GROUP,
};
use livefarm_media::{EncoderSettings, GpuPool, InputFormat, SegmentInput};
use livefarm_profiles::Format;
use livefarm_storage::{keys, Storage, StorageError};
use serde::Serialize;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tracing::{debug, info, info_span, warn, Instrument};

use crate::config::TranscoderConfig;
use crate::metrics::{self, METRICS};
use crate::results::{publish_once, Published};
use crate::session::SessionHandle;

const INDEX_PAGE: usize = 1000;

/// What the admin service shows of one session.
#[derive(Debug, Clone, Default)]
pub(crate) struct SessionInfo {
    pub stream_id: String,
    pub segments: u64,
    pub last_seq: Option<u64>,
    pub in_flight_seq: Option<u64>,
    pub gpu: Option<u32>,
    pub started_at_ms: u64,
}

/// One claimed stream.
struct StreamState {
    /// Set by the heartbeat when the claim could not be renewed: stop after this segment.
    lost: AtomicBool,
    info: Mutex<SessionInfo>,
}

impl StreamState {
    fn info(&self) -> std::sync::MutexGuard<'_, SessionInfo> {
        self.info.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The registration a worker keeps under `livefarm:worker:{id}`.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Registration<'a> {
    pub worker_id: &'a str,
    pub capacity: u32,
    pub load: u32,
    pub accelerator: &'a str,
    pub gpu_models: &'a [String],
    pub draining: bool,
    pub started_at_ms: u64,
    pub grpc_addr: String,
    pub admin_addr: String,
}

/// State shared by the scheduler, the stream tasks, the heartbeat and the admin service.
pub(crate) struct Worker {
    pub id: String,
    pub config: TranscoderConfig,
    pub bus: Arc<dyn JobBus>,
    pub storage: Storage,
    pub pool: GpuPool,
    pub capacity: u32,
    pub accelerator: &'static str,
    pub gpu_models: Vec<String>,
    pub started_at_ms: u64,
    pub grpc_addr: Mutex<String>,
    pub admin_addr: Mutex<String>,
    settings: EncoderSettings,
    draining: watch::Sender<bool>,
    streams: Mutex<HashMap<String, Arc<StreamState>>>,
    attempts: AtomicU64,
}

impl Worker {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        id: String,
        config: TranscoderConfig,
        bus: Arc<dyn JobBus>,
        storage: Storage,
        pool: GpuPool,
        capacity: u32,
        accelerator: &'static str,
        gpu_models: Vec<String>,
    ) -> Self {
        let settings = EncoderSettings {
            x264_preset: config.x264_preset.clone(),
            ..EncoderSettings::default()
        };
        Self {
            id,
            config,
            bus,
            storage,
            pool,
            capacity,
            accelerator,
            gpu_models,
            started_at_ms: now_ms(),
            grpc_addr: Mutex::default(),
            admin_addr: Mutex::default(),
            settings,
            draining: watch::Sender::new(false),
            streams: Mutex::default(),
            attempts: AtomicU64::new(0),
        }
    }

    fn streams(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<StreamState>>> {
        self.streams.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Sessions held now.
    pub(crate) fn load(&self) -> u32 {
        u32::try_from(self.streams().len()).unwrap_or(u32::MAX)
    }

    /// A snapshot of every session, sorted by stream id.
    pub(crate) fn sessions(&self) -> Vec<SessionInfo> {
        let mut out: Vec<SessionInfo> = self.streams().values().map(|s| s.info().clone()).collect();
        out.sort_by(|a, b| a.stream_id.cmp(&b.stream_id));
        out
    }

    /// Stops taking streams and hands the held ones over after their in-flight segment.
    /// Returns false if a drain was already running.
    pub(crate) fn start_drain(&self) -> bool {
        let started = self
            .draining
            .send_if_modified(|d| !std::mem::replace(d, true));
        if started {
            info!(worker_id = %self.id, sessions = self.load(), "draining");
        }
        started
    }

    pub(crate) fn is_draining(&self) -> bool {
        *self.draining.borrow()
    }

    async fn drain_started(&self) {
        let mut rx = self.draining.subscribe();
        let _ = rx.wait_for(|d| *d).await;
    }

    fn holds(&self, stream_id: &str) -> bool {
        self.streams().contains_key(stream_id)
    }

    pub(crate) fn registration(&self) -> Vec<u8> {
        let registration = Registration {
            worker_id: &self.id,
            capacity: self.capacity,
            load: self.load(),
            accelerator: self.accelerator,
            gpu_models: &self.gpu_models,
            draining: self.is_draining(),
            started_at_ms: self.started_at_ms,
            grpc_addr: lock(&self.grpc_addr).clone(),
            admin_addr: lock(&self.admin_addr).clone(),
        };
        serde_json::to_vec(&registration).expect("a struct of strings and numbers serialises")
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// What the scheduler knows of one stream seen on the index.
struct Known {
    last_seen: Instant,
    /// An index entry arrived since the last check.
    fresh: bool,
    last_checked: Option<Instant>,
    /// Since when it has had work and no owner (for load-staggered claims).
    claimable_since: Option<Instant>,
    /// What the last check found. A stream is checked every `reclaim_idle / 4` while the
    /// gauges are set every poll, so in between the gauges count it as last seen: otherwise a
    /// waiting stream would drop out of `unclaimed_streams` (and the autoscaler's demand) on
    /// most polls.
    last: Assessed,
}

#[derive(Debug, Default, Clone, Copy)]
struct Assessed {
    /// Jobs not yet delivered.
    lag: u64,
    /// Has work and no worker.
    unclaimed: bool,
}

/// Tails the index, claims streams while there is capacity, and runs one task per claimed
/// stream. Returns once a drain has started and every stream task has handed its stream over.
pub(crate) async fn schedule(worker: Arc<Worker>) {
    let config = &worker.config;
    let poll = config.poll_interval();
    let recheck = config.reclaim_idle() / 4;
    // streams seen on the index in the last `stream_forget_ms` are the ones that may have work
    let since = MessageId::new(now_ms().saturating_sub(config.stream_forget_ms), 0);
    let (index_tx, mut index) = mpsc::channel(INDEX_PAGE);
    let index_reader = tokio::spawn(read_index(
        Tail::new(
            Arc::clone(&worker.bus),
            INDEX_STREAM,
            TailFrom::After(since),
            TailOptions {
                batch: INDEX_PAGE,
                block: poll,
            },
        ),
        index_tx,
    ));
    let mut known: HashMap<String, Known> = HashMap::new();
    let mut tasks = JoinSet::new();
    METRICS.capacity.set(i64::from(worker.capacity));
    loop {
        while tasks.try_join_next().is_some() {}
        if worker.is_draining() {
            break;
        }
        note_index_entries(&mut index, &mut known);
        known.retain(|_, k| k.last_seen.elapsed() < Duration::from_millis(config.stream_forget_ms));

        let mut lag = 0u64;
        let mut unclaimed = 0i64;
        let mut ids: Vec<&String> = known.keys().collect();
        ids.sort();
        let ids: Vec<String> = ids.into_iter().cloned().collect();
        for stream_id in ids {
            let Some(k) = known.get_mut(&stream_id) else {
                continue;
            };
            let due = k.fresh || k.last_checked.is_none_or(|t| t.elapsed() >= recheck);
            if !due {
                lag += k.last.lag;
                unclaimed += i64::from(k.last.unclaimed);
                continue;
            }
            k.fresh = false;
            k.last_checked = Some(Instant::now());
            let stream = jobs_stream(&stream_id);
            let Ok(stats) = worker.bus.group_stats(&stream, WORKER_GROUP).await else {
                continue;
            };
            if worker.holds(&stream_id) {
                lag += stats.lag;
                k.last = Assessed {
                    lag: stats.lag,
                    unclaimed: false,
                };
                continue;
            }
            if stats.lag + stats.pending == 0 {
                k.claimable_since = None;
                k.last = Assessed::default();
                continue;
            }
            let owner = match worker.bus.get(&affinity_key(&stream_id)).await {
                Ok(owner) => owner,
                Err(_) => continue,
            };
            if owner.is_some() {
                k.claimable_since = None;
                k.last = Assessed::default();
                continue;
            }
            let since = *k.claimable_since.get_or_insert_with(Instant::now);
            let load = worker.load();
            // the less loaded a worker, the sooner it claims: spreads streams over the farm
            let turn = since.elapsed() >= poll * load;
            if load < worker.capacity && !worker.is_draining() && turn {
                match worker
                    .bus
                    .claim_affinity(&affinity_key(&stream_id), &worker.id, config.reclaim_idle())
                    .await
                {
                    Ok(true) => {
                        k.claimable_since = None;
                        start_stream(&worker, &stream_id, &mut tasks);
                        lag += stats.lag;
                        k.last = Assessed {
                            lag: stats.lag,
                            unclaimed: false,
                        };
                        continue;
                    }
                    Ok(false) => {
                        k.claimable_since = None;
                        k.last = Assessed::default();
                        continue;
                    }
                    Err(error) => debug!(%error, stream_id, "claim failed"),
                }
            }
            unclaimed += 1;
            lag += stats.lag;
            k.last = Assessed {
                lag: stats.lag,
                unclaimed: true,
            };
        }
        METRICS
            .queue_lag
            .set(i64::try_from(lag).unwrap_or(i64::MAX));
        METRICS.unclaimed_streams.set(unclaimed);

        tokio::select! {
            _ = tokio::time::sleep(poll) => {}
            _ = worker.drain_started() => {}
        }
    }
    index_reader.abort();
    while tasks.join_next().await.is_some() {}
    info!(worker_id = %worker.id, "every stream handed over");
}

/// Hands the stream id of every index entry to the scheduler, until it is gone.
async fn read_index(mut tail: Tail, streams: mpsc::Sender<String>) {
    loop {
        let entry = tail.next().await;
        let Ok(stream_id) = String::from_utf8(entry.payload) else {
            continue;
        };
        if streams.send(stream_id).await.is_err() {
            return;
        }
    }
}

/// Marks every stream the index named since the last call as fresh.
fn note_index_entries(index: &mut mpsc::Receiver<String>, known: &mut HashMap<String, Known>) {
    let now = Instant::now();
    while let Ok(stream_id) = index.try_recv() {
        let k = known.entry(stream_id).or_insert(Known {
            last_seen: now,
            fresh: true,
            last_checked: None,
            claimable_since: None,
            last: Assessed::default(),
        });
        k.last_seen = now;
        k.fresh = true;
    }
}

fn start_stream(worker: &Arc<Worker>, stream_id: &str, tasks: &mut JoinSet<()>) {
    let state = Arc::new(StreamState {
        lost: AtomicBool::new(false),
        info: Mutex::new(SessionInfo {
            stream_id: stream_id.to_owned(),
            started_at_ms: now_ms(),
            ..SessionInfo::default()
        }),
    });
    worker.streams().insert(stream_id.to_owned(), state.clone());
    METRICS.sessions.set(i64::from(worker.load()));
    METRICS.streams_claimed.inc();
    info!(worker_id = %worker.id, stream_id, "stream claimed");
    let worker = worker.clone();
    let stream_id = stream_id.to_owned();
    tasks.spawn(async move {
        let reason = run_stream(&worker, &stream_id, &state).await;
        if reason != "lost" {
            release(&worker, &stream_id).await;
        }
        worker.streams().remove(&stream_id);
        METRICS.sessions.set(i64::from(worker.load()));
        metrics::released(reason);
        info!(worker_id = %worker.id, stream_id, reason, "stream released");
    });
}

async fn release(worker: &Worker, stream_id: &str) {
    for _ in 0..5 {
        match worker
            .bus
            .release_affinity(&affinity_key(stream_id), &worker.id)
            .await
        {
            Ok(_) => return,
            Err(error) => {
                warn!(%error, stream_id, "cannot release stream, retrying");
                tokio::time::sleep(worker.config.poll_interval()).await;
            }
        }
    }
    // the claim expires by itself within reclaim_idle
}

/// Renews the worker's registration and its streams' claims until `stop` fires.
pub(crate) async fn heartbeat(worker: Arc<Worker>, stop: livefarm_runtime::Shutdown) {
    let key = worker_key(&worker.id);
    let ttl = worker.config.reclaim_idle();
    loop {
        if let Err(error) = worker
            .bus
            .set_with_ttl(&key, &worker.registration(), worker.config.heartbeat_ttl())
            .await
        {
            warn!(%error, "cannot renew worker registration");
        }
        let streams: Vec<(String, Arc<StreamState>)> = worker
            .streams()
            .iter()
            .map(|(id, s)| (id.clone(), s.clone()))
            .collect();
        for (stream_id, state) in streams {
            let affinity = affinity_key(&stream_id);
            let renewed = match worker.bus.renew_affinity(&affinity, &worker.id, ttl).await {
                // the claim lapsed (a long outage): take it again if nobody else did
                Ok(false) => worker.bus.claim_affinity(&affinity, &worker.id, ttl).await,
                other => other,
            };
            match renewed {
                Ok(true) => {}
                Ok(false) => {
                    if !state.lost.swap(true, Ordering::SeqCst) {
                        warn!(
                            stream_id,
                            "stream claim taken by another worker, letting go"
                        );
                    }
                }
                Err(error) => debug!(%error, stream_id, "cannot renew stream claim"),
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(worker.config.heartbeat_interval()) => {}
            _ = stop.triggered() => break,
        }
    }
    if let Err(error) = worker.bus.delete(&key).await {
        debug!(%error, "cannot delete worker registration");
    }
}

/// Feeds the stream's segments through one warm session until the stream is lost, idle or
/// drained; returns the reason.
async fn run_stream(worker: &Worker, stream_id: &str, state: &StreamState) -> &'static str {
    let stream = jobs_stream(stream_id);
    let config = &worker.config;
    let mut session: Option<SessionHandle> = None;
    let mut last_work = Instant::now();
    loop {
        if state.lost.load(Ordering::SeqCst) {
            return "lost";
        }
        if worker.is_draining() {
            return "drain";
        }
        // failed jobs due for a retry, and jobs a dead owner left pending, come first
        let next = match worker
            .bus
            .reclaim(&stream, WORKER_GROUP, &worker.id, config.retry_backoff(), 1)
            .await
        {
            Ok(mut reclaimed) if !reclaimed.is_empty() => Ok(reclaimed.pop()),
            Ok(_) => worker
                .bus
                .consume(&stream, WORKER_GROUP, &worker.id, 1, config.poll_interval())
                .await
                .map(|mut d| d.pop()),
            Err(error) => Err(error),
        };
        match next {
            Ok(Some(delivery)) => {
                last_work = Instant::now();
                handle_delivery(worker, stream_id, state, &mut session, delivery).await;
            }
            Ok(None) => {
                if last_work.elapsed() >= config.session_idle() {
                    return "idle";
                }
            }
            Err(error) => {
                debug!(%error, stream_id, "cannot read jobs");
                tokio::time::sleep(config.poll_interval()).await;
            }
        }
    }
}

/// Why one attempt at a segment failed.
struct Failure {
    kind: &'static str,
    message: String,
}

impl Failure {
    fn storage(error: &StorageError) -> Self {
        let kind = match error {
            StorageError::NotFound { .. } => "source_missing",
            _ => "storage",
        };
        Self {
            kind,
            message: error.to_string(),
        }
    }
}

async fn handle_delivery(
    worker: &Worker,
    stream_id: &str,
    state: &StreamState,
    session: &mut Option<SessionHandle>,
    delivery: Delivery,
) {
    let attempt = delivery.delivery_count;
    let job = match SegmentJob::decode(&delivery.payload) {
        Ok(job) if job.stream_id == stream_id => job,
        Ok(job) => {
            metrics::error("malformed");
            warn!(stream_id, job_stream = %job.stream_id, "job in the wrong stream, leaving it for the dead-letter stream");
            return;
        }
        Err(error) => {
            metrics::error("malformed");
            warn!(%error, stream_id, "malformed job, leaving it for the dead-letter stream");
            return;
        }
    };
    let span = info_span!(
        "transcode_segment",
        stream_id,
        seq = job.seq,
        attempt,
        worker_id = %worker.id
    );
    livefarm_telemetry::set_parent_from(&span, &job.trace);
    process(worker, state, session, &job, delivery.id, attempt)
        .instrument(span)
        .await;
}

async fn process(
    worker: &Worker,
    state: &StreamState,
    session: &mut Option<SessionHandle>,
    job: &SegmentJob,
    job_id: MessageId,
    attempt: u64,
) {
    let config = &worker.config;
    let started_ms = now_ms();
    let queue_ms = started_ms.saturating_sub(job.enqueued_at_ms);
    let deadline = job.deadline(config.deadline_multiplier);
    let mut result = SegmentResult {
        discontinuity: job.discontinuity,
        timings: Timings {
            queue_ms,
            ..Timings::default()
        },
        attempt,
        // `process` runs in the segment's span: the api continues the trace from it
        trace: livefarm_telemetry::inject_context(&tracing::Span::current()),
        ..SegmentResult::new(&job.stream_id, job.seq, &worker.id, ResultStatus::Ok)
    };
    if started_ms > deadline {
        result.status = ResultStatus::Dropped;
        result.error = Some(ResultError {
            kind: "deadline".to_owned(),
            message: format!(
                "deadline passed {} ms before work started",
                started_ms - deadline
            ),
        });
        result.timings.total_ms = queue_ms;
        warn!(
            late_ms = started_ms - deadline,
            "segment past its deadline, dropped"
        );
        finish(worker, &result, job_id, attempt, true, "dropped").await;
        return;
    }
    METRICS.queue_seconds.observe(queue_ms as f64 / 1000.0);
    state.info().in_flight_seq = Some(job.seq);
    let clock = Instant::now();
    let outcome = transcode(worker, session, job).await;
    let elapsed = clock.elapsed();
    {
        let mut info = state.info();
        info.in_flight_seq = None;
        info.gpu = session.as_ref().and_then(SessionHandle::gpu);
    }
    result.timings.transcode_ms = u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX);
    match outcome {
        Ok(Transcoded {
            renditions,
            decoded_pixels,
            source_size,
            source_bytes,
            source_codecs,
        }) => {
            METRICS.transcode_seconds.observe(elapsed.as_secs_f64());
            if elapsed.as_secs_f64() > 0.0 {
                METRICS
                    .realtime_ratio
                    .set(job.duration_ms as f64 / 1000.0 / elapsed.as_secs_f64());
            }
            METRICS
                .pixels
                .inc_by(renditions.iter().map(|r| r.pixels).sum());
            result.renditions = renditions;
            result.decoded_pixels = decoded_pixels;
            (result.source_width, result.source_height) = source_size;
            result.source_key.clone_from(&job.source_key);
            result.source_bytes = source_bytes;
            result.source_codecs = source_codecs;
            result.timings.total_ms = now_ms().saturating_sub(job.enqueued_at_ms);
            if finish(worker, &result, job_id, attempt, true, "ok").await {
                let mut info = state.info();
                info.segments += 1;
                info.last_seq = Some(job.seq);
            }
        }
        Err(failure) => {
            metrics::error(failure.kind);
            warn!(kind = failure.kind, error = %failure.message, "segment failed");
            if attempt >= config.max_deliveries {
                // last try: report it; the bus moves the job to the dead-letter stream when it
                // next comes up for a retry
                result.status = ResultStatus::Failed;
                result.error = Some(ResultError {
                    kind: failure.kind.to_owned(),
                    message: failure.message,
                });
                result.timings.total_ms = now_ms().saturating_sub(job.enqueued_at_ms);
                finish(worker, &result, job_id, attempt, false, "failed").await;
            } else {
                metrics::job("retried");
            }
        }
    }
}

/// What [`transcode`] made of one segment, for its result.
struct Transcoded {
    renditions: Vec<RenditionResult>,
    decoded_pixels: u64,
    source_size: (u32, u32),
    source_bytes: u64,
    source_codecs: Option<String>,
}

/// Fetches the source, transcodes it on the stream's session and stores every rendition.
async fn transcode(
    worker: &Worker,
    session: &mut Option<SessionHandle>,
    job: &SegmentJob,
) -> Result<Transcoded, Failure> {
    let data = worker
        .storage
        .get(&job.source_key)
        .await
        .map_err(|e| Failure::storage(&e))?;
    // measured here so that playback never downloads a segment to learn it
    let source_bytes = data.len() as u64;
    let source_codecs = matches!(job.format, SourceFormat::Mpegts | SourceFormat::Auto)
        .then(|| livefarm_hls::tsprobe::probe(&data).codecs())
        .flatten();
    let reusable = session
        .as_ref()
        .is_some_and(|s| !job.discontinuity && s.profiles() == job.profiles.as_slice());
    if !reusable {
        // drop the old session first so its GPU slot is free for the new one
        *session = None;
        let handle = SessionHandle::start(
            &job.stream_id,
            job.profiles.clone(),
            worker.settings.clone(),
            &worker.pool,
        )
        .await
        .map_err(|e| Failure {
            kind: "session",
            message: e.to_string(),
        })?;
        *session = Some(handle);
    }
    let handle = session.as_ref().expect("a session was just ensured");
    let input = SegmentInput {
        seq: job.seq,
        data,
        format: match job.format {
            SourceFormat::Auto => InputFormat::Auto,
            SourceFormat::Mpegts => InputFormat::MpegTs,
            SourceFormat::Flv => InputFormat::Flv,
            SourceFormat::Mp4 => InputFormat::Mp4,
        },
    };
    let output = match handle.transcode(input).await {
        Ok(output) => output,
        Err(error) => {
            if matches!(error, livefarm_media::SegmentError::SessionClosed) {
                *session = None;
            }
            return Err(Failure {
                kind: error.kind(),
                message: error.to_string(),
            });
        }
    };
    let mut renditions = Vec::with_capacity(output.renditions.len());
    for rendition in output.renditions {
        let ext = match rendition.format {
            Format::MpegTs => "ts",
            Format::Mp4 => "mp4",
        };
        let key = keys::rendition_segment(&job.stream_id, &rendition.name, job.seq, ext);
        let size = rendition.data.len();
        worker
            .storage
            .put(&key, Bytes::from(rendition.data))
            .await
            .map_err(|e| Failure::storage(&e))?;
        renditions.push(RenditionResult {
            name: rendition.name,
            key,
            width: rendition.width,
            height: rendition.height,
            frames: rendition.frames,
            pixels: rendition.pixels,
            duration: rendition.duration,
            bytes: size as u64,
            codecs: Some(rendition.codecs),
        });
    }
    Ok(Transcoded {
        renditions,
        decoded_pixels: output.decoded_pixels,
        source_size: (output.source_width, output.source_height),
        source_bytes,
        source_codecs,
    })
}

/// Publishes `result` once and, when `ack`, acknowledges the job; retries while the bus is
/// unavailable. Returns whether the result is now on the results stream (new or earlier).
async fn finish(
    worker: &Worker,
    result: &SegmentResult,
    job_id: MessageId,
    attempt: u64,
    ack: bool,
    outcome: &'static str,
) -> bool {
    let bus = worker.bus.as_ref();
    let stream = jobs_stream(&result.stream_id);
    let owner = format!(
        "{}:{}",
        worker.id,
        worker.attempts.fetch_add(1, Ordering::Relaxed)
    );
    let backoff = worker.config.poll_interval();
    let mut search = attempt > 1;
    let published = loop {
        match publish_once(bus, result, &owner, job_id, search).await {
            Ok(Published::New(id)) => {
                debug!(result_id = %id, status = result.status.as_str(), "result published");
                metrics::job(outcome);
                break true;
            }
            Ok(Published::Duplicate) => {
                debug!("result already published, not publishing again");
                metrics::job("duplicate");
                break true;
            }
            // another attempt is publishing it: leave the job pending, it comes back later
            Ok(Published::Busy) => return false,
            Err(error) if error.is_retryable() => {
                // the publish may have landed before the connection broke
                search = true;
                debug!(%error, "bus unavailable, retrying result");
                tokio::time::sleep(backoff).await;
            }
            Err(error) => {
                warn!(%error, "cannot publish result, leaving the job for a retry");
                return false;
            }
        }
    };
    if ack {
        loop {
            match bus.ack(&stream, WORKER_GROUP, job_id).await {
                Ok(_) => break,
                Err(error) if error.is_retryable() => {
                    debug!(%error, "bus unavailable, retrying ack");
                    tokio::time::sleep(backoff).await;
                }
                Err(error) => {
                    // the job comes back and is recognised as a duplicate
                    warn!(%error, "cannot acknowledge job");
                    break;
                }
            }
        }
    }
    published
}
