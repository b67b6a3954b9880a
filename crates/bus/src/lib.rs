//! The Livefarm job bus, in two traits:
//! - [`StreamBus`]: named streams of jobs read through consumer groups, with at-least-once
//!   delivery, reclaim of jobs whose worker died, a dead-letter stream for poison jobs, bounded
//!   stream length, and reads without a group for readers that must see every entry;
//! - [`KvStore`]: a small key/value store with TTLs for worker registration, heartbeats and
//!   per-stream affinity claims.
//!
//! [`JobBus`] is both, for callers that use both; a caller that needs one side takes only that
//! trait. Two backends implement them, chosen by URL in [`connect`]:
//! - `redis://host:port[/db]` or `rediss://...` (TLS): Redis Streams (Redis 7 or newer); see
//!   [`redis_connect`] for URLs, TLS and the CA file. Connections are opened again as needed;
//!   while Redis is down calls fail with a retryable error ([`BusError::is_retryable`]) and
//!   succeed again once it is back, on the same bus object.
//! - `memory://[name]`: an in-process bus with the same semantics (ids, delivery counts, idle
//!   times, reclaim, dead letters, trimming, TTLs). Buses with the same name in one process share
//!   state, so services started in one process see one bus; the state lives until the process ends.
//!
//! Both accept `?maxlen=N&max_deliveries=M` to override [`BusOptions`].
//!
//! [`redis_connect`] is also how the registry and the indexer's and redeemer's stores open
//! Redis. Feature `testing` adds a `redis-server` launcher (`server`) and test helpers
//! (`testing`); production builds leave them out.
//!
//! # Delivery and durability
//! Delivery is at-least-once: a job stays pending in its group until acknowledged, and
//! [`StreamBus::reclaim`] hands jobs idle for longer than `min_idle` to another consumer. A job
//! delivered more than [`BusOptions::max_deliveries`] times is moved to `<stream>:dlq` with its
//! original id, headers and the reason, and acknowledged, so it stops blocking capacity.
//!
//! Jobs and acknowledgements survive a Redis restart only if Redis persists them: run it with
//! `appendonly yes` and `appendfsync everysec` (up to a second of acknowledgements may be lost,
//! so those jobs run again) or `appendfsync always` (nothing acknowledged is lost, slower).
//! Without persistence a restart loses every stream, group and pending job. Since delivery is
//! at-least-once, consumers keep their outputs idempotent.
//!
//! # Broadcast readers
//! A process that must see every entry of a stream (every segment result, say) tails it with
//! [`StreamBus::read_after`], keeping its own cursor in memory, rather than through a consumer
//! group of its own: such groups would outlive their processes in Redis, one more per restart.
//! [`StreamBus::last_id`] gives the cursor for "from now on".

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

mod clock;
mod error;
mod memory;
mod metrics;
mod redis_bus;
pub mod redis_connect;
mod resp;
#[cfg(any(test, feature = "testing"))]
pub mod server;
#[cfg(feature = "testing")]
pub mod testing;

pub use clock::now_ms;
pub use error::BusError;
pub use memory::MemoryBus;
pub use redis_bus::RedisBus;

/// Message headers: small string metadata carried beside the payload.
pub type Headers = BTreeMap<String, String>;

/// A boxed future, so that [`JobBus`] can be used as a trait object.
pub type BusFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, BusError>> + Send + 'a>>;

/// Header naming the id the message had in its original stream, set on dead letters.
pub const DLQ_ORIGINAL_ID_HEADER: &str = "x-dlq-original-id";
/// Header saying why a message was dead-lettered.
pub const DLQ_REASON_HEADER: &str = "x-dlq-reason";
/// Header naming the consumer group that gave up on a dead letter.
pub const DLQ_GROUP_HEADER: &str = "x-dlq-group";
/// Header with the number of deliveries a dead letter had.
pub const DLQ_DELIVERY_COUNT_HEADER: &str = "x-dlq-delivery-count";

/// The dead-letter stream of `stream`.
pub fn dlq_stream(stream: &str) -> String {
    format!("{stream}:dlq")
}

/// A stream entry id, `<milliseconds>-<sequence>` as in Redis; ids only grow within a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct MessageId {
    /// Milliseconds since the Unix epoch when the entry was added (never less than the last one).
    pub ms: u64,
    /// Sequence number within the millisecond.
    pub seq: u64,
}

impl MessageId {
    /// The id from its parts.
    pub const fn new(ms: u64, seq: u64) -> Self {
        Self { ms, seq }
    }
}

impl fmt::Display for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.ms, self.seq)
    }
}

impl FromStr for MessageId {
    type Err = BusError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || BusError::InvalidMessageId(s.to_owned());
        let (ms, seq) = s.split_once('-').ok_or_else(bad)?;
        Ok(Self {
            ms: ms.parse().map_err(|_| bad())?,
            seq: seq.parse().map_err(|_| bad())?,
        })
    }
}

/// A stream entry read without a consumer group (see [`StreamBus::range`] and
/// [`StreamBus::read_after`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Entry id.
    pub id: MessageId,
    /// Opaque payload bytes.
    pub payload: Vec<u8>,
    /// Headers given to [`StreamBus::publish`].
    pub headers: Headers,
}

/// A message handed to one consumer of a group; it stays pending until acknowledged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// Entry id, used to acknowledge it.
    pub id: MessageId,
    /// Opaque payload bytes.
    pub payload: Vec<u8>,
    /// Headers given to [`StreamBus::publish`].
    pub headers: Headers,
    /// How many times the message has been delivered in this group, this time included.
    pub delivery_count: u64,
}

/// Backlog of one consumer group, for autoscaling.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct GroupStats {
    /// Messages delivered to a consumer and not yet acknowledged.
    pub pending: u64,
    /// Messages in the stream not yet delivered to the group.
    pub lag: u64,
}

/// Tunables shared by both backends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BusOptions {
    /// Approximate cap on each stream's length (Redis `MAXLEN ~`); the oldest entries go
    /// first. `None` keeps every entry.
    pub maxlen: Option<u64>,
    /// A message delivered more than this many times is moved to `<stream>:dlq` on reclaim.
    pub max_deliveries: u64,
}

impl Default for BusOptions {
    fn default() -> Self {
        Self {
            maxlen: Some(100_000),
            max_deliveries: 5,
        }
    }
}

/// Named streams of jobs read through consumer groups, with reclaim and dead letters, and
/// broadcast reads that keep their own cursor.
///
/// Stream, group and consumer names are arbitrary strings. Every method is safe to call
/// concurrently from many tasks on one shared instance.
pub trait StreamBus: Send + Sync + fmt::Debug {
    /// The options this bus was opened with.
    fn options(&self) -> &BusOptions;

    /// Checks that the backend answers (for readiness probes).
    fn ping(&self) -> BusFuture<'_, ()>;

    /// Appends a message to `stream` (created on demand), trimming the stream to about
    /// [`BusOptions::maxlen`] entries.
    fn publish<'a>(
        &'a self,
        stream: &'a str,
        payload: &'a [u8],
        headers: &'a Headers,
    ) -> BusFuture<'a, MessageId>;

    /// Creates consumer group `group` on `stream` if it does not exist; the stream is created
    /// too if needed and a new group starts at the beginning of the stream.
    fn ensure_group<'a>(&'a self, stream: &'a str, group: &'a str) -> BusFuture<'a, ()>;

    /// Delivers up to `max` messages never delivered to `group` before, to `consumer`, waiting
    /// up to `block` for the first one (`Duration::ZERO`: do not wait). Creates the group if it
    /// does not exist. An empty result means nothing arrived in time.
    fn consume<'a>(
        &'a self,
        stream: &'a str,
        group: &'a str,
        consumer: &'a str,
        max: usize,
        block: Duration,
    ) -> BusFuture<'a, Vec<Delivery>>;

    /// Acknowledges a message so it is never delivered again in `group`; returns whether it
    /// was pending.
    fn ack<'a>(&'a self, stream: &'a str, group: &'a str, id: MessageId) -> BusFuture<'a, bool>;

    /// Takes over up to `max` messages of `group` that have been pending, unacknowledged, for
    /// at least `min_idle` (their consumer probably died) and delivers them to `consumer` with
    /// their delivery count increased. Messages that would exceed
    /// [`BusOptions::max_deliveries`] go to `<stream>:dlq` instead and are acknowledged.
    /// Pending messages trimmed from the stream meanwhile are dropped.
    fn reclaim<'a>(
        &'a self,
        stream: &'a str,
        group: &'a str,
        consumer: &'a str,
        min_idle: Duration,
        max: usize,
    ) -> BusFuture<'a, Vec<Delivery>>;

    /// Pending count and lag of `group`. A group that does not exist yet has nothing pending
    /// and a lag of the whole stream (it would start at the beginning).
    fn group_stats<'a>(&'a self, stream: &'a str, group: &'a str) -> BusFuture<'a, GroupStats>;

    /// Number of entries in `stream` (0 if it does not exist).
    fn stream_len<'a>(&'a self, stream: &'a str) -> BusFuture<'a, u64>;

    /// Up to `count` entries of `stream` with ids greater than `after` (from the start when
    /// `None`), oldest first, without touching any group (to inspect dead letters, for example).
    fn range<'a>(
        &'a self,
        stream: &'a str,
        after: Option<MessageId>,
        count: usize,
    ) -> BusFuture<'a, Vec<Message>>;

    /// Up to `max` entries of `stream` with ids greater than `after`, oldest first, waiting up
    /// to `block` for the first one (`Duration::ZERO`: do not wait); an empty result means
    /// nothing arrived in time. No consumer group is involved and nothing is created, so any
    /// number of readers can each see every entry by keeping their own cursor (the id of the
    /// last entry they read). `MessageId::new(0, 0)` reads from the start; a stream that does
    /// not exist yet counts as empty, and a blocked read wakes when it is created.
    fn read_after<'a>(
        &'a self,
        stream: &'a str,
        after: MessageId,
        max: usize,
        block: Duration,
    ) -> BusFuture<'a, Vec<Message>>;

    /// The id of the newest entry ever added to `stream`, even if it has since been trimmed;
    /// `None` if no entry was ever added (or the stream does not exist). A reader that wants
    /// only entries added from now on reads after this id, so entries added between this
    /// call and its first read are not missed.
    fn last_id<'a>(&'a self, stream: &'a str) -> BusFuture<'a, Option<MessageId>>;

    /// Deletes `stream` with its groups; returns whether it existed.
    fn delete_stream<'a>(&'a self, stream: &'a str) -> BusFuture<'a, bool>;

    /// Appends several messages to `stream` in order, as [`StreamBus::publish`] would one by one,
    /// and returns their ids in the same order. Redis sends them as one `MULTI`/`EXEC` in one
    /// round trip, so they land together; if the connection fails after the server applied
    /// the batch, a retry publishes it twice, which at-least-once delivery already allows for.
    ///
    /// The default publishes one message at a time; backends override it.
    fn publish_batch<'a>(
        &'a self,
        stream: &'a str,
        messages: &'a [(&'a [u8], &'a Headers)],
    ) -> BusFuture<'a, Vec<MessageId>> {
        Box::pin(async move {
            let mut ids = Vec::with_capacity(messages.len());
            for (payload, headers) in messages {
                ids.push(self.publish(stream, payload, headers).await?);
            }
            Ok(ids)
        })
    }

    /// Acknowledges several messages of `group` at once (one `XACK` on Redis); returns how
    /// many of them were pending. Unknown or already acknowledged ids are not counted.
    ///
    /// The default acknowledges one id at a time; backends override it.
    fn ack_batch<'a>(
        &'a self,
        stream: &'a str,
        group: &'a str,
        ids: &'a [MessageId],
    ) -> BusFuture<'a, u64> {
        Box::pin(async move {
            let mut acked = 0;
            for id in ids {
                if self.ack(stream, group, *id).await? {
                    acked += 1;
                }
            }
            Ok(acked)
        })
    }

    /// Acknowledges `ack` as [`StreamBus::ack_batch`] does, then consumes as [`StreamBus::consume`]
    /// does; returns how many of `ack` were pending and the new deliveries. A worker that
    /// acknowledges each batch as it asks for the next saves a round trip per batch: Redis
    /// gets both commands in one write. If the call fails, the acknowledgements may or may
    /// not have been applied; acknowledging again is harmless.
    ///
    /// The default calls the two one after the other; backends override it.
    fn ack_and_consume<'a>(
        &'a self,
        stream: &'a str,
        group: &'a str,
        consumer: &'a str,
        ack: &'a [MessageId],
        max: usize,
        block: Duration,
    ) -> BusFuture<'a, (u64, Vec<Delivery>)> {
        Box::pin(async move {
            let acked = self.ack_batch(stream, group, ack).await?;
            let deliveries = self.consume(stream, group, consumer, max, block).await?;
            Ok((acked, deliveries))
        })
    }

    /// Number of messages pending (delivered, not acknowledged) in `group`.
    fn pending_count<'a>(&'a self, stream: &'a str, group: &'a str) -> BusFuture<'a, u64> {
        Box::pin(async move { Ok(self.group_stats(stream, group).await?.pending) })
    }

    /// Number of messages not yet delivered to `group`.
    fn lag<'a>(&'a self, stream: &'a str, group: &'a str) -> BusFuture<'a, u64> {
        Box::pin(async move { Ok(self.group_stats(stream, group).await?.lag) })
    }
}

/// A key/value store with TTLs: worker registrations, heartbeats and per-stream affinity
/// claims. Key names are arbitrary strings; every method is safe to call concurrently.
pub trait KvStore: Send + Sync + fmt::Debug {
    /// Sets `key` to `value`, expiring after `ttl`.
    fn set_with_ttl<'a>(
        &'a self,
        key: &'a str,
        value: &'a [u8],
        ttl: Duration,
    ) -> BusFuture<'a, ()>;

    /// The value of `key`, if set and not expired.
    fn get<'a>(&'a self, key: &'a str) -> BusFuture<'a, Option<Vec<u8>>>;

    /// Deletes `key`; returns whether it was set.
    fn delete<'a>(&'a self, key: &'a str) -> BusFuture<'a, bool>;

    /// Every live key starting with `prefix` with its value, sorted by key.
    fn scan_prefix<'a>(&'a self, prefix: &'a str) -> BusFuture<'a, Vec<(String, Vec<u8>)>>;

    /// Claims `key` for `owner` for `ttl` if nobody else holds it; an owner that already holds
    /// it keeps it and gets a fresh `ttl`. Returns whether `owner` holds it now.
    fn claim_affinity<'a>(
        &'a self,
        key: &'a str,
        owner: &'a str,
        ttl: Duration,
    ) -> BusFuture<'a, bool>;

    /// Extends `owner`'s claim on `key` to `ttl` from now; false (and nothing changes) if
    /// `owner` does not hold it.
    fn renew_affinity<'a>(
        &'a self,
        key: &'a str,
        owner: &'a str,
        ttl: Duration,
    ) -> BusFuture<'a, bool>;

    /// Drops `owner`'s claim on `key`; false (and nothing changes) if `owner` does not hold it.
    fn release_affinity<'a>(&'a self, key: &'a str, owner: &'a str) -> BusFuture<'a, bool>;
}

/// Both halves of the bus, for callers that use streams and keys alike; implemented for every
/// type that implements [`StreamBus`] and [`KvStore`].
pub trait JobBus: StreamBus + KvStore {}

impl<T: StreamBus + KvStore + ?Sized> JobBus for T {}

/// Opens the bus named by `url` (`redis[s]://...` or `memory://[name]`) with options from its
/// query string, defaults otherwise. For Redis this checks that the server answers.
pub async fn connect(url: &str) -> Result<Arc<dyn JobBus>, BusError> {
    connect_with(url, BusOptions::default()).await
}

/// Like [`connect`], starting from `options` instead of the defaults (query parameters in
/// `url` still override them).
pub async fn connect_with(url: &str, options: BusOptions) -> Result<Arc<dyn JobBus>, BusError> {
    let (base, options) = split_options(url, options)?;
    if let Some(name) = base.strip_prefix("memory://") {
        let name = name.trim_end_matches('/');
        let name = if name.is_empty() { "default" } else { name };
        return Ok(Arc::new(MemoryBus::named(name, options)));
    }
    if ["redis://", "rediss://", "redis+unix://"]
        .iter()
        .any(|scheme| base.starts_with(scheme))
    {
        return Ok(Arc::new(RedisBus::connect(&base, options).await?));
    }
    Err(BusError::InvalidUrl {
        url: url.to_owned(),
        reason: "expected redis://, rediss:// or memory://".to_owned(),
    })
}

/// Takes our own query parameters out of `url`, leaving the rest for the backend.
fn split_options(url: &str, mut options: BusOptions) -> Result<(String, BusOptions), BusError> {
    let Some((base, query)) = url.split_once('?') else {
        return Ok((url.to_owned(), options));
    };
    let invalid = |reason: String| BusError::InvalidUrl {
        url: url.to_owned(),
        reason,
    };
    let mut rest = Vec::new();
    for pair in query.split('&').filter(|pair| !pair.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        match key {
            "maxlen" => {
                let n: u64 = value
                    .parse()
                    .map_err(|_| invalid(format!("maxlen {value:?} is not a number")))?;
                options.maxlen = (n > 0).then_some(n);
            }
            "max_deliveries" => {
                options.max_deliveries = value
                    .parse()
                    .map_err(|_| invalid(format!("max_deliveries {value:?} is not a number")))?;
            }
            _ => rest.push(pair),
        }
    }
    let base = if rest.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", rest.join("&"))
    };
    Ok((base, options))
}

/// The field a message's payload is stored under in a Redis stream entry (the bus benchmark
/// writes raw entries of the same shape).
pub const PAYLOAD_FIELD: &str = "payload";
/// The prefix of the fields a message's headers are stored under.
pub(crate) const HEADER_FIELD_PREFIX: &str = "h:";

/// The reason recorded on a dead letter.
pub(crate) fn dlq_reason(delivery_count: u64, max_deliveries: u64) -> String {
    format!("delivered {delivery_count} times, more than max_deliveries {max_deliveries}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_id_round_trips_and_orders() {
        let id: MessageId = "1700000000000-7".parse().expect("valid id");
        assert_eq!(id, MessageId::new(1_700_000_000_000, 7));
        assert_eq!(id.to_string(), "1700000000000-7");
        assert!(MessageId::new(5, 9) < MessageId::new(6, 0));
        assert!(MessageId::new(5, 1) < MessageId::new(5, 2));
        for bad in ["", "12", "a-1", "1-b", "-1", "1-"] {
            assert!(bad.parse::<MessageId>().is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn url_options_override_defaults_and_keep_other_parameters() {
        let (base, options) = split_options(
            "redis://127.0.0.1:6379/0?maxlen=10&protocol=resp3&max_deliveries=2",
            BusOptions::default(),
        )
        .expect("valid url");
        assert_eq!(base, "redis://127.0.0.1:6379/0?protocol=resp3");
        assert_eq!(options.maxlen, Some(10));
        assert_eq!(options.max_deliveries, 2);

        let (base, options) =
            split_options("memory://x?maxlen=0", BusOptions::default()).expect("valid url");
        assert_eq!(base, "memory://x");
        assert_eq!(options.maxlen, None);

        assert!(split_options("memory://x?maxlen=lots", BusOptions::default()).is_err());
    }

    #[tokio::test]
    async fn unknown_scheme_is_rejected() {
        let error = connect("kafka://x").await.expect_err("unknown scheme");
        assert!(matches!(error, BusError::InvalidUrl { .. }));
    }

    #[tokio::test]
    async fn memory_buses_with_one_name_share_state() {
        let a = connect("memory://lib-share-test")
            .await
            .expect("memory bus");
        let b = connect("memory://lib-share-test")
            .await
            .expect("memory bus");
        let other = connect("memory://lib-share-other")
            .await
            .expect("memory bus");
        let id = a
            .publish("s", b"x", &Headers::new())
            .await
            .expect("publish");
        let seen = b.range("s", None, 10).await.expect("range");
        assert_eq!(seen.len(), 1);
        assert_eq!(seen[0].id, id);
        assert_eq!(other.stream_len("s").await.expect("len"), 0);
    }
}
