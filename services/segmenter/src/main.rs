//! `livefarm-segmenter`: cuts live streams from ingest into segments (see the README).

use std::process::ExitCode;

use clap::Parser;
use livefarm_runtime::{service_main, ServiceArgs, ServiceFailure};

#[derive(Debug, Parser)]
#[command(
    name = "livefarm-segmenter",
    version,
    about = "Livefarm segmenter: live FLV/MPEG-TS to keyframe-aligned segments and jobs"
)]
struct Cli {
    #[command(flatten)]
    service: ServiceArgs,
}

fn main() -> ExitCode {
    service_main(Cli::parse().service, |config, shutdown| async move {
        livefarm_segmenter::run(config, shutdown)
            .await
            .map_err(|error| ServiceFailure::classify::<livefarm_segmenter::SegmenterError>(&error))
    })
}
