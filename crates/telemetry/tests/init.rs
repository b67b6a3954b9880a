//! Global subscriber setup and trace propagation (one process, so one shared subscriber).

use std::collections::HashMap;
use std::sync::OnceLock;

use livefarm_telemetry::{
    extract_context, init, inject_context, set_parent_from, trace_id, LogFormat, TelemetryConfig,
    TelemetryGuard, TRACEPARENT,
};
use opentelemetry::trace::TraceContextExt;

// tests run in parallel threads: the first one installs the subscriber, and its guard must
// outlive every test (a shut-down provider stops minting trace ids)
fn setup() -> &'static TelemetryGuard {
    static GUARD: OnceLock<TelemetryGuard> = OnceLock::new();
    GUARD.get_or_init(|| {
        let config = TelemetryConfig {
            log_format: LogFormat::Json,
            log_filter: "info".into(),
            service_name: "telemetry-test".into(),
            otlp_endpoint: None,
        };
        init(&config).expect("json init")
    })
}

#[test]
fn json_init_succeeds_and_repeat_is_noop() {
    assert!(setup().is_active(), "first init owns the provider");
    tracing::info!(answer = 42, "json log line");
    let again = init(&TelemetryConfig::default()).expect("second init");
    assert!(!again.is_active(), "second init must be a no-op");
}

#[test]
fn inject_then_extract_keeps_trace_id() {
    setup();
    let producer = tracing::info_span!("producer");
    let carrier = inject_context(&producer);
    let producer_trace = trace_id(&producer).expect("producer has a trace");
    let traceparent = carrier.get(TRACEPARENT).expect("traceparent injected");
    // version-traceid-spanid-flags
    let parts: Vec<&str> = traceparent.split('-').collect();
    assert_eq!(parts.len(), 4, "{traceparent}");
    assert_eq!(parts[1], producer_trace);

    let cx = extract_context(&carrier);
    assert_eq!(
        cx.span().span_context().trace_id().to_string(),
        producer_trace
    );

    // the consumer side, as after a hop over the bus
    let consumer = tracing::info_span!("consumer");
    assert!(set_parent_from(&consumer, &carrier));
    assert_eq!(
        trace_id(&consumer).as_deref(),
        Some(producer_trace.as_str())
    );

    // an unrelated span starts its own trace
    let other = tracing::info_span!("other");
    assert_ne!(trace_id(&other).as_deref(), Some(producer_trace.as_str()));
}

#[test]
fn malformed_carrier_is_ignored() {
    setup();
    let span = tracing::info_span!("orphan");
    let before = trace_id(&span);
    let carrier = HashMap::from([(TRACEPARENT.to_owned(), "not-a-traceparent".to_owned())]);
    assert!(!set_parent_from(&span, &carrier));
    assert!(!set_parent_from(&span, &HashMap::new()));
    assert_eq!(trace_id(&span), before);
}
