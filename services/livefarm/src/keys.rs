//! `livefarm api-key create|list|revoke`: API keys in the control-plane database (the data
//! directory's SQLite file by default, or `--database-url`), printed as JSON. A new key's
//! secret is printed once, in `key`.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use livefarm::api_key::{default_tenant, sqlite_url, DEFAULT_DATA_DIR};
use livefarm::UsageError;
use livefarm_store::{redact_url, Store, StoreOptions, Tenant};

#[derive(Debug, Subcommand)]
pub enum ApiKeyCommand {
    /// Make a key; prints {key, id, name, tenantId, prefix, createdAt} (the key only now).
    Create(CreateArgs),
    /// List a tenant's keys (never their secrets).
    List(Target),
    /// Revoke a key by id.
    Revoke(RevokeArgs),
}

/// Which database and tenant.
#[derive(Debug, Args)]
pub struct Target {
    /// The tenant (its id); default: the first tenant, made if there is none.
    #[arg(long)]
    pub tenant: Option<String>,
    /// The data directory of `livefarm up`, whose `livefarm.db` is used by default.
    #[arg(long, default_value = DEFAULT_DATA_DIR, conflicts_with = "database_url")]
    pub data_dir: PathBuf,
    /// The database instead: `sqlite://PATH` or `postgres://USER:PASSWORD@HOST:PORT/DB`.
    #[arg(long, env = "LIVEFARM_DATABASE_URL")]
    pub database_url: Option<String>,
}

#[derive(Debug, Args)]
pub struct CreateArgs {
    /// What the key is for (shown in lists).
    #[arg(long)]
    pub name: String,
    #[command(flatten)]
    pub target: Target,
}

#[derive(Debug, Args)]
pub struct RevokeArgs {
    /// The key's id (from `create` or `list`).
    pub id: String,
    #[command(flatten)]
    pub target: Target,
}

pub fn run(command: ApiKeyCommand) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let out = runtime.block_on(async {
        match command {
            ApiKeyCommand::Create(args) => {
                if args.name.trim().is_empty() {
                    return Err(usage("--name must not be empty"));
                }
                let (store, tenant) = open(&args.target).await?;
                let created = store
                    .create_api_key(&tenant.id, args.name.trim())
                    .await
                    .context("creating the key")?;
                store.close().await;
                Ok(serde_json::to_value(created)?)
            }
            ApiKeyCommand::List(target) => {
                let (store, tenant) = open(&target).await?;
                let keys = store.api_keys(&tenant.id).await.context("listing keys")?;
                store.close().await;
                Ok(serde_json::to_value(keys)?)
            }
            ApiKeyCommand::Revoke(args) => {
                let (store, tenant) = open(&args.target).await?;
                let revoked = store
                    .revoke_api_key(&tenant.id, &args.id)
                    .await
                    .context("revoking the key")?;
                store.close().await;
                if !revoked {
                    bail!(
                        "tenant {} has no key {:?} that is not revoked",
                        tenant.id,
                        args.id
                    );
                }
                Ok(serde_json::json!({ "id": args.id, "revoked": true }))
            }
        }
    })?;
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(())
}

fn usage(message: &str) -> anyhow::Error {
    anyhow::Error::new(UsageError(message.to_owned()))
}

/// Opens (and migrates) the database of `target` and finds its tenant.
async fn open(target: &Target) -> Result<(Store, Tenant)> {
    let url = match &target.database_url {
        Some(url) => url.clone(),
        None => {
            std::fs::create_dir_all(&target.data_dir)
                .with_context(|| format!("cannot create {}", target.data_dir.display()))?;
            sqlite_url(&target.data_dir)
        }
    };
    let store = Store::open(&url, &StoreOptions::default())
        .await
        .map_err(|e| match e {
            livefarm_store::StoreError::InvalidUrl { .. } => {
                anyhow::Error::new(UsageError(format!("--database-url: {e}")))
            }
            other => anyhow::Error::new(other).context(format!("cannot open {}", redact_url(&url))),
        })?;
    let tenant = match &target.tenant {
        Some(id) => store
            .tenant(id)
            .await?
            .ok_or_else(|| usage(&format!("--tenant: no tenant {id:?}")))?,
        None => default_tenant(&store).await?,
    };
    Ok((store, tenant))
}
