//! The deliverer's Prometheus metrics, registered once in the process-wide registry.
//! Labels are bounded (an outcome), never a webhook id or URL.

use std::sync::LazyLock;

use livefarm_store::AttemptOutcome;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;

/// `outcome`: `delivered`, `retry` (failed, tried again later), `failed` (given up).
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabel {
    outcome: &'static str,
}

static ATTEMPTS: LazyLock<Family<OutcomeLabel, Counter>> = LazyLock::new(|| {
    let family = Family::default();
    // prometheus-client appends `_total` to counters
    livefarm_telemetry::metrics::registry().register(
        "livefarm_webhooks_attempts",
        "webhook delivery attempts, by outcome (retry: failed and tried again later; failed: given up)",
        family.clone(),
    );
    family
});

/// Registers the family now, so a fresh deliverer's `/metrics` lists it.
pub(crate) fn register() {
    LazyLock::force(&ATTEMPTS);
}

/// Counts one attempt by its outcome.
pub(crate) fn attempt(outcome: &AttemptOutcome) {
    let outcome = match outcome {
        AttemptOutcome::Delivered => "delivered",
        AttemptOutcome::Retry { .. } => "retry",
        AttemptOutcome::Failed => "failed",
    };
    ATTEMPTS.get_or_create(&OutcomeLabel { outcome }).inc();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_are_counted() {
        attempt(&AttemptOutcome::Failed);
        attempt(&AttemptOutcome::Retry { at: 0 });
        let text = livefarm_telemetry::metrics::render();
        for line in [
            "livefarm_webhooks_attempts_total{outcome=\"failed\"} 1",
            "livefarm_webhooks_attempts_total{outcome=\"retry\"} 1",
        ] {
            assert!(text.contains(line), "{line} missing in\n{text}");
        }
    }
}
