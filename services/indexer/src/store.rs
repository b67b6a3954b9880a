//! Where the follower keeps its cursor and derived state between runs: one Redis key per
//! chain and deployment, written atomically as a whole, or process memory.

use std::sync::{Arc, Mutex};

use livefarm_bus::redis_connect::RedisConnectError;
use redis::aio::ConnectionManager;
use redis::AsyncCommands;

use crate::error::IndexerError;

/// A place for the serialised state.
#[derive(Clone)]
pub enum Store {
    /// Process memory: lost at exit (tests, the benchmark, `redis_url = ""`).
    Memory(Arc<Mutex<std::collections::HashMap<String, Vec<u8>>>>),
    /// Redis; keys under the configured prefix (`livefarm:indexer:` by default).
    Redis(ConnectionManager),
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Store::Memory(_) => f.write_str("Store::Memory"),
            Store::Redis(_) => f.write_str("Store::Redis"),
        }
    }
}

impl Store {
    /// An empty in-memory store.
    pub fn memory() -> Store {
        Store::Memory(Arc::default())
    }

    /// Connects to Redis (`redis[s]://host:port[/db]`, see [`livefarm_bus::redis_connect`]);
    /// the connection reconnects by itself.
    pub async fn redis(url: &str) -> Result<Store, IndexerError> {
        let conn =
            livefarm_bus::redis_connect::connect(url)
                .await
                .map_err(|error| match error {
                    RedisConnectError::InvalidUrl { .. } => IndexerError::Config {
                        key: "redis_url",
                        reason: error.to_string(),
                    },
                    error => IndexerError::Store(error.to_string()),
                })?;
        Ok(Store::Redis(conn))
    }

    /// The value under `key`, if any.
    pub async fn load(&self, key: &str) -> Result<Option<Vec<u8>>, IndexerError> {
        match self {
            Store::Memory(m) => Ok(lock(m).get(key).cloned()),
            Store::Redis(conn) => {
                let mut conn = conn.clone();
                Ok(conn.get(key).await?)
            }
        }
    }

    /// Replaces the value under `key` (one SET: a reader sees the old or the new state whole).
    pub async fn save(&self, key: &str, value: Vec<u8>) -> Result<(), IndexerError> {
        match self {
            Store::Memory(m) => {
                lock(m).insert(key.to_owned(), value);
                Ok(())
            }
            Store::Redis(conn) => {
                let mut conn = conn.clone();
                let () = conn.set(key, value).await?;
                Ok(())
            }
        }
    }

    /// Removes `key`.
    pub async fn delete(&self, key: &str) -> Result<(), IndexerError> {
        match self {
            Store::Memory(m) => {
                lock(m).remove(key);
                Ok(())
            }
            Store::Redis(conn) => {
                let mut conn = conn.clone();
                let _: i64 = conn.del(key).await?;
                Ok(())
            }
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
