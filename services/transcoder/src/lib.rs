//! The Livefarm transcoder worker: takes segment jobs of live streams from the job bus,
//! transcodes them on a warm per-stream session (CPU or NVIDIA GPU), writes the renditions to
//! the object store and publishes one result per segment.
//!
//! [`run`] is the whole service; the `livefarm-transcoder` binary, the all-in-one `livefarm`
//! command and the integration tests call it. The README describes ports, config keys,
//! metrics, and how streams stick to a worker and move when it dies or drains.

mod config;
mod error;
mod grpc;
mod metrics;
mod results;
mod session;
mod worker;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use livefarm_bus::{BusOptions, JobBus};
use livefarm_media::{AccelChoice, GpuInventory, GpuPool};
use livefarm_proto::health::ServingStatus;
use livefarm_runtime::{drain_with_deadline, Readiness, Shutdown};
use livefarm_storage::Storage;
use tonic::transport::server::TcpIncoming;
use tracing::{info, warn};

pub use config::TranscoderConfig;
pub use error::TranscoderError;

use crate::grpc::AdminService;
use crate::worker::Worker;

/// Runs a worker until `shutdown` fires, then drains: stops taking streams, finishes the
/// in-flight segments, hands every stream over and returns (within `drain_grace_ms`).
pub async fn run(config: TranscoderConfig, shutdown: Shutdown) -> anyhow::Result<()> {
    config.validate()?;
    let worker_id = config.effective_worker_id();
    livefarm_media::init().map_err(TranscoderError::from)?;

    let accel = config.accel_choice()?;
    let inventory = if accel == AccelChoice::Cpu {
        GpuInventory::default()
    } else {
        GpuInventory::detect().restrict(&config.gpus)
    };
    let gpu_models: Vec<String> = inventory.gpus.iter().map(|g| g.model.clone()).collect();
    // the ladder is not known before the first job: count one NVENC session per session
    let pool = GpuPool::new(accel, inventory, config.max_sessions_per_gpu, 1)
        .map_err(|e| TranscoderError::from(livefarm_media::MediaError::from(e)))?;
    let gpu_slots: u32 = pool.load().iter().map(|(_, _, max)| *max).sum();
    let (accelerator, capacity) = if gpu_slots == 0 {
        ("cpu", config.max_sessions)
    } else if accel == AccelChoice::Nvidia {
        ("nvidia", config.max_sessions.min(gpu_slots))
    } else {
        // auto places sessions beyond the GPUs' limits on the CPU
        ("nvidia", config.max_sessions)
    };

    let Some(bus) = connect_bus(&config, &shutdown).await? else {
        return Ok(());
    };
    let storage = Storage::from_url(&config.storage_url)
        .await
        .map_err(TranscoderError::from)?;

    let worker = Arc::new(Worker::new(
        worker_id.clone(),
        config.clone(),
        bus,
        storage,
        pool,
        capacity,
        accelerator,
        gpu_models,
    ));

    let readiness = Readiness::new();
    let admin =
        livefarm_runtime::admin::serve(config.admin_listen, readiness.clone(), shutdown.clone())
            .await
            .context("cannot start the admin server")?;
    let listener = tokio::net::TcpListener::bind(config.grpc_listen)
        .await
        .map_err(|e| TranscoderError::Server {
            what: "grpc listener",
            reason: format!("cannot bind {}: {e}", config.grpc_listen),
        })?;
    let grpc_addr = listener.local_addr().context("grpc listener address")?;
    *lock(&worker.grpc_addr) = grpc_addr.to_string();
    *lock(&worker.admin_addr) = admin.local_addr().to_string();

    let (health, health_service) = livefarm_proto::health::server::health_reporter();
    health.set_service_status("", ServingStatus::Serving).await;
    health
        .set_serving::<livefarm_proto::transcoder::v1::transcoder_admin_server::TranscoderAdminServer<AdminService>>()
        .await;
    let grpc_stop = Shutdown::new();
    let grpc = {
        let stop = grpc_stop.clone();
        let router = tonic::transport::Server::builder()
            .add_service(health_service)
            .add_service(AdminService::server(worker.clone()));
        tokio::spawn(async move {
            router
                .serve_with_incoming_shutdown(TcpIncoming::from(listener), stop.triggered())
                .await
        })
    };

    let heartbeat_stop = Shutdown::new();
    let heartbeat = tokio::spawn(worker::heartbeat(worker.clone(), heartbeat_stop.clone()));
    let scheduler = tokio::spawn(worker::schedule(worker.clone()));
    readiness.set_ready(true);
    info!(
        worker_id,
        grpc = %grpc_addr,
        admin = %admin.local_addr(),
        capacity,
        accelerator,
        "transcoder worker started"
    );

    shutdown.triggered().await;
    info!(worker_id, "shutting down, draining sessions");
    worker.start_drain();
    health
        .set_service_status("", ServingStatus::NotServing)
        .await;
    let drained = drain_with_deadline(scheduler, config.drain_grace()).await;
    if !drained.is_drained() {
        warn!(
            worker_id,
            "drain grace period over, exiting with sessions still held"
        );
    }
    heartbeat_stop.trigger();
    if let Err(error) = heartbeat.await {
        warn!(%error, "heartbeat task ended abnormally");
    }
    grpc_stop.trigger();
    match grpc.await {
        Ok(Ok(())) => {}
        Ok(Err(error)) => warn!(%error, "grpc server failed"),
        Err(error) => warn!(%error, "grpc server task ended abnormally"),
    }
    admin.stop().await.context("admin server")?;
    info!(worker_id, "transcoder worker stopped");
    Ok(())
}

/// Connects to the bus, waiting for it while it is unavailable; `None` if `shutdown` fired
/// first.
async fn connect_bus(
    config: &TranscoderConfig,
    shutdown: &Shutdown,
) -> Result<Option<Arc<dyn JobBus>>, TranscoderError> {
    let options = BusOptions {
        max_deliveries: config.max_deliveries,
        ..BusOptions::default()
    };
    let mut backoff = Duration::from_millis(200);
    loop {
        match livefarm_bus::connect_with(&config.bus_url, options.clone()).await {
            Ok(bus) => return Ok(Some(bus)),
            Err(error) if error.is_retryable() => {
                warn!(%error, "job bus unavailable, retrying");
            }
            Err(error) => return Err(error.into()),
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = shutdown.triggered() => return Ok(None),
        }
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}

fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
