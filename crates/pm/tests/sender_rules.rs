//! Broadcaster-side acceptance rules, fee estimate and batch building (§10, §16.6).

use std::sync::Arc;

use livefarm_pm::num::{float_string, rational_from_f64};
use livefarm_pm::params::TicketParams;
use livefarm_pm::ticket::TicketExpirationParams;
use livefarm_pm::{
    estimate_fee, Address, ChainState, InMemoryChain, OutputProfile, PmError, Price, ReserveInfo,
    Sender, SenderConfig, SenderInfo, Signer, MAX_WIN_PROB, U256,
};
use num_bigint::BigInt;
use num_rational::BigRational;

fn rat(n: i64, d: i64) -> BigRational {
    BigRational::new(BigInt::from(n), BigInt::from(d))
}

fn setup(deposit: u64) -> (Arc<InMemoryChain>, Sender) {
    let chain = Arc::new(InMemoryChain::new());
    chain.set_round(10, [1u8; 32]);
    chain.set_l1_block(100);
    let signer = Signer::random().expect("rng");
    chain.set_sender(
        signer.address(),
        SenderInfo {
            deposit: U256::from(deposit),
            reserve: ReserveInfo {
                funds_remaining: U256::from(1u64),
                ..ReserveInfo::default()
            },
            withdraw_round: 0,
        },
    );
    let sender = Sender::new(signer, SenderConfig::default(), chain.clone());
    (chain, sender)
}

/// Params whose EV is exactly `face_value / k`.
fn params(face_value: u64, k: u64) -> TicketParams {
    TicketParams {
        recipient: Address([3u8; 20]),
        face_value: U256::from(face_value),
        win_prob: MAX_WIN_PROB / U256::from(k),
        recipient_rand_hash: [9u8; 32],
        seed: U256::from(1u64),
        expiration_block: 140,
        price_per_pixel: Price::new(1, 1).expect("valid"),
        expiration_params: TicketExpirationParams {
            creation_round: 10,
            creation_round_block_hash: [1u8; 32],
        },
    }
}

#[test]
fn acceptance_rules_in_order() {
    let (chain, s) = setup(1_000_000_000_000_000);
    // 255 divides 2^256−1, so EV = faceValue / 255 exactly.
    let ok = params(255_000_000, 255);
    assert_eq!(ok.ev(), rat(1_000_000, 1));
    s.validate_ticket_params(&ok).expect("acceptable");

    // EV ≥ faceValue
    let mut p = ok.clone();
    p.win_prob = MAX_WIN_PROB;
    assert_eq!(
        s.validate_ticket_params(&p).map_err(|e| e.to_string()),
        Err("ticket faceValue too low faceValue=255000000".to_string())
    );

    // EV > maxTicketEV (3e12)
    let p = params(255 * 3_000_000_000_001, 255);
    assert_eq!(
        s.validate_ticket_params(&p).map_err(|e| e.to_string()),
        Err("ticket EV 3000000000001.00000 > max ticket EV 3000000000000.00000".to_string())
    );

    // total EV for a batch > maxTotalEV (2e13): 7 tickets × 3e12
    let p = params(255 * 3_000_000_000_000, 255);
    s.validate_ticket_params_n(&p, 6).expect("6 × 3e12 ≤ 2e13");
    assert_eq!(
        s.validate_ticket_params_n(&p, 7).map_err(|e| e.to_string()),
        Err("total ticket EV 21000000000000.00000 for 7 tickets > max total ticket EV 20000000000000.00000".to_string())
    );

    // faceValue > deposit
    let (_, poor) = setup(255_000_000 - 1);
    assert_eq!(
        poor.validate_ticket_params(&ok).map_err(|e| e.to_string()),
        Err("ticket faceValue 255000000 > max faceValue 254999999".to_string())
    );

    // own unlock soon, no reserve, no deposit
    let me = s.address();
    let mut info = chain.sender_info(&me).expect("info");
    info.withdraw_round = 11;
    chain.set_sender(me, info.clone());
    assert_eq!(
        s.validate_ticket_params(&ok),
        Err(PmError::OwnDepositUnlockSoon)
    );
    info.withdraw_round = 12;
    chain.set_sender(me, info.clone());
    s.validate_ticket_params(&ok).expect("unlock far enough");
    info.reserve.funds_remaining = U256::ZERO;
    chain.set_sender(me, info.clone());
    assert_eq!(s.validate_ticket_params(&ok), Err(PmError::NoSenderReserve));
    info.reserve.funds_remaining = U256::from(1u64);
    info.deposit = U256::ZERO;
    chain.set_sender(me, info);
    assert_eq!(s.validate_ticket_params(&ok), Err(PmError::NoSenderDeposit));

    // zero EV skips the money checks; a zero expiration block skips everything
    let mut free = ok.clone();
    free.win_prob = U256::ZERO;
    s.validate_ticket_params(&free).expect("zero EV");
    let mut legacy = params(1, 1);
    legacy.expiration_block = 0;
    s.validate_ticket_params(&legacy)
        .expect("go-livepeer skips checks without an expiration block");
}

#[test]
fn batches_use_consecutive_nonces_and_fallback_expiration_params() {
    let (chain, s) = setup(1_000_000_000_000_000);
    let mut p = params(255_000_000, 255);
    p.expiration_params = TicketExpirationParams::default();
    let id = s.start_session(p.clone());
    assert_eq!(id, format!("0x{}", "09".repeat(32)));
    let a = s.create_ticket_batch(&id, 2).expect("batch");
    let b = s.create_ticket_batch(&id, 3).expect("batch");
    let nonces: Vec<u32> = a
        .sender_params
        .iter()
        .chain(&b.sender_params)
        .map(|(n, _)| *n)
        .collect();
    assert_eq!(nonces, vec![1, 2, 3, 4, 5]);
    // O sent zero expiration params: B uses its own round and hash.
    assert_eq!(
        a.expiration_params,
        TicketExpirationParams {
            creation_round: chain.last_initialized_round(),
            creation_round_block_hash: chain.last_initialized_block_hash()
        }
    );
    for (t, (_, sig)) in a.tickets().iter().zip(&a.sender_params) {
        assert!(t.verify_sig(sig));
    }
    assert!(matches!(
        s.create_ticket_batch("0xnope", 1),
        Err(PmError::UnknownSession(_))
    ));
    s.cleanup_session(&id);
    assert!(s.ev(&id).is_err());
}

#[test]
fn fee_estimate_uses_exact_float_multiplier() {
    let price = Price::new(3, 1).expect("valid");
    // GL server/segment_rpc_test.go: 256×144×30×2 pixels for P144p30fps16x9 over 2 s
    let p144 = OutputProfile {
        width: 256,
        height: 144,
        fps: 30,
        fps_den: 1,
    };
    let fee = estimate_fee(&[p144], 2.0, &price);
    let want =
        BigRational::from_integer(BigInt::from(2_211_840)) * rational_from_f64(1.02) * rat(3, 1);
    assert_eq!(fee, want);
    // The float 1.02 is slightly above 51/50, as Go's SetFloat64 sees it.
    assert!(rational_from_f64(1.02) > rat(51, 50));
    // non-integer durations round up; fps 0 counts as 60; fps/den rounds up
    let p = OutputProfile {
        width: 10,
        height: 10,
        fps: 0,
        fps_den: 0,
    };
    let q = OutputProfile {
        width: 10,
        height: 10,
        fps: 30000,
        fps_den: 1001,
    };
    let fee = estimate_fee(&[p, q], 1.2, &Price::new(1, 1).expect("valid"));
    let pixels = 100 * 60 * 2 + 100 * 30 * 2;
    assert_eq!(
        fee,
        BigRational::from_integer(BigInt::from(pixels)) * rational_from_f64(1.02)
    );
}

#[test]
fn float_string_matches_go() {
    assert_eq!(float_string(&rat(2, 3), 5), "0.66667");
    assert_eq!(float_string(&rat(1, 8), 2), "0.13"); // half away from zero
    assert_eq!(float_string(&rat(-1, 8), 2), "-0.13");
    assert_eq!(float_string(&rat(999_999, 1_000_000), 5), "1.00000");
    assert_eq!(float_string(&rat(7, 1), 0), "7");
}
