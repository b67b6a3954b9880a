//! `livefarm tenant create|list` and `livefarm api-key create|list|revoke`: an operator's
//! customers (tenants) and their API keys in the control-plane database (the data directory's
//! SQLite file by default, or `--database-url`), printed as JSON. A new key's secret is printed
//! once, in `key`.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use livefarm::api_key::{default_tenant, sqlite_url, DEFAULT_DATA_DIR};
use livefarm::UsageError;
use livefarm_store::{redact_url, Store, StoreOptions, Tenant};

#[derive(Debug, Subcommand)]
pub enum TenantCommand {
    /// Make a tenant (one of the operator's customers) and its first API key; prints
    /// {id, name, createdAt, apiKey: {key, id, ...}} (the key only now).
    Create(TenantCreateArgs),
    /// List the tenants, oldest first.
    List(Database),
}

#[derive(Debug, Args)]
pub struct TenantCreateArgs {
    /// The customer's name (shown in lists).
    #[arg(long)]
    pub name: String,
    /// Name of the first API key.
    #[arg(long, default_value = "default")]
    pub key_name: String,
    #[command(flatten)]
    pub database: Database,
}

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
    /// The tenant (its id, from `livefarm tenant list`); default: the first tenant, made if
    /// there is none.
    #[arg(long)]
    pub tenant: Option<String>,
    #[command(flatten)]
    pub database: Database,
}

/// Which database.
#[derive(Debug, Args)]
pub struct Database {
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

pub fn run_tenant(command: TenantCommand) -> Result<()> {
    let out = block_on(async {
        match command {
            TenantCommand::Create(args) => {
                let (name, key_name) = (args.name.trim(), args.key_name.trim());
                if name.is_empty() || key_name.is_empty() {
                    return Err(usage("--name and --key-name must not be empty"));
                }
                let store = open_database(&args.database).await?;
                let tenant = store
                    .create_tenant(name)
                    .await
                    .context("creating the tenant")?;
                let key = store
                    .create_api_key(&tenant.id, key_name)
                    .await
                    .context("creating the tenant's first key")?;
                store.close().await;
                let mut out = serde_json::to_value(tenant)?;
                out["apiKey"] = serde_json::to_value(key)?;
                Ok(out)
            }
            TenantCommand::List(database) => {
                let store = open_database(&database).await?;
                let tenants = store.tenants().await.context("listing tenants")?;
                store.close().await;
                Ok(serde_json::to_value(tenants)?)
            }
        }
    })?;
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(())
}

fn block_on<T>(work: impl std::future::Future<Output = Result<T>>) -> Result<T> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?
        .block_on(work)
}

pub fn run(command: ApiKeyCommand) -> Result<()> {
    let out = block_on(async {
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
    let store = open_database(&target.database).await?;
    let tenant = match &target.tenant {
        Some(id) => store
            .tenant(id)
            .await?
            .ok_or_else(|| usage(&format!("--tenant: no tenant {id:?}")))?,
        None => default_tenant(&store).await?,
    };
    Ok((store, tenant))
}

/// Opens (and migrates) the database `database` names.
async fn open_database(database: &Database) -> Result<Store> {
    let url = match &database.database_url {
        Some(url) => url.clone(),
        None => {
            std::fs::create_dir_all(&database.data_dir)
                .with_context(|| format!("cannot create {}", database.data_dir.display()))?;
            sqlite_url(&database.data_dir)
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
    Ok(store)
}
