//! Deploying a full protocol and finding one through its Controller.

use alloy::primitives::{keccak256, Address, FixedBytes, B256, U256};
use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use alloy::signers::local::PrivateKeySigner;

use crate::bindings::{
    BondingManager, Controller, Minter, RoundsManager, ServiceRegistry, TicketBroker,
};
use crate::client::{parse_url, send_tx, signing_provider};
use crate::error::ChainError;

/// The names the contracts are registered under, in deployment order.
pub const CONTRACT_NAMES: [&str; 5] = [
    "Minter",
    "RoundsManager",
    "BondingManager",
    "TicketBroker",
    "ServiceRegistry",
];

/// The Controller registry id of a contract: `keccak256(utf8(name))` (§12.1).
pub fn contract_id(name: &str) -> B256 {
    keccak256(name.as_bytes())
}

/// The addresses of one protocol deployment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Deployment {
    /// The registry everything else is found through.
    pub controller: Address,
    /// Holds all ETH.
    pub minter: Address,
    /// Rounds and their block hashes.
    pub rounds_manager: Address,
    /// Transcoder pool and fees.
    pub bonding_manager: Address,
    /// Deposits, reserves and ticket redemption.
    pub ticket_broker: Address,
    /// Orchestrator service URIs.
    pub service_registry: Address,
}

/// Parameters of a new deployment. The defaults are Livepeer's Arbitrum deploy-time values
/// (§12.1); tests use a short `round_length`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeployOptions {
    /// Blocks per round.
    pub round_length: u64,
    /// Locked share at the end of a round, in millionths.
    pub round_lock_amount: u64,
    /// Rounds between `unlock()` and the earliest `withdraw()`.
    pub unlock_period: u64,
    /// Rounds a ticket stays redeemable after its creation round.
    pub ticket_validity_period: u64,
    /// Maximum transcoder pool size.
    pub num_active_transcoders: u64,
}

impl Default for DeployOptions {
    fn default() -> Self {
        DeployOptions {
            round_length: 5760,
            round_lock_amount: 100_000,
            unlock_period: 2,
            ticket_validity_period: 2,
            num_active_transcoders: 100,
        }
    }
}

/// Deploys the Controller and every contract, registers them in the Controller and initialises
/// the first round. `signer_key` is a hex secp256k1 key (with or without `0x`) of a funded
/// account, which becomes the Controller owner.
pub async fn deploy(
    rpc_url: &str,
    signer_key: &str,
    opts: &DeployOptions,
) -> Result<Deployment, ChainError> {
    let signer: PrivateKeySigner = signer_key.parse().map_err(|_| ChainError::InvalidKey)?;
    let provider = signing_provider(rpc_url, signer)?;

    let deployed = |call: &'static str| move |e| ChainError::from_contract(call, e);
    let controller = Controller::deploy(&provider)
        .await
        .map_err(deployed("deploy Controller"))?;
    let controller_addr = *controller.address();
    let minter = *Minter::deploy(&provider, controller_addr)
        .await
        .map_err(deployed("deploy Minter"))?
        .address();
    let rounds_manager = *RoundsManager::deploy(
        &provider,
        controller_addr,
        U256::from(opts.round_length),
        U256::from(opts.round_lock_amount),
    )
    .await
    .map_err(deployed("deploy RoundsManager"))?
    .address();
    let bonding_manager = *BondingManager::deploy(
        &provider,
        controller_addr,
        U256::from(opts.num_active_transcoders),
    )
    .await
    .map_err(deployed("deploy BondingManager"))?
    .address();
    let ticket_broker = *TicketBroker::deploy(
        &provider,
        controller_addr,
        U256::from(opts.unlock_period),
        U256::from(opts.ticket_validity_period),
    )
    .await
    .map_err(deployed("deploy TicketBroker"))?
    .address();
    let service_registry = *ServiceRegistry::deploy(&provider, controller_addr)
        .await
        .map_err(deployed("deploy ServiceRegistry"))?
        .address();

    let deployment = Deployment {
        controller: controller_addr,
        minter,
        rounds_manager,
        bonding_manager,
        ticket_broker,
        service_registry,
    };
    for name in CONTRACT_NAMES {
        let addr = deployment
            .by_name(name)
            .expect("every registered name has an address");
        send_tx(
            "setContractInfo",
            controller.setContractInfo(contract_id(name), addr, FixedBytes::ZERO),
        )
        .await?;
    }
    let rounds = RoundsManager::new(rounds_manager, provider.clone());
    send_tx("initializeRound", rounds.initializeRound()).await?;
    Ok(deployment)
}

/// Finds a deployment's contracts through `Controller.getContract` (§12.1), as go-livepeer does
/// at start-up.
pub async fn resolve(rpc_url: &str, controller: Address) -> Result<Deployment, ChainError> {
    let provider = ProviderBuilder::new()
        .connect_http(parse_url(rpc_url)?)
        .erased();
    resolve_with(&provider, controller).await
}

pub(crate) async fn resolve_with(
    provider: &DynProvider,
    controller: Address,
) -> Result<Deployment, ChainError> {
    let instance = Controller::new(controller, provider.clone());
    let mut found = [Address::ZERO; 5];
    for (slot, name) in found.iter_mut().zip(CONTRACT_NAMES) {
        let addr = instance
            .getContract(contract_id(name))
            .call()
            .await
            .map_err(|e| ChainError::from_contract("getContract", e))?;
        if addr.is_zero() {
            return Err(ChainError::NotRegistered { name, controller });
        }
        *slot = addr;
    }
    let [minter, rounds_manager, bonding_manager, ticket_broker, service_registry] = found;
    Ok(Deployment {
        controller,
        minter,
        rounds_manager,
        bonding_manager,
        ticket_broker,
        service_registry,
    })
}

impl Deployment {
    /// The address registered under a Controller name, for the names in [`CONTRACT_NAMES`]
    /// and `Controller`.
    pub fn by_name(&self, name: &str) -> Option<Address> {
        match name {
            "Controller" => Some(self.controller),
            "Minter" => Some(self.minter),
            "RoundsManager" => Some(self.rounds_manager),
            "BondingManager" => Some(self.bonding_manager),
            "TicketBroker" => Some(self.ticket_broker),
            "ServiceRegistry" => Some(self.service_registry),
            _ => None,
        }
    }
}
