//! `livefarm bench ...`: each benchmark measures Livefarm against a baseline in the same run and
//! prints ratios (`--json` prints one JSON object on stdout; progress goes to stderr).

mod all;
mod api;
mod capacity;
mod engine;
mod ffmpeg;
mod ladder;
mod latency;
mod measure;
mod report;
mod tickets;

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use livefarm::UsageError;

use self::measure::{Figures, LoadAverage, Machine};
use self::report::{fmt_opt, print_json, Table};

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// One stream through the Studio default ladder: Livefarm in-process against the ffmpeg CLI
    /// per segment and over the whole source, identical x264 settings.
    Ladder(ladder::LadderArgs),
    /// Concurrent streams a machine keeps up with (livepeer_bench's method), Livefarm against
    /// concurrent ffmpeg CLI processes.
    Capacity(capacity::CapacityArgs),
    /// Payment ticket validation against raw signature recovery: CPU time per operation over
    /// alternating rounds, and with --instructions callgrind's instruction counts.
    Tickets(tickets::TicketsArgs),
    /// Job bus round trips against redis-benchmark's raw XADD rate.
    Bus(BusArgs),
    /// Live latency over RTMP: last frame in to every rendition listed, against the
    /// transcode time of the same segment.
    Latency(latency::LatencyArgs),
    /// The Studio-compatible API on SQLite and PostgreSQL: authenticated stream reads and
    /// creates against the same done through the store, and bus event -> signed webhook
    /// latency.
    Api(api::ApiArgs),
    /// Chain indexer backfill of a generated dev chain (anvil) against a plain eth_getLogs
    /// loop over the same node.
    Indexer(IndexerArgs),
    /// Every bench above, each in its own process; with --json one object holding each
    /// bench's figures under its name.
    All(all::AllArgs),
}

#[derive(Debug, Args)]
pub struct IndexerArgs {
    /// Print one JSON object on stdout instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Blocks to generate.
    #[arg(long, default_value_t = 10_000)]
    pub blocks: u64,
    /// Events to generate, spread over the blocks.
    #[arg(long, default_value_t = 50_000)]
    pub events: u64,
    /// Rounds, each the plain eth_getLogs loop then the indexer's backfill.
    #[arg(long, default_value_t = 5)]
    pub rounds: u32,
}

#[derive(Debug, Args)]
pub struct BusArgs {
    /// Print one JSON object on stdout instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Bus to measure (`redis://...` or `memory://...`); default: a private redis-server on a
    /// free loopback port.
    #[arg(long)]
    pub redis_url: Option<String>,
    /// Producers in the throughput phase (the raw XADD baseline uses as many clients).
    #[arg(long, default_value_t = 4)]
    pub producers: usize,
    /// Jobs per pipelined publish in the throughput phase (the baseline uses the same `-P`).
    #[arg(long, default_value_t = 16)]
    pub batch: usize,
    /// Consumers of the one group in the throughput phase; default: one per core.
    #[arg(long)]
    pub consumers: Option<usize>,
    /// Throughput rounds (each between two raw XADD runs); the median round is reported.
    #[arg(long, default_value_t = 5)]
    pub rounds: usize,
}

pub fn run(command: BenchCommand) -> Result<()> {
    match command {
        BenchCommand::Ladder(args) => ladder::run(args),
        BenchCommand::Capacity(args) => capacity::run(args),
        BenchCommand::Tickets(args) => tickets::run(args),
        BenchCommand::Bus(args) => bus(args),
        BenchCommand::Latency(args) => latency::run(args),
        BenchCommand::Indexer(args) => indexer(args),
        BenchCommand::Api(args) => api::run(args),
        BenchCommand::All(args) => all::run(args),
    }
}

fn usage(message: impl Into<String>) -> anyhow::Error {
    anyhow::Error::new(UsageError(message.into()))
}

fn validate_preset(preset: &str) -> Result<()> {
    if ffmpeg::X264_PRESETS.contains(&preset) {
        Ok(())
    } else {
        Err(usage(format!(
            "--preset: {preset:?} is not an x264 preset ({})",
            ffmpeg::X264_PRESETS.join(", ")
        )))
    }
}

/// Where a bench writes its media: `--keep DIR`, or a temporary directory removed at the end.
struct WorkDir {
    path: PathBuf,
    _temp: Option<tempfile::TempDir>,
}

impl WorkDir {
    fn new(keep: Option<&Path>) -> Result<Self> {
        match keep {
            Some(dir) => {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("creating {}", dir.display()))?;
                Ok(WorkDir {
                    path: dir.to_path_buf(),
                    _temp: None,
                })
            }
            None => {
                let temp = tempfile::Builder::new()
                    .prefix("livefarm-bench-")
                    .tempdir()
                    .context("creating a temporary directory")?;
                Ok(WorkDir {
                    path: temp.path().to_path_buf(),
                    _temp: Some(temp),
                })
            }
        }
    }

    fn path(&self) -> &Path {
        &self.path
    }
}

fn bus(args: BusArgs) -> Result<()> {
    let machine = Machine::detect();
    let options = livefarm::bus_bench::BenchOptions {
        url: args.redis_url.clone(),
        producers: args.producers.max(1),
        publish_batch: args.batch.max(1),
        consumers: args
            .consumers
            .unwrap_or_else(livefarm::bus_bench::default_consumers)
            .max(1),
        throughput_rounds: args.rounds.max(1),
        ..Default::default()
    };
    tracing::info!(
        url = options.url.as_deref().unwrap_or("own redis-server"),
        "measuring the job bus"
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let report = runtime
        .block_on(livefarm::bus_bench::run(options))
        .context("bus benchmark")?;
    runtime.shutdown_timeout(Duration::from_secs(2));
    if args.json {
        let mut value = serde_json::to_value(&report)?;
        if let Some(object) = value.as_object_mut() {
            object.insert("bench".to_string(), "bus".into());
            object.insert("machine".to_string(), serde_json::to_value(&machine)?);
        }
        return print_json(&value);
    }
    println!(
        "bus bench: {} backend{}, {:.1} s",
        report.backend,
        if report.own_server {
            " (own redis-server)"
        } else {
            ""
        },
        report.wall_seconds
    );
    let mut table = Table::new(&["phase", "jobs", "jobs/s", "p50 ms", "p99 ms"]);
    for phase in &report.in_flight {
        table.row(vec![
            format!("{} in flight", phase.in_flight),
            phase.jobs.to_string(),
            format!("{:.0}", phase.jobs_per_sec),
            format!("{:.3}", phase.p50_ms),
            format!("{:.3}", phase.p99_ms),
        ]);
    }
    let paced = &report.paced;
    table.row(vec![
        format!("paced {}/s", paced.target_per_sec),
        format!("{}/{}", paced.jobs, paced.published),
        format!("{:.0}", paced.achieved_per_sec),
        format!("{:.3}", paced.p50_ms),
        format!("{:.3}", paced.p99_ms),
    ]);
    let throughput = &report.throughput;
    table.row(vec![
        format!(
            "throughput {}x{} -> {}x{}",
            throughput.producers,
            throughput.publish_batch,
            throughput.consumers,
            throughput.read_count
        ),
        throughput.acked.to_string(),
        format!("{:.0}", throughput.jobs_per_sec),
        "-".to_string(),
        "-".to_string(),
    ]);
    table.print();
    println!();
    let raw = report.raw_xadd.as_ref().map_or_else(
        || "n/a".to_string(),
        |raw| {
            format!(
                "{:.0} (redis-benchmark -c {} -P {})",
                raw.per_sec, raw.clients, raw.pipeline
            )
        },
    );
    println!("raw_xadd_per_sec:   {raw}");
    for name in [
        "ratio_cpu_vs_raw_xadd",
        "ratio_redis_cpu_vs_raw_xadd",
        "ratio_vs_raw_xadd",
    ] {
        let figure = report.figures.get(name);
        let spread = figure
            .and_then(|f| f.stats.as_ref())
            .map_or_else(String::new, |s| {
                format!(
                    " (rounds {:.3}..{:.3}, stable {})",
                    s.spread.min, s.spread.max, s.spread.stable
                )
            });
        println!(
            "{name}:{:>w$}{}{spread}",
            "",
            fmt_opt(figure.and_then(|f| f.value)),
            w = 28 - name.len()
        );
    }
    for error in report.figures.errors() {
        println!("measurement error: {error}");
    }
    println!(
        "exactly once:       {} (published {}, acked {}, pending {})",
        throughput.exactly_once, throughput.published, throughput.acked, throughput.pending_after
    );
    let reclaim = &report.reclaim;
    println!(
        "redelivery:         {}/{} jobs after at most {:.1} ms (deadline {:.0} ms + poll {:.0} ms = bound {:.0} ms)",
        reclaim.redelivered,
        reclaim.jobs,
        reclaim.redelivery_ms_max,
        reclaim.reclaim_deadline_ms,
        reclaim.poll_interval_ms,
        reclaim.redelivery_bound_ms
    );
    for note in &report.notes {
        println!("note: {note}");
    }
    Ok(())
}

fn indexer(args: IndexerArgs) -> Result<()> {
    let machine = Machine::detect();
    let load_before = LoadAverage::now();
    let options = livefarm_indexer::bench::BenchOptions {
        blocks: args.blocks.max(1),
        events: args.events,
        runs: args.rounds.max(1),
        ..Default::default()
    };
    eprintln!(
        "indexer: generating {} blocks with {} events on anvil (needs scripts/install-chain-tools.sh)",
        options.blocks, options.events
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let report = runtime
        .block_on(livefarm_indexer::bench::bench(options))
        .context("indexer benchmark")?;
    eprintln!(
        "indexer: measuring params expiry -> confirmed redemption (redeemer on anvil and redis)"
    );
    let redemption = runtime
        .block_on(livefarm_redeemer::bench::run(
            livefarm_redeemer::bench::BenchOptions::default(),
        ))
        .context("redemption benchmark")?;
    let mut value = serde_json::to_value(&report)?;
    // Both readers wait on the same anvil: the work is anvil's and the loop's I/O, so the
    // interleaved wall-clock rounds are the figure (no CPU-time ratio for this bench).
    let mut figures = Figures::default();
    figures.set_headline("ratio_vs_getlogs");
    figures.add("ratio_vs_getlogs", &report.ratio_vs_getlogs_rounds, false);
    if let Some(object) = value.as_object_mut() {
        object.remove("ratio_vs_getlogs");
        object.remove("ratio_vs_getlogs_rounds");
        if let serde_json::Value::Object(figures) = serde_json::to_value(&figures)? {
            object.extend(figures);
        }
        object.insert(
            "load_average_before".into(),
            serde_json::to_value(load_before)?,
        );
        object.insert(
            "load_average_after".into(),
            serde_json::to_value(LoadAverage::now())?,
        );
        object.insert("bench".to_string(), "indexer".into());
        object.insert(
            "redeem_expiry_to_confirmed_median_ms".to_string(),
            redemption.median_ms.into(),
        );
        object.insert("redemption".to_string(), serde_json::to_value(&redemption)?);
        object.insert("machine".to_string(), serde_json::to_value(&machine)?);
    }
    if args.json {
        return print_json(&value);
    }
    let mut table = Table::new(&["figure", "value"]);
    if let Some(object) = value.as_object() {
        for (key, v) in object {
            table.row(vec![key.clone(), v.to_string()]);
        }
    }
    table.print();
    Ok(())
}
