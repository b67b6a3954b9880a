//! A memory bus with hooks, for the tests of the client and the tail.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use livefarm_bus::{
    BusError, BusFuture, BusOptions, Delivery, GroupStats, Headers, KvStore, MemoryBus, Message,
    MessageId, StreamBus,
};

/// A [`MemoryBus`] that can publish an entry right after answering `last_id` (as a worker
/// would if it finished between a tail's start-up and its first read) and fail reads.
#[derive(Debug)]
pub(crate) struct HookedBus {
    inner: MemoryBus,
    after_last_id: Mutex<Option<(String, Vec<u8>, Headers)>>,
    failing_reads: AtomicUsize,
}

impl HookedBus {
    pub(crate) fn new(inner: MemoryBus) -> Self {
        HookedBus {
            inner,
            after_last_id: Mutex::new(None),
            failing_reads: AtomicUsize::new(0),
        }
    }

    /// Publishes this entry once, right after the next `last_id` answer.
    pub(crate) fn publish_after_last_id(
        self,
        stream: &str,
        payload: Vec<u8>,
        headers: Headers,
    ) -> Self {
        *self.after_last_id.lock().expect("hook lock") =
            Some((stream.to_owned(), payload, headers));
        self
    }

    /// Fails the next `n` `read_after` calls.
    pub(crate) fn failing_reads(self, n: usize) -> Self {
        self.failing_reads.store(n, Ordering::SeqCst);
        self
    }
}

impl StreamBus for HookedBus {
    fn options(&self) -> &BusOptions {
        self.inner.options()
    }
    fn ping(&self) -> BusFuture<'_, ()> {
        self.inner.ping()
    }
    fn publish<'a>(
        &'a self,
        stream: &'a str,
        payload: &'a [u8],
        headers: &'a Headers,
    ) -> BusFuture<'a, MessageId> {
        self.inner.publish(stream, payload, headers)
    }
    fn ensure_group<'a>(&'a self, stream: &'a str, group: &'a str) -> BusFuture<'a, ()> {
        self.inner.ensure_group(stream, group)
    }
    fn consume<'a>(
        &'a self,
        stream: &'a str,
        group: &'a str,
        consumer: &'a str,
        max: usize,
        block: Duration,
    ) -> BusFuture<'a, Vec<Delivery>> {
        self.inner.consume(stream, group, consumer, max, block)
    }
    fn ack<'a>(&'a self, stream: &'a str, group: &'a str, id: MessageId) -> BusFuture<'a, bool> {
        self.inner.ack(stream, group, id)
    }
    fn reclaim<'a>(
        &'a self,
        stream: &'a str,
        group: &'a str,
        consumer: &'a str,
        min_idle: Duration,
        max: usize,
    ) -> BusFuture<'a, Vec<Delivery>> {
        self.inner.reclaim(stream, group, consumer, min_idle, max)
    }
    fn group_stats<'a>(&'a self, stream: &'a str, group: &'a str) -> BusFuture<'a, GroupStats> {
        self.inner.group_stats(stream, group)
    }
    fn stream_len<'a>(&'a self, stream: &'a str) -> BusFuture<'a, u64> {
        self.inner.stream_len(stream)
    }
    fn range<'a>(
        &'a self,
        stream: &'a str,
        after: Option<MessageId>,
        count: usize,
    ) -> BusFuture<'a, Vec<Message>> {
        self.inner.range(stream, after, count)
    }
    fn read_after<'a>(
        &'a self,
        stream: &'a str,
        after: MessageId,
        max: usize,
        block: Duration,
    ) -> BusFuture<'a, Vec<Message>> {
        let fail = self
            .failing_reads
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if fail {
            return Box::pin(async {
                Err(BusError::Unavailable("injected read failure".to_owned()))
            });
        }
        self.inner.read_after(stream, after, max, block)
    }
    fn last_id<'a>(&'a self, stream: &'a str) -> BusFuture<'a, Option<MessageId>> {
        Box::pin(async move {
            let last = self.inner.last_id(stream).await?;
            let hook = self.after_last_id.lock().expect("hook lock").take();
            if let Some((stream, payload, headers)) = hook {
                self.inner.publish(&stream, &payload, &headers).await?;
            }
            Ok(last)
        })
    }
    fn delete_stream<'a>(&'a self, stream: &'a str) -> BusFuture<'a, bool> {
        self.inner.delete_stream(stream)
    }
}

impl KvStore for HookedBus {
    fn set_with_ttl<'a>(
        &'a self,
        key: &'a str,
        value: &'a [u8],
        ttl: Duration,
    ) -> BusFuture<'a, ()> {
        self.inner.set_with_ttl(key, value, ttl)
    }
    fn get<'a>(&'a self, key: &'a str) -> BusFuture<'a, Option<Vec<u8>>> {
        self.inner.get(key)
    }
    fn delete<'a>(&'a self, key: &'a str) -> BusFuture<'a, bool> {
        self.inner.delete(key)
    }
    fn scan_prefix<'a>(&'a self, prefix: &'a str) -> BusFuture<'a, Vec<(String, Vec<u8>)>> {
        self.inner.scan_prefix(prefix)
    }
    fn claim_affinity<'a>(
        &'a self,
        key: &'a str,
        owner: &'a str,
        ttl: Duration,
    ) -> BusFuture<'a, bool> {
        self.inner.claim_affinity(key, owner, ttl)
    }
    fn renew_affinity<'a>(
        &'a self,
        key: &'a str,
        owner: &'a str,
        ttl: Duration,
    ) -> BusFuture<'a, bool> {
        self.inner.renew_affinity(key, owner, ttl)
    }
    fn release_affinity<'a>(&'a self, key: &'a str, owner: &'a str) -> BusFuture<'a, bool> {
        self.inner.release_affinity(key, owner)
    }
}
