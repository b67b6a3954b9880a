//! `livefarm-ingest`: terminates live ingest (RTMP, SRT, go-livepeer HTTP push) and hands the
//! media on (see the README).

use std::process::ExitCode;

use clap::Parser;
use livefarm_runtime::{service_main, ServiceArgs, ServiceFailure};

#[derive(Debug, Parser)]
#[command(
    name = "livefarm-ingest",
    version,
    about = "Livefarm ingest: RTMP, SRT and go-livepeer HTTP push"
)]
struct Cli {
    #[command(flatten)]
    service: ServiceArgs,
}

fn main() -> ExitCode {
    service_main(Cli::parse().service, |config, shutdown| async move {
        livefarm_ingest::run(config, shutdown)
            .await
            .map_err(|error| ServiceFailure::classify::<livefarm_ingest::IngestError>(&error))
    })
}
