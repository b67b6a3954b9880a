//! The HTTP router (built from the route table of [`crate::studio::routes`]) and HLS
//! playback, with CORS on everything.

use axum::extract::{Path, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::Router;
use livefarm_storage::keys;

use crate::error::ApiError;
use crate::playlist::Layout;
use crate::studio::error::ErrorBody;
use crate::studio::StudioError;
use crate::AppState;

/// `Content-Type` of playlists.
pub const PLAYLIST_TYPE: &str = "application/vnd.apple.mpegurl";
/// `Content-Type` of segments.
pub const SEGMENT_TYPE: &str = "video/mp2t";
/// Live playlists change every segment; players must not hold them longer.
const LIVE_CACHE: &str = "max-age=1";
/// Ended playlists and segments never change.
const FINAL_CACHE: &str = "max-age=3600";

/// Every route of the service (the table in [`crate::studio::routes`]), with CORS and
/// request metrics on each; an unknown path is a 404 and a known path with another method a
/// 405, both with Studio's error body.
pub fn router(state: AppState) -> Router {
    let mut router = Router::new();
    for route in crate::studio::routes::table() {
        router = router.route(route.path, route.handler);
    }
    router
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
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
            HeaderValue::from_static("GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"),
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

async fn not_found() -> StudioError {
    StudioError::not_found()
}

async fn method_not_allowed() -> StudioError {
    StudioError::method_not_allowed()
}

/// The stream id a playback id plays; suspended and deleted streams play nothing.
async fn playback_stream(state: &AppState, playback_id: &str) -> Result<String, ApiError> {
    match state.store.stream_by_playback_id(playback_id).await? {
        Some(stream) if !stream.suspended => Ok(stream.id),
        _ => Err(ApiError::NotFound(format!(
            "playback id {playback_id:?} not found"
        ))),
    }
}

/// go-livepeer's layout names the stream id: a stream the store knows plays only while it is
/// neither suspended nor deleted; one it never had (published without a registered stream)
/// plays as before.
async fn check_playable(state: &AppState, stream_id: &str) -> Result<(), ApiError> {
    match state.store.stream_playable(stream_id).await? {
        Some(false) => Err(ApiError::NotFound(format!(
            "stream {stream_id:?} not found"
        ))),
        _ => Ok(()),
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

#[utoipa::path(
    get,
    path = "/hls/{playback_id}/index.m3u8",
    tag = "hls",
    security(()),
    params(("playback_id" = String, Path, description = "The stream's playback id")),
    responses(
        (status = 200, description = "The live master playlist", content_type = "application/vnd.apple.mpegurl", body = String),
        (status = 404, description = "Unknown, suspended or deleted stream, or nothing to play yet", body = ErrorBody),
    )
)]
pub(crate) async fn hls_master(
    State(state): State<AppState>,
    Path(playback_id): Path<String>,
) -> Result<Response, ApiError> {
    let stream_id = playback_stream(&state, &playback_id).await?;
    master(&state, &stream_id, Layout::Hls)
}

#[utoipa::path(
    get,
    path = "/hls/{playback_id}/recording.m3u8",
    tag = "hls",
    security(()),
    params(("playback_id" = String, Path, description = "The stream's playback id")),
    responses(
        (status = 200, description = "The master playlist of the whole recording (streams with record)", content_type = "application/vnd.apple.mpegurl", body = String),
        (status = 404, description = "Unknown, suspended or deleted stream, or nothing to play yet", body = ErrorBody),
    )
)]
pub(crate) async fn hls_recording_master(
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

#[utoipa::path(
    get,
    path = "/hls/{playback_id}/{rendition}/{file}",
    tag = "hls",
    security(()),
    params(("playback_id" = String, Path, description = "The stream's playback id"), ("rendition" = String, Path, description = "A rendition name, or `source`"), ("file" = String, Path, description = "`index.m3u8` (live), `recording.m3u8` (whole recording) or `<seq>.ts`")),
    responses(
        (status = 200, description = "A media playlist or an MPEG-TS segment", content_type = "application/vnd.apple.mpegurl", body = String),
        (status = 404, description = "Unknown, suspended or deleted stream, or nothing to play yet", body = ErrorBody),
    )
)]
pub(crate) async fn hls_rendition(
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

#[utoipa::path(
    get,
    path = "/stream/{file}",
    tag = "hls",
    security(()),
    params(("file" = String, Path, description = "`<stream id>.m3u8`")),
    responses(
        (status = 200, description = "The live master playlist (go-livepeer layout)", content_type = "application/vnd.apple.mpegurl", body = String),
        (status = 404, description = "Unknown, suspended or deleted stream, or nothing to play yet", body = ErrorBody),
    )
)]
pub(crate) async fn livepeer_master(
    State(state): State<AppState>,
    Path(file): Path<String>,
) -> Result<Response, ApiError> {
    let stream_id = file
        .strip_suffix(".m3u8")
        .ok_or_else(|| ApiError::NotFound(format!("{file:?} is not a playlist")))?;
    check_playable(&state, stream_id).await?;
    master(&state, stream_id, Layout::Livepeer)
}

#[utoipa::path(
    get,
    path = "/stream/{id}/{file}",
    tag = "hls",
    security(()),
    params(("id" = String, Path, description = "Stream id"), ("file" = String, Path, description = "`<rendition>.m3u8`")),
    responses(
        (status = 200, description = "A live media playlist (go-livepeer layout)", content_type = "application/vnd.apple.mpegurl", body = String),
        (status = 404, description = "Unknown, suspended or deleted stream, or nothing to play yet", body = ErrorBody),
    )
)]
pub(crate) async fn livepeer_media(
    State(state): State<AppState>,
    Path((stream_id, file)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let rendition = file
        .strip_suffix(".m3u8")
        .ok_or_else(|| ApiError::NotFound(format!("{file:?} is not a playlist")))?;
    check_playable(&state, &stream_id).await?;
    media(&state, &stream_id, rendition, Layout::Livepeer, false)
}

#[utoipa::path(
    get,
    path = "/stream/{id}/{rendition}/{file}",
    tag = "hls",
    security(()),
    params(("id" = String, Path, description = "Stream id"), ("rendition" = String, Path, description = "A rendition name, or `source`"), ("file" = String, Path, description = "`<seq>.ts`")),
    responses(
        (status = 200, description = "An MPEG-TS segment (go-livepeer layout)", content_type = "video/mp2t", body = String),
        (status = 404, description = "Unknown, suspended or deleted stream, or nothing to play yet", body = ErrorBody),
    )
)]
pub(crate) async fn livepeer_segment(
    State(state): State<AppState>,
    Path((stream_id, rendition, file)): Path<(String, String, String)>,
) -> Result<Response, ApiError> {
    check_playable(&state, &stream_id).await?;
    segment(&state, &stream_id, &rendition, &file).await
}
