//! `livefarm chain ...`: the on-chain side for operators: deploy the Livepeer-compatible
//! contracts to a dev chain.

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use livefarm::UsageError;

#[derive(Debug, Subcommand)]
pub enum ChainCommand {
    /// Deploy Controller, Minter, RoundsManager, BondingManager, TicketBroker and
    /// ServiceRegistry, register them in the Controller, initialise the first round, and print
    /// the addresses as JSON (services take the Controller's).
    Deploy(DeployArgs),
}

#[derive(Debug, Args)]
pub struct DeployArgs {
    /// JSON-RPC endpoint of the chain (plain http), e.g. http://127.0.0.1:8545.
    #[arg(long)]
    pub rpc: String,
    /// Deployer private key (hex). Also `LIVEFARM_DEPLOYER_KEY`.
    #[arg(long, env = "LIVEFARM_DEPLOYER_KEY", hide_env_values = true)]
    pub key: Option<String>,
    /// Use anvil's first well-known development key (dev chains only).
    #[arg(long, conflicts_with = "key")]
    pub anvil_dev_key: bool,
    /// Blocks per round.
    #[arg(long)]
    pub round_length: Option<u64>,
    /// Rounds between unlock and withdraw.
    #[arg(long)]
    pub unlock_period: Option<u64>,
    /// Rounds a winning ticket stays redeemable after its creation round.
    #[arg(long)]
    pub ticket_validity_period: Option<u64>,
}

pub fn run(command: ChainCommand) -> Result<()> {
    match command {
        ChainCommand::Deploy(args) => deploy(args),
    }
}

fn deploy(args: DeployArgs) -> Result<()> {
    let key = match (&args.key, args.anvil_dev_key) {
        (Some(key), _) => key.clone(),
        (None, true) => livefarm_chain::testing::DEV_KEYS[0].to_string(),
        (None, false) => {
            return Err(anyhow::Error::new(UsageError(
                "give the deployer key with --key (or LIVEFARM_DEPLOYER_KEY), or --anvil-dev-key on a dev chain".to_string(),
            )))
        }
    };
    let mut options = livefarm_chain::DeployOptions::default();
    if let Some(v) = args.round_length {
        options.round_length = v;
    }
    if let Some(v) = args.unlock_period {
        options.unlock_period = v;
    }
    if let Some(v) = args.ticket_validity_period {
        options.ticket_validity_period = v;
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let deployment = runtime
        .block_on(livefarm_chain::deploy(&args.rpc, &key, &options))
        .with_context(|| format!("deploying to {}", args.rpc))?;
    let json = serde_json::json!({
        "controller": deployment.controller.to_string(),
        "minter": deployment.minter.to_string(),
        "roundsManager": deployment.rounds_manager.to_string(),
        "bondingManager": deployment.bonding_manager.to_string(),
        "ticketBroker": deployment.ticket_broker.to_string(),
        "serviceRegistry": deployment.service_registry.to_string(),
        "roundLength": options.round_length,
        "unlockPeriod": options.unlock_period,
        "ticketValidityPeriod": options.ticket_validity_period,
    });
    println!("{}", serde_json::to_string_pretty(&json)?);
    Ok(())
}
