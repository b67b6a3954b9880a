//! `StudioError`: every error the Studio-compatible routes answer with, as Studio shapes them
//! (§1.4): a status from a small closed set and the body `{"errors": ["<message>"]}`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use livefarm_store::StoreError;
use serde::Serialize;
use utoipa::ToSchema;

/// The error body of every `/api` route: one or more messages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct ErrorBody {
    pub errors: Vec<String>,
}

/// An error answer: its status and message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{status}: {message}")]
pub struct StudioError {
    status: StatusCode,
    message: String,
}

impl StudioError {
    /// Any status with a message (errors of other crates that carry their own status).
    pub fn with_status(status: StatusCode, message: impl Into<String>) -> Self {
        Self::new(status, message)
    }

    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        StudioError {
            status,
            message: message.into(),
        }
    }

    /// 400: a request the API understood but refuses (Studio's `BadRequestError`).
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    /// 401: no usable credentials.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, message)
    }

    /// 404 `not found`: unknown, deleted or another tenant's (never 403, as Studio).
    pub fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "not found")
    }

    /// 404 with a message of its own (playback: `No playback URL found for <id>`).
    pub fn not_found_with(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }

    /// 405: the path exists, the method does not.
    pub fn method_not_allowed() -> Self {
        Self::new(StatusCode::METHOD_NOT_ALLOWED, "method not allowed")
    }

    /// 413: the body is larger than the route takes.
    pub fn payload_too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("request body is too large (at most {limit} bytes)"),
        )
    }

    /// 422: the body does not match the request schema (unknown field, wrong type, missing
    /// field, out of range).
    pub fn unprocessable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, message)
    }

    /// 429: asked again too soon.
    pub fn too_many(message: impl Into<String>) -> Self {
        Self::new(StatusCode::TOO_MANY_REQUESTS, message)
    }

    /// 503: a dependency (database, bus) is unreachable; trying again may work.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, message)
    }

    /// 500: our fault; the message names no internals.
    pub fn internal() -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal server error")
    }

    /// The status answered.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The message in `errors[0]`.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl From<StoreError> for StudioError {
    fn from(error: StoreError) -> Self {
        match &error {
            StoreError::NotFound { .. } => StudioError::not_found(),
            StoreError::Invalid {
                field: "cursor", ..
            } => StudioError::bad_request("invalid cursor: not one this server issued"),
            StoreError::Invalid { .. } | StoreError::Conflict { .. } => {
                StudioError::bad_request(error.to_string())
            }
            _ if error.is_retryable() => {
                tracing::warn!(%error, "store unavailable");
                StudioError::unavailable("the database is unavailable, try again")
            }
            _ => {
                tracing::error!(%error, "store failed");
                StudioError::internal()
            }
        }
    }
}

impl IntoResponse for StudioError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            errors: vec![self.message],
        };
        (self.status, Json(body)).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_errors_map_to_studio_statuses() {
        let missing = StoreError::NotFound {
            what: "tenant",
            id: "t".to_owned(),
        };
        assert_eq!(StudioError::from(missing), StudioError::not_found());
        let cursor = StoreError::Invalid {
            field: "cursor",
            reason: "x".to_owned(),
        };
        assert_eq!(StudioError::from(cursor).status(), StatusCode::BAD_REQUEST);
        let corrupt = StoreError::Corrupt {
            what: "stream",
            id: "s".to_owned(),
            reason: "secret detail".to_owned(),
        };
        let error = StudioError::from(corrupt);
        assert_eq!(error.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(!error.message().contains("secret"));
    }
}
