//! The API's Prometheus metrics, declared once and registered in the process-wide registry.
//!
//! Names follow `livefarm_api_<name>_<unit>[_total]`; labels are bounded: the matched route
//! template (never a raw path, which holds ids), a status class and fixed outcomes.

use std::sync::LazyLock;
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Unit;

/// `route`: the matched route template (`/hls/{playback_id}/index.m3u8`), `unmatched` for
/// the 404 fallback; `status`: `2xx`, `3xx`, `4xx`, `5xx`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct RequestLabels {
    pub route: String,
    pub status: &'static str,
}

/// `route`, as in [`RequestLabels`].
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct RouteLabel {
    pub route: String,
}

/// `outcome`: a fixed word per metric.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct OutcomeLabel {
    pub outcome: &'static str,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

pub(crate) struct Metrics {
    /// `livefarm_api_http_requests_total{route,status}`.
    pub requests: Family<RequestLabels, Counter>,
    /// `livefarm_api_http_request_duration_seconds{route}`.
    pub request_seconds: HistogramFamily<RouteLabel>,
    /// `livefarm_api_results_total{outcome}`: `applied`, `skipped` (duplicate, late, failed or
    /// dropped segment).
    pub results: Family<OutcomeLabel, Counter>,
    /// `livefarm_api_snapshots_total{outcome}`: `loaded` at start, `written`, `superseded` (a
    /// newer one was there), `failed`.
    pub snapshots: Family<OutcomeLabel, Counter>,
}

fn request_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.0005, 2.0, 14))
}

pub(crate) static METRICS: LazyLock<Metrics> = LazyLock::new(|| {
    let metrics = Metrics {
        requests: Family::default(),
        request_seconds: Family::new_with_constructor(request_histogram),
        results: Family::default(),
        snapshots: Family::default(),
    };
    let mut registry = livefarm_telemetry::metrics::registry();
    // prometheus-client appends `_total` to counters and the unit to unit-carrying names
    registry.register(
        "livefarm_api_http_requests",
        "http requests answered, by route template and status class",
        metrics.requests.clone(),
    );
    registry.register_with_unit(
        "livefarm_api_http_request_duration",
        "time to answer an http request, by route template",
        Unit::Seconds,
        metrics.request_seconds.clone(),
    );
    registry.register(
        "livefarm_api_results",
        "segment results read from the bus, by outcome",
        metrics.results.clone(),
    );
    registry.register(
        "livefarm_api_snapshots",
        "playlist snapshots loaded and saved, by outcome",
        metrics.snapshots.clone(),
    );
    drop(registry);
    metrics
});

/// Counts one result.
pub(crate) fn result(outcome: &'static str) {
    METRICS
        .results
        .get_or_create(&OutcomeLabel { outcome })
        .inc();
}

/// Counts one snapshot operation.
pub(crate) fn snapshot(outcome: &'static str) {
    METRICS
        .snapshots
        .get_or_create(&OutcomeLabel { outcome })
        .inc();
}

fn status_class(status: u16) -> &'static str {
    match status {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    }
}

/// Middleware: counts and times every request under its route template.
pub(crate) async fn track(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |path| path.as_str().to_owned());
    let started = Instant::now();
    let response = next.run(request).await;
    let status = status_class(response.status().as_u16());
    METRICS
        .requests
        .get_or_create(&RequestLabels {
            route: route.clone(),
            status,
        })
        .inc();
    METRICS
        .request_seconds
        .get_or_create(&RouteLabel { route })
        .observe(started.elapsed().as_secs_f64());
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_style() {
        result("applied");
        snapshot("written");
        METRICS
            .request_seconds
            .get_or_create(&RouteLabel {
                route: "/api/stream".to_owned(),
            })
            .observe(0.01);
        let text = livefarm_telemetry::metrics::render();
        for name in [
            "livefarm_api_results_total{outcome=\"applied\"}",
            "livefarm_api_snapshots_total{outcome=\"written\"}",
            "livefarm_api_http_request_duration_seconds_count{route=\"/api/stream\"}",
        ] {
            assert!(text.contains(name), "{name} missing in\n{text}");
        }
        assert_eq!(status_class(204), "2xx");
        assert_eq!(status_class(503), "5xx");
    }
}
