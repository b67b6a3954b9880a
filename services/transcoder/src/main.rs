//! `livefarm-transcoder`: a transcoder worker of the Livefarm farm (see the README).

use std::process::ExitCode;

use clap::Parser;
use livefarm_runtime::{service_main, ServiceArgs, ServiceFailure};

#[derive(Debug, Parser)]
#[command(
    name = "livefarm-transcoder",
    version,
    about = "Livefarm transcoder worker"
)]
struct Cli {
    #[command(flatten)]
    service: ServiceArgs,
}

fn main() -> ExitCode {
    service_main(Cli::parse().service, |config, shutdown| async move {
        livefarm_transcoder::run(config, shutdown)
            .await
            .map_err(|error| {
                ServiceFailure::classify::<livefarm_transcoder::TranscoderError>(&error)
            })
    })
}
