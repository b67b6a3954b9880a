//! W3C trace-context propagation, so a job carried over the bus keeps its trace.
//!
//! The producer calls [`inject_context`] on its current span and stores the map beside the job;
//! the consumer calls [`set_parent_from`] (or [`extract_context`]) on the span that handles it.

use std::collections::HashMap;

use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::TraceContextExt;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// The W3C `traceparent` key, present in every injected map that carries a trace.
pub const TRACEPARENT: &str = "traceparent";

/// Serialises `span`'s trace context as W3C `traceparent` (and `tracestate` when set).
///
/// The map is empty when the span is disabled or no OpenTelemetry layer is installed
/// (telemetry not initialised): there is nothing to propagate then.
pub fn inject_context(span: &tracing::Span) -> HashMap<String, String> {
    let mut carrier = HashMap::new();
    let cx = span.context();
    if cx.span().span_context().is_valid() {
        TraceContextPropagator::new().inject_context(&cx, &mut carrier);
    }
    carrier
}

/// Parses a map written by [`inject_context`] into a parent context; a missing or malformed
/// `traceparent` yields an empty context (the span then starts a new trace).
pub fn extract_context(carrier: &HashMap<String, String>) -> opentelemetry::Context {
    TraceContextPropagator::new().extract(carrier)
}

/// Makes `span` a child of the remote span described by `carrier`.
///
/// Returns `false` when the carrier holds no valid trace context or the span cannot take a
/// parent (disabled, or already started as part of another trace); the span is unchanged then.
pub fn set_parent_from(span: &tracing::Span, carrier: &HashMap<String, String>) -> bool {
    let cx = extract_context(carrier);
    if !cx.span().span_context().is_valid() {
        return false;
    }
    span.set_parent(cx).is_ok()
}

/// The hex trace id of `span`, for log fields and API responses; `None` without a trace.
pub fn trace_id(span: &tracing::Span) -> Option<String> {
    let cx = span.context();
    let sc = cx.span().span_context().clone();
    sc.is_valid().then(|| sc.trace_id().to_string())
}
