//! The worker's Prometheus metrics, declared once and registered in the process-wide registry.
//!
//! Names follow `livefarm_transcoder_<name>_<unit>[_total]`; labels are bounded (outcome,
//! error kind, reason), never a stream id.

use std::sync::atomic::AtomicU64;
use std::sync::LazyLock;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Unit;

/// `outcome`: `ok`, `failed` (final), `retried`, `dropped`, `duplicate`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct OutcomeLabel {
    pub outcome: &'static str,
}

/// `kind`: a bounded error label (`decode`, `storage`, `session`...).
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct KindLabel {
    pub kind: &'static str,
}

/// `reason`: why a stream was released (`idle`, `drain`, `lost`).
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct ReasonLabel {
    pub reason: &'static str,
}

pub(crate) struct Metrics {
    /// `livefarm_transcoder_jobs_total{outcome}`.
    pub jobs: Family<OutcomeLabel, Counter>,
    /// `livefarm_transcoder_errors_total{kind}`.
    pub errors: Family<KindLabel, Counter>,
    /// `livefarm_transcoder_transcode_seconds`: fetch, transcode and write of one segment.
    pub transcode_seconds: Histogram,
    /// `livefarm_transcoder_queue_seconds`: enqueue to start of work.
    pub queue_seconds: Histogram,
    /// `livefarm_transcoder_queue_lag`: jobs waiting, undelivered, in this worker's streams
    /// and in the unclaimed streams it sees.
    pub queue_lag: Gauge,
    /// `livefarm_transcoder_unclaimed_streams`: streams with work that no worker holds.
    pub unclaimed_streams: Gauge,
    /// `livefarm_transcoder_sessions`: sessions held now.
    pub sessions: Gauge,
    /// `livefarm_transcoder_session_capacity`: the most sessions this worker takes.
    pub capacity: Gauge,
    /// `livefarm_transcoder_realtime_ratio`: segment duration over transcode time, last
    /// segment (above 1 is faster than real time).
    pub realtime_ratio: Gauge<f64, AtomicU64>,
    /// `livefarm_transcoder_encoded_pixels_total`.
    pub pixels: Counter,
    /// `livefarm_transcoder_streams_claimed_total`.
    pub streams_claimed: Counter,
    /// `livefarm_transcoder_streams_released_total{reason}`.
    pub streams_released: Family<ReasonLabel, Counter>,
}

pub(crate) static METRICS: LazyLock<Metrics> = LazyLock::new(|| {
    let metrics = Metrics {
        jobs: Family::default(),
        errors: Family::default(),
        transcode_seconds: Histogram::new(exponential_buckets(0.01, 2.0, 14)),
        queue_seconds: Histogram::new(exponential_buckets(0.005, 2.0, 14)),
        queue_lag: Gauge::default(),
        unclaimed_streams: Gauge::default(),
        sessions: Gauge::default(),
        capacity: Gauge::default(),
        realtime_ratio: Gauge::default(),
        pixels: Counter::default(),
        streams_claimed: Counter::default(),
        streams_released: Family::default(),
    };
    let mut registry = livefarm_telemetry::metrics::registry();
    // prometheus-client appends `_total` to counters and the unit to unit-carrying names
    registry.register(
        "livefarm_transcoder_jobs",
        "segment jobs handled, by outcome",
        metrics.jobs.clone(),
    );
    registry.register(
        "livefarm_transcoder_errors",
        "segment failures, by kind",
        metrics.errors.clone(),
    );
    registry.register_with_unit(
        "livefarm_transcoder_transcode",
        "time to fetch, transcode and store one segment",
        Unit::Seconds,
        metrics.transcode_seconds.clone(),
    );
    registry.register_with_unit(
        "livefarm_transcoder_queue",
        "time from enqueue to the start of work on a segment",
        Unit::Seconds,
        metrics.queue_seconds.clone(),
    );
    registry.register(
        "livefarm_transcoder_queue_lag",
        "jobs not yet delivered in this worker's streams and the unclaimed streams it sees",
        metrics.queue_lag.clone(),
    );
    registry.register(
        "livefarm_transcoder_unclaimed_streams",
        "streams with queued jobs that no worker holds",
        metrics.unclaimed_streams.clone(),
    );
    registry.register(
        "livefarm_transcoder_sessions",
        "transcode sessions held",
        metrics.sessions.clone(),
    );
    registry.register(
        "livefarm_transcoder_session_capacity",
        "most transcode sessions this worker takes",
        metrics.capacity.clone(),
    );
    registry.register(
        "livefarm_transcoder_realtime_ratio",
        "segment duration over its transcode time, last segment",
        metrics.realtime_ratio.clone(),
    );
    registry.register(
        "livefarm_transcoder_encoded_pixels",
        "pixels encoded over every rendition",
        metrics.pixels.clone(),
    );
    registry.register(
        "livefarm_transcoder_streams_claimed",
        "streams this worker took (new or taken over)",
        metrics.streams_claimed.clone(),
    );
    registry.register(
        "livefarm_transcoder_streams_released",
        "streams this worker let go, by reason",
        metrics.streams_released.clone(),
    );
    drop(registry);
    metrics
});

/// Counts one job outcome.
pub(crate) fn job(outcome: &'static str) {
    METRICS.jobs.get_or_create(&OutcomeLabel { outcome }).inc();
}

/// Counts one error.
pub(crate) fn error(kind: &'static str) {
    METRICS.errors.get_or_create(&KindLabel { kind }).inc();
}

/// Counts one released stream.
pub(crate) fn released(reason: &'static str) {
    METRICS
        .streams_released
        .get_or_create(&ReasonLabel { reason })
        .inc();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_style() {
        job("ok");
        error("decode");
        METRICS.transcode_seconds.observe(0.2);
        let text = livefarm_telemetry::metrics::render();
        for name in [
            "livefarm_transcoder_jobs_total{outcome=\"ok\"}",
            "livefarm_transcoder_errors_total{kind=\"decode\"}",
            "livefarm_transcoder_transcode_seconds_bucket",
            "livefarm_transcoder_queue_seconds_bucket",
            "livefarm_transcoder_queue_lag ",
            "livefarm_transcoder_sessions ",
            "livefarm_transcoder_realtime_ratio ",
            "livefarm_transcoder_encoded_pixels_total ",
        ] {
            assert!(text.contains(name), "{name} missing in\n{text}");
        }
    }
}
