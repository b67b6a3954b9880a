//! The Redis bus survives a `redis-server` crash: calls fail with a retryable error while it is
//! down, the same bus object reconnects, and jobs that were delivered but not acknowledged are
//! delivered again (the server persists with `appendfsync always`). `livefarm_bus_redis_up`
//! says so meanwhile.

use std::collections::BTreeSet;
use std::future::Future;
use std::time::{Duration, Instant};

use livefarm_bus::server::{RedisServer, RedisServerConfig};
use livefarm_bus::{BusError, Headers, MessageId};

/// Retries `call` while it fails with a retryable error, up to a deadline.
async fn retry<T, F, Fut>(what: &str, mut call: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, BusError>>,
{
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match call().await {
            Ok(value) => return value,
            Err(error) if error.is_retryable() && Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(error) => panic!("{what} failed: {error}"),
        }
    }
}

fn sample(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("{name} missing in\n{text}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unacked_jobs_are_delivered_again_after_a_redis_crash() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut server = RedisServer::start_with(RedisServerConfig {
        port: None,
        aof_dir: Some(dir.path().to_owned()),
        ..RedisServerConfig::default()
    })
    .unwrap_or_else(|error| panic!("this test needs redis-server: {error}"));
    let bus = livefarm_bus::connect(&server.url()).await.expect("connect");

    let mut ids = Vec::new();
    for i in 0..4 {
        let payload = format!("segment-{i}");
        ids.push(
            bus.publish("jobs", payload.as_bytes(), &Headers::new())
                .await
                .expect("publish"),
        );
    }
    // One blocking read first, so the pooled blocking connection must reconnect too.
    let got = bus
        .consume("jobs", "g", "worker-1", 4, Duration::from_secs(1))
        .await
        .expect("consume");
    assert_eq!(got.iter().map(|d| d.id).collect::<Vec<_>>(), ids);
    assert!(bus.ack("jobs", "g", ids[0]).await.expect("ack"));
    assert!(bus.ack("jobs", "g", ids[1]).await.expect("ack"));

    server.kill().expect("kill redis-server");
    let error = bus.ping().await.expect_err("ping while redis is down");
    assert!(error.is_retryable(), "not retryable: {error}");
    let error = bus
        .publish("jobs", b"lost", &Headers::new())
        .await
        .expect_err("publish while redis is down");
    assert!(error.is_retryable(), "not retryable: {error}");
    // what the "Redis unreachable" alert reads
    let text = livefarm_telemetry::metrics::render();
    assert!(text.contains("livefarm_bus_redis_up 0\n"), "{text}");
    assert!(sample(&text, "livefarm_bus_redis_connect_failures_total") >= 1.0);

    server.restart().expect("restart redis-server");
    retry("ping after restart", || bus.ping()).await;
    let text = livefarm_telemetry::metrics::render();
    assert!(text.contains("livefarm_bus_redis_up 1\n"), "{text}");

    // worker-1 died with the server; another worker takes over its unacknowledged jobs.
    let rescued = retry("reclaim", || {
        bus.reclaim("jobs", "g", "worker-2", Duration::ZERO, 10)
    })
    .await;
    let rescued_ids: BTreeSet<MessageId> = rescued.iter().map(|d| d.id).collect();
    assert_eq!(rescued_ids, BTreeSet::from([ids[2], ids[3]]));
    assert!(rescued.iter().all(|d| d.delivery_count == 2), "{rescued:?}");
    assert_eq!(rescued[0].payload, b"segment-2");
    for d in &rescued {
        assert!(retry("ack", || bus.ack("jobs", "g", d.id)).await);
    }
    assert_eq!(retry("pending", || bus.pending_count("jobs", "g")).await, 0);

    // New work flows through the reconnected blocking connection.
    let waiter = {
        let bus = bus.clone();
        tokio::spawn(async move {
            retry("blocking consume", || {
                bus.consume("jobs", "g", "worker-2", 1, Duration::from_secs(10))
            })
            .await
        })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    let no_headers = Headers::new();
    let fresh = retry("publish", || bus.publish("jobs", b"after", &no_headers)).await;
    let got = waiter.await.expect("waiter task");
    assert_eq!(got.iter().map(|d| d.id).collect::<Vec<_>>(), vec![fresh]);
    assert!(fresh > ids[3], "ids went backwards after restart");
}
