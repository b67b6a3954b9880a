//! The HTTP routes: the stream registry API and HLS playback, with CORS on everything.

use axum::body::Bytes;
use axum::extract::{Path, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use livefarm_profiles::{parse_json_values, preset, studio_default_ladder, studio_preset, Profile};
use livefarm_storage::keys;
use serde_json::Value;

use crate::error::ApiError;
use crate::playlist::Layout;
use crate::AppState;

/// `Content-Type` of playlists.
pub const PLAYLIST_TYPE: &str = "application/vnd.apple.mpegurl";
/// `Content-Type` of segments.
pub const SEGMENT_TYPE: &str = "video/mp2t";
/// Live playlists change every segment; players must not hold them longer.
const LIVE_CACHE: &str = "max-age=1";
/// Ended playlists and segments never change.
const FINAL_CACHE: &str = "max-age=3600";

/// Every route of the service.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/api/stream", post(create_stream).get(list_streams))
        .route("/api/stream/{id}", get(get_stream).delete(delete_stream))
        .route("/api/stream/{id}/end", post(end_stream))
        .route("/hls/{playback_id}/index.m3u8", get(hls_master))
        .route(
            "/hls/{playback_id}/recording.m3u8",
            get(hls_recording_master),
        )
        .route("/hls/{playback_id}/{rendition}/{file}", get(hls_rendition))
        .route("/stream/{file}", get(livepeer_master))
        .route("/stream/{id}/{file}", get(livepeer_media))
        .route("/stream/{id}/{rendition}/{file}", get(livepeer_segment))
        .fallback(not_found)
        .layer(middleware::from_fn(crate::metrics::track))
        .layer(middleware::from_fn(cors))
        .with_state(state)
}

async fn cors(request: Request, next: Next) -> Response {
    let mut response = if request.method() == Method::OPTIONS {
        let mut preflight = StatusCode::NO_CONTENT.into_response();
        let headers = preflight.headers_mut();
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static("GET, HEAD, POST, DELETE, OPTIONS"),
        );
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static("Content-Type, Authorization, Range"),
        );
        headers.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from_static("86400"),
        );
        preflight
    } else {
        next.run(request).await
    };
    response.headers_mut().insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    response
}

async fn not_found() -> ApiError {
    ApiError::NotFound("no such route".to_owned())
}

async fn create_stream(State(state): State<AppState>, body: Bytes) -> Result<Response, ApiError> {
    let value: Value = serde_json::from_slice(&body)
        .map_err(|e| ApiError::BadRequest(format!("body is not json: {e}")))?;
    let Value::Object(fields) = value else {
        return Err(ApiError::BadRequest(
            "body must be a json object".to_owned(),
        ));
    };
    let name = match fields.get("name") {
        Some(Value::String(name)) if !name.trim().is_empty() => name.trim().to_owned(),
        _ => {
            return Err(ApiError::BadRequest(
                "name must be a non-empty string".to_owned(),
            ))
        }
    };
    let profiles = match fields.get("profiles") {
        None | Some(Value::Null) => studio_default_ladder(),
        Some(value) => parse_profiles(value)?,
    };
    let record = match fields.get("record") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(record)) => *record,
        Some(_) => return Err(ApiError::BadRequest("record must be a boolean".to_owned())),
    };
    let stream = state.registry.create(name, profiles, record).await?;
    state.playlists.set_record(&stream.id, stream.record);
    Ok((StatusCode::CREATED, Json(stream)).into_response())
}

/// Profiles as a JSON array of profile objects or of preset names.
fn parse_profiles(value: &Value) -> Result<Vec<Profile>, ApiError> {
    let bad = |reason: String| ApiError::BadRequest(format!("invalid profiles: {reason}"));
    let Value::Array(entries) = value else {
        return Err(bad("expected an array".to_owned()));
    };
    let profiles = if entries.iter().all(Value::is_string) {
        entries
            .iter()
            .filter_map(Value::as_str)
            .map(|name| {
                preset(name)
                    .or_else(|| studio_preset(name))
                    .ok_or_else(|| bad(format!("unknown preset {name:?}")))
            })
            .collect::<Result<Vec<_>, _>>()?
    } else {
        parse_json_values(entries).map_err(|e| bad(e.to_string()))?
    };
    livefarm_profiles::validate_list(&profiles).map_err(|e| bad(e.to_string()))?;
    Ok(profiles)
}

async fn get_stream(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    match state.registry.get(&id).await? {
        Some(stream) => Ok(Json(stream).into_response()),
        None => Err(unknown_stream(&id)),
    }
}

async fn list_streams(State(state): State<AppState>) -> Result<Response, ApiError> {
    Ok(Json(state.registry.list().await?).into_response())
}

/// Forgets the stream: its key stops publishing, its playback id stops resolving, and its live
/// playlists end.
async fn delete_stream(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    if !state.registry.delete(&id).await? {
        return Err(unknown_stream(&id));
    }
    state.playlists.end_stream(&id);
    Ok(StatusCode::NO_CONTENT)
}

async fn end_stream(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let registered = state.registry.get(&id).await?.is_some();
    if !registered && !state.playlists.knows(&id) {
        return Err(unknown_stream(&id));
    }
    state.playlists.end_stream(&id);
    Ok(StatusCode::NO_CONTENT)
}

fn unknown_stream(id: &str) -> ApiError {
    ApiError::NotFound(format!("stream {id:?} not found"))
}

/// The stream id a playback id plays.
async fn playback_stream(state: &AppState, playback_id: &str) -> Result<String, ApiError> {
    match state.registry.by_playback_id(playback_id).await? {
        Some(stream) => Ok(stream.id),
        None => Err(ApiError::NotFound(format!(
            "playback id {playback_id:?} not found"
        ))),
    }
}

fn playlist(state: &AppState, stream_id: &str, text: String) -> Response {
    let cache = if state.playlists.is_ended(stream_id) {
        FINAL_CACHE
    } else {
        LIVE_CACHE
    };
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(PLAYLIST_TYPE),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    (headers, text).into_response()
}

fn master(state: &AppState, stream_id: &str, layout: Layout) -> Result<Response, ApiError> {
    let text = state
        .playlists
        .master(stream_id, layout)
        .ok_or_else(|| ApiError::NotFound(format!("stream {stream_id:?} has no segments yet")))?;
    Ok(playlist(state, stream_id, text))
}

fn media(
    state: &AppState,
    stream_id: &str,
    rendition: &str,
    layout: Layout,
    recording: bool,
) -> Result<Response, ApiError> {
    let text = state
        .playlists
        .media(stream_id, rendition, layout, recording)
        .ok_or_else(|| {
            ApiError::NotFound(format!(
                "rendition {rendition:?} of stream {stream_id:?} not found"
            ))
        })?;
    Ok(playlist(state, stream_id, text))
}

async fn segment(
    state: &AppState,
    stream_id: &str,
    rendition: &str,
    file: &str,
) -> Result<Response, ApiError> {
    let seq = file
        .strip_suffix(".ts")
        .and_then(|n| n.parse::<u64>().ok())
        .filter(|_| state.playlists.has_rendition(stream_id, rendition))
        .ok_or_else(|| ApiError::NotFound(format!("segment {rendition}/{file} not found")))?;
    let bytes = state
        .storage
        .get(&keys::rendition_segment(stream_id, rendition, seq, "ts"))
        .await?;
    let mut headers = HeaderMap::new();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(SEGMENT_TYPE));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(FINAL_CACHE));
    Ok((headers, bytes).into_response())
}

async fn hls_master(
    State(state): State<AppState>,
    Path(playback_id): Path<String>,
) -> Result<Response, ApiError> {
    let stream_id = playback_stream(&state, &playback_id).await?;
    master(&state, &stream_id, Layout::Hls)
}

async fn hls_recording_master(
    State(state): State<AppState>,
    Path(playback_id): Path<String>,
) -> Result<Response, ApiError> {
    let stream_id = playback_stream(&state, &playback_id).await?;
    let text = state
        .playlists
        .recording_master(&stream_id)
        .ok_or_else(|| {
            ApiError::NotFound(format!(
                "stream {stream_id:?} has no recording (record is off or no segments yet)"
            ))
        })?;
    Ok(playlist(&state, &stream_id, text))
}

async fn hls_rendition(
    State(state): State<AppState>,
    Path((playback_id, rendition, file)): Path<(String, String, String)>,
) -> Result<Response, ApiError> {
    let stream_id = playback_stream(&state, &playback_id).await?;
    match file.as_str() {
        "index.m3u8" => media(&state, &stream_id, &rendition, Layout::Hls, false),
        "recording.m3u8" => media(&state, &stream_id, &rendition, Layout::Hls, true),
        _ => segment(&state, &stream_id, &rendition, &file).await,
    }
}

async fn livepeer_master(
    State(state): State<AppState>,
    Path(file): Path<String>,
) -> Result<Response, ApiError> {
    let stream_id = file
        .strip_suffix(".m3u8")
        .ok_or_else(|| ApiError::NotFound(format!("{file:?} is not a playlist")))?;
    master(&state, stream_id, Layout::Livepeer)
}

async fn livepeer_media(
    State(state): State<AppState>,
    Path((stream_id, file)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let rendition = file
        .strip_suffix(".m3u8")
        .ok_or_else(|| ApiError::NotFound(format!("{file:?} is not a playlist")))?;
    media(&state, &stream_id, rendition, Layout::Livepeer, false)
}

async fn livepeer_segment(
    State(state): State<AppState>,
    Path((stream_id, rendition, file)): Path<(String, String, String)>,
) -> Result<Response, ApiError> {
    segment(&state, &stream_id, &rendition, &file).await
}
