//! Whether Redis answers, as this process sees it: the signal behind the "Redis unreachable"
//! alert. Updated only when a connection is opened or a call fails, never per command.

use std::sync::LazyLock;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;

struct RedisMetrics {
    /// `livefarm_bus_redis_up`: 1 after a connection was opened, 0 after a connect or a
    /// call failed, until the next connection opens.
    up: Gauge,
    /// `livefarm_bus_redis_connect_failures_total`.
    connect_failures: Counter,
}

static METRICS: LazyLock<RedisMetrics> = LazyLock::new(|| {
    let metrics = RedisMetrics {
        up: Gauge::default(),
        connect_failures: Counter::default(),
    };
    let mut registry = livefarm_telemetry::metrics::registry();
    registry.register(
        "livefarm_bus_redis_up",
        "1 when the last connection to Redis opened and no call failed since, 0 otherwise",
        metrics.up.clone(),
    );
    // prometheus-client appends `_total` to counters
    registry.register(
        "livefarm_bus_redis_connect_failures",
        "connections to Redis that could not be opened (refused, timed out, TLS or AUTH failed)",
        metrics.connect_failures.clone(),
    );
    drop(registry);
    metrics
});

/// Registers the families (a process on a Redis bus lists them from its start).
pub(crate) fn register() {
    LazyLock::force(&METRICS);
}

/// A connection was opened (`true`) or could not be (`false`).
pub(crate) fn connected(ok: bool) {
    if !ok {
        METRICS.connect_failures.inc();
    }
    METRICS.up.set(i64::from(ok));
}

/// A call on an open connection failed: the server stopped answering.
pub(crate) fn call_failed() {
    METRICS.up.set(0);
}
