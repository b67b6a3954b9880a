//! A pool of `livefarm-transcoder` worker processes against a real `redis-server`, fed real
//! MPEG-TS segments: failover after `kill -9`, a Redis restart, a poison job, and a SIGTERM
//! drain. Each test checks what a user of the farm sees: every segment of every stream has all
//! its renditions exactly once, in the object store and on the results stream.
//!
//! Needs `redis-server` and the `ffmpeg` CLI on PATH (apt: redis-server ffmpeg). The worker
//! binary is built with cargo before the first test (or taken from `LIVEFARM_TRANSCODER_BIN`).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use livefarm_bus::{JobBus, MessageId};
use livefarm_integration_tests::Sandbox;
use livefarm_jobs::{
    dead_letter_stream, enqueue, now_ms, worker_key, ResultStatus, SegmentJob, SegmentResult,
    SourceFormat, RESULTS_STREAM,
};
use livefarm_profiles::Profile;
use livefarm_proto::transcoder::v1::transcoder_admin_client::TranscoderAdminClient;
use livefarm_proto::transcoder::v1::{GetWorkerRequest, ListSessionsRequest};
use livefarm_storage::{keys, Storage};
use livefarm_testkit::{free_port, wait_until, ServiceProcess};

const RENDITIONS: [(&str, u32, u32); 2] = [("90p", 160, 90), ("144p", 256, 144)];
const TIMEOUT: Duration = Duration::from_secs(90);

fn profiles() -> Vec<Profile> {
    RENDITIONS
        .iter()
        .map(|(name, w, h)| Profile::new(*name, *w, *h, 150_000))
        .collect()
}

/// The worker binary: `LIVEFARM_TRANSCODER_BIN`, or built by cargo next to this test.
fn transcoder_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        livefarm_integration_tests::service_bin(
            "livefarm-transcoder",
            "livefarm-transcoder",
            "LIVEFARM_TRANSCODER_BIN",
        )
    })
}

/// Real 2 s MPEG-TS segments of a small clip cut from the fixture, made once per process.
fn segments() -> &'static Vec<Bytes> {
    static SEGMENTS: OnceLock<Vec<Bytes>> = OnceLock::new();
    SEGMENTS.get_or_init(|| {
        let out = livefarm_integration_tests::fixture_segments(16);
        assert!(
            out.len() >= 7,
            "expected about 8 segments, got {}",
            out.len()
        );
        out
    })
}

struct Worker {
    id: String,
    process: ServiceProcess,
    grpc: u16,
}

impl Worker {
    fn signal(&self, signal: libc::c_int) {
        self.process.signal(signal);
    }

    async fn client(&self) -> TranscoderAdminClient<tonic::transport::Channel> {
        TranscoderAdminClient::connect(format!("http://127.0.0.1:{}", self.grpc))
            .await
            .expect("connect to worker grpc")
    }
}

struct Farm {
    sandbox: Sandbox,
    bus: Arc<dyn JobBus>,
    storage: Storage,
    workers: Vec<Worker>,
}

impl Farm {
    async fn start(workers: usize, persistent: bool) -> Farm {
        let builder = Sandbox::builder("pool");
        let builder = if persistent {
            builder.persistent_redis()
        } else {
            builder.redis()
        };
        let sandbox = builder.start().await;
        let mut farm = Farm {
            bus: sandbox.bus.clone(),
            storage: sandbox.storage.clone(),
            sandbox,
            workers: Vec::new(),
        };
        for i in 0..workers {
            farm.spawn_worker(&format!("w{i}"));
        }
        for i in 0..workers {
            farm.wait_ready(i).await;
        }
        farm
    }

    fn spawn_worker(&mut self, id: &str) {
        let worker = self.start_worker(id);
        self.workers.push(worker);
    }

    fn start_worker(&self, id: &str) -> Worker {
        let grpc = free_port();
        let admin = free_port();
        let sets = [
            format!("bus_url={}", self.sandbox.bus_url),
            format!("storage_url={}", self.sandbox.storage_url),
            format!("worker_id={id}"),
            "max_sessions=2".to_owned(),
            "accel=cpu".to_owned(),
            "x264_preset=ultrafast".to_owned(),
            "reclaim_idle_ms=2000".to_owned(),
            "retry_backoff_ms=300".to_owned(),
            "max_deliveries=3".to_owned(),
            "poll_interval_ms=100".to_owned(),
            "heartbeat_interval_ms=300".to_owned(),
            "heartbeat_ttl_ms=1500".to_owned(),
            "session_idle_ms=20000".to_owned(),
            "drain_grace_ms=20000".to_owned(),
            format!("grpc_listen=127.0.0.1:{grpc}"),
            format!("admin_listen=127.0.0.1:{admin}"),
        ];
        let process = self.sandbox.process(
            id,
            transcoder_bin(),
            &sets,
            "info,livefarm_transcoder=debug",
        );
        Worker {
            id: id.to_owned(),
            process,
            grpc,
        }
    }

    async fn wait_ready(&mut self, index: usize) {
        let mut port_retries = 3;
        loop {
            let worker = &self.workers[index];
            let url = &format!("http://127.0.0.1:{}", worker.grpc);
            let started = wait_until(
                Duration::from_secs(30),
                &format!("worker {} to answer", worker.id),
                || async move {
                    if let Some(status) = worker.process.exited() {
                        return Ok(Err(status));
                    }
                    let mut client = TranscoderAdminClient::connect(url.clone())
                        .await
                        .map_err(|e| e.to_string())?;
                    let info = client
                        .get_worker(GetWorkerRequest {})
                        .await
                        .map_err(|e| e.to_string())?;
                    Ok::<_, String>(Ok(info.into_inner()))
                },
            )
            .await;
            match started {
                Ok(info) => {
                    assert_eq!(info.worker_id, worker.id);
                    assert_eq!(info.capacity, 2);
                    assert_eq!(info.accelerator, "cpu");
                    return;
                }
                Err(status) => {
                    let log = self.log(index);
                    // A free port picked here can be taken by a parallel test before the
                    // worker binds it: pick new ones.
                    if log.contains("Address already in use") && port_retries > 0 {
                        port_retries -= 1;
                        let id = self.workers[index].id.clone();
                        self.workers[index] = self.start_worker(&id);
                        continue;
                    }
                    let id = &self.workers[index].id;
                    panic!("worker {id} exited at start: {status}\n{log}");
                }
            }
        }
    }

    fn log(&self, index: usize) -> String {
        self.workers[index].process.log_text()
    }

    fn logs(&self) -> String {
        (0..self.workers.len())
            .map(|i| format!("--- {} ---\n{}", self.workers[i].id, self.log(i)))
            .collect()
    }

    /// Stores segment `seq` of `stream` and enqueues its job; retries while Redis is down.
    async fn feed_one(&self, stream: &str, seq: u64, data: Bytes) {
        let source_key = keys::source_segment(stream, seq);
        self.storage
            .put(&source_key, data)
            .await
            .expect("put source");
        let job = SegmentJob {
            stream_id: stream.to_owned(),
            seq,
            source_key,
            format: SourceFormat::Mpegts,
            duration_ms: 2000,
            profiles: profiles(),
            enqueued_at_ms: now_ms(),
            // generous: these tests check completeness, not live deadlines
            deadline_ms: Some(now_ms() + 300_000),
            trace: Default::default(),
            discontinuity: false,
            ingested_at_ms: None,
        };
        let job = &job;
        wait_until(
            Duration::from_secs(30),
            &format!("enqueue {stream}/{seq} while redis is down"),
            || async move {
                match enqueue(self.bus.as_ref(), job).await {
                    Ok(_) => Ok(()),
                    Err(error) if error.is_retryable() => Err(error),
                    Err(error) => panic!("enqueue {stream}/{seq}: {error}"),
                }
            },
        )
        .await;
    }

    /// Feeds every segment of the clip to each stream, one segment per stream every `pace`.
    async fn feed(&self, streams: &[String], pace: Duration) {
        for (seq, data) in segments().iter().enumerate() {
            for stream in streams {
                self.feed_one(stream, seq as u64, data.clone()).await;
            }
            tokio::time::sleep(pace).await;
        }
    }

    /// Every result entry, oldest first, retrying while Redis is down.
    async fn results(&self) -> Vec<(MessageId, SegmentResult)> {
        let mut out = Vec::new();
        let mut after = None;
        loop {
            let page = wait_until(
                Duration::from_secs(30),
                "a page of results while redis is down",
                || async move {
                    match self.bus.range(RESULTS_STREAM, after, 1000).await {
                        Ok(page) => Ok(page),
                        Err(error) if error.is_retryable() => Err(error),
                        Err(error) => panic!("read results: {error}"),
                    }
                },
            )
            .await;
            for entry in &page {
                out.push((
                    entry.id,
                    SegmentResult::decode(&entry.payload).expect("result decodes"),
                ));
            }
            match page.last() {
                Some(last) if page.len() == 1000 => after = Some(last.id),
                _ => return out,
            }
        }
    }

    /// Waits until every `(stream, seq)` in `expected` has a result.
    async fn wait_results(
        &self,
        expected: &BTreeSet<(String, u64)>,
    ) -> Vec<(MessageId, SegmentResult)> {
        wait_until(TIMEOUT, "a result for every segment", || async move {
            let results = self.results().await;
            let seen: BTreeSet<(String, u64)> = results
                .iter()
                .map(|(_, r)| (r.stream_id.clone(), r.seq))
                .collect();
            if expected.is_subset(&seen) {
                return Ok(results);
            }
            let missing: Vec<_> = expected.difference(&seen).collect();
            Err(format!("results missing for {missing:?}\n{}", self.logs()))
        })
        .await
    }

    /// Whether `stream`/`seq` has a result on the results stream.
    async fn has_result(&self, stream: &str, seq: u64) -> bool {
        self.results()
            .await
            .iter()
            .any(|(_, r)| r.stream_id == stream && r.seq == seq)
    }

    /// Every segment has exactly one `ok` result with every rendition, and the object store
    /// holds exactly those renditions, each a non-empty object.
    async fn check_exactly_once(&self, streams: &[String], results: &[(MessageId, SegmentResult)]) {
        let n = segments().len() as u64;
        let mut per_key: BTreeMap<(String, u64), Vec<&SegmentResult>> = BTreeMap::new();
        for (_, r) in results {
            per_key
                .entry((r.stream_id.clone(), r.seq))
                .or_default()
                .push(r);
        }
        for stream in streams {
            // what results say of each rendition's size: playback relies on it
            let mut sizes: BTreeMap<String, u64> = BTreeMap::new();
            for seq in 0..n {
                let found = per_key
                    .get(&(stream.clone(), seq))
                    .cloned()
                    .unwrap_or_default();
                assert_eq!(
                    found.len(),
                    1,
                    "{stream}/{seq} has {} results: {found:?}",
                    found.len()
                );
                let r = found[0];
                assert_eq!(r.status, ResultStatus::Ok, "{stream}/{seq}: {r:?}");
                let got: Vec<(&str, u32, u32)> = r
                    .renditions
                    .iter()
                    .map(|x| (x.name.as_str(), x.width, x.height))
                    .collect();
                assert_eq!(got, RENDITIONS.to_vec(), "{stream}/{seq}");
                for rendition in &r.renditions {
                    assert!(rendition.frames >= 40, "{stream}/{seq}: {rendition:?}");
                    assert_eq!(
                        rendition.key,
                        keys::rendition_segment(stream, rendition.name.as_str(), seq, "ts")
                    );
                    assert!(
                        rendition
                            .codecs
                            .as_deref()
                            .is_some_and(|c| c.starts_with("avc1.")),
                        "{stream}/{seq}: {rendition:?}"
                    );
                    sizes.insert(rendition.key.clone(), rendition.bytes);
                }
                assert!(r.source_bytes > 0, "{stream}/{seq}: {r:?}");
            }
            let listed = self
                .storage
                .list(&keys::stream_prefix(stream))
                .await
                .expect("list");
            for (name, _, _) in RENDITIONS {
                let mut stored: Vec<String> = listed
                    .iter()
                    .filter(|o| o.key.contains(&format!("/{name}/")))
                    .inspect(|o| {
                        assert!(o.size > 1000, "{} is {} bytes", o.key, o.size);
                        assert_eq!(sizes.get(&o.key), Some(&o.size), "{}", o.key);
                    })
                    .map(|o| o.key.clone())
                    .collect();
                stored.sort();
                let expected: Vec<String> = (0..n)
                    .map(|seq| keys::rendition_segment(stream, name, seq, "ts"))
                    .collect();
                assert_eq!(stored, expected, "{stream} rendition {name}");
            }
        }
    }
}

fn expected_keys(streams: &[String]) -> BTreeSet<(String, u64)> {
    let n = segments().len() as u64;
    streams
        .iter()
        .flat_map(|s| (0..n).map(move |seq| (s.clone(), seq)))
        .collect()
}

/// The first segment of each stream.
fn first_keys(streams: &[String]) -> BTreeSet<(String, u64)> {
    streams.iter().map(|s| (s.clone(), 0)).collect()
}

fn stream_names(prefix: &str, count: usize) -> Vec<String> {
    (0..count).map(|i| format!("{prefix}-{i}")).collect()
}

/// Waits until some worker (from `candidates`) reports a segment in flight; returns its index.
async fn worker_mid_segment(farm: &Farm, candidates: &[usize]) -> (usize, String, u64) {
    let mut clients = Vec::new();
    for &i in candidates {
        clients.push((i, farm.workers[i].client().await));
    }
    let clients = &clients;
    wait_until(
        Duration::from_secs(60),
        "a worker in the middle of a segment",
        || async move {
            for (i, client) in clients {
                let sessions = client
                    .clone()
                    .list_sessions(ListSessionsRequest {})
                    .await
                    .expect("list sessions")
                    .into_inner()
                    .sessions;
                if let Some(s) = sessions.iter().find(|s| s.in_flight_seq.is_some()) {
                    return Some((*i, s.stream_id.clone(), s.in_flight_seq.unwrap_or_default()));
                }
            }
            None
        },
    )
    .await
}

/// Freezes (SIGSTOP) a worker while it provably holds a segment it has not finished: it
/// reported the segment in flight, every thread of it has stopped, and the segment has no
/// result. When the segment finished in the instant before the stop landed, the worker goes
/// on (SIGCONT) and the next in-flight segment is tried.
async fn freeze_mid_segment(farm: &Farm, candidates: &[usize]) -> (usize, String, u64) {
    wait_until(
        Duration::from_secs(60),
        "a worker frozen in the middle of a segment",
        || async move {
            let (victim, stream, seq) = worker_mid_segment(farm, candidates).await;
            let worker = &farm.workers[victim];
            worker.process.freeze();
            // Redis serves one command at a time: once a first read has come back, whatever
            // the worker wrote before it stopped has been applied, and the second read sees it.
            farm.has_result(&stream, seq).await;
            if farm.has_result(&stream, seq).await {
                worker.process.resume();
                return Err(format!(
                    "{} finished {stream}/{seq} just before it stopped",
                    worker.id
                ));
            }
            Ok((victim, stream, seq))
        },
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_worker_streams_move_and_every_segment_lands_once() {
    let _ = transcoder_bin();
    let farm = Farm::start(3, false).await;
    let streams = stream_names("kill", 4);
    let feeder = {
        let streams = streams.clone();
        let farm_ref: &Farm = &farm;
        // the feed runs while the test kills a worker
        let feed = farm_ref.feed(&streams, Duration::from_millis(700));
        let kill = async {
            // every stream has an owner first: its first segment is done
            farm.wait_results(&first_keys(&streams)).await;
            let all: Vec<usize> = (0..farm.workers.len()).collect();
            let (victim, stream, seq) = freeze_mid_segment(&farm, &all).await;
            farm.workers[victim].signal(libc::SIGKILL);
            (victim, stream, seq, now_ms())
        };
        tokio::join!(feed, kill).1
    };
    let (victim, stream, seq, killed_at) = feeder;
    let victim_id = farm.workers[victim].id.clone();
    let results = farm.wait_results(&expected_keys(&streams)).await;
    farm.check_exactly_once(&streams, &results).await;

    // the stream killed mid-segment finished on a survivor, as did every later segment of
    // every stream the victim held
    let by_key: BTreeMap<(String, u64), &SegmentResult> = results
        .iter()
        .map(|(_, r)| ((r.stream_id.clone(), r.seq), r))
        .collect();
    // The victim was frozen holding the segment unfinished, so a survivor finished it.
    let interrupted = by_key[&(stream.clone(), seq)];
    assert_ne!(interrupted.worker_id, victim_id, "{interrupted:?}");
    let victim_streams: BTreeSet<&String> = results
        .iter()
        .filter(|(_, r)| r.worker_id == victim_id)
        .map(|(_, r)| &r.stream_id)
        .collect();
    assert!(
        victim_streams.contains(&stream),
        "{victim_id} held {victim_streams:?}"
    );
    for (id, r) in &results {
        if victim_streams.contains(&r.stream_id) && id.ms > killed_at + 100 {
            assert_ne!(r.worker_id, victim_id, "result after the kill: {r:?}");
        }
    }
    let last = segments().len() as u64 - 1;
    for s in &victim_streams {
        assert_ne!(
            by_key[&((*s).clone(), last)].worker_id,
            victim_id,
            "{s} did not move"
        );
    }
    // the takeover retried the interrupted segment: a second delivery
    assert!(interrupted.attempt >= 2, "{interrupted:?}");
    // the dead worker's registration expires
    let (key, farm_ref) = (&worker_key(&victim_id), &farm);
    wait_until(
        Duration::from_secs(10),
        "the dead worker's registration to expire",
        || async move { farm_ref.bus.get(key).await.expect("get").is_none() },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_restart_mid_run_loses_no_acknowledged_result() {
    let _ = transcoder_bin();
    let mut farm = Farm::start(3, true).await;
    let streams = stream_names("restart", 4);
    let half = segments().len() / 2;
    for (seq, data) in segments().iter().enumerate().take(half) {
        for stream in &streams {
            farm.feed_one(stream, seq as u64, data.clone()).await;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // some results are in; remember them, then crash Redis (SIGKILL) and start it again
    let before = farm.wait_results(&first_keys(&streams)).await;
    farm.sandbox.restart_redis();
    for (seq, data) in segments().iter().enumerate().skip(half) {
        for stream in &streams {
            farm.feed_one(stream, seq as u64, data.clone()).await;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let results = farm.wait_results(&expected_keys(&streams)).await;
    farm.check_exactly_once(&streams, &results).await;
    let after: BTreeSet<MessageId> = results.iter().map(|(id, _)| *id).collect();
    for (id, r) in &before {
        assert!(
            after.contains(id),
            "result {id} of {}/{} lost",
            r.stream_id,
            r.seq
        );
    }
    for (i, worker) in farm.workers.iter().enumerate() {
        assert!(
            worker.process.exited().is_none(),
            "worker {i} died across the restart"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poison_segment_goes_to_dead_letters_without_blocking_the_stream() {
    let _ = transcoder_bin();
    let farm = Farm::start(1, false).await;
    let stream = "poison-0".to_owned();
    let poison_seq = 2u64;
    for (seq, data) in segments().iter().enumerate() {
        let data = if seq as u64 == poison_seq {
            // not a media container: fails to demux on every try
            Bytes::from_static(b"this is not an mpeg-ts segment at all")
        } else {
            data.clone()
        };
        farm.feed_one(&stream, seq as u64, data).await;
    }
    let n = segments().len() as u64;
    let expected: BTreeSet<(String, u64)> = (0..n).map(|seq| (stream.clone(), seq)).collect();
    let results = farm.wait_results(&expected).await;
    let mut per_seq: BTreeMap<u64, Vec<(MessageId, &SegmentResult)>> = BTreeMap::new();
    for (id, r) in &results {
        per_seq.entry(r.seq).or_default().push((*id, r));
    }
    for seq in 0..n {
        assert_eq!(per_seq[&seq].len(), 1, "seq {seq}: {:?}", per_seq[&seq]);
    }
    let (poison_id, poison) = per_seq[&poison_seq][0];
    assert_eq!(poison.status, ResultStatus::Failed);
    assert_eq!(poison.attempt, 3);
    assert_eq!(
        poison.error.as_ref().map(|e| e.kind.as_str()),
        Some("demux")
    );
    // the next segments did not wait for the poison's retries
    for seq in (poison_seq + 1)..n {
        let (id, r) = per_seq[&seq][0];
        assert_eq!(r.status, ResultStatus::Ok, "{r:?}");
        if seq == poison_seq + 1 {
            assert!(id < poison_id, "seq {seq} waited for the poison job");
        }
    }
    // and the job itself lands in the dead-letter stream, once
    let dlq = dead_letter_stream(&stream);
    let (farm_ref, dlq_ref) = (&farm, &dlq);
    let letters = wait_until(Duration::from_secs(20), "a dead letter", || async move {
        let letters = farm_ref.bus.range(dlq_ref, None, 10).await.expect("dlq");
        (!letters.is_empty()).then_some(letters)
    })
    .await;
    assert_eq!(letters.len(), 1, "{letters:?}\n{}", farm.logs());
    let job = SegmentJob::decode(&letters[0].payload).expect("dead letter is the job");
    assert_eq!(job.seq, poison_seq);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_in_flight_segments_and_hands_streams_over() {
    let _ = transcoder_bin();
    let farm = Farm::start(2, false).await;
    let streams = stream_names("drain", 2);
    let (victim, stream, seq) = {
        let feed = farm.feed(&streams, Duration::from_millis(500));
        let term = async {
            farm.wait_results(&first_keys(&streams)).await;
            let (victim, stream, seq) = worker_mid_segment(&farm, &[0, 1]).await;
            farm.workers[victim].signal(libc::SIGTERM);
            (victim, stream, seq)
        };
        tokio::join!(feed, term).1
    };
    // the drained worker exits cleanly
    let drained = &farm.workers[victim];
    let status = wait_until(
        Duration::from_secs(30),
        "the drained worker to exit",
        || async move { drained.process.exited() },
    )
    .await;
    assert!(
        status.success(),
        "drained worker exited with {status}\n{}",
        farm.logs()
    );
    let victim_id = farm.workers[victim].id.clone();
    let results = farm.wait_results(&expected_keys(&streams)).await;
    farm.check_exactly_once(&streams, &results).await;
    let by_key: BTreeMap<(String, u64), &SegmentResult> = results
        .iter()
        .map(|(_, r)| ((r.stream_id.clone(), r.seq), r))
        .collect();
    // the in-flight segment was finished by the draining worker, not redone elsewhere
    let in_flight = by_key[&(stream.clone(), seq)];
    assert_eq!(in_flight.worker_id, victim_id);
    assert_eq!(in_flight.attempt, 1);
    // and the stream went on, on the other worker
    let last = segments().len() as u64 - 1;
    assert_ne!(by_key[&(stream, last)].worker_id, victim_id);
    assert_eq!(
        farm.bus.get(&worker_key(&victim_id)).await.expect("get"),
        None
    );
}
