//! The worker run in-process on the memory bus: live deadlines, failures ending in the
//! dead-letter stream, and the binary's config handling.

use std::process::Command;
use std::time::Duration;

use livefarm_bus::JobBus;
use livefarm_jobs::{
    dead_letter_stream, enqueue, jobs_stream, now_ms, ResultStatus, SegmentJob, SegmentResult,
    SourceFormat, RESULTS_STREAM, WORKER_GROUP,
};
use livefarm_profiles::Profile;
use livefarm_runtime::Shutdown;
use livefarm_testkit::wait_until;
use livefarm_transcoder::TranscoderConfig;

fn config(bus_url: &str, dir: &std::path::Path) -> TranscoderConfig {
    TranscoderConfig {
        bus_url: bus_url.to_owned(),
        storage_url: format!("file://{}", dir.display()),
        worker_id: "solo".to_owned(),
        accel: "cpu".to_owned(),
        max_deliveries: 2,
        retry_backoff_ms: 100,
        poll_interval_ms: 50,
        reclaim_idle_ms: 1000,
        heartbeat_interval_ms: 200,
        heartbeat_ttl_ms: 1000,
        grpc_listen: "127.0.0.1:0".parse().expect("addr"),
        admin_listen: "127.0.0.1:0".parse().expect("addr"),
        ..TranscoderConfig::default()
    }
}

fn job(stream: &str, seq: u64, enqueued_at_ms: u64) -> SegmentJob {
    SegmentJob {
        stream_id: stream.to_owned(),
        seq,
        source_key: livefarm_storage::keys::source_segment(stream, seq),
        format: SourceFormat::Mpegts,
        duration_ms: 2000,
        profiles: vec![Profile::new("144p", 256, 144, 200_000)],
        enqueued_at_ms,
        deadline_ms: None,
        trace: Default::default(),
        discontinuity: false,
        ingested_at_ms: None,
    }
}

async fn wait_result(bus: &dyn JobBus, stream: &str) -> SegmentResult {
    wait_until(
        Duration::from_secs(20),
        &format!("a result for {stream}"),
        || async move {
            let entries = bus.range(RESULTS_STREAM, None, 100).await.expect("range");
            entries
                .iter()
                .map(|e| SegmentResult::decode(&e.payload).expect("result"))
                .find(|r| r.stream_id == stream)
        },
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_segment_is_dropped_and_missing_source_is_dead_lettered() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bus_url = format!("memory://transcoder-in-process-{}", std::process::id());
    let bus = livefarm_bus::connect(&bus_url).await.expect("bus");
    let shutdown = Shutdown::new();
    let worker = tokio::spawn(livefarm_transcoder::run(
        config(&bus_url, dir.path()),
        shutdown.clone(),
    ));

    // enqueued 10 s ago, 2 s long: its deadline (3x duration) passed 4 s ago; its source
    // does not even exist, so a transcode attempt would fail instead
    enqueue(bus.as_ref(), &job("late", 0, now_ms() - 10_000))
        .await
        .expect("enqueue");
    let late = wait_result(bus.as_ref(), "late").await;
    assert_eq!(late.status, ResultStatus::Dropped);
    assert_eq!(
        late.error.as_ref().map(|e| e.kind.as_str()),
        Some("deadline")
    );
    assert!(late.renditions.is_empty());
    assert!(late.timings.queue_ms >= 10_000, "{late:?}");
    let metrics = livefarm_telemetry::metrics::render();
    assert!(
        metrics.contains("livefarm_transcoder_jobs_total{outcome=\"dropped\"} 1"),
        "{metrics}"
    );

    // a fresh job whose source is missing fails on both tries, then goes to dead letters
    enqueue(bus.as_ref(), &job("missing", 0, now_ms()))
        .await
        .expect("enqueue");
    let failed = wait_result(bus.as_ref(), "missing").await;
    assert_eq!(failed.status, ResultStatus::Failed);
    assert_eq!(failed.attempt, 2);
    assert_eq!(
        failed.error.as_ref().map(|e| e.kind.as_str()),
        Some("source_missing")
    );
    let (dlq, bus_ref) = (&dead_letter_stream("missing"), &bus);
    wait_until(
        Duration::from_secs(10),
        "the job dead-lettered",
        || async move { !bus_ref.range(dlq, None, 10).await.expect("dlq").is_empty() },
    )
    .await;
    for stream in ["late", "missing"] {
        let stats = bus
            .group_stats(&jobs_stream(stream), WORKER_GROUP)
            .await
            .expect("stats");
        assert_eq!((stats.pending, stats.lag), (0, 0), "{stream}");
    }
    let results = bus.range(RESULTS_STREAM, None, 100).await.expect("range");
    assert_eq!(results.len(), 2, "one result per segment");

    shutdown.trigger();
    tokio::time::timeout(Duration::from_secs(10), worker)
        .await
        .expect("drained in time")
        .expect("task")
        .expect("run ok");
    assert_eq!(
        bus.get(&livefarm_jobs::worker_key("solo"))
            .await
            .expect("get"),
        None,
        "registration removed on exit"
    );
}

#[test]
fn bad_config_exits_64_and_dump_config_prints_every_key() {
    let bin = env!("CARGO_BIN_EXE_livefarm-transcoder");
    for set in ["max_sessions=0", "no_such_key=1", "accel=amd"] {
        let status = Command::new(bin)
            .args(["--set", set])
            .env_remove("LIVEFARM_CONFIG")
            .status()
            .expect("run binary");
        assert_eq!(status.code(), Some(64), "--set {set}");
    }
    let out = Command::new(bin)
        .args(["--dump-config", "--set", "max_sessions=7"])
        .output()
        .expect("run binary");
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).expect("utf-8");
    for key in [
        "bus_url",
        "reclaim_idle_ms",
        "deadline_multiplier",
        "max_sessions = 7",
    ] {
        assert!(text.contains(key), "{key} missing in\n{text}");
    }
}
