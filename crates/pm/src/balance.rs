//! Credit balances (§9.7, §10): the orchestrator's per (sender, session) ledger with each
//! session's fixed price, and the broadcaster's per (recipient, session) ledger with its
//! stage / settle cycle (GL core/accounting.go, server/segment_rpc.go).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use num_bigint::BigInt;
use num_rational::BigRational;
use num_traits::{ToPrimitive, Zero};

use crate::address::Address;
use crate::num::ceil_to_bigint;
use crate::price::Price;

/// `cleanupInterval`: idle balances are dropped after this long.
pub const BALANCE_TTL: Duration = Duration::from_secs(600);

#[derive(Debug)]
struct Entry {
    balance: BigRational,
    fixed_price: Option<Price>,
    last_update: Instant,
}

impl Entry {
    fn new() -> Entry {
        Entry {
            balance: BigRational::zero(),
            fixed_price: None,
            last_update: Instant::now(),
        }
    }
}

/// Exact rational balances keyed by (address, session id), with a fixed price per session.
/// The orchestrator keys by (sender, auth session id); the broadcaster by (recipient, session).
#[derive(Debug)]
pub struct Balances {
    inner: Mutex<HashMap<(Address, String), Entry>>,
    ttl: Duration,
}

impl Default for Balances {
    fn default() -> Self {
        Balances::new(BALANCE_TTL)
    }
}

impl Balances {
    /// Empty balances whose idle entries `cleanup` drops after `ttl`.
    pub fn new(ttl: Duration) -> Balances {
        Balances {
            inner: Mutex::new(HashMap::new()),
            ttl,
        }
    }

    fn with_entry<R>(&self, addr: Address, session: &str, f: impl FnOnce(&mut Entry) -> R) -> R {
        let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let e = g
            .entry((addr, session.to_string()))
            .or_insert_with(Entry::new);
        e.last_update = Instant::now();
        f(e)
    }

    /// Adds `amount`.
    pub fn credit(&self, addr: Address, session: &str, amount: &BigRational) {
        self.with_entry(addr, session, |e| e.balance += amount);
    }

    /// Subtracts `amount`; balances may go negative.
    pub fn debit(&self, addr: Address, session: &str, amount: &BigRational) {
        self.with_entry(addr, session, |e| e.balance -= amount);
    }

    /// Debits `pixels × price`, at the session's fixed price when it has one, else at
    /// `fallback`. Returns the amount debited.
    pub fn debit_pixels(
        &self,
        addr: Address,
        session: &str,
        pixels: u64,
        fallback: &Price,
    ) -> BigRational {
        self.with_entry(addr, session, |e| {
            let fee = e
                .fixed_price
                .as_ref()
                .unwrap_or(fallback)
                .fee_for_pixels(pixels);
            e.balance -= &fee;
            fee
        })
    }

    /// The balance, or `None` for an unknown session.
    pub fn balance(&self, addr: Address, session: &str) -> Option<BigRational> {
        let g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        g.get(&(addr, session.to_string()))
            .map(|e| e.balance.clone())
    }

    /// `SufficientBalance`: `balance ≥ ev`.
    pub fn sufficient(&self, addr: Address, session: &str, ev: &BigRational) -> bool {
        matches!(self.balance(addr, session), Some(b) if b >= *ev)
    }

    /// Takes the whole balance out, leaving zero (Go `Balances.Reserve`).
    pub fn reserve(&self, addr: Address, session: &str) -> BigRational {
        self.with_entry(addr, session, |e| {
            std::mem::replace(&mut e.balance, BigRational::zero())
        })
    }

    /// The session's fixed price.
    pub fn fixed_price(&self, addr: Address, session: &str) -> Option<Price> {
        let g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        g.get(&(addr, session.to_string()))
            .and_then(|e| e.fixed_price.clone())
    }

    /// Fixes the session's price unless it already has one; returns the price in force.
    pub fn fix_price(&self, addr: Address, session: &str, price: &Price) -> Price {
        self.with_entry(addr, session, |e| {
            e.fixed_price.get_or_insert_with(|| price.clone()).clone()
        })
    }

    /// Drops entries idle for longer than the TTL; returns how many were dropped.
    pub fn cleanup(&self, now: Instant) -> usize {
        let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let before = g.len();
        g.retain(|_, e| now.saturating_duration_since(e.last_update) <= self.ttl);
        before - g.len()
    }

    /// Number of sessions held.
    pub fn len(&self) -> usize {
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Whether no session is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// How a staged broadcaster update ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UpdateStatus {
    /// Tickets were made but the segment never reached O: the existing credit comes back.
    Staged,
    /// O answered: credit and debit are applied.
    ReceivedChange,
}

/// A broadcaster's pending balance change for one segment (Go `BalanceUpdate`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BalanceUpdate {
    /// The balance taken out when staging.
    pub existing_credit: BigRational,
    /// `num_tickets × EV`.
    pub new_credit: BigRational,
    /// Tickets to send.
    pub num_tickets: usize,
    /// `Σ returned pixels × price`, set when O answers.
    pub debit: BigRational,
    /// Whether O answered.
    pub status: UpdateStatus,
}

/// Tickets needed to cover `min_credit` from `existing_credit` at `ev` per ticket:
/// 0 when already covered, else `ceil((min_credit − existing_credit) / ev)`.
pub fn tickets_needed(
    min_credit: &BigRational,
    existing_credit: &BigRational,
    ev: &BigRational,
) -> usize {
    if existing_credit >= min_credit || ev.is_zero() {
        return 0;
    }
    let gap = (min_credit - existing_credit) / ev;
    ceil_to_bigint(&gap).to_usize().unwrap_or(usize::MAX)
}

impl Balances {
    /// Broadcaster `StageUpdate`: reserves the whole balance and computes the tickets needed
    /// for `max(min_credit, ev)`.
    pub fn stage_update(
        &self,
        recipient: Address,
        session: &str,
        min_credit: &BigRational,
        ev: &BigRational,
    ) -> BalanceUpdate {
        let min_credit = if min_credit < ev { ev } else { min_credit };
        let existing_credit = self.reserve(recipient, session);
        let num_tickets = tickets_needed(min_credit, &existing_credit, ev);
        let new_credit = ev * BigRational::from_integer(BigInt::from(num_tickets));
        BalanceUpdate {
            existing_credit,
            new_credit,
            num_tickets,
            debit: BigRational::zero(),
            status: UpdateStatus::Staged,
        }
    }

    /// Broadcaster settlement: after O answered, balance += existing + new − debit; when the
    /// segment never got through, the existing credit is put back.
    pub fn complete_update(&self, recipient: Address, session: &str, update: &BalanceUpdate) {
        match update.status {
            UpdateStatus::ReceivedChange => {
                let net = &update.existing_credit + &update.new_credit - &update.debit;
                self.credit(recipient, session, &net);
            }
            UpdateStatus::Staged => self.credit(recipient, session, &update.existing_credit),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(n: i64, d: i64) -> BigRational {
        BigRational::new(BigInt::from(n), BigInt::from(d))
    }

    #[test]
    fn tickets_needed_rounds_up() {
        assert_eq!(tickets_needed(&r(10, 1), &r(0, 1), &r(3, 1)), 4);
        assert_eq!(tickets_needed(&r(9, 1), &r(0, 1), &r(3, 1)), 3);
        assert_eq!(tickets_needed(&r(9, 1), &r(9, 1), &r(3, 1)), 0);
        assert_eq!(tickets_needed(&r(9, 1), &r(1, 2), &r(3, 1)), 3);
    }

    #[test]
    fn fixed_price_is_set_once() {
        let b = Balances::default();
        let a = Address([1u8; 20]);
        let p1 = Price::new(1, 1).expect("valid");
        let p2 = Price::new(5, 1).expect("valid");
        assert_eq!(b.fix_price(a, "s", &p1), p1);
        assert_eq!(b.fix_price(a, "s", &p2), p1);
        assert_eq!(b.debit_pixels(a, "s", 10, &p2), r(10, 1));
        assert_eq!(b.balance(a, "s"), Some(r(-10, 1)));
        // an unpriced session uses the fallback
        assert_eq!(b.debit_pixels(a, "t", 10, &p2), r(50, 1));
    }

    #[test]
    fn cleanup_drops_idle_entries() {
        let b = Balances::new(Duration::from_secs(1));
        b.credit(Address([1u8; 20]), "s", &r(1, 1));
        assert_eq!(b.cleanup(Instant::now()), 0);
        assert_eq!(b.cleanup(Instant::now() + Duration::from_secs(5)), 1);
        assert!(b.is_empty());
    }

    #[test]
    fn staged_update_that_fails_restores_credit() {
        let b = Balances::default();
        let o = Address([2u8; 20]);
        b.credit(o, "s", &r(7, 1));
        let u = b.stage_update(o, "s", &r(10, 1), &r(2, 1));
        assert_eq!(u.num_tickets, 2);
        assert_eq!(b.balance(o, "s"), Some(r(0, 1)));
        b.complete_update(o, "s", &u);
        assert_eq!(b.balance(o, "s"), Some(r(7, 1)));
    }
}
