//! Typed calls on one deployment.

use alloy::contract::{CallBuilder, CallDecoder};
use alloy::network::{Ethereum, Network, ReceiptResponse};
use alloy::primitives::{Address, Bytes, B256, U256};
use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use alloy::signers::local::PrivateKeySigner;
use livefarm_pm::WinningTicket;

use crate::bindings::{BondingManager, RoundsManager, ServiceRegistry, TicketBroker};
use crate::deploy::{resolve_with, Deployment};
use crate::error::ChainError;
use crate::ticket::{onchain_ticket, recipient_rand};

/// `TicketBroker.getSenderInfo` (§12.2), flattened.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SenderInfo {
    /// Deposit in wei.
    pub deposit: U256,
    /// Round from which `withdraw()` is allowed; 0 when no unlock was requested.
    pub withdraw_round: U256,
    /// Reserve left in wei.
    pub reserve_funds_remaining: U256,
    /// Reserve claimed by all recipients in the current round.
    pub reserve_claimed_in_current_round: U256,
}

/// The parts of `BondingManager.getTranscoder` this farm uses.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TranscoderInfo {
    /// Share of rewards kept, in millionths.
    pub reward_cut: U256,
    /// Share of fees passed on, in millionths.
    pub fee_share: U256,
    /// First round in which it is active.
    pub activation_round: U256,
    /// First round in which it is no longer active (`2^256-1` while in the pool).
    pub deactivation_round: U256,
    /// All fees ever credited.
    pub cumulative_fees: U256,
    /// Round of the last credited fee.
    pub last_fee_round: U256,
}

/// Gas given to each ticket of a batch redemption; one redemption uses about 180,000.
pub const REDEEM_GAS_PER_TICKET: u64 = 350_000;
/// Gas for the batch call itself.
const BATCH_BASE_GAS: u64 = 100_000;

/// A mined transaction's receipt.
pub type Receipt = <Ethereum as Network>::ReceiptResponse;

pub(crate) fn parse_url(
    rpc_url: &str,
) -> Result<alloy::transports::http::reqwest::Url, ChainError> {
    rpc_url.parse().map_err(
        |e: <alloy::transports::http::reqwest::Url as std::str::FromStr>::Err| {
            ChainError::InvalidUrl {
                url: rpc_url.to_string(),
                reason: e.to_string(),
            }
        },
    )
}

/// A provider that signs with `signer`. The nonce is asked of the node for every transaction:
/// alloy's default cached nonce would be spent by a transaction refused during gas estimation,
/// and every later transaction would then wait forever behind the gap.
pub(crate) fn signing_provider(
    rpc_url: &str,
    signer: PrivateKeySigner,
) -> Result<DynProvider, ChainError> {
    Ok(ProviderBuilder::new()
        .disable_recommended_fillers()
        .with_gas_estimation()
        .with_simple_nonce_management()
        .fetch_chain_id()
        .wallet(signer)
        .connect_http(parse_url(rpc_url)?)
        .erased())
}

/// Sends a transaction, waits for its receipt and turns status 0 into [`ChainError::TxFailed`].
/// A revert during gas estimation comes back as [`ChainError::Reverted`] with its reason.
pub(crate) async fn send_tx<P, D>(
    call: &'static str,
    builder: CallBuilder<P, D>,
) -> Result<Receipt, ChainError>
where
    P: Provider,
    D: CallDecoder,
{
    let pending = builder
        .send()
        .await
        .map_err(|e| ChainError::from_contract(call, e))?;
    let receipt = pending
        .get_receipt()
        .await
        .map_err(|source| ChainError::Receipt {
            call,
            source: Box::new(source),
        })?;
    if !receipt.status() {
        return Err(ChainError::TxFailed {
            call,
            tx_hash: receipt.transaction_hash(),
        });
    }
    Ok(receipt)
}

fn call_err(call: &'static str) -> impl FnOnce(alloy::contract::Error) -> ChainError {
    move |e| ChainError::from_contract(call, e)
}

/// A connection to one deployment, optionally with a signing account for transactions.
#[derive(Clone, Debug)]
pub struct Chain {
    provider: DynProvider,
    deployment: Deployment,
    from: Option<Address>,
}

impl Chain {
    /// Connects with a signing key (hex, with or without `0x`): reads and transactions.
    pub fn connect(
        rpc_url: &str,
        signer_key: &str,
        deployment: Deployment,
    ) -> Result<Chain, ChainError> {
        let signer: PrivateKeySigner = signer_key.parse().map_err(|_| ChainError::InvalidKey)?;
        let from = signer.address();
        let provider = signing_provider(rpc_url, signer)?;
        Ok(Chain {
            provider,
            deployment,
            from: Some(from),
        })
    }

    /// Connects without a key: reads only; transactions fail at the node.
    pub fn read_only(rpc_url: &str, deployment: Deployment) -> Result<Chain, ChainError> {
        let provider = ProviderBuilder::new()
            .connect_http(parse_url(rpc_url)?)
            .erased();
        Ok(Chain {
            provider,
            deployment,
            from: None,
        })
    }

    /// Connects and resolves the deployment through its Controller.
    pub async fn connect_resolved(
        rpc_url: &str,
        signer_key: &str,
        controller: Address,
    ) -> Result<Chain, ChainError> {
        let mut chain = Chain::connect(rpc_url, signer_key, Deployment::placeholder(controller))?;
        chain.deployment = resolve_with(&chain.provider, controller).await?;
        Ok(chain)
    }

    /// The signing account, if any.
    pub fn address(&self) -> Option<Address> {
        self.from
    }

    /// The contract addresses.
    pub fn deployment(&self) -> &Deployment {
        &self.deployment
    }

    /// The underlying provider, for calls this type does not wrap.
    pub fn provider(&self) -> &DynProvider {
        &self.provider
    }

    fn broker(&self) -> TicketBroker::TicketBrokerInstance<DynProvider> {
        TicketBroker::new(self.deployment.ticket_broker, self.provider.clone())
    }

    fn rounds(&self) -> RoundsManager::RoundsManagerInstance<DynProvider> {
        RoundsManager::new(self.deployment.rounds_manager, self.provider.clone())
    }

    fn bonding(&self) -> BondingManager::BondingManagerInstance<DynProvider> {
        BondingManager::new(self.deployment.bonding_manager, self.provider.clone())
    }

    fn registry(&self) -> ServiceRegistry::ServiceRegistryInstance<DynProvider> {
        ServiceRegistry::new(self.deployment.service_registry, self.provider.clone())
    }

    // ---- chain ----

    /// The latest block number.
    pub async fn block_number(&self) -> Result<u64, ChainError> {
        Ok(self.provider.get_block_number().await?)
    }

    /// The ETH balance of an account.
    pub async fn balance(&self, addr: Address) -> Result<U256, ChainError> {
        Ok(self.provider.get_balance(addr).await?)
    }

    // ---- TicketBroker: senders ----

    /// `fundDeposit()` with `amount` wei.
    pub async fn fund_deposit(&self, amount: U256) -> Result<Receipt, ChainError> {
        send_tx("fundDeposit", self.broker().fundDeposit().value(amount)).await
    }

    /// `fundReserve()` with `amount` wei.
    pub async fn fund_reserve(&self, amount: U256) -> Result<Receipt, ChainError> {
        send_tx("fundReserve", self.broker().fundReserve().value(amount)).await
    }

    /// `fundDepositAndReserve(deposit, reserve)` with `deposit + reserve` wei.
    pub async fn fund_deposit_and_reserve(
        &self,
        deposit: U256,
        reserve: U256,
    ) -> Result<Receipt, ChainError> {
        let broker = self.broker();
        let call = broker
            .fundDepositAndReserve(deposit, reserve)
            .value(deposit.saturating_add(reserve));
        send_tx("fundDepositAndReserve", call).await
    }

    /// `unlock()`: starts the unlock period of the signing sender.
    pub async fn unlock(&self) -> Result<Receipt, ChainError> {
        send_tx("unlock", self.broker().unlock()).await
    }

    /// `cancelUnlock()`.
    pub async fn cancel_unlock(&self) -> Result<Receipt, ChainError> {
        send_tx("cancelUnlock", self.broker().cancelUnlock()).await
    }

    /// `withdraw()`: pays deposit and reserve back once the unlock period is over.
    pub async fn withdraw(&self) -> Result<Receipt, ChainError> {
        send_tx("withdraw", self.broker().withdraw()).await
    }

    /// `getSenderInfo(sender)`.
    pub async fn sender_info(&self, sender: Address) -> Result<SenderInfo, ChainError> {
        let info = self
            .broker()
            .getSenderInfo(sender)
            .call()
            .await
            .map_err(call_err("getSenderInfo"))?;
        Ok(SenderInfo {
            deposit: info.sender.deposit,
            withdraw_round: info.sender.withdrawRound,
            reserve_funds_remaining: info.reserve.fundsRemaining,
            reserve_claimed_in_current_round: info.reserve.claimedInCurrentRound,
        })
    }

    /// `claimedReserve(holder, claimant)`: claimed by `claimant` in the current round.
    pub async fn claimed_reserve(
        &self,
        holder: Address,
        claimant: Address,
    ) -> Result<U256, ChainError> {
        self.broker()
            .claimedReserve(holder, claimant)
            .call()
            .await
            .map_err(call_err("claimedReserve"))
    }

    /// `claimableReserve(holder, claimant)`.
    pub async fn claimable_reserve(
        &self,
        holder: Address,
        claimant: Address,
    ) -> Result<U256, ChainError> {
        self.broker()
            .claimableReserve(holder, claimant)
            .call()
            .await
            .map_err(call_err("claimableReserve"))
    }

    /// `isUnlockInProgress(sender)`.
    pub async fn is_unlock_in_progress(&self, sender: Address) -> Result<bool, ChainError> {
        self.broker()
            .isUnlockInProgress(sender)
            .call()
            .await
            .map_err(call_err("isUnlockInProgress"))
    }

    // ---- TicketBroker: tickets ----

    /// `usedTickets(hash)`.
    pub async fn used_ticket(&self, ticket_hash: B256) -> Result<bool, ChainError> {
        self.broker()
            .usedTickets(ticket_hash)
            .call()
            .await
            .map_err(call_err("usedTickets"))
    }

    /// `getTicketHash(ticket)` as the contract computes it.
    pub async fn ticket_hash(&self, ticket: &WinningTicket) -> Result<B256, ChainError> {
        self.broker()
            .getTicketHash(onchain_ticket(ticket))
            .call()
            .await
            .map_err(call_err("getTicketHash"))
    }

    /// `redeemWinningTicket(ticket, sig, recipientRand)`. A contract refusal (§12.3) comes back
    /// as [`ChainError::Reverted`] with the contract's reason, before anything is mined.
    pub async fn redeem_winning_ticket(
        &self,
        ticket: &WinningTicket,
    ) -> Result<Receipt, ChainError> {
        let broker = self.broker();
        let call = broker.redeemWinningTicket(
            onchain_ticket(ticket),
            Bytes::copy_from_slice(&ticket.sig),
            recipient_rand(ticket),
        );
        send_tx("redeemWinningTicket", call).await
    }

    /// `batchRedeemWinningTickets`: each ticket succeeds or fails on its own; the receipt's
    /// `WinningTicketRedeemed` logs say which were redeemed.
    pub async fn batch_redeem_winning_tickets(
        &self,
        tickets: &[WinningTicket],
    ) -> Result<Receipt, ChainError> {
        let broker = self.broker();
        let call = broker.batchRedeemWinningTickets(
            tickets.iter().map(onchain_ticket).collect(),
            tickets
                .iter()
                .map(|t| Bytes::copy_from_slice(&t.sig))
                .collect(),
            tickets.iter().map(recipient_rand).collect(),
        );
        // Gas estimation is useless here: the lowest gas at which the batch succeeds is one at
        // which every inner redemption runs out of gas and is caught. Give each ticket a fixed
        // budget instead.
        let gas = BATCH_BASE_GAS + REDEEM_GAS_PER_TICKET * tickets.len() as u64;
        send_tx("batchRedeemWinningTickets", call.gas(gas)).await
    }

    // ---- RoundsManager ----

    /// `initializeRound()`.
    pub async fn initialize_round(&self) -> Result<Receipt, ChainError> {
        send_tx("initializeRound", self.rounds().initializeRound()).await
    }

    /// `currentRound()`.
    pub async fn current_round(&self) -> Result<u64, ChainError> {
        let round = self
            .rounds()
            .currentRound()
            .call()
            .await
            .map_err(call_err("currentRound"))?;
        Ok(round.saturating_to())
    }

    /// `currentRoundInitialized()`.
    pub async fn current_round_initialized(&self) -> Result<bool, ChainError> {
        self.rounds()
            .currentRoundInitialized()
            .call()
            .await
            .map_err(call_err("currentRoundInitialized"))
    }

    /// `lastInitializedRound()`.
    pub async fn last_initialized_round(&self) -> Result<u64, ChainError> {
        let round = self
            .rounds()
            .lastInitializedRound()
            .call()
            .await
            .map_err(call_err("lastInitializedRound"))?;
        Ok(round.saturating_to())
    }

    /// `currentRoundStartBlock()`.
    pub async fn current_round_start_block(&self) -> Result<u64, ChainError> {
        let block = self
            .rounds()
            .currentRoundStartBlock()
            .call()
            .await
            .map_err(call_err("currentRoundStartBlock"))?;
        Ok(block.saturating_to())
    }

    /// `roundLength()`.
    pub async fn round_length(&self) -> Result<u64, ChainError> {
        let len = self
            .rounds()
            .roundLength()
            .call()
            .await
            .map_err(call_err("roundLength"))?;
        Ok(len.saturating_to())
    }

    /// `blockHashForRound(round)`; zero when the round was never initialised.
    pub async fn block_hash_for_round(&self, round: u64) -> Result<B256, ChainError> {
        self.rounds()
            .blockHashForRound(U256::from(round))
            .call()
            .await
            .map_err(call_err("blockHashForRound"))
    }

    // ---- BondingManager ----

    /// `transcoder(rewardCut, feeShare)`: registers the signing account and puts it in the pool,
    /// active from the next round.
    pub async fn activate_transcoder(
        &self,
        reward_cut: U256,
        fee_share: U256,
    ) -> Result<Receipt, ChainError> {
        send_tx(
            "transcoder",
            self.bonding().transcoder(reward_cut, fee_share),
        )
        .await
    }

    /// `resignTranscoder()`: leaves the pool; inactive from the next round.
    pub async fn resign_transcoder(&self) -> Result<Receipt, ChainError> {
        send_tx("resignTranscoder", self.bonding().resignTranscoder()).await
    }

    /// `isActiveTranscoder(addr)`.
    pub async fn is_active_transcoder(&self, addr: Address) -> Result<bool, ChainError> {
        self.bonding()
            .isActiveTranscoder(addr)
            .call()
            .await
            .map_err(call_err("isActiveTranscoder"))
    }

    /// `getTranscoderPoolSize()`.
    pub async fn transcoder_pool_size(&self) -> Result<u64, ChainError> {
        let size = self
            .bonding()
            .getTranscoderPoolSize()
            .call()
            .await
            .map_err(call_err("getTranscoderPoolSize"))?;
        Ok(size.saturating_to())
    }

    /// The pool members, walked with `getFirstTranscoderInPool` / `getNextTranscoderInPool`.
    pub async fn transcoder_pool(&self) -> Result<Vec<Address>, ChainError> {
        let bonding = self.bonding();
        let mut out = Vec::new();
        let mut next = bonding
            .getFirstTranscoderInPool()
            .call()
            .await
            .map_err(call_err("getFirstTranscoderInPool"))?;
        while !next.is_zero() {
            out.push(next);
            next = bonding
                .getNextTranscoderInPool(next)
                .call()
                .await
                .map_err(call_err("getNextTranscoderInPool"))?;
        }
        Ok(out)
    }

    /// `getTranscoder(addr)`.
    pub async fn transcoder(&self, addr: Address) -> Result<TranscoderInfo, ChainError> {
        let t = self
            .bonding()
            .getTranscoder(addr)
            .call()
            .await
            .map_err(call_err("getTranscoder"))?;
        Ok(TranscoderInfo {
            reward_cut: t.rewardCut,
            fee_share: t.feeShare,
            activation_round: t.activationRound,
            deactivation_round: t.deactivationRound,
            cumulative_fees: t.cumulativeFees,
            last_fee_round: t.lastFeeRound,
        })
    }

    /// Fees credited to `transcoder` and not yet withdrawn.
    pub async fn pending_fees(&self, transcoder: Address) -> Result<U256, ChainError> {
        self.bonding()
            .pendingFees(transcoder, U256::ZERO)
            .call()
            .await
            .map_err(call_err("pendingFees"))
    }

    /// `withdrawFees(recipient, amount)` for the signing transcoder.
    pub async fn withdraw_fees(
        &self,
        recipient: Address,
        amount: U256,
    ) -> Result<Receipt, ChainError> {
        send_tx(
            "withdrawFees",
            self.bonding().withdrawFees(recipient, amount),
        )
        .await
    }

    // ---- ServiceRegistry ----

    /// `setServiceURI(uri)` for the signing account.
    pub async fn set_service_uri(&self, uri: &str) -> Result<Receipt, ChainError> {
        send_tx(
            "setServiceURI",
            self.registry().setServiceURI(uri.to_string()),
        )
        .await
    }

    /// `getServiceURI(addr)`.
    pub async fn service_uri(&self, addr: Address) -> Result<String, ChainError> {
        self.registry()
            .getServiceURI(addr)
            .call()
            .await
            .map_err(call_err("getServiceURI"))
    }
}

impl Deployment {
    // Only the controller is known until `resolve_with` fills the rest in.
    fn placeholder(controller: Address) -> Deployment {
        Deployment {
            controller,
            minter: Address::ZERO,
            rounds_manager: Address::ZERO,
            bonding_manager: Address::ZERO,
            ticket_broker: Address::ZERO,
            service_registry: Address::ZERO,
        }
    }
}
