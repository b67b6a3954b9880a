//! livefarm-segmenter: turns live container streams (FLV from RTMP, MPEG-TS from SRT) into
//! MPEG-TS segments cut at keyframes (target 2 s, flagged past 3x), stores each one and
//! enqueues one [`SegmentJob`](livefarm_jobs::SegmentJob) per segment with the stream's ladder.
//!
//! Timestamps and sequence numbers run on across a stream's publish sessions; the first job
//! after a reconnect carries `discontinuity: true`. Publish starts and ends are announced on
//! [`STREAM_EVENTS`]. Ingest reaches [`LiveSegmenter`] over gRPC (`livefarm.segmenter.v1`) or,
//! in one process, through [`livefarm_publish::SegmenterSink`].

mod error;
mod grpc;
mod live;
mod metrics;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use livefarm_proto::health::ServingStatus;
use livefarm_runtime::{Readiness, Shutdown};
use livefarm_storage::Storage;
use livefarm_telemetry::TelemetryConfig;
use serde::{Deserialize, Serialize};
use tokio::task::JoinHandle;
use tonic::transport::server::TcpIncoming;

pub use error::SegmenterError;
pub use live::LiveSegmenter;
pub use livefarm_jobs::{StreamEvent, StreamEventKind, EVENT_HEADER, STREAM_EVENTS};

/// The segmenter service's configuration.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SegmenterConfig {
    /// gRPC: `livefarm.segmenter.v1.Segmenter` and `grpc.health.v1`.
    pub grpc_listen: SocketAddr,
    /// Admin server: `/livez`, `/readyz`, `/metrics`.
    pub admin_listen: SocketAddr,
    pub bus_url: String,
    pub storage_url: String,
    /// Segments are cut at the first keyframe past this many seconds.
    pub target_segment_seconds: f64,
    /// How long a second publish of a stream waits for the first to end before it is refused.
    pub busy_wait_ms: u64,
    pub telemetry: TelemetryConfig,
}

impl Default for SegmenterConfig {
    fn default() -> Self {
        SegmenterConfig {
            grpc_listen: SocketAddr::from(([0, 0, 0, 0], 9940)),
            admin_listen: SocketAddr::from(([0, 0, 0, 0], 9941)),
            bus_url: "redis://127.0.0.1:6379".to_string(),
            storage_url: "file:///var/lib/livefarm/objects".to_string(),
            target_segment_seconds: 2.0,
            busy_wait_ms: 5_000,
            telemetry: TelemetryConfig::default(),
        }
    }
}

impl SegmenterConfig {
    /// The publish wait as a duration.
    pub fn busy_wait(&self) -> Duration {
        Duration::from_millis(self.busy_wait_ms)
    }
}

impl livefarm_runtime::ServiceConfig for SegmenterConfig {
    fn telemetry(&self) -> &TelemetryConfig {
        &self.telemetry
    }

    fn check(&self) -> Result<(), String> {
        if !(0.1..=60.0).contains(&self.target_segment_seconds) {
            return Err("target_segment_seconds must be between 0.1 and 60".to_string());
        }
        Ok(())
    }
}

/// A started gRPC server.
pub struct GrpcServer {
    /// The bound address (the real port when 0 was asked for).
    pub local_addr: SocketAddr,
    task: JoinHandle<Result<(), tonic::transport::Error>>,
}

impl GrpcServer {
    /// Waits until the server has stopped (after its shutdown fired).
    pub async fn wait(self) -> anyhow::Result<()> {
        self.task
            .await
            .context("grpc server task")?
            .context("grpc server")
    }
}

/// Serves `core` over gRPC on `addr` until `shutdown` fires.
pub async fn serve_grpc(
    core: Arc<LiveSegmenter>,
    addr: SocketAddr,
    shutdown: Shutdown,
) -> anyhow::Result<GrpcServer> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding {addr}"))?;
    let local_addr = listener.local_addr().context("grpc listener address")?;
    let (health, health_service) = livefarm_proto::health::server::health_reporter();
    health.set_service_status("", ServingStatus::Serving).await;
    health
        .set_serving::<livefarm_proto::segmenter::v1::segmenter_server::SegmenterServer<grpc::SegmenterService>>()
        .await;
    let router = tonic::transport::Server::builder()
        .add_service(health_service)
        .add_service(grpc::SegmenterService::server(core));
    let task = tokio::spawn(async move {
        router
            .serve_with_incoming_shutdown(TcpIncoming::from(listener), shutdown.triggered())
            .await
    });
    Ok(GrpcServer { local_addr, task })
}

/// A [`LiveSegmenter`] over the bus and the store named in `config`.
pub async fn connect(config: &SegmenterConfig) -> anyhow::Result<LiveSegmenter> {
    let bus = livefarm_bus::connect(&config.bus_url)
        .await
        .map_err(|e| SegmenterError::Bus(e.into()))
        .with_context(|| format!("connecting to the bus at {}", config.bus_url))?;
    let storage = Storage::from_url(&config.storage_url)
        .await
        .map_err(SegmenterError::from)
        .with_context(|| format!("opening storage {}", config.storage_url))?;
    Ok(LiveSegmenter::new(
        bus,
        storage,
        config.target_segment_seconds,
        config.busy_wait(),
    ))
}

/// Runs the segmenter service until `shutdown` fires.
pub async fn run(config: SegmenterConfig, shutdown: Shutdown) -> anyhow::Result<()> {
    let core = Arc::new(connect(&config).await?);
    let readiness = Readiness::new();
    let admin =
        livefarm_runtime::admin::serve(config.admin_listen, readiness.clone(), shutdown.clone())
            .await
            .context("starting the admin server")?;
    let server = serve_grpc(core, config.grpc_listen, shutdown.clone()).await?;
    tracing::info!(grpc = %server.local_addr, admin = %admin.local_addr(), "segmenter listening");
    readiness.set_ready(true);
    server.wait().await?;
    admin.stop().await.context("stopping the admin server")?;
    tracing::info!("segmenter stopped");
    Ok(())
}
