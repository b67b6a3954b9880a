//! Time from a ticket's params expiry to its confirmed redemption, on a private anvil and
//! Redis (for `livefarm bench`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use livefarm_bus::server::RedisServer;
use livefarm_bus::BusOptions;
use livefarm_chain::U256;
use livefarm_runtime::Shutdown;
use serde::{Deserialize, Serialize};

use crate::error::RedeemerError;
use crate::redeemer::Redeemer;
use crate::store::{hash_hex, now_ms, TicketState};
use crate::testnet::{publish, TestNet};

/// What to measure.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BenchOptions {
    /// Tickets redeemed one after another.
    pub tickets: u32,
    /// The redeemer's poll interval, milliseconds.
    pub poll_interval_ms: u64,
    /// Confirmations waited for.
    pub confirmations: u64,
}

impl Default for BenchOptions {
    fn default() -> Self {
        BenchOptions {
            tickets: 5,
            poll_interval_ms: 100,
            confirmations: 1,
        }
    }
}

/// Expiry-to-redemption latency.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RedemptionLatency {
    /// Tickets measured.
    pub tickets: usize,
    /// Median, milliseconds.
    pub median_ms: f64,
    /// Fastest, milliseconds.
    pub min_ms: f64,
    /// Slowest, milliseconds.
    pub max_ms: f64,
    /// Every sample, in order, milliseconds.
    pub samples_ms: Vec<f64>,
    /// The redeemer's poll interval, milliseconds.
    pub poll_interval_ms: u64,
    /// Confirmations waited for.
    pub confirmations: u64,
}

/// The median of `samples` (mean of the middle two for an even count); `None` when empty.
pub fn median(samples: &[f64]) -> Option<f64> {
    if samples.is_empty() {
        return None;
    }
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    let mid = sorted.len() / 2;
    Some(if sorted.len().is_multiple_of(2) {
        (sorted[mid - 1] + sorted[mid]) / 2.0
    } else {
        sorted[mid]
    })
}

/// Summarises samples in milliseconds.
pub fn summarize(samples_ms: Vec<f64>, opts: &BenchOptions) -> Option<RedemptionLatency> {
    let median_ms = median(&samples_ms)?;
    let min_ms = samples_ms.iter().copied().fold(f64::INFINITY, f64::min);
    let max_ms = samples_ms.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    Some(RedemptionLatency {
        tickets: samples_ms.len(),
        median_ms,
        min_ms,
        max_ms,
        samples_ms,
        poll_interval_ms: opts.poll_interval_ms,
        confirmations: opts.confirmations,
    })
}

const TICKET_TIMEOUT: Duration = Duration::from_secs(60);

/// Starts anvil and Redis, runs a redeemer and, per ticket, mines the block at which its
/// params expire and measures until its redemption is recorded as confirmed.
pub async fn run(opts: BenchOptions) -> Result<RedemptionLatency, RedeemerError> {
    let net = TestNet::start().await?;
    let redis = RedisServer::start()?;
    let bus = livefarm_bus::connect_with(&redis.url(), BusOptions::default()).await?;
    net.bcast
        .fund_deposit_and_reserve(U256::from(10u64).pow(U256::from(19u64)), U256::ZERO)
        .await?;
    let mut config = net.redeemer_config(&redis.url(), "bench");
    config.poll_interval_ms = opts.poll_interval_ms;
    config.confirmations = opts.confirmations;
    let stream = config.stream.clone();
    let redeemer = Arc::new(Redeemer::connect(config, bus.clone()).await?);
    let shutdown = Shutdown::new();
    let task = tokio::spawn(redeemer.clone().run(shutdown.clone()));
    let face = U256::from(10u64).pow(U256::from(16u64));
    let mut samples = Vec::new();
    for nonce in 0..opts.tickets {
        let head = net.bcast.block_number().await?;
        let ticket = net.ticket(&net.bcast_signer, face, nonce, head + 2).await?;
        let hash = hash_hex(&ticket.ticket_hash);
        publish(&bus, &stream, &ticket).await?;
        let deadline = Instant::now() + TICKET_TIMEOUT;
        while redeemer.store().get(&hash).await?.is_none() {
            if Instant::now() > deadline {
                return Err(RedeemerError::Setup("ticket never recorded".to_owned()));
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        net.anvil.mine(2).await?;
        let expired_at = now_ms();
        // Extra confirmations need blocks on top; anvil only mines on demand.
        let mut mined_extra = 0;
        loop {
            let record = redeemer.store().get(&hash).await?;
            match record.map(|r| (r.state, r.finished_at_ms)) {
                Some((TicketState::Redeemed { .. }, Some(done))) => {
                    samples.push(done.saturating_sub(expired_at) as f64);
                    break;
                }
                Some((state, _)) if state.is_final() => {
                    return Err(RedeemerError::Setup(format!(
                        "ticket ended {}, not redeemed",
                        state.name()
                    )));
                }
                _ => {}
            }
            if Instant::now() > deadline {
                return Err(RedeemerError::Setup("redemption timed out".to_owned()));
            }
            if mined_extra + 1 < opts.confirmations {
                net.anvil.mine(1).await?;
                mined_extra += 1;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    shutdown.trigger();
    let _ = task.await;
    summarize(samples, &opts).ok_or_else(|| RedeemerError::Setup("no tickets measured".to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(2.5));
    }

    #[test]
    fn summary_serialises() {
        let s = summarize(vec![10.0, 30.0, 20.0], &BenchOptions::default()).expect("samples");
        assert_eq!((s.min_ms, s.median_ms, s.max_ms), (10.0, 20.0, 30.0));
        let json = serde_json::to_string(&s).expect("json");
        let back: RedemptionLatency = serde_json::from_str(&json).expect("back");
        assert_eq!(back, s);
    }
}
