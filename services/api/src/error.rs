//! Errors of the API service and their HTTP statuses.

use std::net::SocketAddr;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use livefarm_bus::BusError;
use livefarm_runtime::RuntimeError;
use livefarm_storage::StorageError;
use livefarm_store::StoreError;

/// Everything that can go wrong serving the API or building playlists.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The request is malformed (maps to 400).
    #[error("bad request: {0}")]
    BadRequest(String),
    /// The thing asked for does not exist (maps to 404).
    #[error("{0}")]
    NotFound(String),
    /// A config value that serde accepted but the service cannot use (exit 64).
    #[error("invalid config {key}: {reason}")]
    Config {
        /// The offending key.
        key: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The object store failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The job bus failed.
    #[error(transparent)]
    Bus(#[from] BusError),
    /// The admin server or signal handling failed.
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    /// The HTTP listener could not bind.
    #[error("cannot bind http server to {addr}: {source}")]
    Bind {
        /// The requested address.
        addr: SocketAddr,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The HTTP server stopped with an I/O error.
    #[error("http server failed: {0}")]
    Serve(#[source] std::io::Error),
    /// The control-plane store (database) failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl ApiError {
    /// The HTTP status this error answers with.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::NotFound(_) | ApiError::Storage(StorageError::NotFound { .. }) => {
                StatusCode::NOT_FOUND
            }
            ApiError::Storage(StorageError::InvalidKey { .. }) => StatusCode::NOT_FOUND,
            ApiError::Store(e) if e.is_retryable() => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl livefarm_runtime::RunError for ApiError {
    /// A bad value, or a bus, storage or database URL that does not parse.
    fn is_config(&self) -> bool {
        matches!(
            self,
            ApiError::Config { .. }
                | ApiError::Store(StoreError::InvalidUrl { .. })
                | ApiError::Bus(BusError::InvalidUrl { .. })
                | ApiError::Storage(StorageError::InvalidUrl { .. })
                | ApiError::Runtime(RuntimeError::Config(_))
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let message = match &self {
            // storage keys are internal; say what was missing in the caller's terms
            ApiError::Storage(StorageError::NotFound { .. } | StorageError::InvalidKey { .. }) => {
                "segment not found".to_owned()
            }
            // database errors may carry internals; the log has them
            ApiError::Store(_) => "the database is unavailable".to_owned(),
            other => other.to_string(),
        };
        if status.is_server_error() {
            tracing::warn!(error = %self, "request failed");
        }
        (status, Json(serde_json::json!({ "errors": [message] }))).into_response()
    }
}
