//! Publisher auth: which stream a publisher's key opens, with which ladder.
//!
//! [`PublisherAuth`] is a trait object, so each deployment picks its source of truth. Four
//! implementations ship: [`RegistryAuth`] (the stream registry), [`StaticAuth`] (a key map),
//! [`WebhookAuth`] (go-livepeer's auth webhook, livepeer-protocol.md §5.3) and
//! [`AllowAnyAuth`] (development).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use livefarm_profiles::{
    parse_json_values, preset, studio_default_ladder, studio_preset, validate_list, Profile,
};
use livefarm_registry::StreamRegistry;
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

/// The stream registry (`livefarm stream create`, `POST /api/stream`): a key opens the stream
/// it was created for, with that stream's ladder (the defaults when it names none).
#[derive(Clone)]
pub struct RegistryAuth {
    registry: Arc<dyn StreamRegistry>,
    defaults: Vec<Profile>,
}

impl std::fmt::Debug for RegistryAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryAuth").finish_non_exhaustive()
    }
}

impl RegistryAuth {
    pub fn new(registry: Arc<dyn StreamRegistry>, defaults: Vec<Profile>) -> Self {
        RegistryAuth { registry, defaults }
    }

    async fn look_up(&self, request: &PublishRequest) -> Result<AuthorizedStream, AuthError> {
        let stream = self
            .registry
            .by_stream_key(&request.stream_key)
            .await
            .map_err(|e| AuthError::Unavailable(format!("stream registry: {e}")))?
            .ok_or_else(|| AuthError::Refused("unknown stream key".to_string()))?;
        // go-livepeer's /live/{manifestID}/{streamKey}: the manifest must be the key's stream
        if let Some(manifest) = &request.manifest_id {
            if manifest != &stream.id {
                return Err(AuthError::Refused(
                    "stream key belongs to another stream".to_string(),
                ));
            }
        }
        let profiles = if stream.profiles.is_empty() {
            self.defaults.clone()
        } else {
            stream.profiles
        };
        Ok(AuthorizedStream {
            stream_id: stream.id,
            profiles,
            record: stream.record,
        })
    }
}

impl PublisherAuth for RegistryAuth {
    fn authorize<'a>(
        &'a self,
        request: &'a PublishRequest,
    ) -> BoxFuture<'a, Result<AuthorizedStream, AuthError>> {
        Box::pin(self.look_up(request))
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
    /// Not in go-livepeer; Livefarm's registry may set it.
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

    #[tokio::test]
    async fn registry_keys_open_their_stream_and_nothing_else() {
        let registry = livefarm_registry::connect("memory://ingest-auth-test")
            .await
            .expect("registry");
        let ladder = vec![livefarm_profiles::preset("P144p30fps16x9").expect("preset")];
        let stream = registry
            .create("demo".to_string(), ladder.clone(), true)
            .await
            .expect("created");
        let auth = RegistryAuth::new(registry, studio_default_ladder());
        let request = |manifest: Option<&str>, key: &str| PublishRequest {
            protocol: "rtmp",
            url: "rtmp://x/live".to_string(),
            manifest_id: manifest.map(str::to_string),
            stream_key: key.to_string(),
        };
        let ok = auth
            .authorize(&request(None, &stream.stream_key))
            .await
            .expect("a registered key");
        assert_eq!(ok.stream_id, stream.id);
        assert_eq!(ok.profiles, ladder);
        assert!(ok.record);
        auth.authorize(&request(Some(&stream.id), &stream.stream_key))
            .await
            .expect("go-livepeer path with the right manifest");
        assert!(matches!(
            auth.authorize(&request(Some("other"), &stream.stream_key))
                .await,
            Err(AuthError::Refused(_))
        ));
        assert!(matches!(
            auth.authorize(&request(None, "not-a-key")).await,
            Err(AuthError::Refused(_))
        ));
    }
}
