//! The on-chain facts payments depend on, behind a trait so the indexer can supply them, with
//! an in-memory implementation for tests and single-node setups.

use std::collections::HashMap;
use std::sync::RwLock;

use crate::address::Address;
use crate::error::PmError;
use crate::num::U256;

/// A sender's reserve (TicketBroker `getSenderInfo().reserve`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReserveInfo {
    /// Reserve still unclaimed.
    pub funds_remaining: U256,
    /// Reserve claimed by any orchestrator in the current round.
    pub claimed_in_current_round: U256,
}

/// A sender's TicketBroker state.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SenderInfo {
    /// Deposit in wei.
    pub deposit: U256,
    /// Reserve.
    pub reserve: ReserveInfo,
    /// Round at which an unlock completes; 0 when no unlock is in progress.
    pub withdraw_round: i64,
}

/// What the payment code needs to know about the chain (GL TimeManager, SenderManager,
/// GasPriceMonitor and the orchestrator DB, collapsed).
pub trait ChainState: Send + Sync {
    /// `RoundsManager.lastInitializedRound()`.
    fn last_initialized_round(&self) -> i64;
    /// `blockHashForRound(lastInitializedRound)`; Arbitrum sometimes reports zero.
    fn last_initialized_block_hash(&self) -> [u8; 32];
    /// The block hash of the round before, used when the current one is zero.
    fn pre_last_initialized_block_hash(&self) -> [u8; 32];
    /// The latest L1 block number seen (Arbitrum's `l1BlockNumber`).
    fn last_seen_l1_block(&self) -> u64;
    /// TicketBroker sender state; an unknown sender has all-zero state, as on chain.
    fn sender_info(&self, sender: &Address) -> Result<SenderInfo, PmError>;
    /// Whether `orchestrator` is active in `round` (`activationRound ≤ round < deactivationRound`).
    fn is_active(&self, orchestrator: &Address, round: i64) -> bool;
    /// `BondingManager.getTranscoderPoolSize()`.
    fn transcoder_pool_size(&self) -> u64;
    /// Reserve `claimant` already claimed from `sender` this round.
    fn claimed_reserve(&self, sender: &Address, claimant: &Address) -> U256;
    /// Current gas price in wei.
    fn gas_price(&self) -> U256;
}

#[derive(Clone, Debug, Default)]
struct Inner {
    round: i64,
    round_block_hash: [u8; 32],
    pre_round_block_hash: [u8; 32],
    l1_block: u64,
    senders: HashMap<Address, SenderInfo>,
    active: HashMap<Address, (i64, i64)>,
    pool_size: u64,
    claimed: HashMap<(Address, Address), U256>,
    gas_price: U256,
}

/// A `ChainState` held in memory and set by hand.
#[derive(Debug, Default)]
pub struct InMemoryChain {
    inner: RwLock<Inner>,
}

impl InMemoryChain {
    /// Empty state: round 0, L1 block 0, no senders, pool size 0, gas price 0.
    pub fn new() -> InMemoryChain {
        InMemoryChain::default()
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Inner> {
        // A panic while holding the lock leaves plain data behind; keep using it.
        self.inner.write().unwrap_or_else(|e| e.into_inner())
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Inner> {
        self.inner.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Sets the last initialized round and its block hash.
    pub fn set_round(&self, round: i64, block_hash: [u8; 32]) {
        let mut g = self.write();
        g.pre_round_block_hash = g.round_block_hash;
        g.round = round;
        g.round_block_hash = block_hash;
    }

    /// Sets the previous round's block hash explicitly.
    pub fn set_pre_round_block_hash(&self, block_hash: [u8; 32]) {
        self.write().pre_round_block_hash = block_hash;
    }

    /// Sets the latest L1 block.
    pub fn set_l1_block(&self, block: u64) {
        self.write().l1_block = block;
    }

    /// Sets a sender's TicketBroker state.
    pub fn set_sender(&self, sender: Address, info: SenderInfo) {
        self.write().senders.insert(sender, info);
    }

    /// Makes `orchestrator` active for rounds `activation ≤ r < deactivation`.
    pub fn set_active(&self, orchestrator: Address, activation: i64, deactivation: i64) {
        self.write()
            .active
            .insert(orchestrator, (activation, deactivation));
    }

    /// Sets the transcoder pool size.
    pub fn set_pool_size(&self, size: u64) {
        self.write().pool_size = size;
    }

    /// Sets reserve claimed by `claimant` from `sender` this round.
    pub fn set_claimed_reserve(&self, sender: Address, claimant: Address, amount: U256) {
        self.write().claimed.insert((sender, claimant), amount);
    }

    /// Sets the gas price.
    pub fn set_gas_price(&self, wei: U256) {
        self.write().gas_price = wei;
    }
}

impl ChainState for InMemoryChain {
    fn last_initialized_round(&self) -> i64 {
        self.read().round
    }

    fn last_initialized_block_hash(&self) -> [u8; 32] {
        self.read().round_block_hash
    }

    fn pre_last_initialized_block_hash(&self) -> [u8; 32] {
        self.read().pre_round_block_hash
    }

    fn last_seen_l1_block(&self) -> u64 {
        self.read().l1_block
    }

    fn sender_info(&self, sender: &Address) -> Result<SenderInfo, PmError> {
        Ok(self.read().senders.get(sender).cloned().unwrap_or_default())
    }

    fn is_active(&self, orchestrator: &Address, round: i64) -> bool {
        matches!(self.read().active.get(orchestrator), Some((a, d)) if *a <= round && round < *d)
    }

    fn transcoder_pool_size(&self) -> u64 {
        self.read().pool_size
    }

    fn claimed_reserve(&self, sender: &Address, claimant: &Address) -> U256 {
        self.read()
            .claimed
            .get(&(*sender, *claimant))
            .copied()
            .unwrap_or(U256::ZERO)
    }

    fn gas_price(&self) -> U256 {
        self.read().gas_price
    }
}

/// `reserveAlloc = (fundsRemaining + claimedInCurrentRound) / poolSize − claimed`, 0 for an
/// empty pool (§11.1); floored at 0 where Go's big.Int would go negative.
pub fn reserve_alloc(info: &SenderInfo, pool_size: u64, claimed: &U256) -> U256 {
    if pool_size == 0 {
        return U256::ZERO;
    }
    let reserve = info
        .reserve
        .funds_remaining
        .saturating_add(info.reserve.claimed_in_current_round);
    (reserve / U256::from(pool_size)).saturating_sub(*claimed)
}

/// `minDepositPendingRatio`.
pub const MIN_DEPOSIT_PENDING_RATIO: u64 = 3;

/// Max float (§11.1): `reserveAlloc` when `deposit / pending ≥ 3`, else `reserveAlloc − pending`.
pub fn max_float(reserve_alloc: &U256, deposit: &U256, pending: &U256) -> U256 {
    if !pending.is_zero() && *deposit / *pending >= U256::from(MIN_DEPOSIT_PENDING_RATIO) {
        return *reserve_alloc;
    }
    reserve_alloc.saturating_sub(*pending)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserve_alloc_and_max_float_follow_the_formulas() {
        let info = SenderInfo {
            deposit: U256::from(1000u64),
            reserve: ReserveInfo {
                funds_remaining: U256::from(900u64),
                claimed_in_current_round: U256::from(100u64),
            },
            withdraw_round: 0,
        };
        let alloc = reserve_alloc(&info, 4, &U256::from(50u64));
        assert_eq!(alloc, U256::from(200u64)); // 1000/4 − 50
        assert_eq!(reserve_alloc(&info, 0, &U256::ZERO), U256::ZERO);
        // deposit/pending = 1000/300 = 3 → the whole alloc
        assert_eq!(max_float(&alloc, &info.deposit, &U256::from(300u64)), alloc);
        // deposit/pending = 1000/400 = 2 → alloc − pending, floored at 0
        assert_eq!(
            max_float(&alloc, &info.deposit, &U256::from(400u64)),
            U256::ZERO
        );
        assert_eq!(max_float(&alloc, &info.deposit, &U256::ZERO), alloc);
    }

    #[test]
    fn activity_window_is_half_open() {
        let c = InMemoryChain::new();
        let o = Address([1u8; 20]);
        c.set_active(o, 5, 10);
        assert!(!c.is_active(&o, 4));
        assert!(c.is_active(&o, 5));
        assert!(c.is_active(&o, 9));
        assert!(!c.is_active(&o, 10));
    }
}
