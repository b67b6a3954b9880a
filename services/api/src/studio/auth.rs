//! Authentication of `/api` calls (§1.3): `Authorization: Bearer <api key>` (what the SDKs
//! send) or `Basic base64(<tenant id>:<api key>)` (go-livepeer's form). Handlers of protected
//! routes take a [`Caller`]; the public ones (`GET /api/playback/{id}`,
//! `GET /api/openapi.json`) do not, so no other route can be reached without a key.
//!
//! Error messages never repeat a presented secret; at most its first few characters.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use base64::Engine;

use livefarm_store::Authenticated;

use crate::studio::error::StudioError;
use crate::AppState;

/// Who is calling: the tenant that owns the API key, and the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    pub tenant_id: String,
    pub key_id: String,
    /// The key's name (a stream's `createdByTokenName`).
    pub key_name: String,
}

/// Keys that authenticated in the last `ttl`, by the SHA-256 of the secret: a busy client
/// costs one database lookup per key and period instead of one per call. Only successes are
/// kept, so a key made a moment ago works at once; a revoked key stops working within `ttl`
/// on every replica (`api_key_cache_ms`, at most 5 s; 0 turns the cache off).
#[derive(Debug)]
pub struct KeyCache {
    ttl: Duration,
    entries: Mutex<HashMap<String, (Authenticated, Instant)>>,
}

/// Most keys kept; beyond it the cache starts over (a flood of distinct keys cannot grow it).
const KEY_CACHE_ENTRIES: usize = 10_000;

impl KeyCache {
    pub fn new(ttl: Duration) -> Self {
        KeyCache {
            ttl,
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn get(&self, secret: &str) -> Option<Authenticated> {
        if self.ttl.is_zero() {
            return None;
        }
        let hash = livefarm_store::ids::api_key_hash(secret);
        let entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        entries
            .get(&hash)
            .filter(|(_, at)| at.elapsed() < self.ttl)
            .map(|(found, _)| found.clone())
    }

    fn put(&self, secret: &str, found: &Authenticated) {
        if self.ttl.is_zero() {
            return;
        }
        let hash = livefarm_store::ids::api_key_hash(secret);
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        if entries.len() >= KEY_CACHE_ENTRIES {
            entries.clear();
        }
        entries.insert(hash, (found.clone(), Instant::now()));
    }
}

/// No or unparsable credentials on a protected route.
fn not_authenticated() -> StudioError {
    StudioError::unauthorized("request is not authenticated")
}

/// What may be shown of a secret in an error: a third of it, at most 6 characters.
fn hint(secret: &str) -> String {
    let shown = (secret.chars().count() / 3).min(6);
    let mut hint: String = secret.chars().take(shown).collect();
    hint.push('…');
    hint
}

/// Splits `<scheme> <token>` as Studio's `^\s*(\w+)\s+(.+)$`.
fn split_header(value: &str) -> Option<(&str, &str)> {
    let value = value.trim_start();
    let end = value
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(value.len());
    let (scheme, rest) = value.split_at(end);
    let token = rest.trim();
    if scheme.is_empty() || token.is_empty() || !rest.starts_with(char::is_whitespace) {
        return None;
    }
    Some((scheme, token))
}

/// The API key and, for Basic, the tenant id it must belong to.
fn credentials(header: &str) -> Result<(String, Option<String>), StudioError> {
    let (scheme, token) = split_header(header).ok_or_else(not_authenticated)?;
    match scheme.to_ascii_lowercase().as_str() {
        "bearer" => Ok((token.to_owned(), None)),
        "basic" => {
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(token)
                .ok()
                .and_then(|bytes| String::from_utf8(bytes).ok())
                .ok_or_else(|| StudioError::unauthorized("malformed basic credentials"))?;
            let (user, key) = decoded
                .split_once(':')
                .ok_or_else(|| StudioError::unauthorized("malformed basic credentials"))?;
            Ok((key.to_owned(), Some(user.to_owned())))
        }
        _ => Err(StudioError::unauthorized(format!(
            "unsupported authorization header scheme: {}",
            scheme.chars().take(32).collect::<String>()
        ))),
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = StudioError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let header = parts
            .headers
            .get(AUTHORIZATION)
            .ok_or_else(not_authenticated)?
            .to_str()
            .map_err(|_| not_authenticated())?;
        let (secret, user) = credentials(header)?;
        let unknown = || StudioError::unauthorized(format!("no token {} found", hint(&secret)));
        let found = match state.keys.get(&secret) {
            Some(found) => found,
            None => {
                let found = state
                    .store
                    .authenticate(&secret)
                    .await?
                    .ok_or_else(unknown)?;
                state.keys.put(&secret, &found);
                found
            }
        };
        if user.is_some_and(|user| user != found.tenant_id) {
            return Err(unknown());
        }
        // keys are scoped to their tenant; Studio refuses a project override with a key
        let query = parts.uri.query().unwrap_or_default();
        if url::form_urlencoded::parse(query.as_bytes()).any(|(name, _)| name == "projectId") {
            return Err(StudioError::bad_request(
                "projectId as query param not supported",
            ));
        }
        Ok(Caller {
            tenant_id: found.tenant_id,
            key_id: found.key_id,
            key_name: found.key_name,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_split_as_studio_does() {
        assert_eq!(split_header("Bearer abc"), Some(("Bearer", "abc")));
        assert_eq!(split_header("  bearer   a b "), Some(("bearer", "a b")));
        assert_eq!(split_header("Bearer"), None);
        assert_eq!(split_header("Bearer "), None);
        assert_eq!(split_header("abc"), None);
        assert_eq!(split_header("Bear-er x"), None);
    }

    #[test]
    fn credentials_by_scheme() {
        assert_eq!(
            credentials("BEARER k1").expect("bearer"),
            ("k1".to_owned(), None)
        );
        let basic = base64::engine::general_purpose::STANDARD.encode("tenant:k2");
        assert_eq!(
            credentials(&format!("Basic {basic}")).expect("basic"),
            ("k2".to_owned(), Some("tenant".to_owned()))
        );
        let error = credentials("JWT x").expect_err("jwt");
        assert_eq!(
            error.message(),
            "unsupported authorization header scheme: JWT"
        );
        assert_eq!(
            credentials("Basic !!!").expect_err("bad base64").status(),
            axum::http::StatusCode::UNAUTHORIZED
        );
    }

    #[test]
    fn hints_never_show_a_whole_secret() {
        assert_eq!(hint("lf_0123456789abcdef0123"), "lf_012…");
        assert_eq!(hint("abc"), "a…");
        assert_eq!(hint("ab"), "…");
        assert_eq!(hint("ééééééééé"), "ééé…");
    }
}
