//! Getting paid, end to end on a real chain: the contracts on anvil, the chain indexer, the
//! on-chain orchestrator service (`livefarm_orchestrator_service`) reading the chain
//! through the indexer, a transcoder worker, the ticket redeemer, and a broadcaster that pays
//! for real segments with a high win probability (the orchestrator takes each sender's max
//! float from the redeemer, as go-livepeer does with `-redeemerAddr`). The winners are redeemed once each: the
//! orchestrator's fees grow on chain and the sender's deposit shrinks by exactly their face
//! values. Mid-stream the sender unlocks its funds: the orchestrator refuses its tickets once
//! the withdrawal is near, the tickets it already won are redeemed before the withdrawal is
//! possible, and the sender then withdraws what is left.
//!
//! Real parts: anvil (npm `@foundry-rs/anvil`, scripts/install-chain-tools.sh), redis-server,
//! ffmpeg. Skipped (loudly) only when anvil is missing and LIVEFARM_REQUIRE_ANVIL is unset.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use alloy::providers::Provider;
use bytes::Bytes;
use livefarm_bus::JobBus;
use livefarm_chain::testing::{anvil_path, DEV_KEYS};
use livefarm_chain::{Address, DeployOptions, B256, U256};
use livefarm_chain_index::IndexerChainState;
use livefarm_integration_tests::Sandbox;
use livefarm_orchestrator::broadcaster::{BroadcastError, Broadcaster, SegmentReply};
use livefarm_orchestrator::{net, NodeConfig, WINNING_TICKETS_STREAM};
use livefarm_orchestrator_service::OrchestratorServiceConfig;
use livefarm_pm::{ChainState, Sender, SenderConfig, WinningTicket};
use livefarm_profiles::{preset, Profile};
use livefarm_redeemer::testnet::{dev_signer, TestNet, REDEEMER_KEY};
use livefarm_redeemer::{Store, TicketRecord, TicketState};
use livefarm_testkit::{free_addr, wait_until};
use num_rational::BigRational;

const ETH: u64 = 1_000_000_000_000_000_000;
/// 0.01 ETH per ticket, and face values capped at twice that: half the tickets win, and a
/// winner (0.02 ETH) is worth far more than its redemption gas on anvil.
const TICKET_EV: u64 = ETH / 100;
const MAX_FACE_VALUE: u64 = 2 * TICKET_EV;
/// Wei per pixel: one 2 s segment of the ladder below costs most of a ticket's EV.
const PRICE: i64 = 1_000_000_000;
/// Long rounds, so that holding tickets until their params expire (40 blocks) never outlives
/// the ticket validity period (2 rounds).
const ROUND_LENGTH: u64 = 60;
const WAIT: Duration = Duration::from_secs(90);

fn eth(n: u64) -> U256 {
    U256::from(n) * U256::from(ETH)
}

fn profiles() -> Vec<Profile> {
    vec![
        preset("P144p30fps16x9").expect("builtin"),
        preset("P240p30fps16x9").expect("builtin"),
    ]
}

struct Farm {
    net: TestNet,
    bus: Arc<dyn JobBus>,
    redeemer_store: Store,
    indexer_url: String,
    orchestrator_uri: String,
    recipient: Arc<livefarm_pm::Recipient>,
    _sandbox: Sandbox,
}

/// Anvil with the contracts, an active orchestrator (dev key 1) and a funded broadcaster
/// (dev key 2); Redis; then the indexer, the redeemer, a transcoder worker and the on-chain
/// orchestrator, each as its service runs it.
async fn start_farm() -> Option<Farm> {
    if anvil_path().is_none() {
        if std::env::var_os("LIVEFARM_REQUIRE_ANVIL").is_some() {
            panic!("LIVEFARM_REQUIRE_ANVIL is set but anvil is missing: run scripts/install-chain-tools.sh");
        }
        eprintln!("!!! SKIPPED: anvil not found (run scripts/install-chain-tools.sh or set LIVEFARM_ANVIL)");
        return None;
    }
    let net = TestNet::start_with(&DeployOptions {
        round_length: ROUND_LENGTH,
        ..DeployOptions::default()
    })
    .await
    .expect("test network");
    net.bcast
        .fund_deposit_and_reserve(eth(1), eth(1))
        .await
        .expect("fund the broadcaster");
    let sandbox = Sandbox::builder("chain").redis().start().await;
    let (redis_url, bus, dir) = (sandbox.redis_url(), sandbox.bus.clone(), sandbox.dir.path());

    let indexer_grpc = free_addr();
    let indexer = livefarm_indexer::IndexerConfig {
        rpc_url: net.anvil.endpoint(),
        controller: net.deployment.controller.to_string(),
        redis_url: redis_url.clone(),
        poll_interval_ms: 100,
        grpc_listen: indexer_grpc,
        admin_listen: free_addr(),
        ..livefarm_indexer::IndexerConfig::default()
    };
    sandbox.spawn("indexer", |stop| livefarm_indexer::run(indexer, stop));

    let redeemer_grpc = free_addr();
    let redeemer = livefarm_redeemer::RedeemerConfig {
        grpc_listen: redeemer_grpc,
        admin_listen: free_addr(),
        ..net.redeemer_config(&redis_url, "redeemer-1")
    };
    let redeemer_store = Store::connect(&redis_url, &redeemer.key_prefix)
        .await
        .expect("redeemer store");
    sandbox.spawn("redeemer", |stop| livefarm_redeemer::run(redeemer, stop));

    sandbox.transcoder("chain-worker");

    let key_file = dir.join("orchestrator.key");
    std::fs::write(&key_file, format!("0x{}\n", DEV_KEYS[1])).expect("key file");
    let indexer_url = format!("http://{indexer_grpc}");
    let orchestrator = OrchestratorServiceConfig {
        bus_url: redis_url.clone(),
        storage_url: sandbox.storage_url.clone(),
        admin_listen: free_addr(),
        orchestrator: NodeConfig {
            listen: Some("127.0.0.1:0".parse().expect("addr")),
            on_chain: true,
            indexer_url: indexer_url.clone(),
            redeemer_url: format!("http://{redeemer_grpc}"),
            key_file: Some(key_file),
            price_per_unit: PRICE,
            pixels_per_unit: 1,
            auto_adjust_price: false,
            ticket_ev: TICKET_EV,
            max_face_value: MAX_FACE_VALUE,
            ..NodeConfig::default()
        },
        ..OrchestratorServiceConfig::default()
    };
    // The service as its binary runs it, kept as a handle to read the recipient's state.
    let running = livefarm_orchestrator_service::start(orchestrator, sandbox.shutdown.clone())
        .await
        .expect("the on-chain orchestrator starts against the indexer");
    let node = running.node();
    assert_eq!(
        node.orchestrator.address().0,
        net.orch_addr().0 .0,
        "the port signs as the registered orchestrator"
    );
    let orchestrator_uri = node.service_uri.clone();
    let recipient = node
        .orchestrator
        .recipient()
        .expect("on-chain: a ticket recipient")
        .clone();
    tokio::spawn(running.wait());
    Some(Farm {
        net,
        bus,
        redeemer_store,
        indexer_url,
        orchestrator_uri,
        recipient,
        _sandbox: sandbox,
    })
}

/// A go-livepeer-shaped broadcaster paying from dev key 2, reading the chain through the
/// indexer as the orchestrator does.
async fn broadcaster(farm: &Farm, chain: Arc<dyn ChainState>) -> Broadcaster {
    let sender = Sender::new(
        dev_signer(DEV_KEYS[2]).expect("key"),
        SenderConfig {
            // a little above the EV: winProb rounds up
            max_ev: BigRational::from_integer((2 * TICKET_EV).into()),
            max_total_ev: BigRational::from_integer((10 * TICKET_EV).into()),
            deposit_multiplier: 1,
        },
        chain,
    );
    Broadcaster::connect(
        &farm.orchestrator_uri,
        dev_signer(DEV_KEYS[2]).expect("key"),
        Some(Arc::new(sender)),
        "chain-manifest",
    )
    .await
    .expect("GetOrchestrator")
}

async fn winners(bus: &Arc<dyn JobBus>) -> Vec<WinningTicket> {
    bus.range(WINNING_TICKETS_STREAM, None, 10_000)
        .await
        .expect("winning tickets")
        .iter()
        .map(|e| serde_json::from_slice(&e.payload).expect("winning ticket json"))
        .collect()
}

fn hex_hash(t: &WinningTicket) -> String {
    livefarm_redeemer::store::hash_hex(&t.ticket_hash)
}

/// Sends segment `seq` for the test ladder (2 s).
async fn send(
    b: &Broadcaster,
    segments: &[Bytes],
    seq: usize,
) -> Result<SegmentReply, BroadcastError> {
    b.submit(
        seq as i64,
        segments[seq].clone(),
        &profiles(),
        Duration::from_secs(2),
    )
    .await
}

/// Waits until every ticket has a final record; returns them.
async fn wait_final(farm: &Farm, tickets: &[WinningTicket]) -> Vec<TicketRecord> {
    let store = &farm.redeemer_store;
    wait_until(WAIT, "every ticket final", || async move {
        // The redemptions mine blocks of their own and may cross into a new round; on a live
        // network someone initialises it (go-livepeer's orchestrators do), here the test does.
        initialize_round_if_needed(farm).await;
        let mut records = Vec::new();
        for t in tickets {
            match store.get(&hex_hash(t)).await.expect("record") {
                Some(r) if r.state.is_final() => records.push(r),
                _ => break,
            }
        }
        if records.len() == tickets.len() {
            Ok(records)
        } else {
            Err(format!(
                "only {} of {} tickets final",
                records.len(),
                tickets.len()
            ))
        }
    })
    .await
}

async fn initialize_round_if_needed(farm: &Farm) {
    let chain = &farm.net.bcast;
    if !chain.current_round_initialized().await.expect("round") {
        chain.initialize_round().await.expect("initialize");
    }
}

/// Mines until the cached chain state passes `block`, initialising rounds on the way.
async fn mine_past(farm: &Farm, chain: &IndexerChainState, block: u64) {
    let now = farm.net.bcast.block_number().await.expect("block");
    if now <= block {
        farm.net.anvil.mine(block + 1 - now).await.expect("mine");
    }
    initialize_round_if_needed(farm).await;
    let head = farm.net.bcast.block_number().await.expect("block");
    chain
        .wait_for_block(head, WAIT)
        .await
        .expect("indexer follows");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn winning_tickets_are_redeemed_once_and_the_sender_pays_exactly_their_face_values() {
    let Some(farm) = start_farm().await else {
        return;
    };
    let net = &farm.net;
    let (orch, bcast) = (net.orch_addr(), net.bcast_addr());
    let funded = net.bcast.sender_info(bcast).await.expect("sender info");
    let fees_before = net.bcast.pending_fees(orch).await.expect("fees");
    let chain = Arc::new(
        IndexerChainState::connect(&farm.indexer_url)
            .await
            .expect("indexer"),
    );
    let head = net.bcast.block_number().await.expect("block");
    chain.wait_for_block(head, WAIT).await.expect("indexed");
    let b = broadcaster(&farm, chain.clone()).await;
    assert!(
        b.info().ticket_params.is_some(),
        "on-chain orchestrator quotes ticket params"
    );
    // The orchestrator follows this sender's max float as the redeemer reports it: the
    // reserve allocation (1 ETH: one orchestrator in the pool), nothing in flight.
    let pm_bcast = &b.address();
    let recipient = &farm.recipient;
    wait_until(
        WAIT,
        "the max float of 1 ETH from the redeemer",
        || async move {
            let reported = recipient.reported_max_float(pm_bcast);
            if reported == Some(eth(1)) {
                Ok(())
            } else {
                Err(format!("{reported:?}"))
            }
        },
    )
    .await;

    // Pay for real segments until a few tickets have won.
    let segments: Vec<Bytes> = livefarm_integration_tests::fixture_segments(40);
    let mut seq = 0usize;
    let mut tickets = 0usize;
    while winners(&farm.bus).await.len() < 3 {
        assert!(
            seq < 20,
            "{tickets} tickets in {seq} segments and fewer than 3 won"
        );
        let reply = send(&b, &segments, seq)
            .await
            .unwrap_or_else(|e| panic!("segment {seq}: {e}"));
        assert!(
            matches!(
                reply.result.result,
                Some(net::transcode_result::Result::Data(_))
            ),
            "segment {seq} transcoded: {:?}",
            reply.result.result
        );
        tickets += reply.tickets;
        seq += 1;
    }
    // A segment costs a little less than a ticket's EV, so a few ride on the credit.
    assert!(
        tickets + 3 >= seq && tickets >= winners(&farm.bus).await.len(),
        "{tickets} tickets for {seq} segments"
    );

    // Mid-stream the sender unlocks: tickets are still taken until the withdrawal is a round
    // away, then refused.
    net.bcast.unlock().await.expect("unlock");
    let head = net.bcast.block_number().await.expect("block");
    chain.wait_for_block(head, WAIT).await.expect("indexed");
    send(&b, &segments, seq)
        .await
        .expect("still paid while the withdrawal is two rounds away");
    seq += 1;
    net.anvil.advance_round(&net.bcast).await.expect("round");
    let head = net.bcast.block_number().await.expect("block");
    chain.wait_for_block(head, WAIT).await.expect("indexed");
    // Our broadcaster, like go-livepeer's, stops paying from funds about to unlock...
    match send(&b, &segments, seq).await {
        Err(BroadcastError::Payment(message)) => assert!(message.contains("unlock"), "{message}"),
        other => panic!("the broadcaster must not pay from unlocking funds, got {other:?}"),
    }
    // ...and a broadcaster that does not know (its view of the chain lacks the unlock) is
    // refused by the orchestrator.
    let unaware = Arc::new(livefarm_pm::InMemoryChain::new());
    unaware.set_round(
        chain.last_initialized_round(),
        chain.last_initialized_block_hash(),
    );
    unaware.set_l1_block(chain.last_seen_l1_block());
    unaware.set_gas_price(chain.gas_price());
    let mut unlocked = chain.sender_info(&b.address()).expect("sender info");
    assert_ne!(unlocked.withdraw_round, 0, "the indexer saw the unlock");
    unlocked.withdraw_round = 0;
    unaware.set_sender(b.address(), unlocked);
    let unaware = broadcaster(&farm, unaware).await;
    match send(&unaware, &segments, seq).await {
        Err(BroadcastError::Refused { status, message }) => {
            assert_eq!(status, 400, "{message}");
            assert!(message.contains("unlock"), "{message}");
        }
        other => panic!("a sender about to withdraw must be refused, got {other:?}"),
    }

    // Every winner is redeemed once its params expire, before the withdrawal is possible.
    let won = winners(&farm.bus).await;
    let unique: HashSet<[u8; 32]> = won.iter().map(|t| t.ticket_hash).collect();
    assert_eq!(unique.len(), won.len(), "each winner queued once");
    let last_expiry = won
        .iter()
        .map(|t| t.params_expiration_block)
        .max()
        .expect("winners");
    mine_past(&farm, &chain, last_expiry).await;
    let records = wait_final(&farm, &won).await;
    let mut face_values = U256::ZERO;
    let mut txs = HashSet::new();
    for (ticket, record) in won.iter().zip(&records) {
        let TicketState::Redeemed { tx, .. } = &record.state else {
            panic!("ticket {} ended {:?}", hex_hash(ticket), record.state);
        };
        txs.insert(tx.clone());
        assert!(
            net.bcast
                .used_ticket(B256::from(ticket.ticket_hash))
                .await
                .expect("usedTickets"),
            "usedTickets marks {}",
            hex_hash(ticket)
        );
        assert_eq!(ticket.recipient.0, orch.0 .0);
        face_values += ticket.face_value;
    }
    assert_eq!(txs.len(), won.len(), "one transaction per ticket");
    let redeemer_account = Address::from(dev_signer(REDEEMER_KEY).expect("key").address().0);
    let sent = net
        .bcast
        .provider()
        .get_transaction_count(redeemer_account)
        .await
        .expect("nonce");
    assert_eq!(
        sent,
        won.len() as u64,
        "the redeemer sent exactly one transaction per winner"
    );

    let after = net.bcast.sender_info(bcast).await.expect("sender info");
    assert_eq!(
        funded.deposit - after.deposit,
        face_values,
        "the deposit paid exactly the face values"
    );
    assert_eq!(
        after.reserve_funds_remaining, funded.reserve_funds_remaining,
        "the deposit covered every ticket: the reserve is untouched"
    );
    assert_eq!(
        net.bcast.pending_fees(orch).await.expect("fees") - fees_before,
        face_values,
        "the orchestrator's fees grew by the face values"
    );

    // The sender withdraws the rest once its unlock period is over.
    net.anvil.advance_round(&net.bcast).await.expect("round");
    let wallet = net.bcast.balance(bcast).await.expect("balance");
    net.bcast.withdraw().await.expect("withdraw");
    let withdrawn = net.bcast.balance(bcast).await.expect("balance");
    // The withdrawal returns deposit and reserve, less its gas (well under 0.01 ETH).
    let returned = after.deposit + after.reserve_funds_remaining;
    assert!(
        withdrawn > wallet + returned - eth(1) / U256::from(100) && withdrawn <= wallet + returned,
        "withdrawal returned {returned}: wallet {wallet} -> {withdrawn}"
    );
    let gone = net.bcast.sender_info(bcast).await.expect("sender info");
    assert_eq!(gone.deposit, U256::ZERO);
    assert_eq!(gone.reserve_funds_remaining, U256::ZERO);
}
