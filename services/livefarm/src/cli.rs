//! Command-line surface of `livefarm`.

use std::path::PathBuf;

use anyhow::Result;
use clap::{Args, Parser, Subcommand};

use livefarm::UsageError;
use livefarm_runtime::LoadOptions;

use crate::config::LivefarmConfig;
use crate::{bench, transcode};

// `main.rs` lists the other modules; this one hangs off the CLI that dispatches to it.
#[path = "stream.rs"]
mod stream;

#[derive(Debug, Parser)]
#[command(
    name = "livefarm",
    version,
    about = "Livepeer-compatible live video transcoding farm"
)]
pub struct Cli {
    /// Configuration file (TOML); see `--dump-config` for every key.
    #[arg(long, global = true, env = "LIVEFARM_CONFIG")]
    pub config: Option<PathBuf>,
    /// Override one configuration key, e.g. `--set media.x264_preset=faster` (repeatable).
    #[arg(long = "set", global = true, value_name = "KEY=VALUE")]
    pub overrides: Vec<String>,
    /// Print the effective configuration (defaults, file, environment, --set) and exit.
    #[arg(long)]
    pub dump_config: bool,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Transcode a media file into an HLS ladder (master playlist, one media playlist per
    /// rendition, and a `source` rendition).
    Transcode(TranscodeArgs),
    /// Run every service in one process (in-process bus, local storage, no chain): RTMP, SRT
    /// and HTTP push ingest, the segmenter, a transcoder worker, HLS playback, and the
    /// off-chain Livepeer orchestrator port.
    Up(crate::up::UpArgs),
    /// Measure Livefarm against a baseline in the same run.
    #[command(subcommand)]
    Bench(bench::BenchCommand),
    /// Manage streams through the api (`Authorization: Bearer` from --api-key,
    /// LIVEFARM_API_KEY or the data directory's `api-key` file).
    #[command(subcommand)]
    Stream(stream::StreamCommand),
    /// Manage tenants (the operator's customers) in the control-plane database (the data
    /// directory's by default).
    #[command(subcommand)]
    Tenant(crate::keys::TenantCommand),
    /// Manage API keys in the control-plane database (the data directory's by default).
    #[command(subcommand, name = "api-key")]
    ApiKey(crate::keys::ApiKeyCommand),
    /// The chain: deploy the Livepeer-compatible contracts.
    #[command(subcommand)]
    Chain(crate::chain::ChainCommand),
    /// Apply the control-plane database's schema migrations and print what was applied.
    Migrate(crate::migrate::MigrateArgs),
}

#[derive(Debug, Args)]
pub struct TranscodeArgs {
    /// Input file (MP4, FLV, MPEG-TS, MKV... with H.264/HEVC/VP8/VP9 video).
    pub input: PathBuf,
    /// Comma-separated preset names (P720p30fps16x9, 360p0...) or @ladder.json. Default:
    /// Livepeer Studio's ladder (240p0, 360p0, 480p0, 720p0).
    #[arg(long)]
    pub profiles: Option<String>,
    /// Output directory; index.m3u8 is written there.
    #[arg(long)]
    pub out: PathBuf,
    /// Target segment duration in seconds, cut at the next keyframe (default:
    /// media.segment_duration, 2).
    #[arg(long)]
    pub segment_duration: Option<f64>,
    /// auto, cpu or nvidia (default: media.accel, auto).
    #[arg(long)]
    pub accel: Option<String>,
    /// GPU indexes to use, e.g. 0,1 (default: media.gpus, all).
    #[arg(long)]
    pub gpus: Option<String>,
    /// libx264 preset (default: media.x264_preset, veryfast).
    #[arg(long)]
    pub x264_preset: Option<String>,
    /// Leave out the untouched `source` rendition.
    #[arg(long)]
    pub no_source: bool,
}

/// Loads the layered configuration; a bad key or value is a usage error (exit 64).
pub fn load_config(cli: &Cli) -> Result<LivefarmConfig> {
    let mut options = LoadOptions::new()
        .ignore_env("LIVEFARM_LOG_FORMAT")
        // flags' environment fallbacks, not config keys
        .ignore_env("LIVEFARM_API_URL")
        .ignore_env("LIVEFARM_API_KEY")
        .ignore_env("LIVEFARM_DATABASE_URL")
        // read by the test suites, whose children (this binary) inherit their environment
        .ignore_env("LIVEFARM_REQUIRE_BROWSER")
        .ignore_env("LIVEFARM_BROWSER_TOOLS")
        .ignore_env("LIVEFARM_CHROMIUM")
        .ignore_env("LIVEFARM_TEST_ARTIFACTS")
        .overrides(cli.overrides.iter().cloned());
    if let Some(path) = &cli.config {
        options = options.file(path);
    }
    livefarm_runtime::load(&options).map_err(|e| anyhow::Error::new(UsageError(e.to_string())))
}

pub fn run(cli: Cli, config: LivefarmConfig) -> Result<()> {
    if cli.dump_config {
        print!("{}", livefarm_runtime::dump_config(&config)?);
        return Ok(());
    }
    match cli.command {
        Some(Command::Transcode(args)) => transcode::run(args, &config.media),
        Some(Command::Bench(command)) => bench::run(command),
        Some(Command::Up(args)) => crate::up::run(args, &config.media),
        Some(Command::Stream(command)) => stream::run(command),
        Some(Command::Tenant(command)) => crate::keys::run_tenant(command),
        Some(Command::ApiKey(command)) => crate::keys::run(command),
        Some(Command::Chain(command)) => crate::chain::run(command),
        Some(Command::Migrate(args)) => crate::migrate::run(args),
        None => Err(anyhow::Error::new(UsageError(
            "no command given; try `livefarm transcode --help` or `livefarm --help`".to_string(),
        ))),
    }
}
