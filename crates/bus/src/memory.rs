//! The in-process bus: Redis Streams semantics over maps behind one mutex per named bus.

use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use crate::now_ms;
use crate::{
    dlq_reason, dlq_stream, BusError, BusFuture, BusOptions, Delivery, GroupStats, Headers,
    KvStore, Message, MessageId, StreamBus, DLQ_DELIVERY_COUNT_HEADER, DLQ_GROUP_HEADER,
    DLQ_ORIGINAL_ID_HEADER, DLQ_REASON_HEADER,
};

/// An in-process [`JobBus`](crate::JobBus). Clones and buses opened with the same name share state.
#[derive(Clone)]
pub struct MemoryBus {
    name: String,
    shared: Arc<Shared>,
    options: BusOptions,
}

impl std::fmt::Debug for MemoryBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryBus")
            .field("name", &self.name)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

#[derive(Default)]
struct Shared {
    state: Mutex<State>,
    /// Woken on every publish so blocked consumers look again.
    published: Notify,
}

#[derive(Default)]
struct State {
    streams: HashMap<String, Stream>,
    kv: BTreeMap<String, KvEntry>,
}

#[derive(Default)]
struct Stream {
    entries: BTreeMap<MessageId, Entry>,
    last_id: MessageId,
    groups: HashMap<String, Group>,
}

struct Entry {
    payload: Vec<u8>,
    headers: Headers,
}

#[derive(Default)]
struct Group {
    last_delivered: MessageId,
    pending: BTreeMap<MessageId, Pending>,
}

struct Pending {
    consumer: String,
    delivered_at: Instant,
    count: u64,
}

struct KvEntry {
    value: Vec<u8>,
    expires_at: Instant,
}

impl KvEntry {
    fn live(&self, now: Instant) -> bool {
        self.expires_at > now
    }
}

/// Named buses of this process; they live as long as the process, like a server would.
fn registry() -> &'static Mutex<HashMap<String, Arc<Shared>>> {
    static REGISTRY: OnceLock<Mutex<HashMap<String, Arc<Shared>>>> = OnceLock::new();
    REGISTRY.get_or_init(Default::default)
}

/// Locks ignoring poison: every mutation below leaves the maps consistent at each step.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// `after` from now; durations too long to represent mean "about never".
fn later(after: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(after)
        .or_else(|| now.checked_add(Duration::from_secs(100 * 365 * 24 * 3600)))
        .unwrap_or(now)
}

impl MemoryBus {
    /// A private bus that shares state only with its clones.
    pub fn new(options: BusOptions) -> Self {
        Self {
            name: String::new(),
            shared: Arc::default(),
            options,
        }
    }

    /// The process-wide bus called `name`, created on first use.
    pub fn named(name: &str, options: BusOptions) -> Self {
        let shared = lock(registry()).entry(name.to_owned()).or_default().clone();
        Self {
            name: name.to_owned(),
            shared,
            options,
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.shared.state)
    }

    fn append(
        &self,
        state: &mut State,
        stream: &str,
        payload: &[u8],
        headers: Headers,
    ) -> MessageId {
        let s = state.streams.entry(stream.to_owned()).or_default();
        let ms = now_ms();
        let id = if ms > s.last_id.ms {
            MessageId::new(ms, 0)
        } else {
            MessageId::new(s.last_id.ms, s.last_id.seq + 1)
        };
        s.last_id = id;
        s.entries.insert(
            id,
            Entry {
                payload: payload.to_vec(),
                headers,
            },
        );
        if let Some(maxlen) = self.options.maxlen {
            let maxlen = usize::try_from(maxlen).unwrap_or(usize::MAX);
            while s.entries.len() > maxlen {
                s.entries.pop_first();
            }
        }
        id
    }

    fn read_new(
        state: &mut State,
        stream: &str,
        group: &str,
        consumer: &str,
        max: usize,
    ) -> Vec<Delivery> {
        let s = state.streams.entry(stream.to_owned()).or_default();
        let g = s.groups.entry(group.to_owned()).or_default();
        let now = Instant::now();
        let mut out = Vec::new();
        for (id, entry) in s
            .entries
            .range((Bound::Excluded(g.last_delivered), Bound::Unbounded))
            .take(max)
        {
            g.pending.insert(
                *id,
                Pending {
                    consumer: consumer.to_owned(),
                    delivered_at: now,
                    count: 1,
                },
            );
            out.push(Delivery {
                id: *id,
                payload: entry.payload.clone(),
                headers: entry.headers.clone(),
                delivery_count: 1,
            });
        }
        if let Some(last) = out.last() {
            g.last_delivered = last.id;
        }
        out
    }

    async fn consume_inner(
        &self,
        stream: &str,
        group: &str,
        consumer: &str,
        max: usize,
        block: Duration,
    ) -> Result<Vec<Delivery>, BusError> {
        let deadline = later(block);
        loop {
            // Register for the wake-up before looking, so a publish in between is not missed.
            let published = self.shared.published.notified();
            tokio::pin!(published);
            published.as_mut().enable();
            let out = Self::read_new(&mut self.state(), stream, group, consumer, max.max(1));
            if !out.is_empty() {
                return Ok(out);
            }
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                return Ok(out);
            }
            let _ = tokio::time::timeout(remaining, published).await;
        }
    }

    /// Up to `max` entries of `stream` after `after`, without creating anything.
    fn read_after_now(&self, stream: &str, after: MessageId, max: usize) -> Vec<Message> {
        let state = self.state();
        let Some(s) = state.streams.get(stream) else {
            return Vec::new();
        };
        s.entries
            .range((Bound::Excluded(after), Bound::Unbounded))
            .take(max)
            .map(|(id, e)| Message {
                id: *id,
                payload: e.payload.clone(),
                headers: e.headers.clone(),
            })
            .collect()
    }

    async fn read_after_inner(
        &self,
        stream: &str,
        after: MessageId,
        max: usize,
        block: Duration,
    ) -> Result<Vec<Message>, BusError> {
        let deadline = later(block);
        loop {
            // Register for the wake-up before looking, as consume_inner does.
            let published = self.shared.published.notified();
            tokio::pin!(published);
            published.as_mut().enable();
            let out = self.read_after_now(stream, after, max.max(1));
            if !out.is_empty() {
                return Ok(out);
            }
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                return Ok(out);
            }
            let _ = tokio::time::timeout(remaining, published).await;
        }
    }

    fn reclaim_inner(
        &self,
        stream: &str,
        group: &str,
        consumer: &str,
        min_idle: Duration,
        max: usize,
    ) -> Vec<Delivery> {
        let mut state = self.state();
        let now = Instant::now();
        let mut out = Vec::new();
        let mut dead = Vec::new();
        {
            let Some(s) = state.streams.get_mut(stream) else {
                return out;
            };
            let Some(g) = s.groups.get_mut(group) else {
                return out;
            };
            let mut dropped = Vec::new();
            for (id, pending) in g.pending.iter_mut() {
                if out.len() >= max.max(1) {
                    break;
                }
                if now.saturating_duration_since(pending.delivered_at) < min_idle {
                    continue;
                }
                let Some(entry) = s.entries.get(id) else {
                    // Trimmed while pending: nothing left to deliver (XAUTOCLAIM does the same).
                    dropped.push(*id);
                    continue;
                };
                pending.count += 1;
                pending.consumer = consumer.to_owned();
                pending.delivered_at = now;
                if pending.count > self.options.max_deliveries {
                    dropped.push(*id);
                    dead.push((
                        *id,
                        entry.payload.clone(),
                        entry.headers.clone(),
                        pending.count,
                    ));
                } else {
                    out.push(Delivery {
                        id: *id,
                        payload: entry.payload.clone(),
                        headers: entry.headers.clone(),
                        delivery_count: pending.count,
                    });
                }
            }
            for id in dropped {
                g.pending.remove(&id);
            }
        }
        if !dead.is_empty() {
            let dlq = dlq_stream(stream);
            for (id, payload, mut headers, count) in dead {
                let reason = dlq_reason(count, self.options.max_deliveries);
                tracing::warn!(stream, group, %id, count, "job moved to dead-letter stream");
                headers.insert(DLQ_ORIGINAL_ID_HEADER.to_owned(), id.to_string());
                headers.insert(DLQ_REASON_HEADER.to_owned(), reason);
                headers.insert(DLQ_GROUP_HEADER.to_owned(), group.to_owned());
                headers.insert(DLQ_DELIVERY_COUNT_HEADER.to_owned(), count.to_string());
                self.append(&mut state, &dlq, &payload, headers);
            }
            drop(state);
            self.shared.published.notify_waiters();
        }
        out
    }

    fn group_stats_inner(&self, stream: &str, group: &str) -> GroupStats {
        let state = self.state();
        let Some(s) = state.streams.get(stream) else {
            return GroupStats::default();
        };
        let Some(g) = s.groups.get(group) else {
            return GroupStats {
                pending: 0,
                lag: s.entries.len() as u64,
            };
        };
        let lag = s
            .entries
            .range((Bound::Excluded(g.last_delivered), Bound::Unbounded))
            .count();
        GroupStats {
            pending: g.pending.len() as u64,
            lag: lag as u64,
        }
    }

    fn kv_get(&self, key: &str) -> Option<Vec<u8>> {
        let now = Instant::now();
        self.state()
            .kv
            .get(key)
            .filter(|e| e.live(now))
            .map(|e| e.value.clone())
    }

    /// Runs `f` on the live value of `key` (expired entries count as absent).
    fn with_live_key<R>(
        &self,
        key: &str,
        f: impl FnOnce(&mut BTreeMap<String, KvEntry>, Option<&[u8]>) -> R,
    ) -> R {
        let now = Instant::now();
        let mut state = self.state();
        if state.kv.get(key).is_some_and(|e| !e.live(now)) {
            state.kv.remove(key);
        }
        let current = state.kv.get(key).map(|e| e.value.clone());
        f(&mut state.kv, current.as_deref())
    }
}

impl StreamBus for MemoryBus {
    fn options(&self) -> &BusOptions {
        &self.options
    }

    fn ping(&self) -> BusFuture<'_, ()> {
        Box::pin(async { Ok(()) })
    }

    fn publish<'a>(
        &'a self,
        stream: &'a str,
        payload: &'a [u8],
        headers: &'a Headers,
    ) -> BusFuture<'a, MessageId> {
        Box::pin(async move {
            let id = self.append(&mut self.state(), stream, payload, headers.clone());
            self.shared.published.notify_waiters();
            Ok(id)
        })
    }

    fn publish_batch<'a>(
        &'a self,
        stream: &'a str,
        messages: &'a [(&'a [u8], &'a Headers)],
    ) -> BusFuture<'a, Vec<MessageId>> {
        Box::pin(async move {
            if messages.is_empty() {
                return Ok(Vec::new());
            }
            // One lock and one wake-up for the whole batch.
            let ids = {
                let mut state = self.state();
                messages
                    .iter()
                    .map(|(payload, headers)| {
                        self.append(&mut state, stream, payload, (*headers).clone())
                    })
                    .collect()
            };
            self.shared.published.notify_waiters();
            Ok(ids)
        })
    }

    fn ack_batch<'a>(
        &'a self,
        stream: &'a str,
        group: &'a str,
        ids: &'a [MessageId],
    ) -> BusFuture<'a, u64> {
        Box::pin(async move {
            let mut state = self.state();
            let Some(g) = state
                .streams
                .get_mut(stream)
                .and_then(|s| s.groups.get_mut(group))
            else {
                return Ok(0);
            };
            Ok(ids
                .iter()
                .filter(|id| g.pending.remove(id).is_some())
                .count() as u64)
        })
    }

    fn ensure_group<'a>(&'a self, stream: &'a str, group: &'a str) -> BusFuture<'a, ()> {
        Box::pin(async move {
            self.state()
                .streams
                .entry(stream.to_owned())
                .or_default()
                .groups
                .entry(group.to_owned())
                .or_default();
            Ok(())
        })
    }

    fn consume<'a>(
        &'a self,
        stream: &'a str,
        group: &'a str,
        consumer: &'a str,
        max: usize,
        block: Duration,
    ) -> BusFuture<'a, Vec<Delivery>> {
        Box::pin(self.consume_inner(stream, group, consumer, max, block))
    }

    fn ack<'a>(&'a self, stream: &'a str, group: &'a str, id: MessageId) -> BusFuture<'a, bool> {
        Box::pin(async move {
            let mut state = self.state();
            let removed = state
                .streams
                .get_mut(stream)
                .and_then(|s| s.groups.get_mut(group))
                .and_then(|g| g.pending.remove(&id))
                .is_some();
            Ok(removed)
        })
    }

    fn reclaim<'a>(
        &'a self,
        stream: &'a str,
        group: &'a str,
        consumer: &'a str,
        min_idle: Duration,
        max: usize,
    ) -> BusFuture<'a, Vec<Delivery>> {
        Box::pin(async move { Ok(self.reclaim_inner(stream, group, consumer, min_idle, max)) })
    }

    fn group_stats<'a>(&'a self, stream: &'a str, group: &'a str) -> BusFuture<'a, GroupStats> {
        Box::pin(async move { Ok(self.group_stats_inner(stream, group)) })
    }

    fn stream_len<'a>(&'a self, stream: &'a str) -> BusFuture<'a, u64> {
        Box::pin(async move {
            Ok(self
                .state()
                .streams
                .get(stream)
                .map_or(0, |s| s.entries.len() as u64))
        })
    }

    fn range<'a>(
        &'a self,
        stream: &'a str,
        after: Option<MessageId>,
        count: usize,
    ) -> BusFuture<'a, Vec<Message>> {
        Box::pin(async move {
            let state = self.state();
            let Some(s) = state.streams.get(stream) else {
                return Ok(Vec::new());
            };
            let start = after.map_or(Bound::Unbounded, Bound::Excluded);
            Ok(s.entries
                .range((start, Bound::Unbounded))
                .take(count)
                .map(|(id, e)| Message {
                    id: *id,
                    payload: e.payload.clone(),
                    headers: e.headers.clone(),
                })
                .collect())
        })
    }

    fn read_after<'a>(
        &'a self,
        stream: &'a str,
        after: MessageId,
        max: usize,
        block: Duration,
    ) -> BusFuture<'a, Vec<Message>> {
        Box::pin(self.read_after_inner(stream, after, max, block))
    }

    fn last_id<'a>(&'a self, stream: &'a str) -> BusFuture<'a, Option<MessageId>> {
        Box::pin(async move {
            Ok(self
                .state()
                .streams
                .get(stream)
                .map(|s| s.last_id)
                .filter(|id| *id != MessageId::default()))
        })
    }

    fn delete_stream<'a>(&'a self, stream: &'a str) -> BusFuture<'a, bool> {
        Box::pin(async move { Ok(self.state().streams.remove(stream).is_some()) })
    }
}

impl KvStore for MemoryBus {
    fn set_with_ttl<'a>(
        &'a self,
        key: &'a str,
        value: &'a [u8],
        ttl: Duration,
    ) -> BusFuture<'a, ()> {
        Box::pin(async move {
            self.state().kv.insert(
                key.to_owned(),
                KvEntry {
                    value: value.to_vec(),
                    expires_at: later(ttl),
                },
            );
            Ok(())
        })
    }

    fn get<'a>(&'a self, key: &'a str) -> BusFuture<'a, Option<Vec<u8>>> {
        Box::pin(async move { Ok(self.kv_get(key)) })
    }

    fn delete<'a>(&'a self, key: &'a str) -> BusFuture<'a, bool> {
        Box::pin(async move {
            Ok(self.with_live_key(key, |kv, current| {
                kv.remove(key);
                current.is_some()
            }))
        })
    }

    fn scan_prefix<'a>(&'a self, prefix: &'a str) -> BusFuture<'a, Vec<(String, Vec<u8>)>> {
        Box::pin(async move {
            let now = Instant::now();
            let mut state = self.state();
            state.kv.retain(|_, e| e.live(now));
            Ok(state
                .kv
                .range(prefix.to_owned()..)
                .take_while(|(k, _)| k.starts_with(prefix))
                .map(|(k, e)| (k.clone(), e.value.clone()))
                .collect())
        })
    }

    fn claim_affinity<'a>(
        &'a self,
        key: &'a str,
        owner: &'a str,
        ttl: Duration,
    ) -> BusFuture<'a, bool> {
        Box::pin(async move {
            Ok(self.with_live_key(key, |kv, current| {
                if current.is_some_and(|v| v != owner.as_bytes()) {
                    return false;
                }
                kv.insert(
                    key.to_owned(),
                    KvEntry {
                        value: owner.as_bytes().to_vec(),
                        expires_at: later(ttl),
                    },
                );
                true
            }))
        })
    }

    fn renew_affinity<'a>(
        &'a self,
        key: &'a str,
        owner: &'a str,
        ttl: Duration,
    ) -> BusFuture<'a, bool> {
        Box::pin(async move {
            Ok(self.with_live_key(key, |kv, current| {
                if current != Some(owner.as_bytes()) {
                    return false;
                }
                if let Some(entry) = kv.get_mut(key) {
                    entry.expires_at = later(ttl);
                }
                true
            }))
        })
    }

    fn release_affinity<'a>(&'a self, key: &'a str, owner: &'a str) -> BusFuture<'a, bool> {
        Box::pin(async move {
            Ok(self.with_live_key(key, |kv, current| {
                if current != Some(owner.as_bytes()) {
                    return false;
                }
                kv.remove(key);
                true
            }))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn ids_grow_within_one_millisecond() {
        let bus = MemoryBus::new(BusOptions::default());
        let mut last = MessageId::default();
        for _ in 0..1000 {
            let id = bus
                .publish("s", b"", &Headers::new())
                .await
                .expect("publish");
            assert!(id > last, "{id} after {last}");
            last = id;
        }
    }

    #[tokio::test]
    async fn huge_durations_do_not_overflow() {
        let bus = MemoryBus::new(BusOptions::default());
        bus.set_with_ttl("k", b"v", Duration::MAX)
            .await
            .expect("set");
        assert_eq!(bus.get("k").await.expect("get"), Some(b"v".to_vec()));
        assert!(bus
            .claim_affinity("a", "me", Duration::MAX)
            .await
            .expect("claim"));
        bus.publish("s", b"x", &Headers::new())
            .await
            .expect("publish");
        let got = bus
            .consume("s", "g", "c", 1, Duration::MAX)
            .await
            .expect("consume");
        assert_eq!(got.len(), 1);
    }

    #[tokio::test]
    async fn read_after_creates_neither_stream_nor_group() {
        let bus = MemoryBus::new(BusOptions::default());
        let none = bus
            .read_after("s", MessageId::default(), 10, Duration::from_millis(20))
            .await
            .expect("read");
        assert!(none.is_empty());
        assert!(!bus.state().streams.contains_key("s"));
        let id = bus
            .publish("s", b"x", &Headers::new())
            .await
            .expect("publish");
        let got = bus
            .read_after("s", MessageId::default(), 10, Duration::ZERO)
            .await
            .expect("read");
        assert_eq!(got.iter().map(|m| m.id).collect::<Vec<_>>(), vec![id]);
        assert!(bus.state().streams["s"].groups.is_empty());
    }

    #[tokio::test]
    async fn trimming_is_exact() {
        let bus = MemoryBus::new(BusOptions {
            maxlen: Some(3),
            max_deliveries: 5,
        });
        let mut ids = Vec::new();
        for i in 0..10u8 {
            ids.push(
                bus.publish("s", &[i], &Headers::new())
                    .await
                    .expect("publish"),
            );
        }
        let kept: Vec<_> = bus
            .range("s", None, 100)
            .await
            .expect("range")
            .into_iter()
            .map(|m| m.id)
            .collect();
        assert_eq!(kept, ids[7..]);
    }
}
