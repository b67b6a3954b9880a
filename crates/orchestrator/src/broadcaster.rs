//! The broadcaster side of the orchestrator protocol, as go-livepeer's broadcaster does it
//! (§3, §4, §10): GetOrchestrator over TLS, then `POST /segment` with a signed `SegData`, a
//! payment sized from the fee estimate and the session balance, the `TranscodeResult` read
//! back, the balance settled and the session refreshed from the returned info. The end-to-end
//! tests, `livefarm bench` load and a future broadcaster mode use it.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use hyper_util::rt::TokioIo;
use livefarm_pm::hash::keccak256;
use livefarm_pm::sender::gen_payment;
use livefarm_pm::wire::PaymentMsg;
use livefarm_pm::{
    estimate_fee, Address, Balances, OutputProfile, Price, Sender, Signer, TicketParams,
};
use livefarm_profiles::Profile;
use livefarm_proto::livepeer::net;
use livefarm_proto::livepeer::net::orchestrator_client::OrchestratorClient;
use num_rational::BigRational;
use num_traits::Zero as _;
use prost::Message as _;
use tonic::transport::{Channel, Endpoint, Uri};

use crate::capabilities::{bitstring, AUTH_TOKEN, H264, MANDATORY_CAPABILITIES, MPEGTS};
use crate::convert::{FromProto, ToProto};
use crate::segment::{encode_header, flatten, result_digest, SegMetadata};

/// What can go wrong on the broadcaster side.
#[derive(Debug, thiserror::Error)]
pub enum BroadcastError {
    #[error("connecting to the orchestrator: {0}")]
    Connect(String),
    #[error("GetOrchestrator: {0}")]
    Discovery(String),
    #[error("payment: {0}")]
    Payment(String),
    #[error("segment refused with {status}: {message}")]
    Refused { status: u16, message: String },
    #[error("segment upload: {0}")]
    Upload(String),
    #[error("orchestrator sent a result we cannot read: {0}")]
    BadResult(String),
}

/// A gRPC channel to an orchestrator URI (`https://host:port`), trusting any certificate as
/// go-livepeer broadcasters do; `http://` connects in cleartext (h2c).
pub async fn connect(uri: &str) -> Result<OrchestratorClient<Channel>, BroadcastError> {
    let parsed: Uri = uri
        .parse()
        .map_err(|e| BroadcastError::Connect(format!("{uri}: {e}")))?;
    let host = parsed.host().unwrap_or("localhost").to_string();
    let port = parsed.port_u16().unwrap_or(8935);
    let tls = parsed.scheme_str() == Some("https");
    // tonic dials "http://" and the connector below adds TLS itself.
    let endpoint = Endpoint::from_shared(format!("http://{host}:{port}"))
        .map_err(|e| BroadcastError::Connect(e.to_string()))?
        .connect_timeout(Duration::from_secs(3))
        .timeout(Duration::from_secs(8));
    let config = crate::tls::insecure_client_config(&[b"h2"])
        .map_err(|e| BroadcastError::Connect(e.to_string()))?;
    let channel = if tls {
        let connector = tower::service_fn(move |_: Uri| {
            let config = Arc::clone(&config);
            let host = host.clone();
            async move {
                let tcp = tokio::net::TcpStream::connect((host.as_str(), port)).await?;
                let name = rustls::pki_types::ServerName::try_from(host.clone())
                    .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
                let tls = tokio_rustls::TlsConnector::from(config)
                    .connect(name, tcp)
                    .await?;
                Ok::<_, std::io::Error>(TokioIo::new(tls))
            }
        });
        endpoint.connect_with_connector(connector).await
    } else {
        endpoint.connect().await
    };
    let channel = channel.map_err(|e| BroadcastError::Connect(format!("{uri}: {e}")))?;
    Ok(OrchestratorClient::new(channel))
}

/// An HTTP client for `/segment` and rendition downloads: h2 or http/1.1 over TLS, any
/// certificate.
pub fn http_client() -> Result<reqwest::Client, BroadcastError> {
    reqwest::Client::builder()
        .tls_danger_accept_invalid_certs(true)
        .connect_timeout(Duration::from_secs(2))
        .build()
        .map_err(|e| BroadcastError::Connect(e.to_string()))
}

/// The capabilities of a plain H.264/MPEG-TS transcode job.
pub fn job_capabilities() -> net::Capabilities {
    net::Capabilities {
        bitstring: bitstring(&[H264, MPEGTS, AUTH_TOKEN]),
        mandatories: bitstring(&MANDATORY_CAPABILITIES),
        ..net::Capabilities::default()
    }
}

/// One segment's outcome, seen from the broadcaster.
#[derive(Debug, Clone)]
pub struct SegmentReply {
    pub result: net::TranscodeResult,
    /// Tickets sent with the segment.
    pub tickets: usize,
    /// The balance with the orchestrator after settling.
    pub balance: BigRational,
}

impl SegmentReply {
    /// The renditions' URLs and pixel counts, or the orchestrator's error text.
    pub fn segments(&self) -> Result<&[net::TranscodedSegmentData], String> {
        match &self.result.result {
            Some(net::transcode_result::Result::Data(data)) => Ok(&data.segments),
            Some(net::transcode_result::Result::Error(e)) => Err(e.clone()),
            None => Err("empty result".to_string()),
        }
    }
}

struct SessionState {
    info: net::OrchestratorInfo,
    /// The PM session of the current ticket params (keyed by recipientRandHash).
    pm_session: Option<String>,
}

/// A broadcaster session with one orchestrator.
pub struct Broadcaster {
    signer: Signer,
    sender: Option<Arc<Sender>>,
    manifest_id: String,
    http: reqwest::Client,
    grpc: OrchestratorClient<Channel>,
    balances: Balances,
    state: Mutex<SessionState>,
}

impl Broadcaster {
    /// Discovers `uri` with GetOrchestrator (signed with `signer`). With a `sender`, segments
    /// are paid in tickets; without, the broadcaster is off-chain.
    pub async fn connect(
        uri: &str,
        signer: Signer,
        sender: Option<Arc<Sender>>,
        manifest_id: &str,
    ) -> Result<Broadcaster, BroadcastError> {
        let grpc = connect(uri).await?;
        let broadcaster = Broadcaster {
            signer,
            sender,
            manifest_id: manifest_id.to_string(),
            http: http_client()?,
            grpc,
            balances: Balances::default(),
            state: Mutex::new(SessionState {
                info: net::OrchestratorInfo::default(),
                pm_session: None,
            }),
        };
        let info = broadcaster.get_orchestrator().await?;
        broadcaster.adopt(info)?;
        Ok(broadcaster)
    }

    /// GetOrchestrator with our signed address (§3.1).
    pub async fn get_orchestrator(&self) -> Result<net::OrchestratorInfo, BroadcastError> {
        let request = net::OrchestratorRequest {
            address: self.signer.address().0.to_vec(),
            sig: self.signer.sign_address().to_vec(),
            capabilities: Some(job_capabilities()),
            ..net::OrchestratorRequest::default()
        };
        self.grpc
            .clone()
            .get_orchestrator(request)
            .await
            .map(tonic::Response::into_inner)
            .map_err(|s| BroadcastError::Discovery(s.message().to_string()))
    }

    /// The current OrchestratorInfo.
    pub fn info(&self) -> net::OrchestratorInfo {
        self.lock().info.clone()
    }

    /// Our address.
    pub fn address(&self) -> Address {
        self.signer.address()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, SessionState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn price(info: &net::OrchestratorInfo) -> Result<Price, BroadcastError> {
        match &info.price_info {
            None => Ok(Price::zero()),
            Some(p) => Price::from_price_info(&FromProto::from_proto(p.clone()))
                .map_err(|e| BroadcastError::Payment(e.to_string())),
        }
    }

    /// Takes new info (§4.6): new ticket params start a new PM session.
    fn adopt(&self, info: net::OrchestratorInfo) -> Result<(), BroadcastError> {
        let mut state = self.lock();
        if let (Some(sender), Some(params)) = (&self.sender, &info.ticket_params) {
            let price = Self::price(&info)?;
            let params = TicketParams::from_wire(&FromProto::from_proto(params.clone()), price)
                .map_err(|e| BroadcastError::Payment(e.to_string()))?;
            let changed =
                state.info.ticket_params.as_ref().is_none_or(|old| {
                    old.recipient_rand_hash != params.recipient_rand_hash.to_vec()
                });
            if changed || state.pm_session.is_none() {
                if let Some(old) = state.pm_session.take() {
                    sender.cleanup_session(&old);
                }
                sender
                    .validate_ticket_params(&params)
                    .map_err(|e| BroadcastError::Payment(e.to_string()))?;
                state.pm_session = Some(sender.start_session(params));
            }
        }
        state.info = info;
        Ok(())
    }

    /// Asks for fresh info (and ticket params) with GetOrchestrator and adopts it.
    pub async fn refresh(&self) -> Result<(), BroadcastError> {
        let info = self.get_orchestrator().await?;
        self.adopt(info)
    }

    /// Refreshes the session when its ticket params have expired (go-livepeer's
    /// `shouldRefreshSession`): params live for a few dozen blocks only. True when it did.
    pub async fn refresh_if_expired(&self) -> Result<bool, BroadcastError> {
        let info = self.info();
        let (Some(sender), Some(params)) = (&self.sender, &info.ticket_params) else {
            return Ok(false);
        };
        let params =
            TicketParams::from_wire(&FromProto::from_proto(params.clone()), Self::price(&info)?)
                .map_err(|e| BroadcastError::Payment(e.to_string()))?;
        match sender.validate_ticket_params(&params) {
            Err(livefarm_pm::PmError::TicketParamsExpired) => {
                self.refresh().await?;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    fn auth_session(info: &net::OrchestratorInfo) -> String {
        info.auth_token
            .as_ref()
            .map(|t| t.session_id.clone())
            .unwrap_or_default()
    }

    fn recipient(info: &net::OrchestratorInfo) -> Address {
        info.ticket_params.as_ref().map_or(Address::default(), |p| {
            Address::from_slice_lenient(&p.recipient)
        })
    }

    /// The balance kept with the orchestrator's current session.
    pub fn balance(&self) -> BigRational {
        let info = self.info();
        self.balances
            .balance(Self::recipient(&info), &Self::auth_session(&info))
            .unwrap_or_else(BigRational::zero)
    }

    /// Builds the payment for one segment (§10) and stages the balance change.
    fn payment(
        &self,
        info: &net::OrchestratorInfo,
        profiles: &[Profile],
        duration: Duration,
    ) -> Result<(PaymentMsg, Option<livefarm_pm::BalanceUpdate>, usize), BroadcastError> {
        let (Some(sender), Some(price_info)) = (&self.sender, &info.price_info) else {
            return Ok((PaymentMsg::default(), None, 0));
        };
        let price = Self::price(info)?;
        let pm_session = self
            .lock()
            .pm_session
            .clone()
            .ok_or_else(|| BroadcastError::Payment("no ticket params".to_string()))?;
        let outputs: Vec<OutputProfile> = profiles
            .iter()
            .map(|p| OutputProfile {
                width: p.width,
                height: p.height,
                fps: p.fps,
                fps_den: p.fps_den,
            })
            .collect();
        let fee = estimate_fee(&outputs, duration.as_secs_f64(), &price);
        let ev = sender
            .ev(&pm_session)
            .map_err(|e| BroadcastError::Payment(e.to_string()))?;
        let update =
            self.balances
                .stage_update(Self::recipient(info), &Self::auth_session(info), &fee, &ev);
        let batch = if update.num_tickets > 0 {
            Some(
                sender
                    .create_ticket_batch(&pm_session, update.num_tickets)
                    .map_err(|e| BroadcastError::Payment(e.to_string()))?,
            )
        } else {
            None
        };
        let tickets = update.num_tickets;
        let payment = gen_payment(
            sender.address(),
            FromProto::from_proto(price_info.clone()),
            batch.as_ref(),
        );
        Ok((payment, Some(update), tickets))
    }

    /// Sends one segment and reads its `TranscodeResult`.
    pub async fn submit(
        &self,
        seq: i64,
        data: Bytes,
        profiles: &[Profile],
        duration: Duration,
    ) -> Result<SegmentReply, BroadcastError> {
        self.refresh_if_expired().await?;
        let info = self.info();
        let (payment, update, tickets) = self.payment(&info, profiles, duration)?;
        let seg = signed_seg_data(
            &self.signer,
            &self.manifest_id,
            seq,
            &data,
            profiles,
            duration,
            info.auth_token.clone(),
        );
        let payment_header = if self.sender.is_some() {
            encode_header(&payment.to_proto())
        } else {
            String::new()
        };
        let url = format!("{}/segment", info.transcoder.trim_end_matches('/'));
        let timeout = Duration::from_secs(8).max(duration * 4);
        let sent = self
            .http
            .post(&url)
            .header("Livepeer-Segment", encode_header(&seg))
            .header("Livepeer-Payment", payment_header)
            .header("Content-Type", "video/MP2T")
            .timeout(timeout)
            .body(data)
            .send()
            .await;
        let auth_session = Self::auth_session(&info);
        let recipient = Self::recipient(&info);
        let restore = |update: Option<livefarm_pm::BalanceUpdate>| {
            if let Some(update) = update {
                self.balances
                    .complete_update(recipient, &auth_session, &update);
            }
        };
        let response = match sent {
            Ok(response) => response,
            Err(e) => {
                restore(update);
                return Err(BroadcastError::Upload(e.to_string()));
            }
        };
        let status = response.status().as_u16();
        let body = response.bytes().await;
        if status != 200 {
            restore(update);
            let message = body
                .map(|b| String::from_utf8_lossy(&b).trim().to_string())
                .unwrap_or_default();
            return Err(BroadcastError::Refused { status, message });
        }
        let body = body.map_err(|e| BroadcastError::Upload(e.to_string()))?;
        let result = net::TranscodeResult::decode(body.as_ref())
            .map_err(|e| BroadcastError::BadResult(e.to_string()))?;
        if let Some(mut update) = update {
            let pixels: i64 = match &result.result {
                Some(net::transcode_result::Result::Data(d)) => {
                    d.segments.iter().map(|s| s.pixels).sum()
                }
                _ => 0,
            };
            let price = Self::price(&info)?;
            update.debit = price.fee_for_pixels(u64::try_from(pixels).unwrap_or(0));
            update.status = livefarm_pm::UpdateStatus::ReceivedChange;
            self.balances
                .complete_update(recipient, &auth_session, &update);
        }
        if let Some(new_info) = result.info.clone() {
            self.adopt(new_info)?;
        }
        Ok(SegmentReply {
            result,
            tickets,
            balance: self.balance(),
        })
    }

    /// Downloads one rendition.
    pub async fn download(&self, url: &str) -> Result<Bytes, BroadcastError> {
        let response = self
            .http
            .get(url)
            .timeout(Duration::from_secs(4))
            .send()
            .await
            .map_err(|e| BroadcastError::Upload(e.to_string()))?;
        if !response.status().is_success() {
            return Err(BroadcastError::Refused {
                status: response.status().as_u16(),
                message: url.to_string(),
            });
        }
        response
            .bytes()
            .await
            .map_err(|e| BroadcastError::Upload(e.to_string()))
    }

    /// EndTranscodingSession for the current session.
    pub async fn end_session(&self) -> Result<(), BroadcastError> {
        let token = self.info().auth_token;
        self.grpc
            .clone()
            .end_transcoding_session(net::EndTranscodingSessionRequest { auth_token: token })
            .await
            .map(|_| ())
            .map_err(|s| BroadcastError::Discovery(s.message().to_string()))
    }
}

/// A `SegData` as a go-livepeer broadcaster sends it: the profiles in `fullProfiles3`, the
/// legacy field set to `"invalid"`, signed over its flattened form (§4.3).
pub fn signed_seg_data(
    signer: &Signer,
    manifest_id: &str,
    seq: i64,
    data: &[u8],
    profiles: &[Profile],
    duration: Duration,
    auth_token: Option<net::AuthToken>,
) -> net::SegData {
    let md = SegMetadata {
        manifest_id: manifest_id.as_bytes().to_vec(),
        seq,
        hash: keccak256(data).to_vec(),
        profiles: profiles.to_vec(),
        sig: Vec::new(),
        duration_ms: u64::try_from(duration.as_millis()).unwrap_or(u64::MAX),
        capabilities: job_capabilities(),
        auth_token,
        calc_perceptual_hash: false,
    };
    net::SegData {
        sig: signer.sign_message(&flatten(&md)).to_vec(),
        manifest_id: md.manifest_id,
        seq,
        hash: md.hash,
        profiles: b"invalid".to_vec(),
        duration: i32::try_from(md.duration_ms).unwrap_or(i32::MAX),
        capabilities: Some(md.capabilities),
        auth_token: md.auth_token,
        full_profiles3: profiles.iter().map(ToProto::to_proto).collect(),
        ..net::SegData::default()
    }
}

/// Checks `TranscodeData.sig` over the downloaded renditions against `signer` (§4.4).
pub fn verify_result_signature(signer: &Address, outputs: &[Bytes], sig: &[u8]) -> bool {
    let digest = result_digest(outputs);
    livefarm_pm::sig::verify_personal(signer, &digest, sig)
}
