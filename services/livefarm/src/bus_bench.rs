//! `livefarm bench bus`: latency, throughput and reclaim of no-op jobs, compared with the raw
//! XADD rate `redis-benchmark` gets from the same server in the same run.
//!
//! - Latency: a round trip is publish → consume → ack, timed from just before the publish to
//!   just after the ack. The closed-loop phases keep 1, 10 and 100 jobs in flight (one task
//!   per job, each publishing one job then consuming and acknowledging one); the paced phase
//!   publishes at a fixed rate while a few consumers drain the stream.
//! - Throughput: how a farm moves jobs. Several producers publish pipelined batches
//!   ([`livefarm_bus::StreamBus::publish_batch`]) while several consumers of one group read up to
//!   [`BenchOptions::read_count`] jobs at a time, acknowledging each read as a whole in the
//!   same round trip as their next read ([`livefarm_bus::StreamBus::ack_and_consume`]). Every job must be
//!   acknowledged exactly once; the phase checks that the published, consumed and
//!   acknowledged ids are the same set and nothing stays pending.
//!   `redis-benchmark` runs the same XADD (same payload size and trimming) with as many
//!   clients as there are producers and a pipeline as deep as their batches
//!   (`-c producers -P publish_batch`), just before and just after the phase;
//!   a round's ratio divides the phase's rate by the mean of the two. The phase runs
//!   [`BenchOptions::throughput_rounds`] times (each between two raw runs) and
//!   `ratio_vs_raw_xadd` is the median round's: a single round on a shared 2-core machine
//!   swings with whatever else runs.
//! - CPU (the headline, `ratio_cpu_vs_raw_xadd`): the same rounds, counting CPU seconds per
//!   job instead of jobs per wall second. Redis's own CPU comes from `INFO cpu`
//!   (`used_cpu_user + used_cpu_sys`) before and after each throughput phase and each
//!   `redis-benchmark` run; the bus client's is this process's (`getrusage`), the
//!   baseline client's is `redis-benchmark`'s (waited for, so `RUSAGE_CHILDREN`). A round's
//!   ratio is (Redis + client CPU per raw XADD) / (Redis + client CPU per bus job);
//!   `ratio_redis_cpu_vs_raw_xadd` counts Redis alone. A neighbour that takes a core away
//!   stretches both sides' wall time unevenly but not the CPU each job costs. Every bus job
//!   is at least one XADD, so a ratio above 1.05 is reported as a measurement error.
//! - Reclaim: a worker takes some jobs and dies without acknowledging them (its connection is
//!   dropped, as on `kill -9`); another worker calls [`livefarm_bus::StreamBus::reclaim`] with the reclaim
//!   deadline as `min_idle` every poll interval, and the phase measures how long after the
//!   first delivery each job is delivered again, against the deadline plus one poll interval.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use livefarm_bus::server::{find_binary, RedisServer};
use livefarm_bus::{BusError, BusOptions, Headers, JobBus, MessageId};
use serde::Serialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::task::JoinSet;

use crate::bench_measure::{cpu_seconds, Figures, LoadAverage, Who};

/// Header carrying the publish time, in nanoseconds since the bench started.
const SENT_HEADER: &str = "bench-sent-ns";
const GROUP: &str = "bench";
/// The whole run is cut off after this, whatever the options say.
const RUN_LIMIT: Duration = Duration::from_secs(240);
/// Stream length cap during the run, far above what one phase leaves unread, so trimming
/// never drops a job before it is consumed.
const BENCH_MAXLEN: u64 = 1_000_000;
/// How long consumers may keep draining after the producers stop.
const DRAIN_LIMIT: Duration = Duration::from_secs(3);
/// The reference configuration of the raw XADD rate (what earlier runs compared with).
const REFERENCE_CLIENTS: usize = 50;
const REFERENCE_PIPELINE: usize = 16;

/// What to measure and against which bus.
#[derive(Debug, Clone)]
pub struct BenchOptions {
    /// Bus URL (`redis://...` or `memory://...`); `None` starts a private `redis-server` on a
    /// free loopback port for the run.
    pub url: Option<String>,
    /// Duration of each measured phase (three closed-loop phases, the paced phase and the
    /// throughput phase).
    pub phase: Duration,
    /// Jobs in flight in the closed-loop phases.
    pub in_flight: Vec<usize>,
    /// Publish rate of the paced phase, jobs per second.
    pub paced_rate: u32,
    /// Payload bytes per job.
    pub payload_size: usize,
    /// Requests `redis-benchmark` sends to measure each raw XADD rate.
    pub raw_xadd_requests: u64,
    /// Concurrent producers in the throughput phase (also `redis-benchmark -c`).
    pub producers: usize,
    /// Jobs per pipelined publish in the throughput phase (also `redis-benchmark -P`).
    pub publish_batch: usize,
    /// Consumers of the one group in the throughput phase (default: [`default_consumers`]).
    pub consumers: usize,
    /// Jobs one consumer reads at a time (`XREADGROUP COUNT`) in the throughput phase.
    pub read_count: usize,
    /// The throughput phase stops publishing after this many jobs even if time is left.
    pub max_jobs: u64,
    /// Throughput rounds, each between two raw XADD measurements; the ratio reported is the
    /// median round's (one round on a shared machine swings with other load).
    pub throughput_rounds: usize,
    /// Jobs the dying worker holds in the reclaim phase.
    pub reclaim_jobs: usize,
    /// `min_idle` given to reclaim: how long a job stays with a silent worker.
    pub reclaim_deadline: Duration,
    /// How often the surviving worker calls reclaim.
    pub reclaim_poll: Duration,
}

impl Default for BenchOptions {
    fn default() -> Self {
        Self {
            url: None,
            phase: Duration::from_millis(2500),
            in_flight: vec![1, 10, 100],
            paced_rate: 1000,
            payload_size: 64,
            raw_xadd_requests: 500_000,
            producers: 4,
            publish_batch: 16,
            consumers: default_consumers(),
            read_count: 100,
            max_jobs: 400_000,
            throughput_rounds: 5,
            reclaim_jobs: 20,
            reclaim_deadline: Duration::from_millis(500),
            reclaim_poll: Duration::from_millis(100),
        }
    }
}

/// One consumer per core (2 to 8): more consumers than cores only split the same reads into
/// smaller batches (more XREADGROUP calls per job on the one Redis core) and add contention.
pub fn default_consumers() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
        .clamp(2, 8)
}

/// Latency and throughput with a fixed number of jobs in flight.
#[derive(Debug, Clone, Serialize)]
pub struct InFlightResult {
    /// Jobs kept in flight.
    pub in_flight: usize,
    /// Jobs that completed the round trip.
    pub jobs: u64,
    /// Completed jobs per second.
    pub jobs_per_sec: f64,
    /// Median round trip, milliseconds.
    pub p50_ms: f64,
    /// 99th percentile round trip, milliseconds.
    pub p99_ms: f64,
}

/// Latency at a fixed publish rate.
#[derive(Debug, Clone, Serialize)]
pub struct PacedResult {
    /// Target publish rate, jobs per second.
    pub target_per_sec: u32,
    /// Jobs published.
    pub published: u64,
    /// Jobs that completed the round trip.
    pub jobs: u64,
    /// Completed jobs per second over the publishing window.
    pub achieved_per_sec: f64,
    /// Median round trip, milliseconds.
    pub p50_ms: f64,
    /// 99th percentile round trip, milliseconds.
    pub p99_ms: f64,
}

/// Batched producers and consumers moving no-op jobs through one group.
#[derive(Debug, Clone, Serialize)]
pub struct ThroughputResult {
    /// Concurrent producers.
    pub producers: usize,
    /// Jobs per pipelined publish.
    pub publish_batch: usize,
    /// Consumers in the group.
    pub consumers: usize,
    /// Jobs read at a time, each read acknowledged with one `XACK`.
    pub read_count: usize,
    /// Jobs published.
    pub published: u64,
    /// Jobs delivered to a consumer.
    pub consumed: u64,
    /// Acknowledgements that removed a pending job.
    pub acked: u64,
    /// Jobs still pending in the group at the end (should be 0).
    pub pending_after: u64,
    /// Jobs never delivered at the end (should be 0).
    pub lag_after: u64,
    /// Whether every published job was delivered and acknowledged exactly once.
    pub exactly_once: bool,
    /// From the first publish to the last acknowledgement, seconds.
    pub seconds: f64,
    /// Acknowledged jobs per second over `seconds`.
    pub jobs_per_sec: f64,
    /// Redis's CPU seconds over the phase (`INFO cpu`), when readable.
    pub redis_cpu_s: Option<f64>,
    /// This process's CPU seconds over the phase (producers and consumers).
    pub client_cpu_s: f64,
}

/// Redelivery of the jobs of a worker that died holding them.
#[derive(Debug, Clone, Serialize)]
pub struct ReclaimResult {
    /// Jobs the dead worker held.
    pub jobs: usize,
    /// `min_idle` of each reclaim call, milliseconds.
    pub reclaim_deadline_ms: f64,
    /// Interval between reclaim calls, milliseconds.
    pub poll_interval_ms: f64,
    /// Jobs delivered again (with a delivery count of 2) and acknowledged.
    pub redelivered: usize,
    /// Shortest time from the first delivery to the redelivery, milliseconds.
    pub redelivery_ms_min: f64,
    /// Longest time from the first delivery to the redelivery, milliseconds.
    pub redelivery_ms_max: f64,
    /// The promise: reclaim deadline plus one poll interval, milliseconds.
    pub redelivery_bound_ms: f64,
    /// Whether every job came back, within the bound, and nothing stayed pending.
    pub within_bound: bool,
}

/// One `redis-benchmark` XADD run.
#[derive(Debug, Clone, Serialize)]
pub struct RawXadd {
    /// Parallel connections (`-c`).
    pub clients: usize,
    /// Pipeline depth (`-P`).
    pub pipeline: usize,
    /// Requests sent (`-n`).
    pub requests: u64,
    /// XADD per second (the mean of `samples`).
    pub per_sec: f64,
    /// The rate of each `redis-benchmark` run behind `per_sec`.
    pub samples: Vec<f64>,
    /// Redis CPU seconds per XADD (`INFO cpu`), mean over the runs, when readable.
    pub redis_cpu_per_op: Option<f64>,
    /// `redis-benchmark`'s own CPU seconds per XADD, mean over the runs.
    pub client_cpu_per_op: f64,
    /// Runs behind the CPU means.
    #[serde(skip)]
    runs: usize,
}

impl RawXadd {
    /// Both runs averaged, or whichever one succeeded.
    fn mean(a: Option<RawXadd>, b: Option<RawXadd>) -> Option<RawXadd> {
        match (a, b) {
            (Some(mut a), Some(b)) => {
                a.samples.extend(b.samples);
                a.per_sec = a.samples.iter().sum::<f64>() / a.samples.len() as f64;
                let (na, nb) = (a.runs as f64, b.runs as f64);
                let mean = |x: f64, y: f64| (x * na + y * nb) / (na + nb);
                a.redis_cpu_per_op = match (a.redis_cpu_per_op, b.redis_cpu_per_op) {
                    (Some(x), Some(y)) => Some(mean(x, y)),
                    _ => None,
                };
                a.client_cpu_per_op = mean(a.client_cpu_per_op, b.client_cpu_per_op);
                a.runs += b.runs;
                Some(a)
            }
            (a, b) => a.or(b),
        }
    }
}

/// Everything one run measured.
#[derive(Debug, Clone, Serialize)]
pub struct BenchReport {
    /// `redis` or `memory`.
    pub backend: String,
    /// Whether the run started its own `redis-server`.
    pub own_server: bool,
    /// One result per in-flight level.
    pub in_flight: Vec<InFlightResult>,
    /// The paced phase.
    pub paced: PacedResult,
    /// The batched throughput phase.
    pub throughput: ThroughputResult,
    /// The dead-worker reclaim phase.
    pub reclaim: ReclaimResult,
    /// XADD per second from `redis-benchmark` with the producers' concurrency and pipeline
    /// depth, measured just before and just after the throughput phase (see `raw_xadd`),
    /// when it could run.
    pub raw_xadd_per_sec: Option<f64>,
    /// The `redis-benchmark` run behind `raw_xadd_per_sec`.
    pub raw_xadd: Option<RawXadd>,
    /// `redis-benchmark` with 50 clients pipelining 16 deep, for reference.
    pub raw_xadd_reference: Option<RawXadd>,
    /// `ratio_cpu_vs_raw_xadd` (headline), `ratio_redis_cpu_vs_raw_xadd` and
    /// `ratio_vs_raw_xadd` (throughput-phase jobs per second / raw XADD per second), each the
    /// median of the rounds, with `_rounds`, `_spread`, `stable` and `measurement_errors`.
    #[serde(flatten)]
    pub figures: Figures,
    /// Best closed-loop (one job per round trip, unbatched) jobs per second divided by the
    /// reference raw XADD rate: the figure earlier versions reported as `ratio_vs_raw_xadd`.
    pub ratio_vs_raw_xadd_unbatched: Option<f64>,
    /// Anything that could not be measured, and why.
    pub notes: Vec<String>,
    /// Wall time of the whole run, seconds.
    pub wall_seconds: f64,
    pub load_average_before: Option<LoadAverage>,
    pub load_average_after: Option<LoadAverage>,
}

/// Runs the benchmark; the whole run stays under a minute.
pub async fn run(opts: BenchOptions) -> Result<BenchReport, BusError> {
    match tokio::time::timeout(RUN_LIMIT, run_inner(opts)).await {
        Ok(report) => report,
        Err(_) => Err(BusError::Timeout(RUN_LIMIT)),
    }
}

async fn run_inner(opts: BenchOptions) -> Result<BenchReport, BusError> {
    let started = Instant::now();
    let load_average_before = LoadAverage::now();
    let (server, url) = match &opts.url {
        Some(url) => (None, url.clone()),
        None => {
            let server = tokio::task::spawn_blocking(RedisServer::start)
                .await
                .map_err(|e| BusError::Process(format!("redis-server start task failed: {e}")))??;
            let url = server.url();
            (Some(server), url)
        }
    };
    let is_redis = !url.starts_with("memory://");
    // Where `INFO cpu` is asked: the private server, or a plain redis:// URL's host:port.
    let info_addr = match &server {
        Some(server) => Some(format!("127.0.0.1:{}", server.port())),
        None => plain_redis_addr(&url),
    };
    let options = BusOptions {
        maxlen: Some(BENCH_MAXLEN),
        max_deliveries: 5,
    };
    let bus = livefarm_bus::connect_with(&url, options.clone()).await?;
    let base = Instant::now();
    let payload = vec![b'x'; opts.payload_size];
    let prefix = format!("livefarm-bench:{}", std::process::id());

    let mut in_flight = Vec::new();
    for &level in &opts.in_flight {
        let stream = format!("{prefix}:closed-{level}");
        let result = closed_loop(&bus, &stream, level.max(1), opts.phase, &payload, base).await;
        bus.delete_stream(&stream).await?;
        in_flight.push(result?);
    }

    let stream = format!("{prefix}:paced");
    let paced = paced(
        &bus,
        &stream,
        opts.paced_rate.max(1),
        opts.phase,
        &payload,
        base,
    )
    .await;
    bus.delete_stream(&stream).await?;
    let paced = paced?;

    let mut notes = Vec::new();
    let matched = RawXaddSpec {
        clients: opts.producers.max(1),
        pipeline: opts.publish_batch.max(1),
        requests: opts.raw_xadd_requests,
        payload_size: opts.payload_size,
    };
    // The raw rate is taken right before and right after each throughput round and averaged,
    // so load that comes and goes on a shared machine weighs on both sides alike; the round
    // with the median ratio is reported.
    let mut raw_before = if is_redis {
        measure_raw(
            server.as_ref(),
            &url,
            &prefix,
            matched,
            &mut notes,
            info_addr.as_deref(),
        )
        .await
    } else {
        notes.push("raw xadd rate needs a redis bus".to_owned());
        None
    };
    let mut rounds: Vec<(ThroughputResult, Option<RawXadd>)> = Vec::new();
    for round in 0..opts.throughput_rounds.max(1) {
        let stream = format!("{prefix}:throughput-{round}");
        let redis0 = redis_cpu(info_addr.as_deref()).await;
        let client0 =
            cpu_seconds(Who::SelfProcess).map_err(|e| BusError::Process(e.to_string()))?;
        let throughput_result = throughput(&bus, &url, &options, &stream, &opts, &payload).await;
        let client1 =
            cpu_seconds(Who::SelfProcess).map_err(|e| BusError::Process(e.to_string()))?;
        let redis1 = redis_cpu(info_addr.as_deref()).await;
        bus.delete_stream(&stream).await?;
        let mut throughput = throughput_result?;
        throughput.client_cpu_s = client1 - client0;
        throughput.redis_cpu_s = redis0.zip(redis1).map(|(a, b)| b - a);
        if !throughput.exactly_once {
            notes.push(format!(
                "throughput round {round} lost or repeated jobs: published {}, consumed {}, acked {}, pending {}, lag {}",
                throughput.published,
                throughput.consumed,
                throughput.acked,
                throughput.pending_after,
                throughput.lag_after
            ));
        }
        let raw_after = if is_redis {
            measure_raw(
                server.as_ref(),
                &url,
                &prefix,
                matched,
                &mut notes,
                info_addr.as_deref(),
            )
            .await
        } else {
            None
        };
        rounds.push((throughput, RawXadd::mean(raw_before, raw_after.clone())));
        raw_before = raw_after;
    }
    let reference = if is_redis {
        let reference_spec = RawXaddSpec {
            clients: REFERENCE_CLIENTS,
            pipeline: REFERENCE_PIPELINE,
            ..matched
        };
        measure_raw(
            server.as_ref(),
            &url,
            &prefix,
            reference_spec,
            &mut notes,
            info_addr.as_deref(),
        )
        .await
    } else {
        None
    };
    let round_ratio = |(t, raw): &(ThroughputResult, Option<RawXadd>)| {
        raw.as_ref()
            .filter(|raw| raw.per_sec > 0.0)
            .map(|raw| t.jobs_per_sec / raw.per_sec)
    };
    let ratio_vs_raw_xadd_rounds: Vec<f64> = rounds.iter().filter_map(round_ratio).collect();
    let cpu_rounds: Vec<f64> = rounds
        .iter()
        .filter_map(|(t, raw)| cpu_ratio(t, raw.as_ref()?, true))
        .collect();
    let redis_cpu_rounds: Vec<f64> = rounds
        .iter()
        .filter_map(|(t, raw)| cpu_ratio(t, raw.as_ref()?, false))
        .collect();
    let mut figures = Figures::default();
    figures.set_headline("ratio_cpu_vs_raw_xadd");
    if cpu_rounds.len() < rounds.len() && is_redis {
        notes.push(format!(
            "CPU ratios from {} of {} rounds (Redis's INFO cpu unreadable?)",
            cpu_rounds.len(),
            rounds.len()
        ));
    }
    figures.add("ratio_cpu_vs_raw_xadd", &cpu_rounds, true);
    figures.add("ratio_redis_cpu_vs_raw_xadd", &redis_cpu_rounds, true);
    figures.add("ratio_vs_raw_xadd", &ratio_vs_raw_xadd_rounds, true);
    // The median round (by ratio when there are ratios, else the middle one).
    let mut order: Vec<usize> = (0..rounds.len()).collect();
    order.sort_by(|a, b| {
        let key = |i: &usize| round_ratio(&rounds[*i]).unwrap_or(0.0);
        key(a).total_cmp(&key(b))
    });
    let median = order[order.len() / 2];
    let (throughput, raw) = rounds.swap_remove(median);

    let stream = format!("{prefix}:reclaim");
    let reclaim_result = reclaim(&bus, &url, &options, &stream, &opts, &payload).await;
    bus.delete_stream(&stream).await?;
    let reclaim = reclaim_result?;
    if !reclaim.within_bound {
        notes.push(format!(
            "reclaim: {}/{} jobs redelivered, slowest after {:.1} ms, bound {:.1} ms",
            reclaim.redelivered,
            reclaim.jobs,
            reclaim.redelivery_ms_max,
            reclaim.redelivery_bound_ms
        ));
    }

    let best_unbatched = in_flight
        .iter()
        .map(|r| r.jobs_per_sec)
        .fold(0.0_f64, f64::max);
    let ratio = |jobs_per_sec: f64, raw: &Option<RawXadd>| {
        raw.as_ref()
            .filter(|raw| raw.per_sec > 0.0)
            .map(|raw| jobs_per_sec / raw.per_sec)
    };
    let ratio_vs_raw_xadd_unbatched = ratio(best_unbatched, &reference);
    drop(bus);
    drop(server);
    Ok(BenchReport {
        backend: if is_redis { "redis" } else { "memory" }.to_owned(),
        own_server: opts.url.is_none(),
        in_flight,
        paced,
        throughput,
        reclaim,
        raw_xadd_per_sec: raw.as_ref().map(|raw| raw.per_sec),
        raw_xadd: raw,
        raw_xadd_reference: reference,
        figures,
        ratio_vs_raw_xadd_unbatched,
        notes,
        wall_seconds: started.elapsed().as_secs_f64(),
        load_average_before,
        load_average_after: LoadAverage::now(),
    })
}

fn sent_headers(base: Instant) -> Headers {
    let mut headers = Headers::new();
    headers.insert(
        SENT_HEADER.to_owned(),
        base.elapsed().as_nanos().to_string(),
    );
    headers
}

/// Round trip of a delivered job, from its publish time to now.
fn round_trip(headers: &Headers, base: Instant) -> Option<Duration> {
    let sent: u64 = headers.get(SENT_HEADER)?.parse().ok()?;
    let now = u64::try_from(base.elapsed().as_nanos()).ok()?;
    Some(Duration::from_nanos(now.saturating_sub(sent)))
}

/// Consumes up to `max` jobs, acknowledges them and returns their round trips.
async fn consume_and_ack(
    bus: &dyn JobBus,
    stream: &str,
    consumer: &str,
    max: usize,
    block: Duration,
    base: Instant,
) -> Result<Vec<Duration>, BusError> {
    let deliveries = bus.consume(stream, GROUP, consumer, max, block).await?;
    if deliveries.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<MessageId> = deliveries.iter().map(|d| d.id).collect();
    bus.ack_batch(stream, GROUP, &ids).await?;
    Ok(deliveries
        .iter()
        .filter_map(|delivery| round_trip(&delivery.headers, base))
        .collect())
}

async fn closed_loop(
    bus: &Arc<dyn JobBus>,
    stream: &str,
    level: usize,
    phase: Duration,
    payload: &[u8],
    base: Instant,
) -> Result<InFlightResult, BusError> {
    bus.ensure_group(stream, GROUP).await?;
    let started = Instant::now();
    let deadline = started + phase;
    let mut tasks = JoinSet::new();
    for worker in 0..level {
        let bus = Arc::clone(bus);
        let stream = stream.to_owned();
        let payload = payload.to_vec();
        tasks.spawn(async move {
            let consumer = format!("worker-{worker}");
            let mut samples = Vec::new();
            while Instant::now() < deadline {
                bus.publish(&stream, &payload, &sent_headers(base)).await?;
                let rtts = consume_and_ack(
                    bus.as_ref(),
                    &stream,
                    &consumer,
                    1,
                    Duration::from_secs(1),
                    base,
                )
                .await?;
                samples.extend(rtts);
            }
            Ok::<_, BusError>(samples)
        });
    }
    let samples = join_samples(tasks).await?;
    let elapsed = started.elapsed().as_secs_f64();
    let (p50_ms, p99_ms) = percentiles(samples.clone());
    Ok(InFlightResult {
        in_flight: level,
        jobs: samples.len() as u64,
        jobs_per_sec: samples.len() as f64 / elapsed,
        p50_ms,
        p99_ms,
    })
}

async fn paced(
    bus: &Arc<dyn JobBus>,
    stream: &str,
    rate: u32,
    phase: Duration,
    payload: &[u8],
    base: Instant,
) -> Result<PacedResult, BusError> {
    const CONSUMERS: usize = 4;
    bus.ensure_group(stream, GROUP).await?;
    let started = Instant::now();
    let publish_until = started + phase;
    // Consumers keep draining a little after the last publish.
    let drain_until = publish_until + Duration::from_secs(2);
    let (done_tx, done_rx) = tokio::sync::watch::channel(None::<u64>);
    let mut tasks = JoinSet::new();
    for worker in 0..CONSUMERS {
        let bus = Arc::clone(bus);
        let stream = stream.to_owned();
        let done_rx = done_rx.clone();
        tasks.spawn(async move {
            let consumer = format!("paced-{worker}");
            let mut samples = Vec::new();
            while Instant::now() < drain_until {
                let rtts = consume_and_ack(
                    bus.as_ref(),
                    &stream,
                    &consumer,
                    16,
                    Duration::from_millis(100),
                    base,
                )
                .await?;
                let idle = rtts.is_empty();
                samples.extend(rtts);
                // Publishing is over and the stream is drained.
                if idle && done_rx.borrow().is_some() {
                    break;
                }
            }
            Ok::<_, BusError>(samples)
        });
    }
    let mut ticker = tokio::time::interval(Duration::from_secs(1) / rate);
    let mut published = 0u64;
    while Instant::now() < publish_until {
        ticker.tick().await;
        bus.publish(stream, payload, &sent_headers(base)).await?;
        published += 1;
    }
    let publish_secs = started.elapsed().as_secs_f64();
    let _ = done_tx.send(Some(published));
    let samples = join_samples(tasks).await?;
    let (p50_ms, p99_ms) = percentiles(samples.clone());
    Ok(PacedResult {
        target_per_sec: rate,
        published,
        jobs: samples.len() as u64,
        achieved_per_sec: samples.len() as f64 / publish_secs,
        p50_ms,
        p99_ms,
    })
}

/// What one producer or consumer of the throughput phase did.
#[derive(Default)]
struct Tally {
    ids: Vec<MessageId>,
    acked: u64,
    last_ack: Option<Instant>,
}

async fn throughput(
    bus: &Arc<dyn JobBus>,
    url: &str,
    options: &BusOptions,
    stream: &str,
    opts: &BenchOptions,
    payload: &[u8],
) -> Result<ThroughputResult, BusError> {
    let producers = opts.producers.max(1);
    let batch = opts.publish_batch.max(1);
    let consumers = opts.consumers.max(1);
    let read_count = opts.read_count.max(1);
    bus.ensure_group(stream, GROUP).await?;
    let started = Instant::now();
    let publish_until = started + opts.phase;
    // Jobs handed out to producers so far, so that together they stop at `max_jobs`.
    let reserved = Arc::new(AtomicU64::new(0));
    // Set once every producer has finished, so an empty read after it means "drained".
    let published_all = Arc::new(AtomicBool::new(false));

    let mut consumer_tasks = JoinSet::new();
    for worker in 0..consumers {
        let bus = Arc::clone(bus);
        let stream = stream.to_owned();
        let published_all = Arc::clone(&published_all);
        consumer_tasks.spawn(async move {
            let consumer = format!("throughput-{worker}");
            let mut tally = Tally::default();
            let drain_until = publish_until + DRAIN_LIMIT;
            // Each read acknowledges the previous one in the same round trip.
            let mut unacked: Vec<MessageId> = Vec::new();
            while Instant::now() < drain_until {
                let was_published = published_all.load(Ordering::Acquire);
                let (acked, deliveries) = bus
                    .ack_and_consume(
                        &stream,
                        GROUP,
                        &consumer,
                        &unacked,
                        read_count,
                        Duration::from_millis(50),
                    )
                    .await?;
                if !unacked.is_empty() {
                    tally.acked += acked;
                    tally.last_ack = Some(Instant::now());
                    tally.ids.append(&mut unacked);
                }
                if deliveries.is_empty() {
                    if was_published {
                        break;
                    }
                    continue;
                }
                unacked.extend(deliveries.iter().map(|d| d.id));
            }
            // Out of time with a read in hand: acknowledge it on its own.
            if !unacked.is_empty() {
                tally.acked += bus.ack_batch(&stream, GROUP, &unacked).await?;
                tally.last_ack = Some(Instant::now());
                tally.ids.append(&mut unacked);
            }
            Ok::<_, BusError>(tally)
        });
    }

    let mut producer_tasks = JoinSet::new();
    for _ in 0..producers {
        // Each producer is its own client with its own connection, as separate segmenter
        // processes are, and as redis-benchmark's `-c` clients are in the baseline.
        let bus = livefarm_bus::connect_with(url, options.clone()).await?;
        let stream = stream.to_owned();
        let payload = payload.to_vec();
        let reserved = Arc::clone(&reserved);
        let max_jobs = opts.max_jobs;
        producer_tasks.spawn(async move {
            let headers = Headers::new();
            let mut tally = Tally::default();
            while Instant::now() < publish_until {
                let first = reserved.fetch_add(batch as u64, Ordering::Relaxed);
                let n = max_jobs.saturating_sub(first).min(batch as u64) as usize;
                if n == 0 {
                    break;
                }
                let messages = vec![(payload.as_slice(), &headers); n];
                tally
                    .ids
                    .extend(bus.publish_batch(&stream, &messages).await?);
            }
            Ok::<_, BusError>(tally)
        });
    }
    let published = join_tallies(producer_tasks).await;
    published_all.store(true, Ordering::Release);
    let consumed = join_tallies(consumer_tasks).await;
    let (published, consumed) = (published?, consumed?);

    let stats = bus.group_stats(stream, GROUP).await?;
    let end = consumed
        .iter()
        .filter_map(|t| t.last_ack)
        .max()
        .unwrap_or(started);
    let acked: u64 = consumed.iter().map(|t| t.acked).sum();
    let mut published_ids: Vec<MessageId> = published.into_iter().flat_map(|t| t.ids).collect();
    let mut consumed_ids: Vec<MessageId> = consumed.into_iter().flat_map(|t| t.ids).collect();
    let (published_n, consumed_n) = (published_ids.len() as u64, consumed_ids.len() as u64);
    published_ids.sort_unstable();
    consumed_ids.sort_unstable();
    let distinct: HashSet<&MessageId> = published_ids.iter().collect();
    let exactly_once = distinct.len() as u64 == published_n
        && published_ids == consumed_ids
        && acked == published_n
        && stats.pending == 0
        && stats.lag == 0;
    let seconds = end.saturating_duration_since(started).as_secs_f64();
    Ok(ThroughputResult {
        producers,
        publish_batch: batch,
        consumers,
        read_count,
        published: published_n,
        consumed: consumed_n,
        acked,
        pending_after: stats.pending,
        lag_after: stats.lag,
        exactly_once,
        seconds,
        jobs_per_sec: if seconds > 0.0 {
            acked as f64 / seconds
        } else {
            0.0
        },
        redis_cpu_s: None,
        client_cpu_s: 0.0,
    })
}

async fn join_tallies(mut tasks: JoinSet<Result<Tally, BusError>>) -> Result<Vec<Tally>, BusError> {
    let mut out = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        out.push(joined.map_err(|e| BusError::Process(format!("bench task failed: {e}")))??);
    }
    Ok(out)
}

/// A worker takes `reclaim_jobs` jobs and dies; another reclaims them every poll interval.
async fn reclaim(
    bus: &Arc<dyn JobBus>,
    url: &str,
    options: &BusOptions,
    stream: &str,
    opts: &BenchOptions,
    payload: &[u8],
) -> Result<ReclaimResult, BusError> {
    let jobs = opts.reclaim_jobs.max(1);
    let deadline = opts.reclaim_deadline;
    let poll = opts.reclaim_poll.max(Duration::from_millis(1));
    let bound = deadline + poll;
    bus.ensure_group(stream, GROUP).await?;
    let headers = Headers::new();
    bus.publish_batch(stream, &vec![(payload, &headers); jobs])
        .await?;

    // The doomed worker has a connection of its own, closed when it "dies".
    let doomed = livefarm_bus::connect_with(url, options.clone()).await?;
    // Taken before the read, so the measured delay never undercounts.
    let delivered_at = Instant::now();
    let taken = doomed
        .consume(stream, GROUP, "doomed", jobs, Duration::ZERO)
        .await?;
    drop(doomed);
    if taken.len() != jobs {
        return Err(BusError::Protocol(format!(
            "reclaim phase: the doomed worker got {} of {jobs} jobs",
            taken.len()
        )));
    }

    let mut ticker = tokio::time::interval(poll);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let give_up = delivered_at + bound + Duration::from_secs(2);
    let mut delays = Vec::with_capacity(jobs);
    let mut acked = 0;
    while delays.len() < jobs && Instant::now() < give_up {
        ticker.tick().await;
        let got = bus
            .reclaim(stream, GROUP, "rescuer", deadline, jobs)
            .await?;
        let now = Instant::now();
        let ids: Vec<MessageId> = got
            .iter()
            .filter(|d| d.delivery_count == 2)
            .map(|d| d.id)
            .collect();
        delays.extend(
            ids.iter()
                .map(|_| now.saturating_duration_since(delivered_at)),
        );
        acked += bus.ack_batch(stream, GROUP, &ids).await?;
    }
    let pending = bus.pending_count(stream, GROUP).await?;
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let max = delays.iter().max().copied().unwrap_or_default();
    let min = delays.iter().min().copied().unwrap_or_default();
    Ok(ReclaimResult {
        jobs,
        reclaim_deadline_ms: ms(deadline),
        poll_interval_ms: ms(poll),
        redelivered: delays.len(),
        redelivery_ms_min: ms(min),
        redelivery_ms_max: ms(max),
        redelivery_bound_ms: ms(bound),
        within_bound: delays.len() == jobs && acked == jobs as u64 && pending == 0 && max <= bound,
    })
}

async fn join_samples(
    mut tasks: JoinSet<Result<Vec<Duration>, BusError>>,
) -> Result<Vec<Duration>, BusError> {
    let mut samples = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        let task = joined.map_err(|e| BusError::Process(format!("bench task failed: {e}")))?;
        samples.extend(task?);
    }
    Ok(samples)
}

/// p50 and p99 in milliseconds (nearest rank); zeros without samples.
fn percentiles(mut samples: Vec<Duration>) -> (f64, f64) {
    if samples.is_empty() {
        return (0.0, 0.0);
    }
    samples.sort_unstable();
    let at = |q: f64| {
        let rank = ((q * samples.len() as f64).ceil() as usize).clamp(1, samples.len());
        samples[rank - 1].as_secs_f64() * 1000.0
    };
    (at(0.50), at(0.99))
}

/// A `redis-benchmark` XADD configuration.
#[derive(Debug, Clone, Copy)]
struct RawXaddSpec {
    clients: usize,
    pipeline: usize,
    requests: u64,
    payload_size: usize,
}

/// Runs [`raw_xadd`], turning a failure into a note.
async fn measure_raw(
    server: Option<&RedisServer>,
    url: &str,
    prefix: &str,
    spec: RawXaddSpec,
    notes: &mut Vec<String>,
    info_addr: Option<&str>,
) -> Option<RawXadd> {
    match raw_xadd(server, url, prefix, spec, info_addr).await {
        Ok(raw) => Some(raw),
        Err(error) => {
            notes.push(format!(
                "raw xadd rate (-c {} -P {}) not measured: {error}",
                spec.clients, spec.pipeline
            ));
            None
        }
    }
}

/// Raw XADD rate of the same server, from `redis-benchmark`, adding entries shaped like the
/// bus's no-op jobs (same field name, payload size and trimming).
async fn raw_xadd(
    server: Option<&RedisServer>,
    url: &str,
    prefix: &str,
    spec: RawXaddSpec,
    info_addr: Option<&str>,
) -> Result<RawXadd, BusError> {
    let binary = find_binary("redis-benchmark")
        .ok_or_else(|| BusError::Process("redis-benchmark not found on PATH".to_owned()))?;
    let stream = format!("{prefix}:raw-xadd");
    let mut cmd = tokio::process::Command::new(binary);
    match server {
        Some(server) => cmd.arg("-p").arg(server.port().to_string()),
        None => cmd.arg("-u").arg(url),
    };
    let payload = "x".repeat(spec.payload_size);
    // redis-benchmark has no built-in XADD test, so it runs an explicit command.
    cmd.args(["-n", &spec.requests.to_string()])
        .args(["-c", &spec.clients.to_string()])
        .args(["-P", &spec.pipeline.to_string(), "--csv"])
        .args(["XADD", &stream, "MAXLEN", "~", &BENCH_MAXLEN.to_string()])
        .args(["*", livefarm_bus::PAYLOAD_FIELD, &payload])
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    let redis0 = redis_cpu(info_addr).await;
    let children0 = cpu_seconds(Who::Children).map_err(|e| BusError::Process(e.to_string()))?;
    // `output` waits for the child, so its CPU lands in RUSAGE_CHILDREN.
    let output = tokio::time::timeout(Duration::from_secs(60), cmd.output())
        .await
        .map_err(|_| BusError::Process("redis-benchmark ran longer than 60s".to_owned()))?
        .map_err(|e| BusError::Process(format!("cannot run redis-benchmark: {e}")))?;
    let children1 = cpu_seconds(Who::Children).map_err(|e| BusError::Process(e.to_string()))?;
    let redis1 = redis_cpu(info_addr).await;
    // Leave the target server as we found it.
    if let Ok(bus) = livefarm_bus::connect(url).await {
        let _ = bus.delete_stream(&stream).await;
    }
    if !output.status.success() {
        return Err(BusError::Process(format!(
            "redis-benchmark failed with {}: {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        )));
    }
    let per_sec =
        parse_benchmark_csv(&String::from_utf8_lossy(&output.stdout)).ok_or_else(|| {
            BusError::Process("cannot read the rate from redis-benchmark output".to_owned())
        })?;
    Ok(RawXadd {
        clients: spec.clients,
        pipeline: spec.pipeline,
        requests: spec.requests,
        per_sec,
        samples: vec![per_sec],
        redis_cpu_per_op: redis0
            .zip(redis1)
            .map(|(a, b)| (b - a) / spec.requests.max(1) as f64),
        client_cpu_per_op: (children1 - children0) / spec.requests.max(1) as f64,
        runs: 1,
    })
}

/// One round's CPU ratio: CPU per raw XADD / CPU per bus job, counting the clients too
/// (`with_clients`) or Redis alone.
fn cpu_ratio(t: &ThroughputResult, raw: &RawXadd, with_clients: bool) -> Option<f64> {
    if t.acked == 0 {
        return None;
    }
    let jobs = t.acked as f64;
    let (bus, base) = if with_clients {
        (
            (t.redis_cpu_s? + t.client_cpu_s) / jobs,
            raw.redis_cpu_per_op? + raw.client_cpu_per_op,
        )
    } else {
        (t.redis_cpu_s? / jobs, raw.redis_cpu_per_op?)
    };
    (bus > 0.0).then(|| base / bus)
}

/// `host:port` of a `redis://` URL without credentials, TLS or a path beyond a db number.
fn plain_redis_addr(url: &str) -> Option<String> {
    let rest = url.strip_prefix("redis://")?;
    let hostport = rest.split('/').next()?;
    if hostport.contains('@') || hostport.is_empty() {
        return None;
    }
    Some(if hostport.contains(':') {
        hostport.to_owned()
    } else {
        format!("{hostport}:6379")
    })
}

/// Redis's own CPU seconds so far (`INFO cpu`: `used_cpu_user + used_cpu_sys`), on a
/// connection of its own; `None` when it cannot be read.
async fn redis_cpu(addr: Option<&str>) -> Option<f64> {
    let addr = addr?;
    let ask = async {
        let mut conn = tokio::net::TcpStream::connect(addr).await.ok()?;
        conn.write_all(b"*2\r\n$4\r\nINFO\r\n$3\r\ncpu\r\n")
            .await
            .ok()?;
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            let n = conn.read(&mut chunk).await.ok()?;
            if n == 0 {
                return None;
            }
            buf.extend_from_slice(&chunk[..n]);
            if let Some(body) = resp_bulk(&buf) {
                return parse_info_cpu(&String::from_utf8_lossy(body));
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(2), ask)
        .await
        .ok()
        .flatten()
}

/// The body of a complete RESP bulk string (`$len\r\n...\r\n`), `None` until it is all there.
fn resp_bulk(buf: &[u8]) -> Option<&[u8]> {
    let header_end = buf.windows(2).position(|w| w == b"\r\n")?;
    let len: usize = std::str::from_utf8(buf.get(1..header_end)?)
        .ok()?
        .parse()
        .ok()?;
    if buf.first() != Some(&b'$') {
        return None;
    }
    buf.get(header_end + 2..header_end + 2 + len)
}

/// `used_cpu_user + used_cpu_sys` of an `INFO cpu` reply (the server process, every thread).
fn parse_info_cpu(info: &str) -> Option<f64> {
    let field = |name: &str| {
        info.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
            .and_then(|v| v.trim().parse::<f64>().ok())
    };
    Some(field("used_cpu_user")? + field("used_cpu_sys")?)
}

/// The `rps` column of the first result row of `redis-benchmark --csv`.
fn parse_benchmark_csv(csv: &str) -> Option<f64> {
    let mut lines = csv.lines().filter(|l| !l.trim().is_empty());
    let header: Vec<&str> = lines
        .next()?
        .split(',')
        .map(|c| c.trim_matches('"'))
        .collect();
    let column = header.iter().position(|c| *c == "rps")?;
    // The test name may contain commas inside quotes; count columns from the right.
    let row: Vec<&str> = lines.next()?.split(',').collect();
    let from_end = header.len().checked_sub(column)?;
    let cell = row.get(row.len().checked_sub(from_end)?)?;
    cell.trim_matches('"').parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_nearest_rank() {
        let samples: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        let (p50, p99) = percentiles(samples);
        assert!((p50 - 50.0).abs() < 1e-9, "{p50}");
        assert!((p99 - 99.0).abs() < 1e-9, "{p99}");
        assert_eq!(percentiles(Vec::new()), (0.0, 0.0));
    }

    #[test]
    fn benchmark_csv_rate_is_read() {
        let csv = "\"test\",\"rps\",\"avg_latency_ms\",\"min_latency_ms\"\n\
                   \"XADD s MAXLEN ~ 10000 * f,v\",\"294985.25\",\"2.485\",\"0.376\"\n";
        assert_eq!(parse_benchmark_csv(csv), Some(294_985.25));
        assert_eq!(parse_benchmark_csv("garbage"), None);
    }

    #[test]
    fn info_cpu_is_read() {
        let info = "# CPU\r\nused_cpu_sys:1.250000\r\nused_cpu_user:2.500000\r\nused_cpu_sys_children:9.0\r\nused_cpu_user_children:9.0\r\nused_cpu_sys_main_thread:1.0\r\n";
        assert_eq!(parse_info_cpu(info), Some(3.75));
        assert_eq!(parse_info_cpu("# CPU\r\n"), None);
        let reply = format!("${}\r\n{info}\r\n", info.len());
        assert_eq!(resp_bulk(reply.as_bytes()), Some(info.as_bytes()));
        assert_eq!(resp_bulk(&reply.as_bytes()[..10]), None);
        assert_eq!(
            plain_redis_addr("redis://10.0.0.1:7000/0").as_deref(),
            Some("10.0.0.1:7000")
        );
        assert_eq!(
            plain_redis_addr("redis://cache").as_deref(),
            Some("cache:6379")
        );
        assert_eq!(plain_redis_addr("redis://u:p@cache:6379"), None);
        assert_eq!(plain_redis_addr("rediss://cache:6379"), None);
    }

    fn throughput_with(acked: u64, redis: f64, client: f64) -> ThroughputResult {
        ThroughputResult {
            producers: 1,
            publish_batch: 1,
            consumers: 1,
            read_count: 1,
            published: acked,
            consumed: acked,
            acked,
            pending_after: 0,
            lag_after: 0,
            exactly_once: true,
            seconds: 1.0,
            jobs_per_sec: acked as f64,
            redis_cpu_s: Some(redis),
            client_cpu_s: client,
        }
    }

    fn raw_with(redis: f64, client: f64, per_sec: f64) -> RawXadd {
        RawXadd {
            clients: 1,
            pipeline: 1,
            requests: 1,
            per_sec,
            samples: vec![per_sec],
            redis_cpu_per_op: Some(redis),
            client_cpu_per_op: client,
            runs: 1,
        }
    }

    #[test]
    fn cpu_ratios_divide_cost_per_raw_xadd_by_cost_per_job() {
        // 1000 jobs for 0.004 s of Redis and 0.004 s of client: 8 µs a job; raw XADD costs
        // 2 µs of Redis and 1 µs of redis-benchmark.
        let t = throughput_with(1000, 0.004, 0.004);
        let raw = raw_with(2e-6, 1e-6, 100_000.0);
        assert!((cpu_ratio(&t, &raw, true).expect("ratio") - 3.0 / 8.0).abs() < 1e-9);
        assert!((cpu_ratio(&t, &raw, false).expect("ratio") - 0.5).abs() < 1e-9);
        let unread = ThroughputResult {
            redis_cpu_s: None,
            ..t.clone()
        };
        assert_eq!(cpu_ratio(&unread, &raw, true), None);
        assert_eq!(cpu_ratio(&throughput_with(0, 0.0, 0.0), &raw, true), None);
        // Before and after runs average per run.
        let mean = RawXadd::mean(
            Some(raw_with(2e-6, 1e-6, 1.0)),
            Some(raw_with(4e-6, 3e-6, 3.0)),
        )
        .expect("mean");
        assert_eq!(mean.per_sec, 2.0);
        assert!((mean.redis_cpu_per_op.expect("redis") - 3e-6).abs() < 1e-15);
        assert!((mean.client_cpu_per_op - 2e-6).abs() < 1e-15);
    }
}
