//! Webhook routes (Studio §5.2, with the SDKs' statuses of §10: create 200, PUT by the path id
//! with the full object, DELETE 200 with the deleted webhook), thin over `livefarm-webhooks`.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Json;
use livefarm_store::Page;
use livefarm_webhooks::{WebhookError, WebhookInput};
use serde_json::Value;

use crate::studio::body::{Params, StudioJson};
use crate::studio::error::{ErrorBody, StudioError};
use crate::studio::lists::{list_response, page_of};
use crate::studio::{Caller, StudioPath};
use crate::AppState;

impl From<WebhookError> for StudioError {
    fn from(error: WebhookError) -> Self {
        let status =
            StatusCode::from_u16(error.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        match error {
            WebhookError::Store(store) => StudioError::from(store),
            _ if status.is_server_error() => {
                tracing::error!(%error, "webhook operation failed");
                StudioError::internal()
            }
            other => StudioError::with_status(status, other.to_string()),
        }
    }
}

/// Lists the caller's webhooks, newest first.
#[utoipa::path(get, path = "/api/webhook", tag = "webhook",
    params(
        ("limit" = Option<u32>, Query, description = "Page size: default 20, at most 1000"),
        ("cursor" = Option<String>, Query, description = "From the previous page's Link header"),
        ("count" = Option<String>, Query, description = "Truthy: add X-Total-Count"),
    ),
    responses(
        (status = 200, description = "One page of webhooks", body = Vec<Object>),
        (status = 401, description = "No or unknown API key", body = ErrorBody),
    ))]
pub(crate) async fn list_webhooks(
    caller: Caller,
    State(state): State<AppState>,
    params: Params,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, StudioError> {
    let page: Page = page_of(&params);
    let (items, next) = state.webhooks.list(&caller.tenant_id, &page).await?;
    let total = if crate::studio::streams::truthy(params.get("count")) {
        Some(state.webhooks.count(&caller.tenant_id).await?)
    } else {
        None
    };
    Ok(list_response(
        &state, &headers, &uri, &params, items, next, total,
    ))
}

/// Creates a webhook (SDK: 200; `sharedSecret` is echoed here only).
#[utoipa::path(post, path = "/api/webhook", tag = "webhook",
    request_body = Object,
    responses(
        (status = 200, description = "The new webhook", body = Object),
        (status = 401, description = "No or unknown API key", body = ErrorBody),
        (status = 422, description = "Bad body, URL, event, or a private target", body = ErrorBody),
    ))]
pub(crate) async fn create_webhook(
    caller: Caller,
    State(state): State<AppState>,
    StudioJson(input): StudioJson<WebhookInput>,
) -> Result<Json<Value>, StudioError> {
    Ok(Json(state.webhooks.create(&caller.tenant_id, input).await?))
}

/// One webhook.
#[utoipa::path(get, path = "/api/webhook/{id}", tag = "webhook",
    params(("id" = String, Path, description = "Webhook id")),
    responses(
        (status = 200, description = "The webhook", body = Object),
        (status = 404, description = "Unknown, deleted or another tenant's", body = ErrorBody),
    ))]
pub(crate) async fn get_webhook(
    caller: Caller,
    State(state): State<AppState>,
    StudioPath(id): StudioPath<String>,
) -> Result<Json<Value>, StudioError> {
    Ok(Json(state.webhooks.get(&caller.tenant_id, &id).await?))
}

/// Replaces a webhook (the path names it; SDK: 200 with the full object).
#[utoipa::path(put, path = "/api/webhook/{id}", tag = "webhook",
    params(("id" = String, Path, description = "Webhook id")),
    request_body = Object,
    responses(
        (status = 200, description = "The updated webhook", body = Object),
        (status = 404, description = "Unknown, deleted or another tenant's", body = ErrorBody),
        (status = 422, description = "Bad body, URL, event, or a private target", body = ErrorBody),
    ))]
pub(crate) async fn replace_webhook(
    caller: Caller,
    State(state): State<AppState>,
    StudioPath(id): StudioPath<String>,
    StudioJson(input): StudioJson<WebhookInput>,
) -> Result<Json<Value>, StudioError> {
    Ok(Json(
        state
            .webhooks
            .replace(&caller.tenant_id, &id, input)
            .await?,
    ))
}

/// Deletes a webhook (SDK: 200 with the deleted webhook); its pending deliveries are dropped.
#[utoipa::path(delete, path = "/api/webhook/{id}", tag = "webhook",
    params(("id" = String, Path, description = "Webhook id")),
    responses(
        (status = 200, description = "The deleted webhook", body = Object),
        (status = 404, description = "Unknown, deleted or another tenant's", body = ErrorBody),
    ))]
pub(crate) async fn delete_webhook(
    caller: Caller,
    State(state): State<AppState>,
    StudioPath(id): StudioPath<String>,
) -> Result<Json<Value>, StudioError> {
    Ok(Json(state.webhooks.delete(&caller.tenant_id, &id).await?))
}

/// A webhook's delivery attempts, newest first.
#[utoipa::path(get, path = "/api/webhook/{id}/log", tag = "webhook",
    params(
        ("id" = String, Path, description = "Webhook id"),
        ("limit" = Option<u32>, Query, description = "Page size: default 20, at most 1000"),
        ("cursor" = Option<String>, Query, description = "From the previous page's Link header"),
    ),
    responses(
        (status = 200, description = "One page of logs", body = Vec<Object>),
        (status = 404, description = "Unknown webhook", body = ErrorBody),
    ))]
pub(crate) async fn list_logs(
    caller: Caller,
    State(state): State<AppState>,
    StudioPath(id): StudioPath<String>,
    params: Params,
    uri: Uri,
    headers: HeaderMap,
) -> Result<Response, StudioError> {
    let page = page_of(&params);
    let (items, next) = state.webhooks.logs(&caller.tenant_id, &id, &page).await?;
    Ok(list_response(
        &state, &headers, &uri, &params, items, next, None,
    ))
}

/// One delivery attempt.
#[utoipa::path(get, path = "/api/webhook/{id}/log/{log_id}", tag = "webhook",
    params(("id" = String, Path, description = "Webhook id"), ("log_id" = String, Path, description = "Log id")),
    responses(
        (status = 200, description = "The log", body = Object),
        (status = 400, description = "The log is another webhook's", body = ErrorBody),
        (status = 404, description = "Unknown webhook or log", body = ErrorBody),
    ))]
pub(crate) async fn get_log(
    caller: Caller,
    State(state): State<AppState>,
    StudioPath((id, log_id)): StudioPath<(String, String)>,
) -> Result<Json<Value>, StudioError> {
    Ok(Json(
        state.webhooks.log(&caller.tenant_id, &id, &log_id).await?,
    ))
}

/// Sends a logged event again now (same event id, new timestamp and signature).
#[utoipa::path(post, path = "/api/webhook/{id}/log/{log_id}/resend", tag = "webhook",
    params(("id" = String, Path, description = "Webhook id"), ("log_id" = String, Path, description = "Log id")),
    responses(
        (status = 200, description = "The new log entry", body = Object),
        (status = 404, description = "Unknown webhook or log", body = ErrorBody),
    ))]
pub(crate) async fn resend_log(
    caller: Caller,
    State(state): State<AppState>,
    StudioPath((id, log_id)): StudioPath<(String, String)>,
) -> Result<Response, StudioError> {
    let log = state
        .webhooks
        .resend(&caller.tenant_id, &id, &log_id)
        .await?;
    Ok(Json(log).into_response())
}
