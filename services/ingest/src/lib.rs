//! livefarm-ingest: takes live segments in and hands them to the transcoder pool.
//!
//! Today this is go-livepeer's HTTP push contract (livepeer-protocol.md §5.1):
//! `PUT|POST /live/{manifestID}/{seq}.ts|.mp4` with `Content-Duration`,
//! `Livepeer-Transcode-Configuration` and, with `Accept: multipart/mixed`, every rendition in the
//! reply. Each segment is stored, enqueued as a job on the bus, and answered when the worker's
//! result arrives. RTMP and SRT listeners come next.

mod push;
mod results;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use livefarm_bus::JobBus;
use livefarm_runtime::{Readiness, Shutdown};
use livefarm_storage::Storage;
use livefarm_telemetry::TelemetryConfig;
use serde::{Deserialize, Serialize};

pub use push::{parse_push_path, router, PushPath};
pub use results::ResultWaiters;

/// The ingest service's configuration.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IngestConfig {
    /// HTTP push listener (go-livepeer's broadcaster HTTP port is 9935).
    pub http_listen: SocketAddr,
    /// Admin server: `/livez`, `/readyz`, `/metrics`.
    pub admin_listen: SocketAddr,
    pub bus_url: String,
    pub storage_url: String,
    /// Largest accepted segment body (go-livepeer allows 300 MB).
    pub max_segment_bytes: usize,
    /// How long a push waits for its renditions, as a multiple of the segment duration
    /// (go-livepeer's SegHttpPushTimeoutMultiplier is 4), never less than `min_wait_ms`.
    pub wait_multiplier: f64,
    pub min_wait_ms: u64,
    pub telemetry: TelemetryConfig,
}

impl Default for IngestConfig {
    fn default() -> Self {
        IngestConfig {
            http_listen: SocketAddr::from(([0, 0, 0, 0], 9935)),
            admin_listen: SocketAddr::from(([0, 0, 0, 0], 9936)),
            bus_url: "redis://127.0.0.1:6379".to_string(),
            storage_url: "file:///var/lib/livefarm/objects".to_string(),
            max_segment_bytes: 64 * 1024 * 1024,
            wait_multiplier: 4.0,
            min_wait_ms: 8_000,
            telemetry: TelemetryConfig::default(),
        }
    }
}

impl livefarm_runtime::ServiceConfig for IngestConfig {
    fn telemetry(&self) -> &TelemetryConfig {
        &self.telemetry
    }
}

/// What the HTTP handlers share.
#[derive(Clone)]
pub struct IngestState {
    pub bus: Arc<dyn JobBus>,
    pub storage: Storage,
    pub waiters: ResultWaiters,
    pub max_segment_bytes: usize,
    pub wait_multiplier: f64,
    pub min_wait: Duration,
}

/// Runs the ingest service until `shutdown` fires.
pub async fn run(config: IngestConfig, shutdown: Shutdown) -> anyhow::Result<()> {
    let bus = livefarm_bus::connect(&config.bus_url)
        .await
        .with_context(|| format!("connecting to the bus at {}", config.bus_url))?;
    let storage = Storage::from_url(&config.storage_url)
        .await
        .with_context(|| format!("opening storage {}", config.storage_url))?;
    let readiness = Readiness::new();
    let admin =
        livefarm_runtime::admin::serve(config.admin_listen, readiness.clone(), shutdown.clone())
            .await
            .context("starting the admin server")?;
    let listener = tokio::net::TcpListener::bind(config.http_listen)
        .await
        .with_context(|| format!("binding {}", config.http_listen))?;
    tracing::info!(http = %listener.local_addr()?, admin = %admin.local_addr(), "ingest listening");
    let state = start(bus, storage, &config, shutdown.clone());
    readiness.set_ready(true);
    let app = router(state);
    let stop = shutdown.clone();
    axum::serve(listener, app)
        .with_graceful_shutdown(async move { stop.triggered().await })
        .await
        .context("serving http push")?;
    admin.stop().await.context("stopping the admin server")?;
    Ok(())
}

/// Builds the shared state and starts the result dispatcher (for embedding and tests).
pub fn start(
    bus: Arc<dyn JobBus>,
    storage: Storage,
    config: &IngestConfig,
    shutdown: Shutdown,
) -> IngestState {
    let waiters = ResultWaiters::default();
    tokio::spawn(results::dispatch(
        Arc::clone(&bus),
        waiters.clone(),
        shutdown,
    ));
    IngestState {
        bus,
        storage,
        waiters,
        max_segment_bytes: config.max_segment_bytes,
        wait_multiplier: config.wait_multiplier,
        min_wait: Duration::from_millis(config.min_wait_ms),
    }
}
