//! The Livefarm orchestrator service: the Livepeer orchestrator port (TLS, default 8935) that
//! go-livepeer broadcasters discover, pay and send segments to (`net.Orchestrator` gRPC and
//! `POST /segment`), with the segments transcoded by the worker pool on the job bus and
//! winning tickets queued for the redeemer.
//!
//! The protocol surface lives in the library crate `livefarm-orchestrator`
//! (`crates/orchestrator`); this crate runs it as a service with its own config, admin port
//! (`/livez`, `/readyz`, `/metrics`), readiness and drain. [`run`] is the whole service (the
//! `livefarm-orchestrator` binary and `livefarm up` call it); [`start`] returns a handle on the
//! running port for tests that look inside it. The README lists ports, config keys and metrics.

mod error;

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use livefarm_jobs::SegmentClient;
use livefarm_orchestrator::{NodeConfig, OrchestratorError, RunningNode};
use livefarm_runtime::admin::AdminServer;
use livefarm_runtime::{drain_with_deadline, Readiness, Shutdown};
use livefarm_storage::Storage;
use livefarm_telemetry::TelemetryConfig;
use serde::{Deserialize, Serialize};

pub use error::OrchestratorServiceError;

/// The orchestrator service's configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OrchestratorServiceConfig {
    /// The job bus segments are transcoded through and winning tickets are queued on.
    pub bus_url: String,
    /// The object store shared with the workers (sources in, renditions out).
    pub storage_url: String,
    /// Admin server: `/livez`, `/readyz`, `/metrics`.
    pub admin_listen: SocketAddr,
    /// How long a shutdown waits for the port to drain (in-flight segments, open
    /// connections) before the process exits anyway; keep it under the pod's
    /// `terminationGracePeriodSeconds`. Milliseconds.
    pub drain_grace_ms: u64,
    /// The port and its payments: the `[orchestrator]` table ingest used to carry, unchanged.
    pub orchestrator: NodeConfig,
    pub telemetry: TelemetryConfig,
}

impl Default for OrchestratorServiceConfig {
    fn default() -> Self {
        OrchestratorServiceConfig {
            bus_url: "redis://127.0.0.1:6379".to_string(),
            storage_url: "file:///var/lib/livefarm/objects".to_string(),
            admin_listen: SocketAddr::from(([0, 0, 0, 0], 8936)),
            drain_grace_ms: 20_000,
            orchestrator: NodeConfig::default(),
            telemetry: TelemetryConfig {
                service_name: "livefarm-orchestrator".to_owned(),
                ..TelemetryConfig::default()
            },
        }
    }
}

impl OrchestratorServiceConfig {
    /// The configuration errors that need no I/O to find (exit 64).
    pub fn validate(&self) -> Result<(), OrchestratorError> {
        if self.orchestrator.listen.is_none() {
            return Err(OrchestratorError::Config(
                "orchestrator.listen must be set: the port is the whole service".to_string(),
            ));
        }
        self.orchestrator.validate()
    }
}

impl livefarm_runtime::ServiceConfig for OrchestratorServiceConfig {
    fn check(&self) -> Result<(), String> {
        self.validate().map_err(|e| e.to_string())
    }

    fn telemetry(&self) -> &TelemetryConfig {
        &self.telemetry
    }
}

/// A started orchestrator service.
pub struct RunningOrchestrator {
    node: RunningNode,
    admin: AdminServer,
    shutdown: Shutdown,
    drain_grace: Duration,
}

impl RunningOrchestrator {
    /// The orchestrator port: its bound address, service URI and the orchestrator itself.
    pub fn node(&self) -> &RunningNode {
        &self.node
    }

    /// The bound admin address.
    pub fn admin_addr(&self) -> SocketAddr {
        self.admin.local_addr()
    }

    /// Serves until shutdown fires (readiness turns off at once), then drains the port within
    /// `drain_grace_ms` and stops the admin server.
    pub async fn wait(self) -> anyhow::Result<()> {
        self.shutdown.triggered().await;
        tracing::info!("shutting down, draining the orchestrator port");
        if !drain_with_deadline(self.node.wait(), self.drain_grace)
            .await
            .is_drained()
        {
            tracing::warn!("drain grace period over, exiting with segments in flight");
        }
        self.admin.stop().await.context("admin server")?;
        tracing::info!("orchestrator stopped");
        Ok(())
    }
}

/// Connects to the bus and storage, starts the admin server and binds the orchestrator port;
/// the port serves until `shutdown` fires.
pub async fn start(
    config: OrchestratorServiceConfig,
    shutdown: Shutdown,
) -> anyhow::Result<RunningOrchestrator> {
    start_with(config, None, shutdown).await
}

/// [`start`] with the process's one [`SegmentClient`] when other services in the process
/// submit segments too (`livefarm up`); `None` starts one for the orchestrator.
pub async fn start_with(
    config: OrchestratorServiceConfig,
    segments: Option<SegmentClient>,
    shutdown: Shutdown,
) -> anyhow::Result<RunningOrchestrator> {
    config.validate().map_err(OrchestratorServiceError::from)?;
    // registered now, so /metrics lists every family before the first segment
    livefarm_orchestrator::register_metrics();
    let bus = livefarm_bus::connect(&config.bus_url)
        .await
        .map_err(OrchestratorServiceError::from)
        .with_context(|| format!("connecting to the bus at {}", config.bus_url))?;
    let storage = Storage::from_url(&config.storage_url)
        .await
        .map_err(OrchestratorServiceError::from)
        .with_context(|| format!("opening storage {}", config.storage_url))?;
    let readiness = Readiness::new();
    let admin =
        livefarm_runtime::admin::serve(config.admin_listen, readiness.clone(), shutdown.clone())
            .await
            .context("starting the admin server")?;
    // the process's one results tail
    let segments = segments.unwrap_or_else(|| {
        let stop = shutdown.clone();
        SegmentClient::start(bus, async move { stop.triggered().await })
    });
    let stop = shutdown.clone();
    let node =
        livefarm_orchestrator::node::start(&config.orchestrator, segments, storage, move || {
            let stop = stop.clone();
            async move { stop.triggered().await }
        })
        .await
        .map_err(OrchestratorServiceError::from)
        .context("starting the orchestrator port")?
        .ok_or_else(|| {
            OrchestratorServiceError::from(OrchestratorError::Config(
                "orchestrator.listen is not set".to_string(),
            ))
        })?;
    readiness.set_ready(true);
    tracing::info!(
        listen = %node.local_addr,
        service_uri = %node.service_uri,
        admin = %admin.local_addr(),
        "orchestrator started"
    );
    Ok(RunningOrchestrator {
        node,
        admin,
        shutdown,
        drain_grace: Duration::from_millis(config.drain_grace_ms),
    })
}

/// Runs the orchestrator service until `shutdown` fires, then drains.
pub async fn run(config: OrchestratorServiceConfig, shutdown: Shutdown) -> anyhow::Result<()> {
    start(config, shutdown).await?.wait().await
}

/// [`run`] with the process's one [`SegmentClient`] (see [`start_with`]).
pub async fn run_with(
    config: OrchestratorServiceConfig,
    segments: Option<SegmentClient>,
    shutdown: Shutdown,
) -> anyhow::Result<()> {
    start_with(config, segments, shutdown).await?.wait().await
}

#[cfg(test)]
mod tests {
    use livefarm_runtime::ServiceFailure;

    use super::*;

    fn local() -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], 0))
    }

    #[test]
    fn the_port_is_the_service_and_bad_settings_exit_64() {
        let off = OrchestratorServiceConfig {
            orchestrator: NodeConfig {
                listen: None,
                ..NodeConfig::default()
            },
            ..OrchestratorServiceConfig::default()
        };
        let error = OrchestratorServiceError::from(off.validate().expect_err("no port"));
        assert!(error.to_string().contains("orchestrator.listen"), "{error}");
        let failure = ServiceFailure::classify::<OrchestratorServiceError>(
            &anyhow::Error::from(error).context("starting"),
        );
        assert_eq!(failure.code, livefarm_runtime::EXIT_BAD_CONFIG);
        let on_chain = OrchestratorServiceConfig {
            orchestrator: NodeConfig {
                on_chain: true,
                ..NodeConfig::default()
            },
            ..OrchestratorServiceConfig::default()
        };
        let error = on_chain.validate().expect_err("no indexer");
        assert!(error.to_string().contains("indexer_url"), "{error}");
        OrchestratorServiceConfig::default()
            .validate()
            .expect("the defaults run off-chain");
        let other = anyhow::anyhow!("redis went away");
        let failure = ServiceFailure::classify::<OrchestratorServiceError>(&other);
        assert_eq!(failure.code, livefarm_runtime::EXIT_FAILURE);
    }

    #[tokio::test]
    async fn serves_broadcasters_and_metrics_then_stops_on_shutdown() {
        let config = OrchestratorServiceConfig {
            bus_url: "memory://orchestrator-service-test".to_string(),
            storage_url: "memory://".to_string(),
            admin_listen: local(),
            orchestrator: NodeConfig {
                listen: Some(local()),
                ..NodeConfig::default()
            },
            ..OrchestratorServiceConfig::default()
        };
        let shutdown = Shutdown::new();
        let running = start(config, shutdown.clone()).await.expect("started");
        let admin = format!("http://{}", running.admin_addr());
        let get = |path: &str| {
            let url = format!("{admin}{path}");
            async move {
                let reply = reqwest::get(&url).await.expect("admin answers");
                (reply.status().as_u16(), reply.text().await.expect("body"))
            }
        };
        assert_eq!(get("/readyz").await.0, 200);
        let (status, metrics) = get("/metrics").await;
        assert_eq!(status, 200);
        for family in [
            "livefarm_orchestrator_segments_transcoded_total 0",
            "livefarm_orchestrator_winning_tickets_total 0",
            "livefarm_orchestrator_segment_seconds_bucket",
        ] {
            assert!(metrics.contains(family), "{family} missing in\n{metrics}");
        }
        let info = livefarm_orchestrator::broadcaster::connect(&running.node().service_uri)
            .await
            .expect("tls connect")
            .get_orchestrator(livefarm_orchestrator::net::OrchestratorRequest::default())
            .await
            .expect("GetOrchestrator answered")
            .into_inner();
        assert_eq!(info.transcoder, running.node().service_uri);
        let port = running.node().local_addr;
        shutdown.trigger();
        running.wait().await.expect("clean stop");
        assert!(
            tokio::net::TcpStream::connect(port).await.is_err(),
            "the port is closed after the drain"
        );
    }
}
