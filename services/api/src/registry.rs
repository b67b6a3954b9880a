//! The stream registry: streams created over the API, found by id, stream key or playback id.
//!
//! [`StreamRegistry`] is object-safe with boxed futures so a shared (Redis) registry can
//! replace [`MemoryRegistry`] without touching the handlers.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Mutex, PoisonError};

use livefarm_profiles::Profile;
use serde::Serialize;

use crate::error::ApiError;

/// What the registry's methods return.
pub type RegistryFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, ApiError>> + Send + 'a>>;

/// A live stream as the API knows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Stream {
    /// Stable id; also the stream id on the bus and in storage keys.
    pub id: String,
    /// Name given by the creator.
    pub name: String,
    /// Secret the publisher authenticates with.
    pub stream_key: String,
    /// Public id of the playback URLs.
    pub playback_id: String,
    /// The rendition ladder.
    #[serde(serialize_with = "serialize_profiles")]
    pub profiles: Vec<Profile>,
    /// Whether a full VOD playlist is kept.
    pub record: bool,
    /// Creation time, ms since the epoch.
    pub created_at: u64,
}

fn serialize_profiles<S: serde::Serializer>(
    profiles: &[Profile],
    serializer: S,
) -> Result<S::Ok, S::Error> {
    let text = livefarm_profiles::to_json_profiles(profiles);
    let value: serde_json::Value =
        serde_json::from_str(&text).map_err(serde::ser::Error::custom)?;
    value.serialize(serializer)
}

/// Where streams are kept.
pub trait StreamRegistry: Send + Sync + std::fmt::Debug {
    /// Creates a stream with fresh id, stream key and playback id.
    fn create(
        &self,
        name: String,
        profiles: Vec<Profile>,
        record: bool,
    ) -> RegistryFuture<'_, Stream>;
    /// The stream with this id.
    fn get<'a>(&'a self, id: &'a str) -> RegistryFuture<'a, Option<Stream>>;
    /// The stream this stream key publishes to.
    fn by_stream_key<'a>(&'a self, key: &'a str) -> RegistryFuture<'a, Option<Stream>>;
    /// The stream this playback id plays.
    fn by_playback_id<'a>(&'a self, playback_id: &'a str) -> RegistryFuture<'a, Option<Stream>>;
}

/// An in-process registry (one API replica only; lost on restart).
#[derive(Debug, Default)]
pub struct MemoryRegistry {
    inner: Mutex<Indexes>,
}

#[derive(Debug, Default)]
struct Indexes {
    by_id: HashMap<String, Stream>,
    id_by_key: HashMap<String, String>,
    id_by_playback: HashMap<String, String>,
}

impl MemoryRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    fn lookup(&self, find: impl FnOnce(&Indexes) -> Option<Stream>) -> Option<Stream> {
        let inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        find(&inner)
    }
}

impl StreamRegistry for MemoryRegistry {
    fn create(
        &self,
        name: String,
        profiles: Vec<Profile>,
        record: bool,
    ) -> RegistryFuture<'_, Stream> {
        Box::pin(async move {
            let stream = Stream {
                id: random_id(32)?,
                name,
                stream_key: random_id(24)?,
                playback_id: random_id(16)?,
                profiles,
                record,
                created_at: livefarm_jobs::now_ms(),
            };
            let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
            inner
                .id_by_key
                .insert(stream.stream_key.clone(), stream.id.clone());
            inner
                .id_by_playback
                .insert(stream.playback_id.clone(), stream.id.clone());
            inner.by_id.insert(stream.id.clone(), stream.clone());
            Ok(stream)
        })
    }

    fn get<'a>(&'a self, id: &'a str) -> RegistryFuture<'a, Option<Stream>> {
        Box::pin(async move { Ok(self.lookup(|i| i.by_id.get(id).cloned())) })
    }

    fn by_stream_key<'a>(&'a self, key: &'a str) -> RegistryFuture<'a, Option<Stream>> {
        Box::pin(async move {
            Ok(self.lookup(|i| i.id_by_key.get(key).and_then(|id| i.by_id.get(id)).cloned()))
        })
    }

    fn by_playback_id<'a>(&'a self, playback_id: &'a str) -> RegistryFuture<'a, Option<Stream>> {
        Box::pin(async move {
            Ok(self.lookup(|i| {
                i.id_by_playback
                    .get(playback_id)
                    .and_then(|id| i.by_id.get(id))
                    .cloned()
            }))
        })
    }
}

const ALPHABET: &[u8; 62] = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";

/// `len` random letters and digits (url-safe, valid as a stream id and a storage key part).
pub fn random_id(len: usize) -> Result<String, ApiError> {
    let mut out = String::with_capacity(len);
    let mut buf = [0u8; 64];
    while out.len() < len {
        getrandom::fill(&mut buf).map_err(|e| ApiError::Randomness(e.to_string()))?;
        // rejection sampling keeps every character equally likely
        for b in buf.iter().map(|b| b & 0x3f).filter(|b| *b < 62) {
            if out.len() == len {
                break;
            }
            out.push(char::from(ALPHABET[usize::from(b)]));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn streams_are_found_by_each_id() {
        let registry = MemoryRegistry::new();
        let stream = registry
            .create("cam".to_owned(), Vec::new(), true)
            .await
            .expect("created");
        assert!(stream.stream_key.len() >= 16);
        assert_ne!(stream.id, stream.playback_id);
        let by_id = registry.get(&stream.id).await.expect("get");
        let by_key = registry
            .by_stream_key(&stream.stream_key)
            .await
            .expect("key");
        let by_pb = registry
            .by_playback_id(&stream.playback_id)
            .await
            .expect("pb");
        assert_eq!(by_id.as_ref(), Some(&stream));
        assert_eq!(by_key.as_ref(), Some(&stream));
        assert_eq!(by_pb.as_ref(), Some(&stream));
        assert!(registry.get("nope").await.expect("get").is_none());
        let other = registry
            .create("cam".to_owned(), Vec::new(), false)
            .await
            .expect("created");
        assert_ne!(other.stream_key, stream.stream_key);
    }

    #[test]
    fn random_ids_are_url_safe() {
        let id = random_id(40).expect("random");
        assert_eq!(id.len(), 40);
        assert!(id.chars().all(|c| c.is_ascii_alphanumeric()));
        livefarm_jobs::validate_stream_id(&id).expect("valid stream id");
    }
}
