//! `livefarm-orchestrator`: the Livepeer orchestrator port of the Livefarm farm (see the
//! README).

use std::process::ExitCode;

use clap::Parser;
use livefarm_runtime::{service_main, ServiceArgs, ServiceFailure};

#[derive(Debug, Parser)]
#[command(
    name = "livefarm-orchestrator",
    version,
    about = "Livefarm's Livepeer orchestrator: net.Orchestrator gRPC and POST /segment over TLS"
)]
struct Cli {
    #[command(flatten)]
    service: ServiceArgs,
}

fn main() -> ExitCode {
    service_main(Cli::parse().service, |config, shutdown| async move {
        livefarm_orchestrator_service::run(config, shutdown)
            .await
            .map_err(|error| {
                ServiceFailure::classify::<livefarm_orchestrator_service::OrchestratorServiceError>(
                    &error,
                )
            })
    })
}
