//! Ingest's Prometheus metrics, declared once and registered in the process-wide registry.
//!
//! Names follow `livefarm_ingest_<name>_<unit>[_total]`; labels are bounded (protocol, reason,
//! outcome, status class), never a stream id or key.

use std::sync::LazyLock;

use axum::http::StatusCode;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;

use crate::error::{AuthError, IngestError};

/// `protocol`: `rtmp`, `srt`, `http_push`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct ProtocolLabel {
    pub protocol: &'static str,
}

/// `outcome`: `ok` (the publisher stopped), `failed` (the segmenter gave up).
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct EndedLabels {
    pub protocol: &'static str,
    pub outcome: &'static str,
}

/// `reason`: `unauthorized`, `auth_unavailable`, `bad_path`, `error`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct RefusedLabels {
    pub protocol: &'static str,
    pub reason: &'static str,
}

/// `status`: `2xx`, `4xx`, `5xx` (and `1xx`, `3xx`, which ingest does not send).
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct StatusLabel {
    pub status: &'static str,
}

pub(crate) struct Metrics {
    /// `livefarm_ingest_publishes_started_total{protocol}`.
    pub started: Family<ProtocolLabel, Counter>,
    /// `livefarm_ingest_publishes_ended_total{protocol,outcome}`.
    pub ended: Family<EndedLabels, Counter>,
    /// `livefarm_ingest_publishes_refused_total{protocol,reason}`.
    pub refused: Family<RefusedLabels, Counter>,
    /// `livefarm_ingest_received_bytes_total{protocol}`.
    pub received: Family<ProtocolLabel, Counter>,
    /// `livefarm_ingest_push_requests_total{status}`.
    pub push_requests: Family<StatusLabel, Counter>,
}

static METRICS: LazyLock<Metrics> = LazyLock::new(|| {
    let metrics = Metrics {
        started: Family::default(),
        ended: Family::default(),
        refused: Family::default(),
        received: Family::default(),
        push_requests: Family::default(),
    };
    let mut registry = livefarm_telemetry::metrics::registry();
    // prometheus-client appends `_total` to counters
    registry.register(
        "livefarm_ingest_publishes_started",
        "live publishes let in, by protocol",
        metrics.started.clone(),
    );
    registry.register(
        "livefarm_ingest_publishes_ended",
        "live publishes ended, by protocol and outcome",
        metrics.ended.clone(),
    );
    registry.register(
        "livefarm_ingest_publishes_refused",
        "live publishes refused before they started, by protocol and reason",
        metrics.refused.clone(),
    );
    registry.register(
        "livefarm_ingest_received_bytes",
        "media bytes taken from publishers (FLV for rtmp, MPEG-TS for srt, segment bodies for http_push)",
        metrics.received.clone(),
    );
    registry.register(
        "livefarm_ingest_push_requests",
        "HTTP push requests answered, by status class",
        metrics.push_requests.clone(),
    );
    drop(registry);
    metrics
});

/// Registers the families now, so a fresh ingest's `/metrics` lists them.
pub(crate) fn register() {
    LazyLock::force(&METRICS);
}

pub(crate) fn publish_started(protocol: &'static str) {
    METRICS
        .started
        .get_or_create(&ProtocolLabel { protocol })
        .inc();
}

pub(crate) fn publish_ended(protocol: &'static str, ok: bool) {
    let outcome = if ok { "ok" } else { "failed" };
    METRICS
        .ended
        .get_or_create(&EndedLabels { protocol, outcome })
        .inc();
}

/// Counts a publish refused with `error`.
pub(crate) fn publish_refused(protocol: &'static str, error: &IngestError) {
    let reason = match error {
        IngestError::Auth(AuthError::Refused(_)) => "unauthorized",
        IngestError::Auth(AuthError::Unavailable(_)) => "auth_unavailable",
        IngestError::BadPath { .. } => "bad_path",
        _ => "error",
    };
    METRICS
        .refused
        .get_or_create(&RefusedLabels { protocol, reason })
        .inc();
}

pub(crate) fn received(protocol: &'static str, bytes: usize) {
    METRICS
        .received
        .get_or_create(&ProtocolLabel { protocol })
        .inc_by(bytes as u64);
}

pub(crate) fn push_request(status: StatusCode) {
    let status = match status.as_u16() {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    };
    METRICS
        .push_requests
        .get_or_create(&StatusLabel { status })
        .inc();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_style() {
        publish_started("rtmp");
        publish_ended("srt", false);
        publish_refused(
            "rtmp",
            &IngestError::Auth(AuthError::Refused("unknown key".into())),
        );
        received("http_push", 188);
        push_request(StatusCode::SERVICE_UNAVAILABLE);
        let text = livefarm_telemetry::metrics::render();
        for name in [
            "livefarm_ingest_publishes_started_total{protocol=\"rtmp\"}",
            "livefarm_ingest_publishes_ended_total{protocol=\"srt\",outcome=\"failed\"}",
            "livefarm_ingest_publishes_refused_total{protocol=\"rtmp\",reason=\"unauthorized\"}",
            "livefarm_ingest_received_bytes_total{protocol=\"http_push\"}",
            "livefarm_ingest_push_requests_total{status=\"5xx\"}",
        ] {
            assert!(text.contains(name), "{name} missing in\n{text}");
        }
    }
}
