//! `livefarm bench tickets`: full ticket validation throughput next to raw signature
//! recovery, measured on the same machine in the same run.

use std::sync::Arc;
use std::time::{Duration, Instant};

use secp256k1::ecdsa::{RecoverableSignature, RecoveryId};
use secp256k1::Message;
use serde::Serialize;

use crate::address::Address;
use crate::chain::{InMemoryChain, ReserveInfo, SenderInfo};
use crate::error::PmError;
use crate::num::U256;
use crate::params::RecipientConfig;
use crate::price::Price;
use crate::recipient::Recipient;
use crate::sig::{personal_hash, Signer};
use crate::ticket::Ticket;

/// Alternating rounds of raw recovery and full validation.
const ROUNDS: usize = 5;

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted.get(sorted.len() / 2).copied().unwrap_or(0.0)
}

/// Nonces per params set in the pool, below `MAX_SENDER_NONCES`.
const NONCES_PER_PARAMS: usize = 500;

/// How long and on how much to measure.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BenchOptions {
    /// Time spent on each measurement (raw and full validation alternate over 5 rounds,
    /// then k256 and two threads once each).
    pub measure_for: Duration,
    /// Distinct signed tickets prepared before timing.
    pub pool_size: usize,
}

impl Default for BenchOptions {
    fn default() -> Self {
        BenchOptions {
            measure_for: Duration::from_millis(600),
            pool_size: 2000,
        }
    }
}

/// Results, in operations per second.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BenchReport {
    /// Seconds each measurement ran for.
    pub measure_secs: f64,
    /// Signed tickets in the pool.
    pub tickets_in_pool: usize,
    /// CPUs the OS offers this process.
    pub available_parallelism: usize,
    /// libsecp256k1 `ecdsa_recover` of a 65-byte signature (parse + recover + serialize).
    pub raw_secp256k1_recover_per_sec: f64,
    /// Pure-Rust k256 recovery of the same signatures; absent without `bench-k256`.
    pub k256_recover_per_sec: Option<f64>,
    /// `Recipient::receive_ticket` (HMAC, sender check, hash, recovery, win check, nonce
    /// bookkeeping, expiry) on one thread.
    pub full_validation_per_sec_1_thread: f64,
    /// The same on two threads sharing one recipient.
    pub full_validation_per_sec_2_threads: f64,
    /// Full validation rate on one thread / raw libsecp256k1 recovery rate.
    pub ratio_vs_raw_recover: f64,
    /// k256 recovery rate / libsecp256k1 recovery rate.
    pub k256_ratio_vs_raw_recover: Option<f64>,
    /// Two-thread rate / one-thread rate.
    pub two_thread_speedup: f64,
    /// Tickets that failed validation during the run; 0 unless something is wrong.
    pub validation_errors: u64,
}

struct Fixture {
    recipient: Arc<Recipient>,
    // Params sets, each a list of (ticket, sig, seed).
    sets: Vec<Vec<(Ticket, [u8; 65], U256)>>,
}

fn fixture(pool_size: usize) -> Result<Fixture, PmError> {
    let chain = Arc::new(InMemoryChain::new());
    chain.set_round(100, [7u8; 32]);
    chain.set_l1_block(1_000_000);
    chain.set_pool_size(100);
    let sender = Signer::random()?;
    let funds = U256::from(10u64).pow(U256::from(20u64));
    chain.set_sender(
        sender.address(),
        SenderInfo {
            deposit: funds,
            reserve: ReserveInfo {
                funds_remaining: funds,
                claimed_in_current_round: U256::ZERO,
            },
            withdraw_round: 0,
        },
    );
    let orch = Address([0x42; 20]);
    chain.set_active(orch, 1, i64::MAX);
    let recipient = Arc::new(Recipient::new(orch, RecipientConfig::default(), chain)?);
    let price = Price::new(1, 1)?;
    let pool_size = pool_size.max(2);
    let mut sets = Vec::new();
    let mut made = 0;
    while made < pool_size {
        let params = recipient.ticket_params(&sender.address(), &price)?;
        let n = NONCES_PER_PARAMS.min(pool_size - made);
        let set: Vec<(Ticket, [u8; 65], U256)> = (1..=n as u32)
            .map(|nonce| {
                let t = params.ticket(sender.address(), nonce, params.expiration_params);
                let sig = sender.sign_personal(&t.hash());
                (t, sig, params.seed)
            })
            .collect();
        sets.push(set);
        made += n;
    }
    // With one set, split it so two threads each get their own params.
    if sets.len() == 1 {
        let mut only = sets.pop().unwrap_or_default();
        let half = only.split_off(only.len() / 2);
        sets.push(only);
        sets.push(half);
    }
    Ok(Fixture { recipient, sets })
}

/// Runs `op` over `items` in a loop until `budget` has passed; returns (ops, seconds).
fn time_loop<T>(
    items: &[T],
    budget: Duration,
    mut op: impl FnMut(&T),
    mut on_wrap: impl FnMut(),
) -> (u64, f64) {
    let start = Instant::now();
    let mut count = 0u64;
    'outer: loop {
        for it in items {
            op(it);
            count += 1;
            // Checking the clock every ticket would show up in the numbers.
            if count.is_multiple_of(32) && start.elapsed() >= budget {
                break 'outer;
            }
        }
        on_wrap();
        if items.is_empty() {
            break;
        }
    }
    (count, start.elapsed().as_secs_f64())
}

fn validation_rate(fx: &Fixture, threads: usize, budget: Duration) -> (f64, u64) {
    let results: Vec<(u64, f64, u64)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let recipient = &fx.recipient;
                let mine: Vec<&(Ticket, [u8; 65], U256)> = fx
                    .sets
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| i % threads == t)
                    .flat_map(|(_, set)| set.iter())
                    .collect();
                s.spawn(move || {
                    let mut errors = 0u64;
                    let (n, secs) = time_loop(
                        &mine,
                        budget,
                        |(ticket, sig, seed)| {
                            if recipient.receive_ticket(ticket, sig, seed).error.is_some() {
                                errors += 1;
                            }
                        },
                        // Each ticket is seen once per pass; forget nonces before replaying.
                        || {
                            recipient.cleanup_nonces(u64::MAX);
                        },
                    );
                    (n, secs, errors)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or((0, 1.0, 0)))
            .collect()
    });
    fx.recipient.cleanup_nonces(u64::MAX);
    let rate = results
        .iter()
        .map(|(n, secs, _)| *n as f64 / secs.max(1e-9))
        .sum();
    let errors = results.iter().map(|r| r.2).sum();
    (rate, errors)
}

fn raw_recover_rate(pairs: &[([u8; 32], [u8; 65])], budget: Duration) -> f64 {
    let (n, secs) = time_loop(
        pairs,
        budget,
        |(digest, sig)| {
            let recid = RecoveryId::from_u8_masked(sig[64].wrapping_sub(27));
            let ok = RecoverableSignature::from_compact(&sig[..64], recid)
                .and_then(|s| s.recover_ecdsa(Message::from_digest(*digest)))
                .map(|pk| pk.serialize_uncompressed());
            std::hint::black_box(ok.is_ok());
        },
        || {},
    );
    n as f64 / secs.max(1e-9)
}

#[cfg(feature = "bench-k256")]
fn k256_recover_rate(pairs: &[([u8; 32], [u8; 65])], budget: Duration) -> Option<f64> {
    use k256::ecdsa::{RecoveryId as KRecoveryId, Signature, VerifyingKey};
    let (n, secs) = time_loop(
        pairs,
        budget,
        |(digest, sig)| {
            let ok = Signature::from_slice(&sig[..64]).ok().and_then(|s| {
                let recid = KRecoveryId::from_byte(sig[64].wrapping_sub(27))?;
                VerifyingKey::recover_from_prehash(digest, &s, recid)
                    .ok()
                    .map(|vk| vk.to_sec1_point(false))
            });
            std::hint::black_box(ok.is_some());
        },
        || {},
    );
    Some(n as f64 / secs.max(1e-9))
}

#[cfg(not(feature = "bench-k256"))]
fn k256_recover_rate(_pairs: &[([u8; 32], [u8; 65])], _budget: Duration) -> Option<f64> {
    None
}

/// Runs every measurement and reports rates. Takes about `5 × measure_for` plus the time to
/// sign the pool.
pub fn run(opts: BenchOptions) -> Result<BenchReport, PmError> {
    let fx = fixture(opts.pool_size)?;
    let pairs: Vec<([u8; 32], [u8; 65])> = fx
        .sets
        .iter()
        .flatten()
        .map(|(t, sig, _)| (personal_hash(&t.hash()), *sig))
        .collect();
    let budget = opts.measure_for;
    // Raw recovery and full validation alternate over several rounds and the medians count:
    // on a shared machine the clock and the neighbours drift during a run, and alternating
    // exposes both sides to the same drift.
    let mut raws = Vec::with_capacity(ROUNDS);
    let mut ones = Vec::with_capacity(ROUNDS);
    let mut e1 = 0;
    for _ in 0..ROUNDS {
        raws.push(raw_recover_rate(&pairs, budget));
        let (one, errors) = validation_rate(&fx, 1, budget);
        ones.push(one);
        e1 += errors;
    }
    let ratios: Vec<f64> = ones
        .iter()
        .zip(&raws)
        .map(|(one, raw)| one / raw.max(1e-9))
        .collect();
    let (raw, one, ratio) = (median(&raws), median(&ones), median(&ratios));
    let k256 = k256_recover_rate(&pairs, budget);
    let (two, e2) = validation_rate(&fx, 2, budget);
    Ok(BenchReport {
        measure_secs: budget.as_secs_f64(),
        tickets_in_pool: pairs.len(),
        available_parallelism: std::thread::available_parallelism().map_or(1, |n| n.get()),
        raw_secp256k1_recover_per_sec: raw,
        k256_recover_per_sec: k256,
        full_validation_per_sec_1_thread: one,
        full_validation_per_sec_2_threads: two,
        ratio_vs_raw_recover: ratio,
        k256_ratio_vs_raw_recover: k256.map(|k| k / raw.max(1e-9)),
        two_thread_speedup: two / one.max(1e-9),
        validation_errors: e1 + e2,
    })
}
