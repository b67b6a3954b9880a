//! The live lifecycle: sessions, `isActive`/`lastSeen`, recordings and their webhook events.
//!
//! Four tasks per api replica ([`Lifecycle::spawn`]):
//! - **events**: ingest's `livefarm:stream-events` read through the consumer group
//!   [`LIFECYCLE_GROUP`], so each entry is handled by one replica and acknowledged after it
//!   was handled (an entry of a replica that died is reclaimed by another after
//!   `reclaim_after_ms`). `started` opens the session and makes the stream active; `ended`
//!   ends the session.
//! - **results** and **segments**: every replica tails `livefarm:results` and the job index
//!   (a segment cut = the publisher is there) into a [`SegmentTracker`], and writes each
//!   touched session's counters and `lastSeen` as absolute values (every replica computes
//!   the same ones, the store keeps the highest) at most every `activity_interval_ms`.
//! - **sweeper** (every `sweep_interval_ms`): makes streams idle, exactly once per transition,
//!   `idle_grace_ms` after their last session ended with no new one, or `idle_timeout_ms`
//!   after their last activity when no `ended` ever came (ingest died); fails recordings that
//!   missed their deadline; claims ended recorded sessions and makes their recordings
//!   ([`crate::recording::finalize`]); emits owed events.
//!
//! Events are decided in the store, atomically with the transition that causes them (an
//! outbox on the session row, see `livefarm_store::session_events`), then handed to the
//! [`EventSink`] with ids derived from (session id, event name): a replayed bus entry or a
//! second replica emitting the same owed event gives the same id, which the webhook outbox
//! ignores. Nothing is emitted for a transition that did not happen.

use std::collections::HashSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures_util::StreamExt;
use livefarm_bus::{Delivery, JobBus};
use livefarm_jobs::{
    SegmentResult, StreamEvent, StreamEventKind, TailFrom, TailOptions, INDEX_STREAM,
    RESULTS_STREAM, STREAM_EVENTS,
};
use livefarm_runtime::Shutdown;
use livefarm_storage::Storage;
use livefarm_store::{NewSession, SessionCounters, SessionRecord, Store, StoreError, StreamRecord};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};

use crate::recording::{self, SegmentTracker};

/// The consumer group of the lifecycle on `livefarm:stream-events`.
pub const LIFECYCLE_GROUP: &str = "api-lifecycle";

/// Timings of the live lifecycle (the `lifecycle` section of the api's configuration).
/// Milliseconds throughout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct LifecycleConfig {
    /// A stream goes idle (`stream.idle`) this long after its last session ended, unless a
    /// new session started meanwhile (a reconnect within it keeps the stream active, with no
    /// idle/started pair).
    pub idle_grace_ms: u64,
    /// A stream goes idle this long after its last activity (a segment cut or a result) when
    /// ingest never said the publisher left (it died). Its open sessions end at their
    /// `lastSeen`.
    pub idle_timeout_ms: u64,
    /// How often the sweeper runs (idle transitions, recordings, owed events).
    pub sweep_interval_ms: u64,
    /// Longest `lastSeen` and session counters lag behind activity (writes are batched).
    pub activity_interval_ms: u64,
    /// How long after a session ended its recording waits for the results of its last
    /// segments before it is made with what arrived.
    pub recording_results_wait_ms: u64,
    /// Hard deadline: a recording not ready this long after its session ended is `failed`.
    pub recording_deadline_ms: u64,
    /// Lease of the replica making a recording; another replica takes over after it.
    pub recording_lease_ms: u64,
    /// A stream event a replica took and did not acknowledge (it died) is handled by another
    /// after this long.
    pub reclaim_after_ms: u64,
    /// Longest a read of the bus blocks.
    pub poll_interval_ms: u64,
}

impl Default for LifecycleConfig {
    fn default() -> Self {
        LifecycleConfig {
            idle_grace_ms: 5_000,
            idle_timeout_ms: 30_000,
            sweep_interval_ms: 1_000,
            activity_interval_ms: 2_000,
            recording_results_wait_ms: 15_000,
            recording_deadline_ms: 60_000,
            recording_lease_ms: 30_000,
            reclaim_after_ms: 30_000,
            poll_interval_ms: 500,
        }
    }
}

fn ms(value: u64) -> Duration {
    Duration::from_millis(value)
}

fn ms_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// A webhook event the lifecycle emits (the fields of `livefarm_webhooks::NewEvent`).
#[derive(Debug, Clone, PartialEq)]
pub struct LifecycleEvent {
    /// Deterministic: the same (session, event) always gives the same id.
    pub id: String,
    pub tenant_id: String,
    /// `stream.started`, `stream.idle`, `recording.started`, `recording.waiting`,
    /// `recording.ready`.
    pub event: &'static str,
    /// When it was emitted, ms.
    pub created_at: i64,
    /// The stream object without its key.
    pub stream: Option<Value>,
    pub payload: Option<Value>,
}

/// A boxed future of an [`EventSink`].
pub type SinkFuture<'a> = Pin<Box<dyn Future<Output = Result<(), String>> + Send + 'a>>;

/// Where events go. The production sink enqueues them for webhook delivery
/// (`store.enqueue_event`, idempotent on the id); an error leaves the event owed, and the
/// next sweep emits it again.
pub trait EventSink: Send + Sync + std::fmt::Debug {
    /// Hands one event over.
    fn emit<'a>(&'a self, event: &'a LifecycleEvent) -> SinkFuture<'a>;
}

/// Renders a stream for events (the api's `stream_json(&stream, false)`).
pub type StreamRenderer = Arc<dyn Fn(&StreamRecord) -> Value + Send + Sync>;

/// What can go wrong handling an event or sweeping.
#[derive(Debug, thiserror::Error)]
pub enum LifecycleError {
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A UUID (version 5 layout, SHA-256 based) of `key`: the same key, the same id.
pub fn event_id(session_id: &str, event: &str) -> String {
    let digest = Sha256::digest(format!("livefarm-event:{session_id}:{event}").as_bytes());
    let mut b = [0u8; 16];
    b.copy_from_slice(&digest[..16]);
    b[6] = (b[6] & 0x0f) | 0x50;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// The lifecycle of one api replica.
pub struct Lifecycle {
    store: Store,
    storage: Storage,
    bus: Arc<dyn JobBus>,
    sink: Arc<dyn EventSink>,
    render_stream: StreamRenderer,
    config: LifecycleConfig,
    public_url: String,
    /// This replica's consumer name in the group and its name on recording leases.
    replica: String,
    tracker: Arc<SegmentTracker>,
    /// Recordings this replica is making now.
    finalizing: Mutex<HashSet<String>>,
    handled: AtomicU64,
}

impl std::fmt::Debug for Lifecycle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lifecycle")
            .field("replica", &self.replica)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Lifecycle {
    /// A lifecycle over the given parts. `public_url` is the base of `recordingUrl` and
    /// `mp4Url` in events (empty: paths relative to the api's host).
    pub fn new(
        store: Store,
        storage: Storage,
        bus: Arc<dyn JobBus>,
        sink: Arc<dyn EventSink>,
        render_stream: StreamRenderer,
        config: LifecycleConfig,
        public_url: impl Into<String>,
    ) -> Arc<Lifecycle> {
        let replica = livefarm_store::ids::uuid_v4()
            .unwrap_or_else(|_| format!("api-{}-{}", std::process::id(), livefarm_jobs::now_ms()));
        Arc::new(Lifecycle {
            store,
            storage,
            bus,
            sink,
            render_stream,
            config,
            public_url: public_url.into(),
            replica,
            tracker: Arc::new(SegmentTracker::new()),
            finalizing: Mutex::new(HashSet::new()),
            handled: AtomicU64::new(0),
        })
    }

    /// What results said about segments (for tests and the playback side).
    pub fn tracker(&self) -> &Arc<SegmentTracker> {
        &self.tracker
    }

    /// Stream events this replica handled (acknowledged) so far.
    pub fn handled_events(&self) -> u64 {
        self.handled.load(Ordering::Relaxed)
    }

    /// Starts the events consumer, the results and segments tails, the activity writer and
    /// the sweeper; they stop when `shutdown` fires.
    pub fn spawn(self: &Arc<Self>, shutdown: Shutdown) -> Vec<JoinHandle<()>> {
        vec![
            tokio::spawn(Arc::clone(self).consume_events(shutdown.clone())),
            tokio::spawn(Arc::clone(self).tail_results(shutdown.clone())),
            tokio::spawn(Arc::clone(self).tail_segments(shutdown.clone())),
            tokio::spawn(Arc::clone(self).write_activity(shutdown.clone())),
            tokio::spawn(Arc::clone(self).run_sweeper(shutdown)),
        ]
    }

    async fn consume_events(self: Arc<Self>, shutdown: Shutdown) {
        let poll = ms(self.config.poll_interval_ms.max(1));
        let reclaim_every =
            ms(self.config.reclaim_after_ms.max(1) / 2).max(Duration::from_millis(100));
        let mut last_reclaim = tokio::time::Instant::now();
        let mut backoff = Duration::from_millis(100);
        loop {
            let reclaim = last_reclaim.elapsed() >= reclaim_every;
            let read = async {
                if reclaim {
                    self.bus
                        .reclaim(
                            STREAM_EVENTS,
                            LIFECYCLE_GROUP,
                            &self.replica,
                            ms(self.config.reclaim_after_ms),
                            16,
                        )
                        .await
                } else {
                    self.bus
                        .consume(STREAM_EVENTS, LIFECYCLE_GROUP, &self.replica, 16, poll)
                        .await
                }
            };
            let deliveries = tokio::select! {
                () = shutdown.triggered() => return,
                read = read => read,
            };
            if reclaim {
                last_reclaim = tokio::time::Instant::now();
            }
            match deliveries {
                Ok(deliveries) => {
                    backoff = Duration::from_millis(100);
                    for delivery in deliveries {
                        self.handle_delivery(&delivery).await;
                    }
                }
                Err(error) => {
                    warn!(%error, "cannot read stream events; retrying");
                    tokio::select! {
                        () = shutdown.triggered() => return,
                        () = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
        }
    }

    /// Handles one entry of the group and acknowledges it once handled (or unreadable).
    async fn handle_delivery(&self, delivery: &Delivery) {
        let handled = match serde_json::from_slice::<StreamEvent>(&delivery.payload) {
            Ok(event) => match self.handle_event(&event).await {
                Ok(()) => true,
                Err(error) => {
                    // left pending: reclaimed and retried after reclaim_after_ms
                    warn!(%error, stream_id = %event.stream_id, "stream event not handled; will retry");
                    false
                }
            },
            Err(error) => {
                warn!(%error, "skipping malformed stream event");
                true
            }
        };
        if handled {
            self.handled.fetch_add(1, Ordering::Relaxed);
            if let Err(error) = self
                .bus
                .ack(STREAM_EVENTS, LIFECYCLE_GROUP, delivery.id)
                .await
            {
                warn!(%error, "cannot acknowledge a stream event; it will be handled again");
            }
        }
    }

    /// Applies one ingest event: `started` opens the session and makes the stream active,
    /// `ended` ends the session. Idempotent: a replayed event changes nothing and emits
    /// nothing new.
    pub async fn handle_event(&self, event: &StreamEvent) -> Result<(), LifecycleError> {
        let Some(stream) = self
            .store
            .stream_including_deleted(&event.stream_id)
            .await?
        else {
            debug!(stream_id = %event.stream_id, "event of a stream the store does not know");
            return Ok(());
        };
        let at = i64::try_from(event.at_ms).unwrap_or(i64::MAX);
        let session = match self.store.session_by_id(&event.session_id).await? {
            Some(session) => session,
            None => self.open_session(&stream, event, at).await?,
        };
        match event.event {
            StreamEventKind::Started => {
                let now = livefarm_jobs::now_ms() as i64;
                // an old entry (a group created over a backlog) records the session only
                let fresh = at >= now - ms_i64(self.config.idle_timeout_ms);
                if fresh && session.ended_at.is_none() {
                    self.store
                        .activate_stream_for_session(&stream.id, &session.id, now.max(at))
                        .await?;
                    self.tracker.note_activity(&stream.id, now.max(at));
                }
            }
            StreamEventKind::Ended => {
                let next_seq = i64::try_from(event.next_seq).unwrap_or(i64::MAX);
                if self.store.end_session(&session.id, at, next_seq).await? {
                    info!(session = %session.id, stream_id = %stream.id, "session ended");
                }
                // what ingest counted: known even if no result ever came
                let counters = SessionCounters {
                    source_segments: i64::try_from(event.segments).unwrap_or(i64::MAX),
                    source_duration_ms: i64::try_from(event.duration_ms).unwrap_or(i64::MAX),
                    ..SessionCounters::default()
                };
                self.store
                    .update_session_counters(&session.id, &counters, at)
                    .await?;
            }
        }
        if let Some(session) = self.store.session_by_id(&session.id).await? {
            self.emit_owed(&session).await;
        }
        Ok(())
    }

    async fn open_session(
        &self,
        stream: &StreamRecord,
        event: &StreamEvent,
        at: i64,
    ) -> Result<SessionRecord, LifecycleError> {
        let mut spec = Map::new();
        for key in ["profiles", "recordingSpec"] {
            if let Some(value) = stream.spec.get(key) {
                spec.insert(key.to_owned(), value.clone());
            }
        }
        spec.insert("playbackId".to_owned(), json!(stream.playback_id));
        let new = NewSession {
            id: event.session_id.clone(),
            stream_id: stream.id.clone(),
            tenant_id: stream.tenant_id.clone(),
            name: stream.name.clone(),
            record: stream.record,
            spec,
            protocol: event.protocol.clone(),
            created_at: at,
            first_seq: i64::try_from(event.first_seq).unwrap_or(i64::MAX),
        };
        let (session, created) = self.store.open_session(&new).await?;
        if created {
            info!(session = %session.id, stream_id = %stream.id, record = session.record, "session opened");
        }
        Ok(session)
    }

    /// Hands the session's owed events to the sink, in order; stops at the first refusal
    /// (the rest stay owed for the next sweep).
    pub async fn emit_owed(&self, session: &SessionRecord) {
        let unsent = session.unsent_events();
        if unsent.is_empty() {
            return;
        }
        let stream = match self
            .store
            .stream_including_deleted(&session.stream_id)
            .await
        {
            Ok(stream) => stream.map(|s| (self.render_stream)(&s)),
            Err(error) => {
                warn!(%error, session = %session.id, "cannot read the stream of an event");
                return;
            }
        };
        let session_object = recording::session_json(session, &self.public_url);
        for (bit, name) in unsent {
            let payload = match name {
                "recording.started" | "recording.waiting" => {
                    Some(json!({ "session": session_object }))
                }
                "recording.ready" => Some(json!({
                    "recordingUrl": recording::recording_url(&session.id, &self.public_url),
                    "mp4Url": recording::mp4_url(&session.id, &self.public_url),
                    "session": session_object,
                })),
                _ => None,
            };
            let event = LifecycleEvent {
                id: event_id(&session.id, name),
                tenant_id: session.tenant_id.clone(),
                event: name,
                created_at: livefarm_jobs::now_ms() as i64,
                stream: stream.clone(),
                payload,
            };
            if let Err(error) = self.sink.emit(&event).await {
                warn!(%error, event = name, session = %session.id, "event not handed over; retried by the sweeper");
                return;
            }
            if let Err(error) = self.store.mark_events_sent(&session.id, bit).await {
                // emitted again later with the same id, which the sink ignores
                warn!(%error, event = name, "cannot record an emitted event");
                return;
            }
            debug!(event = name, session = %session.id, "event emitted");
        }
    }

    async fn tail_results(self: Arc<Self>, shutdown: Shutdown) {
        let options = TailOptions {
            batch: 256,
            block: ms(self.config.poll_interval_ms.max(1)),
        };
        let mut entries = std::pin::pin!(livefarm_jobs::Tail::new(
            self.bus.clone(),
            RESULTS_STREAM,
            TailFrom::End,
            options
        )
        .into_stream());
        loop {
            let entry = tokio::select! {
                () = shutdown.triggered() => return,
                entry = entries.next() => entry,
            };
            let Some(entry) = entry else { return };
            match SegmentResult::decode(&entry.payload) {
                Ok(result) => self
                    .tracker
                    .record(&result, i64::try_from(entry.id.ms).unwrap_or(i64::MAX)),
                Err(error) => debug!(%error, "skipping malformed result"),
            }
        }
    }

    async fn tail_segments(self: Arc<Self>, shutdown: Shutdown) {
        let options = TailOptions {
            batch: 256,
            block: ms(self.config.poll_interval_ms.max(1)),
        };
        let mut entries = std::pin::pin!(livefarm_jobs::Tail::new(
            self.bus.clone(),
            INDEX_STREAM,
            TailFrom::End,
            options
        )
        .into_stream());
        loop {
            let entry = tokio::select! {
                () = shutdown.triggered() => return,
                entry = entries.next() => entry,
            };
            let Some(entry) = entry else { return };
            if let Ok(stream_id) = std::str::from_utf8(&entry.payload) {
                self.tracker
                    .note_activity(stream_id, i64::try_from(entry.id.ms).unwrap_or(i64::MAX));
            }
        }
    }

    async fn write_activity(self: Arc<Self>, shutdown: Shutdown) {
        let mut tick = tokio::time::interval(ms(self.config.activity_interval_ms.max(10)));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = shutdown.triggered() => return,
                _ = tick.tick() => {}
            }
            if let Err(error) = self.write_activity_once().await {
                warn!(%error, "cannot write stream activity");
            }
        }
    }

    /// Writes `lastSeen` and session counters of every stream with news (absolute values).
    pub async fn write_activity_once(&self) -> Result<(), LifecycleError> {
        let now = livefarm_jobs::now_ms() as i64;
        for (stream_id, last_ms) in self.tracker.take_dirty(now) {
            self.store
                .touch_stream_last_seen(&stream_id, last_ms)
                .await?;
            for session in self.store.stream_sessions(&stream_id, 4).await? {
                let first = u64::try_from(session.first_seq).unwrap_or(0);
                let end = session
                    .next_seq
                    .and_then(|n| u64::try_from(n).ok())
                    .unwrap_or(u64::MAX);
                let counters = self.tracker.counters(&stream_id, first, end);
                let seen = session.ended_at.unwrap_or(last_ms);
                self.store
                    .update_session_counters(&session.id, &counters, seen)
                    .await?;
            }
        }
        Ok(())
    }

    async fn run_sweeper(self: Arc<Self>, shutdown: Shutdown) {
        let mut tick = tokio::time::interval(ms(self.config.sweep_interval_ms.max(10)));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = shutdown.triggered() => return,
                _ = tick.tick() => {}
            }
            if let Err(error) = Arc::clone(&self).sweep().await {
                warn!(%error, "lifecycle sweep failed; next round retries");
            }
        }
    }

    /// One round of the sweeper: idle transitions, recording deadlines, recordings to make
    /// (started in the background), owed events.
    pub async fn sweep(self: Arc<Self>) -> Result<(), LifecycleError> {
        let now = livefarm_jobs::now_ms() as i64;
        let grace_cutoff = now - ms_i64(self.config.idle_grace_ms);
        let timeout_cutoff = now - ms_i64(self.config.idle_timeout_ms);
        for stream_id in self
            .store
            .idle_candidates(grace_cutoff, timeout_cutoff)
            .await?
        {
            if let Some(transition) = self
                .store
                .make_stream_idle(&stream_id, grace_cutoff, timeout_cutoff)
                .await?
            {
                info!(stream_id, session = ?transition.session_id, "stream idle");
            }
        }
        let deadline = ms_i64(self.config.recording_deadline_ms);
        let reason = format!(
            "the recording was not ready within {} s of the session's end",
            deadline / 1000
        );
        for id in self
            .store
            .fail_overdue_recordings(now - deadline, &reason)
            .await?
        {
            warn!(session = id, "recording failed: deadline passed");
        }
        for session in self.store.recordings_to_finalize(now, 16).await? {
            if !self.mark_finalizing(&session.id) {
                continue;
            }
            let lease = ms_i64(self.config.recording_lease_ms);
            match self
                .store
                .claim_recording(&session.id, &self.replica, now, lease)
                .await
            {
                Ok(true) => {
                    tokio::spawn(Arc::clone(&self).make_recording(session));
                }
                Ok(false) => self.unmark_finalizing(&session.id),
                Err(error) => {
                    self.unmark_finalizing(&session.id);
                    return Err(error.into());
                }
            }
        }
        for session in self.store.sessions_owing_events(100).await? {
            self.emit_owed(&session).await;
        }
        Ok(())
    }

    fn mark_finalizing(&self, id: &str) -> bool {
        self.finalizing
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id.to_owned())
    }

    fn unmark_finalizing(&self, id: &str) {
        self.finalizing
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(id);
    }

    /// Makes one claimed recording and records the outcome.
    async fn make_recording(self: Arc<Self>, session: SessionRecord) {
        let end_seq = session.next_seq.and_then(|n| u64::try_from(n).ok());
        // without ingest's `ended`, the next session's start bounds this one
        let end_seq = match end_seq {
            Some(end) => Some(end),
            None => self.next_session_start(&session).await,
        };
        let outcome = recording::finalize(
            &self.storage,
            &self.tracker,
            &session,
            end_seq,
            ms(self.config.recording_results_wait_ms),
        )
        .await;
        let now = livefarm_jobs::now_ms() as i64;
        let recorded = match outcome {
            Ok(summary) => {
                info!(session = %session.id, renditions = ?summary.renditions, mp4 = summary.mp4_rendition, seconds = summary.mp4_duration, "recording ready");
                self.store.mark_recording_ready(&session.id, now).await
            }
            Err(error) => {
                warn!(session = %session.id, %error, "recording failed");
                self.store
                    .mark_recording_failed(&session.id, &error.to_string())
                    .await
            }
        };
        if let Err(error) = recorded {
            // the lease lapses and another round tries again
            warn!(%error, session = %session.id, "cannot record the recording's outcome");
        }
        if let Ok(Some(session)) = self.store.session_by_id(&session.id).await {
            self.emit_owed(&session).await;
        }
        self.unmark_finalizing(&session.id);
    }

    async fn next_session_start(&self, session: &SessionRecord) -> Option<u64> {
        let sessions = self
            .store
            .stream_sessions(&session.stream_id, 16)
            .await
            .ok()?;
        sessions
            .iter()
            .filter(|s| s.id != session.id && s.first_seq > session.first_seq)
            .map(|s| s.first_seq)
            .min()
            .and_then(|n| u64::try_from(n).ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_ids_are_stable_uuids() {
        let id = event_id("s-1", "stream.started");
        assert_eq!(id, event_id("s-1", "stream.started"));
        assert_ne!(id, event_id("s-1", "stream.idle"));
        assert_ne!(id, event_id("s-2", "stream.started"));
        assert_eq!(id.len(), 36);
        assert_eq!(&id[14..15], "5");
    }

    #[test]
    fn config_defaults_fill_missing_keys() {
        let config: LifecycleConfig =
            serde_json::from_str(r#"{"idle_grace_ms": 100}"#).expect("parses");
        assert_eq!(config.idle_grace_ms, 100);
        assert_eq!(config.idle_timeout_ms, 30_000);
    }
}
