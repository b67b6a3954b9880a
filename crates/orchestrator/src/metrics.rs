//! The orchestrator's Prometheus metrics, registered once in the process-wide registry.
//! Labels are bounded (HTTP status), never a session or sender.

use std::sync::LazyLock;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Unit;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct StatusLabel {
    pub status: u16,
}

pub(crate) struct Metrics {
    pub segments_ok: Counter,
    pub segments_failed: Counter,
    pub refused: Family<StatusLabel, Counter>,
    pub winning_tickets: Counter,
    pub pixels: Counter,
    pub segment_seconds: Histogram,
}

impl Metrics {
    pub fn refused(&self, status: u16) {
        self.refused.get_or_create(&StatusLabel { status }).inc();
    }

    pub fn observe_segment(&self, elapsed: Duration) {
        self.segment_seconds.observe(elapsed.as_secs_f64());
    }
}

static METRICS: LazyLock<Metrics> = LazyLock::new(|| {
    let metrics = Metrics {
        segments_ok: Counter::default(),
        segments_failed: Counter::default(),
        refused: Family::default(),
        winning_tickets: Counter::default(),
        pixels: Counter::default(),
        segment_seconds: Histogram::new(exponential_buckets(0.01, 2.0, 14)),
    };
    let mut registry = livefarm_telemetry::metrics::registry();
    registry.register(
        "livefarm_orchestrator_segments_transcoded",
        "segments transcoded for broadcasters",
        metrics.segments_ok.clone(),
    );
    registry.register(
        "livefarm_orchestrator_segments_failed",
        "accepted segments whose transcode failed (error in the TranscodeResult)",
        metrics.segments_failed.clone(),
    );
    registry.register(
        "livefarm_orchestrator_segments_refused",
        "segments refused before transcoding, by HTTP status",
        metrics.refused.clone(),
    );
    registry.register(
        "livefarm_orchestrator_winning_tickets",
        "winning tickets queued for redemption",
        metrics.winning_tickets.clone(),
    );
    registry.register(
        "livefarm_orchestrator_pixels",
        "pixels transcoded for broadcasters",
        metrics.pixels.clone(),
    );
    registry.register_with_unit(
        "livefarm_orchestrator_segment",
        "time from request to TranscodeResult",
        Unit::Seconds,
        metrics.segment_seconds.clone(),
    );
    drop(registry);
    metrics
});

pub(crate) fn metrics() -> &'static Metrics {
    &METRICS
}

/// Registers the orchestrator's families now rather than at the first segment, so a fresh
/// service's `/metrics` already lists them.
pub fn register() {
    LazyLock::force(&METRICS);
}
