//! The Redis registry: streams shared by every replica of every service.
//!
//! Keys (all under [`KEY_PREFIX`]):
//! - `stream:{id}`: a hash with the stream's JSON (`json`), its stream key (`key`) and
//!   playback id (`playback`);
//! - `key:{streamKey}` and `playback:{playbackId}`: the stream id;
//! - `streams`: a sorted set of ids scored by creation time.
//!
//! Create and delete run as Lua scripts, so the indexes never disagree with the streams and two
//! creators can never both take a stream key or playback id. The scripts name some keys they
//! build from the prefix, which a single Redis (not Redis Cluster) allows.

use redis::aio::ConnectionManager;
use redis::{Cmd, FromRedisValue};

use crate::error::RegistryError;
use crate::stream::Stream;
use crate::{RegistryFuture, StreamRegistry};

/// Prefix of every key the registry writes.
pub const KEY_PREFIX: &str = livefarm_jobs::REGISTRY_KEY_PREFIX;

/// Inserts a stream unless its id, key or playback id is taken; returns 0 (inserted), or
/// 1, 2, 3 naming the taken field.
const INSERT: &str = r"
if redis.call('EXISTS', KEYS[1]) == 1 then return 1 end
if redis.call('EXISTS', KEYS[2]) == 1 then return 2 end
if redis.call('EXISTS', KEYS[3]) == 1 then return 3 end
redis.call('HSET', KEYS[1], 'json', ARGV[2], 'key', ARGV[3], 'playback', ARGV[4])
redis.call('SET', KEYS[2], ARGV[1])
redis.call('SET', KEYS[3], ARGV[1])
redis.call('ZADD', KEYS[4], ARGV[5], ARGV[1])
return 0
";

/// Removes a stream and its indexes; returns 1 if it existed.
const DELETE: &str = r"
local fields = redis.call('HMGET', KEYS[1], 'key', 'playback')
if not fields[1] then return 0 end
redis.call('DEL', KEYS[1], ARGV[1] .. 'key:' .. fields[1], ARGV[1] .. 'playback:' .. fields[2])
redis.call('ZREM', KEYS[2], ARGV[2])
return 1
";

/// Follows an index key to the stream's JSON in one round trip.
const LOOKUP: &str = r"
local id = redis.call('GET', KEYS[1])
if not id then return false end
return redis.call('HGET', ARGV[1] .. 'stream:' .. id, 'json')
";

/// A registry in Redis; cheap to clone (one multiplexed connection that reconnects by itself).
#[derive(Clone)]
pub struct RedisRegistry {
    conn: ConnectionManager,
}

impl std::fmt::Debug for RedisRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisRegistry").finish_non_exhaustive()
    }
}

impl RedisRegistry {
    /// Connects to `redis[s]://host:port[/db]` (see [`livefarm_bus::redis_connect`]) and
    /// checks that the server answers.
    pub async fn connect(url: &str) -> Result<Self, RegistryError> {
        let conn = livefarm_bus::redis_connect::connect(url).await?;
        Ok(RedisRegistry { conn })
    }

    /// Runs one command, once more if the connection had dropped (the manager reconnects).
    async fn query<T: FromRedisValue>(&self, cmd: &Cmd) -> Result<T, RegistryError> {
        let mut conn = self.conn.clone();
        match cmd.query_async::<T>(&mut conn).await {
            Err(error) if error.is_connection_dropped() => {
                Ok(cmd.query_async::<T>(&mut conn).await?)
            }
            other => Ok(other?),
        }
    }

    async fn lookup(&self, index_key: String) -> Result<Option<Stream>, RegistryError> {
        let mut cmd = redis::cmd("EVAL");
        cmd.arg(LOOKUP).arg(1).arg(index_key).arg(KEY_PREFIX);
        let json: Option<String> = self.query(&cmd).await?;
        json.map(|json| decode(&json)).transpose()
    }
}

fn stream_key(id: &str) -> String {
    format!("{KEY_PREFIX}stream:{id}")
}

fn decode(json: &str) -> Result<Stream, RegistryError> {
    serde_json::from_str(json).map_err(|error| RegistryError::Corrupt {
        // the id is inside the JSON that failed; show a prefix so the record can be found
        id: json.chars().take(64).collect(),
        reason: error.to_string(),
    })
}

impl StreamRegistry for RedisRegistry {
    fn insert(&self, stream: Stream) -> RegistryFuture<'_, Stream> {
        Box::pin(async move {
            stream.validate()?;
            let json = serde_json::to_string(&stream)
                .map_err(|e| RegistryError::InvalidStream(e.to_string()))?;
            let mut cmd = redis::cmd("EVAL");
            cmd.arg(INSERT)
                .arg(4)
                .arg(stream_key(&stream.id))
                .arg(format!("{KEY_PREFIX}key:{}", stream.stream_key))
                .arg(format!("{KEY_PREFIX}playback:{}", stream.playback_id))
                .arg(format!("{KEY_PREFIX}streams"))
                .arg(&stream.id)
                .arg(json)
                .arg(&stream.stream_key)
                .arg(&stream.playback_id)
                .arg(stream.created_at);
            let (field, value) = match self.query::<i64>(&cmd).await? {
                0 => return Ok(stream),
                1 => ("id", stream.id),
                2 => ("streamKey", stream.stream_key),
                _ => ("playbackId", stream.playback_id),
            };
            Err(RegistryError::Conflict { field, value })
        })
    }

    fn get<'a>(&'a self, id: &'a str) -> RegistryFuture<'a, Option<Stream>> {
        Box::pin(async move {
            let mut cmd = redis::cmd("HGET");
            cmd.arg(stream_key(id)).arg("json");
            let json: Option<String> = self.query(&cmd).await?;
            json.map(|json| decode(&json)).transpose()
        })
    }

    fn by_stream_key<'a>(&'a self, key: &'a str) -> RegistryFuture<'a, Option<Stream>> {
        Box::pin(self.lookup(format!("{KEY_PREFIX}key:{key}")))
    }

    fn by_playback_id<'a>(&'a self, playback_id: &'a str) -> RegistryFuture<'a, Option<Stream>> {
        Box::pin(self.lookup(format!("{KEY_PREFIX}playback:{playback_id}")))
    }

    fn list(&self) -> RegistryFuture<'_, Vec<Stream>> {
        Box::pin(async move {
            let mut cmd = redis::cmd("ZRANGE");
            cmd.arg(format!("{KEY_PREFIX}streams")).arg(0).arg(-1);
            let ids: Vec<String> = self.query(&cmd).await?;
            if ids.is_empty() {
                return Ok(Vec::new());
            }
            let mut pipe = redis::pipe();
            for id in &ids {
                pipe.cmd("HGET").arg(stream_key(id)).arg("json");
            }
            let mut conn = self.conn.clone();
            let values: Vec<Option<String>> = pipe.query_async(&mut conn).await?;
            // a stream deleted between the two reads is simply left out
            values.iter().flatten().map(|json| decode(json)).collect()
        })
    }

    fn delete<'a>(&'a self, id: &'a str) -> RegistryFuture<'a, bool> {
        Box::pin(async move {
            let mut cmd = redis::cmd("EVAL");
            cmd.arg(DELETE)
                .arg(2)
                .arg(stream_key(id))
                .arg(format!("{KEY_PREFIX}streams"))
                .arg(KEY_PREFIX)
                .arg(id);
            Ok(self.query::<i64>(&cmd).await? == 1)
        })
    }
}
