//! livefarm-ingest: terminates the live ingest protocols and hands the media on.
//!
//! - RTMP (`rtmp://host:1935/live/{streamKey}`, `/live/{manifestID}/{streamKey}`) and SRT
//!   (MPEG-TS, stream chosen by `streamid`): each publish is authorized by a [`PublisherAuth`]
//!   and its container bytes (FLV, MPEG-TS) stream to a segmenter through a [`SegmenterSink`]
//!   (gRPC, or in-process in `livefarm up`). A publish the control plane ends (terminate,
//!   suspend, delete: `livefarm:stream-control` on the bus) is closed at once.
//! - go-livepeer's HTTP push (livepeer-protocol.md §5.1): `PUT|POST /live/{manifestID}/{seq}.ts`
//!   with `Content-Duration`, `Livepeer-Transcode-Configuration` and, with
//!   `Accept: multipart/mixed`, every rendition in the reply. Each segment is stored, enqueued
//!   as a job on the bus, and answered when the worker's result arrives.

mod auth;
mod control;
mod error;
mod flv;
mod live;
mod metrics;
mod push;
mod results;
mod rtmp;
mod sink;
mod srt;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use livefarm_profiles::studio_default_ladder;
use livefarm_runtime::{Readiness, Shutdown};
use livefarm_storage::Storage;
use livefarm_telemetry::TelemetryConfig;
use serde::{Deserialize, Serialize};

pub use auth::{
    redact, AllowAnyAuth, AuthorizedStream, BoxFuture, PublishRequest, PublisherAuth, StaticAuth,
    StoreAuth, WebhookAuth, DEFAULT_CACHE_TTL, MAX_CACHE_TTL,
};
pub use control::follow_stream_control;
pub use error::{AuthError, IngestError};
pub use live::{parse_srt_stream_id, parse_stream_path, LiveIngest, LiveSessions};
pub use livefarm_jobs::SegmentClient;
pub use livefarm_publish::{
    Chunk, ContainerFormat, KeyframeMark, PublishError, PublishStart, PublishSummary, SegmenterSink,
};
pub use push::{parse_push_path, router, PushPath};
pub use sink::GrpcSink;

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
    /// RTMP listener (`rtmp://host:1935/live/{key}`); `None` turns RTMP off.
    pub rtmp_listen: Option<SocketAddr>,
    /// SRT listener (UDP; MPEG-TS); `None` turns SRT off.
    pub srt_listen: Option<SocketAddr>,
    /// The segmenter's gRPC address that RTMP and SRT publishes stream to.
    pub segmenter_url: String,
    /// A publisher that sends nothing for this long is disconnected.
    pub idle_timeout_ms: u64,
    /// Who may publish over RTMP and SRT.
    pub auth: AuthConfig,
    pub telemetry: TelemetryConfig,
}

/// How RTMP and SRT publishers are authorized.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthMode {
    /// Keys of the streams in the control plane's store at `auth.database_url` (made with
    /// `POST /api/stream` or `livefarm stream create`); suspended and deleted ones refused.
    #[default]
    Store,
    /// Only the keys in `auth.keys`.
    Static,
    /// go-livepeer's auth webhook at `auth.webhook_url`.
    Webhook,
    /// Any key (development only): the stream id is the manifest id, else the key.
    AllowAny,
}

/// Publisher auth settings.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    pub mode: AuthMode,
    /// `store` mode: the api's database, `sqlite://PATH` or `postgres://...` (read only).
    pub database_url: String,
    /// `store` mode: how long an answer of the store is trusted, milliseconds (at most 5000,
    /// so a suspended or deleted stream is refused within 5 s).
    pub cache_ttl_ms: u64,
    pub webhook_url: Option<String>,
    pub webhook_timeout_ms: u64,
    /// The ladder when neither a key nor the webhook names one: preset names (go-livepeer's or
    /// Studio's); empty means Studio's default ladder.
    pub default_presets: Vec<String>,
    /// `static` mode: stream key -> stream.
    pub keys: BTreeMap<String, StaticKey>,
}

/// One stream key of `static` mode.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StaticKey {
    pub stream_id: String,
    /// Preset names; empty means the default ladder.
    pub presets: Vec<String>,
    pub record: bool,
}

impl AuthConfig {
    /// The configured [`PublisherAuth`].
    pub fn build(&self) -> Result<Arc<dyn PublisherAuth>, IngestError> {
        let defaults = auth::ladder_from(&self.default_presets, &[], &studio_default_ladder())
            .map_err(|e| IngestError::Config(format!("auth.default_presets: {e}")))?;
        Ok(match self.mode {
            AuthMode::Store => {
                let ttl = Duration::from_millis(self.cache_ttl_ms);
                if ttl > MAX_CACHE_TTL {
                    return Err(IngestError::Config(format!(
                        "auth.cache_ttl_ms: at most {} (a suspended stream must be refused within 5 s)",
                        MAX_CACHE_TTL.as_millis()
                    )));
                }
                let auth = StoreAuth::new(&self.database_url, defaults, ttl)
                    .map_err(|e| IngestError::Config(format!("auth.database_url: {e}")))?;
                Arc::new(auth)
            }
            AuthMode::AllowAny => Arc::new(AllowAnyAuth {
                profiles: defaults,
                record: false,
            }),
            AuthMode::Webhook => {
                let url = self.webhook_url.clone().ok_or_else(|| {
                    IngestError::Config("auth.webhook_url is required in webhook mode".into())
                })?;
                let timeout = Duration::from_millis(self.webhook_timeout_ms.max(100));
                Arc::new(WebhookAuth::new(url, timeout, defaults))
            }
            AuthMode::Static => {
                let mut keys = StaticAuth::default();
                for (key, entry) in &self.keys {
                    livefarm_jobs::validate_stream_id(&entry.stream_id).map_err(|e| {
                        IngestError::Config(format!("auth.keys.{}: {e}", redact(key)))
                    })?;
                    let profiles =
                        auth::ladder_from(&entry.presets, &[], &defaults).map_err(|e| {
                            IngestError::Config(format!("auth.keys.{}: {e}", redact(key)))
                        })?;
                    keys.insert(
                        key.clone(),
                        AuthorizedStream {
                            stream_id: entry.stream_id.clone(),
                            profiles,
                            record: entry.record,
                        },
                    );
                }
                Arc::new(keys)
            }
        })
    }
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
            rtmp_listen: Some(SocketAddr::from(([0, 0, 0, 0], 1935))),
            srt_listen: Some(SocketAddr::from(([0, 0, 0, 0], 8890))),
            segmenter_url: "http://127.0.0.1:9940".to_string(),
            idle_timeout_ms: 30_000,
            auth: AuthConfig {
                database_url: "sqlite:///var/lib/livefarm/livefarm.db".to_string(),
                cache_ttl_ms: DEFAULT_CACHE_TTL.as_millis() as u64,
                webhook_timeout_ms: 5_000,
                ..AuthConfig::default()
            },
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
    pub storage: Storage,
    /// Submits pushed segments to the pool (one per process).
    pub segments: SegmentClient,
    pub max_segment_bytes: usize,
    pub wait_multiplier: f64,
    pub min_wait: Duration,
}

/// Runs the ingest service until `shutdown` fires, with the configured auth and a gRPC
/// segmenter at `segmenter_url`.
pub async fn run(config: IngestConfig, shutdown: Shutdown) -> anyhow::Result<()> {
    let auth = config.auth.build()?;
    let sink: Arc<dyn SegmenterSink> = Arc::new(GrpcSink::new(&config.segmenter_url)?);
    run_with(config, LiveIngest::new(auth, sink), None, shutdown).await
}

/// Runs the ingest service with the given auth and segmenter (`livefarm up` passes an
/// in-process segmenter) and, when other services in the process submit segments too, the
/// process's one [`SegmentClient`] (otherwise ingest starts its own).
pub async fn run_with(
    config: IngestConfig,
    live: LiveIngest,
    segments: Option<SegmentClient>,
    shutdown: Shutdown,
) -> anyhow::Result<()> {
    let bus = livefarm_bus::connect(&config.bus_url)
        .await
        .map_err(IngestError::from)
        .with_context(|| format!("connecting to the bus at {}", config.bus_url))?;
    let storage = Storage::from_url(&config.storage_url)
        .await
        .map_err(IngestError::from)
        .with_context(|| format!("opening storage {}", config.storage_url))?;
    // registered now, so /metrics lists every family before the first publish
    metrics::register();
    let readiness = Readiness::new();
    let admin =
        livefarm_runtime::admin::serve(config.admin_listen, readiness.clone(), shutdown.clone())
            .await
            .context("starting the admin server")?;
    let listener = tokio::net::TcpListener::bind(config.http_listen)
        .await
        .with_context(|| format!("binding {}", config.http_listen))?;
    // ready only once terminate/suspend/delete orders are followed
    let control = follow_stream_control(Arc::clone(&bus), live.clone(), shutdown.clone()).await;
    let listeners = start_live(&config, live, shutdown.clone()).await?;
    // one results tail for the process, shared by every push request
    let segments = segments.unwrap_or_else(|| {
        let stop = shutdown.clone();
        SegmentClient::start(bus, async move { stop.triggered().await })
    });
    tracing::info!(
        http = %listener.local_addr()?,
        rtmp = ?listeners.rtmp,
        srt = ?listeners.srt,
        admin = %admin.local_addr(),
        "ingest listening"
    );
    let state = state(segments, storage, &config);
    readiness.set_ready(true);
    let app = router(state);
    let stop = shutdown.clone();
    axum::serve(listener, app)
        .with_graceful_shutdown(async move { stop.triggered().await })
        .await
        .context("serving http push")?;
    listeners.wait().await;
    if let Err(error) = control.await {
        tracing::warn!(%error, "stream-control follower ended abnormally");
    }
    admin.stop().await.context("stopping the admin server")?;
    Ok(())
}

/// The running RTMP and SRT listeners.
pub struct LiveListeners {
    /// Bound RTMP address, when RTMP is on.
    pub rtmp: Option<SocketAddr>,
    /// Bound SRT (UDP) address, when SRT is on.
    pub srt: Option<SocketAddr>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl LiveListeners {
    /// Waits until the listeners have stopped (after shutdown fired).
    pub async fn wait(self) {
        for task in self.tasks {
            if let Err(error) = task.await {
                tracing::warn!(%error, "live listener ended abnormally");
            }
        }
    }
}

/// Binds and starts the RTMP and SRT listeners of `config` (for embedding and tests).
pub async fn start_live(
    config: &IngestConfig,
    live: LiveIngest,
    shutdown: Shutdown,
) -> Result<LiveListeners, IngestError> {
    let idle = Duration::from_millis(config.idle_timeout_ms.max(1_000));
    let mut listeners = LiveListeners {
        rtmp: None,
        srt: None,
        tasks: Vec::new(),
    };
    if let Some(addr) = config.rtmp_listen {
        let listener = rtmp::bind(addr).await?;
        listeners.rtmp = Some(listener.local_addr().map_err(|source| IngestError::Io {
            what: "rtmp listener address",
            source,
        })?);
        listeners.tasks.push(tokio::spawn(rtmp::serve(
            listener,
            live.clone(),
            idle,
            shutdown.clone(),
        )));
    }
    if let Some(addr) = config.srt_listen {
        let server = srt::SrtServer::bind(addr).await?;
        listeners.srt = Some(server.local_addr());
        listeners
            .tasks
            .push(tokio::spawn(server.serve(live, idle, shutdown)));
    }
    Ok(listeners)
}

/// The HTTP handlers' state over a running segment client (for embedding and tests).
pub fn state(segments: SegmentClient, storage: Storage, config: &IngestConfig) -> IngestState {
    IngestState {
        storage,
        segments,
        max_segment_bytes: config.max_segment_bytes,
        wait_multiplier: config.wait_multiplier,
        min_wait: Duration::from_millis(config.min_wait_ms),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_config_that_still_sets_the_orchestrator_is_refused() {
        // The orchestrator is its own service (services/orchestrator) since ingest stopped
        // hosting it: an old config must fail loudly, not start without the port.
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("ingest.toml");
        std::fs::write(&path, "[orchestrator]\nlisten = \"0.0.0.0:8935\"\n").expect("write");
        let options = livefarm_runtime::LoadOptions::new()
            .file(&path)
            .env_vars(Vec::<(String, String)>::new());
        let error = livefarm_runtime::load::<IngestConfig>(&options)
            .expect_err("ingest has no orchestrator section");
        assert_eq!(error.exit_code(), livefarm_runtime::EXIT_BAD_CONFIG);
        // "invalid value for config key `orchestrator` (from file ...): unknown field"
        assert!(error.to_string().contains("`orchestrator`"), "{error}");
    }

    #[test]
    fn store_mode_checks_its_url_and_ttl() {
        let config = |url: &str, ttl: u64| AuthConfig {
            database_url: url.to_owned(),
            cache_ttl_ms: ttl,
            ..IngestConfig::default().auth
        };
        // a URL is checked, not connected to: ingest starts while the database is down
        config("postgres://lf:secret@127.0.0.1:1/db", 2_000)
            .build()
            .expect("a postgres url");
        let error = config("mysql://lf:secret@db/x", 2_000)
            .build()
            .err()
            .expect("mysql is refused");
        assert!(error.to_string().contains("auth.database_url"), "{error}");
        assert!(!error.to_string().contains("secret"), "{error}");
        let error = config("sqlite://x.db", 6_000)
            .build()
            .err()
            .expect("a ttl over 5 s is refused");
        assert!(error.to_string().contains("cache_ttl_ms"), "{error}");
    }
}
