//! `livefarm bench tickets`: full ticket validation throughput next to raw signature
//! recovery, measured on the same machine in the same run.
//!
//! Each round times raw recovery on the calling thread, then full validation on one thread,
//! for [`BenchOptions::measure_for`] each; rounds alternate so both sides see the same
//! neighbours. Every side records its operations, wall seconds and the CPU seconds of the
//! thread that did the work (`CLOCK_THREAD_CPUTIME_ID`): a neighbour that takes the core away
//! stretches wall time but not the CPU a validation needs. [`instruction_workload`] runs the
//! same two operations for callgrind (`livefarm bench tickets --instructions`), whose counts
//! do not depend on the machine or its load at all.

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

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted.get(sorted.len() / 2).copied().unwrap_or(0.0)
}

/// CPU seconds of the calling thread; `None` where the clock is unavailable.
pub fn thread_cpu_seconds() -> Option<f64> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec into the pointer it is given.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    (rc == 0).then(|| ts.tv_sec as f64 + ts.tv_nsec as f64 / 1e9)
}

/// Nonces per params set in the pool, below `MAX_SENDER_NONCES`.
const NONCES_PER_PARAMS: usize = 500;

/// How long and on how much to measure.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BenchOptions {
    /// Time spent on each measurement (raw and full validation alternate over `rounds`
    /// rounds, then k256 and two threads once each).
    pub measure_for: Duration,
    /// Alternating rounds of raw recovery and full validation.
    pub rounds: usize,
    /// Distinct signed tickets prepared before timing.
    pub pool_size: usize,
}

impl Default for BenchOptions {
    fn default() -> Self {
        BenchOptions {
            measure_for: Duration::from_secs(2),
            rounds: 5,
            pool_size: 2000,
        }
    }
}

/// One timed side of a round.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Side {
    pub ops: u64,
    pub wall_s: f64,
    /// CPU seconds of the thread that did the work (0 without a thread clock).
    pub cpu_s: f64,
}

impl Side {
    pub fn per_wall_sec(&self) -> f64 {
        self.ops as f64 / self.wall_s.max(1e-9)
    }

    /// Operations per CPU second, `None` without a CPU reading.
    pub fn per_cpu_sec(&self) -> Option<f64> {
        (self.cpu_s > 0.0).then(|| self.ops as f64 / self.cpu_s)
    }
}

/// One round: raw recovery, then full validation on one thread.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Round {
    pub raw: Side,
    pub validation: Side,
}

impl Round {
    /// Validations per wall second / recoveries per wall second.
    pub fn wall_ratio(&self) -> f64 {
        self.validation.per_wall_sec() / self.raw.per_wall_sec().max(1e-9)
    }

    /// CPU seconds per recovery / CPU seconds per validation.
    pub fn cpu_ratio(&self) -> Option<f64> {
        Some(self.validation.per_cpu_sec()? / self.raw.per_cpu_sec()?)
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
    /// Full validation rate on one thread / raw libsecp256k1 recovery rate (wall clock),
    /// median round.
    pub ratio_vs_raw_recover: f64,
    /// The same per CPU second of the working thread, median round.
    pub ratio_cpu_vs_raw_recover: Option<f64>,
    /// Every round, in order.
    pub rounds: Vec<Round>,
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

fn fixture(pool_size: usize, signer: Option<Signer>) -> Result<Fixture, PmError> {
    let chain = Arc::new(InMemoryChain::new());
    chain.set_round(100, [7u8; 32]);
    chain.set_l1_block(1_000_000);
    chain.set_pool_size(100);
    let sender = match signer {
        Some(signer) => signer,
        None => Signer::random()?,
    };
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

/// Runs `op` over `items` in a loop until `budget` has passed, on the calling thread.
fn time_loop<T>(
    items: &[T],
    budget: Duration,
    mut op: impl FnMut(&T),
    mut on_wrap: impl FnMut(),
) -> Side {
    let cpu0 = thread_cpu_seconds();
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
    let wall_s = start.elapsed().as_secs_f64();
    let cpu_s = match (cpu0, thread_cpu_seconds()) {
        (Some(a), Some(b)) => b - a,
        _ => 0.0,
    };
    Side {
        ops: count,
        wall_s,
        cpu_s,
    }
}

/// Full validation on `threads` threads; each thread's side, and the errors.
fn validation_sides(fx: &Fixture, threads: usize, budget: Duration) -> (Vec<Side>, u64) {
    let results: Vec<(Side, u64)> = std::thread::scope(|s| {
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
                    let side = time_loop(
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
                    (side, errors)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join().unwrap_or((
                    Side {
                        ops: 0,
                        wall_s: 1.0,
                        cpu_s: 0.0,
                    },
                    0,
                ))
            })
            .collect()
    });
    fx.recipient.cleanup_nonces(u64::MAX);
    let errors = results.iter().map(|r| r.1).sum();
    (results.into_iter().map(|r| r.0).collect(), errors)
}

/// One raw recovery: parse the 65-byte signature, recover, serialise the key.
fn raw_recover(digest: &[u8; 32], sig: &[u8; 65]) -> bool {
    let recid = RecoveryId::from_u8_masked(sig[64].wrapping_sub(27));
    RecoverableSignature::from_compact(&sig[..64], recid)
        .and_then(|s| s.recover_ecdsa(Message::from_digest(*digest)))
        .map(|pk| pk.serialize_uncompressed())
        .is_ok()
}

fn raw_recover_side(pairs: &[([u8; 32], [u8; 65])], budget: Duration) -> Side {
    time_loop(
        pairs,
        budget,
        |(digest, sig)| {
            std::hint::black_box(raw_recover(digest, sig));
        },
        || {},
    )
}

#[cfg(feature = "bench-k256")]
fn k256_recover_rate(pairs: &[([u8; 32], [u8; 65])], budget: Duration) -> Option<f64> {
    use k256::ecdsa::{RecoveryId as KRecoveryId, Signature, VerifyingKey};
    let side = time_loop(
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
    Some(side.per_wall_sec())
}

#[cfg(not(feature = "bench-k256"))]
fn k256_recover_rate(_pairs: &[([u8; 32], [u8; 65])], _budget: Duration) -> Option<f64> {
    None
}

/// Runs every measurement and reports rates. Takes about `(2 × rounds + 2) × measure_for`
/// plus the time to sign the pool.
pub fn run(opts: BenchOptions) -> Result<BenchReport, PmError> {
    let fx = fixture(opts.pool_size, None)?;
    let pairs = digests(&fx);
    let budget = opts.measure_for;
    // Raw recovery and full validation alternate over several rounds and the medians count:
    // on a shared machine the clock and the neighbours drift during a run, and alternating
    // exposes both sides to the same drift.
    let mut rounds = Vec::with_capacity(opts.rounds.max(1));
    let mut e1 = 0;
    for _ in 0..opts.rounds.max(1) {
        let raw = raw_recover_side(&pairs, budget);
        let (mut sides, errors) = validation_sides(&fx, 1, budget);
        e1 += errors;
        let validation = sides.pop().unwrap_or(Side {
            ops: 0,
            wall_s: 1.0,
            cpu_s: 0.0,
        });
        rounds.push(Round { raw, validation });
    }
    let raws: Vec<f64> = rounds.iter().map(|r| r.raw.per_wall_sec()).collect();
    let ones: Vec<f64> = rounds.iter().map(|r| r.validation.per_wall_sec()).collect();
    let ratios: Vec<f64> = rounds.iter().map(Round::wall_ratio).collect();
    let cpu_ratios: Vec<f64> = rounds.iter().filter_map(Round::cpu_ratio).collect();
    let (raw, one, ratio) = (median(&raws), median(&ones), median(&ratios));
    let k256 = k256_recover_rate(&pairs, budget);
    let (two_sides, e2) = validation_sides(&fx, 2, budget);
    let two: f64 = two_sides.iter().map(Side::per_wall_sec).sum();
    Ok(BenchReport {
        measure_secs: budget.as_secs_f64(),
        tickets_in_pool: pairs.len(),
        available_parallelism: std::thread::available_parallelism().map_or(1, |n| n.get()),
        raw_secp256k1_recover_per_sec: raw,
        k256_recover_per_sec: k256,
        full_validation_per_sec_1_thread: one,
        full_validation_per_sec_2_threads: two,
        ratio_vs_raw_recover: ratio,
        ratio_cpu_vs_raw_recover: (cpu_ratios.len() == rounds.len()).then(|| median(&cpu_ratios)),
        rounds,
        k256_ratio_vs_raw_recover: k256.map(|k| k / raw.max(1e-9)),
        two_thread_speedup: two / one.max(1e-9),
        validation_errors: e1 + e2,
    })
}

fn digests(fx: &Fixture) -> Vec<([u8; 32], [u8; 65])> {
    fx.sets
        .iter()
        .flatten()
        .map(|(t, sig, _)| (personal_hash(&t.hash()), *sig))
        .collect()
}

/// Which operation [`instruction_workload`] repeats.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Workload {
    /// `Recipient::receive_ticket`, every check.
    Validation,
    /// libsecp256k1 recovery of the same signatures.
    RawRecover,
}

/// The function callgrind counts for [`Workload::Validation`] (`--toggle-collect`): one
/// full validation, nothing else.
#[inline(never)]
pub fn callgrind_marker_validation(
    recipient: &Recipient,
    ticket: &Ticket,
    sig: &[u8; 65],
    seed: &U256,
) -> bool {
    recipient.receive_ticket(ticket, sig, seed).error.is_none()
}

/// The function callgrind counts for [`Workload::RawRecover`]: one raw recovery.
#[inline(never)]
pub fn callgrind_marker_raw_recover(digest: &[u8; 32], sig: &[u8; 65]) -> bool {
    raw_recover(digest, sig)
}

/// Tickets run through each side before the counted ones (first-use allocations, the
/// global secp256k1 context).
const WARM_UP: usize = 16;

/// Prepares a fixed-key fixture, warms up, then runs `count` distinct tickets through the
/// marker function of `workload`; returns how many succeeded. Meant to run under
/// `valgrind --tool=callgrind --toggle-collect=*callgrind_marker_<workload>*`, so that only
/// the counted operations are counted.
pub fn instruction_workload(workload: Workload, count: usize) -> Result<usize, PmError> {
    let signer = Signer::from_bytes([0x5a; 32])?;
    let fx = fixture(count + WARM_UP, Some(signer))?;
    let tickets: Vec<&(Ticket, [u8; 65], U256)> = fx.sets.iter().flatten().collect();
    let (warm, counted) = tickets.split_at(WARM_UP.min(tickets.len()));
    let mut ok = 0;
    match workload {
        Workload::Validation => {
            for (ticket, sig, seed) in warm {
                std::hint::black_box(fx.recipient.receive_ticket(ticket, sig, seed));
            }
            for (ticket, sig, seed) in counted.iter().take(count) {
                ok += usize::from(callgrind_marker_validation(
                    &fx.recipient,
                    ticket,
                    sig,
                    seed,
                ));
            }
        }
        Workload::RawRecover => {
            let hash = |t: &Ticket| personal_hash(&t.hash());
            for (ticket, sig, _) in warm {
                std::hint::black_box(raw_recover(&hash(ticket), sig));
            }
            let pairs: Vec<([u8; 32], [u8; 65])> = counted
                .iter()
                .take(count)
                .map(|(t, sig, _)| (hash(t), *sig))
                .collect();
            for (digest, sig) in &pairs {
                ok += usize::from(callgrind_marker_raw_recover(digest, sig));
            }
        }
    }
    Ok(ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounds_record_ops_wall_and_thread_cpu() {
        let report = run(BenchOptions {
            measure_for: Duration::from_millis(100),
            rounds: 3,
            pool_size: 200,
        })
        .expect("bench runs");
        assert_eq!(report.rounds.len(), 3);
        assert_eq!(report.validation_errors, 0);
        for round in &report.rounds {
            for side in [&round.raw, &round.validation] {
                assert!(side.ops > 0, "{round:?}");
                assert!(side.wall_s >= 0.1, "{round:?}");
                // The thread clock moved, and never faster than the wall clock.
                assert!(
                    side.cpu_s > 0.0 && side.cpu_s <= side.wall_s * 1.01,
                    "{round:?}"
                );
            }
            assert!(round.cpu_ratio().is_some());
        }
        assert!(report.ratio_cpu_vs_raw_recover.is_some());
    }

    #[test]
    fn instruction_workloads_do_what_they_count() {
        assert_eq!(
            instruction_workload(Workload::Validation, 5).expect("runs"),
            5
        );
        assert_eq!(
            instruction_workload(Workload::RawRecover, 5).expect("runs"),
            5
        );
    }
}
