//! What the webhook routes and the deliverer can fail with, and the HTTP status of each.

use livefarm_store::StoreError;

use crate::ConfigError;

/// A webhook operation's failure. [`WebhookError::status`] is the HTTP status the route
/// answers with; the message is the `errors` item (Studio's wording where Studio has one).
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    /// 400: a body that is not JSON, a log of another webhook, a cursor we did not issue.
    #[error("{0}")]
    BadRequest(String),
    /// 422: a body that breaks the schema, a bad URL, an unknown event, a refused target.
    #[error("{0}")]
    Unprocessable(String),
    /// 404: `webhook not found` / `webhook log not found`.
    #[error("{0}")]
    NotFound(&'static str),
    /// The `webhooks` configuration cannot work.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The HTTP client could not be built (TLS setup).
    #[error("webhook http client: {0}")]
    Client(String),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl WebhookError {
    /// The HTTP status for this error.
    pub fn status(&self) -> u16 {
        match self {
            WebhookError::BadRequest(_) => 400,
            WebhookError::Unprocessable(_) => 422,
            WebhookError::NotFound(_) => 404,
            // the store's own limits on what a request gave (a cursor, a length)
            WebhookError::Store(StoreError::Invalid { .. }) => 400,
            WebhookError::Store(StoreError::NotFound { .. }) => 404,
            WebhookError::Config(_) | WebhookError::Client(_) | WebhookError::Store(_) => 500,
        }
    }
}
