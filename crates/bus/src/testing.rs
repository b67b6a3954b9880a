//! Helpers for tests in other crates (feature `testing`): a private `redis-server` and a bus
//! connected to it. They panic with a clear message instead of returning errors, so a test
//! that needs Redis fails loudly when it is missing and never passes silently.

use std::sync::Arc;

pub use crate::server::{RedisServer, RedisServerConfig, RedisServerTls};
use crate::{BusOptions, JobBus};

/// Starts a `redis-server` without persistence on a free loopback port.
///
/// # Panics
/// If `redis-server` is missing or does not start.
pub fn start_redis() -> RedisServer {
    RedisServer::start().unwrap_or_else(|error| panic!("this test needs redis-server: {error}"))
}

/// Starts a private `redis-server` and connects a bus to it; keep the server alive as long
/// as the bus is used.
///
/// # Panics
/// If `redis-server` is missing, does not start, or the bus cannot connect.
pub async fn redis_bus(options: BusOptions) -> (RedisServer, Arc<dyn JobBus>) {
    let server = start_redis();
    let bus = crate::connect_with(&server.url(), options)
        .await
        .unwrap_or_else(|error| panic!("cannot connect to test redis-server: {error}"));
    (server, bus)
}

/// A memory bus no other test shares.
pub fn memory_bus(options: BusOptions) -> Arc<dyn JobBus> {
    Arc::new(crate::MemoryBus::new(options))
}
