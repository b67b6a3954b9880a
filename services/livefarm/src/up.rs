//! `livefarm up`: every service in one process on an in-process bus and a local storage
//! directory: HTTP push ingest, a transcoder worker and HLS playback.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use livefarm_ingest::IngestConfig;
use livefarm_runtime::Shutdown;
use livefarm_transcoder::TranscoderConfig;

use crate::config::MediaConfig;

#[derive(Debug, Args)]
pub struct UpArgs {
    /// Where segments and renditions are kept.
    #[arg(long, default_value = "livefarm-data")]
    pub data_dir: PathBuf,
    /// HTTP push ingest (go-livepeer's `PUT /live/{stream}/{seq}.ts`).
    #[arg(long, default_value = "127.0.0.1:9935")]
    pub push_listen: SocketAddr,
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

pub fn run(args: UpArgs, media: &MediaConfig) -> Result<()> {
    std::fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("cannot create {}", args.data_dir.display()))?;
    let data_dir = args
        .data_dir
        .canonicalize()
        .with_context(|| format!("cannot resolve {}", args.data_dir.display()))?;
    let storage_url = format!("file://{}", data_dir.join("objects").display());
    let bus_url = format!("memory://livefarm-up-{}", std::process::id());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async move {
        let shutdown = Shutdown::new();
        livefarm_runtime::install_signal_handlers(shutdown.clone())?;
        let any_port = SocketAddr::from(([127, 0, 0, 1], 0));
        let worker = TranscoderConfig {
            bus_url: bus_url.clone(),
            storage_url: storage_url.clone(),
            worker_id: "local".to_string(),
            max_sessions: args.max_streams,
            accel: media.accel.clone(),
            gpus: media.gpus.clone(),
            max_sessions_per_gpu: media.max_sessions_per_gpu,
            x264_preset: media.x264_preset.clone(),
            grpc_listen: any_port,
            admin_listen: any_port,
            ..TranscoderConfig::default()
        };
        let ingest = IngestConfig {
            http_listen: args.push_listen,
            admin_listen: any_port,
            bus_url: bus_url.clone(),
            storage_url: storage_url.clone(),
            ..IngestConfig::default()
        };
        let api = livefarm_api::ApiConfig {
            listen: args.playback_listen,
            admin_listen: args.admin_listen,
            bus_url,
            storage_url,
            ..livefarm_api::ApiConfig::default()
        };
        let mut tasks = tokio::task::JoinSet::new();
        let stop = shutdown.clone();
        tasks.spawn(async move {
            livefarm_transcoder::run(worker, stop)
                .await
                .context("transcoder")
        });
        let stop = shutdown.clone();
        tasks.spawn(async move { livefarm_ingest::run(ingest, stop).await.context("ingest") });
        let stop = shutdown.clone();
        tasks.spawn(async move { livefarm_api::run(api, stop).await.context("playback api") });
        println!(
            "livefarm is up (all services in one process; data in {})",
            data_dir.display()
        );
        println!(
            "  create a stream:  curl -X POST -d '{{\"name\":\"demo\"}}' http://{}/api/stream",
            args.playback_listen
        );
        println!(
            "  push segments:    curl -T 0.ts http://{}/live/STREAM_ID/0.ts",
            args.push_listen
        );
        println!(
            "  play (HLS):       http://{}/stream/STREAM_ID.m3u8",
            args.playback_listen
        );
        println!("  metrics:          http://{}/metrics", args.admin_listen);
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
