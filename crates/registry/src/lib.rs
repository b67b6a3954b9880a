//! `livefarm-registry`: the stream registry shared by the API (which creates streams and maps
//! playback ids to them) and ingest (which checks publishers' stream keys).
//!
//! A [`Stream`] has an id, a secret stream key, a public playback id, a rendition ladder and a
//! `record` flag. [`StreamRegistry`] is object-safe with boxed futures; [`connect`] picks the
//! backend by URL:
//! - `memory://[name]`: [`MemoryRegistry`], in-process; registries with the same name (empty
//!   means `default`) share their streams, so services started in one process see one registry.
//! - `redis://host:port[/db]`: [`RedisRegistry`], keys under `livefarm:registry:`, shared by
//!   every replica. Creation is atomic: a stream key or playback id is never handed out twice.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

mod error;
mod memory;
mod redis_registry;
mod stream;

pub use error::RegistryError;
pub use memory::MemoryRegistry;
pub use redis_registry::{RedisRegistry, KEY_PREFIX};
pub use stream::{now_ms, random_id, Stream};

use livefarm_profiles::Profile;

/// What the registry's methods return.
pub type RegistryFuture<'a, T> =
    Pin<Box<dyn Future<Output = Result<T, RegistryError>> + Send + 'a>>;

/// Fresh ids collide with astronomically low odds; a few tries rule out bad luck.
const CREATE_ATTEMPTS: usize = 4;

/// Where streams are kept.
pub trait StreamRegistry: Send + Sync + std::fmt::Debug {
    /// Stores `stream` as given, unless its id, stream key or playback id is already taken
    /// ([`RegistryError::Conflict`], nothing stored). For streams whose ids come from outside
    /// (an auth webhook's manifest id).
    fn insert(&self, stream: Stream) -> RegistryFuture<'_, Stream>;
    /// The stream with this id.
    fn get<'a>(&'a self, id: &'a str) -> RegistryFuture<'a, Option<Stream>>;
    /// The stream this stream key publishes to.
    fn by_stream_key<'a>(&'a self, key: &'a str) -> RegistryFuture<'a, Option<Stream>>;
    /// The stream this playback id plays.
    fn by_playback_id<'a>(&'a self, playback_id: &'a str) -> RegistryFuture<'a, Option<Stream>>;
    /// Every stream, oldest first.
    fn list(&self) -> RegistryFuture<'_, Vec<Stream>>;
    /// Removes the stream and frees its stream key and playback id; returns whether it existed.
    fn delete<'a>(&'a self, id: &'a str) -> RegistryFuture<'a, bool>;

    /// Creates a stream with fresh id, stream key and playback id.
    fn create(
        &self,
        name: String,
        profiles: Vec<Profile>,
        record: bool,
    ) -> RegistryFuture<'_, Stream> {
        Box::pin(async move {
            let mut attempt = 0;
            loop {
                let stream = Stream::new(name.clone(), profiles.clone(), record)?;
                match self.insert(stream).await {
                    Err(RegistryError::Conflict { .. }) if attempt + 1 < CREATE_ATTEMPTS => {
                        attempt += 1;
                    }
                    other => return other,
                }
            }
        })
    }
}

/// Opens the registry named by `url`: `memory://[name]` or `redis://...` (`rediss://` and
/// `redis+unix://` too). For Redis this checks that the server answers.
pub async fn connect(url: &str) -> Result<Arc<dyn StreamRegistry>, RegistryError> {
    if let Some(name) = url.strip_prefix("memory://") {
        let name = name.trim_end_matches('/');
        let name = if name.is_empty() { "default" } else { name };
        return Ok(Arc::new(MemoryRegistry::named(name)));
    }
    if ["redis://", "rediss://", "redis+unix://"]
        .iter()
        .any(|scheme| url.starts_with(scheme))
    {
        return Ok(Arc::new(RedisRegistry::connect(url).await?));
    }
    Err(RegistryError::InvalidUrl {
        url: url.to_owned(),
        reason: "expected memory://[name] or redis://host:port".to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn named_memory_registries_share_streams() {
        let a = connect("memory://lib-share").await.expect("a");
        let b = connect("memory://lib-share/").await.expect("b");
        let other = connect("memory://lib-other").await.expect("other");
        let stream = a
            .create("cam".to_owned(), Vec::new(), false)
            .await
            .expect("create");
        assert_eq!(b.get(&stream.id).await.expect("get"), Some(stream.clone()));
        assert_eq!(other.get(&stream.id).await.expect("get"), None);
    }

    #[tokio::test]
    async fn unknown_schemes_are_refused() {
        let error = connect("postgres://x").await.expect_err("refused");
        assert!(matches!(error, RegistryError::InvalidUrl { .. }), "{error}");
    }
}
