//! The orchestrator's HTTP surface: `POST /segment` following livepeer-protocol.md §4.2 step
//! by step, and `GET /stream/{session}/{rendition}/{file}` for the renditions (§4.4).

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use axum::Router;
use http_body_util::{BodyExt as _, LengthLimitError, Limited};
use livefarm_jobs::SourceFormat;
use livefarm_pm::hash::keccak256;
use livefarm_pm::sig::verify_message;
use livefarm_pm::wire::PaymentMsg;
use livefarm_pm::{Address, Price};
use livefarm_proto::livepeer::net;
use prost::Message as _;

use crate::capabilities::compatible_with;
use crate::convert::FromProto;
use crate::metrics::metrics;
use crate::segment::{
    decode_payment, decode_seg_data, flatten, looks_like_mp4, result_digest, seg_metadata,
    SegMetadata, ERR_SEG_SIG, MAX_SEGMENT_BYTES,
};
use crate::service::OrchestratorService;
use crate::tickets::WinningTicketSink;
use crate::transcode::{SegmentTranscoder, TranscodeRequest, TranscodedRendition};

/// `Content-Type` of a body that is a URI to fetch the segment from.
pub const URI_CONTENT_TYPE: &str = "application/vnd+livepeer.uri";
/// go-livepeer's limit on a segment fetched by URI.
const URI_FETCH_TIMEOUT: Duration = Duration::from_secs(8);
/// A rendition shorter than this is `ZeroSegments` (GL core/orchestrator.go).
const MIN_RENDITION_BYTES: usize = 25;

/// What the HTTP handlers share.
#[derive(Clone)]
pub struct SegmentState {
    pub orchestrator: OrchestratorService,
    pub transcoder: Arc<dyn SegmentTranscoder>,
    pub tickets: Arc<dyn WinningTicketSink>,
    /// The largest segment body accepted (`MaxSegSize` by default).
    pub max_segment_bytes: usize,
    /// Fetches `application/vnd+livepeer.uri` bodies (insecure TLS, as go-livepeer).
    pub fetcher: reqwest::Client,
}

impl SegmentState {
    /// State with go-livepeer's limits.
    pub fn new(
        orchestrator: OrchestratorService,
        transcoder: Arc<dyn SegmentTranscoder>,
        tickets: Arc<dyn WinningTicketSink>,
    ) -> SegmentState {
        let fetcher = reqwest::Client::builder()
            .tls_danger_accept_invalid_certs(true)
            .timeout(Duration::from_secs(4))
            .build()
            .unwrap_or_default();
        SegmentState {
            orchestrator,
            transcoder,
            tickets,
            max_segment_bytes: MAX_SEGMENT_BYTES,
            fetcher,
        }
    }
}

/// `/segment` and `/stream/...`.
pub fn router(state: SegmentState) -> Router {
    Router::new()
        .route("/segment", any(segment))
        .route("/stream/{session}/{rendition}/{file}", get(stream_file))
        .with_state(state)
}

fn refuse(status: StatusCode, message: impl Into<String>) -> Response {
    let message = message.into();
    tracing::info!(status = status.as_u16(), %message, "segment refused");
    metrics().refused(status.as_u16());
    (status, message).into_response()
}

fn header_text<'a>(headers: &'a HeaderMap, name: &str) -> Result<&'a str, String> {
    match headers.get(name) {
        None => Ok(""),
        Some(value) => value
            .to_str()
            .map_err(|_| format!("{name} is not ASCII text")),
    }
}

/// Step 2 after decoding: signature, capabilities, token, capacity.
fn verify_segment(state: &SegmentState, sender: &Address, md: &SegMetadata) -> Result<(), String> {
    let orch = &state.orchestrator;
    // Off-chain orchestrators skip broadcaster signature checks (§19.8).
    if orch.config().on_chain && !verify_message(sender, &flatten(md), &md.sig) {
        return Err(ERR_SEG_SIG.to_string());
    }
    if !compatible_with(&md.capabilities, orch.capabilities()) {
        return Err("incompatible capabilities".to_string());
    }
    let token = md.auth_token.as_ref();
    orch.auth_tokens()
        .verify(token, crate::auth::unix_now())
        .map_err(|e| e.to_string())?;
    let session_id = token.map_or("", |t| t.session_id.as_str());
    orch.sessions()
        .check_capacity(session_id)
        .map_err(|e| e.to_string())
}

async fn segment(State(state): State<SegmentState>, headers: HeaderMap, body: Body) -> Response {
    let started = Instant::now();
    // 1. Payment.
    let payment = match header_text(&headers, "Livepeer-Payment").and_then(decode_payment) {
        Ok(payment) => payment,
        Err(message) => return refuse(StatusCode::PAYMENT_REQUIRED, message),
    };
    let sender = Address::from_slice_lenient(&payment.sender);
    // 2. Segment metadata and credentials.
    let md = match header_text(&headers, "Livepeer-Segment")
        .and_then(decode_seg_data)
        .and_then(seg_metadata)
    {
        Ok(md) => md,
        Err(message) => return refuse(StatusCode::FORBIDDEN, message),
    };
    if let Err(message) = verify_segment(&state, &sender, &md) {
        return refuse(StatusCode::FORBIDDEN, message);
    }
    let token = md.auth_token.clone().expect("verified above");
    let session_id = token.session_id.clone();
    let orch = &state.orchestrator;
    // 3. The reply's OrchestratorInfo.
    let info = match orch.segment_reply_info(&sender, &session_id, &token) {
        Ok(info) => info,
        Err(error) => {
            tracing::error!(%error, "building orchestrator info failed");
            return refuse(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error");
        }
    };
    // 4. Payment processing (on-chain only: off-chain accepts everything).
    let payment_msg = PaymentMsg::from_proto(payment);
    if let Some(recipient) = orch.recipient() {
        let outcome = recipient.process_payment(&payment_msg, &session_id, orch.balances());
        // Winners are queued even when the payment as a whole failed (§9.6).
        for ticket in outcome.winning_tickets {
            metrics().winning_tickets.inc();
            if let Err(error) = state.tickets.queue(ticket).await {
                tracing::error!(%error, "queueing a winning ticket failed");
            }
        }
        if let Some(error) = outcome.error {
            return refuse(StatusCode::BAD_REQUEST, error.to_string());
        }
        // 5. Balance.
        let priced = payment_msg
            .expected_price
            .as_ref()
            .is_some_and(|p| p.price_per_unit > 0);
        if priced
            && !orch
                .balances()
                .sufficient(sender, &session_id, &recipient.ev())
        {
            return refuse(StatusCode::BAD_REQUEST, "Insufficient balance");
        }
    }
    // 6. The body: bytes, or a URI to fetch them from.
    let is_uri = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case(URI_CONTENT_TYPE));
    let data = match read_body(&state, body, is_uri).await {
        Ok(data) => data,
        Err((status, message)) => return refuse(status, message),
    };
    // 7. Hash.
    if keccak256(&data).as_slice() != md.hash.as_slice() {
        return refuse(StatusCode::FORBIDDEN, "Forbidden");
    }
    // 8. 200 now; the result follows in the body. The work runs in its own task so a
    // broadcaster that hangs up still gets its segment debited, as go-livepeer does.
    let (tx, rx) = tokio::sync::oneshot::channel::<Bytes>();
    tokio::spawn(async move {
        let result = transcode_and_settle(&state, &sender, &payment_msg, md, data, info).await;
        metrics().observe_segment(started.elapsed());
        let _ = tx.send(Bytes::from(result.encode_to_vec()));
    });
    let body =
        futures_util::stream::once(
            async move { Ok::<Bytes, Infallible>(rx.await.unwrap_or_default()) },
        );
    Response::builder()
        .status(StatusCode::OK)
        .body(Body::from_stream(body))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

async fn read_body(
    state: &SegmentState,
    body: Body,
    is_uri: bool,
) -> Result<Bytes, (StatusCode, String)> {
    let limit = if is_uri {
        8 * 1024
    } else {
        state.max_segment_bytes
    };
    let bytes = match Limited::new(body, limit).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(error) if error.downcast_ref::<LengthLimitError>().is_some() => {
            return Err((
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("segment larger than {limit} bytes"),
            ))
        }
        Err(error) => return Err((StatusCode::BAD_REQUEST, format!("reading body: {error}"))),
    };
    if !is_uri {
        return Ok(bytes);
    }
    let uri = String::from_utf8_lossy(&bytes).trim().to_string();
    let fetch = async {
        let response = state.fetcher.get(&uri).send().await?.error_for_status()?;
        response.bytes().await
    };
    match tokio::time::timeout(URI_FETCH_TIMEOUT, fetch).await {
        Ok(Ok(data)) if data.len() <= state.max_segment_bytes => Ok(data),
        Ok(Ok(_)) => Err((StatusCode::BAD_REQUEST, "BadRequest".to_string())),
        Ok(Err(error)) => {
            tracing::info!(%error, %uri, "segment download failed");
            Err((StatusCode::BAD_REQUEST, "BadRequest".to_string()))
        }
        Err(_) => Err((StatusCode::BAD_REQUEST, "BadRequest".to_string())),
    }
}

/// Steps 9 to 11: transcode, store, debit, and the `TranscodeResult`.
async fn transcode_and_settle(
    state: &SegmentState,
    sender: &Address,
    payment: &PaymentMsg,
    md: SegMetadata,
    data: Bytes,
    info: net::OrchestratorInfo,
) -> net::TranscodeResult {
    let orch = &state.orchestrator;
    let session_id = md
        .auth_token
        .as_ref()
        .map(|t| t.session_id.clone())
        .unwrap_or_default();
    let outcome = transcode(state, &session_id, &md, data).await;
    let pixels: u64 = outcome
        .as_ref()
        .map_or(0, |r| r.iter().map(|r| r.pixels).sum());
    // 10. Debit even when transcoding failed (then for 0 pixels).
    if orch.recipient().is_some() {
        let price = payment
            .expected_price
            .as_ref()
            .and_then(|p| Price::from_price_info(p).ok())
            .unwrap_or_else(Price::zero);
        orch.balances()
            .debit_pixels(*sender, &session_id, pixels, &price);
    }
    let result = match outcome {
        Ok(renditions) => {
            metrics().segments_ok.inc();
            metrics().pixels.inc_by(pixels);
            net::transcode_result::Result::Data(store_renditions(
                state,
                &session_id,
                &md,
                renditions,
            ))
        }
        Err(message) => {
            tracing::warn!(session = %session_id, seq = md.seq, %message, "segment transcode failed");
            metrics().segments_failed.inc();
            net::transcode_result::Result::Error(message)
        }
    };
    net::TranscodeResult {
        seq: md.seq,
        result: Some(result),
        info: Some(info),
    }
}

async fn transcode(
    state: &SegmentState,
    session_id: &str,
    md: &SegMetadata,
    data: Bytes,
) -> Result<Vec<TranscodedRendition>, String> {
    let sessions = state.orchestrator.sessions();
    sessions.open(session_id).map_err(|e| e.to_string())?;
    let _slot = sessions
        .begin_segment(session_id)
        .map_err(|e| e.to_string())?;
    let format = if looks_like_mp4(&data) {
        SourceFormat::Mp4
    } else {
        SourceFormat::Mpegts
    };
    let renditions = state
        .transcoder
        .transcode(TranscodeRequest {
            session_id: session_id.to_string(),
            seq: u64::try_from(md.seq).unwrap_or(0),
            data,
            format,
            duration_ms: md.duration_ms,
            profiles: md.profiles.clone(),
        })
        .await
        .map_err(|e| e.to_string())?;
    if renditions.len() != md.profiles.len() {
        return Err("MismatchedSegments".to_string());
    }
    if renditions
        .iter()
        .any(|r| r.data.len() < MIN_RENDITION_BYTES)
    {
        return Err("ZeroSegments".to_string());
    }
    Ok(renditions)
}

/// Keeps the renditions for download and signs them (§4.4).
fn store_renditions(
    state: &SegmentState,
    session_id: &str,
    md: &SegMetadata,
    renditions: Vec<TranscodedRendition>,
) -> net::TranscodeData {
    let base = state
        .orchestrator
        .config()
        .service_uri
        .trim_end_matches('/');
    let digest = result_digest(&renditions.iter().map(|r| &r.data[..]).collect::<Vec<_>>());
    let mut segments = Vec::with_capacity(renditions.len());
    for (profile, rendition) in md.profiles.iter().zip(renditions) {
        let file = format!("{}{}", md.seq, profile.format.extension());
        state
            .orchestrator
            .store()
            .put(session_id, &rendition.name, &file, rendition.data);
        segments.push(net::TranscodedSegmentData {
            url: format!("{base}/stream/{session_id}/{}/{file}", rendition.name),
            pixels: i64::try_from(rendition.pixels).unwrap_or(i64::MAX),
            perceptual_hash_url: String::new(),
        });
    }
    net::TranscodeData {
        segments,
        sig: state.orchestrator.signer().sign_personal(&digest).to_vec(),
    }
}

async fn stream_file(
    State(state): State<SegmentState>,
    Path((session, rendition, file)): Path<(String, String, String)>,
) -> Response {
    match state.orchestrator.store().get(&session, &rendition, &file) {
        Some(data) => {
            let mime = if file.ends_with(".mp4") {
                "video/mp4"
            } else {
                "video/mp2t"
            };
            (
                [
                    (header::CONTENT_TYPE, mime),
                    (header::CACHE_CONTROL, "max-age=5"),
                    (header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"),
                ],
                data,
            )
                .into_response()
        }
        None => (StatusCode::NOT_FOUND, "ErrNotFound").into_response(),
    }
}
