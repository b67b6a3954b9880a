//! `KubeLease::infer` from a kubeconfig, over https with a ServiceAccount's bearer token,
//! against a real Kubernetes API server (`livefarm_testkit::kube::ControlPlane`; skipped loudly
//! without its binaries unless LIVEFARM_REQUIRE_KUBE=1).
//!
//! It shows that kube's https client has a crypto provider (rustls on aws-lc-rs, no ring), that
//! it checks the server against the kubeconfig's CA, and that the namespace comes from the
//! kubeconfig context unless given. One test in its own binary, since it sets `KUBECONFIG` for
//! the whole process.

use std::path::{Path, PathBuf};
use std::time::Duration;

use livefarm_lease::{KubeLease, LeaseError};
use livefarm_testkit::kube::ControlPlane;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};

const CHAIN_VALUES: &str = "helm/livefarm/ci/chain-hpa-values.yaml";
const REDEEMER: &str = "livefarm-redeemer";

/// A self-signed CA that signed nothing the API server serves, as PEM.
fn unrelated_ca() -> String {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("ca params");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    CertifiedIssuer::self_signed(params, KeyPair::generate().expect("ca key"))
        .expect("ca certificate")
        .pem()
}

/// Writes a kubeconfig for `server` trusting the CA file `ca`, with `token` and `namespace`.
fn write_kubeconfig(
    dir: &Path,
    file: &str,
    server: &str,
    ca: &Path,
    token: &str,
    namespace: &str,
) -> PathBuf {
    let path = dir.join(file);
    let kubeconfig = format!(
        "apiVersion: v1
kind: Config
clusters:
  - name: test
    cluster:
      server: {server}
      certificate-authority: {ca}
users:
  - name: redeemer
    user:
      token: {token}
contexts:
  - name: test
    context:
      cluster: test
      user: redeemer
      namespace: {namespace}
current-context: test
",
        ca = ca.display()
    );
    std::fs::write(&path, kubeconfig).expect("write kubeconfig");
    path
}

#[tokio::test]
async fn infer_reads_the_kubeconfig_and_talks_https() {
    let Some(plane) = ControlPlane::start_or_skip(false) else {
        return;
    };
    let ns = plane.namespace("infer");
    plane.apply_chart(&ns, CHAIN_VALUES, "app.kubernetes.io/component=redeemer");
    let token = plane.kubectl(&["create", "token", REDEEMER, "-n", &ns], None);
    let token = token.trim();
    let dir = tempfile::tempdir().expect("temp dir");

    std::env::set_var(
        "KUBECONFIG",
        write_kubeconfig(
            dir.path(),
            "good",
            plane.url(),
            &plane.ca_cert(),
            token,
            &ns,
        ),
    );
    let lease = KubeLease::infer(None, REDEEMER).await.expect("infer");
    assert_eq!(lease.namespace(), ns, "namespace of the context");
    assert_eq!(lease.to_string(), format!("{ns}/{REDEEMER}"));
    let taken = lease
        .acquire("redeemer-0", Duration::from_secs(5))
        .await
        .expect("acquire over https")
        .expect("free lease");
    assert_eq!(
        lease.holder().await.expect("holder"),
        Some(("redeemer-0".to_owned(), taken))
    );
    let holder = plane.kubectl(
        &[
            "get",
            "lease",
            REDEEMER,
            "-n",
            &ns,
            "-o",
            "jsonpath={.spec.holderIdentity}",
        ],
        None,
    );
    assert_eq!(holder, "redeemer-0");

    // A namespace given explicitly wins over the context's (and there the account may not read).
    let other = KubeLease::infer(Some("default".to_owned()), REDEEMER)
        .await
        .expect("infer");
    assert_eq!(other.namespace(), "default");
    let error = other.holder().await.expect_err("403 in another namespace");
    assert_eq!(error.status_code(), Some(403), "{error}");

    // The API server refusing the credentials is an error naming the lease.
    std::env::set_var(
        "KUBECONFIG",
        write_kubeconfig(
            dir.path(),
            "bad-token",
            plane.url(),
            &plane.ca_cert(),
            "not-a-token",
            &ns,
        ),
    );
    let refused = KubeLease::infer(None, REDEEMER).await.expect("infer");
    let error = refused.holder().await.expect_err("401");
    assert_eq!(error.status_code(), Some(401), "{error}");
    assert!(
        error.to_string().contains(&format!("{ns}/{REDEEMER}")),
        "{error}"
    );

    // A server certificate that the kubeconfig's CA did not sign is refused.
    let wrong_ca = dir.path().join("wrong-ca.pem");
    std::fs::write(&wrong_ca, unrelated_ca()).expect("write ca");
    std::env::set_var(
        "KUBECONFIG",
        write_kubeconfig(dir.path(), "wrong-ca", plane.url(), &wrong_ca, token, &ns),
    );
    let untrusting = KubeLease::infer(None, REDEEMER).await.expect("infer");
    let error = untrusting
        .acquire("redeemer-1", Duration::from_secs(5))
        .await
        .expect_err("untrusted certificate");
    assert!(matches!(error, LeaseError::Request { .. }), "{error:?}");
    // Nothing was written by it: the lease is still redeemer-0's.
    assert_eq!(
        lease.holder().await.expect("holder").map(|(h, _)| h),
        Some("redeemer-0".to_owned())
    );
}
