//! The worker's configuration: one serde struct with defaults, loaded in layers by
//! `livefarm_runtime::load` (defaults, TOML file, `LIVEFARM_*` environment, `--set`).

use std::net::SocketAddr;
use std::time::Duration;

use livefarm_media::AccelChoice;
use livefarm_telemetry::TelemetryConfig;
use serde::{Deserialize, Serialize};

use crate::error::TranscoderError;

/// Everything a transcoder worker can be told.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TranscoderConfig {
    /// Job bus: `redis://host:port[/db]` or `memory://[name]` (one process only).
    pub bus_url: String,
    /// Object store: a directory, `file:///dir`, `s3://bucket/prefix?...` or `memory://`.
    pub storage_url: String,
    /// This worker's id on the bus; empty: `<hostname>-<pid>`.
    pub worker_id: String,
    /// Maximum concurrent transcode sessions (one per live stream).
    pub max_sessions: u32,
    /// `auto`, `cpu` or `nvidia`.
    pub accel: String,
    /// GPU indexes to use; empty: all.
    pub gpus: Vec<u32>,
    /// Maximum sessions per GPU (NVENC limits of consumer cards lower it further).
    pub max_sessions_per_gpu: u32,
    /// libx264 preset of CPU encodes.
    pub x264_preset: String,
    /// A job pending this long on a worker that stopped renewing its claim is taken over; also
    /// the TTL of a stream's affinity claim. Milliseconds.
    pub reclaim_idle_ms: u64,
    /// How long a failed segment waits before it is tried again. Milliseconds.
    pub retry_backoff_ms: u64,
    /// Deliveries of one job before it goes to the dead-letter stream.
    pub max_deliveries: u64,
    /// Scheduler period (index tail, stream claims) and the longest a stream's read blocks.
    /// Milliseconds.
    pub poll_interval_ms: u64,
    /// A segment is dropped when it is older than this many times its duration (unless the
    /// job carries its own deadline).
    pub deadline_multiplier: f64,
    /// How often the worker renews its registration and its streams' claims. Milliseconds.
    pub heartbeat_interval_ms: u64,
    /// TTL of the worker's registration. Milliseconds.
    pub heartbeat_ttl_ms: u64,
    /// A session with no segment for this long is closed and its stream released.
    /// Milliseconds.
    pub session_idle_ms: u64,
    /// A stream with no new job for this long is forgotten by the scheduler. Milliseconds.
    pub stream_forget_ms: u64,
    /// gRPC port: `grpc.health.v1` and `livefarm.transcoder.v1.TranscoderAdmin`.
    pub grpc_listen: SocketAddr,
    /// Admin HTTP port: `/livez`, `/readyz`, `/metrics`.
    pub admin_listen: SocketAddr,
    /// Longest a SIGTERM drain may take before in-flight work is abandoned (keep it under the
    /// pod's `terminationGracePeriodSeconds`). Milliseconds.
    pub drain_grace_ms: u64,
    /// Logs and traces.
    pub telemetry: TelemetryConfig,
}

impl Default for TranscoderConfig {
    fn default() -> Self {
        Self {
            bus_url: "redis://127.0.0.1:6379".to_owned(),
            storage_url: "file:///var/lib/livefarm/objects".to_owned(),
            worker_id: String::new(),
            max_sessions: 4,
            accel: "auto".to_owned(),
            gpus: Vec::new(),
            max_sessions_per_gpu: 16,
            x264_preset: "veryfast".to_owned(),
            reclaim_idle_ms: 5_000,
            retry_backoff_ms: 1_000,
            max_deliveries: 5,
            poll_interval_ms: 200,
            deadline_multiplier: 3.0,
            heartbeat_interval_ms: 1_000,
            heartbeat_ttl_ms: 5_000,
            session_idle_ms: 30_000,
            stream_forget_ms: 120_000,
            grpc_listen: SocketAddr::from(([0, 0, 0, 0], 9460)),
            admin_listen: SocketAddr::from(([0, 0, 0, 0], 9461)),
            drain_grace_ms: 25_000,
            telemetry: TelemetryConfig {
                service_name: "livefarm-transcoder".to_owned(),
                ..TelemetryConfig::default()
            },
        }
    }
}

impl TranscoderConfig {
    /// Checks the values that defaults and serde cannot (exit 64 when this fails).
    pub fn validate(&self) -> Result<(), TranscoderError> {
        let bad = |key: &'static str, reason: &str| TranscoderError::Config {
            key,
            reason: reason.to_owned(),
        };
        self.accel_choice()?;
        if self.max_sessions == 0 {
            return Err(bad("max_sessions", "must be at least 1"));
        }
        if self.max_sessions_per_gpu == 0 {
            return Err(bad("max_sessions_per_gpu", "must be at least 1"));
        }
        if self.max_deliveries == 0 {
            return Err(bad("max_deliveries", "must be at least 1"));
        }
        if self.poll_interval_ms == 0 {
            return Err(bad("poll_interval_ms", "must be at least 1"));
        }
        if self.heartbeat_interval_ms == 0 || self.heartbeat_interval_ms * 2 > self.reclaim_idle_ms
        {
            return Err(bad(
                "heartbeat_interval_ms",
                "must be positive and at most half of reclaim_idle_ms, or claims lapse between renewals",
            ));
        }
        if self.heartbeat_ttl_ms <= self.heartbeat_interval_ms {
            return Err(bad(
                "heartbeat_ttl_ms",
                "must be longer than heartbeat_interval_ms",
            ));
        }
        if !(self.deadline_multiplier.is_finite() && self.deadline_multiplier > 0.0) {
            return Err(bad("deadline_multiplier", "must be a positive number"));
        }
        if !self.worker_id.is_empty() {
            livefarm_jobs::validate_stream_id(&self.worker_id)
                .map_err(|e| bad("worker_id", &e.to_string()))?;
        }
        Ok(())
    }

    /// The parsed `accel` value.
    pub fn accel_choice(&self) -> Result<AccelChoice, TranscoderError> {
        self.accel
            .parse()
            .map_err(|reason: String| TranscoderError::Config {
                key: "accel",
                reason,
            })
    }

    /// `worker_id`, or `<hostname>-<pid>` when it is empty.
    pub fn effective_worker_id(&self) -> String {
        if !self.worker_id.is_empty() {
            return self.worker_id.clone();
        }
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .or_else(|| std::env::var("HOSTNAME").ok())
            .map(|h| h.trim().to_owned())
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "transcoder".to_owned());
        // keep it a valid key part whatever the hostname holds
        let host: String = host
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        format!("{host}-{}", std::process::id())
    }

    pub(crate) fn reclaim_idle(&self) -> Duration {
        Duration::from_millis(self.reclaim_idle_ms)
    }

    pub(crate) fn retry_backoff(&self) -> Duration {
        Duration::from_millis(self.retry_backoff_ms)
    }

    pub(crate) fn poll_interval(&self) -> Duration {
        Duration::from_millis(self.poll_interval_ms)
    }

    pub(crate) fn heartbeat_interval(&self) -> Duration {
        Duration::from_millis(self.heartbeat_interval_ms)
    }

    pub(crate) fn heartbeat_ttl(&self) -> Duration {
        Duration::from_millis(self.heartbeat_ttl_ms)
    }

    pub(crate) fn session_idle(&self) -> Duration {
        Duration::from_millis(self.session_idle_ms)
    }

    pub(crate) fn drain_grace(&self) -> Duration {
        Duration::from_millis(self.drain_grace_ms)
    }
}

impl livefarm_runtime::ServiceConfig for TranscoderConfig {
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

    #[test]
    fn defaults_are_valid_and_round_trip() {
        let config = TranscoderConfig::default();
        config.validate().expect("defaults are valid");
        let text = livefarm_runtime::dump_config(&config).expect("dump");
        assert!(text.contains("reclaim_idle_ms = 5000"), "{text}");
        let back: TranscoderConfig = toml_round_trip(&text);
        assert_eq!(back, config);
    }

    fn toml_round_trip(text: &str) -> TranscoderConfig {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("c.toml");
        std::fs::write(&path, text).expect("write");
        livefarm_runtime::load(
            &livefarm_runtime::LoadOptions::new()
                .file(&path)
                .env_vars(Vec::<(String, String)>::new()),
        )
        .expect("load")
    }

    #[test]
    fn bad_values_name_their_key() {
        type Breaker = fn(&mut TranscoderConfig);
        let cases: [(&str, Breaker); 5] = [
            ("max_sessions", |c| c.max_sessions = 0),
            ("accel", |c| c.accel = "amd".to_owned()),
            ("heartbeat_interval_ms", |c| c.heartbeat_interval_ms = 4_000),
            ("deadline_multiplier", |c| c.deadline_multiplier = f64::NAN),
            ("worker_id", |c| c.worker_id = "a b".to_owned()),
        ];
        for (key, break_it) in cases {
            let mut config = TranscoderConfig::default();
            break_it(&mut config);
            let error = config.validate().expect_err(key);
            assert!(error.to_string().contains(key), "{error}");
        }
    }

    #[test]
    fn worker_id_defaults_to_host_and_pid() {
        let id = TranscoderConfig::default().effective_worker_id();
        assert!(id.ends_with(&format!("-{}", std::process::id())), "{id}");
        livefarm_jobs::validate_stream_id(&id).expect("usable as a key part");
    }
}
