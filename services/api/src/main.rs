//! `livefarm-api`: the stream registry and HLS playback of the Livefarm farm.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use livefarm_api::ApiConfig;
use livefarm_runtime::{LoadOptions, Shutdown, EXIT_BAD_CONFIG, EXIT_FAILURE};

#[derive(Debug, Parser)]
#[command(
    name = "livefarm-api",
    version,
    about = "Livefarm API and HLS playback"
)]
struct Cli {
    /// Configuration file (TOML); see `--dump-config` for every key.
    #[arg(long, env = "LIVEFARM_CONFIG")]
    config: Option<PathBuf>,
    /// Override one configuration key, e.g. `--set live_window=10` (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    overrides: Vec<String>,
    /// Print the effective configuration and exit.
    #[arg(long)]
    dump_config: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let mut options = LoadOptions::new().overrides(cli.overrides);
    if let Some(path) = cli.config {
        options = options.file(path);
    }
    let config: ApiConfig = match livefarm_runtime::load(&options) {
        Ok(config) => config,
        Err(error) => return fail(&error.to_string(), error.exit_code()),
    };
    if let Err(error) = config.validate() {
        return fail(&error.to_string(), error.exit_code());
    }
    if cli.dump_config {
        return match livefarm_runtime::dump_config(&config) {
            Ok(text) => {
                print!("{text}");
                ExitCode::SUCCESS
            }
            Err(error) => fail(&error.to_string(), error.exit_code()),
        };
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => return fail(&format!("cannot start runtime: {error}"), EXIT_FAILURE),
    };
    runtime.block_on(async move {
        let _telemetry = match livefarm_telemetry::init(&config.telemetry) {
            Ok(guard) => guard,
            Err(error) => return fail(&error.to_string(), EXIT_BAD_CONFIG),
        };
        let shutdown = Shutdown::new();
        if let Err(error) = livefarm_runtime::install_signal_handlers(shutdown.clone()) {
            return fail(&error.to_string(), error.exit_code());
        }
        match livefarm_api::run(config, shutdown).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => fail(&format!("{error:#}"), error.exit_code()),
        }
    })
}

fn fail(message: &str, code: i32) -> ExitCode {
    eprintln!("error: {message}");
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}
