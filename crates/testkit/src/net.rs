//! Free loopback ports for the services a test starts.

use std::net::{Ipv4Addr, SocketAddr, TcpListener};

/// A loopback port nothing listens on right now. Another process may take it before the test
/// binds it; a service that fails with "address in use" should be started again on a new one.
pub fn free_port() -> u16 {
    free_addr().port()
}

/// `127.0.0.1:<port>` for a [`free_port`].
pub fn free_addr() -> SocketAddr {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|listener| listener.local_addr())
        .unwrap_or_else(|error| panic!("no free loopback port: {error}"))
}
