//! The Livepeer Studio-compatible API (`/api/...`), as the official SDKs use it
//! (`../shared/studio-api.md` in the design notes): API-key auth ([`auth`]), Studio's error
//! bodies ([`error`]), strict JSON bodies ([`body`]), the objects ([`objects`]), streams
//! ([`streams`]), playback info ([`playback`]), and the route table ([`routes`]) that both the
//! router and the OpenAPI document ([`openapi`]) are built from.

pub mod auth;
pub mod body;
pub mod error;
pub mod lists;
pub mod objects;
pub mod openapi;
pub mod playback;
pub mod routes;
pub mod sessions;
pub mod streams;
pub mod webhooks;

use axum::extract::{FromRequestParts, Path};
use axum::http::header::HOST;
use axum::http::request::Parts;
use axum::http::HeaderMap;
use serde::de::DeserializeOwned;

pub use auth::Caller;
pub use error::StudioError;
pub use objects::stream_json;
pub use playback::{playback_info, recording_playback, PlaybackInfo};

use crate::AppState;

/// Path parameters; any that cannot be read (bad percent-encoding) is a 404 `not found`,
/// as an id that matches nothing.
#[derive(Debug, Clone)]
pub struct StudioPath<T>(pub T);

impl<T, S> FromRequestParts<S> for StudioPath<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = StudioError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(value)| StudioPath(value))
            .map_err(|_| StudioError::not_found())
    }
}

/// The base of the URLs the API hands out: `public_url` when set, else `http://` and the
/// request's `Host` (`localhost` when that is missing or malformed).
pub fn base_url(state: &AppState, headers: &HeaderMap) -> String {
    if !state.public_url.is_empty() {
        return state.public_url.trim_end_matches('/').to_owned();
    }
    let host = headers
        .get(HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| {
            !h.is_empty()
                && h.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b".-:[]_".contains(&b))
        })
        .unwrap_or("localhost");
    format!("http://{host}")
}
