//! The wire schema shared by segment producers (segmenter, ingest) and transcoder workers:
//! [`SegmentJob`] and [`SegmentResult`] (JSON), the bus names they travel under, and
//! [`enqueue`], the one way to put a job on the bus.
//!
//! Every bus stream, header and Redis key name lives in [`names`] (re-exported here).
//!
//! Jobs are sharded by live stream: each stream has its own job stream read through the
//! consumer group [`WORKER_GROUP`], so one stream's segments stay in order and a worker that
//! holds the stream's affinity claim is the only one reading them. Workers learn about streams
//! from the index stream [`INDEX_STREAM`] (read without a group, so every worker sees every
//! entry) and claim the ones nobody holds. Every process that needs every result (one
//! [`SegmentClient`] in a process that submits segments and answers with their renditions,
//! each API replica) tails [`RESULTS_STREAM`] without a group too, through [`tail`]. The
//! idempotency key of a job and of its result is `(stream_id, seq)`.

mod client;
mod error;
mod events;
pub mod names;
mod tail;
#[cfg(test)]
mod testbus;

use std::collections::HashMap;
use std::time::Duration;

use livefarm_bus::{Headers, MessageId, StreamBus};
pub use livefarm_profiles::Profile;
use serde::{Deserialize, Serialize};

pub use client::{SegmentClient, SubmitError};
pub use error::JobsError;
pub use events::{StreamControl, StreamControlAction, StreamEvent, StreamEventKind};
/// Milliseconds since the Unix epoch, the clock of every `*_ms` timestamp here.
pub use livefarm_bus::now_ms;
pub use names::{
    affinity_key, dead_letter_stream, jobs_stream, result_marker_key, timeline_key,
    winning_ticket_headers, worker_key, CHAIN_EVENTS_STREAM, EVENT_HEADER, INDEXER_KEY_PREFIX,
    INDEX_STREAM, REDEEMER_GROUP, REDEEMER_KEY_PREFIX, RESULTS_STREAM, SENDER_HEADER, SEQ_HEADER,
    STATUS_HEADER, STREAM_CONTROL, STREAM_EVENTS, STREAM_ID_HEADER, TICKET_HASH_HEADER,
    WINNING_TICKETS_STREAM, WORKER_GROUP, WORKER_KEY_PREFIX,
};
pub use tail::{tail, Tail, TailFrom, TailOptions};

/// Longest accepted stream id, in bytes (the object store's id limit).
pub const MAX_STREAM_ID_LEN: usize = livefarm_storage::keys::MAX_ID_LEN;

/// Checks that `id` can name a stream: 1 to [`MAX_STREAM_ID_LEN`] bytes of ASCII letters,
/// digits and `- _ . = + , @`, never `.` or `..` (it becomes a bus key part and a storage
/// path segment). The rule is the object store's id rule, kept in one place.
pub fn validate_stream_id(id: &str) -> Result<(), JobsError> {
    livefarm_storage::keys::check_id(id).map_err(|reason| JobsError::Invalid {
        field: "stream_id",
        reason: format!("{id:?}: {reason}"),
    })
}

/// Container format of a source segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SourceFormat {
    /// Let the media engine probe the bytes.
    #[default]
    Auto,
    /// MPEG transport stream (what the segmenter writes).
    Mpegts,
    /// FLV.
    Flv,
    /// MP4 / MOV.
    Mp4,
}

/// One segment of a live stream to transcode into every profile.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SegmentJob {
    /// The live stream (see [`validate_stream_id`]).
    pub stream_id: String,
    /// Segment number, increasing within the stream.
    pub seq: u64,
    /// Object-store key of the source segment bytes.
    pub source_key: String,
    /// Container of the source bytes.
    #[serde(default)]
    pub format: SourceFormat,
    /// Duration of the segment, milliseconds.
    pub duration_ms: u64,
    /// The rendition ladder.
    pub profiles: Vec<Profile>,
    /// When the producer enqueued it (ms since the epoch).
    pub enqueued_at_ms: u64,
    /// Absolute deadline (ms since the epoch) after which the segment is useless to viewers
    /// and is dropped instead of transcoded; `None`: the worker's default (a multiple of the
    /// duration after `enqueued_at_ms`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline_ms: Option<u64>,
    /// W3C trace context of the producer's span (`traceparent`, `tracestate`).
    #[serde(default, skip_serializing_if = "HashMap::is_empty")]
    pub trace: HashMap<String, String>,
    /// The publisher restarted or the timeline jumped before this segment: start a fresh
    /// session instead of continuing the previous one.
    #[serde(default)]
    pub discontinuity: bool,
    /// When the bytes that completed the segment reached ingest (ms since the epoch), for
    /// live-latency measurement; unset for segments that arrive whole (HTTP push).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ingested_at_ms: Option<u64>,
}

impl SegmentJob {
    /// A job of one segment whose source is stored at `source_key`, enqueued now, with no
    /// deadline of its own, no trace context and no discontinuity.
    pub fn new(
        stream_id: impl Into<String>,
        seq: u64,
        source_key: impl Into<String>,
        format: SourceFormat,
        duration_ms: u64,
        profiles: Vec<Profile>,
    ) -> Self {
        SegmentJob {
            stream_id: stream_id.into(),
            seq,
            source_key: source_key.into(),
            format,
            duration_ms,
            profiles,
            enqueued_at_ms: now_ms(),
            deadline_ms: None,
            trace: HashMap::new(),
            discontinuity: false,
            ingested_at_ms: None,
        }
    }

    /// Checks what the worker relies on: a valid stream id, a source key and a ladder.
    pub fn validate(&self) -> Result<(), JobsError> {
        validate_stream_id(&self.stream_id)?;
        if self.source_key.is_empty() {
            return Err(JobsError::Invalid {
                field: "source_key",
                reason: "is empty".to_owned(),
            });
        }
        if self.profiles.is_empty() {
            return Err(JobsError::Invalid {
                field: "profiles",
                reason: "no rendition profiles".to_owned(),
            });
        }
        Ok(())
    }

    /// The deadline: `deadline_ms` when set, else `enqueued_at_ms + multiplier x duration`.
    pub fn deadline(&self, multiplier: f64) -> u64 {
        self.deadline_ms.unwrap_or_else(|| {
            // float to int saturates, so a silly multiplier cannot wrap
            let slack = (self.duration_ms as f64 * multiplier.max(0.0)) as u64;
            self.enqueued_at_ms.saturating_add(slack)
        })
    }

    /// How long a submitter waits for the result: `multiplier` x the duration, at least
    /// `min` (go-livepeer waits `max(8 s, 4 x duration)`).
    pub fn result_wait(&self, multiplier: f64, min: Duration) -> Duration {
        // float to int saturates, so a silly multiplier cannot wrap
        Duration::from_millis((self.duration_ms as f64 * multiplier.max(0.0)) as u64).max(min)
    }

    /// The idempotency key `(stream_id, seq)`.
    pub fn key(&self) -> (&str, u64) {
        (&self.stream_id, self.seq)
    }

    /// JSON bytes.
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a job of strings, numbers and maps always serialises")
    }

    /// Parses JSON bytes written by [`SegmentJob::encode`] and validates them.
    pub fn decode(bytes: &[u8]) -> Result<Self, JobsError> {
        let job: Self = serde_json::from_slice(bytes).map_err(|e| JobsError::Malformed {
            what: "segment job",
            reason: e.to_string(),
        })?;
        job.validate()?;
        Ok(job)
    }

    /// Headers that let tools filter entries without parsing JSON.
    pub fn headers(&self) -> Headers {
        key_headers(&self.stream_id, self.seq)
    }
}

fn key_headers(stream_id: &str, seq: u64) -> Headers {
    let mut headers = Headers::new();
    headers.insert(STREAM_ID_HEADER.to_owned(), stream_id.to_owned());
    headers.insert(SEQ_HEADER.to_owned(), seq.to_string());
    headers
}

/// Appends `job` to its stream's job stream, then announces it on the index stream so that
/// a worker picks the stream up. Returns the job's entry id.
///
/// An error after the job was appended (the announcement failed) leaves the job queued: the
/// next job of the stream announces it again, and a retried call only duplicates the job,
/// which workers absorb (results are idempotent by `(stream_id, seq)`).
pub async fn enqueue(bus: &dyn StreamBus, job: &SegmentJob) -> Result<MessageId, JobsError> {
    job.validate()?;
    let headers = job.headers();
    let id = bus
        .publish(&jobs_stream(&job.stream_id), &job.encode(), &headers)
        .await?;
    bus.publish(INDEX_STREAM, job.stream_id.as_bytes(), &headers)
        .await?;
    Ok(id)
}

/// Outcome of one segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ResultStatus {
    /// Every rendition was written.
    Ok,
    /// The segment could not be transcoded (after every try); see `error`.
    Failed,
    /// The segment's deadline passed before a worker got to it; nothing was written.
    Dropped,
}

impl ResultStatus {
    /// The lowercase name used in headers and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            ResultStatus::Ok => "ok",
            ResultStatus::Failed => "failed",
            ResultStatus::Dropped => "dropped",
        }
    }
}

/// One rendition written to the object store.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RenditionResult {
    /// Profile name.
    pub name: String,
    /// Object-store key of the rendition segment.
    pub key: String,
    /// Output width, pixels.
    pub width: u32,
    /// Output height, pixels.
    pub height: u32,
    /// Encoded frames.
    pub frames: u64,
    /// Encoded pixels (frames x width x height), what Livepeer bills.
    pub pixels: u64,
    /// Span of the rendition's video, seconds.
    pub duration: f64,
    /// Size of the rendition object, bytes (0 in results of workers that predate it).
    #[serde(default)]
    pub bytes: u64,
    /// RFC 6381 codecs of the rendition (`avc1.64001f,mp4a.40.2`), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub codecs: Option<String>,
}

/// Where the time of one segment went, milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Timings {
    /// From enqueue to the start of work on it.
    pub queue_ms: u64,
    /// Fetching, transcoding and writing renditions.
    pub transcode_ms: u64,
    /// From enqueue to the result.
    pub total_ms: u64,
}

/// Why a segment failed or was dropped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResultError {
    /// A short, bounded label (`decode`, `storage`, `deadline`...).
    pub kind: String,
    /// The message for humans.
    pub message: String,
}

/// What a worker publishes for each segment, once per `(stream_id, seq)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SegmentResult {
    /// The live stream.
    pub stream_id: String,
    /// Segment number.
    pub seq: u64,
    /// The worker that produced it.
    pub worker_id: String,
    /// Outcome.
    pub status: ResultStatus,
    /// Renditions written (empty unless `status` is `ok`).
    #[serde(default)]
    pub renditions: Vec<RenditionResult>,
    /// Decoded source pixels.
    #[serde(default)]
    pub decoded_pixels: u64,
    /// Copied from the job: the segment follows a publisher's reconnect.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub discontinuity: bool,
    /// The source's picture size, as decoded (0 when unknown).
    #[serde(default)]
    pub source_width: u32,
    #[serde(default)]
    pub source_height: u32,
    /// Copied from the job: where the source segment is stored (empty when unknown).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub source_key: String,
    /// Size of the source segment, bytes (0 when unknown).
    #[serde(default)]
    pub source_bytes: u64,
    /// RFC 6381 codecs of the source, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_codecs: Option<String>,
    /// Time spent.
    #[serde(default)]
    pub timings: Timings,
    /// Why it failed or was dropped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ResultError>,
    /// How many times the job had been delivered, this time included.
    #[serde(default)]
    pub attempt: u64,
    /// W3C trace context of the worker's span for this segment, so readers of the result
    /// (the api) continue the segment's trace.
    #[serde(default, skip_serializing_if = "HashMap::is_empty")]
    pub trace: HashMap<String, String>,
}

impl SegmentResult {
    /// A result of `(stream_id, seq)` with nothing measured yet: no renditions, zero sizes
    /// and timings, first attempt.
    pub fn new(
        stream_id: impl Into<String>,
        seq: u64,
        worker_id: impl Into<String>,
        status: ResultStatus,
    ) -> Self {
        SegmentResult {
            stream_id: stream_id.into(),
            seq,
            worker_id: worker_id.into(),
            status,
            renditions: Vec::new(),
            decoded_pixels: 0,
            discontinuity: false,
            source_width: 0,
            source_height: 0,
            source_key: String::new(),
            source_bytes: 0,
            source_codecs: None,
            timings: Timings::default(),
            error: None,
            attempt: 1,
            trace: HashMap::new(),
        }
    }

    /// The idempotency key `(stream_id, seq)`.
    pub fn key(&self) -> (&str, u64) {
        (&self.stream_id, self.seq)
    }

    /// JSON bytes.
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a result of strings and numbers always serialises")
    }

    /// Parses JSON bytes written by [`SegmentResult::encode`].
    pub fn decode(bytes: &[u8]) -> Result<Self, JobsError> {
        serde_json::from_slice(bytes).map_err(|e| JobsError::Malformed {
            what: "segment result",
            reason: e.to_string(),
        })
    }

    /// Headers of the result entry: stream id, seq and status.
    pub fn headers(&self) -> Headers {
        let mut headers = key_headers(&self.stream_id, self.seq);
        headers.insert(STATUS_HEADER.to_owned(), self.status.as_str().to_owned());
        headers
    }
}

/// The `(stream_id, seq)` named by an entry's headers, if both are there.
pub fn key_from_headers(headers: &Headers) -> Option<(String, u64)> {
    let stream_id = headers.get(STREAM_ID_HEADER)?.clone();
    let seq = headers.get(SEQ_HEADER)?.parse().ok()?;
    Some((stream_id, seq))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job() -> SegmentJob {
        SegmentJob {
            stream_id: "cam-1".to_owned(),
            seq: 7,
            source_key: "live/cam-1/source/0000000007.ts".to_owned(),
            format: SourceFormat::Mpegts,
            duration_ms: 2000,
            profiles: vec![Profile::new("144p", 256, 144, 200_000)],
            enqueued_at_ms: 1_000_000,
            deadline_ms: None,
            trace: HashMap::from([("traceparent".to_owned(), "00-ab-cd-01".to_owned())]),
            discontinuity: false,
            ingested_at_ms: None,
        }
    }

    #[test]
    fn job_round_trips_through_json() {
        let job = job();
        let back = SegmentJob::decode(&job.encode()).expect("decodes");
        assert_eq!(back, job);
        let value: serde_json::Value = serde_json::from_slice(&job.encode()).expect("json");
        assert_eq!(value["format"], "mpegts");
        assert_eq!(value["profiles"][0]["name"], "144p");
        assert!(value.get("deadline_ms").is_none());
    }

    #[test]
    fn deadline_defaults_to_a_multiple_of_the_duration() {
        let mut job = job();
        assert_eq!(job.deadline(3.0), 1_006_000);
        assert_eq!(job.deadline(0.5), 1_001_000);
        job.deadline_ms = Some(5);
        assert_eq!(job.deadline(3.0), 5);
    }

    #[test]
    fn invalid_jobs_are_rejected() {
        for id in ["", "..", "a/b", "a b", "cam:1", &"x".repeat(129)] {
            let mut bad = job();
            bad.stream_id = id.to_owned();
            assert!(
                SegmentJob::decode(&bad.encode()).is_err(),
                "{id:?} accepted"
            );
        }
        let mut bad = job();
        bad.profiles.clear();
        assert!(bad.validate().is_err());
        assert!(SegmentJob::decode(b"{\"stream_id\":1}").is_err());
    }

    #[test]
    fn result_round_trips_and_carries_its_key_in_headers() {
        let result = SegmentResult {
            timings: Timings {
                queue_ms: 1,
                transcode_ms: 2,
                total_ms: 3,
            },
            error: Some(ResultError {
                kind: "deadline".to_owned(),
                message: "late".to_owned(),
            }),
            ..SegmentResult::new("cam-1", 3, "w1", ResultStatus::Dropped)
        };
        // results of workers that predate sizes and codecs still decode
        let old = br#"{"stream_id":"a","seq":1,"worker_id":"w","status":"ok","renditions":[{"name":"r","key":"k","width":2,"height":2,"frames":1,"pixels":4,"duration":1.0}]}"#;
        let old = SegmentResult::decode(old).expect("an older result decodes");
        assert_eq!(
            (old.renditions[0].bytes, old.renditions[0].codecs.as_deref()),
            (0, None)
        );
        assert_eq!((old.source_bytes, old.source_key.as_str()), (0, ""));
        assert_eq!(
            SegmentResult::decode(&result.encode()).expect("decodes"),
            result
        );
        let headers = result.headers();
        assert_eq!(
            headers.get(STATUS_HEADER).map(String::as_str),
            Some("dropped")
        );
        assert_eq!(key_from_headers(&headers), Some(("cam-1".to_owned(), 3)));
    }

    #[tokio::test]
    async fn enqueue_appends_the_job_and_announces_it() {
        let bus = livefarm_bus::MemoryBus::new(livefarm_bus::BusOptions::default());
        let job = job();
        enqueue(&bus, &job).await.expect("enqueued");
        let jobs = bus
            .range(&jobs_stream("cam-1"), None, 10)
            .await
            .expect("range");
        assert_eq!(jobs.len(), 1);
        assert_eq!(SegmentJob::decode(&jobs[0].payload).expect("job"), job);
        let index = bus.range(INDEX_STREAM, None, 10).await.expect("range");
        assert_eq!(index.len(), 1);
        assert_eq!(index[0].payload, b"cam-1");
        assert_eq!(
            key_from_headers(&index[0].headers),
            Some(("cam-1".to_owned(), 7))
        );

        let mut bad = job.clone();
        bad.stream_id = "a b".to_owned();
        assert!(enqueue(&bus, &bad).await.is_err());
        assert_eq!(bus.stream_len(INDEX_STREAM).await.expect("len"), 1);
    }
}
