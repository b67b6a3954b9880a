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

    fn count(outcome: &str) -> u64 {
        let text = livefarm_telemetry::metrics::render();
        let prefix = format!("livefarm_webhooks_attempts_total{{outcome=\"{outcome}\"}} ");
        text.lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .map_or(0, |v| v.trim().parse().expect("a count"))
    }

    #[test]
    fn outcomes_are_counted() {
        let (failed, retry) = (count("failed"), count("retry"));
        attempt(&AttemptOutcome::Failed);
        attempt(&AttemptOutcome::Retry { at: 0 });
        // other tests of this crate may deliver meanwhile: at least ours are counted
        assert!(count("failed") > failed);
        assert!(count("retry") > retry);
    }
}
