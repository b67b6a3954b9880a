//! `livefarm bench bus`: round-trip latency and throughput of no-op jobs, compared with the
//! raw XADD rate `redis-benchmark` gets from the same server in the same run.
//!
//! A round trip is publish → consume → ack, timed from just before the publish to just after
//! the ack. The closed-loop phases keep 1, 10 and 100 jobs in flight (one task per job, each
//! publishing one job then consuming and acknowledging one); the paced phase publishes at a
//! fixed rate while a few consumers drain the stream.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::task::JoinSet;

use crate::server::{find_binary, RedisServer};
use crate::{BusError, BusOptions, Headers, JobBus};

/// Header carrying the publish time, in nanoseconds since the bench started.
const SENT_HEADER: &str = "bench-sent-ns";
const GROUP: &str = "bench";
/// The whole run is cut off after this, whatever the options say.
const RUN_LIMIT: Duration = Duration::from_secs(29);

/// What to measure and against which bus.
#[derive(Debug, Clone)]
pub struct BenchOptions {
    /// Bus URL (`redis://...` or `memory://...`); `None` starts a private `redis-server` on a
    /// free loopback port for the run.
    pub url: Option<String>,
    /// Duration of each measured phase (three closed-loop phases and one paced phase).
    pub phase: Duration,
    /// Jobs in flight in the closed-loop phases.
    pub in_flight: Vec<usize>,
    /// Publish rate of the paced phase, jobs per second.
    pub paced_rate: u32,
    /// Payload bytes per job.
    pub payload_size: usize,
    /// Requests `redis-benchmark` sends to measure the raw XADD rate.
    pub raw_xadd_requests: u64,
}

impl Default for BenchOptions {
    fn default() -> Self {
        Self {
            url: None,
            phase: Duration::from_millis(2500),
            in_flight: vec![1, 10, 100],
            paced_rate: 1000,
            payload_size: 64,
            raw_xadd_requests: 200_000,
        }
    }
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
    /// XADD per second from `redis-benchmark` (pipelined, 50 clients), when it could run.
    pub raw_xadd_per_sec: Option<f64>,
    /// Best closed-loop jobs per second divided by the raw XADD rate.
    pub ratio_vs_raw_xadd: Option<f64>,
    /// Anything that could not be measured, and why.
    pub notes: Vec<String>,
    /// Wall time of the whole run, seconds.
    pub wall_seconds: f64,
}

/// Runs the benchmark; the whole run stays under 30 seconds.
pub async fn run(opts: BenchOptions) -> Result<BenchReport, BusError> {
    match tokio::time::timeout(RUN_LIMIT, run_inner(opts)).await {
        Ok(report) => report,
        Err(_) => Err(BusError::Timeout(RUN_LIMIT)),
    }
}

async fn run_inner(opts: BenchOptions) -> Result<BenchReport, BusError> {
    let started = Instant::now();
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
    // A cap far above what one phase publishes, so trimming never drops unread jobs.
    let options = BusOptions {
        maxlen: Some(1_000_000),
        max_deliveries: 5,
    };
    let bus = crate::connect_with(&url, options).await?;
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
    let raw_xadd_per_sec = if is_redis {
        match raw_xadd(server.as_ref(), &url, &prefix, opts.raw_xadd_requests).await {
            Ok(rate) => Some(rate),
            Err(error) => {
                notes.push(format!("raw xadd rate not measured: {error}"));
                None
            }
        }
    } else {
        notes.push("raw xadd rate needs a redis bus".to_owned());
        None
    };
    let best = in_flight
        .iter()
        .map(|r| r.jobs_per_sec)
        .fold(0.0_f64, f64::max);
    let ratio_vs_raw_xadd = raw_xadd_per_sec
        .filter(|raw| *raw > 0.0)
        .map(|raw| best / raw);
    drop(bus);
    drop(server);
    Ok(BenchReport {
        backend: if is_redis { "redis" } else { "memory" }.to_owned(),
        own_server: opts.url.is_none(),
        in_flight,
        paced,
        raw_xadd_per_sec,
        ratio_vs_raw_xadd,
        notes,
        wall_seconds: started.elapsed().as_secs_f64(),
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
    let mut out = Vec::with_capacity(deliveries.len());
    for delivery in deliveries {
        bus.ack(stream, GROUP, delivery.id).await?;
        if let Some(rtt) = round_trip(&delivery.headers, base) {
            out.push(rtt);
        }
    }
    Ok(out)
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

/// Raw XADD rate of the same server, from `redis-benchmark`.
async fn raw_xadd(
    server: Option<&RedisServer>,
    url: &str,
    prefix: &str,
    requests: u64,
) -> Result<f64, BusError> {
    let binary = find_binary("redis-benchmark")
        .ok_or_else(|| BusError::Process("redis-benchmark not found on PATH".to_owned()))?;
    let stream = format!("{prefix}:raw-xadd");
    let mut cmd = tokio::process::Command::new(binary);
    match server {
        Some(server) => cmd.arg("-p").arg(server.port().to_string()),
        None => cmd.arg("-u").arg(url),
    };
    // redis-benchmark has no built-in XADD test, so it runs an explicit command.
    cmd.args(["-n", &requests.to_string(), "-P", "16", "-c", "50", "--csv"])
        .args(["XADD", &stream, "MAXLEN", "~", "10000", "*", "f", "v"])
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    let output = tokio::time::timeout(Duration::from_secs(10), cmd.output())
        .await
        .map_err(|_| BusError::Process("redis-benchmark ran longer than 10s".to_owned()))?
        .map_err(|e| BusError::Process(format!("cannot run redis-benchmark: {e}")))?;
    // Leave the target server as we found it.
    if let Ok(bus) = crate::connect(url).await {
        let _ = bus.delete_stream(&stream).await;
    }
    if !output.status.success() {
        return Err(BusError::Process(format!(
            "redis-benchmark failed with {}: {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        )));
    }
    parse_benchmark_csv(&String::from_utf8_lossy(&output.stdout)).ok_or_else(|| {
        BusError::Process("cannot read the rate from redis-benchmark output".to_owned())
    })
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
}
