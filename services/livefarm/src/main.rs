//! `livefarm`: the all-in-one command. Runs every service in one process (`livefarm up`),
//! transcodes files to HLS ladders, manages streams and API keys, migrates the control-plane database,
//! deploys the chain contracts and runs the benchmarks.

use std::process::ExitCode;

use clap::Parser;

mod bench;
mod chain;
mod cli;
mod config;
mod keys;
mod ladder_writer;
mod migrate;
mod transcode;
mod up;

fn main() -> ExitCode {
    livefarm::tune_allocator();
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            // --help and --version print and succeed; a bad command line is a usage error
            let _ = error.print();
            return if error.use_stderr() {
                ExitCode::from(64)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    let config = match cli::load_config(&cli) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("error: {error:#}");
            return ExitCode::from(error_exit_code(&error));
        }
    };
    livefarm::init_logging(&config.telemetry);
    match cli::run(cli, config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(error_exit_code(&error))
        }
    }
}

/// 64 for bad usage or configuration (sysexits EX_USAGE), 1 otherwise.
fn error_exit_code(error: &anyhow::Error) -> u8 {
    if error.downcast_ref::<livefarm::UsageError>().is_some() {
        64
    } else {
        1
    }
}
