//! [`tail`]: every entry of one bus stream as an async [`Stream`], read without a consumer
//! group (so any number of readers each see every entry and leave nothing behind in Redis),
//! with bus errors retried after a doubling backoff. The one tail loop of the workspace: the
//! segment client's results dispatcher, the api's results and events readers and the
//! transcoder's index reader are all built on it.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use futures_util::Stream;
use livefarm_bus::{JobBus, Message, MessageId};

/// Where a [`tail`] starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TailFrom {
    /// The stream's first entry still kept.
    Start,
    /// Only entries added after the tail started: it first takes the stream's last id, so an
    /// entry added between then and the first read is not missed.
    End,
    /// Entries with ids greater than this one.
    After(MessageId),
}

/// How a [`tail`] reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TailOptions {
    /// Entries read per call.
    pub batch: usize,
    /// Longest one read blocks waiting for new entries.
    pub block: Duration,
}

impl Default for TailOptions {
    fn default() -> Self {
        TailOptions {
            batch: 100,
            block: Duration::from_millis(500),
        }
    }
}

/// Every entry of `stream` from `from` on, oldest first, with the default [`TailOptions`].
/// The stream never ends: drop it (or stop polling it) to stop.
pub fn tail(
    bus: Arc<dyn JobBus>,
    stream: impl Into<String>,
    from: TailFrom,
) -> impl Stream<Item = Message> + Send + 'static {
    Tail::new(bus, stream, from, TailOptions::default()).into_stream()
}

/// A tail being read; [`tail`] is the usual way in. [`Tail::start`] lets a reader learn that
/// its starting point is fixed before it acts (the segment client enqueues nothing before).
pub struct Tail {
    bus: Arc<dyn JobBus>,
    stream: String,
    from: TailFrom,
    cursor: Option<MessageId>,
    options: TailOptions,
    pending: VecDeque<Message>,
    backoff: Backoff,
}

impl Tail {
    /// A tail of `stream` from `from`; nothing is read until it is polled.
    pub fn new(
        bus: Arc<dyn JobBus>,
        stream: impl Into<String>,
        from: TailFrom,
        options: TailOptions,
    ) -> Tail {
        Tail {
            bus,
            stream: stream.into(),
            from,
            cursor: None,
            options,
            pending: VecDeque::new(),
            backoff: Backoff::default(),
        }
    }

    /// Fixes the starting point (for [`TailFrom::End`]: asks the bus for the stream's last
    /// id, retrying until it answers) and returns the cursor.
    pub async fn start(&mut self) -> MessageId {
        loop {
            if let Some(cursor) = self.cursor {
                return cursor;
            }
            let cursor = match self.from {
                TailFrom::Start => MessageId::new(0, 0),
                TailFrom::After(id) => id,
                TailFrom::End => match self.bus.last_id(&self.stream).await {
                    Ok(last) => last.unwrap_or_default(),
                    Err(error) => {
                        tracing::warn!(%error, stream = %self.stream, "cannot find where the stream ends; retrying");
                        self.backoff.wait().await;
                        continue;
                    }
                },
            };
            self.backoff = Backoff::default();
            self.cursor = Some(cursor);
        }
    }

    /// The next entry, waiting as long as it takes.
    pub async fn next(&mut self) -> Message {
        loop {
            if let Some(message) = self.pending.pop_front() {
                self.cursor = Some(message.id);
                return message;
            }
            let cursor = self.start().await;
            let read = self
                .bus
                .read_after(
                    &self.stream,
                    cursor,
                    self.options.batch.max(1),
                    self.options.block,
                )
                .await;
            match read {
                Ok(messages) => {
                    self.backoff = Backoff::default();
                    self.pending.extend(messages);
                }
                Err(error) => {
                    tracing::warn!(%error, stream = %self.stream, "cannot read the stream; retrying");
                    self.backoff.wait().await;
                }
            }
        }
    }

    /// The entries as an endless [`Stream`].
    pub fn into_stream(self) -> impl Stream<Item = Message> + Send + 'static {
        futures_util::stream::unfold(self, |mut tail| async move {
            let message = tail.next().await;
            Some((message, tail))
        })
    }
}

/// Doubling delays between retries, from 100 ms up to 5 s.
struct Backoff(Duration);

impl Default for Backoff {
    fn default() -> Self {
        Self(Duration::from_millis(100))
    }
}

impl Backoff {
    async fn wait(&mut self) {
        let delay = self.0;
        self.0 = (self.0 * 2).min(Duration::from_secs(5));
        tokio::time::sleep(delay).await;
    }
}

#[cfg(test)]
mod tests {
    use futures_util::StreamExt;
    use livefarm_bus::{BusOptions, Headers, MemoryBus};

    use super::*;
    use crate::testbus::HookedBus;

    async fn publish(bus: &dyn JobBus, payload: &str) -> MessageId {
        bus.publish("s", payload.as_bytes(), &Headers::new())
            .await
            .expect("publish")
    }

    async fn take(stream: impl Stream<Item = Message>, n: usize) -> Vec<String> {
        let read = stream
            .take(n)
            .map(|m| String::from_utf8(m.payload).expect("utf-8"))
            .collect::<Vec<_>>();
        tokio::time::timeout(Duration::from_secs(5), read)
            .await
            .expect("entries within 5 s")
    }

    fn options() -> TailOptions {
        TailOptions {
            batch: 2,
            block: Duration::from_millis(50),
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn reads_from_the_start_after_an_id_or_from_the_end() {
        let bus: Arc<dyn JobBus> = Arc::new(MemoryBus::new(BusOptions::default()));
        publish(bus.as_ref(), "a").await;
        let b = publish(bus.as_ref(), "b").await;
        publish(bus.as_ref(), "c").await;
        let from_start = Tail::new(Arc::clone(&bus), "s", TailFrom::Start, options());
        assert_eq!(take(from_start.into_stream(), 3).await, ["a", "b", "c"]);
        let after_b = tail(Arc::clone(&bus), "s", TailFrom::After(b));
        assert_eq!(take(after_b, 1).await, ["c"]);

        let mut from_end = Tail::new(Arc::clone(&bus), "s", TailFrom::End, options());
        from_end.start().await;
        // entries added after the start point are read, in order, across batches
        for payload in ["d", "e", "f", "g", "h"] {
            publish(bus.as_ref(), payload).await;
        }
        assert_eq!(
            take(from_end.into_stream(), 5).await,
            ["d", "e", "f", "g", "h"]
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_stream_that_does_not_exist_yet_is_waited_for() {
        let bus: Arc<dyn JobBus> = Arc::new(MemoryBus::new(BusOptions::default()));
        let mut from_end = Tail::new(Arc::clone(&bus), "s", TailFrom::End, options());
        // the end of a stream that never had an entry is its start
        assert_eq!(from_end.start().await, MessageId::new(0, 0));
        let reader = tokio::spawn(take(from_end.into_stream(), 1));
        // the reader is blocked on the missing stream when (or before) this arrives
        publish(bus.as_ref(), "first").await;
        assert_eq!(reader.await.expect("no panic"), ["first"]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn read_errors_are_retried_without_losing_entries() {
        let inner = MemoryBus::new(BusOptions::default());
        for payload in ["a", "b", "c"] {
            publish(&inner, payload).await;
        }
        let bus: Arc<dyn JobBus> = Arc::new(HookedBus::new(inner).failing_reads(3));
        let read = take(
            Tail::new(bus, "s", TailFrom::Start, options()).into_stream(),
            3,
        );
        assert_eq!(read.await, ["a", "b", "c"]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_entry_added_right_after_the_start_point_is_read() {
        let inner = MemoryBus::new(BusOptions::default());
        publish(&inner, "old").await;
        let bus: Arc<dyn JobBus> = Arc::new(HookedBus::new(inner).publish_after_last_id(
            "s",
            b"racer".to_vec(),
            Headers::new(),
        ));
        assert_eq!(take(tail(bus, "s", TailFrom::End), 1).await, ["racer"]);
    }
}
