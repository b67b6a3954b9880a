//! The SSRF guard: a webhook URL must not make the api call into its own network. A target
//! host is resolved and refused when any of its addresses is loopback, private (RFC 1918),
//! link-local (cloud metadata at 169.254.169.254), unique-local IPv6, CGNAT (100.64/10),
//! unspecified, multicast, broadcast or reserved, including those addresses written as
//! IPv4-mapped, IPv4-compatible or NAT64 IPv6. The check runs when a webhook is created or
//! replaced (a clear 422) and again when each attempt connects: the HTTP client resolves
//! through [`GuardedResolver`], so it only ever connects to an address vetted at that moment
//! (a name re-pointed at 127.0.0.1 after creation is still refused). Off with
//! `allow_private_targets`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use url::{Host, Url};

/// Why a target is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    /// The URL has no host.
    #[error("url has no host")]
    NoHost,
    /// The host's name does not resolve.
    #[error("cannot resolve host {host:?}: {reason}")]
    Unresolvable {
        /// The host.
        host: String,
        /// The resolver's error.
        reason: String,
    },
    /// The host is, or resolves to, an address the guard refuses.
    #[error("url host {host:?} resolves to {addr}, a {kind} address; webhooks may only target public addresses")]
    Forbidden {
        /// The host.
        host: String,
        /// The refused address.
        addr: IpAddr,
        /// What kind of address it is.
        kind: &'static str,
    },
}

fn v4_kind(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = ip.octets();
    Some(match (a, b, c) {
        _ if ip.is_unspecified() || a == 0 => "unspecified",
        _ if ip.is_loopback() => "loopback",
        _ if ip.is_private() => "private",
        _ if ip.is_link_local() => "link-local",
        (100, 64..=127, _) => "shared (CGNAT)",
        (192, 0, 0) => "IETF protocol",
        (198, 18..=19, _) => "benchmarking",
        _ if ip.is_multicast() => "multicast",
        _ if ip.is_broadcast() || a >= 240 => "reserved",
        _ => return None,
    })
}

/// The kind of address `ip` is when the guard refuses it; `None` for a public address.
pub fn forbidden_kind(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => v4_kind(v4),
        IpAddr::V6(v6) => v6_kind(v6),
    }
}

fn v6_kind(ip: Ipv6Addr) -> Option<&'static str> {
    let seg = ip.segments();
    if ip.is_unspecified() {
        return Some("unspecified");
    }
    if ip.is_loopback() {
        return Some("loopback");
    }
    // IPv4-mapped ::ffff:a.b.c.d, IPv4-compatible ::a.b.c.d, NAT64 64:ff9b::a.b.c.d: judged
    // by the IPv4 address they reach
    let embedded = Ipv4Addr::new(
        (seg[6] >> 8) as u8,
        seg[6] as u8,
        (seg[7] >> 8) as u8,
        seg[7] as u8,
    );
    if seg[..5] == [0; 5] && seg[5] == 0xffff {
        return v4_kind(embedded);
    }
    if seg[..6] == [0; 6] {
        // deprecated since 2006; nothing public is reached this way
        return Some("IPv4-compatible");
    }
    if seg[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return v4_kind(embedded);
    }
    match seg[0] {
        s if s & 0xfe00 == 0xfc00 => Some("unique-local"),
        s if s & 0xffc0 == 0xfe80 => Some("link-local"),
        s if s & 0xffc0 == 0xfec0 => Some("site-local"),
        s if s & 0xff00 == 0xff00 => Some("multicast"),
        _ => None,
    }
}

/// Refuses `addr` for `host` unless private targets are allowed.
fn vet(host: &str, addr: IpAddr, allow_private: bool) -> Result<(), TargetError> {
    match forbidden_kind(addr) {
        Some(kind) if !allow_private => Err(TargetError::Forbidden {
            host: host.to_owned(),
            addr,
            kind,
        }),
        _ => Ok(()),
    }
}

/// Resolves `host` and vets every address (one bad address refuses the host: a name that
/// resolves to both a public and a private address could be made to reach the private one).
async fn resolve_vetted(host: &str, allow_private: bool) -> Result<Vec<SocketAddr>, TargetError> {
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, 0))
        .await
        .map_err(|e| TargetError::Unresolvable {
            host: host.to_owned(),
            reason: e.to_string(),
        })?
        .collect();
    if addrs.is_empty() {
        return Err(TargetError::Unresolvable {
            host: host.to_owned(),
            reason: "no addresses".to_owned(),
        });
    }
    for addr in &addrs {
        vet(host, addr.ip(), allow_private)?;
    }
    Ok(addrs)
}

/// Checks a webhook target: its host must be a public address or resolve only to public
/// addresses, unless `allow_private` (then nothing is resolved).
pub async fn check_target(url: &Url, allow_private: bool) -> Result<(), TargetError> {
    if allow_private {
        return Ok(());
    }
    match url.host().ok_or(TargetError::NoHost)? {
        Host::Ipv4(ip) => vet(&ip.to_string(), IpAddr::V4(ip), false),
        Host::Ipv6(ip) => vet(&ip.to_string(), IpAddr::V6(ip), false),
        Host::Domain(name) => resolve_vetted(name, false).await.map(|_| ()),
    }
}

/// The HTTP client's resolver: every name is resolved and vetted at connect time.
#[derive(Debug, Clone, Copy)]
pub(crate) struct GuardedResolver {
    pub(crate) allow_private: bool,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow_private = self.allow_private;
        Box::pin(async move {
            let addrs = resolve_vetted(name.as_str(), allow_private).await?;
            let addrs: Addrs = Box::new(addrs.into_iter());
            Ok(addrs)
        })
    }
}

/// The guard's refusal inside an HTTP client error, if that is what it is.
pub(crate) fn refusal_in(error: &(dyn std::error::Error + 'static)) -> Option<TargetError> {
    let mut next = Some(error);
    while let Some(error) = next {
        if let Some(refused) = error.downcast_ref::<TargetError>() {
            return Some(refused.clone());
        }
        next = error.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(url: &str) -> Url {
        Url::parse(url).expect("url")
    }

    #[test]
    fn private_and_special_addresses_are_refused() {
        for ip in [
            "127.0.0.1",
            "127.8.9.10",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "100.127.255.254",
            "0.0.0.0",
            "224.0.0.1",
            "255.255.255.255",
            "240.0.0.1",
            "::1",
            "::",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::ffff:169.254.169.254",
            "::127.0.0.1",
            "64:ff9b::a9fe:a9fe",
        ] {
            let ip: IpAddr = ip.parse().expect("ip");
            assert!(forbidden_kind(ip).is_some(), "{ip} allowed");
        }
        for ip in [
            "93.184.216.34",
            "8.8.8.8",
            "100.63.255.255",
            "100.128.0.1",
            "172.32.0.1",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
        ] {
            let ip: IpAddr = ip.parse().expect("ip");
            assert_eq!(forbidden_kind(ip), None, "{ip} refused");
        }
    }

    #[tokio::test]
    async fn urls_are_checked_by_host() {
        for url in [
            "http://127.0.0.1/hook",
            "http://10.0.0.8:8080/hook",
            "http://169.254.169.254/latest/meta-data",
            "http://[::1]/hook",
            "http://[::ffff:127.0.0.1]/hook",
            // the URL parser reads these as 127.0.0.1 too
            "http://2130706433/hook",
            "http://0x7f.1/hook",
            "http://localhost:9/hook",
        ] {
            let error = check_target(&parse(url), false).await.expect_err(url);
            assert!(
                matches!(error, TargetError::Forbidden { .. }),
                "{url}: {error}"
            );
            check_target(&parse(url), true).await.expect("allowed");
        }
        check_target(&parse("https://93.184.216.34/hook"), false)
            .await
            .expect("public address");
        let unresolvable = check_target(&parse("https://no-such-host.invalid/hook"), false)
            .await
            .expect_err("invalid tld");
        assert!(
            matches!(unresolvable, TargetError::Unresolvable { .. }),
            "{unresolvable}"
        );
    }

    #[test]
    fn refusals_are_found_in_error_chains() {
        #[derive(Debug, thiserror::Error)]
        #[error("outer")]
        struct Outer(#[source] TargetError);
        let inner = TargetError::NoHost;
        assert_eq!(refusal_in(&Outer(inner.clone())), Some(inner));
        assert_eq!(refusal_in(&std::fmt::Error), None);
    }
}
