//! Session routes (Studio §3): every publish is a session; recorded ones carry
//! `recordingStatus`, `recordingUrl` (HLS of the session) and `mp4Url`.

use axum::extract::State;
use axum::http::{HeaderMap, Uri};
use axum::response::Response;
use axum::Json;
use livefarm_store::SessionFilter;
use serde_json::Value;

use crate::recording::session_json;
use crate::studio::body::Params;
use crate::studio::error::{ErrorBody, StudioError};
use crate::studio::lists::{list_response, page_of};
use crate::studio::streams::truthy;
use crate::studio::{base_url, Caller, StudioPath};
use crate::AppState;

/// `record=true|1` / `false|0` (Studio); anything else means both.
fn record_filter(value: Option<&str>) -> Option<bool> {
    match value {
        Some("true" | "1") => Some(true),
        Some("false" | "0") => Some(false),
        _ => None,
    }
}

async fn sessions_page(
    caller: &Caller,
    state: &AppState,
    params: &Params,
    uri: &Uri,
    headers: &HeaderMap,
    filter: SessionFilter,
) -> Result<Response, StudioError> {
    let page = page_of(params);
    let (sessions, next) = state
        .store
        .list_sessions(&caller.tenant_id, &filter, &page)
        .await?;
    let base = base_url(state, headers);
    let items: Vec<Value> = sessions.iter().map(|s| session_json(s, &base)).collect();
    let total = if truthy(params.get("count")) {
        Some(
            state
                .store
                .count_sessions(&caller.tenant_id, &filter)
                .await?,
        )
    } else {
        None
    };
    Ok(list_response(
        state, headers, uri, params, items, next, total,
    ))
}

/// The caller's sessions, newest first.
#[utoipa::path(get, path = "/api/session", tag = "session",
    params(
        ("limit" = Option<u32>, Query, description = "Page size: default 20, at most 1000"),
        ("cursor" = Option<String>, Query, description = "From the previous page's Link header"),
        ("count" = Option<String>, Query, description = "Truthy: add X-Total-Count"),
        ("record" = Option<String>, Query, description = "true/1: recorded only; false/0: unrecorded only"),
    ),
    responses(
        (status = 200, description = "One page of sessions", body = Vec<Object>),
        (status = 401, description = "No or unknown API key", body = ErrorBody),
    ))]
pub(crate) async fn list_sessions(
    caller: Caller,
    State(state): State<AppState>,
    params: Params,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, StudioError> {
    let filter = SessionFilter {
        record: record_filter(params.get("record")),
        ..SessionFilter::default()
    };
    sessions_page(&caller, &state, &params, &uri, &headers, filter).await
}

/// One session.
#[utoipa::path(get, path = "/api/session/{id}", tag = "session",
    params(("id" = String, Path, description = "Session id")),
    responses(
        (status = 200, description = "The session", body = Object),
        (status = 404, description = "Unknown or another tenant's", body = ErrorBody),
    ))]
pub(crate) async fn get_session(
    caller: Caller,
    State(state): State<AppState>,
    StudioPath(id): StudioPath<String>,
    headers: HeaderMap,
) -> Result<Json<Value>, StudioError> {
    let session = state
        .store
        .session(&caller.tenant_id, &id)
        .await?
        .ok_or_else(StudioError::not_found)?;
    Ok(Json(session_json(&session, &base_url(&state, &headers))))
}

/// A stream's sessions that have segments (SDK `session.getRecorded(parentId, record)`).
#[utoipa::path(get, path = "/api/stream/{id}/sessions", tag = "session",
    params(
        ("id" = String, Path, description = "The parent stream's id"),
        ("record" = Option<String>, Query, description = "true/1: recorded only; false/0: unrecorded only"),
        ("limit" = Option<u32>, Query, description = "Page size: default 20, at most 1000"),
        ("cursor" = Option<String>, Query, description = "From the previous page's Link header"),
    ),
    responses(
        (status = 200, description = "One page of sessions", body = Vec<Object>),
        (status = 404, description = "Unknown or another tenant's stream", body = ErrorBody),
    ))]
pub(crate) async fn stream_sessions(
    caller: Caller,
    State(state): State<AppState>,
    StudioPath(id): StudioPath<String>,
    params: Params,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, StudioError> {
    if state.store.stream(&caller.tenant_id, &id).await?.is_none() {
        return Err(StudioError::not_found());
    }
    let filter = SessionFilter {
        stream_id: Some(id),
        record: record_filter(params.get("record")),
        with_segments: true,
    };
    sessions_page(&caller, &state, &params, &uri, &headers, filter).await
}
