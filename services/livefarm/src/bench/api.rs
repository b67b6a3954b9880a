//! `livefarm bench api`: the Studio-compatible API against its own database.
//!
//! For SQLite and PostgreSQL each (a private server on a free loopback port): authenticated
//! `GET /api/stream/{id}` and `POST /api/stream` over HTTP/1.1 keep-alive with `concurrency`
//! clients, against the same reads and creates done directly through the store with as many
//! tasks in the same run. Then the event path: an ingest `started` event on the bus -> the
//! lifecycle consumer -> `stream.started` queued -> signed and POSTed to a receiver on
//! loopback, one event at a time, p50/p99 from the bus write to the receiver's read.
//!
//! Two figures answer "do HTTP, auth and JSON cost no more than the database?" (goal >= 0.5):
//!
//! - `ratio_cpu_vs_store` (the headline): store CPU seconds per read / API *server* CPU
//!   seconds per request. The API server runs on a tokio runtime of its own whose threads are
//!   named `api-server-N`; the load generator (and the store baseline) runs on another,
//!   `bench-client-N`. CPU is summed per thread by name from `/proc/self/task`: a read through
//!   the store costs the `bench-client` threads plus the database (SQLite's
//!   `sqlx-sqlite-worker` threads, or the PostgreSQL server processes); a request costs the
//!   `api-server` threads plus the database, and the HTTP client's own cost is left out.
//!   That is what a deployment pays per request, wherever its clients run.
//! - `ratio_vs_store` (beside it): requests per wall second / store reads per wall second in
//!   the same run. The client shares the process and the 2 cores with the server, so roughly
//!   half the machine goes to generating load: on a 2-core machine this figure is about half
//!   what the server alone could do, and it moves with whatever else runs.
//!
//! Store and API read phases alternate (`--rounds`, A B A B ...); each figure is the median
//! round with its spread. The API may legitimately cache what the store reads, so neither
//! ratio has a physical bound.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use clap::Args;
use livefarm_bus::{Headers, JobBus};
use livefarm_jobs::{StreamEvent, StreamEventKind, STREAM_EVENTS};
use livefarm_runtime::Shutdown;
use livefarm_store::{NewStream, NewWebhook, Store, StoreOptions};
use serde::Serialize;
use serde_json::Value;
use tokio::sync::oneshot;

use super::measure::{
    descendants_cpu_seconds, ratio, Figures, LoadAverage, Machine, ThreadSnapshot,
};
use super::report::{print_json, Table};

/// Thread-name prefixes (at most 15 bytes reach `/proc/.../comm`).
const SERVER_THREADS: &str = "api-server-";
const CLIENT_THREADS: &str = "bench-client-";
const SQLITE_THREADS: &str = "sqlx-sqlite";

#[derive(Debug, Args)]
pub struct ApiArgs {
    /// Print one JSON object on stdout instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Seconds each throughput phase runs.
    #[arg(long, default_value_t = 3.0)]
    pub seconds: f64,
    /// Alternating store and API read rounds.
    #[arg(long, default_value_t = 5)]
    pub rounds: usize,
    /// Concurrent clients (and store tasks in the baseline).
    #[arg(long, default_value_t = 16)]
    pub concurrency: usize,
    /// Streams created before the read phases.
    #[arg(long, default_value_t = 200)]
    pub streams: usize,
    /// Webhook deliveries timed (one at a time).
    #[arg(long, default_value_t = 200)]
    pub events: usize,
    /// Measure SQLite only (no PostgreSQL server is started).
    #[arg(long)]
    pub sqlite_only: bool,
}

/// Rate and latency of one phase.
#[derive(Debug, Clone, Serialize)]
pub struct Phase {
    pub ops: u64,
    pub per_sec: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub errors: u64,
    /// CPU seconds of the measured side (see the module comment), 0 when not measured.
    pub cpu_s: f64,
    /// `cpu_s` per operation, microseconds.
    pub cpu_us_per_op: f64,
    /// CPU seconds of the HTTP client (API phases only; not counted in the ratio).
    pub client_cpu_s: f64,
}

/// One store read phase and the API read phase after it.
#[derive(Debug, Clone, Serialize)]
pub struct ReadRound {
    pub store: Phase,
    pub api: Phase,
}

/// Every figure for one database.
#[derive(Debug, Clone, Serialize)]
pub struct BackendReport {
    pub backend: &'static str,
    /// The median round's read phases.
    pub api_get: Phase,
    pub store_get: Phase,
    pub read_rounds: Vec<ReadRound>,
    pub api_create: Phase,
    pub store_create: Phase,
    /// `ratio_cpu_vs_store` (headline) and `ratio_vs_store`, medians of the read rounds.
    #[serde(flatten)]
    pub figures: Figures,
    /// API creates per second / store creates per second (one round each).
    pub ratio_create_vs_store: Option<f64>,
    /// Store CPU per create / API server CPU per create.
    pub ratio_cpu_create_vs_store: Option<f64>,
    /// Bus event -> signed webhook received.
    pub webhook_p50_ms: f64,
    pub webhook_p99_ms: f64,
    pub webhook_events: usize,
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1].as_secs_f64() * 1000.0
}

/// Runs `op` from `concurrency` tasks for `seconds`; counts successes and their latencies.
async fn phase<F, Fut>(concurrency: usize, seconds: f64, op: F) -> Phase
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    let op = Arc::new(op);
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for worker in 0..concurrency {
        let op = op.clone();
        tasks.spawn(async move {
            let mut latencies = Vec::new();
            let mut errors = 0u64;
            let mut i = worker;
            while Instant::now() < deadline {
                let t0 = Instant::now();
                if op(i).await {
                    latencies.push(t0.elapsed());
                } else {
                    errors += 1;
                }
                i += concurrency;
            }
            (latencies, errors)
        });
    }
    let mut latencies = Vec::new();
    let mut errors = 0;
    while let Some(joined) = tasks.join_next().await {
        if let Ok((mut l, e)) = joined {
            latencies.append(&mut l);
            errors += e;
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    latencies.sort();
    Phase {
        ops: latencies.len() as u64,
        per_sec: latencies.len() as f64 / elapsed,
        p50_ms: percentile(&latencies, 50.0),
        p99_ms: percentile(&latencies, 99.0),
        errors,
        cpu_s: 0.0,
        cpu_us_per_op: 0.0,
        client_cpu_s: 0.0,
    }
}

/// Which side a phase's CPU is counted for.
#[derive(Clone, Copy)]
enum Counted {
    /// The store called from the client runtime: client threads + the database.
    Store,
    /// The API server: server threads + the database (the HTTP client apart).
    Server,
}

/// CPU readings around a phase.
struct CpuMark {
    threads: ThreadSnapshot,
    database: f64,
}

impl CpuMark {
    fn take(pg: bool) -> Result<Self> {
        Ok(CpuMark {
            threads: ThreadSnapshot::take().context("reading /proc/self/task")?,
            // PostgreSQL runs as processes this one started (directly or through su).
            database: if pg {
                descendants_cpu_seconds(std::process::id(), "postgres")
                    .context("reading the PostgreSQL processes' CPU")?
            } else {
                0.0
            },
        })
    }

    /// Puts the CPU used since `self` into `phase`.
    fn charge(&self, phase: &mut Phase, counted: Counted, pg: bool) -> Result<()> {
        let now = CpuMark::take(pg)?;
        let database =
            now.threads.since(&self.threads, SQLITE_THREADS) + now.database - self.database;
        let client = now.threads.since(&self.threads, CLIENT_THREADS);
        let server = now.threads.since(&self.threads, SERVER_THREADS);
        phase.cpu_s = match counted {
            Counted::Store => client + database,
            Counted::Server => server + database,
        };
        if let Counted::Server = counted {
            phase.client_cpu_s = client;
        }
        phase.cpu_us_per_op = if phase.ops > 0 {
            phase.cpu_s / phase.ops as f64 * 1e6
        } else {
            0.0
        };
        Ok(())
    }
}

/// Store CPU per operation / server CPU per operation.
fn cpu_ratio(store: &Phase, api: &Phase) -> Option<f64> {
    ratio(store.cpu_us_per_op, api.cpu_us_per_op).filter(|_| store.cpu_s > 0.0)
}

/// A multi-threaded runtime whose threads (workers and blocking) are named `prefix<N>`.
fn named_runtime(prefix: &'static str) -> Result<tokio::runtime::Runtime> {
    let next = std::sync::atomic::AtomicUsize::new(0);
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name_fn(move || {
            let n = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            format!("{prefix}{n}")
        })
        .build()
        .with_context(|| format!("starting the {prefix}* runtime"))
}

/// The two runtimes of the bench.
struct Runtimes {
    server: tokio::runtime::Runtime,
    client: tokio::runtime::Runtime,
}

/// Webhook bodies the receiver got, by the stream id they name.
type Waiters = Arc<Mutex<HashMap<String, oneshot::Sender<Instant>>>>;

async fn receive(State(waiters): State<Waiters>, _headers: HeaderMap, body: Bytes) -> StatusCode {
    let at = Instant::now();
    let stream_id = serde_json::from_slice::<Value>(&body).ok().and_then(|v| {
        v.pointer("/stream/id")
            .and_then(Value::as_str)
            .map(str::to_owned)
    });
    if let Some(id) = stream_id {
        let waiter = waiters
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&id);
        if let Some(waiter) = waiter {
            let _ = waiter.send(at);
        }
    }
    StatusCode::NO_CONTENT
}

fn backend(args: &ApiArgs, rt: &Runtimes, name: &'static str, url: &str) -> Result<BackendReport> {
    let pg = name == "postgres";
    // Each runtime opens its own pool, so every connection's I/O is driven by the threads
    // whose CPU is charged for it.
    let (store, tenant, key, ids) = rt.client.block_on(async {
        let store = Store::open(url, &StoreOptions::default())
            .await
            .with_context(|| format!("opening the {name} store"))?;
        let tenant = store.create_tenant("bench").await?;
        let key = store.create_api_key(&tenant.id, "bench").await?.secret;
        let mut ids = Vec::with_capacity(args.streams);
        for i in 0..args.streams {
            let stream = store
                .create_stream(
                    &tenant.id,
                    NewStream {
                        name: format!("bench-{i}"),
                        ..NewStream::default()
                    },
                )
                .await?;
            ids.push(stream.id);
        }
        anyhow::Ok((store, tenant, key, Arc::new(ids)))
    })?;

    let bus_name = format!("memory://bench-api-{name}-{}", std::process::id());
    let shutdown = Shutdown::new();
    let (server, bus) = rt.server.block_on(async {
        let server_store = Store::open(url, &StoreOptions::default())
            .await
            .with_context(|| format!("opening the api's {name} store"))?;
        let bus: Arc<dyn JobBus> = livefarm_bus::connect(&bus_name).await?;
        let storage = livefarm_storage::Storage::from_url("memory://").await?;
        let mut config = livefarm_api::ApiConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            admin_listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            bus_url: bus_name.clone(),
            database_url: url.to_owned(),
            ..livefarm_api::ApiConfig::default()
        };
        config.webhooks.allow_private_targets = true;
        let server = livefarm_api::start_with(
            &config,
            bus.clone(),
            storage,
            server_store,
            shutdown.clone(),
        )
        .await
        .context("starting the api")?;
        anyhow::Ok((server, bus))
    })?;
    let base = format!("http://{}", server.local_addr());
    let client = rt.client.block_on(async {
        reqwest::Client::builder()
            .pool_max_idle_per_host(args.concurrency)
            .build()
    })?;
    let bearer = format!("Bearer {key}");

    // reads: store and API alternate, same ids in the same order
    let mut rounds = Vec::with_capacity(args.rounds);
    for round in 0..args.rounds {
        let (s, t, i) = (store.clone(), tenant.id.clone(), ids.clone());
        let mark = CpuMark::take(pg)?;
        let mut store_get = rt
            .client
            .block_on(phase(args.concurrency, args.seconds, move |n| {
                let (s, t, i) = (s.clone(), t.clone(), i.clone());
                async move { matches!(s.stream(&t, &i[n % i.len()]).await, Ok(Some(_))) }
            }));
        mark.charge(&mut store_get, Counted::Store, pg)?;
        let (c, b, k, i) = (client.clone(), base.clone(), bearer.clone(), ids.clone());
        let mark = CpuMark::take(pg)?;
        let mut api_get = rt
            .client
            .block_on(phase(args.concurrency, args.seconds, move |n| {
                let (c, b, k, i) = (c.clone(), b.clone(), k.clone(), i.clone());
                async move {
                    let url = format!("{b}/api/stream/{}", i[n % i.len()]);
                    match c.get(url).header("authorization", k).send().await {
                        Ok(r) if r.status() == 200 => r.bytes().await.is_ok(),
                        _ => false,
                    }
                }
            }));
        mark.charge(&mut api_get, Counted::Server, pg)?;
        eprintln!(
            "api {name} round {round}: store {:.0}/s {:.1} us cpu, api {:.0}/s {:.1} us server cpu",
            store_get.per_sec, store_get.cpu_us_per_op, api_get.per_sec, api_get.cpu_us_per_op
        );
        if api_get.ops == 0 || store_get.ops == 0 {
            bail!("a read phase completed nothing ({name}, round {round})");
        }
        rounds.push(ReadRound {
            store: store_get,
            api: api_get,
        });
    }
    let mut figures = Figures::default();
    figures.set_headline("ratio_cpu_vs_store");
    let cpu_rounds: Vec<f64> = rounds
        .iter()
        .filter_map(|r| cpu_ratio(&r.store, &r.api))
        .collect();
    let wall_rounds: Vec<f64> = rounds
        .iter()
        .filter_map(|r| ratio(r.api.per_sec, r.store.per_sec))
        .collect();
    figures.add("ratio_cpu_vs_store", &cpu_rounds, false);
    figures.add("ratio_vs_store", &wall_rounds, false);
    // The round whose CPU ratio is the median, for the per-phase figures.
    let mut order: Vec<usize> = (0..rounds.len()).collect();
    order.sort_by(|a, b| {
        let key = |i: &usize| cpu_ratio(&rounds[*i].store, &rounds[*i].api).unwrap_or(0.0);
        key(a).total_cmp(&key(b))
    });
    let median_round = rounds[order[order.len() / 2]].clone();

    // creates
    // the spec the API stores for `{"name": ...}`: the default ladder
    let mut ladder_spec = serde_json::Map::new();
    ladder_spec.insert(
        "profiles".to_owned(),
        serde_json::to_value(livefarm_api::studio::objects::default_ladder())?,
    );
    let (s, t) = (store.clone(), tenant.id.clone());
    let mark = CpuMark::take(pg)?;
    let mut store_create = rt
        .client
        .block_on(phase(args.concurrency, args.seconds, move |n| {
            let (s, t, ladder_spec) = (s.clone(), t.clone(), ladder_spec.clone());
            async move {
                let new = NewStream {
                    name: format!("store-{n}"),
                    spec: ladder_spec.clone(),
                    ..NewStream::default()
                };
                s.create_stream(&t, new).await.is_ok()
            }
        }));
    mark.charge(&mut store_create, Counted::Store, pg)?;
    let (c, b, k) = (client.clone(), base.clone(), bearer.clone());
    let mark = CpuMark::take(pg)?;
    let mut api_create = rt
        .client
        .block_on(phase(args.concurrency, args.seconds, move |n| {
            let (c, b, k) = (c.clone(), b.clone(), k.clone());
            async move {
                let body = format!("{{\"name\":\"api-{n}\"}}");
                match c
                    .post(format!("{b}/api/stream"))
                    .header("authorization", k)
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await
                {
                    Ok(r) if r.status() == 201 => r.bytes().await.is_ok(),
                    _ => false,
                }
            }
        }));
    mark.charge(&mut api_create, Counted::Server, pg)?;

    // the event path
    let latencies = rt.client.block_on(webhook_latencies(
        args,
        &store,
        &tenant.id,
        bus.as_ref(),
        &shutdown,
    ))?;
    shutdown.trigger();
    rt.server
        .block_on(server.wait())
        .context("stopping the api")?;
    rt.client.block_on(store.close());
    Ok(BackendReport {
        backend: name,
        ratio_create_vs_store: ratio(api_create.per_sec, store_create.per_sec),
        ratio_cpu_create_vs_store: cpu_ratio(&store_create, &api_create),
        api_get: median_round.api,
        store_get: median_round.store,
        read_rounds: rounds,
        figures,
        api_create,
        store_create,
        webhook_p50_ms: percentile(&latencies, 50.0),
        webhook_p99_ms: percentile(&latencies, 99.0),
        webhook_events: latencies.len(),
    })
}

/// Bus event -> signed webhook received, one event at a time.
async fn webhook_latencies(
    args: &ApiArgs,
    store: &Store,
    tenant: &str,
    bus: &dyn JobBus,
    shutdown: &Shutdown,
) -> Result<Vec<Duration>> {
    let waiters: Waiters = Arc::default();
    let receiver = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
    let receiver_addr = receiver.local_addr()?;
    let app = axum::Router::new()
        .route("/hook", post(receive))
        .with_state(waiters.clone());
    let stop = shutdown.clone();
    tokio::spawn(async move {
        axum::serve(receiver, app)
            .with_graceful_shutdown(async move { stop.triggered().await })
            .await
    });
    store
        .create_webhook(
            tenant,
            &NewWebhook {
                name: "bench".to_owned(),
                url: format!("http://{receiver_addr}/hook"),
                events: vec!["stream.started".to_owned()],
                shared_secret: Some("bench-secret".to_owned()),
                stream_id: None,
                project_id: None,
            },
        )
        .await?;
    let mut latencies = Vec::with_capacity(args.events);
    for n in 0..args.events {
        let stream = store
            .create_stream(
                tenant,
                NewStream {
                    name: format!("event-{n}"),
                    ..NewStream::default()
                },
            )
            .await?;
        let (tx, rx) = oneshot::channel();
        waiters
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(stream.id.clone(), tx);
        let event = StreamEvent {
            event: StreamEventKind::Started,
            stream_id: stream.id.clone(),
            session_id: livefarm_store::ids::uuid_v4()?,
            protocol: "rtmp".to_owned(),
            first_seq: 0,
            next_seq: 0,
            segments: 0,
            duration_ms: 0,
            discontinuity: false,
            at_ms: livefarm_jobs::now_ms(),
        };
        let payload = serde_json::to_vec(&event)?;
        let sent = Instant::now();
        bus.publish(STREAM_EVENTS, &payload, &Headers::new())
            .await?;
        let received = tokio::time::timeout(Duration::from_secs(30), rx)
            .await
            .context("no webhook within 30 s")?
            .context("receiver gone")?;
        latencies.push(received.saturating_duration_since(sent));
    }
    latencies.sort();
    Ok(latencies)
}

/// How one table row reads its cell from a backend's report.
type Figure = Box<dyn Fn(&BackendReport) -> String>;

pub fn run(args: ApiArgs) -> Result<()> {
    if args.concurrency == 0 || args.streams == 0 || args.seconds <= 0.0 {
        return Err(super::usage(
            "--concurrency, --streams and --seconds must be positive",
        ));
    }
    if args.rounds == 0 {
        return Err(super::usage("--rounds must be positive"));
    }
    let machine = Machine::detect();
    let load_before = LoadAverage::now();
    let rt = Runtimes {
        server: named_runtime(SERVER_THREADS)?,
        client: named_runtime(CLIENT_THREADS)?,
    };
    let dir = tempfile::tempdir()?;
    let sqlite = format!("sqlite://{}", dir.path().join("bench.db").display());
    let mut reports = vec![backend(&args, &rt, "sqlite", &sqlite)?];
    if !args.sqlite_only {
        let pg = livefarm_store::testing::PgServer::start().context(
            "PostgreSQL server binaries not found (apt-get install postgresql-15, or --sqlite-only)",
        )?;
        let url = rt.client.block_on(pg.fresh_database("bench"));
        reports.push(backend(&args, &rt, "postgres", &url)?);
    }
    if args.json {
        // The headline figures are SQLite's (`livefarm up`'s database); PostgreSQL's sit in
        // `backends` and as `postgres_*`.
        let mut value = serde_json::json!({
            "bench": "api",
            "machine": machine,
            "seconds": args.seconds,
            "rounds": args.rounds,
            "concurrency": args.concurrency,
            "backends": reports,
            "load_average_before": load_before,
            "load_average_after": LoadAverage::now(),
        });
        if let (Some(object), Value::Object(figures)) = (
            value.as_object_mut(),
            serde_json::to_value(&reports[0].figures)?,
        ) {
            object.extend(figures);
            if let Some(pg) = reports.get(1) {
                for name in ["ratio_cpu_vs_store", "ratio_vs_store"] {
                    object.insert(format!("postgres_{name}"), pg.figures.value(name).into());
                }
            }
        }
        return print_json(&value);
    }
    let mut table = Table::new(&["figure", "sqlite", "postgres"]);
    let cell = |i: usize, f: &dyn Fn(&BackendReport) -> String| {
        reports.get(i).map_or_else(|| "-".to_owned(), f)
    };
    let rows: Vec<(&str, Figure)> = vec![
        (
            "GET /api/stream/{id} /s",
            Box::new(|r| format!("{:.0}", r.api_get.per_sec)),
        ),
        ("  p99 ms", Box::new(|r| format!("{:.2}", r.api_get.p99_ms))),
        (
            "store read /s",
            Box::new(|r| format!("{:.0}", r.store_get.per_sec)),
        ),
        (
            "  server cpu us/request",
            Box::new(|r| format!("{:.1}", r.api_get.cpu_us_per_op)),
        ),
        (
            "  store cpu us/read",
            Box::new(|r| format!("{:.1}", r.store_get.cpu_us_per_op)),
        ),
        (
            "ratio_cpu_vs_store (headline)",
            Box::new(|r| super::report::fmt_opt(r.figures.value("ratio_cpu_vs_store"))),
        ),
        (
            "  rounds min..max",
            Box::new(|r| {
                r.figures
                    .get("ratio_cpu_vs_store")
                    .and_then(|f| f.stats.as_ref())
                    .map_or_else(
                        || "-".to_owned(),
                        |s| format!("{:.3}..{:.3}", s.spread.min, s.spread.max),
                    )
            }),
        ),
        ("  stable", Box::new(|r| r.figures.stable().to_string())),
        (
            "ratio_vs_store (wall)",
            Box::new(|r| super::report::fmt_opt(r.figures.value("ratio_vs_store"))),
        ),
        (
            "POST /api/stream /s",
            Box::new(|r| format!("{:.0}", r.api_create.per_sec)),
        ),
        (
            "  p99 ms",
            Box::new(|r| format!("{:.2}", r.api_create.p99_ms)),
        ),
        (
            "store create /s",
            Box::new(|r| format!("{:.0}", r.store_create.per_sec)),
        ),
        (
            "ratio_create_vs_store",
            Box::new(|r| super::report::fmt_opt(r.ratio_create_vs_store)),
        ),
        (
            "ratio_cpu_create_vs_store",
            Box::new(|r| super::report::fmt_opt(r.ratio_cpu_create_vs_store)),
        ),
        (
            "event -> webhook p50 ms",
            Box::new(|r| format!("{:.1}", r.webhook_p50_ms)),
        ),
        (
            "event -> webhook p99 ms",
            Box::new(|r| format!("{:.1}", r.webhook_p99_ms)),
        ),
    ];
    for (name, f) in &rows {
        table.row(vec![
            (*name).to_owned(),
            cell(0, f.as_ref()),
            cell(1, f.as_ref()),
        ]);
    }
    table.print();
    Ok(())
}
