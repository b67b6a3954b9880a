//! Errors raised while setting up telemetry.

/// Why telemetry could not be initialised.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// The log filter (from `log_filter` or `RUST_LOG`) does not parse.
    #[error("invalid log filter `{filter}`: {reason}")]
    InvalidFilter {
        /// The filter text as given.
        filter: String,
        /// What the parser said.
        reason: String,
    },
    /// The OTLP exporter could not be built (bad endpoint URI, for instance).
    #[error("cannot build otlp exporter for `{endpoint}`: {reason}")]
    Exporter {
        /// The configured endpoint.
        endpoint: String,
        /// What the exporter builder said.
        reason: String,
    },
    /// The OTLP gRPC exporter needs a tokio runtime to spawn its connection task.
    #[error("otlp export needs a tokio runtime: call init from inside one")]
    NoRuntime,
}
