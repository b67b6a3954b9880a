//! The bus benchmark runs end to end against its own redis-server and the memory bus.
//! Timings are not asserted (the machine is shared); the accounting is: every phase moved jobs,
//! the throughput phase acknowledged every job exactly once, the dead worker's jobs came back,
//! and the report is complete.

use std::time::Duration;

use livefarm::bus_bench::{self as bench, BenchOptions, BenchReport};

fn short(url: Option<String>) -> BenchOptions {
    BenchOptions {
        url,
        phase: Duration::from_millis(300),
        in_flight: vec![1, 10],
        paced_rate: 200,
        payload_size: 16,
        raw_xadd_requests: 5_000,
        producers: 3,
        publish_batch: 8,
        consumers: 2,
        read_count: 50,
        max_jobs: 20_000,
        throughput_rounds: 3,
        reclaim_jobs: 7,
        reclaim_deadline: Duration::from_millis(200),
        reclaim_poll: Duration::from_millis(50),
    }
}

fn check_common(report: &BenchReport) {
    for level in &report.in_flight {
        assert!(level.jobs > 0, "no jobs with {} in flight", level.in_flight);
        assert!(level.p50_ms <= level.p99_ms);
    }
    assert!(report.paced.published > 0);
    assert_eq!(report.paced.jobs, report.paced.published, "paced jobs lost");

    let t = &report.throughput;
    assert_eq!((t.producers, t.publish_batch), (3, 8));
    assert!(t.published > 0, "throughput phase published nothing");
    assert!(t.published <= 20_000, "max_jobs ignored: {}", t.published);
    assert_eq!(t.consumed, t.published, "{t:?}");
    assert_eq!(t.acked, t.published, "{t:?}");
    assert_eq!((t.pending_after, t.lag_after), (0, 0), "{t:?}");
    assert!(t.exactly_once, "{t:?}");
    assert!(t.jobs_per_sec > 0.0);

    let r = &report.reclaim;
    assert_eq!(r.jobs, 7);
    assert_eq!(r.redelivered, 7, "{r:?}");
    assert!((r.redelivery_bound_ms - 250.0).abs() < 1e-9);
    // Reclaim must wait out the deadline: an early redelivery would steal live work. Redis
    // keeps idle times in whole milliseconds, hence the 2 ms of slack.
    assert!(r.redelivery_ms_min >= 198.0, "{r:?}");
    assert!(r.redelivery_ms_min <= r.redelivery_ms_max);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_against_own_redis_reports_every_phase() {
    let report = bench::run(short(None)).await.expect("bench");
    assert_eq!(report.backend, "redis");
    assert!(report.own_server);
    assert_eq!(report.in_flight.len(), 2);
    check_common(&report);
    let raw = report
        .raw_xadd
        .as_ref()
        .unwrap_or_else(|| panic!("no raw rate: {:?}", report.notes));
    // The raw baseline uses the producers' concurrency and pipeline depth.
    assert_eq!((raw.clients, raw.pipeline), (3, 8));
    assert!(raw.per_sec > 0.0);
    assert_eq!(report.raw_xadd_per_sec, Some(raw.per_sec));
    let reference = report.raw_xadd_reference.as_ref().expect("reference rate");
    assert_eq!((reference.clients, reference.pipeline), (50, 16));
    // Three rounds; the figure is their median, or a measurement error above 1.05 (these
    // rounds are far too short to trust, so either may happen here).
    for name in [
        "ratio_vs_raw_xadd",
        "ratio_cpu_vs_raw_xadd",
        "ratio_redis_cpu_vs_raw_xadd",
    ] {
        let figure = report
            .figures
            .get(name)
            .unwrap_or_else(|| panic!("no {name}"));
        let stats = figure
            .stats
            .as_ref()
            .unwrap_or_else(|| panic!("{name} has no rounds: {:?}", report.notes));
        let mut rounds = stats.rounds.clone();
        assert_eq!(rounds.len(), 3, "{name}: {rounds:?}");
        rounds.sort_by(f64::total_cmp);
        assert!(rounds.iter().all(|r| *r > 0.0), "{name}: {rounds:?}");
        match figure.value {
            Some(value) => assert_eq!(value, rounds[1], "{name}"),
            None => assert!(
                rounds[1] > 1.05 && figure.error.is_some(),
                "{name}: withheld without cause: {figure:?}"
            ),
        }
        // Three rounds are never enough to call a figure stable.
        assert!(!stats.spread.stable, "{name}");
    }
    assert_eq!(
        report.figures.headline.as_deref(),
        Some("ratio_cpu_vs_raw_xadd")
    );
    let t = &report.throughput;
    assert!(t.client_cpu_s > 0.0, "{t:?}");
    assert!(t.redis_cpu_s.is_some_and(|c| c > 0.0), "{t:?}");
    assert!(raw.redis_cpu_per_op.is_some_and(|c| c > 0.0), "{raw:?}");
    assert!(raw.client_cpu_per_op > 0.0, "{raw:?}");
    assert!(report.ratio_vs_raw_xadd_unbatched.is_some());
    let json = serde_json::to_value(&report).expect("serialize");
    for key in ["ratio_vs_raw_xadd_unbatched", "raw_xadd_per_sec"] {
        assert!(json.get(key).is_some_and(|v| v.is_number()), "{key}");
    }
    for key in [
        "ratio_cpu_vs_raw_xadd",
        "ratio_cpu_vs_raw_xadd_rounds",
        "ratio_cpu_vs_raw_xadd_spread",
        "ratio_vs_raw_xadd",
        "stable",
        "measurement_errors",
        "load_average_before",
    ] {
        assert!(json.get(key).is_some(), "{key}");
    }
    for key in ["redelivery_ms_max", "redelivery_bound_ms"] {
        assert!(
            json["reclaim"].get(key).is_some_and(|v| v.is_number()),
            "{key}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_against_memory_bus_skips_raw_xadd() {
    let report = bench::run(short(Some("memory://bench-test".to_owned())))
        .await
        .expect("bench");
    assert_eq!(report.backend, "memory");
    check_common(&report);
    assert!(report.raw_xadd_per_sec.is_none());
    assert!(report.figures.value("ratio_vs_raw_xadd").is_none());
    assert!(report.figures.value("ratio_cpu_vs_raw_xadd").is_none());
    assert!(!report.notes.is_empty());
}
