//! Webhooks (Studio §5): a tenant's subscriptions, the events emitted for them, the persisted
//! delivery queue, and the log of every HTTP attempt. The HTTP side (signing, sending, retry
//! policy, the SSRF guard) is `livefarm-webhooks`; this module only keeps state, so that a
//! restarted api loses no pending delivery and several replicas never send the same attempt.
//!
//! - [`Store::enqueue_event`] records an event once (by id) and one delivery per subscribed,
//!   non-deleted webhook of the tenant, in one transaction: a replayed event adds nothing.
//! - [`Store::claim_due`] leases due deliveries to one deliverer (`claimed_by`,
//!   `claimed_until`) with a single conditional `UPDATE`: two claimers racing on a row cannot
//!   both get it, on SQLite (one writer) or PostgreSQL (the loser re-checks the lease after the
//!   winner commits). A deliverer that dies leaves its lease to expire; the row is then due again.
//! - [`Store::record_attempt`] writes the attempt's log, reschedules or finishes the delivery
//!   (only while the recorder still holds the lease) and updates the webhook's `status`.
//!
//! The shared secret is stored as given: every delivery signs with it, so it must be readable
//! by the deliverer; the records' `Debug` hides it and the JSON renderers never list it.

use std::fmt;

use serde_json::Value;
use sqlx::any::AnyRow;
use sqlx::Row;

use crate::ids::{now_ms, uuid_v4};
use crate::page::{after_cursor, Keyset};
use crate::tenants::check_name;
use crate::{flag, Page, Store, StoreError};

/// Longest webhook URL, in bytes.
pub const MAX_URL_LEN: usize = 2048;
/// Longest shared secret, in bytes.
pub const MAX_SECRET_LEN: usize = 1024;
/// Longest id a client may give (`streamId`, `projectId`).
const MAX_REF_LEN: usize = 256;
/// Most events one webhook may name.
const MAX_EVENTS: usize = 64;
/// Largest `stream` or `payload` of an event, in bytes of JSON.
pub const MAX_EVENT_PART_BYTES: usize = 256 * 1024;

/// What a new (or replaced) webhook is made of; the id and times are the store's.
#[derive(Clone, PartialEq, Default)]
pub struct NewWebhook {
    pub name: String,
    pub url: String,
    pub events: Vec<String>,
    /// `None` on a replace keeps the stored secret (it cannot be read back to resend it);
    /// `Some("")` removes it (deliveries go unsigned, as in Studio).
    pub shared_secret: Option<String>,
    pub stream_id: Option<String>,
    pub project_id: Option<String>,
}

impl fmt::Debug for NewWebhook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewWebhook")
            .field("name", &self.name)
            .field("url", &self.url)
            .field("events", &self.events)
            .field("shared_secret", &self.shared_secret.as_ref().map(|_| "***"))
            .field("stream_id", &self.stream_id)
            .field("project_id", &self.project_id)
            .finish()
    }
}

/// A webhook row.
#[derive(Clone, PartialEq)]
pub struct WebhookRecord {
    pub id: String,
    pub tenant_id: String,
    pub name: String,
    pub url: String,
    pub events: Vec<String>,
    /// The HMAC key of `Livepeer-Signature`; `None`: deliveries are unsigned.
    pub shared_secret: Option<String>,
    /// Stored and returned; not a delivery filter (as in Studio).
    pub stream_id: Option<String>,
    pub project_id: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    pub deleted_at: Option<i64>,
    /// `status.lastTriggeredAt`: the last attempt, successful or not.
    pub last_triggered_at: Option<i64>,
    /// `status.lastFailure`: `{timestamp, error?, response?, statusCode?}`.
    pub last_failure: Option<Value>,
}

impl fmt::Debug for WebhookRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookRecord")
            .field("id", &self.id)
            .field("tenant_id", &self.tenant_id)
            .field("name", &self.name)
            .field("url", &self.url)
            .field("events", &self.events)
            .field("shared_secret", &self.shared_secret.as_ref().map(|_| "***"))
            .field("stream_id", &self.stream_id)
            .field("project_id", &self.project_id)
            .field("created_at", &self.created_at)
            .field("deleted_at", &self.deleted_at)
            .field("last_triggered_at", &self.last_triggered_at)
            .field("last_failure", &self.last_failure)
            .finish()
    }
}

/// An event to deliver to the tenant's subscribed webhooks.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    /// The body's `id`, stable across retries; receivers dedupe on it. Events that may be
    /// replayed take a deterministic id ([`crate::ids::derived_uuid`]).
    pub id: String,
    pub tenant_id: String,
    /// One of Studio's event names (`stream.started`, ...).
    pub event: &'static str,
    /// When it happened (ms): the body's `createdAt`.
    pub created_at: i64,
    /// The stream object (without `streamKey`), for stream events.
    pub stream: Option<Value>,
    /// The event-specific payload.
    pub payload: Option<Value>,
}

/// A stored event: the parts of a delivery body that do not change between attempts.
#[derive(Debug, Clone, PartialEq)]
pub struct EventRecord {
    pub id: String,
    pub tenant_id: String,
    pub event: String,
    pub created_at: i64,
    pub stream: Option<Value>,
    pub payload: Option<Value>,
}

/// Where a delivery is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryState {
    /// Waiting for its next attempt (or in one, while claimed).
    Pending,
    /// A 2xx came back.
    Delivered,
    /// Given up: a final status, retries exhausted, or the webhook deleted.
    Failed,
}

impl DeliveryState {
    fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Pending => "pending",
            DeliveryState::Delivered => "delivered",
            DeliveryState::Failed => "failed",
        }
    }

    fn parse(text: &str) -> Option<DeliveryState> {
        match text {
            "pending" => Some(DeliveryState::Pending),
            "delivered" => Some(DeliveryState::Delivered),
            "failed" => Some(DeliveryState::Failed),
            _ => None,
        }
    }
}

/// A delivery row (for inspection; the deliverer works on [`ClaimedDelivery`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryRecord {
    pub id: String,
    pub event_id: String,
    pub webhook_id: String,
    pub state: DeliveryState,
    /// Attempts made so far.
    pub attempts: i64,
    pub next_attempt_at: i64,
    pub claimed_by: Option<String>,
    pub claimed_until: Option<i64>,
}

/// A delivery leased to one deliverer, with what it needs to send the attempt.
#[derive(Debug, Clone, PartialEq)]
pub struct ClaimedDelivery {
    /// The delivery's id (for [`Store::record_attempt`]).
    pub id: String,
    /// Attempts made before this one.
    pub attempts: i64,
    /// When the lease ends (ms): the attempt must be recorded before.
    pub claimed_until: i64,
    pub event: EventRecord,
    pub webhook: WebhookRecord,
}

/// One HTTP attempt to log (Studio's WebhookLog).
#[derive(Debug, Clone, PartialEq)]
pub struct NewLog {
    pub webhook_id: String,
    pub tenant_id: String,
    pub event_id: String,
    pub event: String,
    /// When the attempt started (ms).
    pub created_at: i64,
    pub duration_us: i64,
    /// A 2xx came back.
    pub success: bool,
    /// `None` after a transport error or timeout.
    pub status_code: Option<u16>,
    /// `{url, method, headers, body}`.
    pub request: Value,
    /// `{status, statusText, body}`; `None` when no response came.
    pub response: Option<Value>,
    /// What went wrong, when something did (a transport error, a refused target).
    pub error: Option<String>,
}

/// A stored log entry.
#[derive(Debug, Clone, PartialEq)]
pub struct WebhookLogRecord {
    pub id: String,
    pub webhook_id: String,
    pub tenant_id: String,
    pub event_id: String,
    pub event: String,
    pub created_at: i64,
    pub duration_us: i64,
    pub success: bool,
    pub status_code: Option<u16>,
    pub request: Value,
    pub response: Option<Value>,
    pub error: Option<String>,
}

/// What happens to a delivery after an attempt (the retry policy is the caller's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptOutcome {
    /// Done: the receiver took it.
    Delivered,
    /// Try again at this time (ms).
    Retry { at: i64 },
    /// Done: given up.
    Failed,
}

/// An attempt to record with [`Store::record_attempt`].
#[derive(Debug, Clone, PartialEq)]
pub struct Attempt {
    pub log: NewLog,
    pub outcome: AttemptOutcome,
    /// The webhook's new `status.lastFailure`; `None` leaves it as it is (a success).
    pub failure: Option<Value>,
}

/// What [`Store::record_attempt`] did.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedAttempt {
    pub log: WebhookLogRecord,
    /// False when the recorder no longer held the lease (it expired and another deliverer
    /// took the delivery): the log is kept, the delivery is the new holder's to update.
    pub delivery_updated: bool,
}

/// `SELECT <every webhook column>` and the rest of the query, as one static string.
macro_rules! select_webhooks {
    ($($rest:expr),+) => {
        concat!(
            "SELECT id, tenant_id, name, url, events, shared_secret, stream_id, project_id, \
             created_at, updated_at, deleted_at, last_triggered_at, last_failure FROM webhooks ",
            $($rest),+
        )
    };
}

/// `SELECT <every log column>` and the rest of the query.
macro_rules! select_logs {
    ($($rest:expr),+) => {
        concat!(
            "SELECT id, webhook_id, tenant_id, event_id, event, created_at, duration_us, success, \
             status_code, request, response, error FROM webhook_logs ",
            $($rest),+
        )
    };
}

fn corrupt(what: &'static str, id: &str, reason: impl fmt::Display) -> StoreError {
    StoreError::Corrupt {
        what,
        id: id.to_owned(),
        reason: reason.to_string(),
    }
}

fn json_column(
    row: &AnyRow,
    column: &str,
    what: &'static str,
    id: &str,
) -> Result<Option<Value>, StoreError> {
    let text: Option<String> = row.try_get(column)?;
    text.map(|t| serde_json::from_str(&t).map_err(|e| corrupt(what, id, e)))
        .transpose()
}

fn webhook(row: &AnyRow) -> Result<WebhookRecord, StoreError> {
    let id: String = row.try_get("id")?;
    let events: String = row.try_get("events")?;
    let events: Vec<String> =
        serde_json::from_str(&events).map_err(|e| corrupt("webhook", &id, e))?;
    Ok(WebhookRecord {
        tenant_id: row.try_get("tenant_id")?,
        name: row.try_get("name")?,
        url: row.try_get("url")?,
        events,
        shared_secret: row.try_get("shared_secret")?,
        stream_id: row.try_get("stream_id")?,
        project_id: row.try_get("project_id")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        deleted_at: row.try_get("deleted_at")?,
        last_triggered_at: row.try_get("last_triggered_at")?,
        last_failure: json_column(row, "last_failure", "webhook", &id)?,
        id,
    })
}

fn log(row: &AnyRow) -> Result<WebhookLogRecord, StoreError> {
    let id: String = row.try_get("id")?;
    let request = json_column(row, "request", "webhook log", &id)?
        .ok_or_else(|| corrupt("webhook log", &id, "no request"))?;
    let status_code: Option<i64> = row.try_get("status_code")?;
    Ok(WebhookLogRecord {
        webhook_id: row.try_get("webhook_id")?,
        tenant_id: row.try_get("tenant_id")?,
        event_id: row.try_get("event_id")?,
        event: row.try_get("event")?,
        created_at: row.try_get("created_at")?,
        duration_us: row.try_get("duration_us")?,
        success: flag(row.try_get("success")?),
        status_code: status_code.and_then(|c| u16::try_from(c).ok()),
        request,
        response: json_column(row, "response", "webhook log", &id)?,
        error: row.try_get("error")?,
        id,
    })
}

fn event(row: &AnyRow, prefix: &str) -> Result<EventRecord, StoreError> {
    let col = |name: &str| format!("{prefix}{name}");
    let id: String = row.try_get(col("id").as_str())?;
    Ok(EventRecord {
        tenant_id: row.try_get(col("tenant_id").as_str())?,
        event: row.try_get(col("event").as_str())?,
        created_at: row.try_get(col("created_at").as_str())?,
        stream: json_column(row, &col("stream"), "webhook event", &id)?,
        payload: json_column(row, &col("payload"), "webhook event", &id)?,
        id,
    })
}

fn delivery(row: &AnyRow) -> Result<DeliveryRecord, StoreError> {
    let id: String = row.try_get("id")?;
    let state: String = row.try_get("state")?;
    let state = DeliveryState::parse(&state)
        .ok_or_else(|| corrupt("webhook delivery", &id, format!("state {state:?}")))?;
    Ok(DeliveryRecord {
        event_id: row.try_get("event_id")?,
        webhook_id: row.try_get("webhook_id")?,
        state,
        attempts: row.try_get("attempts")?,
        next_attempt_at: row.try_get("next_attempt_at")?,
        claimed_by: row.try_get("claimed_by")?,
        claimed_until: row.try_get("claimed_until")?,
        id,
    })
}

fn check_len(field: &'static str, value: &str, max: usize) -> Result<(), StoreError> {
    if value.len() > max {
        return Err(StoreError::Invalid {
            field,
            reason: format!("at most {max} bytes"),
        });
    }
    Ok(())
}

/// The store's own limits on a webhook (the api checks the URL's shape and the event names).
fn check_webhook(new: &NewWebhook) -> Result<String, StoreError> {
    check_name("name", &new.name)?;
    if new.url.is_empty() {
        return Err(StoreError::Invalid {
            field: "url",
            reason: "must not be empty".to_owned(),
        });
    }
    check_len("url", &new.url, MAX_URL_LEN)?;
    if let Some(secret) = &new.shared_secret {
        check_len("sharedSecret", secret, MAX_SECRET_LEN)?;
    }
    for (field, value) in [("streamId", &new.stream_id), ("projectId", &new.project_id)] {
        if let Some(value) = value {
            check_len(field, value, MAX_REF_LEN)?;
        }
    }
    if new.events.len() > MAX_EVENTS {
        return Err(StoreError::Invalid {
            field: "events",
            reason: format!("at most {MAX_EVENTS}"),
        });
    }
    serde_json::to_string(&new.events).map_err(|e| StoreError::Invalid {
        field: "events",
        reason: e.to_string(),
    })
}

fn encode_part(field: &'static str, value: &Option<Value>) -> Result<Option<String>, StoreError> {
    let Some(value) = value else {
        return Ok(None);
    };
    let text = serde_json::to_string(value).map_err(|e| StoreError::Invalid {
        field,
        reason: e.to_string(),
    })?;
    if text.len() > MAX_EVENT_PART_BYTES {
        return Err(StoreError::Invalid {
            field,
            reason: format!(
                "{} bytes of JSON; at most {MAX_EVENT_PART_BYTES}",
                text.len()
            ),
        });
    }
    Ok(Some(text))
}

fn json_text(value: &Value) -> String {
    // serializing a Value cannot fail (its map keys are strings)
    serde_json::to_string(value).unwrap_or_default()
}

/// `""` means no secret (Studio sends no signature for an empty one).
fn normalize_secret(secret: Option<&str>) -> Option<&str> {
    secret.filter(|s| !s.is_empty())
}

impl Store {
    /// Makes a webhook for `tenant_id`.
    pub async fn create_webhook(
        &self,
        tenant_id: &str,
        new: &NewWebhook,
    ) -> Result<WebhookRecord, StoreError> {
        let events = check_webhook(new)?;
        let now = now_ms();
        let record = WebhookRecord {
            id: uuid_v4()?,
            tenant_id: tenant_id.to_owned(),
            name: new.name.clone(),
            url: new.url.clone(),
            events: new.events.clone(),
            shared_secret: normalize_secret(new.shared_secret.as_deref()).map(str::to_owned),
            stream_id: new.stream_id.clone(),
            project_id: new.project_id.clone(),
            created_at: now,
            updated_at: now,
            deleted_at: None,
            last_triggered_at: None,
            last_failure: None,
        };
        let inserted = sqlx::query(
            "INSERT INTO webhooks (id, tenant_id, name, url, events, shared_secret, stream_id, \
             project_id, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(&record.id)
        .bind(&record.tenant_id)
        .bind(&record.name)
        .bind(&record.url)
        .bind(&events)
        .bind(record.shared_secret.clone())
        .bind(record.stream_id.clone())
        .bind(record.project_id.clone())
        .bind(record.created_at)
        .bind(record.updated_at)
        .execute(self.pool())
        .await;
        match inserted {
            Ok(_) => Ok(record),
            Err(sqlx::Error::Database(db)) if db.is_foreign_key_violation() => {
                Err(StoreError::NotFound {
                    what: "tenant",
                    id: tenant_id.to_owned(),
                })
            }
            Err(error) => Err(error.into()),
        }
    }

    /// The tenant's webhook; `None` if it is another tenant's or deleted.
    pub async fn webhook(
        &self,
        tenant_id: &str,
        id: &str,
    ) -> Result<Option<WebhookRecord>, StoreError> {
        let sql = select_webhooks!("WHERE id = $1 AND tenant_id = $2 AND deleted_at IS NULL");
        let row = sqlx::query(sql)
            .bind(id)
            .bind(tenant_id)
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(webhook).transpose()
    }

    /// One page of the tenant's webhooks, newest first, and the next page's cursor.
    pub async fn list_webhooks(
        &self,
        tenant_id: &str,
        page: &Page,
    ) -> Result<(Vec<WebhookRecord>, Option<String>), StoreError> {
        let keyset = Keyset::of(page)?;
        let sql = select_webhooks!(
            "WHERE tenant_id = $1 AND deleted_at IS NULL ",
            after_cursor!(2, 3),
            "ORDER BY created_at DESC, id DESC LIMIT $4"
        );
        let query = sqlx::query(sql).bind(tenant_id);
        keyset
            .fetch(query, self.pool(), webhook, |row| (row.created_at, &row.id))
            .await
    }

    /// How many webhooks the tenant has (not deleted).
    pub async fn count_webhooks(&self, tenant_id: &str) -> Result<i64, StoreError> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS n FROM webhooks WHERE tenant_id = $1 AND deleted_at IS NULL",
        )
        .bind(tenant_id)
        .fetch_one(self.pool())
        .await?;
        Ok(row.try_get("n")?)
    }

    /// Replaces the tenant's webhook (`PUT`): every field from `new`, except that a `None`
    /// secret keeps the stored one. The updated webhook, or `None` if there is none.
    pub async fn replace_webhook(
        &self,
        tenant_id: &str,
        id: &str,
        new: &NewWebhook,
    ) -> Result<Option<WebhookRecord>, StoreError> {
        let events = check_webhook(new)?;
        // keep_secret = 1: the client sent none (it cannot read it back to send it again)
        let keep_secret = i64::from(new.shared_secret.is_none());
        let done = sqlx::query(
            "UPDATE webhooks SET name = $1, url = $2, events = $3, \
             shared_secret = CASE WHEN $4 = 1 THEN shared_secret ELSE $5 END, \
             stream_id = $6, project_id = $7, updated_at = $8 \
             WHERE id = $9 AND tenant_id = $10 AND deleted_at IS NULL",
        )
        .bind(&new.name)
        .bind(&new.url)
        .bind(&events)
        .bind(keep_secret)
        .bind(normalize_secret(new.shared_secret.as_deref()).map(str::to_owned))
        .bind(new.stream_id.clone())
        .bind(new.project_id.clone())
        .bind(now_ms())
        .bind(id)
        .bind(tenant_id)
        .execute(self.pool())
        .await?;
        if done.rows_affected() == 0 {
            return Ok(None);
        }
        self.webhook(tenant_id, id).await
    }

    /// Deletes the tenant's webhook (soft) and gives up its pending deliveries; the webhook
    /// as it was, or `None` if there was none.
    pub async fn delete_webhook(
        &self,
        tenant_id: &str,
        id: &str,
    ) -> Result<Option<WebhookRecord>, StoreError> {
        let now = now_ms();
        let mut tx = self.pool().begin().await?;
        // the write comes first: on SQLite it takes the write lock before any read
        let done = sqlx::query(
            "UPDATE webhooks SET deleted_at = $1, updated_at = $1 \
             WHERE id = $2 AND tenant_id = $3 AND deleted_at IS NULL",
        )
        .bind(now)
        .bind(id)
        .bind(tenant_id)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            tx.rollback().await?;
            return Ok(None);
        }
        sqlx::query(
            "UPDATE webhook_deliveries SET state = 'failed', claimed_by = NULL, \
             claimed_until = NULL, updated_at = $1 WHERE webhook_id = $2 AND state = 'pending'",
        )
        .bind(now)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        let row = sqlx::query(select_webhooks!("WHERE id = $1"))
            .bind(id)
            .fetch_one(&mut *tx)
            .await?;
        tx.commit().await?;
        webhook(&row).map(Some)
    }

    /// Records `event` once and queues one delivery, due now, per non-deleted webhook of its
    /// tenant that subscribes to its name; how many were queued. A replayed event (an id
    /// already recorded) queues nothing and returns 0.
    pub async fn enqueue_event(&self, event: &NewEvent) -> Result<usize, StoreError> {
        let stream = encode_part("stream", &event.stream)?;
        let payload = encode_part("payload", &event.payload)?;
        let now = now_ms();
        let mut tx = self.pool().begin().await?;
        let inserted = sqlx::query(
            "INSERT INTO webhook_events (id, tenant_id, event, created_at, stream, payload) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (id) DO NOTHING",
        )
        .bind(&event.id)
        .bind(&event.tenant_id)
        .bind(event.event)
        .bind(event.created_at)
        .bind(stream)
        .bind(payload)
        .execute(&mut *tx)
        .await?;
        if inserted.rows_affected() == 0 {
            tx.rollback().await?;
            return Ok(0);
        }
        let rows = sqlx::query(
            "SELECT id, events FROM webhooks WHERE tenant_id = $1 AND deleted_at IS NULL",
        )
        .bind(&event.tenant_id)
        .fetch_all(&mut *tx)
        .await?;
        let mut queued = 0;
        for row in rows {
            let webhook_id: String = row.try_get("id")?;
            let events: String = row.try_get("events")?;
            let events: Vec<String> =
                serde_json::from_str(&events).map_err(|e| corrupt("webhook", &webhook_id, e))?;
            if !events.iter().any(|e| e == event.event) {
                continue;
            }
            let done = sqlx::query(
                "INSERT INTO webhook_deliveries (id, event_id, webhook_id, tenant_id, state, \
                 attempts, next_attempt_at, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, 'pending', 0, $5, $5, $5) \
                 ON CONFLICT (event_id, webhook_id) DO NOTHING",
            )
            .bind(uuid_v4()?)
            .bind(&event.id)
            .bind(&webhook_id)
            .bind(&event.tenant_id)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            queued += done.rows_affected() as usize;
        }
        tx.commit().await?;
        Ok(queued)
    }

    /// The event with this id.
    pub async fn webhook_event(&self, id: &str) -> Result<Option<EventRecord>, StoreError> {
        let row = sqlx::query(
            "SELECT id, tenant_id, event, created_at, stream, payload FROM webhook_events \
             WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(|r| event(r, "")).transpose()
    }

    /// The deliveries of an event, one per webhook (for inspection and tests).
    pub async fn event_deliveries(
        &self,
        event_id: &str,
    ) -> Result<Vec<DeliveryRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, event_id, webhook_id, state, attempts, next_attempt_at, claimed_by, \
             claimed_until FROM webhook_deliveries WHERE event_id = $1 ORDER BY webhook_id",
        )
        .bind(event_id)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(delivery).collect()
    }

    /// Leases up to `limit` deliveries due at `now` to `owner` until `now + lease_ms`, oldest
    /// first, at most `per_webhook` in flight per webhook (counting every deliverer's leases,
    /// so one slow receiver cannot take every slot). A delivery leased by another deliverer is
    /// not taken before its lease ends; two claimers racing on a row cannot both get it.
    pub async fn claim_due(
        &self,
        now: i64,
        lease_ms: i64,
        limit: u32,
        per_webhook: u32,
        owner: &str,
    ) -> Result<Vec<ClaimedDelivery>, StoreError> {
        if limit == 0 || per_webhook == 0 {
            return Ok(Vec::new());
        }
        let until = now.saturating_add(lease_ms.max(1));
        // rn: the row's rank among its webhook's due rows; busy: that webhook's live leases.
        // The outer conditions are re-checked on the row itself when it is written, which is
        // what makes a concurrent claimer skip a row the other one just took.
        let claimed = sqlx::query(
            "UPDATE webhook_deliveries SET claimed_by = $1, claimed_until = $2, updated_at = $3 \
             WHERE id IN ( \
               SELECT r.id FROM ( \
                 SELECT d.id AS id, d.next_attempt_at AS due, \
                   ROW_NUMBER() OVER (PARTITION BY d.webhook_id \
                                      ORDER BY d.next_attempt_at, d.id) AS rn, \
                   (SELECT COUNT(*) FROM webhook_deliveries b WHERE b.webhook_id = d.webhook_id \
                      AND b.state = 'pending' AND b.claimed_until > $3) AS busy \
                 FROM webhook_deliveries d \
                 WHERE d.state = 'pending' AND d.next_attempt_at <= $3 \
                   AND (d.claimed_until IS NULL OR d.claimed_until <= $3) \
               ) r WHERE r.rn + r.busy <= $4 ORDER BY r.due, r.id LIMIT $5 \
             ) AND state = 'pending' AND (claimed_until IS NULL OR claimed_until <= $3) \
             RETURNING id",
        )
        .bind(owner)
        .bind(until)
        .bind(now)
        .bind(i64::from(per_webhook))
        .bind(i64::from(limit))
        .fetch_all(self.pool())
        .await?;
        let mut out = Vec::with_capacity(claimed.len());
        for row in claimed {
            let id: String = row.try_get("id")?;
            let row = sqlx::query(
                "SELECT d.id AS d_id, d.attempts AS d_attempts, d.claimed_until AS d_until, \
                 e.id AS e_id, e.tenant_id AS e_tenant_id, e.event AS e_event, \
                 e.created_at AS e_created_at, e.stream AS e_stream, e.payload AS e_payload, \
                 w.id, w.tenant_id, w.name, w.url, w.events, w.shared_secret, w.stream_id, \
                 w.project_id, w.created_at, w.updated_at, w.deleted_at, w.last_triggered_at, \
                 w.last_failure \
                 FROM webhook_deliveries d \
                 JOIN webhook_events e ON e.id = d.event_id \
                 JOIN webhooks w ON w.id = d.webhook_id \
                 WHERE d.id = $1 AND d.claimed_by = $2",
            )
            .bind(&id)
            .bind(owner)
            .fetch_optional(self.pool())
            .await?;
            // gone only if the webhook was deleted in between: nothing to send
            let Some(row) = row else { continue };
            out.push(ClaimedDelivery {
                id: row.try_get("d_id")?,
                attempts: row.try_get("d_attempts")?,
                claimed_until: row.try_get("d_until")?,
                event: event(&row, "e_")?,
                webhook: webhook(&row)?,
            });
        }
        Ok(out)
    }

    /// Gives back every lease `owner` holds on pending deliveries (a deliverer shutting
    /// down), so another deliverer takes them at once instead of after the lease; how many.
    pub async fn release_claims(&self, owner: &str) -> Result<u64, StoreError> {
        let done = sqlx::query(
            "UPDATE webhook_deliveries SET claimed_by = NULL, claimed_until = NULL \
             WHERE claimed_by = $1 AND state = 'pending'",
        )
        .bind(owner)
        .execute(self.pool())
        .await?;
        Ok(done.rows_affected())
    }

    /// Records an attempt on a delivery `owner` leased: the log, the delivery's new state
    /// (only while `owner` still holds the lease) and the webhook's status, in one transaction.
    pub async fn record_attempt(
        &self,
        delivery_id: &str,
        owner: &str,
        attempt: &Attempt,
    ) -> Result<RecordedAttempt, StoreError> {
        let (state, next_at) = match attempt.outcome {
            AttemptOutcome::Delivered => (DeliveryState::Delivered, attempt.log.created_at),
            AttemptOutcome::Retry { at } => (DeliveryState::Pending, at),
            AttemptOutcome::Failed => (DeliveryState::Failed, attempt.log.created_at),
        };
        let now = now_ms();
        let mut tx = self.pool().begin().await?;
        let done = sqlx::query(
            "UPDATE webhook_deliveries SET state = $1, attempts = attempts + 1, \
             next_attempt_at = $2, claimed_by = NULL, claimed_until = NULL, updated_at = $3 \
             WHERE id = $4 AND claimed_by = $5 AND state = 'pending'",
        )
        .bind(state.as_str())
        .bind(next_at)
        .bind(now)
        .bind(delivery_id)
        .bind(owner)
        .execute(&mut *tx)
        .await?;
        let log = insert_log(&mut tx, &attempt.log, attempt.failure.as_ref()).await?;
        tx.commit().await?;
        Ok(RecordedAttempt {
            log,
            delivery_updated: done.rows_affected() == 1,
        })
    }

    /// Records an attempt outside the queue (a resend): the log and the webhook's status.
    pub async fn record_log(
        &self,
        new: &NewLog,
        failure: Option<&Value>,
    ) -> Result<WebhookLogRecord, StoreError> {
        let mut tx = self.pool().begin().await?;
        let log = insert_log(&mut tx, new, failure).await?;
        tx.commit().await?;
        Ok(log)
    }

    /// One page of a webhook's logs, newest first (the caller checks the webhook is the
    /// tenant's), and the next page's cursor.
    pub async fn list_webhook_logs(
        &self,
        tenant_id: &str,
        webhook_id: &str,
        page: &Page,
    ) -> Result<(Vec<WebhookLogRecord>, Option<String>), StoreError> {
        let keyset = Keyset::of(page)?;
        let sql = select_logs!(
            "WHERE webhook_id = $1 AND tenant_id = $2 ",
            after_cursor!(3, 4),
            "ORDER BY created_at DESC, id DESC LIMIT $5"
        );
        let query = sqlx::query(sql).bind(webhook_id).bind(tenant_id);
        keyset
            .fetch(query, self.pool(), log, |row| (row.created_at, &row.id))
            .await
    }

    /// The tenant's log entry with this id (of any of its webhooks).
    pub async fn webhook_log(
        &self,
        tenant_id: &str,
        id: &str,
    ) -> Result<Option<WebhookLogRecord>, StoreError> {
        let row = sqlx::query(select_logs!("WHERE id = $1 AND tenant_id = $2"))
            .bind(id)
            .bind(tenant_id)
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(log).transpose()
    }
}

/// Inserts a log and updates its webhook's status, inside `tx`.
async fn insert_log(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    new: &NewLog,
    failure: Option<&Value>,
) -> Result<WebhookLogRecord, StoreError> {
    let record = WebhookLogRecord {
        id: uuid_v4()?,
        webhook_id: new.webhook_id.clone(),
        tenant_id: new.tenant_id.clone(),
        event_id: new.event_id.clone(),
        event: new.event.clone(),
        created_at: new.created_at,
        duration_us: new.duration_us,
        success: new.success,
        status_code: new.status_code,
        request: new.request.clone(),
        response: new.response.clone(),
        error: new.error.clone(),
    };
    sqlx::query(
        "INSERT INTO webhook_logs (id, webhook_id, tenant_id, event_id, event, created_at, \
         duration_us, success, status_code, request, response, error) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
    )
    .bind(&record.id)
    .bind(&record.webhook_id)
    .bind(&record.tenant_id)
    .bind(&record.event_id)
    .bind(&record.event)
    .bind(record.created_at)
    .bind(record.duration_us)
    .bind(i64::from(record.success))
    .bind(record.status_code.map(i64::from))
    .bind(json_text(&record.request))
    .bind(record.response.as_ref().map(json_text))
    .bind(record.error.clone())
    .execute(&mut **tx)
    .await?;
    // lastTriggeredAt on every attempt, lastFailure only when this one failed
    sqlx::query(
        "UPDATE webhooks SET last_triggered_at = $1, \
         last_failure = COALESCE($2, last_failure) WHERE id = $3",
    )
    .bind(record.created_at)
    .bind(failure.map(json_text))
    .bind(&record.webhook_id)
    .execute(&mut **tx)
    .await?;
    Ok(record)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delivery_states_round_trip() {
        for state in [
            DeliveryState::Pending,
            DeliveryState::Delivered,
            DeliveryState::Failed,
        ] {
            assert_eq!(DeliveryState::parse(state.as_str()), Some(state));
        }
        assert_eq!(DeliveryState::parse("sent"), None);
    }

    #[test]
    fn secrets_stay_out_of_debug() {
        let new = NewWebhook {
            name: "n".to_owned(),
            url: "https://example.com".to_owned(),
            shared_secret: Some("hunter2".to_owned()),
            ..NewWebhook::default()
        };
        assert!(!format!("{new:?}").contains("hunter2"));
    }

    #[test]
    fn webhook_limits() {
        let ok = NewWebhook {
            name: "n".to_owned(),
            url: "https://example.com".to_owned(),
            events: vec!["stream.started".to_owned()],
            ..NewWebhook::default()
        };
        assert!(check_webhook(&ok).is_ok());
        for bad in [
            NewWebhook {
                name: " ".to_owned(),
                ..ok.clone()
            },
            NewWebhook {
                url: "x".repeat(MAX_URL_LEN + 1),
                ..ok.clone()
            },
            NewWebhook {
                shared_secret: Some("s".repeat(MAX_SECRET_LEN + 1)),
                ..ok.clone()
            },
            NewWebhook {
                events: vec!["e".to_owned(); MAX_EVENTS + 1],
                ..ok.clone()
            },
        ] {
            assert!(check_webhook(&bad).is_err(), "{bad:?}");
        }
    }
}
