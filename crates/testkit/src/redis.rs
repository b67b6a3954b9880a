//! The one `redis-server` launcher: the bus's, behind its `testing` feature.

pub use livefarm_bus::testing::{
    memory_bus, redis_bus, start_redis, RedisServer, RedisServerConfig,
};
