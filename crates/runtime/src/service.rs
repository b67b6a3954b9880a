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

/// A service's own error type, as its `run` returns it (directly or as a cause inside an
/// `anyhow::Error`). The one classification of every service: a configuration at fault, even
/// when only `run` finds it (an unparsable URL), exits 64; anything else exits 1.
pub trait RunError: std::error::Error + Send + Sync + 'static {
    /// Whether the configuration is at fault rather than the world.
    fn is_config(&self) -> bool;
}

impl ServiceFailure {
    /// A failure with the exit code for a bad configuration or for any other failure.
    pub fn new(message: impl Into<String>, bad_config: bool) -> Self {
        ServiceFailure {
            message: message.into(),
            code: if bad_config {
                EXIT_BAD_CONFIG
            } else {
                EXIT_FAILURE
            },
        }
    }

    /// The failure for a `run` that returns `anyhow::Error`: the whole chain as the message,
    /// a bad configuration when any cause in it is an `E` that says so.
    pub fn classify<E: RunError>(error: &anyhow::Error) -> Self {
        let bad_config = error
            .chain()
            .any(|cause| cause.downcast_ref::<E>().is_some_and(E::is_config));
        ServiceFailure::new(format!("{error:#}"), bad_config)
    }
}

impl<E: RunError> From<E> for ServiceFailure {
    fn from(error: E) -> Self {
        let bad_config = error.is_config();
        ServiceFailure::new(error.to_string(), bad_config)
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    enum DemoError {
        #[error("bad url {0}")]
        Url(String),
        #[error("backend down")]
        Down,
    }

    impl RunError for DemoError {
        fn is_config(&self) -> bool {
            matches!(self, DemoError::Url(_))
        }
    }

    #[test]
    fn typed_errors_exit_64_only_when_the_config_is_at_fault() {
        let failure = ServiceFailure::from(DemoError::Url("nope://".into()));
        assert_eq!(
            (failure.code, failure.message.as_str()),
            (64, "bad url nope://")
        );
        assert_eq!(ServiceFailure::from(DemoError::Down).code, EXIT_FAILURE);
    }

    #[test]
    fn a_config_error_deep_in_an_anyhow_chain_still_exits_64() {
        let error = anyhow::Error::new(DemoError::Url("nope://".into())).context("connecting");
        let failure = ServiceFailure::classify::<DemoError>(&error);
        assert_eq!(failure.code, EXIT_BAD_CONFIG);
        assert_eq!(failure.message, "connecting: bad url nope://");
        let down = anyhow::Error::new(DemoError::Down).context("connecting");
        assert_eq!(
            ServiceFailure::classify::<DemoError>(&down).code,
            EXIT_FAILURE
        );
        let other = anyhow::anyhow!("something else");
        assert_eq!(
            ServiceFailure::classify::<DemoError>(&other).code,
            EXIT_FAILURE
        );
    }
}
