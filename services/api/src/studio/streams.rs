//! `/api/stream` (§2): create, get, list (with Studio's `limit`, `cursor`, `count` and
//! `filters`, §1.6), update, suspend, delete and terminate, scoped to the calling tenant.
//!
//! Terminate, suspend and delete also put a [`StreamControl`] on the bus so that every ingest
//! replica drops the stream's live publisher at once.

use std::collections::HashSet;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use livefarm_bus::Headers;
use livefarm_jobs::{StreamControl, StreamControlAction, STREAM_CONTROL, STREAM_ID_HEADER};
use livefarm_store::{Bounds, NewStream, StreamFilter, StreamPatch, Terminate};
use serde_json::{Map, Value};
use tracing::{info, warn};

use crate::studio::auth::Caller;
use crate::studio::body::{Params, StudioJson};
use crate::studio::error::{ErrorBody, StudioError};
use crate::studio::lists::{list_response, page_of};
use crate::studio::objects::{
    default_ladder, CreatorId, FfmpegProfile, Multistream, NewStreamPayload, PlaybackPolicy,
    PlaybackPolicyType, Stream, StreamPatchPayload, StreamSpec, SuspendPayload, TranscodeProfile,
};
use crate::studio::StudioPath;
use crate::AppState;

/// Default page size of lists (Studio's).
pub const DEFAULT_LIMIT: u32 = 20;
/// Largest page size; larger asks are clamped to it.
pub const MAX_LIMIT: u32 = livefarm_store::MAX_PAGE;
/// Shortest time between two terminates of one stream (Studio's `terminateDelay`), ms.
pub const TERMINATE_INTERVAL_MS: i64 = 5_000;
/// Largest `userTags`, as JSON characters.
pub const MAX_USER_TAGS_CHARS: usize = 2048;
/// Longest profile name.
const MAX_PROFILE_NAME: usize = 500;
/// Longest stream name, bytes (the store's limit).
const MAX_STREAM_NAME: usize = 500;

fn unprocessable(field: &str, reason: &str) -> StudioError {
    StudioError::unprocessable(format!("{field}: {reason}"))
}

fn check_stream_name(name: &str) -> Result<(), StudioError> {
    if name.trim().is_empty() || name.len() > MAX_STREAM_NAME {
        return Err(unprocessable(
            "name",
            "must be 1 to 500 bytes and not blank",
        ));
    }
    Ok(())
}

fn check_range(field: String, value: Option<i64>, min: i64, max: i64) -> Result<(), StudioError> {
    match value {
        Some(v) if v < min || v > max => Err(unprocessable(
            &field,
            &format!("{v} is out of range ({min} to {max})"),
        )),
        _ => Ok(()),
    }
}

/// A live ladder: the schema's ranges (422) and Studio's naming rules (400).
fn check_profiles(profiles: &[FfmpegProfile]) -> Result<(), StudioError> {
    let mut names = HashSet::new();
    for (i, p) in profiles.iter().enumerate() {
        let at = |field: &str| format!("profiles[{i}].{field}");
        if p.name.is_empty() || p.name.chars().count() > MAX_PROFILE_NAME {
            return Err(unprocessable(&at("name"), "must be 1 to 500 characters"));
        }
        check_range(at("width"), Some(p.width), 128, i64::MAX)?;
        check_range(at("height"), Some(p.height), 128, i64::MAX)?;
        check_range(at("bitrate"), Some(p.bitrate), 400, i64::MAX)?;
        check_range(at("fps"), Some(p.fps), 0, i64::MAX)?;
        check_range(at("fpsDen"), p.fps_den, 1, i64::MAX)?;
        check_range(at("quality"), p.quality, 0, 44)?;
        if p.name == "source" {
            return Err(StudioError::bad_request(
                "profile cannot be named \"source\"",
            ));
        }
        if !names.insert(p.name.as_str()) {
            return Err(StudioError::bad_request(format!(
                "duplicate profile name {:?}",
                p.name
            )));
        }
    }
    Ok(())
}

fn check_recording_profiles(profiles: &[TranscodeProfile]) -> Result<(), StudioError> {
    for (i, p) in profiles.iter().enumerate() {
        let at = |field: &str| format!("recordingSpec.profiles[{i}].{field}");
        check_range(at("bitrate"), Some(p.bitrate), 400, i64::MAX)?;
        check_range(at("width"), p.width, 128, i64::MAX)?;
        check_range(at("height"), p.height, 128, i64::MAX)?;
        check_range(at("fps"), p.fps, 0, i64::MAX)?;
        check_range(at("fpsDen"), p.fps_den, 1, i64::MAX)?;
        check_range(at("quality"), p.quality, 0, 44)?;
    }
    Ok(())
}

/// `userTags`: values are strings, numbers or arrays of them; at most 2048 characters.
fn check_user_tags(tags: &Map<String, Value>) -> Result<(), StudioError> {
    let scalar = |v: &Value| v.is_string() || v.is_number();
    for (key, value) in tags {
        let ok = match value {
            Value::Array(items) => items.iter().all(scalar),
            other => scalar(other),
        };
        if !ok {
            return Err(unprocessable(
                &format!("userTags.{key}"),
                "must be a string, a number or an array of them",
            ));
        }
    }
    let chars = Value::Object(tags.clone()).to_string().chars().count();
    if chars > MAX_USER_TAGS_CHARS {
        return Err(StudioError::bad_request(format!(
            "userTags object is too large. Max size is {MAX_USER_TAGS_CHARS} characters"
        )));
    }
    Ok(())
}

/// Multistream targets against the stream's ladder (§2.3).
fn check_multistream(ms: &Multistream, profiles: &[FfmpegProfile]) -> Result<(), StudioError> {
    let mut seen = HashSet::new();
    for (i, target) in ms.targets.iter().enumerate() {
        if !(target.profile == "source" || profiles.iter().any(|p| p.name == target.profile)) {
            let available: Vec<&str> = std::iter::once("source")
                .chain(profiles.iter().map(|p| p.name.as_str()))
                .collect();
            return Err(StudioError::bad_request(format!(
                "multistream target profile not found: {:?}. available: {available:?}",
                target.profile
            )));
        }
        match (&target.id, &target.spec) {
            (Some(_), None) | (None, Some(_)) => {}
            _ => {
                return Err(StudioError::bad_request(
                    "multistream target must have either an \"id\" or a \"spec\"",
                ))
            }
        }
        if let Some(spec) = &target.spec {
            let url = spec.url.to_ascii_lowercase();
            if !["rtmp://", "rtmps://", "srt://"]
                .iter()
                .any(|scheme| url.starts_with(scheme) && url.len() > scheme.len())
            {
                return Err(unprocessable(
                    &format!("multistream.targets[{i}].spec.url"),
                    "must be an rtmp://, rtmps:// or srt:// URL",
                ));
            }
        }
        if let Some(id) = &target.id {
            // multistream target resources come with part 2; until then no id exists
            return Err(StudioError::bad_request(format!(
                "multistream target not found: {id:?}"
            )));
        }
        let key = (
            target.profile.as_str(),
            target.spec.as_ref().map(|s| s.url.as_str()),
        );
        if !seen.insert(key) {
            return Err(StudioError::bad_request(
                "multistream target {id,profile} must be unique",
            ));
        }
    }
    Ok(())
}

/// A playback policy (§7.1): a `webhook` policy names its webhook.
fn check_policy(policy: &PlaybackPolicy) -> Result<(), StudioError> {
    if policy.kind == PlaybackPolicyType::Webhook && policy.webhook_id.is_none() {
        return Err(StudioError::bad_request("webhook undefined not found"));
    }
    Ok(())
}

fn control_headers(stream_id: &str) -> Headers {
    let mut headers = Headers::new();
    headers.insert(STREAM_ID_HEADER.to_owned(), stream_id.to_owned());
    headers
}

/// Asks every ingest replica to drop the stream's live publisher.
pub(crate) async fn send_control(
    state: &AppState,
    stream_id: &str,
    action: StreamControlAction,
) -> Result<(), StudioError> {
    let control = StreamControl {
        stream_id: stream_id.to_owned(),
        action,
    };
    let payload = serde_json::to_vec(&control).map_err(|error| {
        warn!(%error, "stream control does not serialize");
        StudioError::internal()
    })?;
    state
        .bus
        .publish(STREAM_CONTROL, &payload, &control_headers(stream_id))
        .await
        .map_err(|error| {
            warn!(%error, stream_id, "cannot send stream control");
            StudioError::unavailable("cannot reach ingest to stop the stream, try again")
        })?;
    Ok(())
}

fn created(stream: Stream) -> Response {
    (StatusCode::CREATED, Json(stream)).into_response()
}

/// Creates a stream.
#[utoipa::path(
    post,
    path = "/api/stream",
    tag = "stream",
    request_body = NewStreamPayload,
    responses(
        (status = 201, description = "The stream", body = Stream),
        (status = 400, description = "Refused (profiles, multistream, userTags, recordingSpec)", body = ErrorBody),
        (status = 401, description = "No or unknown API key", body = ErrorBody),
        (status = 413, description = "Body over 64 KiB", body = ErrorBody),
        (status = 422, description = "Body does not match the schema", body = ErrorBody),
    )
)]
pub(crate) async fn create_stream(
    caller: Caller,
    State(state): State<AppState>,
    StudioJson(body): StudioJson<NewStreamPayload>,
) -> Result<Response, StudioError> {
    check_stream_name(&body.name)?;
    let profiles = body.profiles.unwrap_or_else(default_ladder);
    check_profiles(&profiles)?;
    let record = body.record.unwrap_or(false);
    if let Some(spec) = &body.recording_spec {
        if !record {
            return Err(StudioError::bad_request(
                "recordingSpec is only supported with record=true",
            ));
        }
        check_recording_profiles(spec.profiles.as_deref().unwrap_or_default())?;
    }
    let multistream = body.multistream.unwrap_or_default();
    check_multistream(&multistream, &profiles)?;
    if let Some(policy) = &body.playback_policy {
        check_policy(policy)?;
    }
    if let Some(tags) = &body.user_tags {
        check_user_tags(tags)?;
    }
    let spec = StreamSpec {
        profiles,
        recording_spec: body.recording_spec,
        multistream,
        playback_policy: body.playback_policy,
        creator_id: body.creator_id.map(CreatorId::from),
        user_tags: body.user_tags,
    };
    let stored = state
        .store
        .create_stream(
            &caller.tenant_id,
            NewStream {
                name: body.name,
                record,
                spec: spec.to_map(),
                created_by_key_name: Some(caller.key_name.clone()),
            },
        )
        .await?;
    state.playlists.set_record(&stored.id, stored.record);
    info!(
        stream_id = stored.id,
        tenant_id = caller.tenant_id,
        "stream created"
    );
    Ok(created(Stream::of(&stored, true)))
}

/// Gets one of the caller's streams.
#[utoipa::path(
    get,
    path = "/api/stream/{id}",
    tag = "stream",
    params(("id" = String, Path, description = "Stream id")),
    responses(
        (status = 200, description = "The stream", body = Stream),
        (status = 401, description = "No or unknown API key", body = ErrorBody),
        (status = 404, description = "Unknown, deleted or another tenant's", body = ErrorBody),
    )
)]
pub(crate) async fn get_stream(
    caller: Caller,
    State(state): State<AppState>,
    StudioPath(id): StudioPath<String>,
) -> Result<Json<Stream>, StudioError> {
    let stream = state
        .store
        .stream(&caller.tenant_id, &id)
        .await?
        .ok_or_else(StudioError::not_found)?;
    Ok(Json(Stream::of(&stream, true)))
}

/// The page size Studio reads from `limit`: 20 when absent, not a number or below 1; at most
/// [`MAX_LIMIT`].
pub(crate) fn parse_limit(value: Option<&str>) -> u32 {
    match value.map(|v| v.trim().parse::<i128>()) {
        Some(Ok(n)) if n >= 1 => u32::try_from(n.min(i128::from(MAX_LIMIT))).unwrap_or(MAX_LIMIT),
        _ => DEFAULT_LIMIT,
    }
}

/// Whether a query flag such as `count` is set (Studio: any truthy value).
pub(crate) fn truthy(value: Option<&str>) -> bool {
    value.is_some_and(|v| !matches!(v, "" | "0" | "false"))
}

fn filter_error(reason: impl std::fmt::Display) -> StudioError {
    StudioError::bad_request(format!("error parsing filters: Error: {reason}"))
}

fn bool_filter(field: &str, value: &Value) -> Result<bool, StudioError> {
    value
        .as_bool()
        .ok_or_else(|| filter_error(format!("expected boolean value for field {field:?}")))
}

fn string_filter(field: &str, value: &Value) -> Result<String, StudioError> {
    match value {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        _ => Err(filter_error(format!(
            "expected string value for field {field:?}"
        ))),
    }
}

/// `n` or `{"gt"|"gte"|"lt"|"lte"|"eq": n, ...}` on a numeric field.
fn bounds_filter(field: &str, value: &Value, bounds: &mut Bounds) -> Result<(), StudioError> {
    let number = |v: &Value| {
        v.as_i64()
            .or_else(|| v.as_f64().map(|f| f as i64))
            .ok_or_else(|| filter_error(format!("expected numeric value for field {field:?}")))
    };
    match value {
        Value::Object(comparisons) => {
            for (op, v) in comparisons {
                let n = number(v)?;
                match op.as_str() {
                    "gt" => bounds.gt = Some(n),
                    "gte" => bounds.gte = Some(n),
                    "lt" => bounds.lt = Some(n),
                    "lte" => bounds.lte = Some(n),
                    "eq" => {
                        bounds.gte = Some(n);
                        bounds.lte = Some(n);
                    }
                    other => return Err(filter_error(format!("unknown comparison: {other:?}"))),
                }
            }
            Ok(())
        }
        other => {
            let n = number(other)?;
            bounds.gte = Some(n);
            bounds.lte = Some(n);
            Ok(())
        }
    }
}

/// Studio's `filters`: a JSON array of `{"id": <field>, "value": <v>}` (§1.6).
pub(crate) fn parse_filters(text: &str) -> Result<StreamFilter, StudioError> {
    let entries: Vec<Value> = serde_json::from_str(text).map_err(filter_error)?;
    let mut filter = StreamFilter::default();
    for entry in &entries {
        let field = entry
            .get("id")
            .and_then(Value::as_str)
            .ok_or_else(|| filter_error("each filter needs a string \"id\""))?;
        let value = entry
            .get("value")
            .ok_or_else(|| filter_error(format!("missing value for field {field:?}")))?;
        match field {
            "id" => filter.id = Some(string_filter(field, value)?),
            "playbackId" => filter.playback_id = Some(string_filter(field, value)?),
            "name" => filter.name_contains = Some(string_filter(field, value)?),
            "isActive" => filter.is_active = Some(bool_filter(field, value)?),
            "record" => filter.record = Some(bool_filter(field, value)?),
            "suspended" => filter.suspended = Some(bool_filter(field, value)?),
            "createdAt" => bounds_filter(field, value, &mut filter.created_at)?,
            "lastSeen" => bounds_filter(field, value, &mut filter.last_seen)?,
            other => return Err(filter_error(format!("unknown field: {other:?}"))),
        }
    }
    Ok(filter)
}

/// Lists the caller's streams, newest first.
#[utoipa::path(
    get,
    path = "/api/stream",
    tag = "stream",
    params(
        ("streamsonly" = Option<String>, Query, description = "Accepted; every stream is a parent stream"),
        ("limit" = Option<u32>, Query, description = "Page size: default 20, at most 1000 (larger is clamped)"),
        ("cursor" = Option<String>, Query, description = "Where the previous page ended (from its Link header)"),
        ("count" = Option<String>, Query, description = "Truthy: add X-Total-Count"),
        ("filters" = Option<String>, Query, description = "JSON array of {id, value}: id, playbackId, name (contains), isActive, record, suspended (booleans), createdAt, lastSeen (number or {gt,gte,lt,lte,eq})"),
    ),
    responses(
        (status = 200, description = "One page of streams; `Link: <...>; rel=\"next\"` when more follow", body = Vec<Stream>,
            headers(("Link" = String, description = "The next page"), ("X-Total-Count" = String, description = "With count"))),
        (status = 400, description = "Bad filters or cursor", body = ErrorBody),
        (status = 401, description = "No or unknown API key", body = ErrorBody),
    )
)]
pub(crate) async fn list_streams(
    caller: Caller,
    State(state): State<AppState>,
    params: Params,
    uri: Uri,
    request_headers: HeaderMap,
) -> Result<Response, StudioError> {
    let filter = match params.get("filters") {
        Some(text) if !text.trim().is_empty() => parse_filters(text)?,
        _ => StreamFilter::default(),
    };
    let page = page_of(&params);
    let (streams, next) = state
        .store
        .list_streams_filtered(&caller.tenant_id, &filter, &page)
        .await?;
    let body: Vec<Stream> = streams.iter().map(|s| Stream::of(s, true)).collect();
    let total = if truthy(params.get("count")) {
        Some(
            state
                .store
                .count_streams_filtered(&caller.tenant_id, &filter)
                .await?,
        )
    } else {
        None
    };
    Ok(list_response(
        &state,
        &request_headers,
        &uri,
        &params,
        body,
        next,
        total,
    ))
}

/// Updates a stream; absent fields stay as they are.
#[utoipa::path(
    patch,
    path = "/api/stream/{id}",
    tag = "stream",
    params(("id" = String, Path, description = "Stream id")),
    request_body = StreamPatchPayload,
    responses(
        (status = 204, description = "Updated"),
        (status = 400, description = "Refused (record or profiles while active, recordingSpec without record, ...)", body = ErrorBody),
        (status = 401, description = "No or unknown API key", body = ErrorBody),
        (status = 404, description = "Unknown, deleted or another tenant's", body = ErrorBody),
        (status = 413, description = "Body over 64 KiB", body = ErrorBody),
        (status = 422, description = "Body does not match the schema", body = ErrorBody),
    )
)]
pub(crate) async fn update_stream(
    caller: Caller,
    State(state): State<AppState>,
    StudioPath(id): StudioPath<String>,
    StudioJson(patch): StudioJson<StreamPatchPayload>,
) -> Result<StatusCode, StudioError> {
    let current = state
        .store
        .stream(&caller.tenant_id, &id)
        .await?
        .ok_or_else(StudioError::not_found)?;
    if let Some(name) = &patch.name {
        check_stream_name(name)?;
    }
    if current.is_active && patch.record.is_some_and(|r| r != current.record) {
        return Err(StudioError::bad_request(
            "cannot change 'record' field while stream is active",
        ));
    }
    if current.is_active && patch.profiles.is_some() {
        return Err(StudioError::bad_request(
            "cannot change 'profiles' field while stream is active",
        ));
    }
    let mut spec = StreamSpec::of(&current).unwrap_or_default();
    if let Some(profiles) = patch.profiles {
        let profiles = profiles.unwrap_or_else(default_ladder);
        check_profiles(&profiles)?;
        spec.profiles = profiles;
    }
    let record = patch.record.unwrap_or(current.record);
    if let Some(recording) = patch.recording_spec {
        if !record {
            return Err(StudioError::bad_request(
                "recordingSpec is only supported with record=true",
            ));
        }
        check_recording_profiles(recording.profiles.as_deref().unwrap_or_default())?;
        spec.recording_spec = Some(recording);
    }
    if let Some(multistream) = patch.multistream {
        check_multistream(&multistream, &spec.profiles)?;
        spec.multistream = multistream;
    } else if !spec.multistream.targets.is_empty() {
        // a new ladder must still hold every target's profile
        check_multistream(&spec.multistream, &spec.profiles)?;
    }
    if let Some(policy) = patch.playback_policy {
        if let Some(policy) = &policy {
            check_policy(policy)?;
        }
        spec.playback_policy = policy;
    }
    if let Some(tags) = patch.user_tags {
        check_user_tags(&tags)?;
        spec.user_tags = Some(tags);
    }
    if let Some(creator) = patch.creator_id {
        spec.creator_id = Some(creator.into());
    }
    let updated = state
        .store
        .update_stream(
            &caller.tenant_id,
            &id,
            StreamPatch {
                name: patch.name,
                record: patch.record,
                suspended: patch.suspended,
                spec: Some(spec.to_map()),
            },
        )
        .await?
        .ok_or_else(StudioError::not_found)?;
    state.playlists.set_record(&updated.id, updated.record);
    if updated.suspended && !current.suspended {
        info!(stream_id = id, "stream suspended");
        send_control(&state, &id, StreamControlAction::Suspend).await?;
    }
    Ok(StatusCode::NO_CONTENT)
}

/// Suspends or resumes a stream (legacy form of `PATCH /api/stream/{id}` with `suspended`).
#[utoipa::path(
    patch,
    path = "/api/stream/{id}/suspended",
    tag = "stream",
    params(("id" = String, Path, description = "Stream id")),
    request_body = SuspendPayload,
    responses(
        (status = 204, description = "Updated"),
        (status = 401, description = "No or unknown API key", body = ErrorBody),
        (status = 404, description = "Unknown, deleted or another tenant's", body = ErrorBody),
        (status = 422, description = "missing suspended property", body = ErrorBody),
    )
)]
pub(crate) async fn set_suspended(
    caller: Caller,
    State(state): State<AppState>,
    StudioPath(id): StudioPath<String>,
    StudioJson(body): StudioJson<Value>,
) -> Result<StatusCode, StudioError> {
    let Some(suspended) = body.get("suspended").and_then(Value::as_bool) else {
        return Err(StudioError::unprocessable("missing suspended property"));
    };
    let current = state
        .store
        .stream(&caller.tenant_id, &id)
        .await?
        .ok_or_else(StudioError::not_found)?;
    state
        .store
        .update_stream(
            &caller.tenant_id,
            &id,
            StreamPatch {
                suspended: Some(suspended),
                ..StreamPatch::default()
            },
        )
        .await?
        .ok_or_else(StudioError::not_found)?;
    if suspended && !current.suspended {
        info!(stream_id = id, "stream suspended");
        send_control(&state, &id, StreamControlAction::Suspend).await?;
    }
    Ok(StatusCode::NO_CONTENT)
}

/// Deletes a stream (soft): its key stops publishing, its playback id stops resolving, and
/// its live publisher is dropped.
#[utoipa::path(
    delete,
    path = "/api/stream/{id}",
    tag = "stream",
    params(("id" = String, Path, description = "Stream id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "No or unknown API key", body = ErrorBody),
        (status = 404, description = "Unknown, deleted or another tenant's", body = ErrorBody),
    )
)]
pub(crate) async fn delete_stream(
    caller: Caller,
    State(state): State<AppState>,
    StudioPath(id): StudioPath<String>,
) -> Result<StatusCode, StudioError> {
    if !state.store.delete_stream(&caller.tenant_id, &id).await? {
        return Err(StudioError::not_found());
    }
    state.playlists.end_stream(&id);
    info!(stream_id = id, "stream deleted");
    send_control(&state, &id, StreamControlAction::Delete).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Ends the stream's live session; the publisher may reconnect at once. At most once per 5 s.
#[utoipa::path(
    delete,
    path = "/api/stream/{id}/terminate",
    tag = "stream",
    params(("id" = String, Path, description = "Stream id")),
    responses(
        (status = 204, description = "Terminated"),
        (status = 401, description = "No or unknown API key", body = ErrorBody),
        (status = 404, description = "Unknown, deleted or another tenant's", body = ErrorBody),
        (status = 429, description = "too many terminate requests (within 5 s)", body = ErrorBody),
    )
)]
pub(crate) async fn terminate_stream(
    caller: Caller,
    State(state): State<AppState>,
    StudioPath(id): StudioPath<String>,
) -> Result<StatusCode, StudioError> {
    match state
        .store
        .terminate_stream(&caller.tenant_id, &id, TERMINATE_INTERVAL_MS)
        .await?
    {
        Terminate::Terminated => {}
        Terminate::TooSoon => return Err(StudioError::too_many("too many terminate requests")),
        Terminate::NotFound => return Err(StudioError::not_found()),
    }
    info!(stream_id = id, "stream terminated");
    send_control(&state, &id, StreamControlAction::Terminate).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Livefarm: ends the stream's playlists now (`EXT-X-ENDLIST`), as a publisher's departure
/// does.
#[utoipa::path(
    post,
    path = "/api/stream/{id}/end",
    tag = "stream",
    params(("id" = String, Path, description = "Stream id")),
    responses(
        (status = 204, description = "Ended"),
        (status = 401, description = "No or unknown API key", body = ErrorBody),
        (status = 404, description = "Unknown, deleted or another tenant's", body = ErrorBody),
    )
)]
pub(crate) async fn end_stream(
    caller: Caller,
    State(state): State<AppState>,
    StudioPath(id): StudioPath<String>,
) -> Result<StatusCode, StudioError> {
    state
        .store
        .stream(&caller.tenant_id, &id)
        .await?
        .ok_or_else(StudioError::not_found)?;
    state.playlists.end_stream(&id);
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn limits_default_and_clamp() {
        assert_eq!(parse_limit(None), 20);
        assert_eq!(parse_limit(Some("x")), 20);
        assert_eq!(parse_limit(Some("0")), 20);
        assert_eq!(parse_limit(Some("-5")), 20);
        assert_eq!(parse_limit(Some("7")), 7);
        assert_eq!(parse_limit(Some("99999999999999999999999")), 1000);
        assert_eq!(parse_limit(Some("1001")), 1000);
    }

    #[test]
    fn filters_parse_as_studio_documents() {
        let filter = parse_filters(
            r#"[{"id":"isActive","value":true},{"id":"name","value":"cam"},
                {"id":"createdAt","value":{"gt":5,"lte":9}},{"id":"lastSeen","value":0}]"#,
        )
        .expect("filters");
        assert_eq!(filter.is_active, Some(true));
        assert_eq!(filter.name_contains.as_deref(), Some("cam"));
        assert_eq!(filter.created_at.gt, Some(5));
        assert_eq!(filter.created_at.lte, Some(9));
        assert_eq!(filter.last_seen.gte, Some(0));
        assert_eq!(filter.last_seen.lte, Some(0));
        for (text, message) in [
            (r#"[{"id":"nope","value":1}]"#, "unknown field: \"nope\""),
            (
                r#"[{"id":"record","value":"yes"}]"#,
                "expected boolean value for field \"record\"",
            ),
            (
                r#"[{"id":"createdAt","value":{"ne":1}}]"#,
                "unknown comparison",
            ),
            ("not json", "error parsing filters"),
            (r#"{"id":"record"}"#, "error parsing filters"),
        ] {
            let error = parse_filters(text).expect_err(text);
            assert_eq!(error.status(), StatusCode::BAD_REQUEST);
            assert!(
                error.message().starts_with("error parsing filters: "),
                "{}",
                error.message()
            );
            assert!(
                error.message().contains(message),
                "{text}: {}",
                error.message()
            );
        }
    }

    #[test]
    fn studio_validation_rules() {
        let mut ladder = default_ladder();
        check_profiles(&ladder).expect("default ladder");
        ladder[1].name = "240p0".to_owned();
        assert_eq!(
            check_profiles(&ladder).expect_err("dup").message(),
            "duplicate profile name \"240p0\""
        );
        ladder[1].name = "source".to_owned();
        assert_eq!(
            check_profiles(&ladder).expect_err("source").status(),
            StatusCode::BAD_REQUEST
        );
        ladder[1].name = "ok".to_owned();
        ladder[1].width = 12;
        let error = check_profiles(&ladder).expect_err("small");
        assert_eq!(error.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert!(
            error.message().starts_with("profiles[1].width"),
            "{}",
            error.message()
        );

        let big: Map<String, Value> =
            serde_json::from_value(json!({"k": "x".repeat(2100)})).expect("map");
        assert_eq!(
            check_user_tags(&big).expect_err("big").status(),
            StatusCode::BAD_REQUEST
        );
        let nested: Map<String, Value> =
            serde_json::from_value(json!({"k": {"a": 1}})).expect("map");
        assert_eq!(
            check_user_tags(&nested).expect_err("nested").status(),
            StatusCode::UNPROCESSABLE_ENTITY
        );
        let fine: Map<String, Value> =
            serde_json::from_value(json!({"a": 1, "b": ["x", 2]})).expect("map");
        check_user_tags(&fine).expect("fine");

        let ms = |v: Value| serde_json::from_value::<Multistream>(v).expect("multistream");
        let profiles = default_ladder();
        check_multistream(
            &ms(json!({"targets":[{"profile":"source","spec":{"url":"rtmp://a/b"}}]})),
            &profiles,
        )
        .expect("spec");
        for (targets, status) in [
            (
                json!([{"profile":"1080p","spec":{"url":"rtmp://a/b"}}]),
                StatusCode::BAD_REQUEST,
            ),
            (json!([{"profile":"source"}]), StatusCode::BAD_REQUEST),
            (
                json!([{"profile":"source","id":"x","spec":{"url":"rtmp://a/b"}}]),
                StatusCode::BAD_REQUEST,
            ),
            (
                json!([{"profile":"source","id":"x"}]),
                StatusCode::BAD_REQUEST,
            ),
            (
                json!([{"profile":"source","spec":{"url":"http://a/b"}}]),
                StatusCode::UNPROCESSABLE_ENTITY,
            ),
        ] {
            let error = check_multistream(&ms(json!({"targets": targets})), &profiles)
                .expect_err("refused");
            assert_eq!(error.status(), status, "{targets}: {}", error.message());
        }
    }
}
