//! Live streams: what a tenant made with `POST /api/stream`, looked up by ingest through the
//! stream key and by playback through the playback id. Deletion is soft (`deleted_at`), as in
//! Studio: a deleted stream's key and playback id are never handed out again.
//!
//! The store owns the columns it queries or updates on its own (flags, times, ids); the rest
//! of Studio's stream object (profiles, recordingSpec, multistream, playbackPolicy, userTags,
//! creatorId) is one JSON object, `spec`, that the api validates and the store keeps verbatim.

use serde_json::{Map, Value};
use sqlx::any::AnyRow;
use sqlx::Row;

use crate::error::conflict_on;
use crate::ids::{now_ms, playback_id, stream_key, uuid_v4};
use crate::page::{after_cursor, Keyset, Page};
use crate::sessions::SessionCounters;
use crate::tenants::check_name;
use crate::{flag, Store, StoreError};

/// Largest `spec` JSON, in bytes (Studio caps `userTags` alone at 2 KiB).
pub const MAX_SPEC_BYTES: usize = 64 * 1024;
/// Fresh ids collide with astronomically low odds; a few tries rule out bad luck.
const CREATE_ATTEMPTS: usize = 4;

/// A stream row.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamRecord {
    pub id: String,
    pub tenant_id: String,
    pub name: String,
    pub stream_key: String,
    pub playback_id: String,
    pub record: bool,
    pub suspended: bool,
    pub is_active: bool,
    /// When a publisher was last seen (ms), 0 if never.
    pub last_seen: i64,
    pub last_terminated_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
    /// Name of the API key that made it.
    pub created_by_key_name: Option<String>,
    /// The rest of the Studio object (a JSON object).
    pub spec: Map<String, Value>,
    /// Usage over every session of the stream.
    pub counters: SessionCounters,
}

/// What a new stream is made of; ids and keys are generated.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct NewStream {
    pub name: String,
    pub record: bool,
    pub spec: Map<String, Value>,
    pub created_by_key_name: Option<String>,
}

/// A change to a stream; `None` leaves a field as it is.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct StreamPatch {
    pub name: Option<String>,
    pub record: Option<bool>,
    pub suspended: Option<bool>,
    /// Replaces the whole spec.
    pub spec: Option<Map<String, Value>>,
}

/// The outcome of [`Store::terminate_stream`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Terminate {
    /// Recorded; the live session is to be ended.
    Terminated,
    /// The previous terminate was less than the minimum interval ago (Studio: 429).
    TooSoon,
    /// No such stream for this tenant.
    NotFound,
}

/// `SELECT <every stream column>` followed by the rest of the query, as one static string
/// (sqlx takes only static SQL without an explicit audit; values are always bound).
macro_rules! select_streams {
    ($($rest:expr),+) => {
        concat!(
            "SELECT id, tenant_id, name, stream_key, playback_id, record, suspended, is_active, \
             last_seen, last_terminated_at, created_at, updated_at, created_by_key_name, spec, \
             source_segments, transcoded_segments, source_duration_ms, transcoded_duration_ms, \
             source_bytes, transcoded_bytes \
             FROM streams ",
            $($rest),+
        )
    };
}
pub(crate) use select_streams;

fn encode_spec(spec: &Map<String, Value>) -> Result<String, StoreError> {
    let text = serde_json::to_string(spec).map_err(|e| StoreError::Invalid {
        field: "spec",
        reason: e.to_string(),
    })?;
    if text.len() > MAX_SPEC_BYTES {
        return Err(StoreError::Invalid {
            field: "spec",
            reason: format!("{} bytes of JSON; at most {MAX_SPEC_BYTES}", text.len()),
        });
    }
    Ok(text)
}

pub(crate) fn stream(row: &AnyRow) -> Result<StreamRecord, StoreError> {
    let id: String = row.try_get("id")?;
    let spec: String = row.try_get("spec")?;
    let spec = match serde_json::from_str::<Value>(&spec) {
        Ok(Value::Object(map)) => map,
        Ok(_) => {
            return Err(StoreError::Corrupt {
                what: "stream",
                id,
                reason: "spec is not a JSON object".to_owned(),
            })
        }
        Err(e) => {
            return Err(StoreError::Corrupt {
                what: "stream",
                id,
                reason: e.to_string(),
            })
        }
    };
    Ok(StreamRecord {
        tenant_id: row.try_get("tenant_id")?,
        name: row.try_get("name")?,
        stream_key: row.try_get("stream_key")?,
        playback_id: row.try_get("playback_id")?,
        record: flag(row.try_get("record")?),
        suspended: flag(row.try_get("suspended")?),
        is_active: flag(row.try_get("is_active")?),
        last_seen: row.try_get("last_seen")?,
        last_terminated_at: row.try_get("last_terminated_at")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        created_by_key_name: row.try_get("created_by_key_name")?,
        spec,
        counters: SessionCounters::of(row)?,
        id,
    })
}

impl Store {
    /// Makes a stream for `tenant_id` with fresh id, stream key and playback id.
    pub async fn create_stream(
        &self,
        tenant_id: &str,
        new: NewStream,
    ) -> Result<StreamRecord, StoreError> {
        check_name("name", &new.name)?;
        let spec = encode_spec(&new.spec)?;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let id = uuid_v4()?;
            let now = now_ms();
            let record = StreamRecord {
                stream_key: stream_key(&id)?,
                playback_id: playback_id(&id)?,
                id,
                tenant_id: tenant_id.to_owned(),
                name: new.name.clone(),
                record: new.record,
                suspended: false,
                is_active: false,
                last_seen: 0,
                last_terminated_at: None,
                created_at: now,
                updated_at: now,
                created_by_key_name: new.created_by_key_name.clone(),
                spec: new.spec.clone(),
                counters: SessionCounters::default(),
            };
            let inserted = sqlx::query(
                "INSERT INTO streams (id, tenant_id, name, stream_key, playback_id, record, \
                 created_at, updated_at, created_by_key_name, spec) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            )
            .bind(&record.id)
            .bind(&record.tenant_id)
            .bind(&record.name)
            .bind(&record.stream_key)
            .bind(&record.playback_id)
            .bind(i64::from(record.record))
            .bind(record.created_at)
            .bind(record.updated_at)
            .bind(record.created_by_key_name.clone())
            .bind(&spec)
            .execute(self.pool())
            .await
            .map_err(conflict_on("stream id, key or playback id"));
            match inserted {
                Ok(_) => return Ok(record),
                Err(StoreError::Conflict { .. }) if attempt < CREATE_ATTEMPTS => continue,
                Err(StoreError::Database(sqlx::Error::Database(db)))
                    if db.is_foreign_key_violation() =>
                {
                    return Err(StoreError::NotFound {
                        what: "tenant",
                        id: tenant_id.to_owned(),
                    })
                }
                Err(error) => return Err(error),
            }
        }
    }

    /// The tenant's stream with this id; `None` if it is another tenant's or deleted.
    pub async fn stream(
        &self,
        tenant_id: &str,
        id: &str,
    ) -> Result<Option<StreamRecord>, StoreError> {
        let sql = select_streams!("WHERE id = $1 AND tenant_id = $2 AND deleted_at IS NULL");
        let row = sqlx::query(sql)
            .bind(id)
            .bind(tenant_id)
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(stream).transpose()
    }

    /// The stream a publisher's stream key opens (suspended ones included: the caller refuses
    /// them), for ingest.
    pub async fn stream_by_key(&self, key: &str) -> Result<Option<StreamRecord>, StoreError> {
        let sql = select_streams!("WHERE stream_key = $1 AND deleted_at IS NULL");
        let row = sqlx::query(sql)
            .bind(key)
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(stream).transpose()
    }

    /// The stream a playback id plays, for playback.
    pub async fn stream_by_playback_id(
        &self,
        playback_id: &str,
    ) -> Result<Option<StreamRecord>, StoreError> {
        let sql = select_streams!("WHERE playback_id = $1 AND deleted_at IS NULL");
        let row = sqlx::query(sql)
            .bind(playback_id)
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(stream).transpose()
    }

    /// One page of the tenant's streams, newest first, and the cursor of the next page
    /// (`None` on the last one).
    pub async fn list_streams(
        &self,
        tenant_id: &str,
        page: &Page,
    ) -> Result<(Vec<StreamRecord>, Option<String>), StoreError> {
        let keyset = Keyset::of(page)?;
        let sql = select_streams!(
            "WHERE tenant_id = $1 AND deleted_at IS NULL ",
            after_cursor!(2, 3),
            "ORDER BY created_at DESC, id DESC LIMIT $4"
        );
        let query = sqlx::query(sql).bind(tenant_id);
        keyset
            .fetch(query, self.pool(), stream, |row| (row.created_at, &row.id))
            .await
    }

    /// How many streams the tenant has (not deleted).
    pub async fn count_streams(&self, tenant_id: &str) -> Result<i64, StoreError> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS n FROM streams WHERE tenant_id = $1 AND deleted_at IS NULL",
        )
        .bind(tenant_id)
        .fetch_one(self.pool())
        .await?;
        Ok(row.try_get("n")?)
    }

    /// Applies `patch` to the tenant's stream; the updated stream, or `None` if there is none.
    pub async fn update_stream(
        &self,
        tenant_id: &str,
        id: &str,
        patch: StreamPatch,
    ) -> Result<Option<StreamRecord>, StoreError> {
        if let Some(name) = &patch.name {
            check_name("name", name)?;
        }
        let spec = patch.spec.as_ref().map(encode_spec).transpose()?;
        // COALESCE keeps a column when its new value is NULL (not part of the patch)
        let done = sqlx::query(
            "UPDATE streams SET name = COALESCE($1, name), record = COALESCE($2, record), \
             suspended = COALESCE($3, suspended), spec = COALESCE($4, spec), updated_at = $5 \
             WHERE id = $6 AND tenant_id = $7 AND deleted_at IS NULL",
        )
        .bind(patch.name)
        .bind(patch.record.map(i64::from))
        .bind(patch.suspended.map(i64::from))
        .bind(spec)
        .bind(now_ms())
        .bind(id)
        .bind(tenant_id)
        .execute(self.pool())
        .await?;
        if done.rows_affected() == 0 {
            return Ok(None);
        }
        self.stream(tenant_id, id).await
    }

    /// Deletes the tenant's stream (soft); false if there was none.
    pub async fn delete_stream(&self, tenant_id: &str, id: &str) -> Result<bool, StoreError> {
        let now = now_ms();
        let done = sqlx::query(
            "UPDATE streams SET deleted_at = $1, updated_at = $1, is_active = 0 \
             WHERE id = $2 AND tenant_id = $3 AND deleted_at IS NULL",
        )
        .bind(now)
        .bind(id)
        .bind(tenant_id)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Records a terminate unless the previous one was less than `min_interval_ms` ago.
    pub async fn terminate_stream(
        &self,
        tenant_id: &str,
        id: &str,
        min_interval_ms: i64,
    ) -> Result<Terminate, StoreError> {
        let now = now_ms();
        // one conditional write: two concurrent terminates cannot both pass
        let done = sqlx::query(
            "UPDATE streams SET last_terminated_at = $1, updated_at = $1 \
             WHERE id = $2 AND tenant_id = $3 AND deleted_at IS NULL \
             AND (last_terminated_at IS NULL OR last_terminated_at <= $4)",
        )
        .bind(now)
        .bind(id)
        .bind(tenant_id)
        .bind(now - min_interval_ms)
        .execute(self.pool())
        .await?;
        if done.rows_affected() == 1 {
            return Ok(Terminate::Terminated);
        }
        Ok(match self.stream(tenant_id, id).await? {
            Some(_) => Terminate::TooSoon,
            None => Terminate::NotFound,
        })
    }

    /// A publisher is live on the stream at `now`: sets `lastSeen`, and `isActive` if it was
    /// not. True exactly when this call made it active, so that `stream.started` is emitted
    /// once per transition even with several writers.
    pub async fn mark_stream_active(&self, id: &str, now: i64) -> Result<bool, StoreError> {
        let became = sqlx::query(
            "UPDATE streams SET is_active = 1, last_seen = $1 \
             WHERE id = $2 AND is_active = 0 AND deleted_at IS NULL",
        )
        .bind(now)
        .bind(id)
        .execute(self.pool())
        .await?;
        if became.rows_affected() == 1 {
            return Ok(true);
        }
        // already active: only move lastSeen forward
        sqlx::query(
            "UPDATE streams SET last_seen = $1 WHERE id = $2 AND last_seen < $1 AND deleted_at IS NULL",
        )
        .bind(now)
        .bind(id)
        .execute(self.pool())
        .await?;
        Ok(false)
    }

    /// The publisher left: clears `isActive`. True exactly when this call made it idle (one
    /// `stream.idle` per transition).
    pub async fn mark_stream_idle(&self, id: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("UPDATE streams SET is_active = 0 WHERE id = $1 AND is_active = 1")
            .bind(id)
            .execute(self.pool())
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Active streams whose publisher was last seen before `cutoff`: the idle sweep's input.
    pub async fn stale_active_streams(&self, cutoff: i64) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query(
            "SELECT id FROM streams WHERE is_active = 1 AND last_seen < $1 AND deleted_at IS NULL \
             ORDER BY last_seen LIMIT 1000",
        )
        .bind(cutoff)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|row| Ok(row.try_get::<String, _>("id")?))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oversized_specs_are_refused() {
        let mut spec = Map::new();
        spec.insert(
            "userTags".to_owned(),
            Value::String("x".repeat(MAX_SPEC_BYTES)),
        );
        assert!(matches!(
            encode_spec(&spec),
            Err(StoreError::Invalid { field: "spec", .. })
        ));
    }
}
