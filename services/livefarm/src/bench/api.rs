//! `livefarm bench api`: the Studio-compatible API against its own database.
//!
//! For SQLite and PostgreSQL each (a private server on a free loopback port): authenticated
//! `GET /api/stream/{id}` and `POST /api/stream` over HTTP/1.1 keep-alive with `concurrency`
//! clients, against the same reads and creates done directly through the store with as many
//! tasks in the same run (`ratio_vs_store`, `ratio_create_vs_store`: API rate / store rate).
//! Then the event path: an ingest `started` event on the bus -> the lifecycle consumer ->
//! `stream.started` queued -> signed and POSTed to a receiver on loopback, one event at a time,
//! p50/p99 from the bus write to the receiver's read.

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

use super::measure::{ratio, Machine};
use super::report::{print_json, Table};

#[derive(Debug, Args)]
pub struct ApiArgs {
    /// Print one JSON object on stdout instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Seconds each throughput phase runs.
    #[arg(long, default_value_t = 5.0)]
    pub seconds: f64,
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
}

/// Every figure for one database.
#[derive(Debug, Clone, Serialize)]
pub struct BackendReport {
    pub backend: &'static str,
    pub api_get: Phase,
    pub store_get: Phase,
    pub api_create: Phase,
    pub store_create: Phase,
    /// API reads per second / store reads per second.
    pub ratio_vs_store: Option<f64>,
    /// API creates per second / store creates per second.
    pub ratio_create_vs_store: Option<f64>,
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
    }
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

async fn backend(args: &ApiArgs, name: &'static str, url: &str) -> Result<BackendReport> {
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
    let ids = Arc::new(ids);

    let bus_name = format!("memory://bench-api-{name}-{}", std::process::id());
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
    let shutdown = Shutdown::new();
    let server = livefarm_api::start_with(
        &config,
        bus.clone(),
        storage,
        store.clone(),
        shutdown.clone(),
    )
    .await
    .context("starting the api")?;
    let base = format!("http://{}", server.local_addr());
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(args.concurrency)
        .build()?;
    let bearer = format!("Bearer {key}");

    // reads: the store, then the API, same ids in the same order
    let (s, t, i) = (store.clone(), tenant.id.clone(), ids.clone());
    let store_get = phase(args.concurrency, args.seconds, move |n| {
        let (s, t, i) = (s.clone(), t.clone(), i.clone());
        async move { matches!(s.stream(&t, &i[n % i.len()]).await, Ok(Some(_))) }
    })
    .await;
    let (c, b, k, i) = (client.clone(), base.clone(), bearer.clone(), ids.clone());
    let api_get = phase(args.concurrency, args.seconds, move |n| {
        let (c, b, k, i) = (c.clone(), b.clone(), k.clone(), i.clone());
        async move {
            let url = format!("{b}/api/stream/{}", i[n % i.len()]);
            match c.get(url).header("authorization", k).send().await {
                Ok(r) if r.status() == 200 => r.bytes().await.is_ok(),
                _ => false,
            }
        }
    })
    .await;
    // creates
    // the spec the API stores for `{"name": ...}`: the default ladder
    let mut ladder_spec = serde_json::Map::new();
    ladder_spec.insert(
        "profiles".to_owned(),
        serde_json::to_value(livefarm_api::studio::objects::default_ladder())?,
    );
    let (s, t) = (store.clone(), tenant.id.clone());
    let store_create = phase(args.concurrency, args.seconds, move |n| {
        let (s, t, ladder_spec) = (s.clone(), t.clone(), ladder_spec.clone());
        async move {
            let new = NewStream {
                name: format!("store-{n}"),
                spec: ladder_spec.clone(),
                ..NewStream::default()
            };
            s.create_stream(&t, new).await.is_ok()
        }
    })
    .await;
    let (c, b, k) = (client.clone(), base.clone(), bearer.clone());
    let api_create = phase(args.concurrency, args.seconds, move |n| {
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
    })
    .await;

    // the event path
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
            &tenant.id,
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
                &tenant.id,
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
    shutdown.trigger();
    server.wait().await.context("stopping the api")?;
    store.close().await;
    if api_get.ops == 0 || store_get.ops == 0 {
        bail!("a read phase completed nothing ({name})");
    }
    Ok(BackendReport {
        backend: name,
        ratio_vs_store: ratio(api_get.per_sec, store_get.per_sec),
        ratio_create_vs_store: ratio(api_create.per_sec, store_create.per_sec),
        api_get,
        store_get,
        api_create,
        store_create,
        webhook_p50_ms: percentile(&latencies, 50.0),
        webhook_p99_ms: percentile(&latencies, 99.0),
        webhook_events: latencies.len(),
    })
}

/// How one table row reads its cell from a backend's report.
type Figure = Box<dyn Fn(&BackendReport) -> String>;

pub fn run(args: ApiArgs) -> Result<()> {
    if args.concurrency == 0 || args.streams == 0 || args.seconds <= 0.0 {
        return Err(super::usage(
            "--concurrency, --streams and --seconds must be positive",
        ));
    }
    let machine = Machine::detect();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let reports = runtime.block_on(async {
        let dir = tempfile::tempdir()?;
        let sqlite = format!("sqlite://{}", dir.path().join("bench.db").display());
        let mut reports = vec![backend(&args, "sqlite", &sqlite).await?];
        if !args.sqlite_only {
            let pg = livefarm_store::testing::PgServer::start().context(
                "PostgreSQL server binaries not found (apt-get install postgresql-15, or --sqlite-only)",
            )?;
            let url = pg.fresh_database("bench").await;
            reports.push(backend(&args, "postgres", &url).await?);
        }
        anyhow::Ok(reports)
    })?;
    if args.json {
        return print_json(&serde_json::json!({
            "bench": "api",
            "machine": machine,
            "seconds": args.seconds,
            "concurrency": args.concurrency,
            "backends": reports,
            "ratio_vs_store": reports[0].ratio_vs_store,
        }));
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
            "ratio_vs_store",
            Box::new(|r| super::report::fmt_opt(r.ratio_vs_store)),
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
