//! The in-process registry.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use crate::error::RegistryError;
use crate::stream::Stream;
use crate::{RegistryFuture, StreamRegistry};

/// An in-process registry: one process only, lost on restart. Registries opened by
/// [`MemoryRegistry::named`] with the same name share their streams, so services started in
/// one process (`livefarm up`) see one registry.
#[derive(Debug, Default, Clone)]
pub struct MemoryRegistry {
    inner: Arc<Mutex<Indexes>>,
}

#[derive(Debug, Default)]
struct Indexes {
    by_id: HashMap<String, Stream>,
    id_by_key: HashMap<String, String>,
    id_by_playback: HashMap<String, String>,
    /// Insertion order, so streams created in the same millisecond still list oldest first.
    order: HashMap<String, u64>,
    next: u64,
}

impl MemoryRegistry {
    /// An empty registry nobody else shares.
    pub fn new() -> Self {
        Self::default()
    }

    /// The process-wide registry called `name`, created empty on first use.
    pub fn named(name: &str) -> Self {
        static NAMED: OnceLock<Mutex<HashMap<String, MemoryRegistry>>> = OnceLock::new();
        let mut named = NAMED
            .get_or_init(Default::default)
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        named.entry(name.to_owned()).or_default().clone()
    }

    fn with<T>(&self, f: impl FnOnce(&mut Indexes) -> T) -> T {
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        f(&mut inner)
    }
}

impl StreamRegistry for MemoryRegistry {
    fn insert(&self, stream: Stream) -> RegistryFuture<'_, Stream> {
        Box::pin(async move {
            stream.validate()?;
            self.with(|i| {
                let taken = |field, value: &String| RegistryError::Conflict {
                    field,
                    value: value.clone(),
                };
                if i.by_id.contains_key(&stream.id) {
                    return Err(taken("id", &stream.id));
                }
                if i.id_by_key.contains_key(&stream.stream_key) {
                    return Err(taken("streamKey", &stream.stream_key));
                }
                if i.id_by_playback.contains_key(&stream.playback_id) {
                    return Err(taken("playbackId", &stream.playback_id));
                }
                i.id_by_key
                    .insert(stream.stream_key.clone(), stream.id.clone());
                i.id_by_playback
                    .insert(stream.playback_id.clone(), stream.id.clone());
                i.next += 1;
                i.order.insert(stream.id.clone(), i.next);
                i.by_id.insert(stream.id.clone(), stream.clone());
                Ok(stream)
            })
        })
    }

    fn get<'a>(&'a self, id: &'a str) -> RegistryFuture<'a, Option<Stream>> {
        Box::pin(async move { Ok(self.with(|i| i.by_id.get(id).cloned())) })
    }

    fn by_stream_key<'a>(&'a self, key: &'a str) -> RegistryFuture<'a, Option<Stream>> {
        Box::pin(async move {
            Ok(self.with(|i| i.id_by_key.get(key).and_then(|id| i.by_id.get(id)).cloned()))
        })
    }

    fn by_playback_id<'a>(&'a self, playback_id: &'a str) -> RegistryFuture<'a, Option<Stream>> {
        Box::pin(async move {
            Ok(self.with(|i| {
                i.id_by_playback
                    .get(playback_id)
                    .and_then(|id| i.by_id.get(id))
                    .cloned()
            }))
        })
    }

    fn list(&self) -> RegistryFuture<'_, Vec<Stream>> {
        Box::pin(async move {
            Ok(self.with(|i| {
                let mut streams: Vec<(u64, Stream)> = i
                    .by_id
                    .values()
                    .map(|s| (i.order.get(&s.id).copied().unwrap_or(0), s.clone()))
                    .collect();
                streams.sort_by_key(|(n, s)| (s.created_at, *n));
                streams.into_iter().map(|(_, s)| s).collect()
            }))
        })
    }

    fn delete<'a>(&'a self, id: &'a str) -> RegistryFuture<'a, bool> {
        Box::pin(async move {
            Ok(self.with(|i| match i.by_id.remove(id) {
                Some(stream) => {
                    i.id_by_key.remove(&stream.stream_key);
                    i.id_by_playback.remove(&stream.playback_id);
                    i.order.remove(id);
                    true
                }
                None => false,
            }))
        })
    }
}
