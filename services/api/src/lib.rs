//! `livefarm-api`: the Livepeer-Studio-style stream registry (`/api/stream`) and HLS playback
//! (`/hls/{playbackId}/...`, go-livepeer's `/stream/{id}.m3u8`), with playlists built from the
//! transcoders' results on the bus alone (sizes and codecs included; saved as snapshots so a
//! restart need not replay every result) and segment bytes served from the object store.
//!
//! [`run`] is what the binary and the all-in-one mode call; [`start_with`] lets tests and
//! embedders pass their own bus, storage and registry and learn the bound addresses.

mod config;
mod consumer;
mod error;
mod http;
pub mod lifecycle;
mod metrics;
mod playlist;
pub mod recording;
mod snapshot;

use std::net::SocketAddr;
use std::sync::Arc;

use livefarm_bus::JobBus;
use livefarm_runtime::{drain_with_deadline, AdminServer, DrainOutcome, Readiness, Shutdown};
use livefarm_storage::Storage;
use tokio::task::JoinHandle;
use tracing::{info, warn};

pub use config::ApiConfig;
pub use consumer::apply_result;
pub use error::ApiError;
pub use http::{router, PLAYLIST_TYPE, SEGMENT_TYPE};
pub use livefarm_registry::{
    random_id, MemoryRegistry, RedisRegistry, RegistryError, RegistryFuture, Stream, StreamRegistry,
};
pub use playlist::{Layout, Playlists, SegmentMeta};
pub use snapshot::StreamSnapshot;

/// The stream registry crate, re-exported for the `livefarm` command.
pub use livefarm_registry as registry;

/// What the handlers and the results consumer share.
#[derive(Debug, Clone)]
pub struct AppState {
    /// Streams created over the API.
    pub registry: Arc<dyn StreamRegistry>,
    /// Every stream's playlists.
    pub playlists: Arc<Playlists>,
    /// Where segment bytes are read from.
    pub storage: Storage,
}

impl AppState {
    /// Ends a stream's playlists (`EXT-X-ENDLIST`); returns whether it had any segment.
    pub fn end_stream(&self, stream_id: &str) -> bool {
        self.playlists.end_stream(stream_id)
    }
}

/// A started API service.
#[derive(Debug)]
pub struct ApiServer {
    local_addr: SocketAddr,
    state: AppState,
    admin: AdminServer,
    http: JoinHandle<std::io::Result<()>>,
    consumer: JoinHandle<()>,
    snapshots: Option<JoinHandle<()>>,
    drain_grace: std::time::Duration,
    shutdown: Shutdown,
}

impl ApiServer {
    /// The bound HTTP address (the real port when 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The bound admin address.
    pub fn admin_addr(&self) -> SocketAddr {
        self.admin.local_addr()
    }

    /// The shared state (registry, playlists, storage).
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Waits until shutdown has fired and the server has drained.
    pub async fn wait(self) -> Result<(), ApiError> {
        // The drain deadline counts from the shutdown, not from the start.
        self.shutdown.triggered().await;
        let served = match drain_with_deadline(self.http, self.drain_grace).await {
            DrainOutcome::Drained(Ok(result)) => result.map_err(ApiError::Serve),
            DrainOutcome::Drained(Err(join)) => Err(ApiError::Serve(std::io::Error::other(join))),
            DrainOutcome::TimedOut => Ok(()),
        };
        if let Err(error) = self.consumer.await {
            warn!(%error, "results consumer ended abnormally");
        }
        // after the consumer: the last round saves everything it applied
        if let Some(snapshots) = self.snapshots {
            if let Err(error) = snapshots.await {
                warn!(%error, "snapshot writer ended abnormally");
            }
        }
        self.admin.stop().await?;
        info!("api stopped");
        served
    }
}

/// Connects the bus, the store and the registry named in `config` and starts the service.
pub async fn start(config: &ApiConfig, shutdown: Shutdown) -> Result<ApiServer, ApiError> {
    config.validate()?;
    let bus = livefarm_bus::connect(&config.bus_url).await?;
    let storage = Storage::from_url(&config.storage_url).await?;
    let registry = livefarm_registry::connect(&config.registry_url).await?;
    start_with(config, bus, storage, registry, shutdown).await
}

/// Starts the HTTP server, the admin server and the results consumer over the given parts.
pub async fn start_with(
    config: &ApiConfig,
    bus: Arc<dyn JobBus>,
    storage: Storage,
    registry: Arc<dyn StreamRegistry>,
    shutdown: Shutdown,
) -> Result<ApiServer, ApiError> {
    config.validate()?;
    let state = AppState {
        registry,
        playlists: Arc::new(Playlists::new(config.live_window)),
        storage,
    };
    let readiness = Readiness::new();
    let admin =
        livefarm_runtime::admin::serve(config.admin_listen, readiness.clone(), shutdown.clone())
            .await?;
    let addr = config.listen;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| ApiError::Bind { addr, source })?;
    let local_addr = listener
        .local_addr()
        .map_err(|source| ApiError::Bind { addr, source })?;

    // snapshots first, so that the results read next are only those since
    let from = consumer::restore_snapshots(&state, bus.as_ref()).await;
    let applied = consumer::Applied::at(from);
    tokio::spawn(consumer::consume_stream_events(
        state.clone(),
        bus.clone(),
        config.poll_interval(),
        shutdown.clone(),
    ));
    let consumer = tokio::spawn(consumer::consume_results(
        state.clone(),
        bus.clone(),
        applied.clone(),
        config.poll_interval(),
        shutdown.clone(),
    ));
    let snapshots = config.snapshot_interval().map(|interval| {
        tokio::spawn(consumer::save_snapshots(
            state.clone(),
            bus,
            applied,
            interval,
            shutdown.clone(),
        ))
    });
    let app = router(state.clone());
    let stop = shutdown.clone();
    let http = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move { stop.triggered().await })
            .await
    });
    readiness.set_ready(true);
    info!(%local_addr, admin = %admin.local_addr(), "api serving");
    Ok(ApiServer {
        local_addr,
        state,
        admin,
        http,
        consumer,
        snapshots,
        drain_grace: config.drain_grace(),
        shutdown,
    })
}

/// Serves until `shutdown` fires, then drains.
pub async fn run(config: ApiConfig, shutdown: Shutdown) -> Result<(), ApiError> {
    start(&config, shutdown).await?.wait().await
}
