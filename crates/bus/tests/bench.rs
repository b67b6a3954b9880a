//! The bus benchmark runs end to end against its own redis-server and the memory bus.
//! Timings are not asserted; only that every phase moved jobs and the report is complete.

use std::time::Duration;

use livefarm_bus::bench::{self, BenchOptions};

fn short(url: Option<String>) -> BenchOptions {
    BenchOptions {
        url,
        phase: Duration::from_millis(300),
        in_flight: vec![1, 10],
        paced_rate: 200,
        payload_size: 16,
        raw_xadd_requests: 5_000,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_against_own_redis_reports_every_phase() {
    let report = bench::run(short(None)).await.expect("bench");
    assert_eq!(report.backend, "redis");
    assert!(report.own_server);
    assert_eq!(report.in_flight.len(), 2);
    for level in &report.in_flight {
        assert!(level.jobs > 0, "no jobs with {} in flight", level.in_flight);
        assert!(level.p50_ms <= level.p99_ms);
    }
    assert!(report.paced.published > 0);
    assert_eq!(report.paced.jobs, report.paced.published, "paced jobs lost");
    let raw = report
        .raw_xadd_per_sec
        .unwrap_or_else(|| panic!("no raw rate: {:?}", report.notes));
    assert!(raw > 0.0);
    assert!(report.ratio_vs_raw_xadd.is_some());
    let json = serde_json::to_value(&report).expect("serialize");
    assert!(json.get("ratio_vs_raw_xadd").is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_against_memory_bus_skips_raw_xadd() {
    let report = bench::run(short(Some("memory://bench-test".to_owned())))
        .await
        .expect("bench");
    assert_eq!(report.backend, "memory");
    assert!(report.in_flight.iter().all(|level| level.jobs > 0));
    assert_eq!(report.paced.jobs, report.paced.published);
    assert!(report.raw_xadd_per_sec.is_none());
    assert!(!report.notes.is_empty());
}
