//! `livefarm bench indexer`: builds a dev chain with many blocks and TicketBroker events on
//! anvil, then times a full backfill by the [`Follower`] next to a plain `eth_getLogs` loop
//! over the same range, filter and node.

use std::time::Instant;

use alloy::eips::eip2718::Encodable2718;
use alloy::network::{
    Ethereum, EthereumWallet, Network, NetworkTransactionBuilder, TransactionBuilder,
};
use alloy::primitives::{Address, U256};
use alloy::providers::Provider;
use alloy::signers::local::PrivateKeySigner;
use alloy::sol_types::SolCall;
use futures_util::future::try_join_all;
use livefarm_chain::bindings::TicketBroker;
use livefarm_chain::testing::{Anvil, DEV_KEYS};
use livefarm_chain::{deploy, DeployOptions};
use serde::{Deserialize, Serialize};

use crate::error::IndexerError;
use crate::follower::{ContractsSource, Follower, FollowerOptions};
use crate::rpc::Rpc;
use crate::state::Contracts;
use crate::store::Store;

/// What to generate and how to read it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct BenchOptions {
    /// Blocks to generate.
    pub blocks: u64,
    /// Events to generate (spread evenly over the blocks).
    pub events: u64,
    /// `eth_getLogs` range of both readers.
    pub max_block_range: u64,
    /// Requests the indexer keeps in flight.
    pub concurrency: usize,
    /// Timed rounds, each the plain loop then the indexer; the median round's ratio counts.
    pub runs: u32,
}

impl Default for BenchOptions {
    fn default() -> Self {
        BenchOptions {
            blocks: 10_000,
            events: 50_000,
            max_block_range: 2000,
            concurrency: 4,
            runs: 5,
        }
    }
}

/// The figures, serialisable as `--json` output.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BenchReport {
    /// Blocks in the indexed range.
    pub blocks: u64,
    /// Logs in the range (matching the indexer's filter).
    pub logs: u64,
    /// Seconds spent generating the chain.
    pub generate_seconds: f64,
    /// Best backfill time of the indexer (fetch, fold, save to memory).
    pub indexer_seconds: f64,
    /// Indexer blocks per second.
    pub indexer_blocks_per_s: f64,
    /// Indexer logs per second.
    pub indexer_logs_per_s: f64,
    /// Best time of the plain sequential `eth_getLogs` loop.
    pub getlogs_seconds: f64,
    /// Plain loop blocks per second.
    pub getlogs_blocks_per_s: f64,
    /// Plain loop logs per second.
    pub getlogs_logs_per_s: f64,
    /// Indexer throughput over plain loop throughput (target ≥ 0.9): the median of the
    /// rounds' ratios (each round times both readers back to back).
    pub ratio_vs_getlogs: f64,
    /// Every round's ratio, in order.
    pub ratio_vs_getlogs_rounds: Vec<f64>,
    /// `eth_getLogs` range used.
    pub max_block_range: u64,
    /// Indexer requests in flight.
    pub concurrency: usize,
}

fn bench_err(what: &str) -> impl FnOnce(String) -> IndexerError + '_ {
    move |e| IndexerError::Bench(format!("{what}: {e}"))
}

/// Starts anvil, generates the chain and runs both readers.
pub async fn bench(opts: BenchOptions) -> Result<BenchReport, IndexerError> {
    let anvil = Anvil::start().await?;
    bench_on(&anvil, &opts).await
}

/// Like [`bench`] on a given anvil (it must be fresh: the bench mines on it).
pub async fn bench_on(anvil: &Anvil, opts: &BenchOptions) -> Result<BenchReport, IndexerError> {
    let url = anvil.endpoint();
    let t0 = Instant::now();
    let deployment = deploy(&url, DEV_KEYS[0], &DeployOptions::default()).await?;
    let contracts = Contracts {
        ticket_broker: deployment.ticket_broker,
        rounds_manager: deployment.rounds_manager,
        bonding_manager: deployment.bonding_manager,
        service_registry: deployment.service_registry,
    };
    let rpc = Rpc::connect(&url)?;
    let start = rpc.block_number().await? + 1;
    generate(&rpc, deployment.ticket_broker, opts).await?;
    let end = rpc.block_number().await?;
    let generate_seconds = t0.elapsed().as_secs_f64();

    let addresses = contracts.addresses();
    let topics = Contracts::topics();
    let mut getlogs_best = f64::INFINITY;
    let mut indexer_best = f64::INFINITY;
    let mut rounds = Vec::new();
    let mut logs = 0;
    for _ in 0..opts.runs.max(1) {
        // the plain loop: sequential ranges, nothing done with the logs but counting them
        let t = Instant::now();
        let mut n = 0u64;
        let mut a = start;
        while a <= end {
            let b = a.saturating_add(opts.max_block_range.max(1) - 1).min(end);
            n += rpc.logs(a, b, &addresses, &topics).await?.len() as u64;
            a = b + 1;
        }
        let getlogs_secs = t.elapsed().as_secs_f64();
        getlogs_best = getlogs_best.min(getlogs_secs);
        logs = n;

        let mut fo = FollowerOptions::new(url.clone(), ContractsSource::Explicit(contracts));
        fo.start_block = start;
        fo.max_block_range = opts.max_block_range;
        fo.concurrency = opts.concurrency;
        fo.batch_blocks = u64::MAX / 2;
        let follower = Follower::new(fo, Store::memory()).await?;
        let t = Instant::now();
        follower.sync_to_head().await?;
        let indexer_secs = t.elapsed().as_secs_f64();
        indexer_best = indexer_best.min(indexer_secs);
        if indexer_secs > 0.0 {
            rounds.push(getlogs_secs / indexer_secs);
        }
        let applied = follower
            .handle()
            .stats()
            .logs
            .load(std::sync::atomic::Ordering::Relaxed);
        if applied != n {
            return Err(IndexerError::Bench(format!(
                "the indexer applied {applied} logs, eth_getLogs returned {n}"
            )));
        }
    }
    let blocks = end + 1 - start;
    let per_s = |x: u64, s: f64| if s > 0.0 { x as f64 / s } else { 0.0 };
    Ok(BenchReport {
        blocks,
        logs,
        generate_seconds,
        indexer_seconds: indexer_best,
        indexer_blocks_per_s: per_s(blocks, indexer_best),
        indexer_logs_per_s: per_s(logs, indexer_best),
        getlogs_seconds: getlogs_best,
        getlogs_blocks_per_s: per_s(blocks, getlogs_best),
        getlogs_logs_per_s: per_s(logs, getlogs_best),
        ratio_vs_getlogs: {
            let mut sorted = rounds.clone();
            sorted.sort_by(f64::total_cmp);
            match sorted.len() {
                0 => 0.0,
                n if n % 2 == 1 => sorted[n / 2],
                n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
            }
        },
        ratio_vs_getlogs_rounds: rounds,
        max_block_range: opts.max_block_range,
        concurrency: opts.concurrency,
    })
}

/// Mines `opts.blocks` blocks with automine off, each holding funding transactions from the
/// dev accounts: `fundDepositAndReserve` (two events) and `fundDeposit` (one) to reach
/// `opts.events` in all.
async fn generate(rpc: &Rpc, broker: Address, opts: &BenchOptions) -> Result<(), IndexerError> {
    let provider = rpc.provider();
    let chain_id = rpc.chain_id().await?;
    let signers: Vec<PrivateKeySigner> = DEV_KEYS
        .iter()
        .map(|k| {
            k.parse()
                .map_err(|_| IndexerError::Bench("bad dev key".into()))
        })
        .collect::<Result<_, _>>()?;
    let mut nonces = Vec::new();
    for s in &signers {
        nonces.push(
            provider
                .get_transaction_count(s.address())
                .await
                .map_err(|e| bench_err("nonce")(e.to_string()))?,
        );
    }
    let wallets: Vec<EthereumWallet> = signers.iter().cloned().map(EthereumWallet::from).collect();
    let base_fee = 100_000_000_000u128;
    let () = provider
        .raw_request("evm_setAutomine".into(), (false,))
        .await
        .map_err(|e| bench_err("evm_setAutomine")(e.to_string()))?;
    let both = TicketBroker::fundDepositAndReserveCall {
        _depositAmount: U256::from(1),
        _reserveAmount: U256::from(1),
    }
    .abi_encode();
    let deposit = TicketBroker::fundDepositCall {}.abi_encode();
    let blocks = opts.blocks.max(1);
    let mut emitted = 0u64;
    let mut account = 0usize;
    for i in 0..blocks {
        // events this block should hold, spread evenly
        let want = (opts.events * (i + 1)) / blocks - emitted;
        let mut raw = Vec::new();
        let mut left = want;
        while left > 0 {
            let (input, value, n) = if left >= 2 {
                (both.clone(), U256::from(2), 2)
            } else {
                (deposit.clone(), U256::from(1), 1)
            };
            left -= n;
            let a = account % signers.len();
            account += 1;
            let req = <Ethereum as Network>::TransactionRequest::default()
                .with_to(broker)
                .with_value(value)
                .with_input(input)
                .with_nonce(nonces[a])
                .with_chain_id(chain_id)
                .with_gas_limit(300_000)
                .with_max_fee_per_gas(base_fee)
                .with_max_priority_fee_per_gas(1_000_000_000);
            nonces[a] += 1;
            let envelope = req
                .build(&wallets[a])
                .await
                .map_err(|e| bench_err("sign")(e.to_string()))?;
            raw.push(envelope.encoded_2718());
        }
        try_join_all(raw.iter().map(|tx| provider.send_raw_transaction(tx)))
            .await
            .map_err(|e| bench_err("send")(e.to_string()))?;
        let _: serde_json::Value = provider
            .raw_request("evm_mine".into(), ())
            .await
            .map_err(|e| bench_err("evm_mine")(e.to_string()))?;
        emitted += want;
    }
    let () = provider
        .raw_request("evm_setAutomine".into(), (true,))
        .await
        .map_err(|e| bench_err("evm_setAutomine")(e.to_string()))?;
    Ok(())
}
