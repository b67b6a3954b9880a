//! The contracts on a real anvil: deployment, funding, redemption with every §12.3 refusal the
//! farm relies on, the reserve rules, unlock and withdraw. Skipped (loudly) only when anvil is
//! missing and LIVEFARM_REQUIRE_ANVIL is unset.

use alloy::network::ReceiptResponse;
use alloy::primitives::{hex, Address, Log, B256, U256};
use alloy::providers::Provider;
use alloy::sol_types::SolEvent;
use livefarm_chain::bindings::{BondingManager, RoundsManager, TicketBroker};
use livefarm_chain::testing::{anvil_path, Anvil, DEV_KEYS};
use livefarm_chain::{deploy, resolve, Chain, ChainError, DeployOptions, Deployment, Receipt};
use livefarm_pm::ticket::recipient_rand_hash;
use livefarm_pm::{Price, Signer, Ticket, TicketExpirationParams, WinningTicket, MAX_WIN_PROB};

const ETH: u64 = 1_000_000_000_000_000_000;

fn eth(n: u64) -> U256 {
    U256::from(n) * U256::from(ETH)
}

async fn start_anvil() -> Option<Anvil> {
    if anvil_path().is_none() {
        if std::env::var_os("LIVEFARM_REQUIRE_ANVIL").is_some() {
            panic!("LIVEFARM_REQUIRE_ANVIL is set but anvil is missing: run scripts/install-chain-tools.sh");
        }
        eprintln!("!!! SKIPPED: anvil not found (run scripts/install-chain-tools.sh or set LIVEFARM_ANVIL)");
        return None;
    }
    Some(Anvil::start().await.expect("anvil starts"))
}

fn key_bytes(key: &str) -> [u8; 32] {
    hex::decode(key)
        .expect("dev key is hex")
        .try_into()
        .expect("dev key is 32 bytes")
}

/// A deployment with one broadcaster (dev key 2) and `orchestrators` active transcoders
/// (dev keys 1, 3, ...), in a round where they are all active.
struct Net {
    anvil: Anvil,
    deployment: Deployment,
    orchs: Vec<Chain>,
    bcast: Chain,
    bcast_signer: Signer,
}

async fn setup(orchestrators: usize) -> Option<Net> {
    let anvil = start_anvil().await?;
    let url = anvil.endpoint();
    let opts = DeployOptions {
        round_length: 20,
        ..DeployOptions::default()
    };
    let deployment = deploy(&url, DEV_KEYS[0], &opts).await.expect("deploy");
    let mut orchs = Vec::new();
    for key in [DEV_KEYS[1], DEV_KEYS[3], DEV_KEYS[4]]
        .into_iter()
        .take(orchestrators)
    {
        let orch = Chain::connect(&url, key, deployment).expect("connect orchestrator");
        orch.activate_transcoder(U256::ZERO, U256::from(1_000_000u64))
            .await
            .expect("activate transcoder");
        orchs.push(orch);
    }
    let bcast = Chain::connect(&url, DEV_KEYS[2], deployment).expect("connect broadcaster");
    let bcast_signer = Signer::from_bytes(key_bytes(DEV_KEYS[2])).expect("signer");
    assert_eq!(
        bcast.address().expect("has key").0 .0,
        bcast_signer.address().0
    );
    anvil.advance_round(&bcast).await.expect("advance round");
    for orch in &orchs {
        let addr = orch.address().expect("has key");
        assert!(orch.is_active_transcoder(addr).await.expect("isActive"));
    }
    Some(Net {
        anvil,
        deployment,
        orchs,
        bcast,
        bcast_signer,
    })
}

impl Net {
    fn orch_addr(&self, i: usize) -> Address {
        self.orchs[i].address().expect("has key")
    }

    fn bcast_addr(&self) -> Address {
        self.bcast.address().expect("has key")
    }

    /// A ticket to orchestrator `i`, created in the last initialised round, signed by the
    /// broadcaster with livefarm_pm.
    async fn ticket(
        &self,
        i: usize,
        face_value: U256,
        win_prob: U256,
        nonce: u32,
    ) -> WinningTicket {
        let round = self.bcast.last_initialized_round().await.expect("round");
        let hash = self.bcast.block_hash_for_round(round).await.expect("hash");
        self.ticket_in_round(i, face_value, win_prob, nonce, round, hash.0)
    }

    fn ticket_in_round(
        &self,
        i: usize,
        face_value: U256,
        win_prob: U256,
        nonce: u32,
        round: u64,
        block_hash: [u8; 32],
    ) -> WinningTicket {
        let rand = livefarm_pm::U256::from(0x5eed_0000u64 + u64::from(nonce));
        let ticket = Ticket {
            recipient: livefarm_pm::Address(self.orch_addr(i).0 .0),
            sender: self.bcast_signer.address(),
            face_value,
            win_prob,
            sender_nonce: nonce,
            recipient_rand_hash: recipient_rand_hash(&rand),
            expiration_params: TicketExpirationParams {
                creation_round: i64::try_from(round).expect("round fits"),
                creation_round_block_hash: block_hash,
            },
            params_expiration_block: 0,
            price_per_pixel: Price::zero(),
        };
        let sig = self.bcast_signer.sign_personal(&ticket.hash());
        WinningTicket::new(&ticket, &sig, rand, "session")
    }
}

fn decode_logs<E: SolEvent>(receipt: &Receipt, from: Address) -> Vec<E> {
    receipt
        .logs()
        .iter()
        .filter(|l| l.address() == from)
        .filter_map(|l| {
            let log = Log::new(l.address(), l.topics().to_vec(), l.data().data.clone())?;
            E::decode_log(&log).ok().map(|d| d.data)
        })
        .collect()
}

fn reason(err: ChainError) -> String {
    err.revert_reason()
        .unwrap_or_else(|| panic!("expected a revert, got {err}"))
        .to_string()
}

/// Gas paid by a receipt's transaction.
fn gas_cost(receipt: &Receipt) -> U256 {
    U256::from(receipt.gas_used()) * U256::from(receipt.effective_gas_price())
}

#[tokio::test]
async fn deploy_registers_everything_and_initialises_the_round() {
    let Some(net) = setup(1).await else { return };
    let url = net.anvil.endpoint();
    assert_eq!(
        resolve(&url, net.deployment.controller)
            .await
            .expect("resolve"),
        net.deployment
    );
    let resolved = Chain::connect_resolved(&url, DEV_KEYS[1], net.deployment.controller)
        .await
        .expect("connect resolved");
    assert_eq!(*resolved.deployment(), net.deployment);

    let chain = &net.bcast;
    assert_eq!(chain.round_length().await.expect("len"), 20);
    assert!(chain.current_round_initialized().await.expect("init"));
    let round = chain.current_round().await.expect("round");
    assert_eq!(chain.last_initialized_round().await.expect("last"), round);
    assert_eq!(chain.transcoder_pool_size().await.expect("pool"), 1);
    assert_eq!(
        chain.transcoder_pool().await.expect("pool"),
        [net.orch_addr(0)]
    );

    // A new round: its number, start block and the recorded hash of the block before the
    // initialising one (§12.4).
    let start = chain.current_round_start_block().await.expect("start");
    net.anvil.mine(25).await.expect("mine");
    assert!(!chain.current_round_initialized().await.expect("init"));
    assert_eq!(chain.current_round().await.expect("round"), round + 1);
    assert_eq!(
        chain.current_round_start_block().await.expect("start"),
        start + 20
    );
    let receipt = chain.initialize_round().await.expect("initialize");
    let rounds: Vec<RoundsManager::NewRound> = decode_logs(&receipt, net.deployment.rounds_manager);
    assert_eq!(rounds.len(), 1);
    assert_eq!(rounds[0].round, U256::from(round + 1));
    let block = receipt.block_number().expect("mined");
    let parent = chain
        .provider()
        .get_block_by_number((block - 1).into())
        .await
        .expect("get block")
        .expect("block exists");
    let parent_hash: B256 = parent.header.hash;
    assert_eq!(rounds[0].blockHash, parent_hash);
    assert_eq!(
        chain.block_hash_for_round(round + 1).await.expect("hash"),
        parent_hash
    );
    let again = chain
        .initialize_round()
        .await
        .expect_err("second initialisation");
    assert_eq!(reason(again), "round already initialized");

    // Service registry.
    net.orchs[0]
        .set_service_uri("https://orch.example:8935")
        .await
        .expect("set uri");
    assert_eq!(
        chain.service_uri(net.orch_addr(0)).await.expect("get uri"),
        "https://orch.example:8935"
    );
}

#[tokio::test]
async fn winning_ticket_pays_recipient_from_deposit_once() {
    let Some(net) = setup(1).await else { return };
    net.bcast
        .fund_deposit_and_reserve(eth(1), eth(1))
        .await
        .expect("fund");
    let bcast = net.bcast_addr();
    let orch = net.orch_addr(0);
    let before = net.bcast.sender_info(bcast).await.expect("info");
    assert_eq!(before.deposit, eth(1));
    assert_eq!(before.reserve_funds_remaining, eth(1));
    assert_eq!(before.withdraw_round, U256::ZERO);

    let face = U256::from(300_000_000_000_000u64);
    let t = net.ticket(0, face, MAX_WIN_PROB_U256, 1).await;
    // livefarm_pm and the contract hash the ticket alike.
    assert_eq!(
        net.bcast.ticket_hash(&t).await.expect("hash").0,
        t.ticket_hash
    );
    assert!(!net
        .bcast
        .used_ticket(B256::from(t.ticket_hash))
        .await
        .expect("used"));

    // Anyone may submit a winning ticket; the orchestrator does here.
    let receipt = net.orchs[0]
        .redeem_winning_ticket(&t)
        .await
        .expect("redeem");
    let broker = net.deployment.ticket_broker;
    let transfers: Vec<TicketBroker::WinningTicketTransfer> = decode_logs(&receipt, broker);
    assert_eq!(transfers.len(), 1);
    assert_eq!(
        (
            transfers[0].sender,
            transfers[0].recipient,
            transfers[0].amount
        ),
        (bcast, orch, face)
    );
    let redeemed: Vec<TicketBroker::WinningTicketRedeemed> = decode_logs(&receipt, broker);
    assert_eq!(redeemed.len(), 1);
    assert_eq!(redeemed[0].faceValue, face);
    assert_eq!(redeemed[0].senderNonce, U256::from(1));
    assert_eq!(
        redeemed[0].recipientRand.to_be_bytes::<32>(),
        t.recipient_rand.to_be_bytes::<32>()
    );
    assert_eq!(redeemed[0].auxData.len(), 64);
    assert!(decode_logs::<TicketBroker::ReserveClaimed>(&receipt, broker).is_empty());

    let after = net.bcast.sender_info(bcast).await.expect("info");
    assert_eq!(after.deposit, eth(1) - face);
    assert_eq!(after.reserve_funds_remaining, eth(1));
    assert_eq!(net.bcast.pending_fees(orch).await.expect("fees"), face);
    assert_eq!(
        net.bcast
            .transcoder(orch)
            .await
            .expect("transcoder")
            .cumulative_fees,
        face
    );
    assert!(net
        .bcast
        .used_ticket(B256::from(t.ticket_hash))
        .await
        .expect("used"));

    // Replays are refused, singly and in a batch (where the batch itself succeeds).
    let replay = net.orchs[0]
        .redeem_winning_ticket(&t)
        .await
        .expect_err("replay");
    assert_eq!(reason(replay), "ticket is used");
    let t2 = net.ticket(0, face, MAX_WIN_PROB_U256, 2).await;
    let receipt = net.orchs[0]
        .batch_redeem_winning_tickets(&[t.clone(), t2])
        .await
        .expect("batch");
    let redeemed: Vec<TicketBroker::WinningTicketRedeemed> = decode_logs(&receipt, broker);
    assert_eq!(redeemed.len(), 1, "only the fresh ticket of the batch pays");
    assert_eq!(redeemed[0].senderNonce, U256::from(2));
    assert_eq!(
        net.bcast.pending_fees(orch).await.expect("fees"),
        face * U256::from(2)
    );

    // The orchestrator takes its fees out in ETH.
    let payee = Address::repeat_byte(0x42);
    let receipt = net.orchs[0]
        .withdraw_fees(payee, face)
        .await
        .expect("withdraw fees");
    let fees: Vec<BondingManager::WithdrawFees> =
        decode_logs(&receipt, net.deployment.bonding_manager);
    assert_eq!(
        (fees[0].delegator, fees[0].recipient, fees[0].amount),
        (orch, payee, face)
    );
    assert_eq!(net.bcast.balance(payee).await.expect("balance"), face);
    assert_eq!(net.bcast.pending_fees(orch).await.expect("fees"), face);
    let over = net.orchs[0]
        .withdraw_fees(payee, face + U256::from(1))
        .await
        .expect_err("too much");
    assert_eq!(reason(over), "insufficient fees to withdraw");
}

const MAX_WIN_PROB_U256: U256 = U256::MAX;

#[test]
fn max_win_prob_is_livefarm_pm_max() {
    assert_eq!(
        MAX_WIN_PROB_U256.to_be_bytes::<32>(),
        MAX_WIN_PROB.to_be_bytes::<32>()
    );
}

#[tokio::test]
async fn invalid_tickets_are_refused_with_livepeer_reasons() {
    let Some(net) = setup(1).await else { return };
    net.bcast.fund_deposit(eth(1)).await.expect("fund");
    let face = U256::from(1_000u64);

    // Expired: creationRound + ticketValidityPeriod (2) must exceed the current round.
    let old = net.ticket(0, face, MAX_WIN_PROB_U256, 1).await;
    net.anvil.advance_round(&net.bcast).await.expect("advance");
    let still_valid = net.ticket_in_round(
        0,
        face,
        MAX_WIN_PROB_U256,
        2,
        u64::try_from(old.creation_round).expect("round"),
        old.creation_round_block_hash,
    );
    net.orchs[0]
        .redeem_winning_ticket(&still_valid)
        .await
        .expect("one round old redeems");
    net.anvil.advance_round(&net.bcast).await.expect("advance");
    let expired = net.orchs[0]
        .redeem_winning_ticket(&old)
        .await
        .expect_err("expired");
    assert_eq!(reason(expired), "ticket is expired");

    // Did not win.
    let losing = net.ticket(0, face, U256::ZERO, 3).await;
    let lost = net.orchs[0]
        .redeem_winning_ticket(&losing)
        .await
        .expect_err("losing");
    assert_eq!(reason(lost), "ticket did not win");

    // Wrong recipientRand.
    let mut bad_rand = net.ticket(0, face, MAX_WIN_PROB_U256, 4).await;
    bad_rand.recipient_rand += livefarm_pm::U256::from(1);
    let err = net.orchs[0]
        .redeem_winning_ticket(&bad_rand)
        .await
        .expect_err("rand");
    assert_eq!(
        reason(err),
        "recipientRand does not match recipientRandHash"
    );

    // Signed by someone else.
    let mut forged = net.ticket(0, face, MAX_WIN_PROB_U256, 5).await;
    let other = Signer::from_bytes(key_bytes(DEV_KEYS[4])).expect("signer");
    forged.sig = other.sign_personal(&forged.ticket_hash).to_vec();
    let err = net.orchs[0]
        .redeem_winning_ticket(&forged)
        .await
        .expect_err("forged");
    assert_eq!(reason(err), "invalid signature over ticket hash");

    // Malformed signature.
    let mut short = net.ticket(0, face, MAX_WIN_PROB_U256, 6).await;
    short.sig.truncate(64);
    let err = net.orchs[0]
        .redeem_winning_ticket(&short)
        .await
        .expect_err("short sig");
    assert_eq!(reason(err), "INVALID_SIGNATURE_LENGTH");

    // Wrong creation round hash, and a round without a hash.
    let round = net.bcast.last_initialized_round().await.expect("round");
    let wrong_hash = net.ticket_in_round(0, face, MAX_WIN_PROB_U256, 7, round, [7u8; 32]);
    let err = net.orchs[0]
        .redeem_winning_ticket(&wrong_hash)
        .await
        .expect_err("hash");
    assert_eq!(
        reason(err),
        "ticket creationRoundBlockHash invalid for creationRound"
    );
    let future = net.ticket_in_round(0, face, MAX_WIN_PROB_U256, 8, round + 5, [7u8; 32]);
    let err = net.orchs[0]
        .redeem_winning_ticket(&future)
        .await
        .expect_err("no hash");
    assert_eq!(
        reason(err),
        "ticket creationRound does not have a block hash"
    );

    // A recipient that is not a registered transcoder cannot be paid.
    let mut stranger = net.ticket(0, face, MAX_WIN_PROB_U256, 9).await;
    stranger.recipient = livefarm_pm::Address([0x33; 20]);
    let mut t = stranger.ticket();
    t.recipient = stranger.recipient;
    stranger = WinningTicket::new(
        &t,
        &net.bcast_signer.sign_personal(&t.hash()),
        stranger.recipient_rand,
        "session",
    );
    let err = net.orchs[0]
        .redeem_winning_ticket(&stranger)
        .await
        .expect_err("stranger");
    assert_eq!(reason(err), "transcoder must be registered");

    // Nothing above moved money except the one valid redemption.
    let info = net.bcast.sender_info(net.bcast_addr()).await.expect("info");
    assert_eq!(info.deposit, eth(1) - face);
}

#[tokio::test]
async fn face_value_above_deposit_draws_on_the_reserve_up_to_the_allocation() {
    // Two active transcoders: each may claim half of the reserve per round.
    let Some(net) = setup(2).await else { return };
    let deposit = U256::from(1_000u64);
    let reserve = U256::from(10_000u64);
    net.bcast
        .fund_deposit_and_reserve(deposit, reserve)
        .await
        .expect("fund");
    let (bcast, orch) = (net.bcast_addr(), net.orch_addr(0));
    let broker = net.deployment.ticket_broker;
    assert_eq!(
        net.bcast
            .claimable_reserve(bcast, orch)
            .await
            .expect("claimable"),
        reserve / U256::from(2)
    );

    // faceValue = deposit + 3,000: the deposit empties, 3,000 comes from the reserve.
    let t1 = net
        .ticket(0, deposit + U256::from(3_000u64), MAX_WIN_PROB_U256, 1)
        .await;
    let receipt = net.orchs[0]
        .redeem_winning_ticket(&t1)
        .await
        .expect("redeem 1");
    let claims: Vec<TicketBroker::ReserveClaimed> = decode_logs(&receipt, broker);
    assert_eq!(claims.len(), 1);
    assert_eq!(
        (
            claims[0].reserveHolder,
            claims[0].claimant,
            claims[0].amount
        ),
        (bcast, orch, U256::from(3_000u64))
    );
    let info = net.bcast.sender_info(bcast).await.expect("info");
    assert_eq!(info.deposit, U256::ZERO);
    assert_eq!(info.reserve_funds_remaining, U256::from(7_000u64));
    assert_eq!(info.reserve_claimed_in_current_round, U256::from(3_000u64));
    assert_eq!(
        net.bcast
            .claimed_reserve(bcast, orch)
            .await
            .expect("claimed"),
        U256::from(3_000u64)
    );
    // (7,000 left + 3,000 claimed) / 2 - 3,000 already claimed.
    assert_eq!(
        net.bcast
            .claimable_reserve(bcast, orch)
            .await
            .expect("claimable"),
        U256::from(2_000u64)
    );

    // A second ticket of 5,000 is capped at the 2,000 left of this recipient's allocation.
    let t2 = net
        .ticket(0, U256::from(5_000u64), MAX_WIN_PROB_U256, 2)
        .await;
    let receipt = net.orchs[0]
        .redeem_winning_ticket(&t2)
        .await
        .expect("redeem 2");
    let transfers: Vec<TicketBroker::WinningTicketTransfer> = decode_logs(&receipt, broker);
    assert_eq!(transfers[0].amount, U256::from(2_000u64));
    assert_eq!(
        net.bcast.pending_fees(orch).await.expect("fees"),
        deposit + U256::from(5_000u64)
    );

    // Allocation used up: the ticket is consumed, pays nothing, and only WinningTicketRedeemed
    // is emitted.
    let t3 = net
        .ticket(0, U256::from(5_000u64), MAX_WIN_PROB_U256, 3)
        .await;
    let receipt = net.orchs[0]
        .redeem_winning_ticket(&t3)
        .await
        .expect("redeem 3");
    assert!(decode_logs::<TicketBroker::WinningTicketTransfer>(&receipt, broker).is_empty());
    assert_eq!(
        decode_logs::<TicketBroker::WinningTicketRedeemed>(&receipt, broker).len(),
        1
    );
    assert!(net
        .bcast
        .used_ticket(B256::from(t3.ticket_hash))
        .await
        .expect("used"));

    // The other transcoder still has its own half.
    let orch2 = net.orch_addr(1);
    assert_eq!(
        net.bcast
            .claimable_reserve(bcast, orch2)
            .await
            .expect("claimable"),
        U256::from(5_000u64)
    );
    let t4 = net
        .ticket(1, U256::from(6_000u64), MAX_WIN_PROB_U256, 4)
        .await;
    net.orchs[1]
        .redeem_winning_ticket(&t4)
        .await
        .expect("redeem 4");
    assert_eq!(
        net.bcast.pending_fees(orch2).await.expect("fees"),
        U256::from(5_000u64)
    );

    // The reserve is empty now; in the next round fresh funds are split over the pool afresh.
    net.anvil.advance_round(&net.bcast).await.expect("advance");
    let left = net
        .bcast
        .sender_info(bcast)
        .await
        .expect("info")
        .reserve_funds_remaining;
    assert_eq!(left, U256::ZERO);
    net.bcast
        .fund_reserve(U256::from(4_000u64))
        .await
        .expect("fund reserve");
    assert_eq!(
        net.bcast
            .claimable_reserve(bcast, orch)
            .await
            .expect("claimable"),
        U256::from(2_000u64)
    );

    // A registered but inactive transcoder cannot claim from the reserve.
    net.orchs[0].resign_transcoder().await.expect("resign");
    assert_eq!(net.bcast.transcoder_pool_size().await.expect("pool"), 1);
    net.anvil.advance_round(&net.bcast).await.expect("advance");
    assert!(!net.bcast.is_active_transcoder(orch).await.expect("active"));
    assert_eq!(
        net.bcast
            .claimable_reserve(bcast, orch)
            .await
            .expect("claimable"),
        U256::ZERO
    );
    // The one transcoder left gets the whole reserve.
    assert_eq!(
        net.bcast
            .claimable_reserve(bcast, orch2)
            .await
            .expect("claimable"),
        U256::from(4_000u64)
    );
}

#[tokio::test]
async fn unlock_then_withdraw_after_the_unlock_period() {
    let Some(net) = setup(1).await else { return };
    let bcast = net.bcast_addr();
    let (deposit, reserve) = (eth(2), eth(1));
    net.bcast
        .fund_deposit_and_reserve(deposit, reserve)
        .await
        .expect("fund");

    let err = net
        .bcast
        .withdraw()
        .await
        .expect_err("withdraw without unlock");
    assert_eq!(reason(err), "no unlock request in progress");
    let round = net.bcast.current_round().await.expect("round");
    let receipt = net.bcast.unlock().await.expect("unlock");
    let unlocks: Vec<TicketBroker::Unlock> = decode_logs(&receipt, net.deployment.ticket_broker);
    assert_eq!(
        (unlocks[0].startRound, unlocks[0].endRound),
        (U256::from(round), U256::from(round + 2))
    );
    assert!(net
        .bcast
        .is_unlock_in_progress(bcast)
        .await
        .expect("unlocking"));
    assert_eq!(
        net.bcast
            .sender_info(bcast)
            .await
            .expect("info")
            .withdraw_round,
        U256::from(round + 2)
    );
    assert_eq!(
        reason(net.bcast.unlock().await.expect_err("twice")),
        "unlock already initiated"
    );

    // Cancel and unlock again; funding also cancels a pending unlock.
    net.bcast.cancel_unlock().await.expect("cancel");
    assert!(!net
        .bcast
        .is_unlock_in_progress(bcast)
        .await
        .expect("unlocking"));
    net.bcast.unlock().await.expect("unlock");
    net.bcast
        .fund_deposit(U256::from(1u64))
        .await
        .expect("fund");
    assert!(!net
        .bcast
        .is_unlock_in_progress(bcast)
        .await
        .expect("unlocking"));
    let deposit = deposit + U256::from(1u64);
    net.bcast.unlock().await.expect("unlock");

    // Still locked for the unlock period: tickets still redeem, withdraw is refused.
    let t = net
        .ticket(0, U256::from(500u64), MAX_WIN_PROB_U256, 1)
        .await;
    net.orchs[0]
        .redeem_winning_ticket(&t)
        .await
        .expect("redeem while unlocking");
    let deposit = deposit - U256::from(500u64);
    net.anvil.advance_round(&net.bcast).await.expect("advance");
    assert_eq!(
        reason(net.bcast.withdraw().await.expect_err("locked")),
        "account is locked"
    );
    net.anvil.advance_round(&net.bcast).await.expect("advance");

    // Unlocked: tickets no longer redeem, withdraw pays deposit + reserve.
    let late = net
        .ticket(0, U256::from(500u64), MAX_WIN_PROB_U256, 2)
        .await;
    let err = net.orchs[0]
        .redeem_winning_ticket(&late)
        .await
        .expect_err("unlocked");
    assert_eq!(reason(err), "sender is unlocked");
    let balance_before = net.bcast.balance(bcast).await.expect("balance");
    let receipt = net.bcast.withdraw().await.expect("withdraw");
    let w: Vec<TicketBroker::Withdrawal> = decode_logs(&receipt, net.deployment.ticket_broker);
    assert_eq!((w[0].deposit, w[0].reserve), (deposit, reserve));
    let balance_after = net.bcast.balance(bcast).await.expect("balance");
    assert_eq!(
        balance_after + gas_cost(&receipt),
        balance_before + deposit + reserve
    );
    let info = net.bcast.sender_info(bcast).await.expect("info");
    assert_eq!(
        (info.deposit, info.reserve_funds_remaining),
        (U256::ZERO, U256::ZERO)
    );
    // Livepeer leaves withdrawRound set after a withdrawal (§19.5).
    assert!(net
        .bcast
        .is_unlock_in_progress(bcast)
        .await
        .expect("unlocking"));
    let err = net.bcast.withdraw().await.expect_err("nothing left");
    assert_eq!(reason(err), "sender deposit and reserve are zero");
    // The Minter held exactly the funds and paid them out.
    let minter_balance = net
        .bcast
        .balance(net.deployment.minter)
        .await
        .expect("balance");
    assert_eq!(
        minter_balance,
        U256::from(500u64),
        "only the redeemed fee stays in the Minter"
    );
}
