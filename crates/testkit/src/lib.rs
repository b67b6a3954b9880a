//! Livefarm's one test harness, a dev-dependency of every crate whose tests need it:
//! [`wait_until`] (one way to wait for the condition a test claims), free loopback ports, the
//! `redis-server` launcher (re-exported from the bus's `testing` feature, so there is one),
//! service binaries run as child processes that die with the test, a minimal HTTP/1.1 client,
//! and a private Kubernetes control plane ([`kube::ControlPlane`]). The in-process cluster built
//! on these is `livefarm-integration-tests`' `Sandbox`.
//!
//! Helpers panic with a message that says what failed instead of returning errors, so a test
//! that cannot get what it needs fails loudly and never passes silently; only the HTTP client
//! returns what failed, for tests that wait for a server to come up.

mod http;
pub mod kube;
mod net;
mod process;
mod redis;
mod wait;

pub use http::{http_request, http_request_async, HttpReply};
pub use net::{free_addr, free_port};
pub use process::{service_bin, ServiceProcess};
pub use redis::{memory_bus, redis_bus, start_redis, RedisServer, RedisServerConfig};
pub use wait::{wait_until, wait_until_blocking, Condition, POLL_INTERVAL};
