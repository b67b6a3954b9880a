//! The redeemer's configuration: one serde struct with defaults, loaded in layers by
//! `livefarm_runtime::load` (defaults, TOML file, `LIVEFARM_*` environment, `--set`).

use std::net::SocketAddr;
use std::time::Duration;

use livefarm_chain::Address;
use livefarm_telemetry::TelemetryConfig;
use serde::{Deserialize, Serialize};

use crate::error::RedeemerError;

/// The stream the orchestrator appends winning tickets to (`livefarm_orchestrator::tickets`).
pub use livefarm_jobs::WINNING_TICKETS_STREAM;

/// Everything a redeemer can be told.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RedeemerConfig {
    /// Job bus the winning tickets arrive on: `redis://host:port[/db]`.
    pub bus_url: String,
    /// Redis holding ticket records and the leader lock; empty: `bus_url`.
    pub redis_url: String,
    /// Ethereum JSON-RPC endpoint (HTTP).
    pub rpc_url: String,
    /// Controller address; every other contract is found through it.
    pub controller: String,
    /// Hex secp256k1 key of the account that pays for redemptions. Secret: give it through
    /// `LIVEFARM_SIGNER_KEY` or `signer_key_file`, never in a config file.
    #[serde(skip_serializing)]
    pub signer_key: String,
    /// File holding the signer key (hex), read at start when `signer_key` is empty.
    pub signer_key_file: String,
    /// The orchestrator whose max float `MaxFloat` reports; empty: the signer's address.
    pub recipient: String,
    /// Stream of winning tickets.
    pub stream: String,
    /// Consumer group on `stream`.
    pub group: String,
    /// This instance's name in the lock and the group; empty: `<hostname>-<pid>`.
    pub instance_id: String,
    /// Prefix of every Redis key this service writes.
    pub key_prefix: String,
    /// How often new blocks, held tickets and receipts are looked at. Milliseconds.
    pub poll_interval_ms: u64,
    /// Blocks on top of the one holding a redemption before it counts as final (1: mined).
    pub confirmations: u64,
    /// A transaction without a receipt this long is replaced with a higher fee. Milliseconds.
    pub stuck_timeout_ms: u64,
    /// How many times one redemption may be replaced (go-livepeer's `-maxTxReplacements`).
    pub max_replacements: u32,
    /// Fee raise of each replacement, percent (go-livepeer: 11).
    pub fee_bump_percent: u64,
    /// Gas estimate multiplier in percent (headroom over `eth_estimateGas`).
    pub gas_margin_percent: u64,
    /// `ticketValidityPeriod` in rounds; 0: read it from the TicketBroker.
    pub ticket_validity_period: u64,
    /// TTL of the leader lock. Milliseconds.
    pub lock_ttl_ms: u64,
    /// How often the leader renews its lock and a standby tries to take it. Milliseconds.
    pub lock_renew_ms: u64,
    /// Who decides the one active redeemer: `redis` (a lock in the store), `kubernetes` (a
    /// `coordination.k8s.io` Lease; the pod needs get/create/update on leases), or `auto`
    /// (kubernetes inside a pod, redis elsewhere).
    pub leader_election: String,
    /// Name of the Lease (kubernetes election).
    pub lease_name: String,
    /// Namespace of the Lease; empty: the pod's own.
    pub lease_namespace: String,
    /// How often `MonitorMaxFloat` re-reads the chain. Milliseconds.
    pub max_float_poll_ms: u64,
    /// gRPC port: `grpc.health.v1` and go-livepeer's `net.TicketRedeemer`.
    pub grpc_listen: SocketAddr,
    /// Admin HTTP port: `/livez`, `/readyz`, `/metrics`.
    pub admin_listen: SocketAddr,
    /// Longest a SIGTERM drain may wait for an in-flight redemption. Milliseconds.
    pub drain_grace_ms: u64,
    /// Logs, traces and metrics.
    pub telemetry: TelemetryConfig,
}

impl Default for RedeemerConfig {
    fn default() -> Self {
        RedeemerConfig {
            bus_url: "redis://127.0.0.1:6379".to_owned(),
            redis_url: String::new(),
            rpc_url: "http://127.0.0.1:8545".to_owned(),
            controller: String::new(),
            signer_key: String::new(),
            signer_key_file: String::new(),
            recipient: String::new(),
            stream: WINNING_TICKETS_STREAM.to_owned(),
            group: livefarm_jobs::REDEEMER_GROUP.to_owned(),
            instance_id: String::new(),
            key_prefix: livefarm_jobs::REDEEMER_KEY_PREFIX.to_owned(),
            poll_interval_ms: 1_000,
            confirmations: 1,
            stuck_timeout_ms: 300_000,
            max_replacements: 1,
            fee_bump_percent: 11,
            gas_margin_percent: 120,
            ticket_validity_period: 0,
            lock_ttl_ms: 15_000,
            lock_renew_ms: 5_000,
            leader_election: "auto".to_owned(),
            lease_name: "livefarm-redeemer".to_owned(),
            lease_namespace: String::new(),
            max_float_poll_ms: 5_000,
            grpc_listen: SocketAddr::from(([0, 0, 0, 0], 9480)),
            admin_listen: SocketAddr::from(([0, 0, 0, 0], 9481)),
            drain_grace_ms: 25_000,
            telemetry: TelemetryConfig {
                service_name: "livefarm-redeemer".to_owned(),
                ..TelemetryConfig::default()
            },
        }
    }
}

impl RedeemerConfig {
    /// Checks the values that defaults and serde cannot (exit 64 when this fails).
    pub fn validate(&self) -> Result<(), RedeemerError> {
        let bad = |key: &'static str, reason: &str| RedeemerError::Config {
            key,
            reason: reason.to_owned(),
        };
        self.controller_address()?;
        if !self.recipient.is_empty() {
            self.recipient
                .parse::<Address>()
                .map_err(|_| bad("recipient", "not a hex address"))?;
        }
        if self.poll_interval_ms == 0 {
            return Err(bad("poll_interval_ms", "must be positive"));
        }
        if self.confirmations == 0 {
            return Err(bad("confirmations", "must be at least 1"));
        }
        if self.lock_renew_ms == 0 || self.lock_renew_ms >= self.lock_ttl_ms {
            return Err(bad(
                "lock_renew_ms",
                "must be positive and below lock_ttl_ms",
            ));
        }
        self.election()?;
        if self.fee_bump_percent < 10 {
            return Err(bad(
                "fee_bump_percent",
                "nodes refuse replacements raising the fee by less than 10%",
            ));
        }
        if self.gas_margin_percent < 100 {
            return Err(bad("gas_margin_percent", "must be at least 100"));
        }
        Ok(())
    }

    /// The leader election `leader_election` names, `auto` resolved.
    pub fn election(&self) -> Result<ElectionKind, RedeemerError> {
        match self.leader_election.as_str() {
            "redis" => Ok(ElectionKind::Redis),
            "kubernetes" => Ok(ElectionKind::Kubernetes),
            "auto" if livefarm_lease::in_cluster() => Ok(ElectionKind::Kubernetes),
            "auto" => Ok(ElectionKind::Redis),
            other => Err(RedeemerError::Config {
                key: "leader_election",
                reason: format!("{other:?}: expected auto, redis or kubernetes"),
            }),
        }
    }

    /// The Controller address.
    pub fn controller_address(&self) -> Result<Address, RedeemerError> {
        self.controller.parse().map_err(|_| RedeemerError::Config {
            key: "controller",
            reason: format!("{:?} is not a hex address", self.controller),
        })
    }

    /// The signer key, from `signer_key` or `signer_key_file`.
    pub fn signer_key(&self) -> Result<String, RedeemerError> {
        if !self.signer_key.is_empty() {
            return Ok(self.signer_key.trim().to_owned());
        }
        if self.signer_key_file.is_empty() {
            return Err(RedeemerError::Config {
                key: "signer_key",
                reason: "set LIVEFARM_SIGNER_KEY or signer_key_file".to_owned(),
            });
        }
        std::fs::read_to_string(&self.signer_key_file)
            .map(|s| s.trim().to_owned())
            .map_err(|e| RedeemerError::Config {
                key: "signer_key_file",
                reason: format!("cannot read {}: {e}", self.signer_key_file),
            })
    }

    /// The Redis URL of the state store.
    pub fn effective_redis_url(&self) -> &str {
        if self.redis_url.is_empty() {
            &self.bus_url
        } else {
            &self.redis_url
        }
    }

    /// This instance's id.
    pub fn effective_instance_id(&self) -> String {
        if !self.instance_id.is_empty() {
            return self.instance_id.clone();
        }
        let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "redeemer".to_owned());
        format!("{host}-{}", std::process::id())
    }

    pub(crate) fn poll_interval(&self) -> Duration {
        Duration::from_millis(self.poll_interval_ms)
    }
}

/// How the one active redeemer is chosen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ElectionKind {
    /// A lock with a fencing token in the store's Redis.
    Redis,
    /// A Kubernetes Lease.
    Kubernetes,
}

impl livefarm_runtime::ServiceConfig for RedeemerConfig {
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
    fn leader_election_is_named_or_follows_the_environment() {
        let with = |name: &str| RedeemerConfig {
            leader_election: name.to_owned(),
            ..RedeemerConfig::default()
        };
        assert_eq!(
            with("redis").election().expect("redis"),
            ElectionKind::Redis
        );
        assert_eq!(
            with("kubernetes").election().expect("kubernetes"),
            ElectionKind::Kubernetes
        );
        let auto = if livefarm_lease::in_cluster() {
            ElectionKind::Kubernetes
        } else {
            ElectionKind::Redis
        };
        assert_eq!(with("auto").election().expect("auto"), auto);
        let error = with("zookeeper").election().expect_err("unknown");
        assert!(error.to_string().contains("leader_election"), "{error}");
    }
}
