//! Runs the bus benchmark and prints its report as JSON, until `livefarm bench bus` exists.
//!
//! `cargo run --release -p livefarm-bus --example bench_bus [redis://host:port | memory://name]`

use livefarm_bus::bench::{self, BenchOptions};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let opts = BenchOptions {
        url: std::env::args().nth(1),
        ..BenchOptions::default()
    };
    let report = bench::run(opts).await?;
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}
