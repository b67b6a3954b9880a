//! The bus readers: results feed the playlists (read without a consumer group, so every
//! replica sees every result), stream events end them, and changed playlists are saved as
//! snapshots so that a restarted replica reads only the results since (see `snapshot`).

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures_util::StreamExt;
use livefarm_bus::{JobBus, Message, MessageId};
use livefarm_jobs::{
    ResultStatus, SegmentResult, StreamEvent, StreamEventKind, TailFrom, TailOptions,
    RESULTS_STREAM, STREAM_EVENTS,
};
use livefarm_runtime::Shutdown;
use livefarm_storage::keys;
use tracing::{debug, info, info_span, warn, Instrument};

use crate::metrics;
use crate::playlist::SegmentMeta;
use crate::snapshot;
use crate::AppState;

/// Results read per call.
const BATCH: usize = 64;

/// Hands every entry of `stream` after `from` to `handle`, in order, until `shutdown` fires.
/// Both streams are idempotent to apply, so an entry that failed is not retried.
async fn follow<F, Fut>(
    bus: Arc<dyn JobBus>,
    stream: &str,
    from: TailFrom,
    poll: Duration,
    shutdown: Shutdown,
    mut handle: F,
) where
    F: FnMut(Message) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let options = TailOptions {
        batch: BATCH,
        block: poll,
    };
    let mut entries =
        std::pin::pin!(livefarm_jobs::Tail::new(bus, stream, from, options).into_stream());
    loop {
        let entry = tokio::select! {
            () = shutdown.triggered() => return,
            entry = entries.next() => entry,
        };
        let Some(entry) = entry else { return };
        handle(entry).await;
    }
}

/// The id of the last results entry applied (or skipped), shared with the snapshot writer.
#[derive(Debug, Clone, Default)]
pub struct Applied(Arc<Mutex<MessageId>>);

impl Applied {
    /// An applied-through mark starting at `id`.
    pub fn at(id: MessageId) -> Self {
        Applied(Arc::new(Mutex::new(id)))
    }

    fn get(&self) -> MessageId {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn set(&self, id: MessageId) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = id;
    }
}

/// Restores every saved snapshot into the playlists; returns the results entry to read after.
/// A bus that cannot be read means reading the results from their start.
pub async fn restore_snapshots(state: &AppState, bus: &dyn JobBus) -> MessageId {
    match snapshot::load(bus).await {
        Ok((snapshots, from)) => {
            let count = snapshots.len();
            for (stream_id, snapshot) in snapshots {
                state.playlists.restore(&stream_id, snapshot);
                metrics::snapshot("loaded");
            }
            info!(streams = count, %from, "playlists restored from snapshots");
            from
        }
        Err(error) => {
            warn!(%error, "cannot load playlist snapshots; reading every result");
            MessageId::default()
        }
    }
}

/// Consumes results after `applied`'s mark until `shutdown` fires, moving the mark on.
pub async fn consume_results(
    state: AppState,
    bus: Arc<dyn JobBus>,
    applied: Applied,
    poll: Duration,
    shutdown: Shutdown,
) {
    let state = &state;
    let applied = &applied;
    let from = TailFrom::After(applied.get());
    follow(
        bus,
        RESULTS_STREAM,
        from,
        poll,
        shutdown,
        |message| async move {
            handle(state, &message).await;
            // after the apply: a snapshot taken now holds everything through this id
            applied.set(message.id);
        },
    )
    .await;
}

/// Applies one result entry to the playlists.
pub async fn handle(state: &AppState, message: &Message) {
    let result = match SegmentResult::decode(&message.payload) {
        Ok(result) => result,
        Err(error) => {
            warn!(%error, "skipping malformed result");
            return;
        }
    };
    let start_ms =
        i64::try_from(message.id.ms.saturating_sub(result.timings.total_ms)).unwrap_or(i64::MAX);
    // the last hop of the segment's trace (ingest, segmenter, transcoder, here)
    let span = info_span!(
        parent: None,
        "api_result",
        stream_id = %result.stream_id,
        seq = result.seq
    );
    livefarm_telemetry::set_parent_from(&span, &result.trace);
    apply_result(state, &result, start_ms)
        .instrument(span)
        .await;
}

/// Adds the renditions of `result` to the stream's playlists, from what the result says
/// alone (no segment is read); `start_ms` is when the segment began (used after a
/// discontinuity). Returns whether it was applied.
pub async fn apply_result(state: &AppState, result: &SegmentResult, start_ms: i64) -> bool {
    let stream_id = &result.stream_id;
    // a failed or dropped segment leaves a gap, which the next one marks as a discontinuity
    if result.status != ResultStatus::Ok || !state.playlists.is_new(stream_id, result.seq) {
        debug!(stream_id, seq = result.seq, "result not applied");
        metrics::result("skipped");
        return false;
    }
    if !state.playlists.knows(stream_id) {
        match state.store.stream_by_id(stream_id).await {
            Ok(stream) => state
                .playlists
                .set_record(stream_id, stream.is_some_and(|s| s.record)),
            Err(error) => warn!(%error, stream_id, "cannot look the stream up"),
        }
    }
    let metas = segment_metas(result);
    let applied =
        state
            .playlists
            .apply_marked(stream_id, result.seq, start_ms, result.discontinuity, metas);
    metrics::result(if applied { "applied" } else { "skipped" });
    applied
}

/// The playlist entries of one result: its renditions, and the source when it is stored
/// where playback serves it.
fn segment_metas(result: &SegmentResult) -> Vec<SegmentMeta> {
    let mut metas: Vec<SegmentMeta> = result
        .renditions
        .iter()
        .map(|rendition| {
            let frame_rate =
                (rendition.duration > 0.0).then(|| rendition.frames as f64 / rendition.duration);
            SegmentMeta {
                rendition: rendition.name.clone(),
                duration: rendition.duration,
                size: rendition.bytes,
                resolution: (rendition.width > 0 && rendition.height > 0)
                    .then_some((rendition.width, rendition.height)),
                frame_rate: frame_rate.map(|r| (r * 1000.0).round() / 1000.0),
                codecs: rendition.codecs.clone(),
            }
        })
        .collect();
    let duration = metas.iter().map(|m| m.duration).fold(0.0, f64::max);
    let served_source = keys::source_segment(&result.stream_id, result.seq);
    if duration > 0.0 && result.source_bytes > 0 && result.source_key == served_source {
        metas.push(SegmentMeta {
            rendition: keys::SOURCE_RENDITION.to_owned(),
            duration,
            size: result.source_bytes,
            resolution: (result.source_width > 0 && result.source_height > 0)
                .then_some((result.source_width, result.source_height)),
            frame_rate: None,
            codecs: result.source_codecs.clone(),
        });
    }
    metas
}

/// Saves the snapshots of the streams changed since the last round, every `interval`, until
/// `shutdown` fires (then once more).
pub async fn save_snapshots(
    state: AppState,
    bus: Arc<dyn JobBus>,
    applied: Applied,
    interval: Duration,
    shutdown: Shutdown,
) {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let stopping = tokio::select! {
            _ = tick.tick() => false,
            () = shutdown.triggered() => true,
        };
        save_round(&state, bus.as_ref(), &applied).await;
        if stopping {
            return;
        }
    }
}

/// One round of [`save_snapshots`].
async fn save_round(state: &AppState, bus: &dyn JobBus, applied: &Applied) {
    // the mark first: the states taken after it hold at least everything through it
    let cursor = applied.get();
    let dirty = state.playlists.take_dirty();
    if dirty.is_empty() {
        return;
    }
    let mut failed = Vec::new();
    for (stream_id, snapshot) in dirty {
        match snapshot::save(bus, &stream_id, snapshot, cursor).await {
            Ok(true) => metrics::snapshot("written"),
            Ok(false) => metrics::snapshot("superseded"),
            Err(error) => {
                warn!(%error, stream_id, "cannot save the playlist snapshot");
                metrics::snapshot("failed");
                failed.push(stream_id);
            }
        }
    }
    if failed.is_empty() {
        if let Err(error) = snapshot::save_cursor(bus, cursor).await {
            warn!(%error, "cannot save the snapshot cursor");
        }
    } else {
        state.playlists.mark_dirty(failed);
    }
}

/// How long an ended stream waits for its last segments' results before its playlists end
/// anyway (a failed last segment never arrives).
const END_GRACE: Duration = Duration::from_secs(20);

/// Reads publish lifecycle events from the start of their stream (a short stream): an `ended`
/// stream gets `EXT-X-ENDLIST` once the results of its last segments are in (or after
/// [`END_GRACE`]).
pub async fn consume_stream_events(
    state: AppState,
    bus: Arc<dyn JobBus>,
    poll: Duration,
    shutdown: Shutdown,
) {
    let state = &state;
    let from = TailFrom::Start;
    follow(
        bus,
        STREAM_EVENTS,
        from,
        poll,
        shutdown,
        |message| async move {
            match serde_json::from_slice::<StreamEvent>(&message.payload) {
                Ok(event) if event.event == StreamEventKind::Ended => {
                    tokio::spawn(end_when_caught_up(state.clone(), event, poll));
                }
                Ok(_) => {}
                Err(error) => warn!(%error, "skipping malformed stream event"),
            }
        },
    )
    .await;
}

async fn end_when_caught_up(state: AppState, event: StreamEvent, poll: Duration) {
    let deadline = tokio::time::Instant::now() + END_GRACE;
    let last = event.next_seq.checked_sub(1);
    loop {
        let caught_up = event.segments == 0
            || last.is_none_or(|last| !state.playlists.is_new(&event.stream_id, last));
        if caught_up || tokio::time::Instant::now() >= deadline {
            // a publisher that came back meanwhile keeps its stream live
            if !state.playlists.is_new(&event.stream_id, event.next_seq) {
                return;
            }
            debug!(stream_id = %event.stream_id, caught_up, "stream ended");
            state.end_stream(&event.stream_id);
            return;
        }
        tokio::time::sleep(poll.min(Duration::from_millis(200))).await;
    }
}
