//! go-livepeer's HTTP push (livepeer-protocol.md §5.1).

use std::fmt::Write as _;

use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, Path, Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::Router;
use livefarm_jobs::{SegmentJob, SegmentResult, SourceFormat, SubmitError};
use livefarm_profiles::{studio_default_ladder, Profile};
use livefarm_storage::keys;
use tracing::Instrument;

use crate::auth::{ladder_from, TranscodeConfiguration};
use crate::IngestState;

/// The HTTP push routes.
pub fn router(state: IngestState) -> Router {
    let limit = state.max_segment_bytes;
    Router::new()
        .route("/live/{*path}", any(push))
        .layer(DefaultBodyLimit::max(limit))
        .layer(axum::middleware::from_fn(count_status))
        .with_state(state)
}

/// Counts every answer by status class (refusals by the body limit included).
async fn count_status(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    crate::metrics::push_request(response.status());
    response
}

/// A parsed push URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushPath {
    pub manifest_id: String,
    pub seq: u64,
    pub format: SourceFormat,
    pub extension: &'static str,
}

/// Parses `{manifestID}/{seq}.ts|.mp4` (after `/live/`) as go-livepeer does: an optional
/// `stream/` prefix, the manifest id up to the first `/`, the sequence number from the file name
/// (0 when it is not a number).
pub fn parse_push_path(path: &str) -> Result<PushPath, String> {
    let trimmed = path.trim_start_matches([' ', '/']);
    let trimmed = trimmed.strip_prefix("stream/").unwrap_or(trimmed);
    let trimmed = trimmed.strip_prefix("live/").unwrap_or(trimmed);
    let (manifest_id, file) = trimmed
        .rsplit_once('/')
        .ok_or("expected /live/{manifestID}/{seq}.ts")?;
    let manifest_id = manifest_id.split('/').next().unwrap_or_default();
    let (format, extension) = if file.ends_with(".ts") {
        (SourceFormat::Mpegts, ".ts")
    } else if file.ends_with(".mp4") {
        (SourceFormat::Mp4, ".mp4")
    } else {
        return Err("ignoring file extension".to_string());
    };
    let stem = &file[..file.len() - extension.len()];
    livefarm_jobs::validate_stream_id(manifest_id).map_err(|e| format!("bad manifest id: {e}"))?;
    Ok(PushPath {
        manifest_id: manifest_id.to_string(),
        seq: stem.parse().unwrap_or(0),
        format,
        extension,
    })
}

fn profiles_from_header(headers: &HeaderMap) -> Result<Vec<Profile>, String> {
    let Some(raw) = headers.get("Livepeer-Transcode-Configuration") else {
        return Ok(studio_default_ladder());
    };
    let text = raw
        .to_str()
        .map_err(|_| "Livepeer-Transcode-Configuration is not text".to_string())?;
    let config: TranscodeConfiguration =
        serde_json::from_str(text).map_err(|e| format!("Livepeer-Transcode-Configuration: {e}"))?;
    ladder_from(&config.presets, &config.profiles, &studio_default_ladder())
}

fn content_duration(headers: &HeaderMap) -> Result<u64, String> {
    match headers.get("Content-Duration") {
        None => Ok(2000),
        Some(value) => value
            .to_str()
            .ok()
            .and_then(|v| v.trim().parse::<u64>().ok())
            .filter(|ms| *ms > 0 && *ms <= 300_000)
            .ok_or_else(|| "Content-Duration must be a number of milliseconds".to_string()),
    }
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    let message = message.into();
    tracing::warn!(status = status.as_u16(), %message, "push rejected");
    (status, message).into_response()
}

async fn push(
    State(state): State<IngestState>,
    Path(path): Path<String>,
    method: Method,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if method != Method::PUT && method != Method::POST {
        return error(StatusCode::METHOD_NOT_ALLOWED, "use PUT or POST");
    }
    let target = match parse_push_path(&path) {
        Ok(target) => target,
        Err(message) => return error(StatusCode::BAD_REQUEST, message),
    };
    let profiles = match profiles_from_header(&headers) {
        Ok(profiles) => profiles,
        Err(message) => return error(StatusCode::BAD_REQUEST, message),
    };
    let duration_ms = match content_duration(&headers) {
        Ok(ms) => ms,
        Err(message) => return error(StatusCode::BAD_REQUEST, message),
    };
    crate::metrics::received("http_push", body.len());
    if body.is_empty() {
        return error(StatusCode::BAD_REQUEST, "empty segment");
    }
    let source_key = keys::rendition_segment(
        &target.manifest_id,
        keys::SOURCE_RENDITION,
        target.seq,
        &target.extension[1..],
    );
    if let Err(e) = state.storage.put(&source_key, body).await {
        return error(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("storing the segment failed: {e}"),
        );
    }
    let mut job = SegmentJob::new(
        &target.manifest_id,
        target.seq,
        source_key,
        target.format,
        duration_ms,
        profiles.clone(),
    );
    // a pushed segment's trace starts here and goes on in the transcoder and the api
    let span = tracing::info_span!(
        parent: None,
        "ingest_push",
        stream_id = %target.manifest_id,
        seq = target.seq
    );
    job.trace = livefarm_telemetry::inject_context(&span);
    let wait = job.result_wait(state.wait_multiplier, state.min_wait);
    let result = match state.segments.submit(&job, wait).instrument(span).await {
        Ok(result) => result,
        Err(e @ SubmitError::Enqueue(_)) => {
            return error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
        }
        Err(SubmitError::Timeout(_)) => {
            return error(StatusCode::SERVICE_UNAVAILABLE, "No sessions available")
        }
        Err(e @ SubmitError::Failed { .. }) => {
            return error(StatusCode::UNPROCESSABLE_ENTITY, e.to_string())
        }
        Err(e @ SubmitError::Dropped) => {
            return error(StatusCode::SERVICE_UNAVAILABLE, e.to_string())
        }
    };
    let wants_multipart = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("multipart/mixed"));
    if !wants_multipart {
        return StatusCode::OK.into_response();
    }
    match multipart_reply(&state, &target, &profiles, &result).await {
        Ok(response) => response,
        Err(message) => error(StatusCode::INTERNAL_SERVER_ERROR, message),
    }
}

/// One part per profile, in profile order, with go-livepeer's part headers.
async fn multipart_reply(
    state: &IngestState,
    target: &PushPath,
    profiles: &[Profile],
    result: &SegmentResult,
) -> Result<Response, String> {
    let boundary = crate::results::boundary();
    let mut body: Vec<u8> = Vec::new();
    for profile in profiles {
        let rendition = result
            .renditions
            .iter()
            .find(|r| r.name == profile.name)
            .ok_or_else(|| format!("result has no rendition {}", profile.name))?;
        let bytes = state
            .storage
            .get(&rendition.key)
            .await
            .map_err(|e| format!("reading rendition {}: {e}", profile.name))?;
        let (mime, ext) = match profile.format {
            livefarm_profiles::Format::Mp4 => ("video/mp4", ".mp4"),
            livefarm_profiles::Format::MpegTs => ("video/mp2t", ".ts"),
        };
        let file = format!("{}_{}{}", profile.name, target.seq, ext);
        let mut head = String::new();
        let _ = write!(
            head,
            "--{boundary}\r\nContent-Type: {mime}; name=\"{file}\"\r\nContent-Length: {}\r\nContent-Disposition: attachment; filename=\"{file}\"\r\nRendition-Name: {}\r\n\r\n",
            bytes.len(),
            profile.name
        );
        body.extend_from_slice(head.as_bytes());
        body.extend_from_slice(&bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    Response::builder()
        .status(StatusCode::OK)
        .header(
            header::CONTENT_TYPE,
            format!("multipart/mixed; boundary={boundary}"),
        )
        .body(Body::from(body))
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_go_livepeer_push_paths() {
        let p = parse_push_path("abc/12.ts").expect("valid");
        assert_eq!(
            (p.manifest_id.as_str(), p.seq, p.extension),
            ("abc", 12, ".ts")
        );
        let p = parse_push_path("/stream/live/abc/7.mp4").expect("valid");
        assert_eq!(
            (p.manifest_id.as_str(), p.seq, p.format),
            ("abc", 7, SourceFormat::Mp4)
        );
        assert_eq!(
            parse_push_path("abc/x.ts").expect("valid").seq,
            0,
            "a non-number is 0"
        );
        assert_eq!(
            parse_push_path("abc/index.m3u8"),
            Err("ignoring file extension".to_string())
        );
        assert!(parse_push_path("no-file").is_err());
        assert!(parse_push_path("../etc/1.ts").is_err(), "ids cannot escape");
    }

    #[test]
    fn reads_transcode_configuration() {
        let mut headers = HeaderMap::new();
        assert_eq!(profiles_from_header(&headers).expect("default").len(), 4);
        headers.insert(
            "Livepeer-Transcode-Configuration",
            r#"{"presets":["P240p30fps16x9"],"profiles":[{"name":"tiny","width":160,"height":90,"bitrate":100000}]}"#
                .parse()
                .expect("header"),
        );
        let names: Vec<_> = profiles_from_header(&headers)
            .expect("valid")
            .into_iter()
            .map(|p| p.name)
            .collect();
        assert_eq!(names, ["P240p30fps16x9", "tiny"]);
        headers.insert(
            "Livepeer-Transcode-Configuration",
            "{not json".parse().expect("header"),
        );
        assert!(profiles_from_header(&headers).is_err());
        headers.insert(
            "Livepeer-Transcode-Configuration",
            r#"{"presets":["P9p"]}"#.parse().expect("header"),
        );
        assert!(profiles_from_header(&headers).is_err());
    }

    #[test]
    fn content_duration_defaults_and_validates() {
        let mut headers = HeaderMap::new();
        assert_eq!(content_duration(&headers), Ok(2000));
        headers.insert("Content-Duration", "1500".parse().expect("header"));
        assert_eq!(content_duration(&headers), Ok(1500));
        headers.insert("Content-Duration", "abc".parse().expect("header"));
        assert!(content_duration(&headers).is_err());
    }
}
