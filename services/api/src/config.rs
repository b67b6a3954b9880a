//! The API's configuration: one serde struct with defaults, loaded in layers by
//! `livefarm_runtime::load` (defaults, TOML file, `LIVEFARM_*` environment, `--set`).

use std::net::SocketAddr;
use std::time::Duration;

use livefarm_telemetry::TelemetryConfig;
use serde::{Deserialize, Serialize};

use crate::error::ApiError;

/// Everything the API service can be told.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ApiConfig {
    /// HTTP port: `/api/...`, `/hls/...` and `/stream/...`.
    pub listen: SocketAddr,
    /// Admin HTTP port: `/livez`, `/readyz`, `/metrics`.
    pub admin_listen: SocketAddr,
    /// Job bus: `redis://host:port[/db]` or `memory://[name]` (one process only).
    pub bus_url: String,
    /// The control-plane database (tenants, API keys, streams): `sqlite://PATH` (embedded; one
    /// api process) or `postgres://USER:PASSWORD@HOST:PORT/DB` (shared by every replica).
    /// Migrations are applied at start. Pass the password through the environment
    /// (`LIVEFARM_DATABASE_URL`), not a file.
    pub database_url: String,
    /// Base of the URLs the API hands out (playback info, recordings), e.g.
    /// `https://video.example.com`. Empty: `http://` and the request's `Host`.
    pub public_url: String,
    /// How long an API key that authenticated is trusted without asking the database again.
    /// Milliseconds, at most 5000: a revoked key stops working within this on every replica.
    /// 0: every call asks the database.
    pub api_key_cache_ms: u64,
    /// Webhook deliveries: timeouts, retries, concurrency, and whether targets on private or
    /// loopback addresses are allowed (`webhooks.allow_private_targets`, default false; `livefarm
    /// up` allows them).
    pub webhooks: livefarm_webhooks::WebhookConfig,
    /// Sessions, `stream.started`/`stream.idle` timing and recordings.
    pub lifecycle: crate::lifecycle::LifecycleConfig,
    /// Object store: a directory, `file:///dir`, `s3://bucket/prefix?...` or `memory://`.
    pub storage_url: String,
    /// Segments in a live playlist (go-livepeer's `LIVE_LIST_LENGTH`).
    pub live_window: usize,
    /// Longest a read of the results stream blocks. Milliseconds. Every replica reads every
    /// result on its own (playlists live in memory), so replicas need no setting of their own.
    pub poll_interval_ms: u64,
    /// Playlist snapshots: streams changed since the last save are saved to the bus at most
    /// this often, so a restarted replica reads only the results since. Milliseconds; 0 turns
    /// saving off (loading stays on).
    pub snapshot_interval_ms: u64,
    /// Longest the HTTP drain may take on shutdown. Milliseconds.
    pub drain_grace_ms: u64,
    /// Logs and traces.
    pub telemetry: TelemetryConfig,
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([0, 0, 0, 0], 8080)),
            admin_listen: SocketAddr::from(([0, 0, 0, 0], 9482)),
            bus_url: "redis://127.0.0.1:6379".to_owned(),
            database_url: "sqlite:///var/lib/livefarm/livefarm.db".to_owned(),
            public_url: String::new(),
            api_key_cache_ms: 2_000,
            webhooks: livefarm_webhooks::WebhookConfig::default(),
            lifecycle: crate::lifecycle::LifecycleConfig::default(),
            storage_url: "file:///var/lib/livefarm/objects".to_owned(),
            live_window: 6,
            poll_interval_ms: 500,
            snapshot_interval_ms: 5_000,
            drain_grace_ms: 10_000,
            telemetry: TelemetryConfig {
                service_name: "livefarm-api".to_owned(),
                ..TelemetryConfig::default()
            },
        }
    }
}

impl ApiConfig {
    /// [`ApiConfig::api_key_cache_ms`] as a duration.
    pub fn api_key_cache(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.api_key_cache_ms)
    }

    /// Checks the values that defaults and serde cannot (exit 64 when this fails).
    pub fn validate(&self) -> Result<(), ApiError> {
        let bad = |key: &'static str, reason: &str| ApiError::Config {
            key,
            reason: reason.to_owned(),
        };
        if self.api_key_cache_ms > 5_000 {
            return Err(bad(
                "api_key_cache_ms",
                "at most 5000: a revoked key must stop working within 5 s",
            ));
        }
        if self.live_window == 0 {
            return Err(bad("live_window", "must be at least 1"));
        }
        if livefarm_store::Backend::from_url(&self.database_url).is_err() {
            return Err(bad(
                "database_url",
                "expected sqlite://PATH or postgres://USER:PASSWORD@HOST:PORT/DB",
            ));
        }
        let public = &self.public_url;
        if !(public.is_empty() || public.starts_with("http://") || public.starts_with("https://")) {
            return Err(bad("public_url", "expected http(s)://host[:port][/path]"));
        }
        if self.poll_interval_ms == 0 {
            return Err(bad("poll_interval_ms", "must be at least 1"));
        }
        Ok(())
    }

    /// [`ApiConfig::poll_interval_ms`] as a duration.
    pub fn poll_interval(&self) -> Duration {
        Duration::from_millis(self.poll_interval_ms)
    }

    /// [`ApiConfig::snapshot_interval_ms`] as a duration; `None` when saving is off.
    pub fn snapshot_interval(&self) -> Option<Duration> {
        (self.snapshot_interval_ms > 0).then(|| Duration::from_millis(self.snapshot_interval_ms))
    }

    /// [`ApiConfig::drain_grace_ms`] as a duration.
    pub fn drain_grace(&self) -> Duration {
        Duration::from_millis(self.drain_grace_ms)
    }
}

impl livefarm_runtime::ServiceConfig for ApiConfig {
    fn check(&self) -> Result<(), String> {
        self.validate().map_err(|e| e.to_string())
    }

    fn telemetry(&self) -> &TelemetryConfig {
        &self.telemetry
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use livefarm_runtime::RunError;

    #[test]
    fn defaults_are_valid_and_listen_on_8080() {
        let config = ApiConfig::default();
        config.validate().expect("valid");
        assert_eq!(config.listen.port(), 8080);
        let bad = ApiConfig {
            live_window: 0,
            ..ApiConfig::default()
        };
        assert!(bad.validate().expect_err("invalid").is_config());
        assert_eq!(
            config.database_url,
            "sqlite:///var/lib/livefarm/livefarm.db"
        );
        let bad = ApiConfig {
            database_url: "etcd://x".to_owned(),
            ..ApiConfig::default()
        };
        let error = bad.validate().expect_err("invalid");
        assert!(error.is_config());
        assert!(error.to_string().contains("database_url"), "{error}");
        let bad = ApiConfig {
            public_url: "cdn.example".to_owned(),
            ..ApiConfig::default()
        };
        assert!(bad.validate().expect_err("invalid").is_config());
    }
}
