//! One way to open Redis, for the bus and for every service that keeps state in Redis
//! (registry, indexer, redeemer): URL parsing, TLS, connect with a timeout, the connection
//! manager's settings and errors that say which URL failed (without its credentials).
//!
//! URLs: `redis://[user:password@]host[:port][/db]`, `redis+unix:///path`, or
//! `rediss://...` for TLS. TLS checks the server's certificate against the system's roots
//! (`/etc/ssl/certs` and the like); `?ca_file=/path/ca.pem` trusts the certificates in that
//! PEM file instead (a private CA). Certificate checks cannot be turned off.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;

/// The URL query parameter naming a PEM file of CA certificates to trust for `rediss://`.
pub const CA_FILE_PARAM: &str = "ca_file";

/// Giving up on connecting after this long.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Replies slower than this count as a dead server.
pub const RESPONSE_TIMEOUT: Duration = Duration::from_secs(5);

/// Opening Redis failed.
#[derive(Debug, thiserror::Error)]
pub enum RedisConnectError {
    /// The URL, or the CA file it names, cannot be used.
    #[error("invalid redis url {url:?}: {reason}")]
    InvalidUrl {
        /// The URL without its credentials.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The server could not be reached or did not answer.
    #[error("redis at {url}: {source}")]
    Redis {
        /// The URL without its credentials.
        url: String,
        /// What the client reported.
        #[source]
        source: redis::RedisError,
    },
}

impl RedisConnectError {
    /// Whether trying again later may succeed (the server is down or restarting).
    pub fn is_retryable(&self) -> bool {
        match self {
            RedisConnectError::InvalidUrl { .. } => false,
            RedisConnectError::Redis { source, .. } => is_transient(source),
        }
    }
}

/// Whether `error` may go away on its own (connection refused or dropped, timeout, server
/// loading its data or failing over).
pub fn is_transient(error: &redis::RedisError) -> bool {
    use redis::{ErrorKind, ServerErrorKind};
    match error.kind() {
        ErrorKind::Io => true,
        ErrorKind::Server(kind) => matches!(
            kind,
            ServerErrorKind::BusyLoading
                | ServerErrorKind::TryAgain
                | ServerErrorKind::MasterDown
                | ServerErrorKind::ClusterDown
                | ServerErrorKind::ReadOnly
        ),
        _ => error.is_connection_dropped() || error.is_timeout() || error.is_connection_refusal(),
    }
}

/// A parsed Redis URL: the client for it and, for `rediss://`, the roots to trust.
#[derive(Debug, Clone)]
pub struct RedisUrl {
    client: redis::Client,
    tls: Option<Arc<rustls::ClientConfig>>,
    display: String,
}

impl RedisUrl {
    /// Parses `url`, reading the CA file it names, if any.
    pub fn parse(url: &str) -> Result<Self, RedisConnectError> {
        let display = redact(url);
        let invalid = |reason: String| RedisConnectError::InvalidUrl {
            url: display.clone(),
            reason,
        };
        let (base, ca_file) = take_ca_file(url);
        let tls_url = base.starts_with("rediss://");
        if ca_file.is_some() && !tls_url {
            return Err(invalid(format!("{CA_FILE_PARAM} needs a rediss:// url")));
        }
        let client = match &ca_file {
            None => redis::Client::open(base.as_str()),
            Some(path) => {
                let pem = std::fs::read(path)
                    .map_err(|e| invalid(format!("cannot read {}: {e}", path.display())))?;
                let certificates = redis::TlsCertificates {
                    client_tls: None,
                    root_cert: Some(pem),
                };
                redis::Client::build_with_tls(base.as_str(), certificates)
            }
        }
        .map_err(|error| invalid(error.to_string()))?;
        let tls = match client.get_connection_info().addr() {
            redis::ConnectionAddr::TcpTls { insecure: true, .. } => {
                return Err(invalid(
                    "certificate checks cannot be turned off; trust a private CA with ca_file"
                        .to_owned(),
                ))
            }
            redis::ConnectionAddr::TcpTls { .. } => {
                Some(tls_config(ca_file.as_deref()).map_err(|reason| invalid(reason.to_string()))?)
            }
            _ => None,
        };
        Ok(Self {
            client,
            tls,
            display,
        })
    }

    /// The redis-rs client for this URL.
    pub fn client(&self) -> &redis::Client {
        &self.client
    }

    /// The TLS settings for `rediss://` URLs; `None` for plain ones.
    pub fn tls(&self) -> Option<&Arc<rustls::ClientConfig>> {
        self.tls.as_ref()
    }

    /// The URL without its credentials, for logs and errors.
    pub fn display(&self) -> &str {
        &self.display
    }

    /// Opens a multiplexed connection that reconnects by itself and checks that the server
    /// answers.
    pub async fn manager(&self) -> Result<ConnectionManager, RedisConnectError> {
        let failed = |source| RedisConnectError::Redis {
            url: self.display.clone(),
            source,
        };
        let mut conn = ConnectionManager::new_with_config(self.client.clone(), manager_config())
            .await
            .map_err(failed)?;
        redis::cmd("PING")
            .query_async::<()>(&mut conn)
            .await
            .map_err(failed)?;
        Ok(conn)
    }
}

/// Parses `url` and opens a checked, self-reconnecting connection to it (see
/// [`RedisUrl::manager`]).
pub async fn connect(url: &str) -> Result<ConnectionManager, RedisConnectError> {
    RedisUrl::parse(url)?.manager().await
}

/// The connection manager's settings: few, short retries, so a call made while Redis is
/// down fails within about a second with a retryable error instead of hanging; the next
/// call starts a fresh round of attempts.
pub fn manager_config() -> ConnectionManagerConfig {
    ConnectionManagerConfig::new()
        .set_number_of_retries(3)
        .set_min_delay(Duration::from_millis(50))
        .set_max_delay(Duration::from_millis(500))
        .set_connection_timeout(Some(CONNECT_TIMEOUT))
        .set_response_timeout(Some(RESPONSE_TIMEOUT))
}

/// `redis://user:secret@host` without the credentials, for logs.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            format!("{}{}", &url[..scheme + 3], &url[at + 1..])
        }
        _ => url.to_owned(),
    }
}

/// `url` without the `ca_file` query parameter, and the file it names.
fn take_ca_file(url: &str) -> (String, Option<PathBuf>) {
    let Some((base, query)) = url.split_once('?') else {
        return (url.to_owned(), None);
    };
    let (query, fragment) = match query.split_once('#') {
        Some((query, fragment)) => (query, Some(fragment)),
        None => (query, None),
    };
    let mut ca_file = None;
    let mut rest = Vec::new();
    for pair in query.split('&').filter(|pair| !pair.is_empty()) {
        match pair.split_once('=') {
            Some((CA_FILE_PARAM, path)) => ca_file = Some(PathBuf::from(path)),
            _ => rest.push(pair),
        }
    }
    let mut out = base.to_owned();
    if !rest.is_empty() {
        out.push('?');
        out.push_str(&rest.join("&"));
    }
    if let Some(fragment) = fragment {
        out.push('#');
        out.push_str(fragment);
    }
    (out, ca_file)
}

/// Why TLS settings could not be built.
#[derive(Debug, thiserror::Error)]
enum TlsSetupError {
    #[error("cannot read ca file {path}: {reason}")]
    CaFile { path: String, reason: String },
    #[error("no usable root certificates: {0}")]
    Roots(String),
    #[error("tls setup: {0}")]
    Rustls(#[from] rustls::Error),
}

/// Client TLS settings trusting the certificates in `ca_file`, or the system's roots.
fn tls_config(ca_file: Option<&Path>) -> Result<Arc<rustls::ClientConfig>, TlsSetupError> {
    let mut roots = rustls::RootCertStore::empty();
    match ca_file {
        Some(path) => {
            let ca_error = |reason: String| TlsSetupError::CaFile {
                path: path.display().to_string(),
                reason,
            };
            let certificates = CertificateDer::pem_file_iter(path)
                .and_then(Iterator::collect::<Result<Vec<_>, _>>)
                .map_err(|e| ca_error(e.to_string()))?;
            if certificates.is_empty() {
                return Err(ca_error("no certificates in it".to_owned()));
            }
            for certificate in certificates {
                roots.add(certificate)?;
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            let (added, _) = roots.add_parsable_certificates(found.certs);
            if added == 0 {
                let reason = found
                    .errors
                    .first()
                    .map_or_else(|| "none found".to_owned(), ToString::to_string);
                return Err(TlsSetupError::Roots(reason));
            }
        }
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    // redis-rs builds its own TLS settings from the process-wide provider.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_redacted() {
        assert_eq!(
            redact("redis://u:secret@host:6379/0"),
            "redis://host:6379/0"
        );
        assert_eq!(redact("redis://host:6379"), "redis://host:6379");
    }

    #[test]
    fn ca_file_is_taken_out_of_the_url() {
        let (base, ca) = take_ca_file("rediss://h:1/2?protocol=resp2&ca_file=/x/ca.pem#frag");
        assert_eq!(base, "rediss://h:1/2?protocol=resp2#frag");
        assert_eq!(ca, Some(PathBuf::from("/x/ca.pem")));
        assert_eq!(take_ca_file("redis://h"), ("redis://h".to_owned(), None));
    }

    #[test]
    fn bad_urls_say_why_without_credentials() {
        for (url, needle) in [
            ("redis://u:pw@h?ca_file=/x.pem", "needs a rediss://"),
            ("rediss://u:pw@h?ca_file=/nonexistent/ca.pem", "cannot read"),
            ("rediss://u:pw@h/#insecure", "cannot be turned off"),
        ] {
            let error = RedisUrl::parse(url).expect_err(url).to_string();
            assert!(error.contains(needle), "{url}: {error}");
            assert!(!error.contains("pw"), "{error}");
        }
    }
}
