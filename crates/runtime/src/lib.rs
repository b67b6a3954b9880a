//! The process scaffolding every Livefarm service shares: layered configuration with
//! `--dump-config`, graceful shutdown on SIGTERM/SIGINT, a readiness flag, and the admin HTTP
//! server (`/livez`, `/readyz`, `/metrics`).

pub mod admin;
pub mod config;
mod error;
mod readiness;
pub mod service;
mod shutdown;
#[cfg(feature = "testing")]
pub mod testing;

pub use admin::AdminServer;
pub use config::{dump_config, load, LoadOptions};
pub use error::{
    ConfigError, Origin, RuntimeError, UnknownKey, EXIT_BAD_CONFIG, EXIT_FAILURE,
    EXIT_SECOND_SIGNAL,
};
pub use readiness::Readiness;
pub use service::{service_main, RunError, ServiceArgs, ServiceConfig, ServiceFailure};
pub use shutdown::{
    drain_with_deadline, install_signal_handlers, signal_action, DrainOutcome, Shutdown,
    SignalAction,
};
