//! Playback info, `GET /api/playback/{id}` (§4): public, no key. Resolves `{id}` as Studio's
//! `getResourceByPlaybackId` does, in [`playback_info`]: a live stream's playback id (not
//! suspended, not deleted) first; recordings (session ids) come next.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use crate::studio::error::{ErrorBody, StudioError};
use crate::studio::objects::{PlaybackPolicy, StreamSpec};
use crate::studio::{base_url, StudioPath};
use crate::AppState;
use livefarm_store::{RecordingStatus, SessionRecord};

/// What `{id}` turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum PlaybackType {
    Live,
    Vod,
    Recording,
}

/// Human-readable name of a source (a closed enum in the SDKs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
pub enum Hrn {
    #[serde(rename = "HLS (TS)")]
    Hls,
    #[serde(rename = "MP4")]
    Mp4,
    #[serde(rename = "WebRTC (H264)")]
    WebRtc,
}

/// Media type of a source (a closed enum in the SDKs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
pub enum SourceType {
    #[serde(rename = "html5/application/vnd.apple.mpegurl")]
    Hls,
    #[serde(rename = "html5/video/mp4")]
    Mp4,
    #[serde(rename = "html5/video/h264")]
    WebRtc,
}

/// One way to play the content.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct PlaybackSource {
    pub hrn: Hrn,
    #[serde(rename = "type")]
    pub kind: SourceType,
    pub url: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub size: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub width: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub height: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub bitrate: Option<u64>,
}

impl PlaybackSource {
    /// A source with only its kind and URL.
    pub fn new(hrn: Hrn, kind: SourceType, url: String) -> Self {
        PlaybackSource {
            hrn,
            kind,
            url,
            size: None,
            width: None,
            height: None,
            bitrate: None,
        }
    }
}

/// `meta` of the playback info.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PlaybackMeta {
    /// Live streams only: 1 while a publisher is live, else 0.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub live: Option<u8>,
    /// Live streams with a policy only.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub playback_policy: Option<PlaybackPolicy>,
    pub source: Vec<PlaybackSource>,
}

/// The playback info (§4.2).
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct PlaybackInfo {
    #[serde(rename = "type")]
    pub kind: PlaybackType,
    pub meta: PlaybackMeta,
}

/// A session's recording (§4.3 `recording`), looked up by the session id.
async fn recording_playback_info(
    state: &AppState,
    base: &str,
    id: &str,
) -> Result<Option<PlaybackInfo>, StudioError> {
    if livefarm_storage::keys::check_id(id).is_err() {
        return Ok(None);
    }
    let session = state.store.session_by_id(id).await?;
    Ok(session.and_then(|session| recording_playback(&session, base)))
}

/// The playback info of `session`'s recording (§4.3 `recording`): one HLS source under
/// `base`; `None` unless the recording is ready (the route answers 404 `No playback URL found
/// for <id>`).
pub fn recording_playback(session: &SessionRecord, base: &str) -> Option<PlaybackInfo> {
    if !session.record || session.recording_status != RecordingStatus::Ready {
        return None;
    }
    Some(PlaybackInfo {
        kind: PlaybackType::Recording,
        meta: PlaybackMeta {
            live: None,
            playback_policy: None,
            source: vec![PlaybackSource::new(
                Hrn::Hls,
                SourceType::Hls,
                crate::recording::recording_url(&session.id, base),
            )],
        },
    })
}

/// A live stream's playback info (§4.3): HLS, then WebRTC, under `base`.
async fn live_playback_info(
    state: &AppState,
    base: &str,
    id: &str,
) -> Result<Option<PlaybackInfo>, StudioError> {
    let Some(stream) = state.store.stream_by_playback_id(id).await? else {
        return Ok(None);
    };
    if stream.suspended {
        return Ok(None);
    }
    let policy = StreamSpec::of(&stream).and_then(|spec| spec.playback_policy);
    let pid = &stream.playback_id;
    Ok(Some(PlaybackInfo {
        kind: PlaybackType::Live,
        meta: PlaybackMeta {
            live: Some(u8::from(stream.is_active)),
            playback_policy: policy,
            source: vec![
                PlaybackSource::new(
                    Hrn::Hls,
                    SourceType::Hls,
                    format!("{base}/hls/{pid}/index.m3u8"),
                ),
                PlaybackSource::new(
                    Hrn::WebRtc,
                    SourceType::WebRtc,
                    format!("{base}/webrtc/{pid}"),
                ),
            ],
        },
    }))
}

/// What `{id}` plays, in Studio's resolution order (§4.1), or `None`. `base` is the public
/// base URL of the URLs handed out.
///
/// Recordings (`type: "recording"` for a session id) are resolved here too, after streams.
pub async fn playback_info(
    state: &AppState,
    base: &str,
    id: &str,
) -> Result<Option<PlaybackInfo>, StudioError> {
    if let Some(info) = live_playback_info(state, base, id).await? {
        return Ok(Some(info));
    }
    recording_playback_info(state, base, id).await
}

/// Playback info of a playback id (public).
#[utoipa::path(
    get,
    path = "/api/playback/{id}",
    tag = "playback",
    security(()),
    params(("id" = String, Path, description = "A stream's playback id")),
    responses(
        (status = 200, description = "How to play it", body = PlaybackInfo),
        (status = 404, description = "No playback URL found for <id> (unknown, suspended or deleted)", body = ErrorBody),
    )
)]
pub(crate) async fn get_playback(
    State(state): State<AppState>,
    headers: HeaderMap,
    StudioPath(id): StudioPath<String>,
) -> Result<Json<PlaybackInfo>, StudioError> {
    let base = base_url(&state, &headers);
    playback_info(&state, &base, &id)
        .await?
        .map(Json)
        .ok_or_else(|| StudioError::not_found_with(format!("No playback URL found for {id}")))
}
