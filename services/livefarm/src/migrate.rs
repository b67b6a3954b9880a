//! `livefarm migrate`: applies the control-plane database's schema migrations (the api also
//! applies them at start; this runs them ahead of a rollout, e.g. as a Helm hook) and prints
//! what it did as JSON.

use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use livefarm::api_key::{sqlite_url, DEFAULT_DATA_DIR};
use livefarm_store::{redact_url, Store, StoreOptions};
use serde_json::json;

#[derive(Debug, Args)]
pub struct MigrateArgs {
    /// The database: `sqlite://PATH` or `postgres://USER:PASSWORD@HOST:PORT/DB`. Default: the
    /// SQLite file of `--data-dir`, as `livefarm up` keeps it.
    #[arg(long, env = "LIVEFARM_DATABASE_URL")]
    pub database_url: Option<String>,
    /// The data directory of `livefarm up`, used when no URL is given.
    #[arg(long, default_value = DEFAULT_DATA_DIR)]
    pub data_dir: PathBuf,
}

pub fn run(args: MigrateArgs) -> Result<()> {
    let url = match args.database_url {
        Some(url) => url,
        None => {
            std::fs::create_dir_all(&args.data_dir)
                .with_context(|| format!("cannot create {}", args.data_dir.display()))?;
            sqlite_url(&args.data_dir)
        }
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let report = runtime.block_on(async {
        let store = Store::connect(&url, &StoreOptions::default())
            .await
            .with_context(|| format!("cannot open {}", redact_url(&url)))?;
        let report = store.migrate().await?;
        store.close().await;
        anyhow::Ok(report)
    })?;
    println!(
        "{}",
        json!({
            "database": redact_url(&url),
            "version": report.version,
            "applied": report.applied,
            "unknown": report.unknown,
        })
    );
    Ok(())
}
