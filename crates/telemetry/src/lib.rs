//! Logging, tracing and metrics shared by every Livefarm service.
//!
//! - [`init`] installs the global `tracing` subscriber: a log layer (pretty or JSON on stderr),
//!   an env filter, and an OpenTelemetry layer that gives every span a W3C trace id and, when
//!   `otlp_endpoint` is set, exports spans over OTLP/gRPC.
//! - [`inject_context`] / [`set_parent_from`] carry a trace across the job bus.
//! - [`metrics`] holds the one Prometheus registry that `/metrics` renders.

mod config;
mod error;
pub mod metrics;
mod propagation;

use std::sync::{Mutex, PoisonError};

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use opentelemetry_sdk::Resource;
use tracing_subscriber::filter::{filter_fn, EnvFilter};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::Layer;

pub use config::{LogFormat, TelemetryConfig};
pub use error::TelemetryError;
pub use propagation::{extract_context, inject_context, set_parent_from, trace_id, TRACEPARENT};

/// Set once the global subscriber is ours; later [`init`] calls are no-ops.
static INSTALLED: Mutex<bool> = Mutex::new(false);

/// Keeps the tracer provider alive; dropping it flushes pending spans and stops the exporter.
///
/// With OTLP export on, drop it on a multi-thread tokio runtime or outside any runtime: the
/// flush blocks the dropping thread while the gRPC client needs another thread to make progress.
#[must_use = "dropping the guard stops span export"]
pub struct TelemetryGuard {
    provider: Option<SdkTracerProvider>,
}

impl TelemetryGuard {
    /// Whether this guard owns the tracer provider (false for the no-op guard of a repeat call).
    pub fn is_active(&self) -> bool {
        self.provider.is_some()
    }
}

impl std::fmt::Debug for TelemetryGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TelemetryGuard")
            .field("active", &self.is_active())
            .finish()
    }
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take() {
            if let Err(error) = provider.shutdown() {
                // the subscriber may still log, but stderr is the last resort at exit
                eprintln!("telemetry shutdown failed: {error}");
            }
        }
    }
}

/// Installs the global subscriber described by `config`.
///
/// A second call in the same process does nothing and returns an inactive guard, so tests and
/// the all-in-one binary can call it freely; so does a call after another global subscriber was
/// installed (with a warning through that subscriber). With `otlp_endpoint` set it must run
/// inside a tokio runtime (the gRPC client spawns its connection task there).
pub fn init(config: &TelemetryConfig) -> Result<TelemetryGuard, TelemetryError> {
    let mut installed = INSTALLED.lock().unwrap_or_else(PoisonError::into_inner);
    if *installed {
        return Ok(TelemetryGuard { provider: None });
    }

    let filter = build_filter(&config.log_filter, std::env::var("RUST_LOG").ok())?;
    let provider = build_provider(config)?;
    let tracer = provider.tracer("livefarm");

    let fmt_layer = match config.log_format {
        LogFormat::Pretty => tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .boxed(),
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .with_writer(std::io::stderr)
            .boxed(),
    };
    // the exporter's own gRPC stack must not feed spans back into the exporter
    let otel_layer = tracing_opentelemetry::layer()
        .with_tracer(tracer)
        .with_filter(filter_fn(|meta| !is_export_stack(meta.target())));

    let installed_now = tracing_subscriber::registry()
        .with(filter)
        .with(fmt_layer)
        .with(otel_layer)
        .try_init();
    *installed = true;
    if let Err(error) = installed_now {
        // someone else's subscriber (a test harness's, typically) keeps logging; ours is moot
        tracing::warn!(%error, "a global tracing subscriber is already installed, telemetry init skipped");
        return Ok(TelemetryGuard { provider: None });
    }

    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    opentelemetry::global::set_tracer_provider(provider.clone());
    tracing::debug!(
        service = %config.service_name,
        otlp_endpoint = config.otlp_endpoint.as_deref().unwrap_or("none"),
        "telemetry initialised"
    );
    Ok(TelemetryGuard {
        provider: Some(provider),
    })
}

fn build_filter(configured: &str, rust_log: Option<String>) -> Result<EnvFilter, TelemetryError> {
    let from_env = rust_log.filter(|v| !v.trim().is_empty());
    let text = from_env.as_deref().unwrap_or(configured);
    EnvFilter::try_new(text).map_err(|e| TelemetryError::InvalidFilter {
        filter: text.to_owned(),
        reason: e.to_string(),
    })
}

// without an endpoint the provider still mints trace ids, so propagation works with export off
fn build_provider(config: &TelemetryConfig) -> Result<SdkTracerProvider, TelemetryError> {
    let resource = Resource::builder()
        .with_service_name(config.service_name.clone())
        .build();
    let mut builder = SdkTracerProvider::builder().with_resource(resource);
    if let Some(endpoint) = &config.otlp_endpoint {
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(TelemetryError::NoRuntime);
        }
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .with_endpoint(endpoint.clone())
            .build()
            .map_err(|e| TelemetryError::Exporter {
                endpoint: endpoint.clone(),
                reason: e.to_string(),
            })?;
        builder = builder.with_batch_exporter(exporter);
    }
    Ok(builder.build())
}

fn is_export_stack(target: &str) -> bool {
    ["h2", "hyper", "tonic", "tower", "opentelemetry"]
        .iter()
        .any(|p| {
            target == *p
                || target.starts_with(&format!("{p}::"))
                || target.starts_with(&format!("{p}_"))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rust_log_overrides_configured_filter() {
        let filter = build_filter("info", Some("livefarm_bus=trace".into())).expect("valid");
        assert_eq!(filter.to_string(), "livefarm_bus=trace");
        let filter = build_filter("warn", Some("  ".into())).expect("valid");
        assert_eq!(filter.to_string(), "warn");
    }

    #[test]
    fn bad_filter_names_the_filter() {
        let err = build_filter("livefarm=notalevel", None).expect_err("invalid level");
        assert!(err.to_string().contains("livefarm=notalevel"), "{err}");
        let err = build_filter("info", Some("x=nope".into())).expect_err("invalid env filter");
        assert!(err.to_string().contains("x=nope"), "{err}");
    }

    #[test]
    fn otlp_export_needs_a_runtime() {
        let config = TelemetryConfig {
            otlp_endpoint: Some("http://127.0.0.1:4317".into()),
            ..TelemetryConfig::default()
        };
        assert!(matches!(
            build_provider(&config),
            Err(TelemetryError::NoRuntime)
        ));
        // without export there is nothing to spawn
        assert!(build_provider(&TelemetryConfig::default()).is_ok());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn bad_endpoint_is_reported() {
        let config = TelemetryConfig {
            otlp_endpoint: Some("not a uri".into()),
            ..TelemetryConfig::default()
        };
        let err = build_provider(&config).expect_err("invalid uri");
        assert!(err.to_string().contains("not a uri"), "{err}");
    }

    #[test]
    fn export_stack_targets_are_filtered() {
        assert!(is_export_stack("h2::codec"));
        assert!(is_export_stack("tonic"));
        assert!(is_export_stack("opentelemetry_sdk"));
        assert!(!is_export_stack("livefarm_bus"));
        assert!(!is_export_stack("hypervisor"));
    }
}
