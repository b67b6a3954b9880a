//! The `main` every service binary shares: `--config`, `--set`, `--dump-config`, telemetry,
//! signal handling, then the service's own `run`, with one exit-code policy (64 for a bad
//! configuration, 1 for a failure, 130 for a second signal).

use std::future::Future;
use std::path::PathBuf;
use std::process::ExitCode;

use livefarm_telemetry::TelemetryConfig;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::{LoadOptions, Shutdown, EXIT_BAD_CONFIG, EXIT_FAILURE};

/// The command-line flags of every service binary.
#[derive(Debug, Clone, clap::Args)]
pub struct ServiceArgs {
    /// Configuration file (TOML); see `--dump-config` for every key.
    #[arg(long, env = "LIVEFARM_CONFIG")]
    pub config: Option<PathBuf>,
    /// Override one configuration key, e.g. `--set bus_url=redis://127.0.0.1:6379` (repeatable).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub overrides: Vec<String>,
    /// Print the effective configuration and exit.
    #[arg(long)]
    pub dump_config: bool,
}

/// A service's configuration as `service_main` needs it.
pub trait ServiceConfig: Serialize + DeserializeOwned + Default {
    /// Checks values the types cannot; an error is a bad configuration (exit 64).
    fn check(&self) -> Result<(), String> {
        Ok(())
    }
    fn telemetry(&self) -> &TelemetryConfig;
}

/// Why a service stopped with an error, and the exit code that says so.
#[derive(Debug)]
pub struct ServiceFailure {
    pub message: String,
    pub code: i32,
}

fn fail(message: &str, code: i32) -> ExitCode {
    eprintln!("error: {message}");
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}

/// Loads the configuration, honours `--dump-config`, starts telemetry and signal handling, and
/// runs the service until it returns.
pub fn service_main<C, F, Fut>(args: ServiceArgs, run: F) -> ExitCode
where
    C: ServiceConfig,
    F: FnOnce(C, Shutdown) -> Fut,
    Fut: Future<Output = Result<(), ServiceFailure>>,
{
    let mut options = LoadOptions::new().overrides(args.overrides);
    if let Some(path) = args.config {
        options = options.file(path);
    }
    let config: C = match crate::load(&options) {
        Ok(config) => config,
        Err(error) => return fail(&error.to_string(), error.exit_code()),
    };
    let checked = config.check();
    if args.dump_config {
        // Every key is printed even when the configuration is not valid yet (a service whose
        // defaults need one more setting, such as the redeemer's controller), then why not.
        return match crate::dump_config(&config) {
            Ok(text) => {
                print!("{text}");
                match checked {
                    Ok(()) => ExitCode::SUCCESS,
                    Err(message) => fail(&message, EXIT_BAD_CONFIG),
                }
            }
            Err(error) => fail(&error.to_string(), error.exit_code()),
        };
    }
    if let Err(message) = checked {
        return fail(&message, EXIT_BAD_CONFIG);
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            return fail(
                &format!("cannot start the async runtime: {error}"),
                EXIT_FAILURE,
            )
        }
    };
    runtime.block_on(async move {
        let _telemetry = match livefarm_telemetry::init(config.telemetry()) {
            Ok(guard) => guard,
            Err(error) => return fail(&error.to_string(), EXIT_BAD_CONFIG),
        };
        let shutdown = Shutdown::new();
        if let Err(error) = crate::install_signal_handlers(shutdown.clone()) {
            return fail(&error.to_string(), error.exit_code());
        }
        match run(config, shutdown).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(failure) => fail(&failure.message, failure.code),
        }
    })
}
