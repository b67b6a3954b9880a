//! A stream's timeline survives the segmenter: a reconnect served by another replica (here a
//! second `LiveSegmenter` on the same bus, as after a restart or behind a load balancer)
//! continues the seq numbers and is marked as a discontinuity instead of overwriting segment 0.
//!
//! Needs the `ffmpeg` CLI (apt: ffmpeg).

use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use livefarm_jobs::SegmentJob;
use livefarm_publish::{ContainerFormat, PublishStart};
use livefarm_segmenter::LiveSegmenter;
use livefarm_storage::Storage;
use tokio::sync::mpsc;

fn ts_clip(dir: &Path) -> Vec<u8> {
    let out = dir.join("clip.ts");
    let status = std::process::Command::new("ffmpeg")
        .args(["-hide_banner", "-nostdin", "-v", "error", "-y", "-i"])
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/media/bbb-720p25-5s.mp4"))
        .args([
            "-vf",
            "scale=320:180",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
        ])
        .args(["-g", "50", "-keyint_min", "50", "-sc_threshold", "0", "-an"])
        .args(["-f", "mpegts"])
        .arg(&out)
        .status()
        .expect("needs the ffmpeg CLI");
    assert!(status.success());
    std::fs::read(out).expect("clip")
}

async fn publish(segmenter: &LiveSegmenter, session: &str, clip: &[u8]) {
    let (tx, rx) = mpsc::channel(16);
    let chunks: Vec<Bytes> = clip.chunks(64 * 1024).map(Bytes::copy_from_slice).collect();
    tokio::spawn(async move {
        for chunk in chunks {
            if tx.send(chunk.into()).await.is_err() {
                return;
            }
        }
    });
    let start = PublishStart {
        stream_id: "replicated".to_string(),
        session_id: session.to_string(),
        format: ContainerFormat::MpegTs,
        profiles: livefarm_profiles::parse_json_profiles(
            r#"[{"name":"tiny","width":160,"height":90,"bitrate":100000}]"#,
        )
        .expect("profiles"),
        record: false,
        protocol: "srt".to_string(),
    };
    segmenter.run_publish(start, rx).await.expect("segmented");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reconnect_on_another_replica_continues_the_stream() {
    let dir = tempfile::tempdir().expect("tempdir");
    let clip = ts_clip(dir.path());
    let bus = livefarm_bus::connect("memory://segmenter-timeline")
        .await
        .expect("bus");
    let storage = Storage::from_url(&format!("file://{}", dir.path().join("objects").display()))
        .await
        .expect("storage");
    let first = LiveSegmenter::new(bus.clone(), storage.clone(), 2.0, Duration::from_secs(5));
    publish(&first, "s1", &clip).await;
    drop(first);
    let second = LiveSegmenter::new(bus.clone(), storage, 2.0, Duration::from_secs(5));
    publish(&second, "s2", &clip).await;

    let jobs: Vec<SegmentJob> = bus
        .range(&livefarm_jobs::jobs_stream("replicated"), None, 100)
        .await
        .expect("jobs")
        .iter()
        .map(|m| SegmentJob::decode(&m.payload).expect("job"))
        .collect();
    let seqs: Vec<u64> = jobs.iter().map(|j| j.seq).collect();
    let expected: Vec<u64> = (0..jobs.len() as u64).collect();
    assert_eq!(seqs, expected, "seq numbers continue across replicas");
    assert!(
        jobs.len() >= 4,
        "two publishes of about 3 segments: {seqs:?}"
    );
    let marked: Vec<u64> = jobs
        .iter()
        .filter(|j| j.discontinuity)
        .map(|j| j.seq)
        .collect();
    assert_eq!(
        marked.len(),
        1,
        "exactly the reconnect is marked: {marked:?}"
    );
    assert!(marked[0] > 0);
    assert!(jobs.iter().all(|j| j.ingested_at_ms.is_some()));
}
