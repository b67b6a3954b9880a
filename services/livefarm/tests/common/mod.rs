//! Helpers shared by the `livefarm` command's process tests: their form of `livefarm-testkit`'s
//! HTTP/1.1 client.

// Each test binary uses what it needs.
#![allow(dead_code)]

use std::net::SocketAddr;

/// One HTTP/1.1 request with `headers` as raw `Name: value\r\n` lines; the status and body,
/// or `None` when the connection fails.
pub fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &str,
    body: &[u8],
) -> Option<(u16, Vec<u8>)> {
    let headers: Vec<(&str, &str)> = headers
        .split("\r\n")
        .filter_map(|line| line.split_once(": "))
        .collect();
    let reply = livefarm_testkit::http_request(addr, method, path, &headers, body).ok()?;
    Some((reply.status, reply.body))
}
