//! [`WebhookConfig`]: the `webhooks` section of the api's configuration.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// How webhooks are vetted and delivered. Every key has a default; times are milliseconds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebhookConfig {
    /// Allow target URLs that resolve to loopback, private (RFC 1918), link-local (cloud
    /// metadata at 169.254.169.254), unique-local IPv6, CGNAT, unspecified, multicast or
    /// reserved addresses. Default false: refused at create/update (422) and at delivery, so
    /// a tenant cannot make the api call into the cluster. `livefarm up` sets it true (the
    /// receiver is usually on the same machine).
    pub allow_private_targets: bool,
    /// Longest one attempt may take, connect to last response byte (Studio: 30 s). Shorter
    /// here: a slow receiver holds its webhook's slots for less time, and an attempt that
    /// times out is retried with backoff, not lost.
    pub timeout_ms: u64,
    /// Attempts in flight per webhook, across every replica (a soft bound under races). A
    /// hanging receiver holds at most this many slots; other webhooks go on.
    pub max_in_flight_per_webhook: u32,
    /// Attempts in flight per replica.
    pub max_in_flight: u32,
    /// Delay before the first retry; doubles for each further one (Studio: 5 s).
    pub retry_base_ms: u64,
    /// Longest delay between two retries (Studio: 1 h).
    pub retry_max_ms: u64,
    /// Retries after the first attempt before a delivery is given up (Studio: 33; about a day
    /// with the defaults).
    pub max_retries: u32,
    /// How often a deliverer looks for due deliveries when nothing wakes it.
    pub poll_interval_ms: u64,
    /// How long a claimed delivery stays with its deliverer. It must outlast an attempt
    /// (`timeout_ms`) with room to record it; a deliverer that dies holds its deliveries this
    /// long before another replica retries them.
    pub lease_ms: u64,
    /// On shutdown, how long in-flight attempts may finish before they are abandoned (their
    /// leases are released, so another deliverer retries them).
    pub shutdown_grace_ms: u64,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        WebhookConfig {
            allow_private_targets: false,
            timeout_ms: 10_000,
            max_in_flight_per_webhook: 2,
            max_in_flight: 64,
            retry_base_ms: 5_000,
            retry_max_ms: 3_600_000,
            max_retries: 33,
            poll_interval_ms: 250,
            lease_ms: 60_000,
            shutdown_grace_ms: 5_000,
        }
    }
}

/// A setting that cannot work, with the key and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("webhooks.{key}: {reason}")]
pub struct ConfigError {
    /// The key under `webhooks`.
    pub key: &'static str,
    /// Why.
    pub reason: String,
}

/// Time to record an attempt after it ends, within its lease.
const RECORD_MARGIN_MS: u64 = 1_000;

impl WebhookConfig {
    /// Checks what serde cannot (the api exits 64 when this fails).
    pub fn validate(&self) -> Result<(), ConfigError> {
        let bad = |key: &'static str, reason: String| Err(ConfigError { key, reason });
        for (key, value) in [
            ("timeout_ms", self.timeout_ms),
            ("poll_interval_ms", self.poll_interval_ms),
            ("retry_base_ms", self.retry_base_ms),
            ("max_in_flight", u64::from(self.max_in_flight)),
            (
                "max_in_flight_per_webhook",
                u64::from(self.max_in_flight_per_webhook),
            ),
        ] {
            if value == 0 {
                return bad(key, "must be at least 1".to_owned());
            }
        }
        if self.retry_max_ms < self.retry_base_ms {
            return bad("retry_max_ms", "must be at least retry_base_ms".to_owned());
        }
        if self.lease_ms < self.timeout_ms + RECORD_MARGIN_MS {
            return bad(
                "lease_ms",
                format!("must be at least timeout_ms + {RECORD_MARGIN_MS} (an attempt must end within its lease)"),
            );
        }
        Ok(())
    }

    /// [`WebhookConfig::timeout_ms`] as a duration.
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms)
    }

    /// [`WebhookConfig::poll_interval_ms`] as a duration.
    pub fn poll_interval(&self) -> Duration {
        Duration::from_millis(self.poll_interval_ms)
    }

    /// [`WebhookConfig::shutdown_grace_ms`] as a duration.
    pub fn shutdown_grace(&self) -> Duration {
        Duration::from_millis(self.shutdown_grace_ms)
    }

    /// The delay before retry number `retry` (1 for the first): `retry_base_ms` doubled
    /// `retry - 1` times, at most `retry_max_ms` (Studio's `cannon.ts`).
    pub fn backoff_ms(&self, retry: u32) -> u64 {
        let doublings = retry.saturating_sub(1).min(63);
        self.retry_base_ms
            .saturating_mul(1u64 << doublings)
            .min(self.retry_max_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_studio_like() {
        let config = WebhookConfig::default();
        config.validate().expect("defaults");
        assert!(
            !config.allow_private_targets,
            "refuse private targets by default"
        );
        assert_eq!(config.backoff_ms(1), 5_000);
        assert_eq!(config.backoff_ms(2), 10_000);
        assert_eq!(config.backoff_ms(10), 2_560_000);
        assert_eq!(config.backoff_ms(11), 3_600_000, "capped at an hour");
        assert_eq!(config.backoff_ms(33), 3_600_000);
        assert_eq!(config.backoff_ms(u32::MAX), 3_600_000, "no overflow");
        // about a day of retries in all, as Studio
        let total: u64 = (1..=config.max_retries).map(|r| config.backoff_ms(r)).sum();
        assert!((23 * 3_600_000..26 * 3_600_000).contains(&total), "{total}");
    }

    #[test]
    fn bad_settings_name_their_key() {
        let short_lease = WebhookConfig {
            lease_ms: 10_000,
            ..WebhookConfig::default()
        };
        assert_eq!(short_lease.validate().expect_err("lease").key, "lease_ms");
        let zero = WebhookConfig {
            max_in_flight_per_webhook: 0,
            ..WebhookConfig::default()
        };
        assert_eq!(
            zero.validate().expect_err("zero").key,
            "max_in_flight_per_webhook"
        );
        let parsed: Result<WebhookConfig, _> =
            serde_json::from_str(r#"{"allow_private_target": true}"#);
        assert!(parsed.is_err(), "a misspelt key is an error, not ignored");
        let parsed: WebhookConfig =
            serde_json::from_str(r#"{"allow_private_targets": true}"#).expect("partial");
        assert!(parsed.allow_private_targets);
        assert_eq!(parsed.timeout_ms, 10_000);
    }
}
