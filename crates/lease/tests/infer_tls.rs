//! `KubeLease::infer` from a kubeconfig, over https with a bearer token, against the fake API
//! server of `livefarm_lease::testing` (a fake: no Kubernetes API server can run here).
//!
//! It shows that kube's https client has a crypto provider (rustls on aws-lc-rs, no ring), that
//! it checks the server against the kubeconfig's CA, and that the namespace comes from the
//! kubeconfig context unless given. One test in its own binary, since it sets `KUBECONFIG` for
//! the whole process.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use livefarm_lease::testing::Fake;
use livefarm_lease::{KubeLease, LeaseError};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use rustls::pki_types::PrivateKeyDer;
use tokio_rustls::TlsAcceptor;

/// A self-signed CA, as PEM, and a server certificate for 127.0.0.1 that it signed.
fn ca_and_server_config() -> (String, rustls::ServerConfig) {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("ca params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().expect("ca key"))
        .expect("ca certificate");
    let key = KeyPair::generate().expect("server key");
    let cert = CertificateParams::new(vec!["127.0.0.1".to_owned()])
        .expect("server params")
        .signed_by(&key, &ca)
        .expect("server certificate");
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("tls versions")
        .with_no_client_auth()
        .with_single_cert(
            vec![cert.der().clone()],
            PrivateKeyDer::Pkcs8(key.serialize_der().into()),
        )
        .expect("server tls config");
    (ca.pem(), config)
}

/// Serves the fake over https on a free loopback port; returns its address.
async fn serve_tls(fake: Arc<Fake>, config: rustls::ServerConfig) -> std::net::SocketAddr {
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let app = livefarm_lease::testing::router(fake);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind fake");
    let addr = listener.local_addr().expect("local addr");
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            let service = TowerToHyperService::new(app.clone());
            tokio::spawn(async move {
                // A client that rejects our certificate ends the handshake: nothing to serve.
                let Ok(tls) = acceptor.accept(stream).await else {
                    return;
                };
                let _ = auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(tls), service)
                    .await;
            });
        }
    });
    addr
}

/// Writes a kubeconfig for `server` trusting `ca_pem`, with a bearer token and a namespace.
fn write_kubeconfig(dir: &Path, file: &str, server: &str, ca_pem: &str) -> PathBuf {
    let ca = dir.join(format!("{file}.ca.pem"));
    std::fs::write(&ca, ca_pem).expect("write ca");
    let path = dir.join(file);
    let kubeconfig = format!(
        "apiVersion: v1
kind: Config
clusters:
  - name: fake
    cluster:
      server: {server}
      certificate-authority: {ca}
users:
  - name: redeemer
    user:
      token: test-token
contexts:
  - name: fake
    context:
      cluster: fake
      user: redeemer
      namespace: livefarm
current-context: fake
",
        ca = ca.display()
    );
    std::fs::write(&path, kubeconfig).expect("write kubeconfig");
    path
}

#[tokio::test]
async fn infer_reads_the_kubeconfig_and_talks_https() {
    let fake = Arc::new(Fake::default());
    *fake.bearer_token.lock().expect("fake state") = Some("test-token".to_owned());
    let (ca_pem, server_config) = ca_and_server_config();
    let addr = serve_tls(fake.clone(), server_config).await;
    let server = format!("https://{addr}");
    let dir = tempfile::tempdir().expect("temp dir");

    std::env::set_var(
        "KUBECONFIG",
        write_kubeconfig(dir.path(), "good", &server, &ca_pem),
    );
    let lease = KubeLease::infer(None, "redeemer").await.expect("infer");
    assert_eq!(lease.namespace(), "livefarm", "namespace of the context");
    assert_eq!(lease.to_string(), "livefarm/redeemer");
    let token = lease
        .acquire("redeemer-0", Duration::from_secs(5))
        .await
        .expect("acquire over https")
        .expect("free lease");
    assert_eq!(
        lease.holder().await.expect("holder"),
        Some(("redeemer-0".to_owned(), token))
    );
    let stored = fake.lease("redeemer").expect("stored by the fake");
    assert_eq!(stored["spec"]["holderIdentity"], "redeemer-0");

    // A namespace given explicitly wins over the context's.
    let other = KubeLease::infer(Some("other".to_owned()), "redeemer")
        .await
        .expect("infer");
    assert_eq!(other.namespace(), "other");
    assert_eq!(other.holder().await.expect("holder"), None);

    // The API server refusing the credentials is an error naming the lease.
    *fake.bearer_token.lock().expect("fake state") = Some("another-token".to_owned());
    let error = lease.holder().await.expect_err("401");
    assert_eq!(error.status_code(), Some(401), "{error}");
    assert!(error.to_string().contains("livefarm/redeemer"), "{error}");

    // A server certificate that the kubeconfig's CA did not sign is refused.
    *fake.bearer_token.lock().expect("fake state") = Some("test-token".to_owned());
    let requests = fake.requests.load(std::sync::atomic::Ordering::SeqCst);
    let (other_ca_pem, _) = ca_and_server_config();
    std::env::set_var(
        "KUBECONFIG",
        write_kubeconfig(dir.path(), "wrong-ca", &server, &other_ca_pem),
    );
    let untrusting = KubeLease::infer(None, "redeemer").await.expect("infer");
    let error = untrusting
        .acquire("redeemer-1", Duration::from_secs(5))
        .await
        .expect_err("untrusted certificate");
    assert!(matches!(error, LeaseError::Request { .. }), "{error:?}");
    assert_eq!(
        fake.requests.load(std::sync::atomic::Ordering::SeqCst),
        requests,
        "no request got through"
    );
}
