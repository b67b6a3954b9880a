//! The redeemer on a real anvil and a real Redis: exactly-once redemption with every skip
//! outcome, crash recovery between submit and receipt, replacement of a stuck transaction,
//! leader election with fencing (Redis lock; Kubernetes Lease on a real API server), and the
//! `net.TicketRedeemer` service. Skipped (loudly) only
//! when anvil is missing and LIVEFARM_REQUIRE_ANVIL is unset; Redis is always required.

use std::sync::Arc;
use std::time::Duration;

use alloy::providers::Provider;
use livefarm_bus::{BusOptions, JobBus};
use livefarm_chain::testing::{anvil_path, DEV_KEYS};
use livefarm_chain::{Address, B256, U256};
use livefarm_lease::testing::client_from_kubeconfig;
use livefarm_lease::KubeLease;
use livefarm_pm::WinningTicket;
use livefarm_proto::livepeer::net;
use livefarm_proto::livepeer::net::ticket_redeemer_server::TicketRedeemer;
use livefarm_redeemer::store::hash_hex;
use livefarm_redeemer::testnet::{dev_signer, publish, TestNet, REDEEMER_KEY};
use livefarm_redeemer::{
    Election, Redeemer, RedeemerConfig, RedeemerError, RedeemerService, Store, TicketRecord,
    TicketState,
};
use livefarm_runtime::Shutdown;
use livefarm_testkit::kube::ControlPlane;
use livefarm_testkit::{redis_bus, wait_until, RedisServer};
use tokio::task::JoinHandle;

const ETH: u64 = 1_000_000_000_000_000_000;
const WAIT: Duration = Duration::from_secs(60);
/// The chart's values with the redeemer on (release `livefarm`: Lease `livefarm-redeemer`).
const CHAIN_VALUES: &str = "helm/livefarm/ci/chain-hpa-values.yaml";

fn eth(n: u64) -> U256 {
    U256::from(n) * U256::from(ETH)
}

/// 0.01 ETH: far above any redemption's gas cost on anvil.
fn face() -> U256 {
    U256::from(ETH / 100)
}

async fn start() -> Option<(TestNet, RedisServer, Arc<dyn JobBus>)> {
    if anvil_path().is_none() {
        if std::env::var_os("LIVEFARM_REQUIRE_ANVIL").is_some() {
            panic!("LIVEFARM_REQUIRE_ANVIL is set but anvil is missing: run scripts/install-chain-tools.sh");
        }
        eprintln!("!!! SKIPPED: anvil not found (run scripts/install-chain-tools.sh or set LIVEFARM_ANVIL)");
        return None;
    }
    let net = TestNet::start().await.expect("test network");
    let (redis, bus) = redis_bus(BusOptions::default()).await;
    Some((net, redis, bus))
}

struct Running {
    redeemer: Arc<Redeemer>,
    shutdown: Shutdown,
    task: JoinHandle<Result<(), RedeemerError>>,
}

async fn spawn(config: RedeemerConfig, bus: &Arc<dyn JobBus>) -> Running {
    let redeemer = Redeemer::connect(config, bus.clone())
        .await
        .expect("redeemer connects");
    run(redeemer)
}

/// Runs `redeemer` until its shutdown fires.
fn run(redeemer: Redeemer) -> Running {
    let redeemer = Arc::new(redeemer);
    let shutdown = Shutdown::new();
    let task = tokio::spawn(redeemer.clone().run(shutdown.clone()));
    Running {
        redeemer,
        shutdown,
        task,
    }
}

async fn wait_for(
    redeemer: &Redeemer,
    ticket: &WinningTicket,
    what: &str,
    done: impl Fn(&TicketRecord) -> bool,
) -> TicketRecord {
    let hash = &hash_hex(&ticket.ticket_hash);
    let done = &done;
    wait_until(WAIT, &format!("{what} of {hash}"), || async move {
        let record = redeemer.store().get(hash).await.expect("store");
        match record {
            Some(record) if done(&record) => Ok(record),
            other => Err(format!("{other:?}")),
        }
    })
    .await
}

/// Funds the broadcaster's deposit with 1 ETH and makes one winning ticket of [`face`] whose
/// params expire now.
async fn funded_ticket(net: &TestNet) -> (WinningTicket, U256) {
    net.bcast.fund_deposit(eth(1)).await.expect("fund");
    let f = face();
    let head = net.bcast.block_number().await.expect("head");
    let t = net
        .ticket(&net.bcast_signer, f, 1, head)
        .await
        .expect("ticket");
    (t, f)
}

/// Waits until `holder` names a leader and its token.
async fn wait_for_leader<F, Fut>(what: &str, holder: F) -> (String, u64)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Option<(String, u64)>>,
{
    wait_until(WAIT, &format!("somebody to take {what}"), holder).await
}

/// Aborts the leader `dead` (as `kill -9` would stop it) and waits until `survivor` redeems a
/// new ticket of `face` (params expiring at `head`); returns that ticket's record.
async fn kill_then_redeem_next(
    dead: Running,
    survivor: &Running,
    net: &TestNet,
    bus: &Arc<dyn JobBus>,
    stream: &str,
    face: U256,
    head: u64,
) -> TicketRecord {
    dead.task.abort();
    let _ = dead.task.await;
    let next = net
        .ticket(&net.bcast_signer, face, 2, head)
        .await
        .expect("ticket");
    publish(bus, stream, &next).await.expect("publish");
    let record = wait_final(&survivor.redeemer, &next).await;
    redeemed_tx(&record);
    record
}

async fn wait_final(redeemer: &Redeemer, ticket: &WinningTicket) -> TicketRecord {
    wait_for(redeemer, ticket, "a final state", |r| r.state.is_final()).await
}

async fn redeemer_nonce(net: &TestNet) -> u64 {
    let account = dev_signer(REDEEMER_KEY).expect("key").address();
    net.bcast
        .provider()
        .get_transaction_count(Address::from(account.0))
        .await
        .expect("nonce")
}

async fn set_automine(net: &TestNet, on: bool) {
    let _: serde_json::Value = net
        .bcast
        .provider()
        .raw_request("evm_setAutomine".into(), (on,))
        .await
        .expect("evm_setAutomine");
}

fn redeemed_tx(record: &TicketRecord) -> String {
    match &record.state {
        TicketState::Redeemed { tx, .. } => tx.clone(),
        other => panic!("expected redeemed, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn redeems_each_ticket_once_and_records_every_outcome() {
    let Some((net, redis, bus)) = start().await else {
        return;
    };
    net.bcast
        .fund_deposit_and_reserve(eth(1), eth(1))
        .await
        .expect("fund");
    let signer = &net.bcast_signer;
    let f = face();

    // Created now, expired two rounds later (ticketValidityPeriod = 2).
    let expired = net.ticket(signer, f, 100, 0).await.expect("ticket");
    net.anvil.advance_round(&net.bcast).await.expect("advance");
    net.anvil.advance_round(&net.bcast).await.expect("advance");

    let head = net.bcast.block_number().await.expect("head");
    let t1 = net.ticket(signer, f, 1, head).await.expect("ticket");
    let t2 = net.ticket(signer, f, 2, head).await.expect("ticket");
    let held = net.ticket(signer, f, 3, head + 10).await.expect("ticket");
    let used = net.ticket(signer, f, 4, head).await.expect("ticket");
    let cheap = net
        .ticket(signer, U256::from(1u64), 5, head)
        .await
        .expect("ticket");
    let pauper = dev_signer(DEV_KEYS[3]).expect("signer");
    let unfunded = net.ticket(&pauper, f, 6, head).await.expect("ticket");
    // Someone else redeems `used` first.
    net.orch
        .redeem_winning_ticket(&used)
        .await
        .expect("redeem directly");

    let bcast = net.bcast_addr();
    let orch = net.orch_addr();
    let deposit_before = net.bcast.sender_info(bcast).await.expect("info").deposit;
    let fees_before = net.bcast.pending_fees(orch).await.expect("fees");
    let nonce_before = redeemer_nonce(&net).await;

    let config = net.redeemer_config(&redis.url(), "solo");
    let stream = config.stream.clone();
    for t in [&t1, &t1, &t2, &held, &expired, &used, &cheap, &unfunded] {
        publish(&bus, &stream, t).await.expect("publish");
    }
    let run = spawn(config, &bus).await;
    let r = &run.redeemer;

    let r1 = wait_final(r, &t1).await;
    let r2 = wait_final(r, &t2).await;
    redeemed_tx(&r1);
    redeemed_tx(&r2);
    assert_ne!(redeemed_tx(&r1), redeemed_tx(&r2));
    assert_eq!(wait_final(r, &expired).await.state, TicketState::Expired);
    assert_eq!(wait_final(r, &used).await.state, TicketState::AlreadyUsed);
    // Put off, not given up (§11.2 retries them on later blocks), and never submitted.
    let cheap_record = wait_for(r, &cheap, "deferred as unprofitable", |rec| {
        matches!(rec.deferred, Some(TicketState::Unprofitable { .. }))
    })
    .await;
    assert_eq!(cheap_record.state, TicketState::Pending);
    let unfunded_record = wait_for(r, &unfunded, "deferred for funds", |rec| {
        matches!(rec.deferred, Some(TicketState::InsufficientFunds { .. }))
    })
    .await;
    assert_eq!(unfunded_record.state, TicketState::Pending);
    // Its params have not expired: held, nothing submitted for it.
    let held_record = r
        .store()
        .get(&hash_hex(&held.ticket_hash))
        .await
        .expect("store")
        .expect("recorded");
    assert_eq!(held_record.state, TicketState::Pending);
    assert!(!net
        .bcast
        .used_ticket(B256::from(held.ticket_hash))
        .await
        .expect("used"));
    assert_eq!(redeemer_nonce(&net).await, nonce_before + 2);

    // The sender with no funds tops up: its ticket is redeemed on a later block.
    let pauper_chain =
        livefarm_chain::Chain::connect(&net.anvil.endpoint(), DEV_KEYS[3], net.deployment)
            .expect("pauper");
    pauper_chain.fund_deposit(eth(1)).await.expect("top up");
    redeemed_tx(&wait_final(r, &unfunded).await);
    assert_eq!(
        pauper_chain
            .sender_info(Address::from(pauper.address().0))
            .await
            .expect("info")
            .deposit,
        eth(1) - f
    );

    // Within the round: a round boundary would not expire it yet, two would.
    net.anvil.mine(10).await.expect("mine");
    let r3 = wait_final(r, &held).await;
    redeemed_tx(&r3);
    assert!(r3.params_expired_at_ms.is_some());

    // Exactly the three face values moved from this sender; four transactions in all (one
    // for the topped-up sender) for five queued copies.
    let three = f * U256::from(3u64);
    assert_eq!(
        net.bcast.pending_fees(orch).await.expect("fees") - fees_before,
        three + f
    );
    assert_eq!(
        deposit_before - net.bcast.sender_info(bcast).await.expect("info").deposit,
        three
    );
    assert_eq!(redeemer_nonce(&net).await, nonce_before + 4);

    // The unprofitable one ends as such once it expires (two rounds on).
    net.anvil.advance_round(&net.bcast).await.expect("advance");
    net.anvil.advance_round(&net.bcast).await.expect("advance");
    assert!(matches!(
        wait_final(r, &cheap).await.state,
        TicketState::Unprofitable { .. }
    ));
    assert_eq!(redeemer_nonce(&net).await, nonce_before + 4);

    // Queued again after its outcome: acknowledged, never submitted again.
    publish(&bus, &stream, &t1).await.expect("publish");
    let (bus_ref, stream_ref) = (&bus, &stream);
    wait_until(WAIT, "every bus entry acknowledged", || async move {
        let lag = bus_ref
            .group_stats(stream_ref, "redeemer")
            .await
            .expect("stats")
            .lag;
        let pending = bus_ref
            .pending_count(stream_ref, "redeemer")
            .await
            .expect("pending");
        if lag == 0 && pending == 0 {
            Ok(())
        } else {
            Err(format!("lag {lag}, pending {pending}"))
        }
    })
    .await;
    assert_eq!(redeemer_nonce(&net).await, nonce_before + 4);
    let again = r
        .store()
        .get(&hash_hex(&t1.ticket_hash))
        .await
        .expect("store")
        .expect("recorded");
    assert_eq!(redeemed_tx(&again), redeemed_tx(&r1));
    assert!(r.store().open().await.expect("open").is_empty());

    run.shutdown.trigger();
    run.task.await.expect("join").expect("clean stop");
}

#[tokio::test(flavor = "multi_thread")]
async fn crash_between_submit_and_receipt_does_not_resubmit() {
    let Some((net, redis, bus)) = start().await else {
        return;
    };
    let (t, f) = funded_ticket(&net).await;
    let orch = net.orch_addr();
    let fees_before = net.bcast.pending_fees(orch).await.expect("fees");
    let nonce_before = redeemer_nonce(&net).await;
    set_automine(&net, false).await;

    let config = net.redeemer_config(&redis.url(), "first");
    publish(&bus, &config.stream, &t).await.expect("publish");
    let first = spawn(config, &bus).await;
    let submitted = wait_for(&first.redeemer, &t, "submission", |r| {
        matches!(r.state, TicketState::Submitted { .. })
    })
    .await;
    let TicketState::Submitted { txs } = &submitted.state else {
        unreachable!()
    };
    let recorded = txs[0].hash.clone();
    // Crash: no release of the lock, no receipt seen.
    first.task.abort();
    let _ = first.task.await;
    assert!(!net
        .bcast
        .used_ticket(B256::from(t.ticket_hash))
        .await
        .expect("used"));

    // The crash may have come before the broadcast: the next leader then sends the recorded
    // bytes again. Either way blocks are mined only now, after the restart.
    let second = spawn(net.redeemer_config(&redis.url(), "second"), &bus).await;
    let (net_ref, second_ref, hash) = (&net, &second, &hash_hex(&t.ticket_hash));
    let done = wait_until(WAIT, "recovery to a final state", || async move {
        // a block every 200 ms or so, as a chain makes them (faster would age the ticket)
        tokio::time::sleep(Duration::from_millis(200)).await;
        net_ref.anvil.mine(1).await.expect("mine");
        let record = second_ref
            .redeemer
            .store()
            .get(hash)
            .await
            .expect("store")
            .expect("recorded");
        if record.state.is_final() {
            Ok(record)
        } else {
            Err(format!("{:?}", record.state))
        }
    })
    .await;
    assert_eq!(redeemed_tx(&done), recorded);
    assert!(done.fence > submitted.fence, "written under the new lock");
    assert_eq!(redeemer_nonce(&net).await, nonce_before + 1);
    assert_eq!(
        net.bcast.pending_fees(orch).await.expect("fees") - fees_before,
        f
    );
    second.shutdown.trigger();
    second.task.await.expect("join").expect("clean stop");
}

#[tokio::test(flavor = "multi_thread")]
async fn stuck_transaction_is_replaced_with_a_higher_fee() {
    let Some((net, redis, bus)) = start().await else {
        return;
    };
    let (t, _) = funded_ticket(&net).await;
    let nonce_before = redeemer_nonce(&net).await;
    set_automine(&net, false).await;

    let mut config = net.redeemer_config(&redis.url(), "solo");
    config.stuck_timeout_ms = 500;
    publish(&bus, &config.stream, &t).await.expect("publish");
    let run = spawn(config, &bus).await;
    let replaced = wait_for(
        &run.redeemer,
        &t,
        "a replacement",
        |r| matches!(&r.state, TicketState::Submitted { txs } if txs.len() == 2),
    )
    .await;
    let TicketState::Submitted { txs } = &replaced.state else {
        unreachable!()
    };
    assert_eq!(txs[0].nonce, txs[1].nonce);
    assert!(txs[1].max_fee_per_gas > txs[0].max_fee_per_gas);
    assert!(txs[1].max_priority_fee_per_gas > txs[0].max_priority_fee_per_gas);
    net.anvil.mine(1).await.expect("mine");
    let done = wait_final(&run.redeemer, &t).await;
    assert_eq!(redeemed_tx(&done), txs[1].hash);
    assert_eq!(redeemer_nonce(&net).await, nonce_before + 1);
    run.shutdown.trigger();
    run.task.await.expect("join").expect("clean stop");
}

/// `Controller.pause()` / `unpause()` from the deployer (anvil's account 0, unlocked), with
/// `tip` as its priority fee so that it runs before cheaper transactions of the same block.
async fn set_paused(net: &TestNet, paused: bool, tip: u128) {
    let owner = dev_signer(DEV_KEYS[0]).expect("owner key").address();
    let selector = if paused { "0x8456cb59" } else { "0x3f4ba83a" };
    let tx = serde_json::json!({
        "from": format!("{owner:?}"),
        "to": net.deployment.controller.to_string(),
        "data": selector,
        "gas": "0x30000",
        "maxPriorityFeePerGas": format!("{tip:#x}"),
        "maxFeePerGas": format!("{:#x}", tip * 4),
    });
    let _: serde_json::Value = net
        .bcast
        .provider()
        .raw_request("eth_sendTransaction".into(), (tx,))
        .await
        .expect("eth_sendTransaction");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reverted_redemption_is_estimated_again_and_then_redeemed() {
    let Some((net, redis, bus)) = start().await else {
        return;
    };
    let (t, f) = funded_ticket(&net).await;
    let deposit_before = net
        .bcast
        .sender_info(net.bcast_addr())
        .await
        .expect("sender")
        .deposit;
    let nonce_before = redeemer_nonce(&net).await;
    set_automine(&net, false).await;
    let mut config = net.redeemer_config(&redis.url(), "solo");
    config.stuck_timeout_ms = 60_000;
    publish(&bus, &config.stream, &t).await.expect("publish");
    let run = spawn(config, &bus).await;
    let submitted = wait_for(&run.redeemer, &t, "a submission", |r| {
        matches!(r.state, TicketState::Submitted { .. })
    })
    .await;
    let TicketState::Submitted { txs } = &submitted.state else {
        unreachable!()
    };
    let first = txs[0].clone();

    // Gas was estimated on a chain that would take it; the owner's pause lands first in the
    // block that mines it, so the redemption reverts (`system is paused`) and uses nothing.
    set_paused(
        &net,
        true,
        first.max_priority_fee_per_gas * 10 + 1_000_000_000,
    )
    .await;
    net.anvil.mine(1).await.expect("mine");
    let put_off = wait_for(&run.redeemer, &t, "the revert", |r| {
        r.reverted_txs == 1 && r.state == TicketState::Pending
    })
    .await;
    assert!(
        matches!(&put_off.deferred, Some(TicketState::Failed { tx: Some(tx), .. }) if *tx == first.hash),
        "{:?}",
        put_off.deferred
    );
    let receipt = net
        .bcast
        .provider()
        .get_transaction_receipt(first.hash.parse().expect("tx hash"))
        .await
        .expect("receipt")
        .expect("mined");
    assert!(!receipt.status(), "the first redemption reverted on chain");
    assert!(!net
        .bcast
        .used_ticket(B256::from(t.ticket_hash))
        .await
        .expect("usedTickets"));

    // While the system is paused the estimate says so and nothing is sent.
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(redeemer_nonce(&net).await, nonce_before + 1);
    let still = run
        .redeemer
        .store()
        .get(&hash_hex(&t.ticket_hash))
        .await
        .expect("store")
        .expect("record");
    assert_eq!(still.state, TicketState::Pending);

    set_automine(&net, true).await;
    set_paused(&net, false, 1_000_000_000).await;
    let done = wait_final(&run.redeemer, &t).await;
    assert_ne!(redeemed_tx(&done), first.hash, "a new transaction");
    assert_eq!(done.reverted_txs, 1);
    assert!(done.deferred.is_none(), "{:?}", done.deferred);
    assert!(net
        .bcast
        .used_ticket(B256::from(t.ticket_hash))
        .await
        .expect("usedTickets"));
    assert_eq!(redeemer_nonce(&net).await, nonce_before + 2);
    let deposit_after = net
        .bcast
        .sender_info(net.bcast_addr())
        .await
        .expect("sender")
        .deposit;
    assert_eq!(
        deposit_before - deposit_after,
        f,
        "paid once, the face value"
    );
    run.shutdown.trigger();
    run.task.await.expect("join").expect("clean stop");
}

#[tokio::test(flavor = "multi_thread")]
async fn one_active_redeemer_and_the_standby_takes_over() {
    let Some((net, redis, bus)) = start().await else {
        return;
    };
    net.bcast.fund_deposit(eth(1)).await.expect("fund");
    let f = face();
    let a = spawn(net.redeemer_config(&redis.url(), "a"), &bus).await;
    let b = spawn(net.redeemer_config(&redis.url(), "b"), &bus).await;
    let store = a.redeemer.store().clone();
    let (leader, token) = wait_for_leader("the lock", || async {
        store.lock_holder().await.expect("lock")
    })
    .await;
    let stream = RedeemerConfig::default().stream;
    let head = net.bcast.block_number().await.expect("head");
    let t1 = net
        .ticket(&net.bcast_signer, f, 1, head)
        .await
        .expect("ticket");
    publish(&bus, &stream, &t1).await.expect("publish");
    let r1 = wait_final(&a.redeemer, &t1).await;
    redeemed_tx(&r1);
    assert_eq!(r1.fence, token);
    // Still the same leader: the standby never took over while it lived.
    assert_eq!(
        store.lock_holder().await.expect("lock"),
        Some((leader.clone(), token))
    );

    // Kill the leader.
    let (dead, survivor) = if leader == "a" { (a, b) } else { (b, a) };
    let r2 = kill_then_redeem_next(dead, &survivor, &net, &bus, &stream, f, head).await;
    assert!(r2.fence > token);
    let (holder, new_token) = store.lock_holder().await.expect("lock").expect("held");
    assert_eq!(holder, survivor.redeemer.instance());
    assert_eq!(new_token, r2.fence);

    // A write with the dead leader's token is refused.
    let mut stale = r1.clone();
    stale.fence = token;
    stale.state = TicketState::Pending;
    let err = store.update(&stale).await.expect_err("stale token");
    assert!(matches!(err, RedeemerError::Fenced { .. }), "{err}");
    assert_eq!(
        store
            .get(&hash_hex(&t1.ticket_hash))
            .await
            .expect("store")
            .expect("recorded")
            .state,
        r1.state
    );
    assert_eq!(
        net.bcast.pending_fees(net.orch_addr()).await.expect("fees"),
        f * U256::from(2u64)
    );
    survivor.shutdown.trigger();
    survivor.task.await.expect("join").expect("clean stop");
}

fn proto_ticket(t: &WinningTicket) -> net::Ticket {
    let pm = livefarm_pm::num::min_be_bytes;
    let expiration = net::TicketExpirationParams {
        creation_round: t.creation_round,
        creation_round_block_hash: t.creation_round_block_hash.to_vec(),
    };
    net::Ticket {
        ticket_params: Some(net::TicketParams {
            recipient: t.recipient.0.to_vec(),
            face_value: pm(&t.face_value),
            win_prob: pm(&t.win_prob),
            recipient_rand_hash: t.recipient_rand_hash.to_vec(),
            seed: vec![1],
            expiration_block: livefarm_pm::num::min_be_bytes_u64(t.params_expiration_block),
            expiration_params: Some(expiration.clone()),
        }),
        sender: t.sender.0.to_vec(),
        expiration_params: Some(expiration),
        sender_params: Some(net::TicketSenderParams {
            sender_nonce: t.sender_nonce,
            sig: t.sig.clone(),
        }),
        recipient_rand: pm(&t.recipient_rand),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn ticket_redeemer_service_queues_and_reports_max_float() {
    let Some((net, redis, bus)) = start().await else {
        return;
    };
    net.bcast
        .fund_deposit_and_reserve(eth(1), eth(2))
        .await
        .expect("fund");
    let config = net.redeemer_config(&redis.url(), "solo");
    let run = spawn(config.clone(), &bus).await;
    let service = RedeemerService::new(
        bus.clone(),
        config.stream.clone(),
        run.redeemer.chain().clone(),
        run.redeemer.store().clone(),
        net.orch_addr(),
        Duration::from_millis(100),
    );
    let bcast = net.bcast_addr();
    let orch = net.orch_addr();
    let float = |update: net::MaxFloatUpdate| U256::from_be_slice(&update.max_float);
    let req = || {
        tonic::Request::new(net::MaxFloatReq {
            sender: bcast.0.to_vec(),
        })
    };
    // One orchestrator in the pool, nothing claimed, nothing pending: the whole reserve,
    // as the contract's own claimableReserve says.
    let got = float(
        service
            .max_float(req())
            .await
            .expect("max float")
            .into_inner(),
    );
    assert_eq!(got, eth(2));
    assert_eq!(
        got,
        net.bcast
            .claimable_reserve(bcast, orch)
            .await
            .expect("claimable")
    );

    // A ticket queued over gRPC is redeemed through the same path.
    let head = net.bcast.block_number().await.expect("head");
    let t = net
        .ticket(&net.bcast_signer, face(), 1, head)
        .await
        .expect("ticket");
    let decoded = livefarm_redeemer::winning_ticket_from_proto(&proto_ticket(&t)).expect("decode");
    assert_eq!(decoded.ticket_hash, t.ticket_hash);
    service
        .queue_ticket(tonic::Request::new(proto_ticket(&t)))
        .await
        .expect("queue");
    redeemed_tx(&wait_final(&run.redeemer, &t).await);
    assert_eq!(
        net.bcast.sender_info(bcast).await.expect("info").deposit,
        eth(1) - face()
    );

    // A ticket whose recipientRand does not match is refused.
    let mut bad = proto_ticket(&t);
    bad.recipient_rand = vec![9];
    let status = service
        .queue_ticket(tonic::Request::new(bad))
        .await
        .expect_err("bad rand");
    assert_eq!(status.code(), tonic::Code::InvalidArgument);

    run.shutdown.trigger();
    run.task.await.expect("join").expect("clean stop");
}

#[tokio::test(flavor = "multi_thread")]
async fn bench_measures_expiry_to_redemption() {
    if anvil_path().is_none() && std::env::var_os("LIVEFARM_REQUIRE_ANVIL").is_none() {
        eprintln!("!!! SKIPPED: anvil not found");
        return;
    }
    let opts = livefarm_redeemer::bench::BenchOptions {
        tickets: 3,
        ..Default::default()
    };
    let report = livefarm_redeemer::bench::run(opts).await.expect("bench");
    eprintln!(
        "expiry to redemption: {}",
        serde_json::to_string(&report).expect("json")
    );
    assert_eq!(report.tickets, 3);
    assert!(
        report.median_ms > 0.0 && report.median_ms < 30_000.0,
        "{report:?}"
    );
    assert!(report.min_ms <= report.median_ms && report.median_ms <= report.max_ms);
}

/// A redeemer whose leader election is the Lease `lease_name` of `namespace`, reached with
/// `client` (the redeemer ServiceAccount's token, as in its pod).
async fn spawn_on_lease(
    net: &TestNet,
    redis: &RedisServer,
    bus: &Arc<dyn JobBus>,
    client: kube::Client,
    namespace: &str,
    instance: &str,
) -> Running {
    let config = RedeemerConfig {
        leader_election: "kubernetes".to_owned(),
        ..net.redeemer_config(&redis.url(), instance)
    };
    let store = Store::connect(&redis.url(), &config.key_prefix)
        .await
        .expect("store");
    let election = Election::Kubernetes {
        lease: Box::new(KubeLease::new(client, namespace, &config.lease_name)),
        store: store.clone(),
    };
    run(Redeemer::connect_with(config, bus.clone(), store, election)
        .await
        .expect("redeemer connects"))
}

/// Leader election on a Kubernetes Lease, against a real API server (kube-apiserver v1.36.2,
/// `livefarm_testkit::kube::ControlPlane`) with the chart's objects: its Lease (no holder), and
/// its ServiceAccount, Role and RoleBinding; both redeemers authenticate with that account's
/// token, as in their pods, so the hand-over runs on exactly what the Role allows (get and
/// update of that Lease).
#[tokio::test(flavor = "multi_thread")]
async fn in_a_cluster_a_kubernetes_lease_picks_the_leader_and_fences_the_old_one() {
    let Some((net, redis, bus)) = start().await else {
        return;
    };
    let Some(plane) = ControlPlane::shared_or_skip() else {
        return;
    };
    net.bcast.fund_deposit(eth(1)).await.expect("fund");
    let f = face();
    let ns = plane.namespace("redeemer");
    plane.apply_chart(&ns, CHAIN_VALUES, "app.kubernetes.io/component=redeemer");
    let lease_name = RedeemerConfig::default().lease_name;
    assert_eq!(
        lease_name, "livefarm-redeemer",
        "the chart's Lease for release livefarm"
    );
    let account = plane.service_account_kubeconfig(&ns, &lease_name);
    let a = spawn_on_lease(
        &net,
        &redis,
        &bus,
        client_from_kubeconfig(&account).await,
        &ns,
        "a",
    )
    .await;
    let b = spawn_on_lease(
        &net,
        &redis,
        &bus,
        client_from_kubeconfig(&account).await,
        &ns,
        "b",
    )
    .await;
    let admin = client_from_kubeconfig(&plane.admin_kubeconfig()).await;
    let lease = KubeLease::new(admin, &ns, &lease_name);
    let (leader, lease_token) = wait_for_leader("the lease", || async {
        lease.holder().await.expect("lease")
    })
    .await;
    assert_eq!(
        lease_token, 1,
        "the chart's Lease, taken for the first time"
    );
    let stream = RedeemerConfig::default().stream;
    let head = net.bcast.block_number().await.expect("head");
    let t1 = net
        .ticket(&net.bcast_signer, f, 1, head)
        .await
        .expect("ticket");
    publish(&bus, &stream, &t1).await.expect("publish");
    let (first, second) = if leader == "a" { (a, b) } else { (b, a) };
    let r1 = wait_final(&first.redeemer, &t1).await;
    redeemed_tx(&r1);

    // Kill the leader: the standby takes the Lease after its TTL, with a newer fence.
    let r2 = kill_then_redeem_next(first, &second, &net, &bus, &stream, f, head).await;
    assert!(r2.fence > r1.fence, "a new term fences the old one");
    let (holder, new_lease_token) = lease.holder().await.expect("lease").expect("held");
    assert_eq!(holder, second.redeemer.instance());
    assert!(new_lease_token > lease_token);

    // The dead leader's late write is refused by the store.
    let mut stale = r1.clone();
    stale.state = TicketState::Pending;
    let err = second
        .redeemer
        .store()
        .update(&stale)
        .await
        .expect_err("stale fence");
    assert!(matches!(err, RedeemerError::Fenced { .. }), "{err}");
    assert_eq!(
        net.bcast.pending_fees(net.orch_addr()).await.expect("fees"),
        f * U256::from(2u64)
    );
    // A clean stop releases the Lease at once.
    second.shutdown.trigger();
    second.task.await.expect("join").expect("clean stop");
    assert_eq!(lease.holder().await.expect("lease"), None);
}
