//! Broadcaster → orchestrator payment flow against an in-memory chain.

use std::sync::Arc;

use livefarm_pm::balance::tickets_needed;
use livefarm_pm::num::{min_be_bytes, to_bigint};
use livefarm_pm::params::PARAMS_EXPIRATION_BLOCKS;
use livefarm_pm::ticket::TicketExpirationParams;
use livefarm_pm::wire::{PaymentMsg, TicketSenderParamsMsg};
use livefarm_pm::{
    gen_payment, Address, Balances, InMemoryChain, PmError, Price, Recipient, RecipientConfig,
    ReserveInfo, Sender, SenderConfig, SenderInfo, Signer, TicketParams, MAX_SENDER_NONCES,
    MAX_WIN_PROB, U256,
};
use num_bigint::BigInt;
use num_rational::BigRational;
use num_traits::Zero;

const ORCH: Address = Address([0x0a; 20]);
const L1: u64 = 5_000;
const ROUND: i64 = 20;

struct World {
    chain: Arc<InMemoryChain>,
    recipient: Recipient,
    sender: Sender,
    price: Price,
}

fn funded() -> SenderInfo {
    let eth = U256::from(10u64).pow(U256::from(18u64));
    SenderInfo {
        deposit: eth,
        reserve: ReserveInfo {
            funds_remaining: eth,
            claimed_in_current_round: U256::ZERO,
        },
        withdraw_round: 0,
    }
}

fn world_with(cfg: RecipientConfig) -> World {
    let chain = Arc::new(InMemoryChain::new());
    chain.set_round(ROUND, [0x11; 32]);
    chain.set_l1_block(L1);
    chain.set_pool_size(10);
    chain.set_gas_price(U256::from(10_000_000u64));
    chain.set_active(ORCH, 1, 1_000);
    let signer = Signer::random().expect("rng");
    chain.set_sender(signer.address(), funded());
    let recipient = Recipient::with_secret(ORCH, [0x5e; 32], cfg, chain.clone());
    let sender = Sender::new(signer, SenderConfig::default(), chain.clone());
    World {
        chain,
        recipient,
        sender,
        price: Price::new(3, 2).expect("valid"),
    }
}

fn world() -> World {
    world_with(RecipientConfig::default())
}

impl World {
    fn params(&self) -> TicketParams {
        self.recipient
            .ticket_params(&self.sender.address(), &self.price)
            .expect("params")
    }

    /// Params as B decodes them from OrchestratorInfo (wire round trip).
    fn echoed(&self, p: &TicketParams) -> TicketParams {
        let info = self.price.to_price_info().expect("fits");
        TicketParams::from_wire(
            &p.to_wire(true),
            Price::from_price_info(&info).expect("valid"),
        )
        .expect("valid wire")
    }

    fn payment(&self, session: &str, n: usize) -> PaymentMsg {
        let batch = self.sender.create_ticket_batch(session, n).expect("batch");
        gen_payment(
            self.sender.address(),
            self.price.to_price_info().expect("fits"),
            Some(&batch),
        )
    }
}

fn exact_ev(fv: &U256, wp: &U256) -> BigRational {
    BigRational::new(to_bigint(fv) * to_bigint(wp), to_bigint(&MAX_WIN_PROB))
}

#[test]
fn payment_credits_exact_ev_per_ticket() {
    let w = world();
    let p = w.params();
    let s = w.sender.start_session(w.echoed(&p));
    let balances = Balances::default();
    let out = w
        .recipient
        .process_payment(&w.payment(&s, 3), "auth-1", &balances);
    assert_eq!(out.error, None);
    assert_eq!(out.credited_tickets, 3);
    let expected = exact_ev(&p.face_value, &p.win_prob) * BigRational::from_integer(3.into());
    assert_eq!(out.credited_ev, expected);
    assert_eq!(
        balances.balance(w.sender.address(), "auth-1"),
        Some(expected)
    );
    assert_eq!(
        balances.fixed_price(w.sender.address(), "auth-1"),
        Some(w.price.clone())
    );
}

#[test]
fn params_follow_the_formulas() {
    let w = world();
    let p = w.params();
    let cfg = w.recipient.config();
    // txCost = 1.2M × 0.01 gwei = 1.2e13; × 100 = 1.2e15 ≥ EV; max float = 1e18 / 10 pool
    assert_eq!(p.face_value, U256::from(1_200_000u64 * 10_000_000 * 100));
    let (q, r) = MAX_WIN_PROB.div_rem(p.face_value);
    let q = if r.is_zero() { q } else { q + U256::from(1u64) };
    assert_eq!(p.win_prob, cfg.ev * q);
    assert_eq!(p.expiration_block, L1 + PARAMS_EXPIRATION_BLOCKS);
    assert_eq!(
        p.expiration_params,
        TicketExpirationParams {
            creation_round: ROUND,
            creation_round_block_hash: [0x11; 32]
        }
    );
    assert_eq!(p.recipient, ORCH);
    // EV is at least the configured EV and within one unit of it.
    let ev = p.ev();
    let cfg_ev = BigRational::from_integer(to_bigint(&cfg.ev));
    assert!(ev >= cfg_ev);
    assert!(
        ev - cfg_ev
            < BigRational::from_integer(to_bigint(&cfg.ev))
                / BigRational::from_integer(BigInt::from(1000))
    );
    // B accepts it
    w.sender
        .validate_ticket_params(&w.echoed(&p))
        .expect("acceptable");
}

#[test]
fn zero_block_hash_falls_back_to_previous_round() {
    let w = world();
    w.chain.set_round(ROUND + 1, [0u8; 32]);
    let p = w.params();
    assert_eq!(
        p.expiration_params,
        TicketExpirationParams {
            creation_round: ROUND,
            creation_round_block_hash: [0x11; 32]
        }
    );
}

#[test]
fn zero_price_gives_zero_params() {
    let w = world();
    let p = w
        .recipient
        .ticket_params(&w.sender.address(), &Price::zero())
        .expect("params");
    assert!(p.face_value.is_zero());
    assert!(p.win_prob.is_zero());
    // A payment without params fixes the session price to zero.
    let balances = Balances::default();
    let pay = gen_payment(
        w.sender.address(),
        Price::zero().to_price_info().expect("fits"),
        None,
    );
    assert!(pay.ticket_params.is_none());
    let out = w.recipient.process_payment(&pay, "s", &balances);
    assert_eq!(out.error, None);
    assert_eq!(
        balances.fixed_price(w.sender.address(), "s"),
        Some(Price::zero())
    );
}

#[test]
fn replayed_nonce_is_rejected_without_credit() {
    let w = world();
    let s = w.sender.start_session(w.echoed(&w.params()));
    let balances = Balances::default();
    let pay = w.payment(&s, 2);
    assert_eq!(
        pay.ticket_sender_params[0].sender_nonce, 1,
        "nonces are pre-incremented"
    );
    let first = w.recipient.process_payment(&pay, "a", &balances);
    assert_eq!(first.error, None);
    let before = balances.balance(w.sender.address(), "a").expect("credited");
    let replay = w.recipient.process_payment(&pay, "a", &balances);
    let err = replay.error.expect("replay refused");
    assert_eq!(
        err,
        PmError::NonceAlreadySeen {
            sender: w.sender.address(),
            nonce: 2
        },
        "go-livepeer keeps the last non-fatal error"
    );
    assert!(err
        .to_string()
        .starts_with("invalid ticket senderNonce: already seen sender=0x"));
    assert!(!err.is_fatal());
    assert_eq!(replay.credited_tickets, 0);
    assert_eq!(balances.balance(w.sender.address(), "a"), Some(before));
}

#[test]
fn nonce_cap_per_recipient_rand() {
    let w = world();
    let p = w.params();
    let s = w.sender.start_session(w.echoed(&p));
    let balances = Balances::default();
    let mut pay = w.payment(&s, MAX_SENDER_NONCES + 1);
    let last = pay.ticket_sender_params.pop().expect("one over the cap");
    let out = w.recipient.process_payment(&pay, "a", &balances);
    assert_eq!(out.error, None);
    assert_eq!(out.credited_tickets, MAX_SENDER_NONCES);
    pay.ticket_sender_params = vec![last];
    let out = w.recipient.process_payment(&pay, "a", &balances);
    let err = out.error.expect("capped");
    assert!(
        matches!(err, PmError::TooManyNonces { nonce, .. } if nonce == MAX_SENDER_NONCES as u32 + 1)
    );
    assert!(err
        .to_string()
        .contains("invalid ticket senderNonce: too many values"));
}

#[test]
fn expired_params_are_rejected_and_nonces_cleaned_up() {
    let w = world();
    let p = w.params();
    let s = w.sender.start_session(w.echoed(&p));
    let pay = w.payment(&s, 1);
    w.chain.set_l1_block(p.expiration_block);
    let balances = Balances::default();
    let out = w.recipient.process_payment(&pay, "a", &balances);
    assert_eq!(out.error, Some(PmError::TicketParamsExpired));
    assert_eq!(
        out.error.as_ref().map(ToString::to_string).as_deref(),
        Some("TicketParams expired")
    );
    assert_eq!(out.credited_tickets, 0);
    assert_eq!(w.recipient.tracked_rands(), 1);
    assert_eq!(w.recipient.cleanup_nonces(p.expiration_block - 1), 0);
    assert_eq!(w.recipient.cleanup_nonces(p.expiration_block), 1);
    assert_eq!(w.recipient.tracked_rands(), 0);
    // B refuses params within one block of expiry
    w.chain.set_l1_block(p.expiration_block - 1);
    assert_eq!(
        w.sender.validate_ticket_params(&p),
        Err(PmError::TicketParamsExpired)
    );
    w.chain.set_l1_block(p.expiration_block - 2);
    assert_eq!(w.sender.validate_ticket_params(&p), Ok(()));
}

#[test]
fn changed_echo_gives_fatal_recipient_rand_error() {
    let w = world();
    let s = w.sender.start_session(w.echoed(&w.params()));
    let balances = Balances::default();
    let mut pay = w.payment(&s, 2);
    // A different price than the one the params were made for.
    pay.expected_price = Some(
        Price::new(2, 1)
            .expect("valid")
            .to_price_info()
            .expect("fits"),
    );
    let out = w.recipient.process_payment(&pay, "a", &balances);
    let err = out.error.expect("refused");
    assert_eq!(err, PmError::InvalidRecipientRand);
    assert_eq!(
        err.to_string(),
        "invalid recipientRand for ticket recipientRandHash"
    );
    assert!(err.is_fatal());
    assert_eq!(out.credited_tickets, 0);
}

#[test]
fn leading_zero_seed_survives_minimal_reencoding() {
    // §19.6: a seed whose first byte is zero comes back one byte shorter.
    let w = world();
    let mut seed_bytes = [0x77u8; 32];
    seed_bytes[0] = 0;
    let seed = U256::from_be_bytes(seed_bytes);
    let p = w
        .recipient
        .ticket_params_with_seed(&w.sender.address(), &w.price, seed)
        .expect("params");
    assert_eq!(p.to_wire(true).seed.len(), 31);
    let s = w.sender.start_session(w.echoed(&p));
    let out = w
        .recipient
        .process_payment(&w.payment(&s, 1), "a", &Balances::default());
    assert_eq!(out.error, None);
}

#[test]
fn bad_signature_is_non_fatal_and_stops_crediting() {
    let w = world();
    let s = w.sender.start_session(w.echoed(&w.params()));
    let balances = Balances::default();
    let mut pay = w.payment(&s, 3);
    pay.ticket_sender_params[1].sig[5] ^= 0xff;
    let out = w.recipient.process_payment(&pay, "a", &balances);
    assert_eq!(out.error, Some(PmError::InvalidTicketSignature));
    assert_eq!(
        out.error.as_ref().map(ToString::to_string).as_deref(),
        Some("invalid ticket signature")
    );
    // ticket 1 credited; ticket 2 failed; ticket 3 valid but not credited after the error
    assert_eq!(out.credited_tickets, 1);
}

#[test]
fn fatal_errors_stop_at_once() {
    let w = world();
    let s = w.sender.start_session(w.echoed(&w.params()));
    let balances = Balances::default();
    let pay = w.payment(&s, 2);

    let mut wrong_recipient = pay.clone();
    if let Some(tp) = wrong_recipient.ticket_params.as_mut() {
        tp.recipient = vec![0x0b; 20];
    }
    w.chain.set_active(Address([0x0b; 20]), 1, 1000);
    let out = w
        .recipient
        .process_payment(&wrong_recipient, "a", &balances);
    assert_eq!(out.error, Some(PmError::InvalidTicketRecipient));

    let mut no_sender = pay.clone();
    no_sender.sender.clear();
    assert_eq!(
        w.recipient
            .process_payment(&no_sender, "a", &balances)
            .error,
        Some(PmError::MissingSender)
    );

    let mut no_price = pay.clone();
    no_price.expected_price = None;
    let err = w
        .recipient
        .process_payment(&no_price, "a", &balances)
        .error
        .expect("refused");
    assert_eq!(
        err.to_string(),
        "invalid expected price sent with payment err=\"expected price is nil\""
    );

    // unlock soon: withdrawRound ≤ round + 1
    let mut info = funded();
    info.withdraw_round = ROUND + 1;
    w.chain.set_sender(w.sender.address(), info);
    let out = w.recipient.process_payment(&pay, "a", &balances);
    let err = out.error.expect("refused");
    assert_eq!(
        err.to_string(),
        format!(
            "deposit and reserve for sender {} is set to unlock soon",
            w.sender.address().to_checksum()
        )
    );
    assert!(err.is_fatal());
    let mut info = funded();
    info.withdraw_round = ROUND + 2;
    w.chain.set_sender(w.sender.address(), info);
    assert_eq!(
        w.recipient.process_payment(&pay, "a", &balances).error,
        None
    );

    // inactive orchestrator
    w.chain.set_active(ORCH, ROUND + 1, 1000);
    let err = w
        .recipient
        .process_payment(&pay, "a", &balances)
        .error
        .expect("inactive");
    assert_eq!(
        err.to_string(),
        format!(
            "orchestrator {} is inactive in round {ROUND}, cannot process payments",
            ORCH.to_checksum()
        )
    );
    assert_eq!(
        balances
            .balance(w.sender.address(), "a")
            .map(|b| b > BigRational::zero()),
        Some(true)
    );
}

#[test]
fn balance_after_payments_and_debits() {
    let w = world();
    let p = w.params();
    let s = w.sender.start_session(w.echoed(&p));
    let balances = Balances::default();
    let ev = exact_ev(&p.face_value, &p.win_prob);
    let mut expected = BigRational::zero();
    for (i, n) in [1usize, 4, 2, 7].into_iter().enumerate() {
        let out = w
            .recipient
            .process_payment(&w.payment(&s, n), "sess", &balances);
        assert_eq!(out.error, None);
        expected += &ev * BigRational::from_integer(BigInt::from(n));
        let pixels = 1_000_000u64 * (i as u64 + 1);
        // the session's fixed price (3/2) wins over the fallback
        let debited = balances.debit_pixels(
            w.sender.address(),
            "sess",
            pixels,
            &Price::new(99, 1).expect("valid"),
        );
        assert_eq!(
            debited,
            BigRational::new(BigInt::from(pixels * 3), BigInt::from(2))
        );
        expected -= debited;
    }
    assert_eq!(
        balances.balance(w.sender.address(), "sess"),
        Some(expected.clone())
    );
    assert_eq!(
        balances.sufficient(w.sender.address(), "sess", &w.recipient.ev()),
        expected >= w.recipient.ev()
    );
}

#[test]
fn broadcaster_ticket_count_and_settlement() {
    let w = world();
    let p = w.echoed(&w.params());
    let s = w.sender.start_session(p.clone());
    let ev = w.sender.ev(&s).expect("session");
    assert_eq!(ev, p.ev());
    let profiles = [livefarm_pm::OutputProfile {
        width: 1280,
        height: 720,
        fps: 30,
        fps_den: 1,
    }];
    let fee = livefarm_pm::estimate_fee(&profiles, 2.0, &w.price);
    let b_balances = Balances::default();
    let update = b_balances.stage_update(ORCH, "auth", &fee, &ev);
    let want = tickets_needed(&fee, &BigRational::zero(), &ev);
    assert_eq!(update.num_tickets, want);
    assert!(want > 0);
    // n × EV covers the estimate, n − 1 does not
    let n = BigRational::from_integer(BigInt::from(want));
    assert!(&ev * &n >= fee);
    assert!(&ev * (n - BigRational::from_integer(1.into())) < fee);
    let batch = w
        .sender
        .create_ticket_batch(&s, update.num_tickets)
        .expect("batch");
    let pay = gen_payment(
        w.sender.address(),
        w.price.to_price_info().expect("fits"),
        Some(&batch),
    );
    assert_eq!(pay.ticket_sender_params.len(), want);
    assert!(pay
        .ticket_params
        .as_ref()
        .expect("params")
        .expiration_params
        .is_none());
    assert_eq!(
        pay.ticket_params.as_ref().expect("params").face_value,
        min_be_bytes(&p.face_value)
    );
    let o_balances = Balances::default();
    let out = w.recipient.process_payment(&pay, "auth", &o_balances);
    assert_eq!(out.error, None);
    // B settles: existing + new − pixels × price, and both sides agree
    let pixels = 1280u64 * 720 * 60;
    let mut done = update.clone();
    done.status = livefarm_pm::UpdateStatus::ReceivedChange;
    done.debit = w.price.fee_for_pixels(pixels);
    b_balances.complete_update(ORCH, "auth", &done);
    o_balances.debit_pixels(w.sender.address(), "auth", pixels, &w.price);
    assert_eq!(
        b_balances.balance(ORCH, "auth"),
        o_balances.balance(w.sender.address(), "auth")
    );
    // Next segment: the existing credit is reserved first.
    let next = b_balances.stage_update(ORCH, "auth", &fee, &ev);
    assert_eq!(next.existing_credit, update.new_credit - done.debit);
}

/// Params with a chosen win probability (and a face value B accepts at that probability:
/// gas price 0 gives EV × 100), with the rand hash recomputed to match.
fn params_with_win_prob(w: &World, win_prob: U256) -> (TicketParams, U256) {
    w.chain.set_gas_price(U256::ZERO);
    let mut p = w.params();
    p.win_prob = win_prob;
    let rand = w.recipient.recipient_rand(
        &p.seed,
        &w.sender.address(),
        &p.face_value,
        &p.win_prob,
        p.expiration_block,
        &p.price_per_pixel,
        &p.expiration_params,
    );
    p.recipient_rand_hash = livefarm_pm::ticket::recipient_rand_hash(&rand);
    (p, rand)
}

#[test]
fn empirical_win_rate_matches_win_prob() {
    // winProb = (2^256−1)/10 → p ≈ 0.1; 20,000 tickets → mean 2,000, sd ≈ 42.4.
    let w = world();
    let win_prob = MAX_WIN_PROB / U256::from(10u64);
    let mut wins = 0usize;
    let mut total = 0usize;
    while total < 20_000 {
        let (p, _) = params_with_win_prob(&w, win_prob);
        let s = w.sender.start_session(p);
        // 5 payments of 100 tickets: within -maxTotalEV and the per-rand nonce cap.
        for _ in 0..5 {
            let pay = w.payment(&s, 100);
            let out = w
                .recipient
                .process_payment(&pay, "win", &Balances::default());
            assert_eq!(out.error, None);
            wins += out.winning_tickets.len();
            total += pay.ticket_sender_params.len();
            for t in &out.winning_tickets {
                assert!(livefarm_pm::ticket::is_winning_ticket(
                    &t.sig,
                    &t.recipient_rand,
                    &t.win_prob
                ));
            }
        }
    }
    let mean = total as f64 * 0.1;
    let sd = (total as f64 * 0.1 * 0.9).sqrt();
    // 5 sd: a false failure about once in 1.7 million runs.
    assert!(
        (wins as f64 - mean).abs() < 5.0 * sd,
        "wins={wins} of {total}"
    );
}

#[test]
fn winning_ticket_record_round_trips_and_redeems() {
    let w = world();
    // All but a 2^-255 chance of winning; B refuses winProb = max (EV = faceValue).
    let (p, rand) = params_with_win_prob(&w, MAX_WIN_PROB - U256::from(1u64));
    let s = w.sender.start_session(p.clone());
    let out = w
        .recipient
        .process_payment(&w.payment(&s, 2), "sess-9", &Balances::default());
    assert_eq!(out.winning_tickets.len(), 2);
    let wt = &out.winning_tickets[0];
    assert_eq!(wt.recipient_rand, rand);
    assert_eq!(wt.params_expiration_block, p.expiration_block);
    assert_eq!(wt.creation_round, ROUND);
    assert_eq!(wt.aux_data().len(), 64);
    let json = serde_json::to_string(wt).expect("serialise");
    let back: livefarm_pm::WinningTicket = serde_json::from_str(&json).expect("deserialise");
    assert_eq!(&back, wt);
    // What the contract would check: hash, signature, rand hash, win.
    let t = back.ticket();
    assert_eq!(t.hash(), wt.ticket_hash);
    assert!(t.verify_sig(&back.sig));
    assert_eq!(
        livefarm_pm::ticket::recipient_rand_hash(&back.recipient_rand),
        t.recipient_rand_hash
    );
    assert!(t.is_winning(&back.sig, &back.recipient_rand));
}

#[test]
fn winners_are_kept_even_with_a_non_fatal_error() {
    let w = world();
    let (p, _) = params_with_win_prob(&w, MAX_WIN_PROB - U256::from(1u64));
    let s = w.sender.start_session(p.clone());
    let pay = w.payment(&s, 1);
    w.chain.set_l1_block(p.expiration_block + 1);
    let out = w.recipient.process_payment(&pay, "a", &Balances::default());
    assert_eq!(out.error, Some(PmError::TicketParamsExpired));
    assert_eq!(out.winning_tickets.len(), 1);
    assert_eq!(out.credited_tickets, 0);
}

#[test]
fn unknown_extra_ticket_param_bytes_are_refused() {
    let w = world();
    let s = w.sender.start_session(w.echoed(&w.params()));
    let mut pay = w.payment(&s, 1);
    if let Some(tp) = pay.ticket_params.as_mut() {
        tp.face_value = vec![1u8; 33];
    }
    let err = w
        .recipient
        .process_payment(&pay, "a", &Balances::default())
        .error
        .expect("refused");
    assert!(matches!(
        err,
        PmError::InvalidField {
            field: "face_value",
            ..
        }
    ));
    // and a signature of the wrong length is just an invalid signature
    let mut pay = w.payment(&s, 1);
    pay.ticket_sender_params = vec![TicketSenderParamsMsg {
        sender_nonce: 99,
        sig: vec![1, 2, 3],
    }];
    let out = w.recipient.process_payment(&pay, "a", &Balances::default());
    assert_eq!(out.error, Some(PmError::InvalidTicketSignature));
}

#[test]
fn advertised_price_includes_redemption_overhead() {
    let w = world();
    let me = w.sender.address();
    // faceValue = 100 × txCost in this world → multiplier 100 → price × 1.01, floored to 0.001
    assert_eq!(
        w.recipient.tx_cost_multiplier(&me),
        Ok(BigRational::from_integer(100.into()))
    );
    let base = Price::new(1, 1).expect("valid");
    let info = w
        .recipient
        .auto_adjusted_price(&base, &me)
        .expect("priced")
        .to_price_info()
        .expect("fits");
    assert_eq!((info.price_per_unit, info.pixels_per_unit), (101, 100));
    assert_eq!(
        w.recipient.auto_adjusted_price(&Price::zero(), &me),
        Ok(Price::zero())
    );
    // a sender with no reserve cannot be quoted a non-zero price
    let broke = Address([0x0c; 20]);
    assert_eq!(
        w.recipient.auto_adjusted_price(&base, &broke),
        Err(PmError::InsufficientSenderReserve)
    );
    assert_eq!(
        w.recipient.ticket_params(&broke, &base).err(),
        Some(PmError::InsufficientSenderReserve)
    );
    // in-flight redemptions lower the max float
    let float = w.recipient.max_float(&me).expect("float");
    w.recipient.add_pending(me, U256::from(1u64));
    // deposit / pending ≥ 3: the whole allocation stays available
    assert_eq!(w.recipient.max_float(&me), Ok(float));
    w.recipient.sub_pending(me, U256::from(1u64));
    assert_eq!(w.recipient.pending_amount(&me), U256::ZERO);
}
