//! TLS for the orchestrator port (§2): a self-signed ECDSA P-256 certificate made at every
//! start, as go-livepeer does (`IsCA`, the service host as its name, 8765 h validity), or a
//! certificate the operator provides; ALPN offers h2 then http/1.1. Also the broadcaster-side
//! client config, which like go-livepeer accepts any certificate.

use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose,
    SanType, PKCS_ECDSA_P256_SHA256,
};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

use crate::error::OrchestratorError;

/// How long the self-signed certificate is valid (go-livepeer: 8765 h).
pub const SELF_SIGNED_VALIDITY: Duration = Duration::from_secs(8765 * 3600);

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

fn tls_error(what: &str, error: impl std::fmt::Display) -> OrchestratorError {
    OrchestratorError::Tls(format!("{what}: {error}"))
}

/// A PEM certificate and its PEM private key.
#[derive(Clone)]
pub struct CertifiedKey {
    pub cert_pem: String,
    pub key_pem: String,
}

impl std::fmt::Debug for CertifiedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertifiedKey").finish_non_exhaustive()
    }
}

/// A fresh self-signed certificate for `host` (a DNS name or an IP address).
pub fn self_signed(host: &str) -> Result<CertifiedKey, OrchestratorError> {
    let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)
        .map_err(|e| tls_error("generating the key", e))?;
    let mut params = CertificateParams::default();
    params.subject_alt_names = vec![match host.parse::<IpAddr>() {
        Ok(ip) => SanType::IpAddress(ip),
        Err(_) => SanType::DnsName(
            host.to_string()
                .try_into()
                .map_err(|e| tls_error("certificate host name", e))?,
        ),
    }];
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::minutes(5);
    params.not_after = now + SELF_SIGNED_VALIDITY;
    let cert = params
        .self_signed(&key)
        .map_err(|e| tls_error("signing the certificate", e))?;
    Ok(CertifiedKey {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    })
}

/// Reads a provided certificate chain and key (PEM files).
pub fn load(cert: &Path, key: &Path) -> Result<CertifiedKey, OrchestratorError> {
    let read = |path: &Path| {
        std::fs::read_to_string(path)
            .map_err(|e| tls_error(&format!("reading {}", path.display()), e))
    };
    Ok(CertifiedKey {
        cert_pem: read(cert)?,
        key_pem: read(key)?,
    })
}

/// Writes `cert.pem` and `key.pem` into `dir` (as go-livepeer does in its work directory),
/// the key readable by the owner only.
pub fn write(certified: &CertifiedKey, dir: &Path) -> Result<(), OrchestratorError> {
    std::fs::create_dir_all(dir).map_err(|e| tls_error("creating the certificate directory", e))?;
    std::fs::write(dir.join("cert.pem"), &certified.cert_pem)
        .map_err(|e| tls_error("writing cert.pem", e))?;
    let key_path = dir.join("key.pem");
    std::fs::write(&key_path, &certified.key_pem).map_err(|e| tls_error("writing key.pem", e))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&key_path, std::fs::Permissions::from_mode(0o600))
            .map_err(|e| tls_error("restricting key.pem", e))?;
    }
    Ok(())
}

/// The server config: the certificate, ALPN h2 and http/1.1.
pub fn server_config(
    certified: &CertifiedKey,
) -> Result<Arc<rustls::ServerConfig>, OrchestratorError> {
    let certs = CertificateDer::pem_slice_iter(certified.cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| tls_error("parsing the certificate", e))?;
    if certs.is_empty() {
        return Err(tls_error(
            "parsing the certificate",
            "no certificate in the PEM",
        ));
    }
    let key = PrivateKeyDer::from_pem_slice(certified.key_pem.as_bytes())
        .map_err(|e| tls_error("parsing the private key", e))?;
    let mut config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| tls_error("tls versions", e))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| tls_error("certificate and key", e))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Accepts any server certificate, as a go-livepeer broadcaster does
/// (`InsecureSkipVerify`); handshake signatures are still checked.
#[derive(Debug)]
struct AcceptAnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// A client config that trusts any certificate, offering `alpn` (e.g. `[b"h2"]` for gRPC).
pub fn insecure_client_config(
    alpn: &[&[u8]],
) -> Result<Arc<rustls::ClientConfig>, OrchestratorError> {
    let provider = provider();
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| tls_error("tls versions", e))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate(provider)))
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn self_signed_certificate_loads_into_a_server_config() {
        let certified = self_signed("orch.example").expect("generated");
        assert!(certified
            .cert_pem
            .starts_with("-----BEGIN CERTIFICATE-----"));
        let config = server_config(&certified).expect("valid pair");
        assert_eq!(config.alpn_protocols[0], b"h2");
        let ip = self_signed("127.0.0.1").expect("an ip works too");
        server_config(&ip).expect("valid pair");
        let dir = tempfile::tempdir().expect("tempdir");
        write(&certified, dir.path()).expect("written");
        let back = load(&dir.path().join("cert.pem"), &dir.path().join("key.pem")).expect("read");
        assert_eq!(back.cert_pem, certified.cert_pem);
    }

    #[test]
    fn mismatched_or_garbage_pem_is_a_clear_error() {
        let a = self_signed("a.example").expect("generated");
        let b = self_signed("b.example").expect("generated");
        let mixed = CertifiedKey {
            cert_pem: a.cert_pem,
            key_pem: b.key_pem,
        };
        let error = server_config(&mixed).expect_err("key does not match");
        assert!(error.to_string().contains("certificate and key"), "{error}");
        let garbage = CertifiedKey {
            cert_pem: "nope".into(),
            key_pem: "nope".into(),
        };
        assert!(server_config(&garbage).is_err());
    }
}
