//! Publish sessions and their recordings: one row per publish of a stream (its id is ingest's
//! session id), the seq range `[first_seq, next_seq)` it covers, counters, the recording's
//! status, and the webhook events it owes.
//!
//! Every write here converges when several api replicas make it: counters only grow to the
//! absolute values given (never incremented), transitions are conditional updates that one
//! writer wins, and a recording is finalized under a lease ([`Store::claim_recording`]).
//!
//! Events are an outbox: a transition records the events it causes in `events_owed` in the
//! same statement or transaction; whoever hands them over marks them in `events_sent`
//! ([`Store::mark_events_sent`]). A process that dies in between leaves them owed, and the
//! next sweep emits them (with the same deterministic ids, so nothing is delivered twice).

use serde_json::{Map, Value};
use sqlx::any::AnyRow;
use sqlx::Row;

use crate::page::{after_cursor, Keyset, Page, MAX_PAGE};
use crate::streams::{select_streams, stream as stream_row, StreamRecord};
use crate::{flag, Store, StoreError};

/// The bits of `events_owed` / `events_sent`, in the order events are emitted.
pub mod session_events {
    /// `stream.started` (this session's publish made the stream active).
    pub const STREAM_STARTED: i64 = 1;
    /// `recording.started`.
    pub const RECORDING_STARTED: i64 = 2;
    /// `stream.idle` (the stream went idle after this session, its last one).
    pub const STREAM_IDLE: i64 = 4;
    /// `recording.waiting` (the session ended; the recording is being made).
    pub const RECORDING_WAITING: i64 = 8;
    /// `recording.ready`.
    pub const RECORDING_READY: i64 = 16;
    /// Every bit with its event name, in emission order.
    pub const ALL: [(i64, &str); 5] = [
        (STREAM_STARTED, "stream.started"),
        (RECORDING_STARTED, "recording.started"),
        (STREAM_IDLE, "stream.idle"),
        (RECORDING_WAITING, "recording.waiting"),
        (RECORDING_READY, "recording.ready"),
    ];
}

use session_events as ev;

/// Where a session's recording stands (Studio's `recordingStatus`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordingStatus {
    /// Recorded, not finalized yet (live, or being made after the end).
    Waiting,
    /// HLS and MP4 are in storage.
    Ready,
    /// Could not be made; see the session's `error`.
    Failed,
    /// Not recorded.
    None,
}

impl RecordingStatus {
    /// The API's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            RecordingStatus::Waiting => "waiting",
            RecordingStatus::Ready => "ready",
            RecordingStatus::Failed => "failed",
            RecordingStatus::None => "none",
        }
    }

    fn parse(text: &str) -> Option<RecordingStatus> {
        Some(match text {
            "waiting" => RecordingStatus::Waiting,
            "ready" => RecordingStatus::Ready,
            "failed" => RecordingStatus::Failed,
            "none" => RecordingStatus::None,
            _ => return None,
        })
    }
}

/// A session's counters (Studio's `sourceSegments`, ... ; durations in ms).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SessionCounters {
    pub source_segments: i64,
    pub transcoded_segments: i64,
    pub source_duration_ms: i64,
    pub transcoded_duration_ms: i64,
    pub source_bytes: i64,
    pub transcoded_bytes: i64,
}

impl SessionCounters {
    /// The counter columns of a session or stream row (the same names in both tables).
    pub(crate) fn of(row: &AnyRow) -> Result<SessionCounters, StoreError> {
        Ok(SessionCounters {
            source_segments: row.try_get("source_segments")?,
            transcoded_segments: row.try_get("transcoded_segments")?,
            source_duration_ms: row.try_get("source_duration_ms")?,
            transcoded_duration_ms: row.try_get("transcoded_duration_ms")?,
            source_bytes: row.try_get("source_bytes")?,
            transcoded_bytes: row.try_get("transcoded_bytes")?,
        })
    }
}

/// A session row.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionRecord {
    /// Ingest's session id.
    pub id: String,
    /// The parent stream.
    pub stream_id: String,
    pub tenant_id: String,
    /// The stream's name when the session started.
    pub name: String,
    /// Copied from the stream when the session started.
    pub record: bool,
    /// `profiles` and `recordingSpec` as the stream had them (a JSON object).
    pub spec: Map<String, Value>,
    /// `rtmp`, `srt`, ...
    pub protocol: String,
    pub created_at: i64,
    pub last_seen: i64,
    /// When the publisher left (or was declared gone), ms.
    pub ended_at: Option<i64>,
    /// Seq of the session's first segment.
    pub first_seq: i64,
    /// One past the session's last segment, once it ended.
    pub next_seq: Option<i64>,
    pub counters: SessionCounters,
    pub recording_status: RecordingStatus,
    pub recording_ready_at: Option<i64>,
    /// Why the recording failed.
    pub error: Option<String>,
    /// [`session_events`] bits owed and handed over.
    pub events_owed: i64,
    pub events_sent: i64,
}

impl SessionRecord {
    /// Events owed and not yet handed over, in emission order.
    pub fn unsent_events(&self) -> Vec<(i64, &'static str)> {
        ev::ALL
            .iter()
            .filter(|(bit, _)| self.events_owed & bit != 0 && self.events_sent & bit == 0)
            .copied()
            .collect()
    }
}

/// What a new session is made of (from ingest's `started` event and the stream).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct NewSession {
    pub id: String,
    pub stream_id: String,
    pub tenant_id: String,
    pub name: String,
    pub record: bool,
    pub spec: Map<String, Value>,
    pub protocol: String,
    /// When the publish started, ms.
    pub created_at: i64,
    pub first_seq: i64,
}

/// Which sessions a list returns.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SessionFilter {
    /// Only this stream's.
    pub stream_id: Option<String>,
    /// Only recorded (`true`) or only unrecorded (`false`) ones.
    pub record: Option<bool>,
    /// Only sessions that have segments (`GET /stream/{id}/sessions`).
    pub with_segments: bool,
}

/// Why an active stream went idle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdleTransition {
    /// The stream.
    pub stream_id: String,
    /// Its last session, which owes `stream.idle` (none if it never had one).
    pub session_id: Option<String>,
}

/// `SELECT <every session column>` followed by the rest of the query.
macro_rules! select_sessions {
    ($($rest:expr),+) => {
        concat!(
            "SELECT id, stream_id, tenant_id, name, record, spec, protocol, created_at, last_seen, \
             ended_at, first_seq, next_seq, source_segments, transcoded_segments, \
             source_duration_ms, transcoded_duration_ms, source_bytes, transcoded_bytes, \
             recording_status, recording_ready_at, error, events_owed, events_sent FROM sessions ",
            $($rest),+
        )
    };
}

fn session(row: &AnyRow) -> Result<SessionRecord, StoreError> {
    let id: String = row.try_get("id")?;
    let corrupt = |reason: String| StoreError::Corrupt {
        what: "session",
        id: id.clone(),
        reason,
    };
    let spec: String = row.try_get("spec")?;
    let spec = match serde_json::from_str::<Value>(&spec) {
        Ok(Value::Object(map)) => map,
        Ok(_) => return Err(corrupt("spec is not a JSON object".to_owned())),
        Err(e) => return Err(corrupt(e.to_string())),
    };
    let status: String = row.try_get("recording_status")?;
    let recording_status = RecordingStatus::parse(&status)
        .ok_or_else(|| corrupt(format!("unknown recording status {status:?}")))?;
    Ok(SessionRecord {
        stream_id: row.try_get("stream_id")?,
        tenant_id: row.try_get("tenant_id")?,
        name: row.try_get("name")?,
        record: flag(row.try_get("record")?),
        spec,
        protocol: row.try_get("protocol")?,
        created_at: row.try_get("created_at")?,
        last_seen: row.try_get("last_seen")?,
        ended_at: row.try_get("ended_at")?,
        first_seq: row.try_get("first_seq")?,
        next_seq: row.try_get("next_seq")?,
        counters: SessionCounters::of(row)?,
        recording_status,
        recording_ready_at: row.try_get("recording_ready_at")?,
        error: row.try_get("error")?,
        events_owed: row.try_get("events_owed")?,
        events_sent: row.try_get("events_sent")?,
        id,
    })
}

/// `column = ` the sum of the column over the stream's sessions.
macro_rules! stream_total {
    ($column:literal) => {
        concat!(
            $column,
            " = (SELECT COALESCE(SUM(",
            $column,
            "), 0) FROM sessions WHERE sessions.stream_id = streams.id)"
        )
    };
}

/// `column = MAX(column, $n)` in SQL both databases run (no two-argument MAX in PostgreSQL).
macro_rules! grow {
    ($column:literal, $n:literal) => {
        concat!(
            $column,
            " = CASE WHEN ",
            $column,
            " < ",
            $n,
            " THEN ",
            $n,
            " ELSE ",
            $column,
            " END"
        )
    };
}

impl Store {
    /// Records a session; a session with this id already there is kept as it is (a replayed
    /// `started`). Returns the row and whether this call made it. A recorded session owes
    /// `recording.started` from the start.
    pub async fn open_session(
        &self,
        new: &NewSession,
    ) -> Result<(SessionRecord, bool), StoreError> {
        let spec = serde_json::to_string(&new.spec).map_err(|e| StoreError::Invalid {
            field: "spec",
            reason: e.to_string(),
        })?;
        let (status, owed) = if new.record {
            (RecordingStatus::Waiting, ev::RECORDING_STARTED)
        } else {
            (RecordingStatus::None, 0)
        };
        let done = sqlx::query(
            "INSERT INTO sessions (id, stream_id, tenant_id, name, record, spec, protocol, \
             created_at, last_seen, first_seq, recording_status, events_owed) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8, $9, $10, $11) \
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(&new.id)
        .bind(&new.stream_id)
        .bind(&new.tenant_id)
        .bind(&new.name)
        .bind(i64::from(new.record))
        .bind(spec)
        .bind(&new.protocol)
        .bind(new.created_at)
        .bind(new.first_seq)
        .bind(status.as_str())
        .bind(owed)
        .execute(self.pool())
        .await
        .map_err(|error| match &error {
            sqlx::Error::Database(db) if db.is_foreign_key_violation() => StoreError::NotFound {
                what: "stream",
                id: new.stream_id.clone(),
            },
            _ => StoreError::Database(error),
        })?;
        let record = self
            .session_by_id(&new.id)
            .await?
            .ok_or_else(|| StoreError::NotFound {
                what: "session",
                id: new.id.clone(),
            })?;
        Ok((record, done.rows_affected() == 1))
    }

    /// The session with this id, whatever its tenant (internal: lifecycle, recordings).
    pub async fn session_by_id(&self, id: &str) -> Result<Option<SessionRecord>, StoreError> {
        let row = sqlx::query(select_sessions!("WHERE id = $1"))
            .bind(id)
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(session).transpose()
    }

    /// The tenant's session with this id; `None` if it is another tenant's.
    pub async fn session(
        &self,
        tenant_id: &str,
        id: &str,
    ) -> Result<Option<SessionRecord>, StoreError> {
        let row = sqlx::query(select_sessions!("WHERE id = $1 AND tenant_id = $2"))
            .bind(id)
            .bind(tenant_id)
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(session).transpose()
    }

    /// One page of the tenant's sessions, newest first (by start), and the next page's cursor.
    pub async fn list_sessions(
        &self,
        tenant_id: &str,
        filter: &SessionFilter,
        page: &Page,
    ) -> Result<(Vec<SessionRecord>, Option<String>), StoreError> {
        let keyset = Keyset::of(page)?;
        // one statement for every filter: an unset filter is a NULL that matches everything
        let sql = select_sessions!(
            "WHERE tenant_id = $1 ",
            "AND ($2 IS NULL OR stream_id = $2) ",
            "AND ($3 IS NULL OR record = $3) ",
            "AND ($4 = 0 OR source_segments > 0 OR transcoded_segments > 0) ",
            after_cursor!(5, 6),
            "ORDER BY created_at DESC, id DESC LIMIT $7"
        );
        let query = sqlx::query(sql)
            .bind(tenant_id)
            .bind(filter.stream_id.clone())
            .bind(filter.record.map(i64::from))
            .bind(i64::from(filter.with_segments));
        keyset
            .fetch(query, self.pool(), session, |row| (row.created_at, &row.id))
            .await
    }

    /// How many of the tenant's sessions `filter` matches (`X-Total-Count`).
    pub async fn count_sessions(
        &self,
        tenant_id: &str,
        filter: &SessionFilter,
    ) -> Result<i64, StoreError> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS n FROM sessions WHERE tenant_id = $1 \
             AND ($2 IS NULL OR stream_id = $2) AND ($3 IS NULL OR record = $3) \
             AND ($4 = 0 OR source_segments > 0 OR transcoded_segments > 0)",
        )
        .bind(tenant_id)
        .bind(filter.stream_id.clone())
        .bind(filter.record.map(i64::from))
        .bind(i64::from(filter.with_segments))
        .fetch_one(self.pool())
        .await?;
        Ok(row.try_get("n")?)
    }

    /// The stream's sessions, newest first (at most `limit`), whatever their state.
    pub async fn stream_sessions(
        &self,
        stream_id: &str,
        limit: u32,
    ) -> Result<Vec<SessionRecord>, StoreError> {
        let rows = sqlx::query(select_sessions!(
            "WHERE stream_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2"
        ))
        .bind(stream_id)
        .bind(i64::from(limit.clamp(1, MAX_PAGE)))
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(session).collect()
    }

    /// Raises the session's counters and `lastSeen` to these absolute values where they are
    /// higher (a replica that saw fewer results never lowers them). True if the session exists.
    pub async fn update_session_counters(
        &self,
        id: &str,
        counters: &SessionCounters,
        last_seen: i64,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(concat!(
            "UPDATE sessions SET ",
            grow!("source_segments", "$1"),
            ", ",
            grow!("transcoded_segments", "$2"),
            ", ",
            grow!("source_duration_ms", "$3"),
            ", ",
            grow!("transcoded_duration_ms", "$4"),
            ", ",
            grow!("source_bytes", "$5"),
            ", ",
            grow!("transcoded_bytes", "$6"),
            ", ",
            grow!("last_seen", "$7"),
            " WHERE id = $8"
        ))
        .bind(counters.source_segments)
        .bind(counters.transcoded_segments)
        .bind(counters.source_duration_ms)
        .bind(counters.transcoded_duration_ms)
        .bind(counters.source_bytes)
        .bind(counters.transcoded_bytes)
        .bind(last_seen)
        .bind(id)
        .execute(self.pool())
        .await?;
        if done.rows_affected() != 1 {
            return Ok(false);
        }
        // the stream's totals, recomputed rather than incremented: replicas that write the
        // same absolute session counters twice leave them right
        sqlx::query(concat!(
            "UPDATE streams SET ",
            stream_total!("source_segments"),
            ", ",
            stream_total!("transcoded_segments"),
            ", ",
            stream_total!("source_duration_ms"),
            ", ",
            stream_total!("transcoded_duration_ms"),
            ", ",
            stream_total!("source_bytes"),
            ", ",
            stream_total!("transcoded_bytes"),
            " WHERE id = (SELECT stream_id FROM sessions WHERE id = $1)"
        ))
        .bind(id)
        .execute(self.pool())
        .await?;
        Ok(true)
    }

    /// The publisher left: records the end (once; a replayed `ended` changes nothing but a
    /// missing `next_seq`). A recorded session then owes `recording.waiting`. True when this
    /// call ended it.
    pub async fn end_session(
        &self,
        id: &str,
        ended_at: i64,
        next_seq: i64,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE sessions SET ended_at = $1, next_seq = $2, \
             last_seen = CASE WHEN last_seen < $1 THEN $1 ELSE last_seen END, \
             events_owed = events_owed | (record * $3) \
             WHERE id = $4 AND ended_at IS NULL",
        )
        .bind(ended_at)
        .bind(next_seq)
        .bind(ev::RECORDING_WAITING)
        .bind(id)
        .execute(self.pool())
        .await?;
        if done.rows_affected() == 1 {
            return Ok(true);
        }
        // declared gone by the idle timeout before ingest's `ended` came: learn its range
        sqlx::query("UPDATE sessions SET next_seq = $1 WHERE id = $2 AND next_seq IS NULL")
            .bind(next_seq)
            .bind(id)
            .execute(self.pool())
            .await?;
        Ok(false)
    }

    /// A session's publish is live on its stream at `now`: makes the stream active if it was
    /// not, and then the session owes `stream.started`. Returns whether the session owes it
    /// (also when asked again for the same session: a replayed event emits the same event
    /// id again, which the webhook outbox ignores).
    pub async fn activate_stream_for_session(
        &self,
        stream_id: &str,
        session_id: &str,
        now: i64,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool().begin().await?;
        // a write first: SQLite takes the write lock now instead of failing to upgrade later
        let became = sqlx::query(
            "UPDATE streams SET is_active = 1, \
             last_seen = CASE WHEN last_seen < $1 THEN $1 ELSE last_seen END \
             WHERE id = $2 AND is_active = 0 AND deleted_at IS NULL",
        )
        .bind(now)
        .bind(stream_id)
        .execute(&mut *tx)
        .await?;
        if became.rows_affected() == 1 {
            sqlx::query("UPDATE sessions SET events_owed = events_owed | $1 WHERE id = $2")
                .bind(ev::STREAM_STARTED)
                .bind(session_id)
                .execute(&mut *tx)
                .await?;
        } else {
            sqlx::query(
                "UPDATE streams SET last_seen = $1 WHERE id = $2 AND last_seen < $1 \
                 AND deleted_at IS NULL",
            )
            .bind(now)
            .bind(stream_id)
            .execute(&mut *tx)
            .await?;
        }
        let owed = sqlx::query("SELECT events_owed FROM sessions WHERE id = $1")
            .bind(session_id)
            .fetch_optional(&mut *tx)
            .await?
            .map(|row| row.try_get::<i64, _>("events_owed"))
            .transpose()?
            .unwrap_or(0);
        tx.commit().await?;
        Ok(owed & ev::STREAM_STARTED != 0)
    }

    /// Moves the stream's `lastSeen` forward to `at` (never back).
    pub async fn touch_stream_last_seen(&self, stream_id: &str, at: i64) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE streams SET last_seen = $1 WHERE id = $2 AND last_seen < $1 \
             AND deleted_at IS NULL",
        )
        .bind(at)
        .bind(stream_id)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Active streams that should go idle: every session of theirs ended at or before
    /// `grace_cutoff`, or their `lastSeen` is before `timeout_cutoff` (the publisher's
    /// ingest vanished without an `ended`).
    pub async fn idle_candidates(
        &self,
        grace_cutoff: i64,
        timeout_cutoff: i64,
    ) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query(
            "SELECT s.id FROM streams s WHERE s.is_active = 1 AND (s.last_seen < $1 OR \
             NOT EXISTS (SELECT 1 FROM sessions x WHERE x.stream_id = s.id \
             AND (x.ended_at IS NULL OR x.ended_at > $2))) ORDER BY s.last_seen LIMIT 1000",
        )
        .bind(timeout_cutoff)
        .bind(grace_cutoff)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|row| Ok(row.try_get::<String, _>("id")?))
            .collect()
    }

    /// Makes the stream idle if it still should be (see [`Store::idle_candidates`]; checked
    /// again in the same statement, so a publisher that came back meanwhile keeps it active).
    /// Sessions still open are ended at their `lastSeen`; the stream's last session owes
    /// `stream.idle`. `None` when this call did not make it idle (someone else did, or it
    /// is live again): exactly one caller sees each transition.
    pub async fn make_stream_idle(
        &self,
        stream_id: &str,
        grace_cutoff: i64,
        timeout_cutoff: i64,
    ) -> Result<Option<IdleTransition>, StoreError> {
        let mut tx = self.pool().begin().await?;
        let done = sqlx::query(
            "UPDATE streams SET is_active = 0 WHERE id = $1 AND is_active = 1 AND \
             (last_seen < $2 OR NOT EXISTS (SELECT 1 FROM sessions x WHERE x.stream_id = $1 \
             AND (x.ended_at IS NULL OR x.ended_at > $3)))",
        )
        .bind(stream_id)
        .bind(timeout_cutoff)
        .bind(grace_cutoff)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() != 1 {
            tx.rollback().await?;
            return Ok(None);
        }
        sqlx::query(
            "UPDATE sessions SET ended_at = last_seen, events_owed = events_owed | (record * $1) \
             WHERE stream_id = $2 AND ended_at IS NULL",
        )
        .bind(ev::RECORDING_WAITING)
        .bind(stream_id)
        .execute(&mut *tx)
        .await?;
        let last = sqlx::query(
            "SELECT id FROM sessions WHERE stream_id = $1 ORDER BY created_at DESC, id DESC LIMIT 1",
        )
        .bind(stream_id)
        .fetch_optional(&mut *tx)
        .await?
        .map(|row| row.try_get::<String, _>("id"))
        .transpose()?;
        if let Some(last) = &last {
            sqlx::query("UPDATE sessions SET events_owed = events_owed | $1 WHERE id = $2")
                .bind(ev::STREAM_IDLE)
                .bind(last)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(Some(IdleTransition {
            stream_id: stream_id.to_owned(),
            session_id: last,
        }))
    }

    /// Sessions with events owed and not handed over, oldest first.
    pub async fn sessions_owing_events(
        &self,
        limit: u32,
    ) -> Result<Vec<SessionRecord>, StoreError> {
        let rows = sqlx::query(select_sessions!(
            "WHERE events_owed <> events_sent ORDER BY created_at, id LIMIT $1"
        ))
        .bind(i64::from(limit.clamp(1, MAX_PAGE)))
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(session).collect()
    }

    /// Records that the events in `bits` were handed over.
    pub async fn mark_events_sent(&self, id: &str, bits: i64) -> Result<(), StoreError> {
        sqlx::query("UPDATE sessions SET events_sent = events_sent | $1 WHERE id = $2")
            .bind(bits)
            .bind(id)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Ended recorded sessions whose recording waits and that nobody holds a lease on.
    pub async fn recordings_to_finalize(
        &self,
        now: i64,
        limit: u32,
    ) -> Result<Vec<SessionRecord>, StoreError> {
        let rows = sqlx::query(select_sessions!(
            "WHERE recording_status = 'waiting' AND ended_at IS NOT NULL ",
            "AND (claim_until IS NULL OR claim_until < $1) ORDER BY ended_at LIMIT $2"
        ))
        .bind(now)
        .bind(i64::from(limit.clamp(1, MAX_PAGE)))
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(session).collect()
    }

    /// Takes the lease on finalizing the session's recording until `now + lease_ms`; false if
    /// another owner holds it or the recording no longer waits.
    pub async fn claim_recording(
        &self,
        id: &str,
        owner: &str,
        now: i64,
        lease_ms: i64,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE sessions SET claimed_by = $1, claim_until = $2 WHERE id = $3 \
             AND recording_status = 'waiting' AND ended_at IS NOT NULL \
             AND (claim_until IS NULL OR claim_until < $4 OR claimed_by = $1)",
        )
        .bind(owner)
        .bind(now.saturating_add(lease_ms))
        .bind(id)
        .bind(now)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// The recording is made: ready, owing `recording.ready`. False if it no longer waited
    /// (the deadline failed it meanwhile).
    pub async fn mark_recording_ready(&self, id: &str, now: i64) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE sessions SET recording_status = 'ready', recording_ready_at = $1, \
             error = NULL, claimed_by = NULL, claim_until = NULL, \
             events_owed = events_owed | $2 WHERE id = $3 AND recording_status = 'waiting'",
        )
        .bind(now)
        .bind(ev::RECORDING_READY)
        .bind(id)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// The recording cannot be made: failed with `reason`. False if it no longer waited.
    pub async fn mark_recording_failed(&self, id: &str, reason: &str) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE sessions SET recording_status = 'failed', error = $1, claimed_by = NULL, \
             claim_until = NULL WHERE id = $2 AND recording_status = 'waiting'",
        )
        .bind(reason)
        .bind(id)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Fails every recording still waiting although its session ended before `cutoff` (the
    /// hard deadline: no recording waits forever). Returns the ids failed.
    pub async fn fail_overdue_recordings(
        &self,
        cutoff: i64,
        reason: &str,
    ) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query(
            "SELECT id FROM sessions WHERE recording_status = 'waiting' \
             AND ended_at IS NOT NULL AND ended_at < $1 LIMIT 1000",
        )
        .bind(cutoff)
        .fetch_all(self.pool())
        .await?;
        let mut failed = Vec::new();
        for row in rows {
            let id: String = row.try_get("id")?;
            if self.mark_recording_failed(&id, reason).await? {
                failed.push(id);
            }
        }
        Ok(failed)
    }

    /// The stream with this id whatever its tenant, deleted ones included (lifecycle events
    /// and webhooks name streams that may have been deleted since).
    pub async fn stream_including_deleted(
        &self,
        id: &str,
    ) -> Result<Option<StreamRecord>, StoreError> {
        let row = sqlx::query(select_streams!("WHERE id = $1"))
            .bind(id)
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(stream_row).transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_round_trip() {
        for status in [
            RecordingStatus::Waiting,
            RecordingStatus::Ready,
            RecordingStatus::Failed,
            RecordingStatus::None,
        ] {
            assert_eq!(RecordingStatus::parse(status.as_str()), Some(status));
        }
        assert_eq!(RecordingStatus::parse("deleted"), None);
    }

    #[test]
    fn unsent_events_follow_emission_order() {
        let record = SessionRecord {
            id: String::new(),
            stream_id: String::new(),
            tenant_id: String::new(),
            name: String::new(),
            record: true,
            spec: Map::new(),
            protocol: String::new(),
            created_at: 0,
            last_seen: 0,
            ended_at: None,
            first_seq: 0,
            next_seq: None,
            counters: SessionCounters::default(),
            recording_status: RecordingStatus::Waiting,
            recording_ready_at: None,
            error: None,
            events_owed: ev::RECORDING_READY | ev::STREAM_STARTED | ev::RECORDING_STARTED,
            events_sent: ev::STREAM_STARTED,
        };
        let names: Vec<&str> = record.unsent_events().iter().map(|(_, n)| *n).collect();
        assert_eq!(names, ["recording.started", "recording.ready"]);
    }
}
