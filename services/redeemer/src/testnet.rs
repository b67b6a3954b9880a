//! A throw-away protocol on anvil with one active orchestrator and a broadcaster, for the
//! integration tests and the benchmark.

use std::sync::Arc;

use alloy::primitives::hex;
use livefarm_bus::JobBus;
use livefarm_chain::testing::{Anvil, DEV_KEYS};
use livefarm_chain::{deploy, Address, Chain, DeployOptions, Deployment, U256};
use livefarm_pm::ticket::recipient_rand_hash;
use livefarm_pm::{Price, Signer, Ticket, TicketExpirationParams, WinningTicket};

use crate::config::RedeemerConfig;
use crate::error::RedeemerError;

/// Key of the account the test redeemers pay gas from (anvil dev account 4): nothing else
/// sends from it, so its nonce counts redemption transactions.
pub const REDEEMER_KEY: &str = DEV_KEYS[4];

fn setup<E: std::fmt::Display>(what: &'static str) -> impl FnOnce(E) -> RedeemerError {
    move |e| RedeemerError::Setup(format!("{what}: {e}"))
}

/// A signer for an anvil dev key.
pub fn dev_signer(key: &str) -> Result<Signer, RedeemerError> {
    let bytes: [u8; 32] = hex::decode(key)
        .map_err(setup("dev key"))?
        .try_into()
        .map_err(|_| RedeemerError::Setup("dev key is not 32 bytes".to_owned()))?;
    Signer::from_bytes(bytes).map_err(setup("dev key"))
}

/// Anvil with a deployment, an active orchestrator (dev key 1) and a broadcaster (dev key 2).
pub struct TestNet {
    /// The node.
    pub anvil: Anvil,
    /// The contracts.
    pub deployment: Deployment,
    /// The orchestrator's connection (ticket recipient).
    pub orch: Chain,
    /// The broadcaster's connection (ticket sender).
    pub bcast: Chain,
    /// The broadcaster's ticket signer.
    pub bcast_signer: Signer,
}

impl TestNet {
    /// Starts anvil, deploys with 20-block rounds, activates the orchestrator and moves to a
    /// round where it is active.
    pub async fn start() -> Result<TestNet, RedeemerError> {
        TestNet::start_with(&DeployOptions {
            round_length: 20,
            ..DeployOptions::default()
        })
        .await
    }

    /// Like [`TestNet::start`] with the deployment's options (round length, periods).
    pub async fn start_with(opts: &DeployOptions) -> Result<TestNet, RedeemerError> {
        let anvil = Anvil::start().await?;
        let url = anvil.endpoint();
        let deployment = deploy(&url, DEV_KEYS[0], opts).await?;
        let orch = Chain::connect(&url, DEV_KEYS[1], deployment)?;
        orch.activate_transcoder(U256::ZERO, U256::from(1_000_000u64))
            .await?;
        let bcast = Chain::connect(&url, DEV_KEYS[2], deployment)?;
        let bcast_signer = dev_signer(DEV_KEYS[2])?;
        anvil.advance_round(&bcast).await?;
        Ok(TestNet {
            anvil,
            deployment,
            orch,
            bcast,
            bcast_signer,
        })
    }

    /// The orchestrator's address.
    pub fn orch_addr(&self) -> Address {
        self.orch.address().unwrap_or_default()
    }

    /// The broadcaster's address.
    pub fn bcast_addr(&self) -> Address {
        self.bcast.address().unwrap_or_default()
    }

    /// A redeemer configuration for this network and the Redis at `redis_url`.
    pub fn redeemer_config(&self, redis_url: &str, instance: &str) -> RedeemerConfig {
        RedeemerConfig {
            bus_url: redis_url.to_owned(),
            rpc_url: self.anvil.endpoint(),
            controller: self.deployment.controller.to_string(),
            signer_key: REDEEMER_KEY.to_owned(),
            recipient: self.orch_addr().to_string(),
            instance_id: instance.to_owned(),
            poll_interval_ms: 100,
            lock_ttl_ms: 1_500,
            lock_renew_ms: 300,
            max_float_poll_ms: 200,
            ..RedeemerConfig::default()
        }
    }

    /// A winning ticket (win probability 1) from `signer` to the orchestrator, created in the
    /// last initialised round, whose params expire at `params_expiration_block`.
    pub async fn ticket(
        &self,
        signer: &Signer,
        face_value: U256,
        nonce: u32,
        params_expiration_block: u64,
    ) -> Result<WinningTicket, RedeemerError> {
        let round = self.bcast.last_initialized_round().await?;
        let hash = self.bcast.block_hash_for_round(round).await?;
        Ok(self.ticket_in_round(
            signer,
            face_value,
            nonce,
            params_expiration_block,
            round,
            hash.0,
        ))
    }

    /// Like [`TestNet::ticket`] with an explicit creation round and block hash.
    pub fn ticket_in_round(
        &self,
        signer: &Signer,
        face_value: U256,
        nonce: u32,
        params_expiration_block: u64,
        round: u64,
        block_hash: [u8; 32],
    ) -> WinningTicket {
        let rand = livefarm_pm::U256::from(0x5eed_0000u64 + u64::from(nonce));
        let ticket = Ticket {
            recipient: livefarm_pm::Address(self.orch_addr().0 .0),
            sender: signer.address(),
            face_value,
            win_prob: livefarm_pm::MAX_WIN_PROB,
            sender_nonce: nonce,
            recipient_rand_hash: recipient_rand_hash(&rand),
            expiration_params: TicketExpirationParams {
                creation_round: i64::try_from(round).unwrap_or(i64::MAX),
                creation_round_block_hash: block_hash,
            },
            params_expiration_block,
            price_per_pixel: Price::zero(),
        };
        let sig = signer.sign_personal(&ticket.hash());
        WinningTicket::new(&ticket, &sig, rand, "test-session")
    }
}

/// Appends a winning ticket to `stream` as the orchestrator does.
pub async fn publish(
    bus: &Arc<dyn JobBus>,
    stream: &str,
    ticket: &WinningTicket,
) -> Result<(), RedeemerError> {
    let payload = serde_json::to_vec(ticket).map_err(setup("ticket json"))?;
    let headers =
        livefarm_jobs::winning_ticket_headers(&ticket.sender.to_string(), &ticket.ticket_hash);
    bus.publish(stream, &payload, &headers).await?;
    Ok(())
}
