//! `livefarm-api`: the Livepeer Studio-compatible API and HLS playback of the Livefarm farm.

use std::process::ExitCode;

use clap::Parser;
use livefarm_runtime::{service_main, ServiceArgs, ServiceFailure};

#[derive(Debug, Parser)]
#[command(
    name = "livefarm-api",
    version,
    about = "Livefarm API and HLS playback"
)]
struct Cli {
    #[command(flatten)]
    service: ServiceArgs,
}

fn main() -> ExitCode {
    service_main(Cli::parse().service, |config, shutdown| async move {
        livefarm_api::run(config, shutdown)
            .await
            .map_err(ServiceFailure::from)
    })
}
