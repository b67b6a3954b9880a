//! `init` after someone else installed the global subscriber (as test harnesses do).

use livefarm_telemetry::{init, TelemetryConfig};

#[test]
fn init_after_foreign_subscriber_is_a_noop() {
    tracing_subscriber::fmt()
        .with_test_writer()
        .try_init()
        .expect("first subscriber");
    let guard = init(&TelemetryConfig::default()).expect("init tolerates a foreign subscriber");
    assert!(!guard.is_active());
}
