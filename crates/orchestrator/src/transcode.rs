//! How `/segment` gets a segment transcoded: through one trait, so the HTTP surface does not
//! care whether the work runs on the worker pool (the bus) or elsewhere. The pool
//! implementation stores the source and submits a [`SegmentJob`] through the process's
//! [`SegmentClient`] under the session's own job stream (so the bus's per-stream affinity
//! keeps a broadcaster's session on one worker).

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use livefarm_jobs::{SegmentClient, SegmentJob, SourceFormat, SubmitError};
use livefarm_profiles::Profile;
use livefarm_storage::{keys, Storage};

/// One segment to transcode.
#[derive(Debug, Clone)]
pub struct TranscodeRequest {
    /// The auth session the segment belongs to.
    pub session_id: String,
    /// The broadcaster's sequence number.
    pub seq: u64,
    pub data: Bytes,
    pub format: SourceFormat,
    pub duration_ms: u64,
    pub profiles: Vec<Profile>,
}

/// One output rendition.
#[derive(Debug, Clone)]
pub struct TranscodedRendition {
    pub name: String,
    pub data: Bytes,
    pub pixels: u64,
}

/// Why a transcode gave nothing; the text goes into `TranscodeResult.error`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct TranscodeFailure(pub String);

pub type TranscodeFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Vec<TranscodedRendition>, TranscodeFailure>> + Send + 'a>>;

/// Turns one source segment into its renditions, in profile order.
pub trait SegmentTranscoder: Send + Sync {
    fn transcode(&self, request: TranscodeRequest) -> TranscodeFuture<'_>;
    /// Called when a session ends, so per-session resources can go.
    fn end_session(&self, _session_id: &str) {}
}

/// The job-stream id of an orchestrator session (session ids are 8 hex characters).
pub fn session_stream_id(session_id: &str) -> String {
    format!("lp-{session_id}")
}

/// The worker pool, reached through the bus.
pub struct PoolTranscoder {
    segments: SegmentClient,
    storage: Storage,
    /// Wait for a result at most this multiple of the segment duration, and at least
    /// `min_wait` (go-livepeer waits `max(8 s, 4 × duration)` for a remote transcoder).
    wait_multiplier: f64,
    min_wait: Duration,
    /// Job sequence numbers: the broadcaster may resend a seq (or reuse a session after a
    /// restart of this process), and a job's (stream, seq) must be new for the pool to run
    /// it again. Starting from the clock in microseconds keeps them new across restarts
    /// and increasing within every session's job stream.
    next_job_seq: AtomicU64,
}

impl PoolTranscoder {
    /// A transcoder submitting through `segments`, with sources and renditions in `storage`.
    pub fn new(segments: SegmentClient, storage: Storage) -> PoolTranscoder {
        PoolTranscoder {
            segments,
            storage,
            wait_multiplier: 4.0,
            min_wait: Duration::from_secs(8),
            next_job_seq: AtomicU64::new(livefarm_jobs::now_ms().saturating_mul(1000)),
        }
    }

    /// Overrides how long to wait for a result.
    pub fn with_wait(mut self, multiplier: f64, min_wait: Duration) -> PoolTranscoder {
        self.wait_multiplier = multiplier;
        self.min_wait = min_wait;
        self
    }

    fn next_job_seq(&self) -> u64 {
        self.next_job_seq.fetch_add(1, Ordering::Relaxed)
    }

    async fn run(
        &self,
        request: TranscodeRequest,
    ) -> Result<Vec<TranscodedRendition>, TranscodeFailure> {
        let stream_id = session_stream_id(&request.session_id);
        let job_seq = self.next_job_seq();
        let ext = match request.format {
            SourceFormat::Mp4 => "mp4",
            _ => "ts",
        };
        let source_key = keys::rendition_segment(&stream_id, keys::SOURCE_RENDITION, job_seq, ext);
        self.storage
            .put(&source_key, request.data.clone())
            .await
            .map_err(|e| TranscodeFailure(format!("storing the segment failed: {e}")))?;
        let job = SegmentJob::new(
            stream_id,
            job_seq,
            source_key,
            request.format,
            request.duration_ms,
            request.profiles.clone(),
        );
        let wait = job.result_wait(self.wait_multiplier, self.min_wait);
        let result = self
            .segments
            .submit(&job, wait)
            .await
            .map_err(|e| match e {
                // go-livepeer's words for a pool that did not answer in time
                SubmitError::Timeout(_) => TranscodeFailure("OrchestratorBusy".to_string()),
                e => TranscodeFailure(e.to_string()),
            })?;
        let mut out = Vec::with_capacity(request.profiles.len());
        for profile in &request.profiles {
            let rendition = result
                .renditions
                .iter()
                .find(|r| r.name == profile.name)
                .ok_or_else(|| TranscodeFailure("MismatchedSegments".to_string()))?;
            let data = self.storage.get(&rendition.key).await.map_err(|e| {
                TranscodeFailure(format!("reading rendition {}: {e}", profile.name))
            })?;
            out.push(TranscodedRendition {
                name: profile.name.clone(),
                data,
                pixels: rendition.pixels,
            });
        }
        Ok(out)
    }
}

impl SegmentTranscoder for PoolTranscoder {
    fn transcode(&self, request: TranscodeRequest) -> TranscodeFuture<'_> {
        Box::pin(self.run(request))
    }
}
