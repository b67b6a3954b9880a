//! Signing, broadcasting and following `redeemWinningTicket` transactions.
//!
//! A transaction is signed here, recorded by the caller, and only then broadcast: its hash is
//! durable before the node sees it, so a crash at any point leaves either nothing on chain or a
//! transaction whose hash the next start can look up (or whose recorded bytes it can send
//! again, which is the same transaction, not a second submission).

use alloy::eips::eip2718::Encodable2718;
use alloy::network::{
    Ethereum, EthereumWallet, Network, NetworkTransactionBuilder, ReceiptResponse,
    TransactionBuilder,
};
use alloy::primitives::{hex, keccak256, Address, Bytes, B256};
use alloy::providers::{DynProvider, Provider, ProviderBuilder};
use alloy::signers::local::PrivateKeySigner;
use livefarm_chain::bindings::TicketBroker;
use livefarm_chain::onchain_ticket;
use livefarm_pm::WinningTicket;

use crate::error::RedeemerError;
use crate::store::{now_ms, SentTx};

type TransactionRequest = <Ethereum as Network>::TransactionRequest;

/// Why gas could not be estimated.
#[derive(Debug)]
pub enum EstimateError {
    /// The contract refused the redemption, with its reason (§12.3).
    Reverted(String),
    /// Anything else (transport): try again later.
    Other(String),
}

/// A mined transaction, as far as the redeemer cares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mined {
    /// Receipt status.
    pub success: bool,
    /// Block it was mined in.
    pub block: u64,
}

/// Signs and sends redemptions from one account.
#[derive(Clone, Debug)]
pub struct TxSender {
    provider: DynProvider,
    wallet: EthereumWallet,
    from: Address,
    broker: Address,
    chain_id: u64,
}

fn parse_hash(hash: &str) -> Result<B256, RedeemerError> {
    hash.parse()
        .map_err(|_| RedeemerError::Store(format!("bad transaction hash {hash:?}")))
}

impl TxSender {
    /// Connects to `rpc_url` with the hex `signer_key`; redemptions go to `broker`.
    pub async fn connect(
        rpc_url: &str,
        signer_key: &str,
        broker: Address,
    ) -> Result<TxSender, RedeemerError> {
        let signer: PrivateKeySigner = signer_key.parse().map_err(|_| RedeemerError::Config {
            key: "signer_key",
            reason: "not a hex secp256k1 key".to_owned(),
        })?;
        let from = signer.address();
        let url = rpc_url.parse().map_err(|e| RedeemerError::Config {
            key: "rpc_url",
            reason: format!("{e}"),
        })?;
        let provider = ProviderBuilder::new()
            .disable_recommended_fillers()
            .connect_http(url)
            .erased();
        let chain_id = provider.get_chain_id().await?;
        Ok(TxSender {
            provider,
            wallet: EthereumWallet::from(signer),
            from,
            broker,
            chain_id,
        })
    }

    /// The paying account.
    pub fn address(&self) -> Address {
        self.from
    }

    /// The provider (reads only).
    pub fn provider(&self) -> &DynProvider {
        &self.provider
    }

    fn request(&self, ticket: &WinningTicket) -> TransactionRequest {
        let broker = TicketBroker::new(self.broker, self.provider.clone());
        broker
            .redeemWinningTicket(
                onchain_ticket(ticket),
                Bytes::copy_from_slice(&ticket.sig),
                ticket.recipient_rand,
            )
            .from(self.from)
            .into_transaction_request()
    }

    /// `eth_estimateGas` of the redemption; a contract refusal comes back with its reason.
    pub async fn estimate(&self, ticket: &WinningTicket) -> Result<u64, EstimateError> {
        let broker = TicketBroker::new(self.broker, self.provider.clone());
        let call = broker
            .redeemWinningTicket(
                onchain_ticket(ticket),
                Bytes::copy_from_slice(&ticket.sig),
                ticket.recipient_rand,
            )
            .from(self.from);
        call.estimate_gas().await.map_err(|e| {
            if let Some(revert) = e.as_decoded_error::<alloy::sol_types::Revert>() {
                return EstimateError::Reverted(revert.reason);
            }
            if let Some(data) = e.as_revert_data() {
                return EstimateError::Reverted(data.to_string());
            }
            EstimateError::Other(e.to_string())
        })
    }

    /// `eth_gasPrice`.
    pub async fn gas_price(&self) -> Result<u128, RedeemerError> {
        Ok(self.provider.get_gas_price().await?)
    }

    /// EIP-1559 fee cap and tip for a new transaction.
    pub async fn fees(&self) -> Result<(u128, u128), RedeemerError> {
        let est = self.provider.estimate_eip1559_fees().await?;
        Ok((est.max_fee_per_gas, est.max_priority_fee_per_gas))
    }

    /// The next nonce, counting transactions in the pool.
    pub async fn pending_nonce(&self) -> Result<u64, RedeemerError> {
        Ok(self
            .provider
            .get_transaction_count(self.from)
            .pending()
            .await?)
    }

    /// The next nonce after mined transactions only.
    pub async fn mined_nonce(&self) -> Result<u64, RedeemerError> {
        Ok(self
            .provider
            .get_transaction_count(self.from)
            .latest()
            .await?)
    }

    /// Signs a redemption without sending it.
    pub async fn sign(
        &self,
        ticket: &WinningTicket,
        gas: u64,
        nonce: u64,
        max_fee_per_gas: u128,
        max_priority_fee_per_gas: u128,
    ) -> Result<SentTx, RedeemerError> {
        let request = self
            .request(ticket)
            .with_chain_id(self.chain_id)
            .with_nonce(nonce)
            .with_gas_limit(gas)
            .with_max_fee_per_gas(max_fee_per_gas)
            .with_max_priority_fee_per_gas(max_priority_fee_per_gas);
        let envelope = request
            .build(&self.wallet)
            .await
            .map_err(|e| RedeemerError::Sign(e.to_string()))?;
        let raw = envelope.encoded_2718();
        Ok(SentTx {
            hash: keccak256(&raw).to_string(),
            raw: hex::encode_prefixed(&raw),
            nonce,
            max_fee_per_gas,
            max_priority_fee_per_gas,
            sent_at_ms: now_ms(),
        })
    }

    /// Broadcasts a recorded transaction. A node that already has it, or has already mined
    /// something with its nonce, is not an error here: the receipts tell what happened.
    pub async fn broadcast(&self, tx: &SentTx) -> Result<(), RedeemerError> {
        let raw = hex::decode(&tx.raw)
            .map_err(|e| RedeemerError::Store(format!("bad raw transaction: {e}")))?;
        match self.provider.send_raw_transaction(&raw).await {
            Ok(_) => Ok(()),
            Err(e) => {
                let msg = e.to_string().to_lowercase();
                if msg.contains("already") || msg.contains("known") || msg.contains("nonce too low")
                {
                    Ok(())
                } else {
                    Err(e.into())
                }
            }
        }
    }

    /// The receipt of `hash`, if mined.
    pub async fn mined(&self, hash: &str) -> Result<Option<Mined>, RedeemerError> {
        let receipt = self
            .provider
            .get_transaction_receipt(parse_hash(hash)?)
            .await?;
        Ok(receipt.and_then(|r| {
            Some(Mined {
                success: r.status(),
                block: r.block_number()?,
            })
        }))
    }

    /// Whether the node knows `hash` (in its pool or mined).
    pub async fn known(&self, hash: &str) -> Result<bool, RedeemerError> {
        let tx = self
            .provider
            .get_transaction_by_hash(parse_hash(hash)?)
            .await?;
        Ok(tx.is_some())
    }

    /// The latest block number.
    pub async fn block_number(&self) -> Result<u64, RedeemerError> {
        Ok(self.provider.get_block_number().await?)
    }

    /// The L1 block number the chain stands at: ticket params expire in L1 blocks (§11.2), and
    /// on Arbitrum the latest header carries it as `l1BlockNumber`; elsewhere it is the block
    /// number itself.
    pub async fn l1_block_number(&self) -> Result<u64, RedeemerError> {
        let head: Option<LatestHead> = self
            .provider
            .raw_request("eth_getBlockByNumber".into(), ("latest", false))
            .await?;
        head.map(|h| h.l1_block())
            .ok_or_else(|| RedeemerError::Rpc("the node has no latest block".to_owned()))
    }
}

/// The parts of a block header that place it on L1.
#[derive(Debug, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct LatestHead {
    number: alloy::primitives::U64,
    #[serde(default)]
    l1_block_number: Option<alloy::primitives::U64>,
}

impl LatestHead {
    fn l1_block(&self) -> u64 {
        self.l1_block_number.unwrap_or(self.number).to::<u64>()
    }
}

/// `fee * (100 + percent) / 100`, at least one wei more.
pub fn bump(fee: u128, percent: u64) -> u128 {
    let raised = fee.saturating_mul(100 + u128::from(percent)) / 100;
    raised.max(fee.saturating_add(1))
}

#[cfg(test)]
mod tests {
    use super::{bump, LatestHead};

    #[test]
    fn params_expire_in_l1_blocks() {
        let l1: LatestHead =
            serde_json::from_str(r#"{"number":"0x10","hash":"0x00"}"#).expect("l1 header");
        assert_eq!(l1.l1_block(), 16);
        let arbitrum: LatestHead =
            serde_json::from_str(r#"{"number":"0x5f5e100","l1BlockNumber":"0x2a"}"#)
                .expect("arbitrum header");
        assert_eq!(arbitrum.l1_block(), 42);
    }

    #[test]
    fn bump_raises_by_the_percentage_and_at_least_one_wei() {
        assert_eq!(bump(1_000_000_000, 11), 1_110_000_000);
        assert_eq!(bump(0, 11), 1);
        assert_eq!(bump(5, 11), 6);
    }
}
