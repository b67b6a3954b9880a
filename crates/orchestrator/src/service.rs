//! `net.Orchestrator`: GetOrchestrator, Ping and EndTranscodingSession (§3; GL server/rpc.go).

use std::sync::Arc;

use livefarm_pm::sig::verify_address_sig;
use livefarm_pm::{Address, Balances, Price, Recipient, Signer};
use livefarm_proto::livepeer::net;
use livefarm_proto::livepeer::net::orchestrator_server::{Orchestrator, OrchestratorServer};
use tonic::{Request, Response, Status};

use crate::auth::{unix_now, AuthTokens};
use crate::capabilities::default_capabilities;
use crate::convert::ToProto;
use crate::error::OrchestratorError;
use crate::sessions::{SessionRegistry, DEFAULT_MAX_SESSIONS};
use crate::store::ResultStore;

/// The orchestrator's settings.
#[derive(Clone, PartialEq, Eq)]
pub struct OrchestratorConfig {
    /// On-chain: verify broadcaster signatures and hand out ticket params. Off-chain (no
    /// ETH client): skip both, like go-livepeer without `-ethUrl`.
    pub on_chain: bool,
    /// The base URI broadcasters send segments to, e.g. `https://host:8935`.
    pub service_uri: String,
    /// `-pricePerUnit`, wei.
    pub price_per_unit: i64,
    /// `-pixelsPerUnit`; must not be 0.
    pub pixels_per_unit: i64,
    /// `-autoAdjustPrice`: add the redemption overhead to the quoted price (§9.8).
    pub auto_adjust_price: bool,
    /// `-maxSessions`.
    pub max_sessions: usize,
    /// The account key that signs Ping replies and results; `None` makes a fresh one.
    pub signer_key: Option<[u8; 32]>,
    /// The version advertised in capabilities (B may require a minimum).
    pub version: String,
}

impl Default for OrchestratorConfig {
    fn default() -> Self {
        OrchestratorConfig {
            on_chain: false,
            service_uri: "https://127.0.0.1:8935".to_string(),
            price_per_unit: 0,
            pixels_per_unit: 1,
            auto_adjust_price: true,
            max_sessions: DEFAULT_MAX_SESSIONS,
            signer_key: None,
            version: env!("CARGO_PKG_VERSION").to_string(),
        }
    }
}

impl std::fmt::Debug for OrchestratorConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the key.
        f.debug_struct("OrchestratorConfig")
            .field("on_chain", &self.on_chain)
            .field("service_uri", &self.service_uri)
            .field("price_per_unit", &self.price_per_unit)
            .field("pixels_per_unit", &self.pixels_per_unit)
            .field("auto_adjust_price", &self.auto_adjust_price)
            .field("max_sessions", &self.max_sessions)
            .field("signer_key", &self.signer_key.map(|_| "<redacted>"))
            .field("version", &self.version)
            .finish()
    }
}

/// The `net.Orchestrator` gRPC service and the state `/segment` shares with it. Cloning is
/// cheap: every clone is the same orchestrator.
#[derive(Debug, Clone)]
pub struct OrchestratorService {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: OrchestratorConfig,
    signer: Signer,
    recipient: Option<Arc<Recipient>>,
    base_price: Price,
    capabilities: net::Capabilities,
    tokens: Arc<AuthTokens>,
    sessions: Arc<SessionRegistry>,
    balances: Balances,
    store: Arc<ResultStore>,
}

impl OrchestratorService {
    /// A service; `recipient` (the ticket receiver) is required on-chain and refused
    /// off-chain, so the mode cannot be half set.
    pub fn new(
        config: OrchestratorConfig,
        recipient: Option<Arc<Recipient>>,
    ) -> Result<OrchestratorService, OrchestratorError> {
        if config.on_chain != recipient.is_some() {
            return Err(OrchestratorError::Config(if config.on_chain {
                "on-chain mode needs a ticket recipient".to_string()
            } else {
                "off-chain mode takes no ticket recipient".to_string()
            }));
        }
        let base_price = Price::new(config.price_per_unit, config.pixels_per_unit)?;
        let signer = match config.signer_key {
            Some(key) => Signer::from_bytes(key)?,
            None => Signer::random()?,
        };
        Ok(OrchestratorService {
            inner: Arc::new(Inner {
                capabilities: default_capabilities(&config.version),
                tokens: Arc::new(AuthTokens::new()?),
                sessions: Arc::new(SessionRegistry::new(config.max_sessions)),
                balances: Balances::default(),
                store: Arc::new(ResultStore::default()),
                config,
                signer,
                recipient,
                base_price,
            }),
        })
    }

    /// The settings.
    pub fn config(&self) -> &OrchestratorConfig {
        &self.inner.config
    }

    /// The address that signs Ping replies and results (OrchestratorInfo `address`).
    pub fn address(&self) -> Address {
        self.inner.signer.address()
    }

    /// The key that signs Ping replies and results.
    pub fn signer(&self) -> &Signer {
        &self.inner.signer
    }

    /// The ticket receiver; `None` off-chain.
    pub fn recipient(&self) -> Option<&Arc<Recipient>> {
        self.inner.recipient.as_ref()
    }

    /// Balances per (sender, session), credited by tickets and debited per pixel.
    pub fn balances(&self) -> &Balances {
        &self.inner.balances
    }

    /// The renditions waiting for download (`GET /stream/...`).
    pub fn store(&self) -> &Arc<ResultStore> {
        &self.inner.store
    }

    /// Ends a session everywhere: the slot and its stored renditions.
    pub fn close_session(&self, session_id: &str) -> bool {
        self.inner.store.end_session(session_id);
        self.inner.sessions.end(session_id)
    }

    /// The live sessions, shared with `/segment`.
    pub fn sessions(&self) -> Arc<SessionRegistry> {
        Arc::clone(&self.inner.sessions)
    }

    /// The token issuer, shared with `/segment`.
    pub fn auth_tokens(&self) -> Arc<AuthTokens> {
        Arc::clone(&self.inner.tokens)
    }

    /// The advertised capabilities.
    pub fn capabilities(&self) -> &net::Capabilities {
        &self.inner.capabilities
    }

    /// The tonic server wrapper, ready for `Server::add_service`.
    pub fn into_server(self) -> OrchestratorServer<OrchestratorService> {
        OrchestratorServer::new(self)
    }

    /// The price quoted to `sender`: the base price, auto-adjusted on-chain when enabled.
    fn price_for(
        &self,
        recipient: &Recipient,
        sender: &Address,
    ) -> Result<Price, OrchestratorError> {
        if self.inner.config.auto_adjust_price {
            Ok(recipient.auto_adjusted_price(&self.inner.base_price, sender)?)
        } else {
            Ok(self.inner.base_price.clone())
        }
    }

    /// GetOrchestrator's logic (§3.1), in go-livepeer's order: signature, capacity, then
    /// the info with price, ticket params and a new auth token.
    pub fn orchestrator_info(
        &self,
        req: &net::OrchestratorRequest,
    ) -> Result<net::OrchestratorInfo, OrchestratorError> {
        // Go's BytesToAddress: the last 20 bytes, left-padded.
        let sender = Address::from_slice_lenient(&req.address);
        if self.inner.config.on_chain && !verify_address_sig(&sender, &req.sig) {
            return Err(OrchestratorError::InvalidRequest(
                "orchestrator req sig check failed".to_string(),
            ));
        }
        if !req.ignore_capacity_check {
            self.inner.sessions.check_capacity("")?;
        }
        // Off-chain go-livepeer quotes no price and no params: nothing is paid.
        let (price_info, ticket_params) = match self.inner.recipient.as_deref() {
            None => (None, None),
            Some(recipient) => {
                let info = self.price_for(recipient, &sender)?.to_price_info()?;
                // Params are made for the price exactly as B will echo it back (reduced).
                let price = Price::from_price_info(&info)?;
                let params = recipient.ticket_params(&sender, &price)?;
                (Some(info.to_proto()), Some(params.to_wire(true).to_proto()))
            }
        };
        Ok(net::OrchestratorInfo {
            transcoder: self.inner.config.service_uri.clone(),
            ticket_params,
            price_info,
            address: self.inner.signer.address().0.to_vec(),
            capabilities: Some(self.inner.capabilities.clone()),
            auth_token: Some(self.inner.tokens.issue(unix_now())?),
            ..net::OrchestratorInfo::default()
        })
    }

    /// The `OrchestratorInfo` of a `/segment` reply (§4.2 step 3): fresh ticket params at the
    /// session's fixed price (the base price until a payment fixes one), and the token the
    /// broadcaster sent rather than a new one.
    pub fn segment_reply_info(
        &self,
        sender: &Address,
        session_id: &str,
        token: &net::AuthToken,
    ) -> Result<net::OrchestratorInfo, OrchestratorError> {
        let (price_info, ticket_params) = match self.inner.recipient.as_deref() {
            None => (None, None),
            Some(recipient) => {
                let price = match self.inner.balances.fixed_price(*sender, session_id) {
                    Some(price) => price,
                    None => self.price_for(recipient, sender)?,
                };
                let info = price.to_price_info()?;
                let price = Price::from_price_info(&info)?;
                let params = recipient.ticket_params(sender, &price)?;
                (Some(info.to_proto()), Some(params.to_wire(true).to_proto()))
            }
        };
        Ok(net::OrchestratorInfo {
            transcoder: self.inner.config.service_uri.clone(),
            ticket_params,
            price_info,
            address: self.inner.signer.address().0.to_vec(),
            capabilities: Some(self.inner.capabilities.clone()),
            auth_token: Some(token.clone()),
            ..net::OrchestratorInfo::default()
        })
    }

    /// EndTranscodingSession's logic (§3.3): a genuine token (expired or not) ends its
    /// session; true when the session was live.
    pub fn end_session(&self, token: Option<&net::AuthToken>) -> Result<bool, OrchestratorError> {
        let token = token.ok_or(OrchestratorError::MissingAuthToken)?;
        self.inner.tokens.verify_hmac(token)?;
        Ok(self.close_session(&token.session_id))
    }
}

#[tonic::async_trait]
impl Orchestrator for OrchestratorService {
    async fn get_orchestrator(
        &self,
        request: Request<net::OrchestratorRequest>,
    ) -> Result<Response<net::OrchestratorInfo>, Status> {
        let req = request.into_inner();
        match self.orchestrator_info(&req) {
            Ok(info) => Ok(Response::new(info)),
            Err(error) => {
                tracing::debug!(%error, "get orchestrator refused");
                Err(error.into())
            }
        }
    }

    async fn end_transcoding_session(
        &self,
        request: Request<net::EndTranscodingSessionRequest>,
    ) -> Result<Response<net::EndTranscodingSessionResponse>, Status> {
        let req = request.into_inner();
        let ended = self.end_session(req.auth_token.as_ref())?;
        tracing::debug!(ended, "end transcoding session");
        Ok(Response::new(net::EndTranscodingSessionResponse {}))
    }

    async fn ping(
        &self,
        request: Request<net::PingPong>,
    ) -> Result<Response<net::PingPong>, Status> {
        // PingPong{value = Sign(value)} = personal_sign(keccak256(value)) (§3.3).
        let value = self
            .inner
            .signer
            .sign_message(&request.into_inner().value)
            .to_vec();
        Ok(Response::new(net::PingPong { value }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mode_and_recipient_must_agree() {
        let on = OrchestratorConfig {
            on_chain: true,
            ..OrchestratorConfig::default()
        };
        assert!(matches!(
            OrchestratorService::new(on, None),
            Err(OrchestratorError::Config(_))
        ));
        let zero_pixels = OrchestratorConfig {
            pixels_per_unit: 0,
            ..OrchestratorConfig::default()
        };
        assert!(OrchestratorService::new(zero_pixels, None).is_err());
    }

    #[test]
    fn config_debug_hides_the_key() {
        let cfg = OrchestratorConfig {
            signer_key: Some([0xab; 32]),
            ..OrchestratorConfig::default()
        };
        let text = format!("{cfg:?}");
        assert!(text.contains("<redacted>"));
        assert!(!text.contains("171"));
    }

    #[test]
    fn off_chain_info_has_no_price_and_no_params() {
        let svc = OrchestratorService::new(OrchestratorConfig::default(), None).expect("valid");
        let info = svc
            .orchestrator_info(&net::OrchestratorRequest::default())
            .expect("off-chain skips the signature");
        assert!(info.ticket_params.is_none());
        assert!(info.price_info.is_none());
        assert_eq!(info.address, svc.address().0.to_vec());
        assert_eq!(info.transcoder, "https://127.0.0.1:8935");
        let token = info.auth_token.expect("issued");
        assert_eq!(svc.auth_tokens().verify(Some(&token), unix_now()), Ok(()));
    }
}
