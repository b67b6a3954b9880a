//! The indexer against a real anvil: derived state equals what the contracts say, the gRPC
//! API and `IndexerChainState` serve it, a restart resumes from Redis, after a reorg the
//! state equals a fresh index of the new chain, a `newHeads` WebSocket subscription wakes the
//! follower at once, an unreachable one leaves polling in charge, and the service exports its
//! metrics on the admin port. Skipped (loudly) only when anvil is missing and
//! LIVEFARM_REQUIRE_ANVIL is unset.

use std::sync::atomic::Ordering;
use std::time::Duration;

use alloy::primitives::{hex, Address, U256};
use alloy::providers::Provider;
use livefarm_chain::testing::{anvil_path, Anvil, DEV_KEYS};
use livefarm_chain::{deploy, Chain, DeployOptions, Deployment};
use livefarm_chain_index::IndexerChainState;
use livefarm_indexer::{ChainIndexService, ContractsSource, Follower, FollowerOptions, Store};
use livefarm_pm::ticket::recipient_rand_hash;
use livefarm_pm::{ChainState, Price, Signer, Ticket, TicketExpirationParams, WinningTicket};
use livefarm_runtime::Shutdown;
use livefarm_testkit::{free_addr, free_port, start_redis, wait_until};

async fn start_anvil() -> Option<Anvil> {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    if anvil_path().is_none() {
        if std::env::var_os("LIVEFARM_REQUIRE_ANVIL").is_some() {
            panic!("LIVEFARM_REQUIRE_ANVIL is set but anvil is missing: run scripts/install-chain-tools.sh");
        }
        eprintln!("!!! SKIPPED: anvil not found (run scripts/install-chain-tools.sh or set LIVEFARM_ANVIL)");
        return None;
    }
    Some(Anvil::start().await.expect("anvil starts"))
}

struct Net {
    anvil: Anvil,
    deployment: Deployment,
    owner: Chain,
    /// dev keys 2 and 3
    senders: Vec<Chain>,
    /// dev key 1
    orch: Chain,
}

async fn setup() -> Option<Net> {
    let anvil = start_anvil().await?;
    let url = anvil.endpoint();
    let opts = DeployOptions {
        round_length: 20,
        ..DeployOptions::default()
    };
    let deployment = deploy(&url, DEV_KEYS[0], &opts).await.expect("deploy");
    let connect = |k| Chain::connect(&url, k, deployment).expect("connect");
    Some(Net {
        owner: connect(DEV_KEYS[0]),
        senders: vec![connect(DEV_KEYS[2]), connect(DEV_KEYS[3])],
        orch: connect(DEV_KEYS[1]),
        anvil,
        deployment,
    })
}

fn options(net: &Net) -> FollowerOptions {
    let mut o = FollowerOptions::new(
        net.anvil.endpoint(),
        ContractsSource::Controller(net.deployment.controller),
    );
    o.reorg_window = 16;
    o.max_block_range = 7;
    o.poll_interval = Duration::from_millis(50);
    o
}

fn reconnect(net: &Net, key: &str) -> Chain {
    Chain::connect(&net.anvil.endpoint(), key, net.deployment).expect("connect")
}

fn addr(c: &Chain) -> Address {
    c.address().expect("has key")
}

fn pm(a: Address) -> livefarm_pm::Address {
    livefarm_pm::Address(a.0 .0)
}

/// A winning ticket from sender `s` (dev key 2) to the orchestrator in the current round.
async fn winning_ticket(net: &Net, face_value: U256, nonce: u32) -> WinningTicket {
    let signer = Signer::from_bytes(
        hex::decode(DEV_KEYS[2])
            .expect("hex")
            .try_into()
            .expect("32 bytes"),
    )
    .expect("signer");
    let round = net.owner.last_initialized_round().await.expect("round");
    let hash = net.owner.block_hash_for_round(round).await.expect("hash");
    let rand = livefarm_pm::U256::from(0x5eedu64 + u64::from(nonce));
    let ticket = Ticket {
        recipient: pm(addr(&net.orch)),
        sender: signer.address(),
        face_value,
        win_prob: livefarm_pm::MAX_WIN_PROB,
        sender_nonce: nonce,
        recipient_rand_hash: recipient_rand_hash(&rand),
        expiration_params: TicketExpirationParams {
            creation_round: i64::try_from(round).expect("fits"),
            creation_round_block_hash: hash.0,
        },
        params_expiration_block: 0,
        price_per_pixel: Price::zero(),
    };
    let sig = signer.sign_personal(&ticket.hash());
    WinningTicket::new(&ticket, &sig, rand, "session")
}

/// Asserts the indexer's state equals the contracts' views at the same (latest) block.
async fn assert_matches_chain(net: &Net, follower: &Follower) {
    let chain = &net.owner;
    let head = chain.block_number().await.expect("head");
    let h = follower.handle();
    assert_eq!(h.read(|s| s.block_number()), head, "indexer at the head");
    let lir = chain.last_initialized_round().await.expect("lir");
    assert_eq!(h.read(|s| s.data.rounds.last_initialized_round), lir);
    for r in [lir, lir.saturating_sub(1)] {
        assert_eq!(
            h.read(|s| s.data.rounds.block_hash(r)),
            chain.block_hash_for_round(r).await.expect("hash"),
            "block hash of round {r}"
        );
    }
    let current = chain.current_round().await.expect("round");
    assert_eq!(h.read(|s| s.current_round()), current);
    assert_eq!(
        h.read(|s| s.data.rounds.current_round_start_block(s.l1_block())),
        chain.current_round_start_block().await.expect("start")
    );
    assert_eq!(
        h.read(|s| s.data.pool_size()),
        chain.transcoder_pool_size().await.expect("pool")
    );
    let o = addr(&net.orch);
    assert_eq!(
        h.read(|s| s
            .data
            .orchestrators
            .get(&o)
            .is_some_and(|x| x.is_active(current))),
        chain.is_active_transcoder(o).await.expect("active")
    );
    assert_eq!(
        h.read(|s| s
            .data
            .orchestrators
            .get(&o)
            .map(|x| x.service_uri.clone())
            .unwrap_or_default()),
        chain.service_uri(o).await.expect("uri")
    );
    for s in &net.senders {
        let a = addr(s);
        let on_chain = chain.sender_info(a).await.expect("sender info");
        let st = h.read(|x| x.data.senders.get(&a).cloned().unwrap_or_default());
        assert_eq!(st.deposit, on_chain.deposit, "deposit of {a}");
        assert_eq!(
            st.reserve, on_chain.reserve_funds_remaining,
            "reserve of {a}"
        );
        assert_eq!(
            U256::from(st.withdraw_round),
            on_chain.withdraw_round,
            "withdraw round of {a}"
        );
        assert_eq!(
            st.claimed_in_round(current),
            on_chain.reserve_claimed_in_current_round,
            "claimed this round from {a}"
        );
        assert_eq!(
            st.claimed_by(current, &o),
            chain.claimed_reserve(a, o).await.expect("claimed"),
            "claimed by the orchestrator from {a}"
        );
    }
}

#[tokio::test]
async fn state_matches_the_chain_and_is_served_over_grpc() {
    let Some(net) = setup().await else { return };
    let [s1, s2] = [&net.senders[0], &net.senders[1]];
    let eth = U256::from(1_000_000_000_000_000_000u64);

    s1.fund_deposit_and_reserve(U256::from(1000), eth)
        .await
        .expect("fund s1");
    s2.fund_deposit(U256::from(300)).await.expect("fund s2");
    net.orch
        .activate_transcoder(U256::ZERO, U256::from(1_000_000u64))
        .await
        .expect("activate");
    net.orch
        .set_service_uri("https://orch.example:8935")
        .await
        .expect("service uri");
    net.anvil.advance_round(&net.owner).await.expect("round");
    s2.unlock().await.expect("unlock s2");
    // a ticket bigger than the deposit: the deposit empties and the reserve pays the rest
    let ticket = winning_ticket(&net, U256::from(5000), 1).await;
    net.orch
        .redeem_winning_ticket(&ticket)
        .await
        .expect("redeem");
    let ticket_hash = net.owner.ticket_hash(&ticket).await.expect("hash");

    let follower = Follower::new(options(&net), Store::memory())
        .await
        .expect("follower");
    follower.sync_to_head().await.expect("sync");
    assert_matches_chain(&net, &follower).await;
    let h = follower.handle();
    assert!(h.read(|s| s.data.redeemed.contains_key(&ticket_hash)));
    assert!(
        h.stats().splits.load(Ordering::Relaxed) == 0,
        "ranges within max_block_range need no split"
    );
    assert_eq!(
        h.read(|s| s.data.senders[&addr(s1)].claimed_by(s.current_round(), &addr(&net.orch))),
        U256::from(4000),
        "the reserve paid face value minus deposit"
    );

    // serve it and read it back through IndexerChainState, then watch a change arrive
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let grpc_addr = listener.local_addr().expect("addr");
    let stop = Shutdown::new();
    let server = {
        let stop = stop.clone();
        let router = tonic::transport::Server::builder()
            .add_service(ChainIndexService::server(follower.handle(), stop.clone()));
        tokio::spawn(async move {
            router
                .serve_with_incoming_shutdown(
                    tonic::transport::server::TcpIncoming::from(listener),
                    stop.triggered(),
                )
                .await
        })
    };
    let follow = tokio::spawn(follower.run(stop.clone()));
    let cs = IndexerChainState::connect(&format!("http://{grpc_addr}"))
        .await
        .expect("connect indexer");
    let chain = &net.owner;
    let lir = chain.last_initialized_round().await.expect("lir");
    assert_eq!(
        cs.last_initialized_round(),
        i64::try_from(lir).expect("fits")
    );
    assert_eq!(
        cs.last_initialized_block_hash(),
        chain.block_hash_for_round(lir).await.expect("hash").0
    );
    assert_eq!(
        cs.last_seen_l1_block(),
        chain.block_number().await.expect("head")
    );
    assert_eq!(cs.transcoder_pool_size(), 1);
    let current = i64::try_from(chain.current_round().await.expect("round")).expect("fits");
    assert!(cs.is_active(&pm(addr(&net.orch)), current));
    assert!(!cs.is_active(&pm(addr(s1)), current));
    let info = cs.sender_info(&pm(addr(s2))).expect("sender");
    assert_eq!(info.deposit, livefarm_pm::U256::from(300u64));
    assert!(info.withdraw_round > 0);
    assert_eq!(
        cs.claimed_reserve(&pm(addr(s1)), &pm(addr(&net.orch))),
        livefarm_pm::U256::from(4000u64)
    );

    s2.fund_deposit(U256::from(55)).await.expect("fund again");
    let head = chain.block_number().await.expect("head");
    cs.wait_for_block(head, Duration::from_secs(20))
        .await
        .expect("the stream delivers the new block");
    let info = cs.sender_info(&pm(addr(s2))).expect("sender");
    assert_eq!(info.deposit, livefarm_pm::U256::from(355u64));
    assert_eq!(info.withdraw_round, 0, "funding cancels the unlock");

    stop.trigger();
    follow.await.expect("follower stops");
    server.await.expect("server task").expect("server");
}

#[tokio::test]
async fn restart_resumes_from_redis() {
    let Some(net) = setup().await else { return };
    let redis = start_redis();
    let s1 = &net.senders[0];
    s1.fund_deposit(U256::from(10)).await.expect("fund");
    net.anvil.mine(30).await.expect("mine");

    let first = Follower::new(
        options(&net),
        Store::redis(&redis.url()).await.expect("redis"),
    )
    .await
    .expect("follower");
    first.sync_to_head().await.expect("sync");
    let stopped_at = first.handle().read(|s| s.block_number());
    assert_eq!(
        first
            .handle()
            .stats()
            .first_block_fetched
            .load(Ordering::Relaxed),
        0
    );
    drop(first);

    s1.fund_deposit(U256::from(20)).await.expect("fund");
    net.orch
        .activate_transcoder(U256::ZERO, U256::ZERO)
        .await
        .expect("activate");
    net.anvil.mine(5).await.expect("mine");

    let second = Follower::new(
        options(&net),
        Store::redis(&redis.url()).await.expect("redis"),
    )
    .await
    .expect("follower");
    assert_eq!(
        second.handle().read(|s| s.block_number()),
        stopped_at,
        "the stored cursor is loaded"
    );
    second.sync_to_head().await.expect("sync");
    assert_eq!(
        second
            .handle()
            .stats()
            .first_block_fetched
            .load(Ordering::Relaxed),
        stopped_at + 1,
        "nothing before the stored cursor is read again"
    );
    assert_matches_chain(&net, &second).await;

    let fresh = Follower::new(options(&net), Store::memory())
        .await
        .expect("fresh");
    fresh.sync_to_head().await.expect("sync");
    assert_eq!(
        second.handle().read(|s| s.data.clone()),
        fresh.handle().read(|s| s.data.clone())
    );
}

#[tokio::test]
async fn after_a_reorg_the_state_equals_a_fresh_index() {
    let Some(net) = setup().await else { return };
    let provider = net.owner.provider().clone();
    let s1 = &net.senders[0];
    s1.fund_deposit(U256::from(100)).await.expect("fund");

    let follower = Follower::new(options(&net), Store::memory())
        .await
        .expect("follower");
    follower.sync_to_head().await.expect("sync");
    let snapshot: U256 = provider
        .raw_request("evm_snapshot".into(), ())
        .await
        .expect("snapshot");

    // the branch that will be dropped: longer than the one that replaces it
    s1.fund_deposit(U256::from(1)).await.expect("fund");
    net.orch
        .activate_transcoder(U256::ZERO, U256::ZERO)
        .await
        .expect("activate");
    s1.unlock().await.expect("unlock");
    net.anvil.mine(3).await.expect("mine");
    follower.sync_to_head().await.expect("sync");
    assert_eq!(
        follower.handle().read(|s| s.data.pool_size()),
        1,
        "the dropped branch was applied"
    );

    let reverted: bool = provider
        .raw_request("evm_revert".into(), (snapshot,))
        .await
        .expect("revert");
    assert!(reverted);
    // alloy caches nonces per provider: the reverted transactions' nonces are free again
    let (s1, s2) = (reconnect(&net, DEV_KEYS[2]), reconnect(&net, DEV_KEYS[3]));
    s2.fund_deposit(U256::from(777)).await.expect("fund s2");
    s1.fund_reserve(U256::from(5))
        .await
        .expect("fund s1 reserve");
    follower.sync_to_head().await.expect("sync after the reorg");
    let handle = follower.handle();
    let stats = handle.stats();
    assert!(
        stats.rollbacks.load(Ordering::Relaxed) >= 2,
        "blocks were rolled back"
    );
    assert_eq!(stats.resets.load(Ordering::Relaxed), 0);

    let fresh = Follower::new(options(&net), Store::memory())
        .await
        .expect("fresh");
    fresh.sync_to_head().await.expect("sync");
    assert_eq!(
        follower.handle().read(|s| s.data.clone()),
        fresh.handle().read(|s| s.data.clone())
    );
    assert_eq!(
        follower.handle().read(|s| s.cursor),
        fresh.handle().read(|s| s.cursor)
    );
    assert_matches_chain(&net, &follower).await;

    // then a replacement branch at the same height: same number of blocks, other contents
    let snapshot: U256 = provider
        .raw_request("evm_snapshot".into(), ())
        .await
        .expect("snapshot");
    s2.unlock().await.expect("unlock");
    follower.sync_to_head().await.expect("sync");
    let _: bool = provider
        .raw_request("evm_revert".into(), (snapshot,))
        .await
        .expect("revert");
    let s2 = reconnect(&net, DEV_KEYS[3]);
    s2.fund_deposit(U256::from(1)).await.expect("fund");
    follower.sync_to_head().await.expect("sync");
    assert_matches_chain(&net, &follower).await;
}

fn deposit_of(follower: &livefarm_indexer::IndexHandle, sender: Address) -> U256 {
    follower.read(|s| {
        s.data
            .senders
            .get(&sender)
            .map(|x| x.deposit)
            .unwrap_or_default()
    })
}

#[tokio::test]
async fn new_heads_over_websocket_wake_the_follower() {
    let Some(net) = setup().await else { return };
    let s1 = &net.senders[0];
    let mut opts = options(&net);
    // a poll this slow cannot explain an update within seconds: only the subscription can
    opts.poll_interval = Duration::from_secs(60);
    opts.ws_url = format!("ws://127.0.0.1:{}", net.anvil.port());
    let follower = Follower::new(opts, Store::memory())
        .await
        .expect("follower");
    let handle = follower.handle();
    let stop = Shutdown::new();
    let follow = tokio::spawn(follower.run(stop.clone()));
    let stats = handle.stats();
    wait_until(
        Duration::from_secs(10),
        "the newHeads subscription is set up",
        || async { stats.ws_subscriptions.load(Ordering::Relaxed) == 1 },
    )
    .await;
    let head = net.owner.block_number().await.expect("head");
    let handle_ref = &handle;
    wait_until(
        Duration::from_secs(5),
        "the first step reaches the head",
        || async move { handle_ref.read(|s| s.block_number()) == head },
    )
    .await;

    for (amount, total) in [(40u64, 40u64), (2, 42)] {
        fund_and_wait(
            &net,
            &handle,
            s1,
            amount,
            total,
            Duration::from_secs(5),
            &format!(
                "the head and a deposit of {total} indexed within seconds, not after the 60 s poll"
            ),
        )
        .await;
    }
    assert!(stats.ws_heads.load(Ordering::Relaxed) >= 2);
    assert!(stats.ws_connected.load(Ordering::Relaxed));
    assert!(!follow.is_finished());

    stop_follower(&stop, follow).await;
}

/// Stops a follower task and waits for it to end.
async fn stop_follower(stop: &Shutdown, follow: tokio::task::JoinHandle<()>) {
    stop.trigger();
    tokio::time::timeout(Duration::from_secs(5), follow)
        .await
        .expect("stops promptly")
        .expect("follower task");
}

/// Funds `amount` more for `sender` and waits (for `what`) until the follower shows the head
/// and the sender's deposit at `expected`.
async fn fund_and_wait(
    net: &Net,
    handle: &livefarm_indexer::IndexHandle,
    sender: &Chain,
    amount: u64,
    expected: u64,
    within: Duration,
    what: &str,
) {
    sender.fund_deposit(U256::from(amount)).await.expect("fund");
    let head = net.owner.block_number().await.expect("head");
    wait_until(within, what, || async move {
        let seen = (
            handle.read(|s| s.block_number()),
            deposit_of(handle, addr(sender)),
        );
        if seen == (head, U256::from(expected)) {
            Ok(())
        } else {
            Err(format!("block and deposit {seen:?}"))
        }
    })
    .await;
}

#[tokio::test]
async fn an_unreachable_websocket_leaves_polling_in_charge() {
    let Some(net) = setup().await else { return };
    let s1 = &net.senders[0];
    let closed_port = free_port();
    let mut opts = options(&net);
    opts.ws_url = format!("ws://127.0.0.1:{closed_port}");
    let follower = Follower::new(opts, Store::memory())
        .await
        .expect("follower");
    let handle = follower.handle();
    let stop = Shutdown::new();
    let follow = tokio::spawn(follower.run(stop.clone()));

    fund_and_wait(
        &net,
        &handle,
        s1,
        70,
        70,
        Duration::from_secs(10),
        "polling follows the chain without the websocket",
    )
    .await;
    // long enough for several failed connection attempts
    tokio::time::sleep(Duration::from_millis(1500)).await;
    fund_and_wait(
        &net,
        &handle,
        s1,
        5,
        75,
        Duration::from_secs(10),
        "still following after the failed attempts",
    )
    .await;
    let stats = handle.stats();
    assert_eq!(stats.ws_subscriptions.load(Ordering::Relaxed), 0);
    assert_eq!(stats.ws_heads.load(Ordering::Relaxed), 0);
    assert!(!follow.is_finished(), "the follower did not give up");

    stop_follower(&stop, follow).await;
}

#[tokio::test]
async fn bench_counts_every_generated_log() {
    let Some(anvil) = start_anvil().await else {
        return;
    };
    let opts = livefarm_indexer::bench::BenchOptions {
        blocks: 100,
        events: 450,
        max_block_range: 16,
        concurrency: 4,
        runs: 1,
    };
    let report = livefarm_indexer::bench::bench_on(&anvil, &opts)
        .await
        .expect("bench");
    assert_eq!(report.logs, 450);
    assert_eq!(report.blocks, 100);
    assert!(report.ratio_vs_getlogs > 0.0);
    let json = serde_json::to_value(&report).expect("serialises");
    assert!(json.get("ratio_vs_getlogs").is_some());
}

/// The full `livefarm bench indexer` workload (10,000 blocks, 50,000 events); run with
/// `--ignored --nocapture` to print the report.
#[tokio::test]
#[ignore = "minutes long: the full benchmark"]
async fn bench_full_size() {
    let Some(anvil) = start_anvil().await else {
        return;
    };
    let report = livefarm_indexer::bench::bench_on(&anvil, &Default::default())
        .await
        .expect("bench");
    println!(
        "{}",
        serde_json::to_string_pretty(&report).expect("serialises")
    );
    assert_eq!(report.logs, 50_000);
}

/// The value of the unlabelled sample `name` in an OpenMetrics text.
fn sample(text: &str, name: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .map(|v| v.trim().parse().expect("integer sample"))
}

async fn scrape(admin: std::net::SocketAddr) -> String {
    reqwest::get(format!("http://{admin}/metrics"))
        .await
        .expect("scrape")
        .error_for_status()
        .expect("metrics status")
        .text()
        .await
        .expect("metrics body")
}

#[tokio::test]
async fn the_service_exports_its_metrics() {
    let Some(net) = setup().await else { return };
    let admin = free_addr();
    let config = livefarm_indexer::IndexerConfig {
        rpc_url: net.anvil.endpoint(),
        controller: net.deployment.controller.to_string(),
        max_block_range: 7,
        poll_interval_ms: 50,
        ws_url: format!("ws://127.0.0.1:{}", net.anvil.port()),
        redis_url: String::new(),
        grpc_listen: free_addr(),
        admin_listen: admin,
        ..livefarm_indexer::IndexerConfig::default()
    };
    let stop = Shutdown::new();
    let service = tokio::spawn(livefarm_indexer::run(config, stop.clone()));
    net.senders[0]
        .fund_deposit(U256::from(9))
        .await
        .expect("fund");
    let head = net.owner.block_number().await.expect("head");
    let lir = net.owner.last_initialized_round().await.expect("lir");

    // scrape until the index reaches the head and the subscription is up
    let service_ref = &service;
    let text = wait_until(
        Duration::from_secs(20),
        &format!("the index at block {head} with the subscription up, in {admin}'s metrics"),
        || async move {
            assert!(!service_ref.is_finished(), "the service stopped early");
            let r = reqwest::get(format!("http://{admin}/metrics"))
                .await
                .map_err(|e| format!("no metrics: {e}"))?;
            let text = r.text().await.expect("metrics body");
            if sample(&text, "livefarm_indexer_block") == Some(head)
                && sample(&text, "livefarm_indexer_ws_connected") == Some(1)
            {
                Ok(text)
            } else {
                Err(text)
            }
        },
    )
    .await;
    let get = |name: &str| sample(&text, name).unwrap_or_else(|| panic!("{name} in\n{text}"));
    assert!(
        text.contains("# TYPE livefarm_indexer_blocks counter"),
        "{text}"
    );
    assert!(get("livefarm_indexer_blocks_total") > 0);
    // the deployment and the deposit emitted logs
    assert!(get("livefarm_indexer_logs_total") > 0);
    assert_eq!(get("livefarm_indexer_head_block"), head);
    assert_eq!(get("livefarm_indexer_lag_blocks"), 0);
    // anvil's L1 block is the block itself
    assert_eq!(get("livefarm_indexer_l1_block"), head);
    assert_eq!(get("livefarm_indexer_last_initialized_round"), lir);
    assert_eq!(get("livefarm_indexer_reorg_blocks_total"), 0);
    assert_eq!(get("livefarm_indexer_reindexes_total"), 0);
    assert_eq!(get("livefarm_indexer_ws_subscriptions_total"), 1);
    get("livefarm_indexer_get_logs_splits_total");
    get("livefarm_indexer_ws_new_heads_total");

    // a new block shows up in the gauge and the counters move on
    let blocks_before = get("livefarm_indexer_blocks_total");
    net.anvil.mine(3).await.expect("mine");
    let head = net.owner.block_number().await.expect("head");
    let text = wait_until(
        Duration::from_secs(10),
        &format!("the index to follow to block {head}"),
        || async move {
            let text = scrape(admin).await;
            if sample(&text, "livefarm_indexer_block") == Some(head) {
                Ok(text)
            } else {
                Err(text)
            }
        },
    )
    .await;
    assert_eq!(
        sample(&text, "livefarm_indexer_blocks_total"),
        Some(blocks_before + 3)
    );
    assert!(sample(&text, "livefarm_indexer_ws_new_heads_total").is_some_and(|n| n >= 1));

    stop.trigger();
    tokio::time::timeout(Duration::from_secs(10), service)
        .await
        .expect("stops promptly")
        .expect("service task")
        .expect("service ran cleanly");
}
