//! `livefarm-ingest`: the ingest service (HTTP push today).

use std::process::ExitCode;

use clap::Parser;
use livefarm_ingest::IngestConfig;
use livefarm_runtime::{LoadOptions, Shutdown};

#[derive(Debug, Parser)]
#[command(
    name = "livefarm-ingest",
    version,
    about = "Livefarm ingest: go-livepeer HTTP push"
)]
struct Args {
    /// Configuration file (TOML).
    #[arg(long)]
    config: Option<std::path::PathBuf>,
    /// Override one key, e.g. `--set bus_url=redis://127.0.0.1:6379` (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    overrides: Vec<String>,
    /// Print the effective configuration and exit.
    #[arg(long)]
    dump_config: bool,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let mut options = LoadOptions::new().overrides(args.overrides.iter().cloned());
    if let Some(path) = &args.config {
        options = options.file(path);
    }
    let config: IngestConfig = match livefarm_runtime::load(&options) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("error: {error}");
            return ExitCode::from(64);
        }
    };
    if args.dump_config {
        return match livefarm_runtime::dump_config(&config) {
            Ok(text) => {
                print!("{text}");
                ExitCode::SUCCESS
            }
            Err(error) => {
                eprintln!("error: {error}");
                ExitCode::FAILURE
            }
        };
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        let _telemetry = livefarm_telemetry::init(&config.telemetry);
        let shutdown = Shutdown::new();
        if let Err(error) = livefarm_runtime::install_signal_handlers(shutdown.clone()) {
            eprintln!("error: {error}");
            return ExitCode::FAILURE;
        }
        match livefarm_ingest::run(config, shutdown).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                eprintln!("error: {error:#}");
                ExitCode::FAILURE
            }
        }
    })
}
