//! Spans reach an OTLP/gRPC collector (an in-process fake) with their names and fields.

use std::time::Duration;

use fake_opentelemetry_collector::FakeCollectorServer;
use livefarm_telemetry::{init, TelemetryConfig};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn span_is_exported_to_collector() {
    let mut collector = FakeCollectorServer::start()
        .await
        .expect("fake collector starts");
    let config = TelemetryConfig {
        otlp_endpoint: Some(collector.endpoint()),
        service_name: "otlp-test".into(),
        ..TelemetryConfig::default()
    };
    let guard = init(&config).expect("init with otlp");
    assert!(guard.is_active());

    {
        let span = tracing::info_span!("livefarm_test_export", job = 7);
        let _entered = span.enter();
        tracing::info!("inside the exported span");
    }
    // a span below the filter level must not be exported
    drop(tracing::debug_span!("livefarm_test_filtered"));

    // dropping the guard flushes; it blocks, so keep it off the async workers
    tokio::task::spawn_blocking(move || drop(guard))
        .await
        .expect("guard drop");

    let spans = collector.exported_spans(1, Duration::from_secs(10)).await;
    let names: Vec<&str> = spans.iter().map(|s| s.name.as_str()).collect();
    let span = spans
        .iter()
        .find(|s| s.name == "livefarm_test_export")
        .unwrap_or_else(|| panic!("span not exported, got {names:?}"));
    // the fake collector stores attribute values in their Debug form
    let job = span.attributes.get("job").expect("job attribute");
    assert!(job.contains("IntValue(7)"), "{job}");
    assert_eq!(span.trace_id.len(), 32);
    assert!(!names.contains(&"livefarm_test_filtered"), "{names:?}");
}
