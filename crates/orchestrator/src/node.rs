//! The orchestrator port as a service component: its configuration (the `[orchestrator]`
//! table of the `livefarm-orchestrator` service, services/orchestrator) and [`start`], which binds the port, makes or loads the TLS
//! certificate and serves gRPC and `/segment` with the worker pool behind it.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use livefarm_jobs::SegmentClient;
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
    /// On-chain mode: payments in tickets, checked against the chain as the indexer follows
    /// it; winning tickets go to the redeemer. Off-chain (default) accepts all segments.
    pub on_chain: bool,
    /// The chain indexer's gRPC endpoint (`http://host:9470`); required on-chain.
    pub indexer_url: String,
    /// How long start-up waits for the indexer to answer before failing. Milliseconds.
    pub indexer_wait_ms: u64,
    /// The redeemer's gRPC endpoint (`http://redeemer:9480`): face values then respect the
    /// max float it reports, which accounts for redemptions in flight (go-livepeer's
    /// `-redeemerAddr`). Empty: computed from the chain alone.
    pub redeemer_url: String,
    /// `-ticketEV`: the expected value of one ticket, wei.
    pub ticket_ev: u64,
    /// `-maxFaceValue`: a cap on the face value of tickets, wei; 0 for none. A low cap raises
    /// the win probability (`EV / face value`).
    pub max_face_value: u64,
    /// Gas one redemption costs, for the face value and the price overhead (§9.5, §9.8).
    pub redeem_gas: u64,
    /// `-txCostMultiplier`: the face value as a multiple of the redemption cost.
    pub tx_cost_multiplier: u64,
    /// A file holding the 32-byte recipientRand secret as hex, shared by the replicas behind
    /// one orchestrator address (so any of them accepts tickets made from params another one
    /// gave) and kept across restarts; unset: a fresh secret every start.
    pub ticket_secret_file: Option<PathBuf>,
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
            indexer_url: String::new(),
            indexer_wait_ms: 60_000,
            redeemer_url: String::new(),
            ticket_ev: livefarm_pm::params::DEFAULT_TICKET_EV,
            max_face_value: 0,
            redeem_gas: livefarm_pm::params::DEFAULT_REDEEM_GAS,
            tx_cost_multiplier: livefarm_pm::params::DEFAULT_TX_COST_MULTIPLIER,
            ticket_secret_file: None,
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
        self.key_file
            .as_deref()
            .map(|path| read_hex32("key_file", path))
            .transpose()
    }

    /// The recipient's settings.
    pub fn recipient_config(&self) -> livefarm_pm::RecipientConfig {
        livefarm_pm::RecipientConfig {
            ev: livefarm_pm::U256::from(self.ticket_ev),
            redeem_gas: self.redeem_gas,
            tx_cost_multiplier: self.tx_cost_multiplier,
            max_face_value: livefarm_pm::U256::from(self.max_face_value),
        }
    }

    /// The configuration errors that need no I/O to find.
    pub fn validate(&self) -> Result<(), OrchestratorError> {
        if !self.on_chain {
            return Ok(());
        }
        if self.indexer_url.is_empty() {
            return Err(OrchestratorError::Config(
                "orchestrator.on_chain needs orchestrator.indexer_url (the chain indexer's gRPC \
                 endpoint, e.g. http://indexer:9470)"
                    .to_string(),
            ));
        }
        if self.key_file.is_none() {
            return Err(OrchestratorError::Config(
                "orchestrator.on_chain needs orchestrator.key_file: tickets name the \
                 orchestrator's registered address, so its key must not change between starts"
                    .to_string(),
            ));
        }
        if self.ticket_ev == 0 || self.tx_cost_multiplier == 0 {
            return Err(OrchestratorError::Config(
                "orchestrator.ticket_ev and orchestrator.tx_cost_multiplier must be positive"
                    .to_string(),
            ));
        }
        Ok(())
    }
}

/// 32 bytes written as hex (with or without `0x`) in the file at `path`.
fn read_hex32(key: &str, path: &std::path::Path) -> Result<[u8; 32], OrchestratorError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| OrchestratorError::Config(format!("reading {key} {}: {e}", path.display())))?;
    let hex = text.trim().trim_start_matches("0x");
    if hex.len() != 64 || !hex.is_ascii() {
        return Err(OrchestratorError::Config(format!(
            "{key} {}: expected 64 hex characters",
            path.display()
        )));
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16)
            .map_err(|_| OrchestratorError::Config(format!("{key} {}: not hex", path.display())))?;
    }
    Ok(out)
}

/// Connects to the indexer, retrying until `wait` has passed (it may start after us).
async fn connect_indexer(
    url: &str,
    wait: Duration,
) -> Result<livefarm_chain_index::IndexerChainState, OrchestratorError> {
    let deadline = tokio::time::Instant::now() + wait;
    let mut backoff = Duration::from_millis(200);
    loop {
        match livefarm_chain_index::IndexerChainState::connect(url).await {
            Ok(state) => return Ok(state),
            Err(error @ livefarm_chain_index::ChainIndexError::Endpoint { .. }) => {
                return Err(OrchestratorError::Config(error.to_string()))
            }
            Err(error) if tokio::time::Instant::now() + backoff > deadline => {
                return Err(OrchestratorError::Config(format!(
                    "the chain indexer at {url} did not answer within {wait:?}: {error}"
                )))
            }
            Err(error) => {
                tracing::info!(%error, url, "waiting for the chain indexer");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
}

/// The ticket receiver of an on-chain node, reading the chain through the indexer.
async fn on_chain_recipient(
    config: &NodeConfig,
    address: livefarm_pm::Address,
) -> Result<
    (
        Arc<livefarm_pm::Recipient>,
        Arc<dyn livefarm_pm::ChainState>,
    ),
    OrchestratorError,
> {
    let chain: Arc<dyn livefarm_pm::ChainState> = Arc::new(
        connect_indexer(
            &config.indexer_url,
            Duration::from_millis(config.indexer_wait_ms),
        )
        .await?,
    );
    let round = chain.last_initialized_round();
    if !chain.is_active(&address, round) {
        // go-livepeer starts anyway and serves once the stake makes it active.
        tracing::warn!(%address, round, "this orchestrator is not in the active set of the current round: broadcasters will not select it");
    }
    let recipient = match &config.ticket_secret_file {
        Some(path) => livefarm_pm::Recipient::with_secret(
            address,
            read_hex32("ticket_secret_file", path)?,
            config.recipient_config(),
            Arc::clone(&chain),
        ),
        None => livefarm_pm::Recipient::new(address, config.recipient_config(), Arc::clone(&chain))
            .map_err(|e| OrchestratorError::Config(format!("ticket recipient: {e}")))?,
    };
    Ok((Arc::new(recipient), chain))
}

/// Forgets the sender nonces of params that expired, every few seconds (go-livepeer does it
/// on each new L1 block): the replay guard would otherwise grow without end.
async fn clean_expired_nonces(
    recipient: Arc<livefarm_pm::Recipient>,
    chain: Arc<dyn livefarm_pm::ChainState>,
    stop: impl std::future::Future<Output = ()>,
) {
    let mut tick = tokio::time::interval(Duration::from_secs(5));
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = tick.tick() => {
                let removed = recipient.cleanup_nonces(chain.last_seen_l1_block());
                if removed > 0 {
                    tracing::debug!(removed, "expired ticket params forgotten");
                }
            }
            _ = &mut stop => return,
        }
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
/// (each background task gets its own); segments go to the worker pool through `segments`
/// (the process's one [`SegmentClient`]), winning tickets to its bus too. `Ok(None)` when the
/// port is turned off.
pub async fn start<S, F>(
    config: &NodeConfig,
    segments: SegmentClient,
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
    config.validate()?;
    let signer_key = config.signer_key()?;
    let mut tasks = Vec::new();
    let recipient = if config.on_chain {
        let key = signer_key.ok_or_else(|| {
            OrchestratorError::Config("on-chain mode needs orchestrator.key_file".to_string())
        })?;
        let address = livefarm_pm::Signer::from_bytes(key)
            .map_err(|e| OrchestratorError::Config(format!("key_file: {e}")))?
            .address();
        let (recipient, chain) = on_chain_recipient(config, address).await?;
        tasks.push(tokio::spawn(clean_expired_nonces(
            Arc::clone(&recipient),
            chain,
            stop(),
        )));
        if !config.redeemer_url.is_empty() {
            let channel = crate::max_float::redeemer_channel(&config.redeemer_url)?;
            tasks.push(tokio::spawn(crate::max_float::follow_max_floats(
                channel,
                Arc::clone(&recipient),
                stop(),
            )));
        }
        Some(recipient)
    } else {
        None
    };
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| OrchestratorError::Config(format!("binding {listen}: {e}")))?;
    let local_addr = listener
        .local_addr()
        .map_err(|e| OrchestratorError::Config(format!("bound address: {e}")))?;
    let service_uri = config.service_uri_for(local_addr);
    let orchestrator = OrchestratorService::new(
        OrchestratorConfig {
            on_chain: config.on_chain,
            service_uri: service_uri.clone(),
            price_per_unit: config.price_per_unit,
            pixels_per_unit: config.pixels_per_unit,
            auto_adjust_price: config.auto_adjust_price,
            max_sessions: config.max_sessions,
            signer_key,
            ..OrchestratorConfig::default()
        },
        recipient,
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
    let bus = Arc::clone(segments.bus());
    let transcoder = PoolTranscoder::new(segments, storage).with_wait(
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
    tracing::info!(%local_addr, %service_uri, address = %orchestrator.address(), on_chain = config.on_chain, "orchestrator port listening");
    tasks.extend([server, reaper]);
    Ok(Some(RunningNode {
        local_addr,
        service_uri,
        orchestrator,
        tasks,
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
    async fn on_chain_mode_needs_an_indexer_and_a_fixed_key() {
        let bus = livefarm_bus::connect("memory://node-on-chain")
            .await
            .expect("bus");
        let storage = Storage::from_url("memory://").await.expect("storage");
        let dir = tempfile::tempdir().expect("tempdir");
        let key = dir.path().join("key");
        std::fs::write(&key, "11".repeat(32)).expect("write");
        let base = NodeConfig {
            listen: Some("127.0.0.1:0".parse().expect("addr")),
            on_chain: true,
            ..NodeConfig::default()
        };
        let never = || std::future::pending::<()>();
        let cases = [
            (
                NodeConfig {
                    key_file: Some(key.clone()),
                    ..base.clone()
                },
                "indexer_url",
            ),
            (
                NodeConfig {
                    indexer_url: "http://127.0.0.1:1".to_string(),
                    ..base.clone()
                },
                "key_file",
            ),
            (
                // nothing listens on port 1: start-up gives up after the wait, naming it
                NodeConfig {
                    indexer_url: "http://127.0.0.1:1".to_string(),
                    key_file: Some(key.clone()),
                    indexer_wait_ms: 300,
                    ..base.clone()
                },
                "did not answer",
            ),
        ];
        for (config, wanted) in cases {
            let segments = SegmentClient::start(bus.clone(), never());
            let error = match start(&config, segments, storage.clone(), never).await {
                Err(error) => error.to_string(),
                Ok(_) => panic!("{config:?} must not start"),
            };
            assert!(error.contains(wanted), "{error}");
        }
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
        let segments = SegmentClient::start(bus, stop());
        let node = start(&config, segments, storage, stop)
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
