//! `livefarm-redeemer`: the ticket redeemer of the Livefarm farm (see the crate docs).

use std::process::ExitCode;

use clap::Parser;
use livefarm_runtime::{service_main, ServiceArgs, ServiceFailure};

#[derive(Debug, Parser)]
#[command(
    name = "livefarm-redeemer",
    version,
    about = "Livefarm ticket redeemer"
)]
struct Cli {
    #[command(flatten)]
    service: ServiceArgs,
}

fn main() -> ExitCode {
    service_main(Cli::parse().service, |config, shutdown| async move {
        livefarm_redeemer::run(config, shutdown)
            .await
            .map_err(|error| ServiceFailure::classify::<livefarm_redeemer::RedeemerError>(&error))
    })
}
