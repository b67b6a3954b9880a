//! Telemetry settings, embedded as the `telemetry` section of every service config.

use serde::{Deserialize, Serialize};

/// How log lines are written to stderr.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable single-line text (with ANSI colours when stderr is a terminal).
    #[default]
    Pretty,
    /// One JSON object per line, for log shippers.
    Json,
}

/// Logging, tracing and export settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct TelemetryConfig {
    /// Log line format.
    pub log_format: LogFormat,
    /// `tracing` filter directives (`info`, `livefarm_bus=debug,info`); `RUST_LOG` wins when set.
    pub log_filter: String,
    /// OTLP gRPC endpoint (`http://127.0.0.1:4317`); `None` disables span export.
    pub otlp_endpoint: Option<String>,
    /// `service.name` resource attribute of exported spans.
    pub service_name: String,
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        Self {
            log_format: LogFormat::default(),
            log_filter: "info".to_owned(),
            otlp_endpoint: None,
            service_name: "livefarm".to_owned(),
        }
    }
}
