//! The redeemer's Prometheus metrics, registered once in the process-wide registry.
//! Labels are bounded (an outcome or deferral reason from [`TicketState::name`]), never a
//! sender or a ticket hash. Several redeemers may share a process (tests), so every value is
//! process-wide: the leader gauge counts the instances of this process that lead.

use std::sync::LazyLock;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Unit;

use crate::store::{TicketRecord, TicketState};

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct OutcomeLabel {
    pub outcome: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct ReasonLabel {
    pub reason: &'static str,
}

pub(crate) struct Metrics {
    pub outcomes: Family<OutcomeLabel, Counter>,
    pub taken: Counter,
    pub submitted: Counter,
    pub replaced: Counter,
    pub deferred: Family<ReasonLabel, Counter>,
    pub leading: Gauge,
    pub terms: Counter,
    pub expiry_to_redeemed: Histogram,
    pub open: Gauge,
}

impl Metrics {
    /// Counts a ticket's final outcome and, for a redemption, the time since its params expired.
    pub fn finished(&self, record: &TicketRecord) {
        self.outcomes
            .get_or_create(&OutcomeLabel {
                outcome: record.state.name(),
            })
            .inc();
        if let (TicketState::Redeemed { .. }, Some(expired), Some(finished)) = (
            &record.state,
            record.params_expired_at_ms,
            record.finished_at_ms,
        ) {
            let ms = finished.saturating_sub(expired);
            self.expiry_to_redeemed.observe(ms as f64 / 1000.0);
        }
    }

    /// Counts a deferral whose reason ([`TicketState::name`]) was just recorded.
    pub fn deferred(&self, reason: &'static str) {
        self.deferred.get_or_create(&ReasonLabel { reason }).inc();
    }
}

/// Holds one unit of the leader gauge for a term; dropping it (the term ended, or the task
/// was aborted) gives it back, so the gauge never counts a dead leader, and clears the open
/// tickets gauge that only a leader keeps.
pub(crate) struct LeaderTerm(());

impl LeaderTerm {
    pub fn start() -> LeaderTerm {
        let m = metrics();
        m.terms.inc();
        m.leading.inc();
        LeaderTerm(())
    }
}

impl Drop for LeaderTerm {
    fn drop(&mut self) {
        let m = metrics();
        m.leading.dec();
        // A standby does not poll: its last count would go stale.
        m.open.set(0);
    }
}

static METRICS: LazyLock<Metrics> = LazyLock::new(|| {
    let metrics = Metrics {
        outcomes: Family::default(),
        taken: Counter::default(),
        submitted: Counter::default(),
        replaced: Counter::default(),
        deferred: Family::default(),
        leading: Gauge::default(),
        terms: Counter::default(),
        // params expiry to confirmation: a few blocks, up to minutes when gas or funds wait
        expiry_to_redeemed: Histogram::new(exponential_buckets(0.25, 2.0, 14)),
        open: Gauge::default(),
    };
    let mut registry = livefarm_telemetry::metrics::registry();
    // prometheus-client appends `_total` to counters and the unit to unit-registered families
    registry.register(
        "livefarm_redeemer_tickets_finished",
        "tickets that reached a final outcome, by outcome",
        metrics.outcomes.clone(),
    );
    registry.register(
        "livefarm_redeemer_tickets_taken",
        "winning-ticket entries taken from the stream (new, reclaimed or queued again)",
        metrics.taken.clone(),
    );
    registry.register(
        "livefarm_redeemer_transactions_sent",
        "redemption transactions signed, recorded and broadcast (first attempts)",
        metrics.submitted.clone(),
    );
    registry.register(
        "livefarm_redeemer_transactions_replaced",
        "replacement transactions for stuck redemptions (same nonce, higher fee)",
        metrics.replaced.clone(),
    );
    registry.register(
        "livefarm_redeemer_tickets_deferred",
        "tickets put off to later blocks, counted when the reason is recorded, by reason",
        metrics.deferred.clone(),
    );
    registry.register(
        "livefarm_redeemer_leader",
        "redeemer instances in this process that hold the leadership (0 or 1 in production)",
        metrics.leading.clone(),
    );
    registry.register(
        "livefarm_redeemer_leader_terms",
        "leadership terms won",
        metrics.terms.clone(),
    );
    registry.register_with_unit(
        "livefarm_redeemer_expiry_to_redeemed",
        "time from a ticket's params expiry (as the redeemer saw it) to its confirmed redemption",
        Unit::Seconds,
        metrics.expiry_to_redeemed.clone(),
    );
    registry.register(
        "livefarm_redeemer_open_tickets",
        "tickets recorded without a final outcome, as of the leader's last poll",
        metrics.open.clone(),
    );
    drop(registry);
    metrics
});

pub(crate) fn metrics() -> &'static Metrics {
    &METRICS
}
