//! The results consumer: tails every `SegmentResult` from the start of the results stream
//! (without a consumer group, so every replica sees every result), measures the segments in
//! storage and feeds the playlists.

use std::sync::Arc;
use std::time::Duration;

use livefarm_bus::{JobBus, Message, MessageId};
use livefarm_jobs::{
    ResultStatus, SegmentResult, StreamEvent, StreamEventKind, RESULTS_STREAM, STREAM_EVENTS,
};
use livefarm_runtime::Shutdown;
use livefarm_storage::{keys, StorageError};
use tracing::{debug, warn};

use crate::playlist::SegmentMeta;
use crate::tsprobe;
use crate::AppState;

/// Results read per call.
const BATCH: usize = 64;

/// Reads `stream` from its first entry until `shutdown` fires, handing each entry to `handle`
/// in order. The cursor lives in memory: playlists do too, so a restarted replica rebuilds
/// them from the stream's history, and replicas need no setting of their own. Both streams
/// are idempotent to apply, so an entry that failed is not retried. Read errors are retried
/// after `poll`.
async fn tail_stream<F, Fut>(
    bus: Arc<dyn JobBus>,
    stream: &str,
    poll: Duration,
    shutdown: Shutdown,
    mut handle: F,
) where
    F: FnMut(Message) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut cursor = MessageId::new(0, 0);
    loop {
        let read = tokio::select! {
            () = shutdown.triggered() => return,
            read = bus.read_after(stream, cursor, BATCH, poll) => read,
        };
        let messages = match read {
            Ok(messages) => messages,
            Err(error) => {
                warn!(%error, stream, "cannot read the stream");
                tokio::select! {
                    () = shutdown.triggered() => return,
                    () = tokio::time::sleep(poll) => continue,
                }
            }
        };
        for message in messages {
            cursor = message.id;
            handle(message).await;
        }
    }
}

/// Consumes results until `shutdown` fires.
pub async fn consume_results(
    state: AppState,
    bus: Arc<dyn JobBus>,
    poll: Duration,
    shutdown: Shutdown,
) {
    let state = &state;
    tail_stream(bus, RESULTS_STREAM, poll, shutdown, |message| async move {
        handle(state, &message).await;
    })
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
    apply_result(state, &result, start_ms).await;
}

/// Measures the renditions of `result` in storage and adds them to the stream's playlists;
/// `start_ms` is when the segment began (used after a discontinuity). Returns whether it
/// was applied.
pub async fn apply_result(state: &AppState, result: &SegmentResult, start_ms: i64) -> bool {
    let stream_id = &result.stream_id;
    // a failed or dropped segment leaves a gap, which the next one marks as a discontinuity
    if result.status != ResultStatus::Ok || !state.playlists.is_new(stream_id, result.seq) {
        debug!(stream_id, seq = result.seq, "result not applied");
        return false;
    }
    if !state.playlists.knows(stream_id) {
        match state.registry.get(stream_id).await {
            Ok(stream) => state
                .playlists
                .set_record(stream_id, stream.is_some_and(|s| s.record)),
            Err(error) => warn!(%error, stream_id, "cannot look the stream up"),
        }
    }
    let mut metas = Vec::with_capacity(result.renditions.len() + 1);
    for rendition in &result.renditions {
        let bytes = match state.storage.get(&rendition.key).await {
            Ok(bytes) => bytes,
            Err(error) => {
                warn!(%error, stream_id, seq = result.seq, "rendition missing, left out");
                continue;
            }
        };
        let frame_rate =
            (rendition.duration > 0.0).then(|| rendition.frames as f64 / rendition.duration);
        metas.push(SegmentMeta {
            rendition: rendition.name.clone(),
            duration: rendition.duration,
            size: bytes.len() as u64,
            resolution: (rendition.width > 0 && rendition.height > 0)
                .then_some((rendition.width, rendition.height)),
            frame_rate: frame_rate.map(|r| (r * 1000.0).round() / 1000.0),
            info: tsprobe::probe(&bytes),
        });
    }
    let duration = metas.iter().map(|m| m.duration).fold(0.0, f64::max);
    if duration > 0.0 {
        match state
            .storage
            .get(&keys::source_segment(stream_id, result.seq))
            .await
        {
            Ok(bytes) => metas.push(SegmentMeta {
                rendition: keys::SOURCE_RENDITION.to_owned(),
                duration,
                size: bytes.len() as u64,
                resolution: (result.source_width > 0 && result.source_height > 0)
                    .then_some((result.source_width, result.source_height)),
                frame_rate: None,
                info: tsprobe::probe(&bytes),
            }),
            Err(StorageError::NotFound { .. }) => {}
            Err(error) => warn!(%error, stream_id, "cannot read source segment"),
        }
    }
    state
        .playlists
        .apply_marked(stream_id, result.seq, start_ms, result.discontinuity, metas)
}

/// How long an ended stream waits for its last segments' results before its playlists end
/// anyway (a failed last segment never arrives).
const END_GRACE: Duration = Duration::from_secs(20);

/// Reads publish lifecycle events: an `ended` stream gets `EXT-X-ENDLIST` once the results of
/// its last segments are in (or after [`END_GRACE`]).
pub async fn consume_stream_events(
    state: AppState,
    bus: Arc<dyn JobBus>,
    poll: Duration,
    shutdown: Shutdown,
) {
    let state = &state;
    tail_stream(bus, STREAM_EVENTS, poll, shutdown, |message| async move {
        match serde_json::from_slice::<StreamEvent>(&message.payload) {
            Ok(event) if event.event == StreamEventKind::Ended => {
                tokio::spawn(end_when_caught_up(state.clone(), event, poll));
            }
            Ok(_) => {}
            Err(error) => warn!(%error, "skipping malformed stream event"),
        }
    })
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
