//! One conformance suite, run against the in-memory bus and a private `redis-server`.
//!
//! The Redis half fails (never skips) when `redis-server` is missing.

use std::sync::Arc;
use std::time::Duration;

use livefarm_bus::server::{RedisServer, RedisServerConfig, RedisServerTls};
use livefarm_bus::{
    BusFuture, BusOptions, Delivery, GroupStats, Headers, JobBus, KvStore, MemoryBus, Message,
    MessageId, StreamBus,
};

const MAXLEN: u64 = 50;
const MAX_DELIVERIES: u64 = 3;

fn options() -> BusOptions {
    BusOptions {
        maxlen: Some(MAXLEN),
        max_deliveries: MAX_DELIVERIES,
    }
}

mod suite {
    use std::collections::BTreeSet;
    use std::sync::Arc;
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    use livefarm_bus::{
        dlq_stream, GroupStats, Headers, JobBus, MessageId, DLQ_DELIVERY_COUNT_HEADER,
        DLQ_GROUP_HEADER, DLQ_ORIGINAL_ID_HEADER, DLQ_REASON_HEADER,
    };

    use super::{MAXLEN, MAX_DELIVERIES};

    const NOW: Duration = Duration::ZERO;

    fn headers(pairs: &[(&str, &str)]) -> Headers {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    async fn publish_n(bus: &dyn JobBus, stream: &str, n: usize) -> Vec<MessageId> {
        let mut ids = Vec::with_capacity(n);
        for i in 0..n {
            let payload = format!("job-{i}");
            ids.push(
                bus.publish(stream, payload.as_bytes(), &Headers::new())
                    .await
                    .expect("publish"),
            );
        }
        ids
    }

    pub async fn publish_consume_ack(bus: Arc<dyn JobBus>) {
        let h = headers(&[("stream-id", "abc"), ("seq", "7")]);
        let a = bus.publish("jobs", b"first", &h).await.expect("publish");
        let b = bus
            .publish("jobs", b"second\0bin\xff", &Headers::new())
            .await
            .expect("publish");
        let c = bus.publish("jobs", b"", &h).await.expect("publish");

        let got = bus
            .consume("jobs", "g", "w1", 10, NOW)
            .await
            .expect("consume");
        assert_eq!(got.iter().map(|d| d.id).collect::<Vec<_>>(), vec![a, b, c]);
        assert_eq!(got[0].payload, b"first");
        assert_eq!(got[0].headers, h);
        assert_eq!(got[1].payload, b"second\0bin\xff");
        assert!(got[1].headers.is_empty());
        assert_eq!(got[2].payload, b"");
        assert!(got.iter().all(|d| d.delivery_count == 1));

        assert_eq!(bus.pending_count("jobs", "g").await.expect("pending"), 3);
        assert!(bus.ack("jobs", "g", a).await.expect("ack"));
        assert!(
            !bus.ack("jobs", "g", a).await.expect("second ack"),
            "double ack counted"
        );
        assert_eq!(bus.pending_count("jobs", "g").await.expect("pending"), 2);

        // Pending messages are not handed out again as new ones.
        let again = bus
            .consume("jobs", "g", "w2", 10, NOW)
            .await
            .expect("consume");
        assert!(again.is_empty(), "redelivered without reclaim: {again:?}");

        assert!(bus.ack("jobs", "g", b).await.expect("ack"));
        assert!(bus.ack("jobs", "g", c).await.expect("ack"));
        let stats = bus.group_stats("jobs", "g").await.expect("stats");
        assert_eq!(stats, GroupStats { pending: 0, lag: 0 });
        // Acked messages stay in the stream (only trimming removes them).
        assert_eq!(bus.stream_len("jobs").await.expect("len"), 3);
    }

    pub async fn consume_respects_max(bus: Arc<dyn JobBus>) {
        let ids = publish_n(bus.as_ref(), "jobs", 5).await;
        let first = bus
            .consume("jobs", "g", "w", 2, NOW)
            .await
            .expect("consume");
        let rest = bus
            .consume("jobs", "g", "w", 10, NOW)
            .await
            .expect("consume");
        assert_eq!(first.len(), 2);
        let all: Vec<_> = first.iter().chain(&rest).map(|d| d.id).collect();
        assert_eq!(all, ids);
    }

    pub async fn ids_are_monotonic_ms_seq(bus: Arc<dyn JobBus>) {
        let ids = publish_n(bus.as_ref(), "jobs", 300).await;
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "ids not increasing");
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("clock after epoch")
            .as_millis() as u64;
        for id in &ids {
            assert_eq!(id.to_string().parse::<MessageId>().expect("parse"), *id);
            assert!(
                id.ms <= now_ms && now_ms - id.ms < 60_000,
                "{id} is not a recent ms time"
            );
        }
    }

    pub async fn unacked_job_is_reclaimed_by_another_consumer(bus: Arc<dyn JobBus>) {
        let id = bus
            .publish("jobs", b"work", &Headers::new())
            .await
            .expect("publish");
        let got = bus
            .consume("jobs", "g", "dies", 1, NOW)
            .await
            .expect("consume");
        assert_eq!(got[0].id, id);

        // Not idle long enough yet.
        let early = bus
            .reclaim("jobs", "g", "rescuer", Duration::from_secs(60), 10)
            .await
            .expect("reclaim");
        assert!(early.is_empty(), "reclaimed a busy job: {early:?}");

        tokio::time::sleep(Duration::from_millis(300)).await;
        let rescued = bus
            .reclaim("jobs", "g", "rescuer", Duration::from_millis(200), 10)
            .await
            .expect("reclaim");
        assert_eq!(rescued.len(), 1);
        assert_eq!(rescued[0].id, id);
        assert_eq!(rescued[0].payload, b"work");
        assert_eq!(rescued[0].delivery_count, 2);

        // The rescuer owns it now, so it is not idle any more.
        let again = bus
            .reclaim("jobs", "g", "third", Duration::from_secs(60), 10)
            .await
            .expect("reclaim");
        assert!(again.is_empty());

        assert!(bus.ack("jobs", "g", id).await.expect("ack"));
        let after = bus
            .reclaim("jobs", "g", "third", NOW, 10)
            .await
            .expect("reclaim");
        assert!(after.is_empty(), "acked job reclaimed: {after:?}");
    }

    pub async fn delivery_counts_increment(bus: Arc<dyn JobBus>) {
        publish_n(bus.as_ref(), "jobs", 1).await;
        let first = bus
            .consume("jobs", "g", "a", 1, NOW)
            .await
            .expect("consume");
        assert_eq!(first[0].delivery_count, 1);
        for expected in 2..=MAX_DELIVERIES {
            let got = bus
                .reclaim("jobs", "g", "b", NOW, 10)
                .await
                .expect("reclaim");
            assert_eq!(got.len(), 1);
            assert_eq!(got[0].id, first[0].id);
            assert_eq!(got[0].delivery_count, expected);
        }
    }

    pub async fn reclaim_respects_max(bus: Arc<dyn JobBus>) {
        let ids = publish_n(bus.as_ref(), "jobs", 5).await;
        bus.consume("jobs", "g", "a", 10, NOW)
            .await
            .expect("consume");
        let first = bus
            .reclaim("jobs", "g", "b", NOW, 2)
            .await
            .expect("reclaim");
        assert_eq!(first.iter().map(|d| d.id).collect::<Vec<_>>(), ids[..2]);
        // The oldest pending come first; the two just claimed are not idle for 60 s.
        let rest = bus
            .reclaim("jobs", "g", "c", Duration::from_secs(60), 10)
            .await
            .expect("reclaim");
        assert!(rest.is_empty());
    }

    pub async fn poison_job_goes_to_dlq_without_blocking_others(bus: Arc<dyn JobBus>) {
        let h = headers(&[("stream-id", "s1"), ("seq", "42")]);
        let poison = bus.publish("jobs", b"poison", &h).await.expect("publish");
        let good = publish_n(bus.as_ref(), "jobs", 2).await;

        let first = bus
            .consume("jobs", "g", "w", 1, NOW)
            .await
            .expect("consume");
        assert_eq!(first[0].id, poison);
        let mut seen = 1;
        let mut done = Vec::new();
        // The worker keeps failing the poison job and finishing every other job.
        for _ in 0..10 {
            for d in bus
                .consume("jobs", "g", "w", 1, NOW)
                .await
                .expect("consume")
            {
                assert_ne!(d.id, poison);
                assert!(bus.ack("jobs", "g", d.id).await.expect("ack"));
                done.push(d.id);
            }
            let retried = bus
                .reclaim("jobs", "g", "w", NOW, 10)
                .await
                .expect("reclaim");
            if retried.is_empty() {
                break;
            }
            assert_eq!(retried.len(), 1);
            assert_eq!(retried[0].id, poison);
            seen += 1;
            assert_eq!(retried[0].delivery_count, seen);
        }
        assert_eq!(seen, MAX_DELIVERIES, "poison job delivered {seen} times");
        assert_eq!(done, good, "other jobs blocked");
        assert_eq!(bus.pending_count("jobs", "g").await.expect("pending"), 0);

        let dead = bus
            .range(&dlq_stream("jobs"), None, 10)
            .await
            .expect("range");
        assert_eq!(dead.len(), 1);
        let letter = &dead[0];
        assert_eq!(letter.payload, b"poison");
        assert_eq!(
            letter.headers.get("stream-id").map(String::as_str),
            Some("s1")
        );
        assert_eq!(letter.headers.get("seq").map(String::as_str), Some("42"));
        assert_eq!(
            letter.headers.get(DLQ_ORIGINAL_ID_HEADER),
            Some(&poison.to_string())
        );
        assert_eq!(
            letter.headers.get(DLQ_GROUP_HEADER).map(String::as_str),
            Some("g")
        );
        assert_eq!(
            letter.headers.get(DLQ_DELIVERY_COUNT_HEADER),
            Some(&(MAX_DELIVERIES + 1).to_string())
        );
        let reason = letter.headers.get(DLQ_REASON_HEADER).expect("reason");
        assert!(reason.contains("max_deliveries"), "{reason}");

        // Nothing left to retry, and the dead-letter stream is readable as a stream.
        assert!(bus
            .reclaim("jobs", "g", "w", NOW, 10)
            .await
            .expect("reclaim")
            .is_empty());
        let from_dlq = bus
            .consume(&dlq_stream("jobs"), "ops", "human", 10, NOW)
            .await
            .expect("consume dlq");
        assert_eq!(from_dlq.len(), 1);
        assert_eq!(from_dlq[0].payload, b"poison");
    }

    pub async fn streams_are_trimmed_to_maxlen(bus: Arc<dyn JobBus>) {
        let ids = publish_n(bus.as_ref(), "jobs", 400).await;
        let len = bus.stream_len("jobs").await.expect("len");
        // MAXLEN ~ trims whole nodes of up to 100 entries: at least MAXLEN are kept and fewer
        // than a node beyond it.
        assert!((MAXLEN..MAXLEN + 100).contains(&len), "length {len}");
        let kept = bus.range("jobs", None, 1000).await.expect("range");
        assert_eq!(kept.len() as u64, len);
        let kept_ids: Vec<_> = kept.iter().map(|m| m.id).collect();
        assert_eq!(
            kept_ids,
            ids[ids.len() - kept.len()..],
            "not the newest entries"
        );
        assert!(!kept_ids.contains(&ids[0]));

        let fresh = bus
            .consume("jobs", "late", "w", 1000, NOW)
            .await
            .expect("consume");
        assert_eq!(fresh.len() as u64, len);
        assert_eq!(fresh.last().map(|d| d.id), ids.last().copied());
    }

    pub async fn each_group_sees_every_message(bus: Arc<dyn JobBus>) {
        bus.ensure_group("jobs", "a").await.expect("group");
        bus.ensure_group("jobs", "a").await.expect("group again");
        let ids = publish_n(bus.as_ref(), "jobs", 5).await;
        let a = bus
            .consume("jobs", "a", "w", 10, NOW)
            .await
            .expect("consume");
        for d in &a {
            assert!(bus.ack("jobs", "a", d.id).await.expect("ack"));
        }
        // Group b is created later and still starts at the beginning.
        let b = bus
            .consume("jobs", "b", "w", 10, NOW)
            .await
            .expect("consume");
        assert_eq!(a.iter().map(|d| d.id).collect::<Vec<_>>(), ids);
        assert_eq!(b.iter().map(|d| d.id).collect::<Vec<_>>(), ids);
        assert_eq!(bus.pending_count("jobs", "a").await.expect("pending"), 0);
        assert_eq!(bus.pending_count("jobs", "b").await.expect("pending"), 5);
    }

    pub async fn group_stats_report_pending_and_lag(bus: Arc<dyn JobBus>) {
        assert_eq!(
            bus.group_stats("nothing", "g").await.expect("stats"),
            GroupStats::default()
        );
        publish_n(bus.as_ref(), "jobs", 10).await;
        let stats = bus.group_stats("jobs", "g").await.expect("stats");
        assert_eq!(
            stats,
            GroupStats {
                pending: 0,
                lag: 10
            }
        );
        let got = bus
            .consume("jobs", "g", "w", 4, NOW)
            .await
            .expect("consume");
        assert_eq!(bus.lag("jobs", "g").await.expect("lag"), 6);
        assert_eq!(bus.pending_count("jobs", "g").await.expect("pending"), 4);
        for d in &got[..2] {
            bus.ack("jobs", "g", d.id).await.expect("ack");
        }
        let stats = bus.group_stats("jobs", "g").await.expect("stats");
        assert_eq!(stats, GroupStats { pending: 2, lag: 6 });
        publish_n(bus.as_ref(), "jobs", 3).await;
        assert_eq!(bus.lag("jobs", "g").await.expect("lag"), 9);
    }

    pub async fn blocking_consume_wakes_on_publish(bus: Arc<dyn JobBus>) {
        let empty = bus
            .consume("jobs", "g", "w", 1, Duration::from_millis(200))
            .await
            .expect("consume");
        assert!(empty.is_empty());

        let waiter = {
            let bus = Arc::clone(&bus);
            tokio::spawn(async move {
                bus.consume("jobs", "g", "w", 1, Duration::from_secs(20))
                    .await
                    .expect("consume")
            })
        };
        tokio::time::sleep(Duration::from_millis(300)).await;
        // The shared connection stays usable while a consumer blocks.
        assert_eq!(bus.stream_len("jobs").await.expect("len"), 0);
        let id = bus
            .publish("jobs", b"wake", &Headers::new())
            .await
            .expect("publish");
        let got = waiter.await.expect("waiter task");
        assert_eq!(got.len(), 1, "woke without the message");
        assert_eq!(got[0].id, id);
    }

    pub async fn many_blocked_consumers_share_the_work(bus: Arc<dyn JobBus>) {
        let mut waiters = Vec::new();
        for i in 0..8 {
            let bus = Arc::clone(&bus);
            waiters.push(tokio::spawn(async move {
                let consumer = format!("w{i}");
                let mut got = Vec::new();
                loop {
                    let batch = bus
                        .consume("jobs", "g", &consumer, 1, Duration::from_millis(500))
                        .await
                        .expect("consume");
                    if batch.is_empty() {
                        return got;
                    }
                    for d in batch {
                        bus.ack("jobs", "g", d.id).await.expect("ack");
                        got.push(d.id);
                    }
                }
            }));
        }
        let ids = publish_n(bus.as_ref(), "jobs", 40).await;
        let mut all = BTreeSet::new();
        for waiter in waiters {
            for id in waiter.await.expect("waiter task") {
                assert!(all.insert(id), "{id} delivered twice");
            }
        }
        assert_eq!(all.into_iter().collect::<Vec<_>>(), ids);
    }

    pub async fn ack_and_reclaim_tolerate_unknowns(bus: Arc<dyn JobBus>) {
        let id = MessageId::new(1, 0);
        assert!(!bus.ack("missing", "g", id).await.expect("ack"));
        assert!(bus
            .reclaim("missing", "g", "w", NOW, 10)
            .await
            .expect("reclaim")
            .is_empty());
        assert_eq!(bus.stream_len("missing").await.expect("len"), 0);
        assert!(bus
            .range("missing", None, 10)
            .await
            .expect("range")
            .is_empty());
        publish_n(bus.as_ref(), "jobs", 1).await;
        assert!(bus.delete_stream("jobs").await.expect("delete"));
        assert!(!bus.delete_stream("jobs").await.expect("delete again"));
        assert_eq!(bus.stream_len("jobs").await.expect("len"), 0);
    }

    pub async fn publish_batch_keeps_order_and_content(bus: Arc<dyn JobBus>) {
        let h = headers(&[("stream-id", "abc"), ("seq", "7")]);
        let empty = Headers::new();
        assert!(bus
            .publish_batch("jobs", &[])
            .await
            .expect("empty batch")
            .is_empty());
        let before = bus.publish("jobs", b"single", &h).await.expect("publish");
        let batch: Vec<(&[u8], &Headers)> = vec![
            (b"one", &h),
            (b"two\0bin\xff", &empty),
            (b"", &h),
            (b"four", &empty),
        ];
        let ids = bus.publish_batch("jobs", &batch).await.expect("batch");
        let after = bus.publish("jobs", b"last", &h).await.expect("publish");
        assert_eq!(ids.len(), batch.len());
        let mut all = vec![before];
        all.extend(&ids);
        all.push(after);
        assert!(
            all.windows(2).all(|w| w[0] < w[1]),
            "ids out of order: {all:?}"
        );

        let stored = bus.range("jobs", Some(before), 10).await.expect("range");
        assert_eq!(
            stored.iter().map(|m| m.id).collect::<Vec<_>>(),
            all[1..].to_vec()
        );
        let got = bus
            .consume("jobs", "g", "w", 10, NOW)
            .await
            .expect("consume");
        assert_eq!(got.len(), 6);
        for (delivery, (payload, headers)) in got[1..5].iter().zip(&batch) {
            assert_eq!(delivery.payload, *payload);
            assert_eq!(&delivery.headers, *headers);
            assert_eq!(delivery.delivery_count, 1);
        }
    }

    pub async fn publish_batch_wakes_consumers_and_trims(bus: Arc<dyn JobBus>) {
        let waiter = {
            let bus = Arc::clone(&bus);
            tokio::spawn(async move {
                bus.consume("jobs", "g", "w", 1000, Duration::from_secs(5))
                    .await
                    .expect("blocking consume")
            })
        };
        // Let the consumer block first.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let payloads: Vec<String> = (0..400).map(|i| format!("job-{i}")).collect();
        let empty = Headers::new();
        let batch: Vec<(&[u8], &Headers)> =
            payloads.iter().map(|p| (p.as_bytes(), &empty)).collect();
        let ids = bus.publish_batch("jobs", &batch).await.expect("batch");
        let woke = waiter.await.expect("waiter task");
        assert!(!woke.is_empty(), "blocked consumer not woken by a batch");
        // Trimming may already have dropped the first ones; whatever it got is from the
        // batch, in order.
        let first = ids
            .iter()
            .position(|id| *id == woke[0].id)
            .expect("woken with a message of the batch");
        for (offset, delivery) in woke.iter().enumerate() {
            assert_eq!(Some(&delivery.id), ids.get(first + offset));
            assert_eq!(delivery.payload, payloads[first + offset].as_bytes());
        }

        // Every message of the batch is trimmed like a single publish.
        let len = bus.stream_len("jobs").await.expect("len");
        assert!((MAXLEN..MAXLEN + 100).contains(&len), "length {len}");
        let kept = bus.range("jobs", None, 1000).await.expect("range");
        let kept_ids: Vec<_> = kept.iter().map(|m| m.id).collect();
        assert_eq!(kept_ids, ids[ids.len() - kept.len()..]);
    }

    pub async fn ack_batch_counts_only_pending(bus: Arc<dyn JobBus>) {
        let ids = publish_n(bus.as_ref(), "jobs", 6).await;
        assert_eq!(
            bus.ack_batch("jobs", "g", &ids)
                .await
                .expect("ack no group"),
            0
        );
        let got = bus
            .consume("jobs", "g", "w", 10, NOW)
            .await
            .expect("consume");
        assert_eq!(got.len(), 6);
        assert_eq!(bus.ack_batch("jobs", "g", &[]).await.expect("empty"), 0);

        // A repeated id and one that was never published count nothing extra.
        let unknown = MessageId::new(1, 0);
        let first = [ids[0], ids[1], ids[1], unknown, ids[4]];
        assert_eq!(bus.ack_batch("jobs", "g", &first).await.expect("ack"), 3);
        assert_eq!(bus.pending_count("jobs", "g").await.expect("pending"), 3);
        // Already acknowledged ones count nothing the second time.
        assert_eq!(bus.ack_batch("jobs", "g", &first).await.expect("ack"), 0);
        assert!(!bus.ack("jobs", "g", ids[0]).await.expect("single ack"));

        // Acked jobs are never reclaimed; the rest are, and can be acked in one batch.
        let reclaimed = bus
            .reclaim("jobs", "g", "w2", NOW, 10)
            .await
            .expect("reclaim");
        let reclaimed_ids: BTreeSet<_> = reclaimed.iter().map(|d| d.id).collect();
        assert_eq!(reclaimed_ids, BTreeSet::from([ids[2], ids[3], ids[5]]));
        let rest: Vec<_> = reclaimed_ids.into_iter().collect();
        assert_eq!(bus.ack_batch("jobs", "g", &rest).await.expect("ack"), 3);
        let stats = bus.group_stats("jobs", "g").await.expect("stats");
        assert_eq!(stats, GroupStats { pending: 0, lag: 0 });
        assert_eq!(
            bus.ack_batch("missing", "g", &rest)
                .await
                .expect("ack missing"),
            0
        );
    }

    pub async fn ack_and_consume_acks_then_reads(bus: Arc<dyn JobBus>) {
        let ids = publish_n(bus.as_ref(), "jobs", 5).await;
        // Nothing to acknowledge yet; the group is created on the way.
        let (acked, first) = bus
            .ack_and_consume("jobs", "g", "w", &[], 3, NOW)
            .await
            .expect("first read");
        assert_eq!(acked, 0);
        let first_ids: Vec<_> = first.iter().map(|d| d.id).collect();
        assert_eq!(first_ids, ids[..3]);
        assert_eq!(first[1].payload, b"job-1");
        assert!(first.iter().all(|d| d.delivery_count == 1));

        // The acknowledgement lands before the read; an unknown id counts nothing.
        let mut acks = first_ids.clone();
        acks.push(MessageId::new(1, 0));
        let (acked, second) = bus
            .ack_and_consume("jobs", "g", "w", &acks, 10, NOW)
            .await
            .expect("second read");
        assert_eq!(acked, 3);
        let second_ids: Vec<_> = second.iter().map(|d| d.id).collect();
        assert_eq!(second_ids, ids[3..]);
        assert_eq!(bus.pending_count("jobs", "g").await.expect("pending"), 2);

        // Acknowledging the last read with nothing left to read.
        let (acked, third) = bus
            .ack_and_consume("jobs", "g", "w", &second_ids, 10, Duration::from_millis(20))
            .await
            .expect("last read");
        assert_eq!((acked, third.len()), (2, 0));
        let stats = bus.group_stats("jobs", "g").await.expect("stats");
        assert_eq!(stats, GroupStats { pending: 0, lag: 0 });
    }

    pub async fn range_reads_after_an_id(bus: Arc<dyn JobBus>) {
        let ids = publish_n(bus.as_ref(), "jobs", 5).await;
        let page = bus.range("jobs", Some(ids[1]), 2).await.expect("range");
        assert_eq!(page.iter().map(|m| m.id).collect::<Vec<_>>(), ids[2..4]);
        assert_eq!(page[0].payload, b"job-2");
    }

    const START: MessageId = MessageId::new(0, 0);

    fn ids_of(messages: &[livefarm_bus::Message]) -> Vec<MessageId> {
        messages.iter().map(|m| m.id).collect()
    }

    pub async fn read_after_reads_entries_after_an_id(bus: Arc<dyn JobBus>) {
        let h = headers(&[("stream-id", "abc")]);
        let first = bus.publish("jobs", b"first", &h).await.expect("publish");
        let mut ids = vec![first];
        ids.extend(publish_n(bus.as_ref(), "jobs", 4).await);

        let all = bus
            .read_after("jobs", START, 100, NOW)
            .await
            .expect("read from the start");
        assert_eq!(ids_of(&all), ids);
        assert_eq!(all[0].payload, b"first");
        assert_eq!(all[0].headers, h);
        assert_eq!(all[1].payload, b"job-0");
        assert!(all[1].headers.is_empty());

        let page = bus
            .read_after("jobs", ids[1], 2, NOW)
            .await
            .expect("read after an id");
        assert_eq!(ids_of(&page), ids[2..4]);
        let rest = bus
            .read_after("jobs", page[1].id, 100, NOW)
            .await
            .expect("read the rest");
        assert_eq!(ids_of(&rest), ids[4..]);
        let none = bus
            .read_after("jobs", ids[4], 100, NOW)
            .await
            .expect("read past the end");
        assert!(none.is_empty(), "{none:?}");

        // Reading took nothing away: a consumer group still gets every entry.
        let delivered = bus
            .consume("jobs", "g", "w", 100, NOW)
            .await
            .expect("consume");
        assert_eq!(delivered.len(), ids.len());
    }

    pub async fn read_after_skips_trimmed_entries(bus: Arc<dyn JobBus>) {
        let ids = publish_n(bus.as_ref(), "jobs", 400).await;
        let kept = bus.range("jobs", None, 1000).await.expect("range");
        assert!((kept.len() as u64) < 400, "nothing trimmed");
        // A cursor that fell behind trimming goes on from the oldest entry left.
        let got = bus
            .read_after("jobs", ids[0], 1000, NOW)
            .await
            .expect("read after a trimmed id");
        assert_eq!(ids_of(&got), ids_of(&kept));
        assert_eq!(got.last().map(|m| m.id), ids.last().copied());
    }

    pub async fn read_after_on_a_missing_stream_is_empty_and_creates_nothing(bus: Arc<dyn JobBus>) {
        let none = bus
            .read_after("nothing", START, 10, NOW)
            .await
            .expect("read");
        assert!(none.is_empty());
        let started = std::time::Instant::now();
        let none = bus
            .read_after("nothing", START, 10, Duration::from_millis(300))
            .await
            .expect("blocking read");
        assert!(none.is_empty());
        assert!(
            started.elapsed() >= Duration::from_millis(250),
            "did not wait: {:?}",
            started.elapsed()
        );
        assert_eq!(bus.last_id("nothing").await.expect("last id"), None);
        assert!(
            !bus.delete_stream("nothing").await.expect("delete"),
            "reading created the stream"
        );
    }

    pub async fn read_after_times_out_empty(bus: Arc<dyn JobBus>) {
        let ids = publish_n(bus.as_ref(), "jobs", 3).await;
        let started = std::time::Instant::now();
        let none = bus
            .read_after("jobs", ids[2], 10, Duration::from_millis(300))
            .await
            .expect("blocking read");
        let waited = started.elapsed();
        assert!(none.is_empty(), "{none:?}");
        assert!(
            waited >= Duration::from_millis(250) && waited < Duration::from_secs(5),
            "waited {waited:?} for a 300 ms block"
        );
    }

    pub async fn blocking_read_after_wakes_on_publish(bus: Arc<dyn JobBus>) {
        // On a stream that does not exist yet, and on one that has entries.
        for existing in [0, 3] {
            let stream = format!("wake-{existing}");
            publish_n(bus.as_ref(), &stream, existing).await;
            let from = bus
                .last_id(&stream)
                .await
                .expect("last id")
                .unwrap_or(START);
            let reader = {
                let bus = Arc::clone(&bus);
                let stream = stream.clone();
                tokio::spawn(async move {
                    let started = std::time::Instant::now();
                    let got = bus
                        .read_after(&stream, from, 10, Duration::from_secs(20))
                        .await
                        .expect("blocking read");
                    (got, started.elapsed())
                })
            };
            tokio::time::sleep(Duration::from_millis(300)).await;
            // The bus stays usable while a reader blocks.
            assert_eq!(bus.stream_len(&stream).await.expect("len"), existing as u64);
            let id = bus
                .publish(&stream, b"wake", &Headers::new())
                .await
                .expect("publish");
            let (got, waited) = reader.await.expect("reader task");
            assert_eq!(ids_of(&got), vec![id], "{stream}");
            assert_eq!(got[0].payload, b"wake");
            assert!(waited < Duration::from_secs(10), "woke late: {waited:?}");
        }
    }

    pub async fn last_id_tracks_the_newest_entry(bus: Arc<dyn JobBus>) {
        assert_eq!(bus.last_id("jobs").await.expect("missing"), None);
        // A stream that exists with nothing ever added in it.
        bus.ensure_group("jobs", "g").await.expect("group");
        assert_eq!(bus.last_id("jobs").await.expect("empty"), None);

        let ids = publish_n(bus.as_ref(), "jobs", 3).await;
        assert_eq!(bus.last_id("jobs").await.expect("last id"), Some(ids[2]));
        // Reading from it gets only what is added afterwards.
        let from = ids[2];
        let later = bus
            .publish("jobs", b"later", &Headers::new())
            .await
            .expect("publish");
        let got = bus.read_after("jobs", from, 10, NOW).await.expect("read");
        assert_eq!(ids_of(&got), vec![later]);
        assert_eq!(bus.last_id("jobs").await.expect("last id"), Some(later));

        // Still the newest once older entries are trimmed.
        let ids = publish_n(bus.as_ref(), "jobs", 300).await;
        assert!(bus.stream_len("jobs").await.expect("len") < 300);
        assert_eq!(
            bus.last_id("jobs").await.expect("last id"),
            ids.last().copied()
        );

        assert!(bus.delete_stream("jobs").await.expect("delete"));
        assert_eq!(bus.last_id("jobs").await.expect("deleted"), None);
    }

    pub async fn independent_readers_each_see_every_entry(bus: Arc<dyn JobBus>) {
        const N: usize = 30;
        let mut readers = Vec::new();
        for _ in 0..2 {
            let bus = Arc::clone(&bus);
            readers.push(tokio::spawn(async move {
                let mut cursor = START;
                let mut seen = Vec::new();
                while seen.len() < N {
                    let got = bus
                        .read_after("results", cursor, 4, Duration::from_secs(5))
                        .await
                        .expect("read");
                    assert!(!got.is_empty(), "reader starved after {}", seen.len());
                    cursor = got.last().map_or(cursor, |m| m.id);
                    seen.extend(got.into_iter().map(|m| (m.id, m.payload)));
                }
                seen
            }));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        let mut ids = publish_n(bus.as_ref(), "results", N / 2).await;
        let payloads: Vec<String> = (N / 2..N).map(|i| format!("job-{i}")).collect();
        let empty = Headers::new();
        let batch: Vec<(&[u8], &Headers)> =
            payloads.iter().map(|p| (p.as_bytes(), &empty)).collect();
        ids.extend(bus.publish_batch("results", &batch).await.expect("batch"));

        let expected: Vec<_> = ids
            .iter()
            .enumerate()
            .map(|(i, id)| (*id, format!("job-{i}").into_bytes()))
            .collect();
        for reader in readers {
            assert_eq!(reader.await.expect("reader task"), expected);
        }
        // Nothing was consumed on anyone's behalf: no group saw any delivery.
        assert_eq!(
            bus.group_stats("results", "g").await.expect("stats"),
            GroupStats {
                pending: 0,
                lag: N as u64
            }
        );
    }

    pub async fn affinity_claims_are_compare_and_set(bus: Arc<dyn JobBus>) {
        let ttl = Duration::from_secs(30);
        assert!(bus.claim_affinity("aff:s1", "a", ttl).await.expect("claim"));
        assert!(!bus.claim_affinity("aff:s1", "b", ttl).await.expect("claim"));
        assert!(bus
            .claim_affinity("aff:s1", "a", ttl)
            .await
            .expect("re-claim"));
        assert!(!bus.renew_affinity("aff:s1", "b", ttl).await.expect("renew"));
        assert!(bus.renew_affinity("aff:s1", "a", ttl).await.expect("renew"));
        assert!(!bus.release_affinity("aff:s1", "b").await.expect("release"));
        assert_eq!(bus.get("aff:s1").await.expect("get"), Some(b"a".to_vec()));
        assert!(bus.release_affinity("aff:s1", "a").await.expect("release"));
        assert!(!bus
            .release_affinity("aff:s1", "a")
            .await
            .expect("release again"));
        assert!(!bus
            .renew_affinity("aff:s1", "a", ttl)
            .await
            .expect("renew released"));
        assert!(bus
            .claim_affinity("aff:s1", "b", ttl)
            .await
            .expect("claim free"));
    }

    pub async fn affinity_claims_expire(bus: Arc<dyn JobBus>) {
        let short = Duration::from_millis(300);
        assert!(bus
            .claim_affinity("aff:s2", "a", short)
            .await
            .expect("claim"));
        // A renewed claim outlives its first TTL.
        tokio::time::sleep(Duration::from_millis(150)).await;
        assert!(bus
            .renew_affinity("aff:s2", "a", Duration::from_secs(30))
            .await
            .expect("renew"));
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert!(!bus
            .claim_affinity("aff:s2", "b", short)
            .await
            .expect("claim held"));

        assert!(bus
            .claim_affinity("aff:s3", "a", short)
            .await
            .expect("claim"));
        tokio::time::sleep(Duration::from_millis(600)).await;
        assert!(!bus
            .renew_affinity("aff:s3", "a", short)
            .await
            .expect("renew expired"));
        assert!(bus
            .claim_affinity("aff:s3", "b", short)
            .await
            .expect("claim expired"));
    }

    pub async fn kv_entries_expire_and_scan_by_prefix(bus: Arc<dyn JobBus>) {
        let long = Duration::from_secs(30);
        bus.set_with_ttl("workers:b", b"gpu-1", long)
            .await
            .expect("set");
        bus.set_with_ttl("workers:a", b"cpu-1", long)
            .await
            .expect("set");
        bus.set_with_ttl("workers:c", b"soon", Duration::from_millis(300))
            .await
            .expect("set");
        bus.set_with_ttl("workersX", b"other", long)
            .await
            .expect("set");
        bus.set_with_ttl("work*:z", b"glob", long)
            .await
            .expect("set");
        assert_eq!(
            bus.get("workers:c").await.expect("get"),
            Some(b"soon".to_vec())
        );

        tokio::time::sleep(Duration::from_millis(600)).await;
        assert_eq!(bus.get("workers:c").await.expect("get"), None);
        let found = bus.scan_prefix("workers:").await.expect("scan");
        assert_eq!(
            found,
            vec![
                ("workers:a".to_owned(), b"cpu-1".to_vec()),
                ("workers:b".to_owned(), b"gpu-1".to_vec()),
            ]
        );
        let globbed = bus.scan_prefix("work*").await.expect("scan");
        assert_eq!(globbed, vec![("work*:z".to_owned(), b"glob".to_vec())]);

        // Setting again replaces the value and the TTL.
        bus.set_with_ttl("workers:a", b"cpu-2", long)
            .await
            .expect("set");
        assert_eq!(
            bus.get("workers:a").await.expect("get"),
            Some(b"cpu-2".to_vec())
        );
        assert!(bus.delete("workers:a").await.expect("delete"));
        assert!(!bus.delete("workers:a").await.expect("delete again"));
        assert_eq!(bus.get("workers:a").await.expect("get"), None);
    }
}

macro_rules! conformance {
    ($($case:ident),* $(,)?) => {
        mod memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let bus: std::sync::Arc<dyn livefarm_bus::JobBus> =
                        std::sync::Arc::new(livefarm_bus::MemoryBus::new(super::options()));
                    super::suite::$case(bus).await;
                }
            )*
        }
        /// The trait's default batch methods, over the memory bus's single-message ones.
        mod defaults {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let bus: std::sync::Arc<dyn livefarm_bus::JobBus> =
                        std::sync::Arc::new(super::Unbatched(livefarm_bus::MemoryBus::new(
                            super::options(),
                        )));
                    super::suite::$case(bus).await;
                }
            )*
        }
        mod redis {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let (_server, bus) = super::redis_bus().await;
                    super::suite::$case(bus).await;
                }
            )*
        }
        /// The same over `rediss://`, checking the server against a private CA.
        mod redis_tls {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let (_server, _certs, bus) = super::redis_tls_bus().await;
                    super::suite::$case(bus).await;
                }
            )*
        }
    };
}

/// Forwards every required method and leaves the provided ones (`publish_batch`,
/// `ack_batch`, ...) to the trait's defaults, as a third-party backend would.
#[derive(Debug)]
struct Unbatched(MemoryBus);

impl StreamBus for Unbatched {
    fn options(&self) -> &BusOptions {
        self.0.options()
    }
    fn ping(&self) -> BusFuture<'_, ()> {
        self.0.ping()
    }
    fn publish<'a>(
        &'a self,
        stream: &'a str,
        payload: &'a [u8],
        headers: &'a Headers,
    ) -> BusFuture<'a, MessageId> {
        self.0.publish(stream, payload, headers)
    }
    fn ensure_group<'a>(&'a self, stream: &'a str, group: &'a str) -> BusFuture<'a, ()> {
        self.0.ensure_group(stream, group)
    }
    fn consume<'a>(
        &'a self,
        stream: &'a str,
        group: &'a str,
        consumer: &'a str,
        max: usize,
        block: Duration,
    ) -> BusFuture<'a, Vec<Delivery>> {
        self.0.consume(stream, group, consumer, max, block)
    }
    fn ack<'a>(&'a self, stream: &'a str, group: &'a str, id: MessageId) -> BusFuture<'a, bool> {
        self.0.ack(stream, group, id)
    }
    fn reclaim<'a>(
        &'a self,
        stream: &'a str,
        group: &'a str,
        consumer: &'a str,
        min_idle: Duration,
        max: usize,
    ) -> BusFuture<'a, Vec<Delivery>> {
        self.0.reclaim(stream, group, consumer, min_idle, max)
    }
    fn group_stats<'a>(&'a self, stream: &'a str, group: &'a str) -> BusFuture<'a, GroupStats> {
        self.0.group_stats(stream, group)
    }
    fn stream_len<'a>(&'a self, stream: &'a str) -> BusFuture<'a, u64> {
        self.0.stream_len(stream)
    }
    fn range<'a>(
        &'a self,
        stream: &'a str,
        after: Option<MessageId>,
        count: usize,
    ) -> BusFuture<'a, Vec<Message>> {
        self.0.range(stream, after, count)
    }
    fn read_after<'a>(
        &'a self,
        stream: &'a str,
        after: MessageId,
        max: usize,
        block: Duration,
    ) -> BusFuture<'a, Vec<Message>> {
        self.0.read_after(stream, after, max, block)
    }
    fn last_id<'a>(&'a self, stream: &'a str) -> BusFuture<'a, Option<MessageId>> {
        self.0.last_id(stream)
    }
    fn delete_stream<'a>(&'a self, stream: &'a str) -> BusFuture<'a, bool> {
        self.0.delete_stream(stream)
    }
}

impl KvStore for Unbatched {
    fn set_with_ttl<'a>(
        &'a self,
        key: &'a str,
        value: &'a [u8],
        ttl: Duration,
    ) -> BusFuture<'a, ()> {
        self.0.set_with_ttl(key, value, ttl)
    }
    fn get<'a>(&'a self, key: &'a str) -> BusFuture<'a, Option<Vec<u8>>> {
        self.0.get(key)
    }
    fn delete<'a>(&'a self, key: &'a str) -> BusFuture<'a, bool> {
        self.0.delete(key)
    }
    fn scan_prefix<'a>(&'a self, prefix: &'a str) -> BusFuture<'a, Vec<(String, Vec<u8>)>> {
        self.0.scan_prefix(prefix)
    }
    fn claim_affinity<'a>(
        &'a self,
        key: &'a str,
        owner: &'a str,
        ttl: Duration,
    ) -> BusFuture<'a, bool> {
        self.0.claim_affinity(key, owner, ttl)
    }
    fn renew_affinity<'a>(
        &'a self,
        key: &'a str,
        owner: &'a str,
        ttl: Duration,
    ) -> BusFuture<'a, bool> {
        self.0.renew_affinity(key, owner, ttl)
    }
    fn release_affinity<'a>(&'a self, key: &'a str, owner: &'a str) -> BusFuture<'a, bool> {
        self.0.release_affinity(key, owner)
    }
}

async fn redis_bus() -> (RedisServer, Arc<dyn JobBus>) {
    let server = RedisServer::start()
        .unwrap_or_else(|error| panic!("the redis conformance tests need redis-server: {error}"));
    let bus = livefarm_bus::connect_with(&server.url(), options())
        .await
        .unwrap_or_else(|error| panic!("cannot connect to {}: {error}", server.url()));
    (server, bus)
}

/// A private CA and a certificate for 127.0.0.1 that it signed, as PEM files in a temporary
/// directory (removed when dropped).
fn tls_files() -> (tempfile::TempDir, RedisServerTls) {
    use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("ca params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().expect("ca key"))
        .expect("ca certificate");
    let key = KeyPair::generate().expect("server key");
    let cert = CertificateParams::new(vec!["127.0.0.1".to_owned()])
        .expect("server params")
        .signed_by(&key, &ca)
        .expect("server certificate");
    let dir = tempfile::tempdir().expect("tempdir");
    let files = RedisServerTls {
        cert_file: dir.path().join("server.pem"),
        key_file: dir.path().join("server.key"),
        ca_file: dir.path().join("ca.pem"),
    };
    std::fs::write(&files.cert_file, cert.pem()).expect("write cert");
    std::fs::write(&files.key_file, key.serialize_pem()).expect("write key");
    std::fs::write(&files.ca_file, ca.pem()).expect("write ca");
    (dir, files)
}

/// A private `redis-server` that also speaks TLS, with a certificate from a private CA.
fn start_tls_server() -> (RedisServer, tempfile::TempDir) {
    let (dir, tls) = tls_files();
    let server = RedisServer::start_with(RedisServerConfig {
        tls: Some(tls),
        ..RedisServerConfig::default()
    })
    .unwrap_or_else(|error| panic!("the tls tests need redis-server built with tls: {error}"));
    (server, dir)
}

async fn redis_tls_bus() -> (RedisServer, tempfile::TempDir, Arc<dyn JobBus>) {
    let (server, dir) = start_tls_server();
    let url = server.tls_url().expect("tls url");
    let bus = livefarm_bus::connect_with(&url, options())
        .await
        .unwrap_or_else(|error| panic!("cannot connect to {url}: {error}"));
    (server, dir, bus)
}

/// Without the private CA the server's certificate is refused (the system's roots do not
/// vouch for it), and a CA file that does not exist is a clear error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_refuses_an_unknown_ca() {
    let (server, _dir) = start_tls_server();
    let url = server.tls_url().expect("tls url");
    let (base, _) = url.split_once('?').expect("ca_file parameter");
    let error = livefarm_bus::connect(base).await.expect_err("unknown ca");
    assert!(error.to_string().contains("certificate"), "{error}");
    let missing = format!("{base}?ca_file=/nonexistent/ca.pem");
    let error = livefarm_bus::connect(&missing)
        .await
        .expect_err("missing ca file");
    assert!(
        matches!(error, livefarm_bus::BusError::InvalidUrl { .. }),
        "{error}"
    );
}

/// The redis-rs connection the registry and the indexer's and redeemer's stores open through
/// `redis_connect` speaks TLS too, from the same URL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_connect_speaks_tls() {
    let (server, _dir) = start_tls_server();
    let url = server.tls_url().expect("tls url");
    let mut conn = livefarm_bus::redis_connect::connect(&url)
        .await
        .unwrap_or_else(|error| panic!("cannot connect to {url}: {error}"));
    ::redis::cmd("SET")
        .arg("k")
        .arg("v")
        .query_async::<()>(&mut conn)
        .await
        .expect("set");
    let value: String = ::redis::cmd("GET")
        .arg("k")
        .query_async(&mut conn)
        .await
        .expect("get");
    assert_eq!(value, "v");
}

conformance!(
    publish_consume_ack,
    consume_respects_max,
    ids_are_monotonic_ms_seq,
    unacked_job_is_reclaimed_by_another_consumer,
    delivery_counts_increment,
    reclaim_respects_max,
    poison_job_goes_to_dlq_without_blocking_others,
    streams_are_trimmed_to_maxlen,
    each_group_sees_every_message,
    group_stats_report_pending_and_lag,
    blocking_consume_wakes_on_publish,
    many_blocked_consumers_share_the_work,
    ack_and_reclaim_tolerate_unknowns,
    publish_batch_keeps_order_and_content,
    publish_batch_wakes_consumers_and_trims,
    ack_batch_counts_only_pending,
    ack_and_consume_acks_then_reads,
    range_reads_after_an_id,
    read_after_reads_entries_after_an_id,
    read_after_skips_trimmed_entries,
    read_after_on_a_missing_stream_is_empty_and_creates_nothing,
    read_after_times_out_empty,
    blocking_read_after_wakes_on_publish,
    last_id_tracks_the_newest_entry,
    independent_readers_each_see_every_entry,
    affinity_claims_are_compare_and_set,
    affinity_claims_expire,
    kv_entries_expire_and_scan_by_prefix,
);

#[test]
fn redis_urls_carry_options() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let server = RedisServer::start()
            .unwrap_or_else(|error| panic!("this test needs redis-server: {error}"));
        let url = format!("{}?maxlen=7&max_deliveries=9", server.url());
        let bus = livefarm_bus::connect(&url).await.expect("connect");
        assert_eq!(bus.options().maxlen, Some(7));
        assert_eq!(bus.options().max_deliveries, 9);
        bus.ping().await.expect("ping");
    });
}

/// Readers without a group leave no trace in Redis: no consumer group on the stream, and no
/// stream created by reading one that does not exist.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_read_after_creates_no_group() {
    let (server, bus) = redis_bus().await;
    let ids = [
        bus.publish("results", b"a", &Headers::new())
            .await
            .expect("publish"),
        bus.publish("results", b"b", &Headers::new())
            .await
            .expect("publish"),
    ];
    let from = bus.last_id("results").await.expect("last id");
    assert_eq!(from, Some(ids[1]));
    let got = bus
        .read_after(
            "results",
            MessageId::new(0, 0),
            10,
            Duration::from_millis(100),
        )
        .await
        .expect("read");
    assert_eq!(got.iter().map(|m| m.id).collect::<Vec<_>>(), ids);
    let none = bus
        .read_after(
            "missing",
            MessageId::new(0, 0),
            10,
            Duration::from_millis(100),
        )
        .await
        .expect("read missing");
    assert!(none.is_empty());

    let client = ::redis::Client::open(server.url()).expect("client");
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .expect("connection");
    let groups: Vec<::redis::Value> = ::redis::cmd("XINFO")
        .arg("GROUPS")
        .arg("results")
        .query_async(&mut conn)
        .await
        .expect("xinfo groups");
    assert!(groups.is_empty(), "groups created: {groups:?}");
    let exists: u64 = ::redis::cmd("EXISTS")
        .arg("missing")
        .query_async(&mut conn)
        .await
        .expect("exists");
    assert_eq!(exists, 0, "reading created the stream");
}
