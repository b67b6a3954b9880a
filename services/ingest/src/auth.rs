//! Publisher auth: which stream a publisher's key opens, with which ladder.
//!
//! [`PublisherAuth`] is a trait object, so each deployment picks its source of truth. Four
//! implementations ship: [`StoreAuth`] (the control plane's store), [`StaticAuth`] (a key map),
//! [`WebhookAuth`] (go-livepeer's auth webhook, livepeer-protocol.md §5.3) and
//! [`AllowAnyAuth`] (development).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use livefarm_profiles::{
    parse_json_values, preset, studio_default_ladder, studio_preset, validate_list, Profile,
};
use livefarm_store::{redact_url, Backend, Store, StoreError, StoreOptions};
use serde::Deserialize;

use crate::error::AuthError;

pub use livefarm_publish::BoxFuture;

/// What a publisher asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishRequest {
    /// `rtmp` or `srt`.
    pub protocol: &'static str,
    /// The ingest URL as the publisher used it (what go-livepeer's webhook receives).
    pub url: String,
    /// `/live/{manifestID}/{streamKey}`: the manifest id; `None` for `/live/{streamKey}`.
    pub manifest_id: Option<String>,
    /// The stream key.
    pub stream_key: String,
}

/// The stream a publisher may publish to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizedStream {
    /// The live stream id (segments, jobs and playlists are keyed by it).
    pub stream_id: String,
    /// The rendition ladder.
    pub profiles: Vec<Profile>,
    /// Keep the session as a recording.
    pub record: bool,
}

/// Decides whether a publisher may publish, and to which stream.
pub trait PublisherAuth: Send + Sync {
    fn authorize<'a>(
        &'a self,
        request: &'a PublishRequest,
    ) -> BoxFuture<'a, Result<AuthorizedStream, AuthError>>;

    /// Drops what is cached about `stream_id` (it was suspended, deleted or terminated), so
    /// the next publish asks the source of truth again.
    fn forget_stream(&self, _stream_id: &str) {}
}

/// The first 4 characters of a key and an ellipsis: enough to tell keys apart in logs.
pub fn redact(key: &str) -> String {
    let shown: String = key.chars().take(4).collect();
    format!("{shown}…")
}

/// A fixed map of stream keys.
#[derive(Debug, Clone, Default)]
pub struct StaticAuth {
    keys: HashMap<String, AuthorizedStream>,
}

impl StaticAuth {
    pub fn new(keys: HashMap<String, AuthorizedStream>) -> Self {
        StaticAuth { keys }
    }

    /// Adds (or replaces) a key.
    pub fn insert(&mut self, key: impl Into<String>, stream: AuthorizedStream) {
        self.keys.insert(key.into(), stream);
    }
}

impl PublisherAuth for StaticAuth {
    fn authorize<'a>(
        &'a self,
        request: &'a PublishRequest,
    ) -> BoxFuture<'a, Result<AuthorizedStream, AuthError>> {
        let found = self
            .keys
            .get(&request.stream_key)
            .cloned()
            .ok_or_else(|| AuthError::Refused("unknown stream key".to_string()));
        Box::pin(async move { found })
    }
}

/// Development mode: every key is let in; the stream id is the manifest id, else the key.
#[derive(Debug, Clone)]
pub struct AllowAnyAuth {
    pub profiles: Vec<Profile>,
    pub record: bool,
}

impl Default for AllowAnyAuth {
    fn default() -> Self {
        AllowAnyAuth {
            profiles: studio_default_ladder(),
            record: false,
        }
    }
}

impl PublisherAuth for AllowAnyAuth {
    fn authorize<'a>(
        &'a self,
        request: &'a PublishRequest,
    ) -> BoxFuture<'a, Result<AuthorizedStream, AuthError>> {
        let stream_id = request
            .manifest_id
            .clone()
            .unwrap_or_else(|| request.stream_key.clone());
        let result = livefarm_jobs::validate_stream_id(&stream_id)
            .map(|()| AuthorizedStream {
                stream_id,
                profiles: self.profiles.clone(),
                record: self.record,
            })
            .map_err(|e| AuthError::Refused(e.to_string()));
        Box::pin(async move { result })
    }
}

/// How long [`StoreAuth`] trusts an answer of the store (default of `auth.cache_ttl_ms`).
pub const DEFAULT_CACHE_TTL: Duration = Duration::from_secs(2);
/// The longest cache TTL accepted: a suspended or deleted stream must be refused within 5 s.
pub const MAX_CACHE_TTL: Duration = Duration::from_secs(5);
/// Cached answers kept at most; past it expired ones go, then all (unknown keys cost a slot).
const CACHE_CAPACITY: usize = 10_000;

/// What the store said about one stream key, kept for the cache TTL.
#[derive(Debug, Clone)]
struct Cached {
    at: Instant,
    /// `None`: no such key (or a deleted stream).
    stream: Option<KnownStream>,
}

#[derive(Debug, Clone)]
struct KnownStream {
    id: String,
    suspended: bool,
    record: bool,
    /// The stream's ladder, or why its stored `profiles` are unusable.
    profiles: Result<Vec<Profile>, String>,
}

/// The control plane's store (`crates/store`; streams made with `POST /api/stream` or
/// `livefarm stream create`): a key opens the stream it was made for, with that stream's
/// `profiles` (the defaults when it names none), unless the stream is suspended or deleted.
///
/// Answers, found or not, are cached for `ttl` (2 s by default, at most 5 s), so a suspend or
/// delete is obeyed within that time even without the `livefarm:stream-control` message that
/// drops a live publisher and clears the stream's entries at once. The database is connected
/// on first use: while it is unreachable publishes are refused as unavailable (retryable) and
/// ingest goes on serving.
pub struct StoreAuth {
    url: String,
    store: tokio::sync::OnceCell<Store>,
    defaults: Vec<Profile>,
    ttl: Duration,
    cache: Mutex<HashMap<String, Cached>>,
}

impl std::fmt::Debug for StoreAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreAuth")
            .field("url", &redact_url(&self.url))
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl StoreAuth {
    /// Auth against the database at `url` (`sqlite://...` or `postgres://...`), connected on
    /// first use. `Err` when the URL names no supported database.
    pub fn new(url: &str, defaults: Vec<Profile>, ttl: Duration) -> Result<StoreAuth, String> {
        let backend = Backend::from_url(url).map_err(|e| e.to_string())?;
        // ingest only reads: a SQLite file that is not there yet (the api makes and migrates
        // it) is waited for, never created empty
        let url =
            if backend == Backend::Sqlite && !url.contains(":memory:") && !url.contains("mode=") {
                let sep = if url.contains('?') { '&' } else { '?' };
                format!("{url}{sep}mode=rw")
            } else {
                url.to_owned()
            };
        Ok(StoreAuth {
            url,
            store: tokio::sync::OnceCell::new(),
            defaults,
            ttl: ttl.min(MAX_CACHE_TTL),
            cache: Mutex::new(HashMap::new()),
        })
    }

    /// Auth against an open store (one process sharing its store, tests).
    pub fn with_store(store: Store, defaults: Vec<Profile>, ttl: Duration) -> StoreAuth {
        StoreAuth {
            url: String::new(),
            store: tokio::sync::OnceCell::new_with(Some(store)),
            defaults,
            ttl: ttl.min(MAX_CACHE_TTL),
            cache: Mutex::new(HashMap::new()),
        }
    }

    async fn store(&self) -> Result<&Store, AuthError> {
        self.store
            .get_or_try_init(|| async {
                let options = StoreOptions {
                    max_connections: 4,
                    acquire_timeout: Duration::from_secs(3),
                };
                Store::connect(&self.url, &options).await
            })
            .await
            .map_err(|e| unavailable(&e))
    }

    fn cached(&self, key: &str) -> Option<Option<KnownStream>> {
        let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        cache
            .get(key)
            .filter(|c| c.at.elapsed() < self.ttl)
            .map(|c| c.stream.clone())
    }

    fn remember(&self, key: &str, stream: Option<KnownStream>) {
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= CACHE_CAPACITY {
            let ttl = self.ttl;
            cache.retain(|_, c| c.at.elapsed() < ttl);
            if cache.len() >= CACHE_CAPACITY {
                cache.clear();
            }
        }
        cache.insert(
            key.to_owned(),
            Cached {
                at: Instant::now(),
                stream,
            },
        );
    }

    async fn fetch(&self, key: &str) -> Result<Option<KnownStream>, AuthError> {
        let record = self
            .store()
            .await?
            .stream_by_key(key)
            .await
            .map_err(|e| unavailable(&e))?;
        Ok(record.map(|record| KnownStream {
            profiles: stream_ladder(&record.spec, &self.defaults),
            id: record.id,
            suspended: record.suspended,
            record: record.record,
        }))
    }

    async fn look_up(&self, request: &PublishRequest) -> Result<AuthorizedStream, AuthError> {
        let known = match self.cached(&request.stream_key) {
            Some(known) => known,
            None => {
                let known = self.fetch(&request.stream_key).await?;
                self.remember(&request.stream_key, known.clone());
                known
            }
        };
        let stream = known.ok_or_else(|| AuthError::Refused("unknown stream key".to_string()))?;
        if stream.suspended {
            return Err(AuthError::Refused("the stream is suspended".to_string()));
        }
        // go-livepeer's /live/{manifestID}/{streamKey}: the manifest must be the key's stream
        if let Some(manifest) = &request.manifest_id {
            if manifest != &stream.id {
                return Err(AuthError::Refused(
                    "stream key belongs to another stream".to_string(),
                ));
            }
        }
        let profiles = stream
            .profiles
            .map_err(|e| AuthError::Refused(format!("the stream's profiles: {e}")))?;
        Ok(AuthorizedStream {
            stream_id: stream.id,
            profiles,
            record: stream.record,
        })
    }
}

fn unavailable(error: &StoreError) -> AuthError {
    AuthError::Unavailable(format!(
        "control-plane store unreachable, try again: {error}"
    ))
}

/// The ladder of a stream's `spec`: its `profiles` (Studio's FfmpegProfile objects), the
/// defaults when absent or empty.
fn stream_ladder(
    spec: &serde_json::Map<String, serde_json::Value>,
    defaults: &[Profile],
) -> Result<Vec<Profile>, String> {
    match spec.get("profiles") {
        None | Some(serde_json::Value::Null) => Ok(defaults.to_vec()),
        Some(serde_json::Value::Array(entries)) => ladder_from(&[], entries, defaults),
        Some(other) => Err(format!("expected an array, got {other}")),
    }
}

impl PublisherAuth for StoreAuth {
    fn authorize<'a>(
        &'a self,
        request: &'a PublishRequest,
    ) -> BoxFuture<'a, Result<AuthorizedStream, AuthError>> {
        Box::pin(self.look_up(request))
    }

    fn forget_stream(&self, stream_id: &str) {
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        cache.retain(|_, c| c.stream.as_ref().is_none_or(|s| s.id != stream_id));
    }
}

/// go-livepeer's auth webhook: `POST {"url": ...}`; a non-2xx reply refuses, an empty body
/// keeps the defaults, a JSON body must carry `manifestID` and may carry `presets`/`profiles`.
#[derive(Debug, Clone)]
pub struct WebhookAuth {
    url: String,
    client: reqwest::Client,
    defaults: Vec<Profile>,
}

/// The fields of the webhook reply (and of `Livepeer-Transcode-Configuration`) ingest uses.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct TranscodeConfiguration {
    #[serde(rename = "manifestID")]
    pub(crate) manifest_id: String,
    pub(crate) presets: Vec<String>,
    pub(crate) profiles: Vec<serde_json::Value>,
    /// Not in go-livepeer; a Livefarm auth webhook may set it.
    pub(crate) record: bool,
}

/// The ladder of a configuration: presets then profiles; `defaults` when neither is given.
pub(crate) fn ladder_from(
    presets: &[String],
    profiles: &[serde_json::Value],
    defaults: &[Profile],
) -> Result<Vec<Profile>, String> {
    let mut ladder = Vec::new();
    for name in presets {
        let profile = preset(name)
            .or_else(|| studio_preset(name))
            .ok_or_else(|| format!("unknown preset {name:?}"))?;
        ladder.push(profile);
    }
    ladder.extend(parse_json_values(profiles).map_err(|e| e.to_string())?);
    if ladder.is_empty() {
        return Ok(defaults.to_vec());
    }
    validate_list(&ladder).map_err(|e| e.to_string())?;
    Ok(ladder)
}

impl WebhookAuth {
    /// `defaults`: the ladder when the reply names none.
    pub fn new(url: impl Into<String>, timeout: Duration, defaults: Vec<Profile>) -> Self {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .unwrap_or_default();
        WebhookAuth {
            url: url.into(),
            client,
            defaults,
        }
    }

    async fn ask(&self, request: &PublishRequest) -> Result<AuthorizedStream, AuthError> {
        let body = serde_json::json!({ "url": request.url }).to_string();
        let reply = self
            .client
            .post(&self.url)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .map_err(|e| AuthError::Unavailable(format!("auth webhook: {e}")))?;
        let status = reply.status();
        if !status.is_success() {
            return Err(AuthError::Refused(format!(
                "auth webhook answered {}",
                status.as_u16()
            )));
        }
        let text = reply
            .bytes()
            .await
            .map_err(|e| AuthError::Unavailable(format!("auth webhook reply: {e}")))?;
        let fallback_id = request
            .manifest_id
            .clone()
            .unwrap_or_else(|| request.stream_key.clone());
        if text.iter().all(u8::is_ascii_whitespace) {
            livefarm_jobs::validate_stream_id(&fallback_id)
                .map_err(|e| AuthError::Refused(e.to_string()))?;
            return Ok(AuthorizedStream {
                stream_id: fallback_id,
                profiles: self.defaults.clone(),
                record: false,
            });
        }
        let config: TranscodeConfiguration = serde_json::from_slice(&text)
            .map_err(|e| AuthError::Unavailable(format!("auth webhook reply: {e}")))?;
        if config.manifest_id.is_empty() {
            return Err(AuthError::Refused(
                "auth webhook reply has no manifestID".to_string(),
            ));
        }
        livefarm_jobs::validate_stream_id(&config.manifest_id)
            .map_err(|e| AuthError::Refused(format!("auth webhook manifestID: {e}")))?;
        let profiles = ladder_from(&config.presets, &config.profiles, &self.defaults)
            .map_err(|e| AuthError::Refused(format!("auth webhook profiles: {e}")))?;
        Ok(AuthorizedStream {
            stream_id: config.manifest_id,
            profiles,
            record: config.record,
        })
    }
}

impl PublisherAuth for WebhookAuth {
    fn authorize<'a>(
        &'a self,
        request: &'a PublishRequest,
    ) -> BoxFuture<'a, Result<AuthorizedStream, AuthError>> {
        Box::pin(self.ask(request))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(manifest: Option<&str>, key: &str) -> PublishRequest {
        PublishRequest {
            protocol: "rtmp",
            url: format!("rtmp://127.0.0.1/live/{key}"),
            manifest_id: manifest.map(str::to_string),
            stream_key: key.to_string(),
        }
    }

    #[test]
    fn redact_keeps_four_chars() {
        assert_eq!(redact("abcdefgh"), "abcd…");
        assert_eq!(redact("ab"), "ab…");
    }

    #[tokio::test]
    async fn static_auth_knows_only_its_keys() {
        let stream = AuthorizedStream {
            stream_id: "s1".into(),
            profiles: studio_default_ladder(),
            record: true,
        };
        let mut auth = StaticAuth::default();
        auth.insert("secret", stream.clone());
        assert_eq!(
            auth.authorize(&request(None, "secret")).await.expect("ok"),
            stream
        );
        assert!(matches!(
            auth.authorize(&request(None, "nope")).await,
            Err(AuthError::Refused(_))
        ));
    }

    #[tokio::test]
    async fn allow_any_prefers_the_manifest_id() {
        let auth = AllowAnyAuth::default();
        let got = auth
            .authorize(&request(Some("man"), "key"))
            .await
            .expect("ok");
        assert_eq!(got.stream_id, "man");
        let got = auth.authorize(&request(None, "key")).await.expect("ok");
        assert_eq!(got.stream_id, "key");
        assert!(auth.authorize(&request(None, "../x")).await.is_err());
    }

    #[test]
    fn ladder_combines_presets_and_profiles() {
        let ladder = ladder_from(
            &["P240p30fps16x9".to_string()],
            &[serde_json::json!({"name": "x", "width": 160, "height": 90, "bitrate": 100000})],
            &[],
        )
        .expect("ladder");
        let names: Vec<_> = ladder.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["P240p30fps16x9", "x"]);
        assert!(ladder_from(&["nope".to_string()], &[], &[]).is_err());
    }
}
