//! The process-wide Prometheus registry, rendered by the admin server's `/metrics`.
//!
//! Each crate declares its families once (a `LazyLock` holding a struct of metrics is the usual
//! shape), registers them here and keeps clones to update:
//!
//! ```
//! use std::sync::LazyLock;
//! use prometheus_client::metrics::counter::Counter;
//!
//! static SEGMENTS: LazyLock<Counter> = LazyLock::new(|| {
//!     let counter = Counter::default();
//!     // prometheus-client appends `_total` to counters when it renders them
//!     livefarm_telemetry::metrics::registry().register(
//!         "livefarm_segmenter_segments",
//!         "segments cut",
//!         counter.clone(),
//!     );
//!     counter
//! });
//!
//! SEGMENTS.inc();
//! assert!(livefarm_telemetry::metrics::render().contains("livefarm_segmenter_segments_total 1"));
//! ```
//!
//! Names follow `livefarm_<service>_<name>_<unit>[_total]` with base units and bounded labels.

use std::sync::atomic::AtomicU64;
use std::sync::{Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// Content type of [`render`]'s output, for the `/metrics` response.
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

static REGISTRY: OnceLock<Mutex<Registry>> = OnceLock::new();

fn global() -> &'static Mutex<Registry> {
    REGISTRY.get_or_init(|| {
        let mut registry = Registry::default();
        register_process_metrics(&mut registry);
        Mutex::new(registry)
    })
}

/// Locks the process-wide registry to register families.
///
/// Do not call [`render`] while holding the guard: it takes the same lock.
pub fn registry() -> MutexGuard<'static, Registry> {
    // a panic while registering leaves the registry usable: registration is append-only
    global().lock().unwrap_or_else(PoisonError::into_inner)
}

/// Every registered family in OpenMetrics text format, ending with `# EOF`.
pub fn render() -> String {
    let mut out = String::new();
    // writing into a String cannot fail; an Err here would come from a broken metric encoder
    if let Err(error) = encode(&mut out, &registry()) {
        tracing::warn!(%error, "metrics encoding failed");
    }
    out
}

fn register_process_metrics(registry: &mut Registry) {
    let start_time: Gauge<f64, AtomicU64> = Gauge::default();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or_default();
    start_time.set(now);
    registry.register(
        "livefarm_process_start_time_seconds",
        "start time of the process since the unix epoch",
        start_time,
    );
}

#[cfg(test)]
mod tests {
    use prometheus_client::encoding::EncodeLabelSet;
    use prometheus_client::metrics::counter::Counter;
    use prometheus_client::metrics::family::Family;
    use prometheus_client::metrics::histogram::Histogram;
    use prometheus_client::registry::Unit;

    use super::*;

    #[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
    struct Outcome {
        outcome: &'static str,
    }

    // two "crates" register independently; one render shows both
    fn crate_a() -> Family<Outcome, Counter> {
        let family = Family::<Outcome, Counter>::default();
        registry().register("livefarm_testa_jobs", "jobs handled", family.clone());
        family
    }

    fn crate_b() -> Histogram {
        let histogram = Histogram::new([0.1, 1.0]);
        registry().register_with_unit(
            "livefarm_testb_transcode",
            "transcode time",
            Unit::Seconds,
            histogram.clone(),
        );
        histogram
    }

    #[test]
    fn families_from_two_places_render_in_one_text() {
        let jobs = crate_a();
        let time = crate_b();
        jobs.get_or_create(&Outcome { outcome: "ok" }).inc_by(3);
        time.observe(0.5);

        let text = render();
        assert!(
            text.contains("livefarm_testa_jobs_total{outcome=\"ok\"} 3"),
            "{text}"
        );
        assert!(
            text.contains("livefarm_testb_transcode_seconds_bucket{le=\"1.0\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("# TYPE livefarm_process_start_time_seconds gauge"),
            "{text}"
        );
        assert!(text.trim_end().ends_with("# EOF"), "{text}");
    }

    #[test]
    fn process_start_time_is_recent() {
        let text = render();
        let value: f64 = text
            .lines()
            .find_map(|l| l.strip_prefix("livefarm_process_start_time_seconds "))
            .expect("start time sample")
            .parse()
            .expect("float sample");
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("clock after epoch")
            .as_secs_f64();
        assert!(
            value > 1.6e9 && value <= now,
            "start time {value}, now {now}"
        );
    }
}
