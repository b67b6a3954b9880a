//! The orchestrator port as a service component: its configuration (the `[orchestrator]`
//! table of the ingest service) and [`start`], which binds the port, makes or loads the TLS
//! certificate and serves gRPC and `/segment` with the worker pool behind it.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use livefarm_bus::JobBus;
use livefarm_storage::Storage;
use serde::{Deserialize, Serialize};
use tokio::task::JoinHandle;

use crate::error::OrchestratorError;
use crate::http::SegmentState;
use crate::service::{OrchestratorConfig, OrchestratorService};
use crate::sessions::DEFAULT_MAX_SESSIONS;
use crate::tickets::BusTicketSink;
use crate::transcode::PoolTranscoder;

/// Settings of the orchestrator port.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NodeConfig {
    /// Where go-livepeer broadcasters connect (gRPC and `/segment`); `None` turns it off.
    pub listen: Option<SocketAddr>,
    /// The URI broadcasters are told to send segments to (`OrchestratorInfo.transcoder`);
    /// empty: `https://{listen}` (127.0.0.1 for an unspecified address). An `http://` URI
    /// serves cleartext (h2c), for a TLS-terminating proxy in front.
    pub service_uri: String,
    /// A PEM certificate chain and key; unset: a self-signed certificate made at every start.
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// Where the self-signed certificate is written as `cert.pem`/`key.pem`; unset: nowhere.
    pub cert_dir: Option<PathBuf>,
    /// `-maxSessions`.
    pub max_sessions: usize,
    /// Wei per `pixels_per_unit` pixels (only quoted on-chain).
    pub price_per_unit: i64,
    pub pixels_per_unit: i64,
    pub auto_adjust_price: bool,
    /// A file holding the orchestrator's secp256k1 key as hex; unset: a new key every start.
    pub key_file: Option<PathBuf>,
    /// On-chain mode (payments in tickets) needs the chain indexer; off-chain accepts all.
    pub on_chain: bool,
    /// How long `/segment` waits for the pool, as a multiple of the segment duration, and at
    /// least `min_wait_ms` (go-livepeer: `max(8 s, 4 × duration)`).
    pub wait_multiplier: f64,
    pub min_wait_ms: u64,
}

impl Default for NodeConfig {
    fn default() -> Self {
        NodeConfig {
            listen: Some(SocketAddr::from(([0, 0, 0, 0], 8935))),
            service_uri: String::new(),
            tls_cert: None,
            tls_key: None,
            cert_dir: None,
            max_sessions: DEFAULT_MAX_SESSIONS,
            price_per_unit: 0,
            pixels_per_unit: 1,
            auto_adjust_price: true,
            key_file: None,
            on_chain: false,
            wait_multiplier: 4.0,
            min_wait_ms: 8_000,
        }
    }
}

impl NodeConfig {
    /// The service URI for a port bound at `bound`.
    pub fn service_uri_for(&self, bound: SocketAddr) -> String {
        if !self.service_uri.is_empty() {
            return self.service_uri.trim_end_matches('/').to_string();
        }
        let host = if bound.ip().is_unspecified() {
            "127.0.0.1".to_string()
        } else {
            bound.ip().to_string()
        };
        format!("https://{host}:{}", bound.port())
    }

    fn signer_key(&self) -> Result<Option<[u8; 32]>, OrchestratorError> {
        let Some(path) = &self.key_file else {
            return Ok(None);
        };
        let text = std::fs::read_to_string(path).map_err(|e| {
            OrchestratorError::Config(format!("reading key_file {}: {e}", path.display()))
        })?;
        let hex = text.trim().trim_start_matches("0x");
        if hex.len() != 64 {
            return Err(OrchestratorError::Config(format!(
                "key_file {}: expected 64 hex characters",
                path.display()
            )));
        }
        let mut key = [0u8; 32];
        for (i, byte) in key.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).map_err(|_| {
                OrchestratorError::Config(format!("key_file {}: not hex", path.display()))
            })?;
        }
        Ok(Some(key))
    }
}

/// A started orchestrator port.
pub struct RunningNode {
    pub local_addr: SocketAddr,
    pub service_uri: String,
    pub orchestrator: OrchestratorService,
    tasks: Vec<JoinHandle<()>>,
}

impl RunningNode {
    /// Waits until the port has stopped (after shutdown fired).
    pub async fn wait(self) {
        for task in self.tasks {
            if let Err(error) = task.await {
                tracing::warn!(%error, "orchestrator task ended abnormally");
            }
        }
    }
}

/// Binds and serves the orchestrator port of `config` until a future made by `stop` resolves
/// (each background task gets its own); segments go to the worker pool on `bus`, winning
/// tickets to the bus too. `Ok(None)` when the port is turned off.
pub async fn start<S, F>(
    config: &NodeConfig,
    bus: Arc<dyn JobBus>,
    storage: Storage,
    stop: S,
) -> Result<Option<RunningNode>, OrchestratorError>
where
    S: Fn() -> F,
    F: std::future::Future<Output = ()> + Send + 'static,
{
    let Some(listen) = config.listen else {
        return Ok(None);
    };
    if config.on_chain {
        return Err(OrchestratorError::Config(
            "on-chain mode needs the chain indexer, which this build does not wire yet; \
             set orchestrator.on_chain = false"
                .to_string(),
        ));
    }
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| OrchestratorError::Config(format!("binding {listen}: {e}")))?;
    let local_addr = listener
        .local_addr()
        .map_err(|e| OrchestratorError::Config(format!("bound address: {e}")))?;
    let service_uri = config.service_uri_for(local_addr);
    let orchestrator = OrchestratorService::new(
        OrchestratorConfig {
            on_chain: false,
            service_uri: service_uri.clone(),
            price_per_unit: config.price_per_unit,
            pixels_per_unit: config.pixels_per_unit,
            auto_adjust_price: config.auto_adjust_price,
            max_sessions: config.max_sessions,
            signer_key: config.signer_key()?,
            ..OrchestratorConfig::default()
        },
        None,
    )?;
    let tls = if service_uri.starts_with("http://") {
        None
    } else {
        let certified = match (&config.tls_cert, &config.tls_key) {
            (Some(cert), Some(key)) => crate::tls::load(cert, key)?,
            (None, None) => {
                let host = url_host(&service_uri);
                let made = crate::tls::self_signed(&host)?;
                if let Some(dir) = &config.cert_dir {
                    crate::tls::write(&made, dir)?;
                }
                made
            }
            _ => {
                return Err(OrchestratorError::Config(
                    "set both tls_cert and tls_key, or neither".to_string(),
                ))
            }
        };
        Some(crate::tls::server_config(&certified)?)
    };
    let waiters = livefarm_jobs::ResultWaiters::default();
    let dispatcher = tokio::spawn(livefarm_jobs::dispatch_results(
        Arc::clone(&bus),
        waiters.clone(),
        livefarm_jobs::private_group("orchestrator"),
        stop(),
    ));
    let transcoder = PoolTranscoder::new(Arc::clone(&bus), storage, waiters).with_wait(
        config.wait_multiplier,
        Duration::from_millis(config.min_wait_ms),
    );
    let state = SegmentState::new(
        orchestrator.clone(),
        Arc::new(transcoder),
        Arc::new(BusTicketSink::new(bus)),
    );
    let reaper = tokio::spawn(crate::server::reap_idle_sessions(state.clone(), stop()));
    let server = tokio::spawn(crate::server::serve(
        listener,
        crate::server::app(state),
        tls,
        stop(),
    ));
    tracing::info!(%local_addr, %service_uri, address = %orchestrator.address(), "orchestrator port listening");
    Ok(Some(RunningNode {
        local_addr,
        service_uri,
        orchestrator,
        tasks: vec![server, reaper, dispatcher],
    }))
}

/// The host of `https://host:port/...`.
fn url_host(uri: &str) -> String {
    let rest = uri.split_once("://").map_or(uri, |(_, r)| r);
    let authority = rest.split('/').next().unwrap_or(rest);
    match authority.rsplit_once(':') {
        Some((host, port)) if port.chars().all(|c| c.is_ascii_digit()) => {
            host.trim_matches(['[', ']']).to_string()
        }
        _ => authority.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_uri_defaults_to_the_bound_port() {
        let config = NodeConfig::default();
        let bound: SocketAddr = "0.0.0.0:8935".parse().expect("addr");
        assert_eq!(config.service_uri_for(bound), "https://127.0.0.1:8935");
        let config = NodeConfig {
            service_uri: "https://orch.example.com:443/".to_string(),
            ..NodeConfig::default()
        };
        assert_eq!(
            config.service_uri_for(bound),
            "https://orch.example.com:443"
        );
        assert_eq!(url_host("https://orch.example.com:443"), "orch.example.com");
        assert_eq!(url_host("https://[::1]:8935"), "::1");
        assert_eq!(url_host("https://10.0.0.1"), "10.0.0.1");
    }

    #[test]
    fn key_file_must_hold_a_hex_key() {
        let dir = tempfile::tempdir().expect("tempdir");
        let good = dir.path().join("good");
        std::fs::write(&good, format!("0x{}\n", "ab".repeat(32))).expect("write");
        let config = NodeConfig {
            key_file: Some(good),
            ..NodeConfig::default()
        };
        assert_eq!(config.signer_key().expect("valid"), Some([0xab; 32]));
        let bad = dir.path().join("bad");
        std::fs::write(&bad, "zz").expect("write");
        let config = NodeConfig {
            key_file: Some(bad),
            ..NodeConfig::default()
        };
        assert!(config.signer_key().is_err());
    }

    #[tokio::test]
    async fn an_off_chain_port_answers_get_orchestrator_over_tls() {
        let bus = livefarm_bus::connect("memory://node-test")
            .await
            .expect("bus");
        let storage = Storage::from_url("memory://").await.expect("storage");
        let config = NodeConfig {
            listen: Some("127.0.0.1:0".parse().expect("addr")),
            ..NodeConfig::default()
        };
        let (tx, rx) = tokio::sync::watch::channel(false);
        let stop = move || {
            let mut rx = rx.clone();
            async move {
                let _ = rx.wait_for(|stopped| *stopped).await;
            }
        };
        let node = start(&config, bus, storage, stop)
            .await
            .expect("started")
            .expect("enabled");
        let info = crate::broadcaster::connect(&node.service_uri)
            .await
            .expect("tls connect")
            .get_orchestrator(crate::net::OrchestratorRequest::default())
            .await
            .expect("answered")
            .into_inner();
        assert_eq!(info.transcoder, node.service_uri);
        assert!(info.ticket_params.is_none(), "off-chain");
        tx.send(true).expect("stop");
        node.wait().await;
    }
}
