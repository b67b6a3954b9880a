//! Leader election against a real Kubernetes API server (kube-apiserver v1.36.2 on etcd,
//! `livefarm_testkit::kube::ControlPlane`, one per test binary, a namespace per test): renewal,
//! expiry, release, racing candidates, the server's 409 on a stale resourceVersion, what
//! `kubectl` shows, and the chart's RBAC: the redeemer's ServiceAccount token may get and
//! update its own Lease and nothing else. Skipped loudly without the control plane's binaries
//! unless LIVEFARM_REQUIRE_KUBE=1.
//!
//! The fake API server (tests/fake_apiserver.rs) remains only for faults this server cannot
//! produce on demand: 500 answers and lockstep reads of racing candidates.

use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use livefarm_lease::testing::client_from_kubeconfig;
use livefarm_lease::{KubeLease, LeaseError};
use livefarm_testkit::kube::ControlPlane;
use serde_json::Value;

const TTL: Duration = Duration::from_secs(1);
const LONG_TTL: Duration = Duration::from_secs(30);
/// The chart's redeemer objects, rendered with release name `livefarm`.
const CHAIN_VALUES: &str = "helm/livefarm/ci/chain-hpa-values.yaml";
const REDEEMER: &str = "livefarm-redeemer";

/// The shared control plane, a fresh namespace on it and an admin client.
async fn setup(prefix: &str) -> Option<(&'static ControlPlane, String, kube::Client)> {
    let plane = ControlPlane::shared_or_skip()?;
    let namespace = plane.namespace(prefix);
    let client = client_from_kubeconfig(&plane.admin_kubeconfig()).await;
    Some((plane, namespace, client))
}

fn stored(plane: &ControlPlane, namespace: &str, name: &str) -> Value {
    let json = plane.kubectl(&["get", "lease", name, "-n", namespace, "-o", "json"], None);
    serde_json::from_str(&json).expect("kubectl prints JSON")
}

#[tokio::test]
async fn holder_keeps_the_lease_and_its_token_while_it_renews() {
    let Some((plane, ns, client)) = setup("renew").await else {
        return;
    };
    let lease = KubeLease::new(client, &ns, "redeemer");
    assert_eq!(
        lease.holder().await.expect("api call"),
        None,
        "no lease yet"
    );
    let token = lease
        .acquire("a", TTL)
        .await
        .expect("api call")
        .expect("free lease");
    assert!(token > 0);
    assert_eq!(
        lease.holder().await.expect("api call"),
        Some(("a".to_owned(), token))
    );
    assert_eq!(lease.acquire("b", TTL).await.expect("api call"), None);

    // Acquiring again refreshes (a write) and keeps the token.
    let version = stored(plane, &ns, "redeemer")["metadata"]["resourceVersion"].clone();
    assert_eq!(
        lease.acquire("a", TTL).await.expect("api call"),
        Some(token)
    );
    assert_ne!(
        stored(plane, &ns, "redeemer")["metadata"]["resourceVersion"],
        version
    );

    // Renewals past the TTL keep it alive.
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert!(lease.renew("a", token, TTL).await.expect("api call"));
    }
    assert_eq!(lease.acquire("b", TTL).await.expect("api call"), None);

    // Only the holder with its own token renews or releases.
    assert!(!lease.renew("b", token, TTL).await.expect("api call"));
    assert!(!lease.renew("a", token + 1, TTL).await.expect("api call"));
    assert!(!lease.release("b", token).await.expect("api call"));
    assert!(!lease.release("a", token + 1).await.expect("api call"));
    assert_eq!(
        lease.holder().await.expect("api call"),
        Some(("a".to_owned(), token))
    );
}

#[tokio::test]
async fn expired_lease_goes_to_the_standby_with_a_higher_token() {
    let Some((_plane, ns, client)) = setup("expiry").await else {
        return;
    };
    let a = KubeLease::new(client.clone(), &ns, "redeemer");
    let b = KubeLease::new(client, &ns, "redeemer");
    let first = a
        .acquire("a", TTL)
        .await
        .expect("api call")
        .expect("free lease");
    assert_eq!(b.acquire("b", TTL).await.expect("api call"), None);

    // Expiry is the holder's renewTime + leaseDurationSeconds: wait it out.
    tokio::time::sleep(TTL + Duration::from_millis(200)).await;
    assert_eq!(a.holder().await.expect("api call"), None, "expired");
    let second = b
        .acquire("b", TTL)
        .await
        .expect("api call")
        .expect("expired lease");
    assert!(second > first, "{second} > {first}");

    // The old leader finds out it lost the lease and cannot take it back or drop it.
    assert!(!a.renew("a", first, TTL).await.expect("api call"));
    assert!(!a.release("a", first).await.expect("api call"));
    assert_eq!(a.acquire("a", TTL).await.expect("api call"), None);
    assert_eq!(
        b.holder().await.expect("api call"),
        Some(("b".to_owned(), second))
    );
}

#[tokio::test]
async fn release_lets_the_standby_take_over_at_once() {
    let Some((plane, ns, client)) = setup("release").await else {
        return;
    };
    let lease = KubeLease::new(client, &ns, "redeemer");
    let first = lease
        .acquire("a", LONG_TTL)
        .await
        .expect("api call")
        .expect("free");
    assert!(lease.release("a", first).await.expect("api call"));
    assert_eq!(lease.holder().await.expect("api call"), None);
    let spec = &stored(plane, &ns, "redeemer")["spec"];
    assert!(spec.get("holderIdentity").is_none(), "{spec}");
    assert_eq!(spec["leaseDurationSeconds"], 1, "{spec}");

    let second = lease
        .acquire("b", LONG_TTL)
        .await
        .expect("api call")
        .expect("released");
    assert!(second > first, "{second} > {first}");
    assert!(!lease.release("a", first).await.expect("api call"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_candidates_never_both_hold_the_lease() {
    const CANDIDATES: usize = 4;
    const ROUNDS: usize = 10;
    let Some((_plane, ns, client)) = setup("race").await else {
        return;
    };
    let lease = KubeLease::new(client, &ns, "race");
    let mut last_token = 0;
    for round in 0..ROUNDS {
        let tasks: Vec<_> = (0..CANDIDATES)
            .map(|i| {
                let lease = lease.clone();
                tokio::spawn(async move {
                    let owner = format!("candidate-{i}");
                    let token = lease.acquire(&owner, LONG_TTL).await.expect("api call");
                    (owner, token)
                })
            })
            .collect();
        let mut winners = Vec::new();
        for task in tasks {
            let (owner, token) = task.await.expect("candidate task");
            if let Some(token) = token {
                winners.push((owner, token));
            }
        }
        assert_eq!(winners.len(), 1, "round {round}: winners {winners:?}");
        let (owner, token) = winners.pop().expect("one winner");
        assert!(token > last_token, "round {round}: {token} > {last_token}");
        assert!(lease.release(&owner, token).await.expect("api call"));
        last_token = token;
    }
}

/// What every candidate's compare-and-swap rests on: the server refuses a write that carries
/// a resourceVersion someone else has already replaced (409 Conflict), and a second create
/// (409 AlreadyExists); the lease reports both as "not acquired".
#[tokio::test]
async fn stale_resource_version_is_refused_with_409() {
    let Some((_plane, ns, client)) = setup("stale").await else {
        return;
    };
    let lease = KubeLease::new(client.clone(), &ns, "redeemer");
    let token = lease
        .acquire("a", LONG_TTL)
        .await
        .expect("api call")
        .expect("free");
    let api: Api<Lease> = Api::namespaced(client, &ns);
    let read = api.get("redeemer").await.expect("get");
    // A write that changes something (an identical one would not move resourceVersion).
    let mut first = read.clone();
    first.metadata.managed_fields = None;
    if let Some(spec) = first.spec.as_mut() {
        spec.lease_duration_seconds = Some(31);
    }
    api.replace("redeemer", &PostParams::default(), &first)
        .await
        .expect("a write with the current resourceVersion");
    let mut stale = read.clone();
    stale.metadata.managed_fields = None;
    let error = api
        .replace("redeemer", &PostParams::default(), &stale)
        .await
        .expect_err("a write with a stale resourceVersion");
    assert!(
        matches!(&error, kube::Error::Api(s) if s.code == 409 && s.reason == "Conflict"),
        "{error:?}"
    );
    let mut again = read;
    again.metadata.resource_version = None;
    let error = api
        .create(&PostParams::default(), &again)
        .await
        .expect_err("a second create");
    assert!(
        matches!(&error, kube::Error::Api(s) if s.code == 409 && s.reason == "AlreadyExists"),
        "{error:?}"
    );
    // The holder still holds it (the one accepted write kept it).
    assert!(lease.renew("a", token, LONG_TTL).await.expect("api call"));
}

#[tokio::test]
async fn written_lease_is_what_kubectl_shows() {
    let Some((plane, ns, client)) = setup("kubectl").await else {
        return;
    };
    let lease = KubeLease::new(client, &ns, "redeemer");
    let token = lease
        .acquire("redeemer-0", Duration::from_millis(1500))
        .await
        .expect("api call")
        .expect("free");
    let lease_json = stored(plane, &ns, "redeemer");
    let spec = &lease_json["spec"];
    assert_eq!(spec["holderIdentity"], "redeemer-0", "{lease_json}");
    assert_eq!(
        spec["leaseDurationSeconds"], 2,
        "ttl rounded up: {lease_json}"
    );
    assert_eq!(spec["leaseTransitions"], 0, "{lease_json}");
    assert_eq!(token, 1, "token is leaseTransitions + 1");
    for field in ["acquireTime", "renewTime"] {
        let time = spec[field].as_str().unwrap_or_else(|| panic!("{field}"));
        // MicroTime as the server stores it: RFC 3339, UTC, six fractional digits.
        assert_eq!(time.len(), 27, "{field}: {time}");
        assert!(time.ends_with('Z'), "{field}: {time}");
    }
    // kubectl's own view of who holds it.
    let holder = plane.kubectl(
        &[
            "get",
            "lease",
            "redeemer",
            "-n",
            &ns,
            "-o",
            "jsonpath={.spec.holderIdentity}",
        ],
        None,
    );
    assert_eq!(holder, "redeemer-0");

    // A renewal moves renewTime and keeps acquireTime and leaseTransitions.
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert!(lease
        .renew("redeemer-0", token, Duration::from_secs(5))
        .await
        .expect("api call"));
    let renewed = stored(plane, &ns, "redeemer");
    assert_eq!(renewed["spec"]["acquireTime"], spec["acquireTime"]);
    assert!(renewed["spec"]["renewTime"].as_str() > spec["renewTime"].as_str());
    assert_eq!(renewed["spec"]["leaseDurationSeconds"], 5);
    assert_eq!(renewed["spec"]["leaseTransitions"], 0);

    // A deleted Lease is held by nobody: renew and release say so, nothing fails.
    plane.kubectl(&["delete", "lease", "redeemer", "-n", &ns], None);
    assert!(!lease
        .renew("redeemer-0", token, LONG_TTL)
        .await
        .expect("api call"));
    assert!(!lease.release("redeemer-0", token).await.expect("api call"));
    assert_eq!(lease.holder().await.expect("api call"), None);
}

/// The chart's Role, RoleBinding, ServiceAccount and Lease, and a token for that
/// ServiceAccount from the TokenRequest API: the redeemer, as it runs in a pod, may get and
/// update its Lease (the chart's, with no holder: free) and do nothing else.
#[tokio::test]
async fn the_charts_role_allows_its_lease_and_nothing_else() {
    let Some((plane, ns, admin)) = setup("rbac").await else {
        return;
    };
    let applied = plane.apply_chart(&ns, CHAIN_VALUES, "app.kubernetes.io/component=redeemer");
    for object in [
        "serviceaccount/livefarm-redeemer",
        "role.rbac.authorization.k8s.io/livefarm-redeemer",
        "rolebinding.rbac.authorization.k8s.io/livefarm-redeemer",
        "lease.coordination.k8s.io/livefarm-redeemer",
    ] {
        assert!(applied.contains(object), "{object} not applied:\n{applied}");
    }
    let redeemer = client_from_kubeconfig(&plane.service_account_kubeconfig(&ns, REDEEMER)).await;

    // Its own Lease: free as rendered, then taken, renewed and released with get/update only.
    let lease = KubeLease::new(redeemer.clone(), &ns, REDEEMER);
    assert_eq!(lease.holder().await.expect("get its lease"), None);
    let token = lease
        .acquire("redeemer-a", LONG_TTL)
        .await
        .expect("update its lease")
        .expect("the rendered Lease is free");
    assert_eq!(token, 1);
    assert!(lease
        .renew("redeemer-a", token, LONG_TTL)
        .await
        .expect("renew"));
    assert!(lease.release("redeemer-a", token).await.expect("release"));
    let standby = KubeLease::new(redeemer.clone(), &ns, REDEEMER);
    assert_eq!(
        standby
            .acquire("redeemer-b", LONG_TTL)
            .await
            .expect("update"),
        Some(2)
    );

    // Any other Lease: forbidden, reported with the lease's name.
    let other = KubeLease::new(redeemer.clone(), &ns, "other");
    let error = other
        .acquire("redeemer-a", LONG_TTL)
        .await
        .expect_err("forbidden");
    assert!(
        matches!(error, LeaseError::Api { code: 403, .. }),
        "{error:?}"
    );
    assert!(
        error.to_string().contains(&format!("{ns}/other")),
        "{error}"
    );

    // No create (not even of its own Lease once deleted), list, delete, or other resources.
    let forbidden = |what: &str, result: Result<(), kube::Error>| match result {
        Err(kube::Error::Api(s)) if s.code == 403 => {}
        other => panic!("{what}: want 403, got {other:?}"),
    };
    let leases: Api<Lease> = Api::namespaced(redeemer.clone(), &ns);
    forbidden(
        "list leases",
        leases.list(&ListParams::default()).await.map(drop),
    );
    forbidden(
        "delete its lease",
        leases
            .delete(REDEEMER, &DeleteParams::default())
            .await
            .map(drop),
    );
    let mut copy = Api::<Lease>::namespaced(admin.clone(), &ns)
        .get(REDEEMER)
        .await
        .expect("admin reads the lease");
    copy.metadata.name = Some("created-by-redeemer".into());
    copy.metadata.resource_version = None;
    copy.metadata.uid = None;
    copy.metadata.managed_fields = None;
    forbidden(
        "create a lease",
        leases.create(&PostParams::default(), &copy).await.map(drop),
    );
    forbidden(
        "read a configmap",
        Api::<ConfigMap>::namespaced(redeemer.clone(), &ns)
            .list(&ListParams::default())
            .await
            .map(drop),
    );
    forbidden(
        "read a secret",
        Api::<Secret>::namespaced(redeemer.clone(), &ns)
            .list(&ListParams::default())
            .await
            .map(drop),
    );
    let elsewhere = plane.namespace("rbac-elsewhere");
    forbidden(
        "its lease name in another namespace",
        Api::<Lease>::namespaced(redeemer.clone(), &elsewhere)
            .get(REDEEMER)
            .await
            .map(drop),
    );

    // Without the chart's Lease the redeemer cannot create one: an error, not a silent
    // standby (the chart renders it; uninstall removes it).
    Api::<Lease>::namespaced(admin, &ns)
        .delete(REDEEMER, &DeleteParams::default())
        .await
        .expect("admin deletes the lease");
    let error = lease
        .acquire("redeemer-a", LONG_TTL)
        .await
        .expect_err("create forbidden");
    assert!(
        matches!(error, LeaseError::Api { code: 403, .. }),
        "{error:?}"
    );
    assert!(
        error.to_string().starts_with("cannot create lease"),
        "{error}"
    );
}
