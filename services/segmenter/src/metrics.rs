//! The segmenter's metrics, declared once.

use std::sync::LazyLock;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;

pub(crate) struct Metrics {
    pub(crate) segments: Counter,
    pub(crate) too_long: Counter,
    pub(crate) segment_errors: Counter,
    pub(crate) publishes: Counter,
    pub(crate) active: Gauge,
}

pub(crate) static METRICS: LazyLock<Metrics> = LazyLock::new(|| {
    let metrics = Metrics {
        segments: Counter::default(),
        too_long: Counter::default(),
        segment_errors: Counter::default(),
        publishes: Counter::default(),
        active: Gauge::default(),
    };
    let mut registry = livefarm_telemetry::metrics::registry();
    // prometheus-client appends `_total` to counters
    registry.register(
        "livefarm_segmenter_segments",
        "segments stored and enqueued",
        metrics.segments.clone(),
    );
    registry.register(
        "livefarm_segmenter_too_long_segments",
        "segments longer than 3x the target (source keyframes too far apart)",
        metrics.too_long.clone(),
    );
    registry.register(
        "livefarm_segmenter_segment_errors",
        "segments that could not be cut, stored or enqueued",
        metrics.segment_errors.clone(),
    );
    registry.register(
        "livefarm_segmenter_publishes",
        "publish sessions started",
        metrics.publishes.clone(),
    );
    registry.register(
        "livefarm_segmenter_active_publishes",
        "publish sessions being segmented now",
        metrics.active.clone(),
    );
    metrics
});
