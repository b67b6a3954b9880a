//! Shared pieces of the `livefarm` command.

use std::fmt;

/// A mistake in what the user asked for (exit code 64).
#[derive(Debug)]
pub struct UsageError(pub String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// Logs to stderr (`RUST_LOG` overrides the configured filter) and exports spans over OTLP when
/// `telemetry.otlp_endpoint` is set.
pub fn init_logging(config: &livefarm_telemetry::TelemetryConfig) {
    match livefarm_telemetry::init(config) {
        // The guard flushes exporters at exit; the process keeps it for its whole life.
        Ok(guard) => std::mem::forget(guard),
        Err(error) => eprintln!("warning: logging could not be initialised: {error}"),
    }
}
