//! The indexer's configuration: one serde struct with defaults, loaded in layers by
//! `livefarm_runtime::load` (defaults, TOML file, `LIVEFARM_*` environment, `--set`).

use std::net::SocketAddr;
use std::time::Duration;

use alloy::primitives::Address;
use livefarm_telemetry::TelemetryConfig;
use serde::{Deserialize, Serialize};

use crate::error::IndexerError;
use crate::follower::{ContractsSource, FollowerOptions};
use crate::state::Contracts;

/// Everything the indexer can be told.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct IndexerConfig {
    /// JSON-RPC endpoint (HTTP) of the chain (an Arbitrum node in production).
    pub rpc_url: String,
    /// Controller address; the other contracts are resolved through it. Empty: give all four
    /// addresses below.
    pub controller: String,
    /// TicketBroker address (overrides the Controller's).
    pub ticket_broker: String,
    /// RoundsManager address (overrides the Controller's).
    pub rounds_manager: String,
    /// BondingManager address (overrides the Controller's).
    pub bonding_manager: String,
    /// ServiceRegistry address (overrides the Controller's).
    pub service_registry: String,
    /// First block to index when nothing is stored (the deployment block of the contracts).
    pub start_block: u64,
    /// Blocks behind the head the indexer stays (0 on dev chains).
    pub confirmations: u64,
    /// Recent blocks kept with undo journals; a deeper reorg re-indexes from `start_block`.
    pub reorg_window: u64,
    /// Largest `eth_getLogs` block range; ranges the node refuses are halved further.
    pub max_block_range: u64,
    /// `eth_getLogs` requests in flight during a backfill.
    pub max_concurrent_requests: usize,
    /// Blocks per backfill step; the state is saved after each.
    pub backfill_batch_blocks: u64,
    /// Pause between head polls. Milliseconds.
    pub poll_interval_ms: u64,
    /// WebSocket endpoint (`ws://`, `wss://`) of the chain; its `newHeads` subscription wakes
    /// the follower at once, polling stays as the fallback. Empty: polling only.
    pub ws_url: String,
    /// Redis holding cursor and state (`redis://host:port[/db]`); empty: memory only (a
    /// restart re-indexes).
    pub redis_url: String,
    /// Prefix of the Redis keys.
    pub redis_key_prefix: String,
    /// Job bus new blocks and rounds are published on; empty: not published.
    pub bus_url: String,
    /// Bus stream of block and round events.
    pub events_stream: String,
    /// gRPC port: `grpc.health.v1` and `livefarm.chain.v1.ChainIndex`.
    pub grpc_listen: SocketAddr,
    /// Admin HTTP port: `/livez`, `/readyz`, `/metrics`.
    pub admin_listen: SocketAddr,
    /// Logs and traces.
    pub telemetry: TelemetryConfig,
}

impl Default for IndexerConfig {
    fn default() -> Self {
        Self {
            rpc_url: "http://127.0.0.1:8545".to_owned(),
            controller: String::new(),
            ticket_broker: String::new(),
            rounds_manager: String::new(),
            bonding_manager: String::new(),
            service_registry: String::new(),
            start_block: 0,
            confirmations: 0,
            reorg_window: 64,
            max_block_range: 2000,
            max_concurrent_requests: 4,
            backfill_batch_blocks: 50_000,
            poll_interval_ms: 1000,
            ws_url: String::new(),
            redis_url: "redis://127.0.0.1:6379".to_owned(),
            redis_key_prefix: livefarm_jobs::INDEXER_KEY_PREFIX.to_owned(),
            bus_url: String::new(),
            events_stream: crate::EVENTS_STREAM.to_owned(),
            grpc_listen: SocketAddr::from(([0, 0, 0, 0], 9470)),
            admin_listen: SocketAddr::from(([0, 0, 0, 0], 9471)),
            telemetry: TelemetryConfig {
                service_name: "livefarm-indexer".to_owned(),
                ..TelemetryConfig::default()
            },
        }
    }
}

fn parse_address(key: &'static str, value: &str) -> Result<Option<Address>, IndexerError> {
    if value.is_empty() {
        return Ok(None);
    }
    value.parse().map(Some).map_err(|e| IndexerError::Config {
        key,
        reason: format!("{value}: {e}"),
    })
}

impl IndexerConfig {
    /// Checks the values that defaults and serde cannot (exit 64 when this fails).
    pub fn validate(&self) -> Result<(), IndexerError> {
        self.contracts_source()?;
        let bad = |key: &'static str, reason: &str| IndexerError::Config {
            key,
            reason: reason.to_owned(),
        };
        if self.max_block_range == 0 {
            return Err(bad("max_block_range", "must be at least 1"));
        }
        if self.max_concurrent_requests == 0 {
            return Err(bad("max_concurrent_requests", "must be at least 1"));
        }
        if self.backfill_batch_blocks == 0 {
            return Err(bad("backfill_batch_blocks", "must be at least 1"));
        }
        if self.reorg_window == 0 {
            return Err(bad("reorg_window", "must be at least 1"));
        }
        if self.poll_interval_ms == 0 {
            return Err(bad("poll_interval_ms", "must be at least 1"));
        }
        if !self.ws_url.is_empty() {
            crate::ws::validate_url(&self.ws_url)?;
        }
        if self.redis_key_prefix.is_empty() {
            return Err(bad("redis_key_prefix", "must not be empty"));
        }
        Ok(())
    }

    /// The Controller, or the four explicit addresses.
    pub fn contracts_source(&self) -> Result<ContractsSource, IndexerError> {
        let explicit = [
            parse_address("ticket_broker", &self.ticket_broker)?,
            parse_address("rounds_manager", &self.rounds_manager)?,
            parse_address("bonding_manager", &self.bonding_manager)?,
            parse_address("service_registry", &self.service_registry)?,
        ];
        if let [Some(tb), Some(rm), Some(bm), Some(sr)] = explicit {
            return Ok(ContractsSource::Explicit(Contracts {
                ticket_broker: tb,
                rounds_manager: rm,
                bonding_manager: bm,
                service_registry: sr,
            }));
        }
        match parse_address("controller", &self.controller)? {
            Some(c) => Ok(ContractsSource::Controller(c)),
            None => Err(IndexerError::Config {
                key: "controller",
                reason: "set the Controller address, or all four contract addresses".into(),
            }),
        }
    }

    /// The follower's options.
    pub fn follower_options(&self) -> Result<FollowerOptions, IndexerError> {
        let mut o = FollowerOptions::new(self.rpc_url.clone(), self.contracts_source()?);
        o.start_block = self.start_block;
        o.confirmations = self.confirmations;
        o.reorg_window = self.reorg_window;
        o.max_block_range = self.max_block_range;
        o.concurrency = self.max_concurrent_requests;
        o.batch_blocks = self.backfill_batch_blocks;
        o.poll_interval = Duration::from_millis(self.poll_interval_ms);
        o.ws_url = self.ws_url.clone();
        o.key_prefix = self.redis_key_prefix.clone();
        o.events_stream = self.events_stream.clone();
        Ok(o)
    }
}

impl livefarm_runtime::ServiceConfig for IndexerConfig {
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
    fn defaults_need_a_controller_and_round_trip() {
        let mut c = IndexerConfig::default();
        assert!(c.validate().is_err(), "no contract addresses given");
        c.controller = "0xD8E8328501E9645d16Cf49539efC04f734606ee4".into();
        c.validate().expect("valid with a controller");
        let text = toml::to_string(&c).expect("serialises");
        let back: IndexerConfig = toml::from_str(&text).expect("parses");
        assert_eq!(back, c);
        c.ws_url = "ws://127.0.0.1:8545".into();
        c.validate().expect("a ws url");
        assert_eq!(c.follower_options().expect("options").ws_url, c.ws_url);
        c.ws_url = "http://127.0.0.1:8545".into();
        assert!(c.validate().is_err(), "not a websocket url");
        c.ws_url.clear();
        c.max_block_range = 0;
        assert!(c.validate().is_err());
    }

    #[test]
    fn explicit_addresses_win_over_the_controller() {
        let c = IndexerConfig {
            ticket_broker: "0xa8bB618B1520E284046F3dFc448851A1Ff26e41B".into(),
            rounds_manager: "0xdd6f56DcC28D3F5f27084381fE8Df634985cc39f".into(),
            bonding_manager: "0x35Bcf3c30594191d53231E4FF333E8A770453e40".into(),
            service_registry: "0xC92d3A360b8f9e083bA64DE15d95Cf8180897431".into(),
            ..IndexerConfig::default()
        };
        assert!(matches!(
            c.contracts_source(),
            Ok(ContractsSource::Explicit(_))
        ));
        let bad = IndexerConfig {
            controller: "0x12".into(),
            ..IndexerConfig::default()
        };
        assert!(bad.validate().is_err());
    }
}
