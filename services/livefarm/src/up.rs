//! `livefarm up`: every service in one process on an in-process bus and a local storage
//! directory: RTMP, SRT and HTTP push ingest, the segmenter (no network hop between them), a
//! transcoder worker, HLS playback and the off-chain Livepeer orchestrator port. The control
//! plane's database is a SQLite file in the data directory (`livefarm.db`); the first start
//! makes a tenant and an API key, kept for the operator in `<data-dir>/api-key`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result};
use clap::Args;
use livefarm::api_key::{
    default_tenant, key_file, read_key_file, sqlite_url, studio_profiles, write_key_file,
    DEFAULT_DATA_DIR,
};
use livefarm_ingest::{AuthConfig, AuthMode, IngestConfig, LiveIngest};
use livefarm_runtime::Shutdown;
use livefarm_store::{NewStream, Store, StoreOptions, StreamRecord};
use livefarm_transcoder::TranscoderConfig;
use serde::{Deserialize, Serialize};

use crate::config::MediaConfig;

#[derive(Debug, Args)]
pub struct UpArgs {
    /// Where segments, renditions, the database (`livefarm.db`) and the API key file
    /// (`api-key`) are kept.
    #[arg(long, default_value = DEFAULT_DATA_DIR)]
    pub data_dir: PathBuf,
    /// HTTP push ingest (go-livepeer's `PUT /live/{stream}/{seq}.ts`).
    #[arg(long, default_value = "127.0.0.1:9935")]
    pub push_listen: SocketAddr,
    /// RTMP ingest (`rtmp://HOST/live/STREAM_KEY`).
    #[arg(long, default_value = "127.0.0.1:1935")]
    pub rtmp_listen: SocketAddr,
    /// SRT ingest (UDP; MPEG-TS, `streamid=live/STREAM_KEY`).
    #[arg(long, default_value = "127.0.0.1:8890")]
    pub srt_listen: SocketAddr,
    /// The ladder of the demo stream and of streams created without one: comma-separated
    /// preset names (default: Studio's ladder).
    #[arg(long, value_delimiter = ',')]
    pub live_presets: Vec<String>,
    /// Let any RTMP/SRT stream key publish (the key becomes the stream id) instead of only
    /// the keys of the streams in the database. For development.
    #[arg(long)]
    pub allow_any_key: bool,
    /// The Livepeer orchestrator port (go-livepeer broadcasters; TLS, off-chain).
    #[arg(long, default_value = "127.0.0.1:8935")]
    pub orchestrator_listen: SocketAddr,
    /// Do not open the orchestrator port.
    #[arg(long)]
    pub no_orchestrator: bool,
    /// HLS playback and the stream API.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub playback_listen: SocketAddr,
    /// Admin server (`/livez`, `/readyz`, `/metrics`) of the playback service.
    #[arg(long, default_value = "127.0.0.1:9090")]
    pub admin_listen: SocketAddr,
    /// Concurrent live streams the local worker transcodes.
    #[arg(long, default_value_t = 4)]
    pub max_streams: u32,
}

/// Everything one `livefarm up` process runs, with its addresses.
#[derive(Debug, Clone)]
pub struct UpPlan {
    /// Canonical data directory (storage under `objects/`, the database, the key file, the
    /// demo stream file).
    pub data_dir: PathBuf,
    pub bus_url: String,
    /// The control plane's database: `sqlite://<data-dir>/livefarm.db`.
    pub database_url: String,
    pub push_listen: SocketAddr,
    pub rtmp_listen: SocketAddr,
    pub srt_listen: SocketAddr,
    pub playback_listen: SocketAddr,
    pub admin_listen: SocketAddr,
    pub orchestrator_listen: Option<SocketAddr>,
    pub live_presets: Vec<String>,
    pub allow_any_key: bool,
    pub max_streams: u32,
    pub media: MediaConfig,
}

impl UpPlan {
    /// The plan of `args`, with the bus named after this process.
    pub fn from_args(args: &UpArgs, media: &MediaConfig) -> Result<UpPlan> {
        std::fs::create_dir_all(&args.data_dir)
            .with_context(|| format!("cannot create {}", args.data_dir.display()))?;
        let data_dir = args
            .data_dir
            .canonicalize()
            .with_context(|| format!("cannot resolve {}", args.data_dir.display()))?;
        // One database for the api (streams are created there) and ingest (keys are checked
        // there); one in-process bus for everything.
        let name = format!("livefarm-up-{}", std::process::id());
        Ok(UpPlan {
            database_url: sqlite_url(&data_dir),
            data_dir,
            bus_url: format!("memory://{name}"),
            push_listen: args.push_listen,
            rtmp_listen: args.rtmp_listen,
            srt_listen: args.srt_listen,
            playback_listen: args.playback_listen,
            admin_listen: args.admin_listen,
            orchestrator_listen: (!args.no_orchestrator).then_some(args.orchestrator_listen),
            live_presets: args.live_presets.clone(),
            allow_any_key: args.allow_any_key,
            max_streams: args.max_streams,
            media: media.clone(),
        })
    }
}

/// The running services of a plan.
pub struct Started {
    /// The stream announced to newcomers.
    pub demo: DemoStream,
    /// The operator's API key (also in `<data-dir>/api-key`).
    pub api_key: String,
    /// One task per service; the first to end should stop the others.
    pub tasks: tokio::task::JoinSet<Result<()>>,
}

/// Starts every service of `plan` in this process until `shutdown` fires.
pub async fn start_services(plan: &UpPlan, shutdown: &Shutdown) -> Result<Started> {
    let storage_url = format!("file://{}", plan.data_dir.join("objects").display());
    let any_port = SocketAddr::from(([127, 0, 0, 1], 0));
    let media = &plan.media;
    let worker = TranscoderConfig {
        bus_url: plan.bus_url.clone(),
        storage_url: storage_url.clone(),
        worker_id: "local".to_string(),
        max_sessions: plan.max_streams,
        accel: media.accel.clone(),
        gpus: media.gpus.clone(),
        max_sessions_per_gpu: media.max_sessions_per_gpu,
        x264_preset: media.x264_preset.clone(),
        grpc_listen: any_port,
        admin_listen: any_port,
        ..TranscoderConfig::default()
    };
    let ingest = IngestConfig {
        http_listen: plan.push_listen,
        admin_listen: any_port,
        bus_url: plan.bus_url.clone(),
        storage_url: storage_url.clone(),
        rtmp_listen: Some(plan.rtmp_listen),
        srt_listen: Some(plan.srt_listen),
        auth: AuthConfig {
            mode: if plan.allow_any_key {
                AuthMode::AllowAny
            } else {
                AuthMode::Store
            },
            database_url: plan.database_url.clone(),
            default_presets: plan.live_presets.clone(),
            ..AuthConfig::default()
        },
        ..IngestConfig::default()
    };
    let orchestrator = plan.orchestrator_listen.map(|listen| {
        livefarm_orchestrator_service::OrchestratorServiceConfig {
            bus_url: plan.bus_url.clone(),
            storage_url: storage_url.clone(),
            admin_listen: any_port,
            orchestrator: livefarm_orchestrator::NodeConfig {
                listen: Some(listen),
                ..livefarm_orchestrator::NodeConfig::default()
            },
            ..livefarm_orchestrator_service::OrchestratorServiceConfig::default()
        }
    });
    // migrated before the api and ingest open it
    let store = Store::open(&plan.database_url, &StoreOptions::default())
        .await
        .with_context(|| format!("opening the database {}", plan.database_url))?;
    let (tenant_id, api_key) = operator_key(&store, &plan.data_dir).await?;
    let demo = demo_stream(&store, &tenant_id, &plan.live_presets, &plan.data_dir).await?;
    store.close().await;
    // The segmenter runs in-process: ingest hands it the live bytes without a network hop.
    let segmenter = livefarm_segmenter::connect(&livefarm_segmenter::SegmenterConfig {
        bus_url: plan.bus_url.clone(),
        storage_url: storage_url.clone(),
        target_segment_seconds: media.segment_duration,
        ..livefarm_segmenter::SegmenterConfig::default()
    })
    .await
    .context("starting the segmenter")?;
    let live = LiveIngest::new(
        ingest.auth.build().context("ingest auth")?,
        Arc::new(segmenter),
    );
    let mut api = livefarm_api::ApiConfig {
        listen: plan.playback_listen,
        admin_listen: plan.admin_listen,
        bus_url: plan.bus_url.clone(),
        storage_url,
        database_url: plan.database_url.clone(),
        // the URLs in webhooks and playback info name the address players reach
        public_url: public_url(plan.playback_listen),
        ..livefarm_api::ApiConfig::default()
    };
    // one machine: webhook receivers on this host or its LAN are what a developer runs
    api.webhooks.allow_private_targets = true;
    // Ingest's HTTP push and the orchestrator both submit segments and wait for results:
    // one client, so the process tails the results stream once.
    let bus = livefarm_bus::connect(&plan.bus_url)
        .await
        .with_context(|| format!("connecting to the bus at {}", plan.bus_url))?;
    let stop = shutdown.clone();
    let segments = livefarm_jobs::SegmentClient::start(bus, async move { stop.triggered().await });
    let mut tasks = tokio::task::JoinSet::new();
    let stop = shutdown.clone();
    tasks.spawn(async move {
        livefarm_transcoder::run(worker, stop)
            .await
            .context("transcoder")
    });
    let stop = shutdown.clone();
    let ingest_segments = segments.clone();
    tasks.spawn(async move {
        livefarm_ingest::run_with(ingest, live, Some(ingest_segments), stop)
            .await
            .context("ingest")
    });
    if let Some(orchestrator) = orchestrator {
        let stop = shutdown.clone();
        tasks.spawn(async move {
            livefarm_orchestrator_service::run_with(orchestrator, Some(segments), stop)
                .await
                .context("orchestrator")
        });
    }
    let stop = shutdown.clone();
    tasks.spawn(async move { livefarm_api::run(api, stop).await.context("playback api") });
    Ok(Started {
        demo,
        api_key,
        tasks,
    })
}

pub fn run(args: UpArgs, media: &MediaConfig) -> Result<()> {
    let plan = UpPlan::from_args(&args, media)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async move {
        let shutdown = Shutdown::new();
        livefarm_runtime::install_signal_handlers(shutdown.clone())?;
        let Started {
            demo,
            api_key,
            mut tasks,
        } = start_services(&plan, &shutdown).await?;
        println!(
            "livefarm is up (all services in one process; data in {})",
            plan.data_dir.display()
        );
        println!(
            "  API key: {api_key}  (also in {}; send as Authorization: Bearer)",
            key_file(&plan.data_dir).display()
        );
        println!("  a ready stream \"{}\" (also in {}):", demo.name, DEMO_FILE);
        println!(
            "    publish (RTMP): rtmp://{}/live/{}",
            plan.rtmp_listen, demo.stream_key
        );
        println!(
            "    publish (SRT):  srt://{}?streamid=live/{}",
            plan.srt_listen, demo.stream_key
        );
        println!(
            "    play (HLS):     http://{}/hls/{}/index.m3u8",
            plan.playback_listen, demo.playback_id
        );
        // the CLI's default data directory needs no --data-dir to find the key
        let data_dir = if args.data_dir == Path::new(DEFAULT_DATA_DIR) {
            String::new()
        } else {
            format!(" --data-dir {}", plan.data_dir.display())
        };
        println!(
            "  more streams:     livefarm stream create --name NAME --api http://{}{data_dir}",
            plan.playback_listen
        );
        println!(
            "  push segments:    curl -T 0.ts http://{}/live/STREAM_ID/0.ts  (go-livepeer HTTP push)",
            plan.push_listen
        );
        if let Some(orchestrator) = plan.orchestrator_listen {
            println!("  orchestrator:     https://{orchestrator}  (go-livepeer broadcasters, off-chain)");
        }
        println!("  metrics:          http://{}/metrics", plan.admin_listen);
        println!("press Ctrl-C to stop");
        let mut outcome = Ok(());
        // The first service to stop (a failure, or the shutdown signal) stops the others.
        while let Some(joined) = tasks.join_next().await {
            shutdown.trigger();
            match joined {
                Ok(Ok(())) => {}
                Ok(Err(error)) => {
                    tracing::error!(error = %format!("{error:#}"), "service stopped");
                    if outcome.is_ok() {
                        outcome = Err(error);
                    }
                }
                Err(join) => outcome = Err(anyhow::anyhow!("service task failed: {join}")),
            }
        }
        outcome
    })
}

/// Where `livefarm up` writes the demo stream (JSON: id, streamKey, playbackId, ...), inside
/// the data directory, for scripts.
pub const DEMO_FILE: &str = "demo-stream.json";

/// The stream `livefarm up` announces, as written to [`DEMO_FILE`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DemoStream {
    pub id: String,
    pub name: String,
    pub stream_key: String,
    pub playback_id: String,
}

impl From<&StreamRecord> for DemoStream {
    fn from(record: &StreamRecord) -> Self {
        DemoStream {
            id: record.id.clone(),
            name: record.name.clone(),
            stream_key: record.stream_key.clone(),
            playback_id: record.playback_id.clone(),
        }
    }
}

/// The operator's tenant and key: the key in `<data-dir>/api-key` while it still
/// authenticates; else a new key (for the first tenant, made on the first start), written
/// there.
async fn operator_key(store: &Store, data_dir: &Path) -> Result<(String, String)> {
    let path = key_file(data_dir);
    if let Some(key) = read_key_file(&path) {
        if let Some(found) = store.authenticate(&key).await? {
            return Ok((found.tenant_id, key));
        }
        tracing::warn!(path = %path.display(), "the key file's key is revoked or unknown; making a new key");
    }
    let tenant = default_tenant(store)
        .await
        .context("making the first tenant")?;
    let created = store
        .create_api_key(&tenant.id, "livefarm up")
        .await
        .context("making an API key")?;
    write_key_file(&path, &created.secret)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok((tenant.id, created.secret))
}

/// The stream `livefarm up` announces, so a newcomer can publish at once: the one named in
/// [`DEMO_FILE`] while the tenant still has it, else a new one.
async fn demo_stream(
    store: &Store,
    tenant_id: &str,
    presets: &[String],
    data_dir: &Path,
) -> Result<DemoStream> {
    let path = data_dir.join(DEMO_FILE);
    let previous = std::fs::read(&path)
        .ok()
        .and_then(|bytes| serde_json::from_slice::<DemoStream>(&bytes).ok());
    let existing = match previous {
        Some(demo) => store.stream(tenant_id, &demo.id).await?,
        None => None,
    };
    let record = match existing {
        Some(record) => record,
        None => {
            let mut profiles = Vec::new();
            for name in presets {
                profiles.push(
                    livefarm_profiles::preset(name)
                        .or_else(|| livefarm_profiles::studio_preset(name))
                        .with_context(|| format!("unknown preset {name:?}"))?,
                );
            }
            let mut spec = serde_json::Map::new();
            if !profiles.is_empty() {
                spec.insert("profiles".to_owned(), studio_profiles(&profiles).into());
            }
            store
                .create_stream(
                    tenant_id,
                    NewStream {
                        name: "demo".to_owned(),
                        record: false,
                        spec,
                        created_by_key_name: Some("livefarm up".to_owned()),
                    },
                )
                .await
                .context("creating the demo stream")?
        }
    };
    let demo = DemoStream::from(&record);
    // written whole, then renamed: a script waiting for the file never reads half of it
    let partial = data_dir.join(format!("{DEMO_FILE}.partial"));
    std::fs::write(&partial, serde_json::to_vec_pretty(&demo)?)
        .with_context(|| format!("writing {}", partial.display()))?;
    std::fs::rename(&partial, &path).with_context(|| format!("writing {}", path.display()))?;
    Ok(demo)
}

/// `http://ADDR` for a listen address, with a wildcard address replaced by loopback (a
/// listener on every interface is reachable there).
fn public_url(listen: SocketAddr) -> String {
    let mut addr = listen;
    if addr.ip().is_unspecified() {
        addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    format!("http://{addr}")
}
