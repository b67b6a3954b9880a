//! `livefarm-api`: the Livepeer Studio-compatible API (`/api/...`, [`studio`]: API keys,
//! streams, playback info, the OpenAPI document) over the control-plane store
//! (`livefarm-store`, SQLite or PostgreSQL), and HLS playback (`/hls/{playbackId}/...`,
//! go-livepeer's `/stream/{id}.m3u8`), with playlists built from the transcoders' results on the
//! bus alone (sizes and codecs included; saved as snapshots so a restart need not replay every
//! result) and segment bytes served from the object store.
//!
//! [`run`] is what the binary and the all-in-one mode call; [`start_with`] lets tests and
//! embedders pass their own bus, storage and store and learn the bound addresses.

mod config;
mod consumer;
mod error;
mod events;
mod http;
pub mod lifecycle;
mod metrics;
mod playlist;
pub mod recording;
mod snapshot;
pub mod studio;

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
pub use livefarm_store::{Store, StoreOptions};
pub use playlist::{Layout, Playlists, SegmentMeta};
pub use snapshot::StreamSnapshot;

/// What the handlers and the results consumer share.
#[derive(Debug, Clone)]
pub struct AppState {
    /// Tenants, API keys and streams: the source of truth of what tenants own.
    pub store: Store,
    /// The job bus (results, stream events, stream control).
    pub bus: Arc<dyn JobBus>,
    /// Base of handed-out URLs; empty: from the request's `Host`.
    pub public_url: String,
    /// Every stream's playlists.
    pub playlists: Arc<Playlists>,
    /// Where segment bytes are read from.
    pub storage: Storage,
    /// Webhook CRUD, logs and resends.
    pub webhooks: Arc<livefarm_webhooks::Webhooks>,
    /// API keys that authenticated recently.
    pub keys: Arc<studio::auth::KeyCache>,
}

impl axum::extract::FromRef<AppState> for Storage {
    fn from_ref(state: &AppState) -> Storage {
        state.storage.clone()
    }
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
    lifecycle: Vec<JoinHandle<()>>,
    deliverer: Option<livefarm_webhooks::DelivererHandle>,
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

    /// The shared state (store, playlists, storage).
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
        for task in self.lifecycle {
            if let Err(error) = task.await {
                warn!(%error, "lifecycle task ended abnormally");
            }
        }
        if let Some(deliverer) = self.deliverer {
            // in-flight attempts get a grace; the rest stay leased and are retried later
            deliverer.shutdown().await;
        }
        self.admin.stop().await?;
        info!("api stopped");
        served
    }
}

/// Connects the bus, the object store and the database named in `config` (applying the
/// database's pending migrations) and starts the service.
pub async fn start(config: &ApiConfig, shutdown: Shutdown) -> Result<ApiServer, ApiError> {
    config.validate()?;
    let bus = livefarm_bus::connect(&config.bus_url).await?;
    let storage = Storage::from_url(&config.storage_url).await?;
    let store = open_store(&config.database_url).await?;
    start_with(config, bus, storage, store, shutdown).await
}

/// Opens the database at `url` and applies its pending migrations; a SQLite file's directory
/// is made when missing (a first start).
pub async fn open_store(url: &str) -> Result<Store, ApiError> {
    if let Some(path) = url.strip_prefix("sqlite://") {
        let path = path.split('?').next().unwrap_or_default();
        if let Some(dir) = std::path::Path::new(path).parent() {
            if !path.is_empty() && !dir.as_os_str().is_empty() && !dir.exists() {
                std::fs::create_dir_all(dir).map_err(|source| ApiError::Config {
                    key: "database_url",
                    reason: format!("cannot create {}: {source}", dir.display()),
                })?;
            }
        }
    }
    let store = Store::open(url, &StoreOptions::default()).await?;
    info!(
        database = %livefarm_store::redact_url(url),
        backend = ?store.backend(),
        "database ready"
    );
    Ok(store)
}

/// Starts the HTTP server, the admin server and the results consumer over the given parts
/// (`store` already migrated).
pub async fn start_with(
    config: &ApiConfig,
    bus: Arc<dyn JobBus>,
    storage: Storage,
    store: Store,
    shutdown: Shutdown,
) -> Result<ApiServer, ApiError> {
    config.validate()?;
    let webhooks = livefarm_webhooks::Webhooks::new(store.clone(), config.webhooks.clone())
        .map_err(|e| ApiError::Config {
            key: "webhooks",
            reason: e.to_string(),
        })?;
    let state = AppState {
        store: store.clone(),
        bus: bus.clone(),
        public_url: config.public_url.clone(),
        playlists: Arc::new(Playlists::new(config.live_window)),
        storage: storage.clone(),
        webhooks: Arc::new(webhooks),
        keys: Arc::new(studio::auth::KeyCache::new(config.api_key_cache())),
    };
    // deliveries persisted by any replica (or before a restart) are picked up here
    let deliverer = livefarm_webhooks::spawn_deliverer(store.clone(), config.webhooks.clone())
        .map_err(|e| ApiError::Config {
            key: "webhooks",
            reason: e.to_string(),
        })?;
    let sink = Arc::new(events::WebhookSink::new(store.clone(), deliverer.waker()));
    let lifecycle = lifecycle::Lifecycle::new(
        store,
        storage,
        bus.clone(),
        sink,
        Arc::new(|stream| studio::stream_json(stream, false)),
        config.lifecycle.clone(),
        config.public_url.clone(),
    );
    let lifecycle_tasks = lifecycle.spawn(shutdown.clone());
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
        lifecycle: lifecycle_tasks,
        deliverer: Some(deliverer),
        drain_grace: config.drain_grace(),
        shutdown,
    })
}

/// Serves until `shutdown` fires, then drains.
pub async fn run(config: ApiConfig, shutdown: Shutdown) -> Result<(), ApiError> {
    start(&config, shutdown).await?.wait().await
}
