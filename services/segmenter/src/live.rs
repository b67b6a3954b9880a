//! One live publish at a time per stream: the container bytes are cut into keyframe-aligned
//! MPEG-TS segments on a blocking thread, each segment is stored and enqueued as a job.

use std::collections::{HashMap, VecDeque};
use std::io::Read;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bytes::{Buf, Bytes};
use livefarm_bus::{Headers, JobBus};
use livefarm_jobs::{
    timeline_key, SegmentJob, SourceFormat, StreamEvent, StreamEventKind, EVENT_HEADER,
    STREAM_EVENTS,
};
use livefarm_media::segmenter::{Segmenter, SourceSegment, START_OFFSET};
use livefarm_media::{InputFormat, MediaError};
use livefarm_publish::{
    BoxFuture, Chunk, ContainerFormat, KeyframeMark, PublishError, PublishStart, PublishSummary,
    SegmenterSink,
};
use livefarm_storage::{keys, Storage};
use tokio::sync::mpsc;
use tracing::{info, info_span, warn, Instrument};

use crate::error::SegmenterError;
use crate::metrics::METRICS;

/// Where a stream's timeline stands between its publish sessions. Kept on the bus too
/// ([`timeline_key`]), so a reconnect that lands on another segmenter replica, or on this one
/// after a restart, continues the stream's seq and timestamps instead of starting over.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
struct StreamState {
    next_seq: u64,
    next_start_pts: Option<i64>,
    sessions: u64,
    /// Whether the bus copy was read into this process.
    #[serde(skip)]
    loaded: bool,
}

/// How long a stream's timeline outlives its last publish.
const TIMELINE_TTL: Duration = Duration::from_secs(7 * 24 * 3600);

/// The segmenter core, shared by the gRPC service and in-process ingest.
pub struct LiveSegmenter {
    bus: Arc<dyn JobBus>,
    storage: Storage,
    target_seconds: f64,
    busy_wait: Duration,
    streams: Mutex<HashMap<String, Arc<tokio::sync::Mutex<StreamState>>>>,
}

impl std::fmt::Debug for LiveSegmenter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveSegmenter")
            .field("target_seconds", &self.target_seconds)
            .finish_non_exhaustive()
    }
}

/// Keyframe marks not yet matched to a segment; a publish without marks (SRT, or ingest
/// with tracing off) keeps none.
type Marks = Arc<Mutex<VecDeque<KeyframeMark>>>;

/// Marks kept at most: a few segments' worth of keyframes, in case the segmenter lags.
const MAX_MARKS: usize = 64;

/// A blocking reader over the chunks of one publish; end of stream when the sender is gone.
/// It notes when the latest chunk arrived: when a segment is cut, the bytes that completed
/// it (the next keyframe) came in that chunk or earlier. Keyframe marks go to `marks`.
struct ChunkReader {
    chunks: mpsc::Receiver<Chunk>,
    current: Bytes,
    last_arrival_ms: Arc<AtomicU64>,
    marks: Marks,
}

impl Read for ChunkReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while !self.current.has_remaining() {
            match self.chunks.blocking_recv() {
                Some(Chunk::Data(chunk)) => {
                    self.last_arrival_ms
                        .store(livefarm_jobs::now_ms(), Ordering::Relaxed);
                    self.current = chunk;
                }
                Some(Chunk::Keyframe(mark)) => {
                    let mut marks = self.marks.lock().unwrap_or_else(PoisonError::into_inner);
                    if marks.len() == MAX_MARKS {
                        marks.pop_front();
                    }
                    marks.push_back(mark);
                }
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len());
        self.current.copy_to_slice(&mut buf[..n]);
        Ok(n)
    }
}

struct ActiveGuard;

impl ActiveGuard {
    fn new() -> Self {
        METRICS.active.inc();
        ActiveGuard
    }
}

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        METRICS.active.dec();
    }
}

impl LiveSegmenter {
    /// `target_seconds`: segments are cut at the first keyframe past it. A second publish of
    /// a stream waits up to `busy_wait` for the first to end, then is refused.
    pub fn new(
        bus: Arc<dyn JobBus>,
        storage: Storage,
        target_seconds: f64,
        busy_wait: Duration,
    ) -> Self {
        LiveSegmenter {
            bus,
            storage,
            target_seconds,
            busy_wait,
            streams: Mutex::new(HashMap::new()),
        }
    }

    /// Segments one publish session: `chunks` until its sender is dropped. Returns what was
    /// cut. Bad bytes fail single segments (logged, counted), never the process.
    pub async fn run_publish(
        &self,
        start: PublishStart,
        chunks: mpsc::Receiver<Chunk>,
    ) -> Result<PublishSummary, SegmenterError> {
        livefarm_jobs::validate_stream_id(&start.stream_id)
            .map_err(|e| SegmenterError::BadStart(e.to_string()))?;
        if start.profiles.is_empty() {
            return Err(SegmenterError::BadStart("no profiles".to_string()));
        }
        let format = match start.format {
            ContainerFormat::Flv => InputFormat::Flv,
            ContainerFormat::MpegTs => InputFormat::MpegTs,
            ContainerFormat::Probe => InputFormat::Auto,
        };
        let slot = {
            let mut streams = self.streams.lock().unwrap_or_else(PoisonError::into_inner);
            Arc::clone(streams.entry(start.stream_id.clone()).or_default())
        };
        let mut state = tokio::time::timeout(self.busy_wait, slot.lock_owned())
            .await
            .map_err(|_| SegmenterError::Busy(start.stream_id.clone()))?;
        if !state.loaded {
            match self.bus.get(&timeline_key(&start.stream_id)).await {
                Ok(Some(saved)) => match serde_json::from_slice::<StreamState>(&saved) {
                    Ok(saved) => *state = saved,
                    Err(error) => {
                        warn!(stream_id = %start.stream_id, %error, "stream timeline unreadable; starting a new one")
                    }
                },
                Ok(None) => {}
                // Without the saved timeline a reconnect would reuse seqs: refuse instead.
                Err(error) => return Err(SegmenterError::Timeline(error.to_string())),
            }
            state.loaded = true;
        }
        METRICS.publishes.inc();
        let _active = ActiveGuard::new();
        let discontinuity = state.sessions > 0;
        let first_seq = state.next_seq;
        let start_pts = state.next_start_pts.unwrap_or(START_OFFSET);
        let stream_id = start.stream_id.as_str();
        let session_id = start.session_id.as_str();
        info!(
            stream_id,
            session_id, first_seq, discontinuity, "segmenting publish"
        );
        let mut summary = PublishSummary {
            first_seq,
            next_seq: first_seq,
            ..PublishSummary::default()
        };
        self.event(&start, StreamEventKind::Started, &summary, discontinuity)
            .await;

        let (segments_tx, mut segments) =
            mpsc::channel::<(Result<SourceSegment, MediaError>, u64)>(4);
        let target = self.target_seconds;
        let marks = Marks::default();
        let reader_marks = Arc::clone(&marks);
        let thread = tokio::task::spawn_blocking(move || {
            let last_arrival_ms = Arc::new(AtomicU64::new(0));
            let reader = ChunkReader {
                chunks,
                current: Bytes::new(),
                last_arrival_ms: Arc::clone(&last_arrival_ms),
                marks: reader_marks,
            };
            let mut segmenter = Segmenter::open_stream(reader, format, target)
                .map_err(|e| SegmenterError::Open(e.to_string()))?;
            segmenter.continue_from(first_seq, start_pts);
            for segment in segmenter {
                let ingested = last_arrival_ms.load(Ordering::Relaxed);
                if segments_tx.blocking_send((segment, ingested)).is_err() {
                    break;
                }
            }
            Ok::<(), SegmenterError>(())
        });

        let mut end_pts = None;
        while let Some((result, ingested_at_ms)) = segments.recv().await {
            let segment = match result {
                Ok(segment) => segment,
                Err(error) => {
                    METRICS.segment_errors.inc();
                    warn!(stream_id, session_id, %error, "segment failed");
                    continue;
                }
            };
            let first = summary.segments == 0;
            let seq = segment.seq;
            if segment.too_long {
                METRICS.too_long.inc();
                warn!(
                    stream_id,
                    seq,
                    duration_s = segment.duration,
                    target_s = target,
                    "segment too long: the source's keyframes are too far apart"
                );
                summary.too_long_segments += 1;
            }
            // One trace per segment: it continues ingest's span for the keyframe the segment
            // starts at, when ingest marked it; it starts here otherwise.
            let span = info_span!(parent: None, "segmenter_segment", stream_id, seq);
            if let Some(mark) = take_mark(&marks, segment.source_dts) {
                livefarm_telemetry::set_parent_from(&span, &mark.trace);
            }
            let trace = livefarm_telemetry::inject_context(&span);
            match self
                .store(
                    &start,
                    &segment,
                    discontinuity && first,
                    ingested_at_ms,
                    trace,
                )
                .instrument(span)
                .await
            {
                Ok(()) => {
                    METRICS.segments.inc();
                    summary.segments += 1;
                    summary.duration_seconds += segment.duration;
                }
                Err(error) => {
                    METRICS.segment_errors.inc();
                    summary.failed_segments += 1;
                    warn!(stream_id, seq, %error, "segment not stored or enqueued");
                }
            }
            // A failed store still used its seq: the gap marks the loss downstream.
            summary.next_seq = seq + 1;
            end_pts = Some(segment.start_pts + (segment.duration * 90_000.0).round() as i64);
        }
        let opened = thread
            .await
            .map_err(|e| SegmenterError::Thread(e.to_string()))?;
        if let Err(error) = opened {
            warn!(stream_id, session_id, %error, "publish not segmented");
            return Err(error);
        }
        if summary.next_seq > first_seq {
            state.next_seq = summary.next_seq;
            state.next_start_pts = end_pts;
            state.sessions += 1;
            self.save_timeline(&start.stream_id, &state).await;
        }
        drop(state);
        self.event(&start, StreamEventKind::Ended, &summary, discontinuity)
            .await;
        info!(
            stream_id,
            session_id,
            segments = summary.segments,
            failed = summary.failed_segments,
            too_long = summary.too_long_segments,
            duration_s = summary.duration_seconds,
            "publish segmented"
        );
        Ok(summary)
    }

    async fn save_timeline(&self, stream_id: &str, state: &StreamState) {
        let saved = match serde_json::to_vec(state) {
            Ok(saved) => saved,
            Err(error) => {
                warn!(stream_id, %error, "stream timeline not encodable");
                return;
            }
        };
        if let Err(error) = self
            .bus
            .set_with_ttl(&timeline_key(stream_id), &saved, TIMELINE_TTL)
            .await
        {
            warn!(stream_id, %error, "stream timeline not saved; a reconnect elsewhere restarts it");
        }
    }

    async fn store(
        &self,
        start: &PublishStart,
        segment: &SourceSegment,
        discontinuity: bool,
        ingested_at_ms: u64,
        trace: HashMap<String, String>,
    ) -> Result<(), SegmenterError> {
        let key = keys::source_segment(&start.stream_id, segment.seq);
        self.storage.put(&key, segment.data.clone()).await?;
        if start.record {
            let record_key =
                keys::recording_segment(&start.stream_id, &start.session_id, segment.seq);
            self.storage.put(&record_key, segment.data.clone()).await?;
        }
        let job = SegmentJob {
            stream_id: start.stream_id.clone(),
            seq: segment.seq,
            source_key: key,
            format: SourceFormat::Mpegts,
            duration_ms: (segment.duration * 1000.0).round() as u64,
            profiles: start.profiles.clone(),
            enqueued_at_ms: livefarm_jobs::now_ms(),
            deadline_ms: None,
            trace,
            discontinuity,
            ingested_at_ms: (ingested_at_ms > 0).then_some(ingested_at_ms),
        };
        livefarm_jobs::enqueue(self.bus.as_ref(), &job).await?;
        Ok(())
    }

    async fn event(
        &self,
        start: &PublishStart,
        kind: StreamEventKind,
        summary: &PublishSummary,
        discontinuity: bool,
    ) {
        let event = StreamEvent {
            event: kind,
            stream_id: start.stream_id.clone(),
            session_id: start.session_id.clone(),
            protocol: start.protocol.clone(),
            first_seq: summary.first_seq,
            next_seq: summary.next_seq,
            segments: summary.segments,
            duration_ms: (summary.duration_seconds * 1000.0).round() as u64,
            discontinuity,
            at_ms: livefarm_jobs::now_ms(),
        };
        let payload = serde_json::to_vec(&event).expect("an event of strings and numbers");
        let mut headers = Headers::new();
        headers.insert(
            livefarm_jobs::STREAM_ID_HEADER.to_string(),
            start.stream_id.clone(),
        );
        let name = match kind {
            StreamEventKind::Started => "started",
            StreamEventKind::Ended => "ended",
        };
        headers.insert(EVENT_HEADER.to_string(), name.to_string());
        if let Err(error) = self.bus.publish(STREAM_EVENTS, &payload, &headers).await {
            warn!(stream_id = start.stream_id, %error, event = name, "stream event not published");
        }
    }
}

/// The mark of the keyframe at `source_dts` (90 kHz), dropping the marks before it: those
/// keyframes fell inside earlier segments.
fn take_mark(marks: &Marks, source_dts: i64) -> Option<KeyframeMark> {
    let mut marks = marks.lock().unwrap_or_else(PoisonError::into_inner);
    // FLV timestamps are whole milliseconds: 90 ticks each
    let ms = u64::try_from(source_dts.div_euclid(90)).ok()?;
    while let Some(mark) = marks.front() {
        if mark.timestamp_ms > ms {
            return None;
        }
        let mark = marks.pop_front()?;
        if mark.timestamp_ms == ms {
            return Some(mark);
        }
    }
    None
}

/// The in-process link (`livefarm up`): ingest hands publishes to the core directly.
impl SegmenterSink for LiveSegmenter {
    fn publish(
        &self,
        start: PublishStart,
        chunks: mpsc::Receiver<Chunk>,
    ) -> BoxFuture<'_, Result<PublishSummary, PublishError>> {
        Box::pin(async move { Ok(self.run_publish(start, chunks).await?) })
    }
}
