//! Leader election against a fake Kubernetes API server (see `livefarm_lease::testing`: a fake, since no
//! Kubernetes API server can run here), over plain http.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use livefarm_lease::testing::{lease_at, start_fake, NS};
use livefarm_lease::LeaseError;
use tokio::sync::Barrier;

const TTL: Duration = Duration::from_secs(1);
const LONG_TTL: Duration = Duration::from_secs(30);

#[tokio::test]
async fn holder_keeps_the_lease_and_its_token_while_it_renews() {
    let (fake, addr) = start_fake().await;
    let lease = lease_at(addr, "redeemer");

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
    assert_eq!(
        lease.acquire("b", TTL).await.expect("api call"),
        None,
        "held by a"
    );

    // Acquiring again refreshes and keeps the token.
    let version = fake.lease("redeemer").expect("stored")["metadata"]["resourceVersion"].clone();
    assert_eq!(
        lease.acquire("a", TTL).await.expect("api call"),
        Some(token)
    );
    assert_ne!(
        fake.lease("redeemer").expect("stored")["metadata"]["resourceVersion"],
        version,
        "the refresh wrote the lease"
    );

    // Renewals past the TTL keep it alive.
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert!(lease.renew("a", token, TTL).await.expect("api call"));
    }
    assert_eq!(
        lease.acquire("b", TTL).await.expect("api call"),
        None,
        "renewed by a"
    );
    assert_eq!(
        lease.holder().await.expect("api call"),
        Some(("a".to_owned(), token))
    );

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
    let (_fake, addr) = start_fake().await;
    let a = lease_at(addr, "redeemer");
    let b = lease_at(addr, "redeemer");

    let first = a
        .acquire("a", TTL)
        .await
        .expect("api call")
        .expect("free lease");
    assert_eq!(b.acquire("b", TTL).await.expect("api call"), None);

    tokio::time::sleep(TTL + Duration::from_millis(200)).await;
    assert_eq!(a.holder().await.expect("api call"), None, "expired");
    let second = b
        .acquire("b", TTL)
        .await
        .expect("api call")
        .expect("expired lease");
    assert!(second > first, "{second} > {first}");
    assert_eq!(
        a.holder().await.expect("api call"),
        Some(("b".to_owned(), second))
    );

    // The old leader finds out it lost the lease and cannot take it back or drop it.
    assert!(!a.renew("a", first, TTL).await.expect("api call"));
    assert!(!a.release("a", first).await.expect("api call"));
    assert_eq!(a.acquire("a", TTL).await.expect("api call"), None);
    assert_eq!(
        b.holder().await.expect("api call"),
        Some(("b".to_owned(), second))
    );

    // A holder that let its own lease expire gets a new token when it takes it again.
    tokio::time::sleep(TTL + Duration::from_millis(200)).await;
    assert!(
        !b.renew("b", second, TTL).await.expect("api call"),
        "expired"
    );
    let third = b
        .acquire("b", TTL)
        .await
        .expect("api call")
        .expect("expired lease");
    assert!(third > second, "{third} > {second}");
}

#[tokio::test]
async fn release_lets_the_standby_take_over_at_once() {
    let (fake, addr) = start_fake().await;
    let lease = lease_at(addr, "redeemer");

    let first = lease
        .acquire("a", LONG_TTL)
        .await
        .expect("api call")
        .expect("free");
    assert_eq!(lease.acquire("b", LONG_TTL).await.expect("api call"), None);
    assert!(lease.release("a", first).await.expect("api call"));
    assert_eq!(lease.holder().await.expect("api call"), None);

    // Released the way client-go's ReleaseOnCancel does it.
    let stored = fake.lease("redeemer").expect("stored");
    assert!(stored["spec"].get("holderIdentity").is_none(), "{stored}");
    assert_eq!(stored["spec"]["leaseDurationSeconds"], 1, "{stored}");

    let second = lease
        .acquire("b", LONG_TTL)
        .await
        .expect("api call")
        .expect("released");
    assert!(second > first, "{second} > {first}");
    assert_eq!(
        lease.holder().await.expect("api call"),
        Some(("b".to_owned(), second))
    );
    assert!(
        !lease.release("a", first).await.expect("api call"),
        "released already"
    );
    assert!(!lease.renew("a", first, LONG_TTL).await.expect("api call"));

    // Released and re-taken by the same identity: still a new token.
    assert!(lease.release("b", second).await.expect("api call"));
    let third = lease
        .acquire("b", LONG_TTL)
        .await
        .expect("api call")
        .expect("released");
    assert!(third > second, "{third} > {second}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_candidates_never_both_hold_the_lease() {
    const CANDIDATES: usize = 4;
    const ROUNDS: usize = 20;
    let (fake, addr) = start_fake().await;
    let lease = lease_at(addr, "race");

    let mut last_token = 0;
    for round in 0..ROUNDS {
        // Every other round the fake makes all candidates read the same resourceVersion before
        // any writes, so only its 409 stops them all from winning; the other rounds race freely.
        let lockstep = round % 2 == 0;
        if lockstep {
            *fake.get_barrier.lock().expect("fake state") =
                Some(Arc::new(Barrier::new(CANDIDATES)));
        }
        let conflicts_before = fake.conflicts.load(Ordering::SeqCst);
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
        *fake.get_barrier.lock().expect("fake state") = None;

        assert_eq!(winners.len(), 1, "round {round}: winners {winners:?}");
        let (owner, token) = winners.pop().expect("one winner");
        assert!(token > last_token, "round {round}: {token} > {last_token}");
        if lockstep {
            assert_eq!(
                fake.conflicts.load(Ordering::SeqCst) - conflicts_before,
                CANDIDATES as u64 - 1,
                "round {round}: every loser was refused by a 409"
            );
        }
        assert_eq!(
            lease.holder().await.expect("api call"),
            Some((owner.clone(), token))
        );
        assert!(lease.release(&owner, token).await.expect("api call"));
        last_token = token;
    }
}

#[tokio::test]
async fn api_errors_are_errors_naming_the_lease() {
    let (fake, addr) = start_fake().await;
    let lease = lease_at(addr, "redeemer");
    let token = lease
        .acquire("a", LONG_TTL)
        .await
        .expect("api call")
        .expect("free");

    for code in [500, 403] {
        *fake.fail_with.lock().expect("fake state") = Some(code);
        let errors = [
            lease.acquire("a", LONG_TTL).await.expect_err("api error"),
            lease
                .renew("a", token, LONG_TTL)
                .await
                .expect_err("api error"),
            lease.release("a", token).await.expect_err("api error"),
            lease.holder().await.expect_err("api error"),
        ];
        for error in errors {
            assert!(
                matches!(error, LeaseError::Api { code: c, .. } if c == code),
                "{error:?}"
            );
            assert_eq!(error.status_code(), Some(code));
            let message = error.to_string();
            assert!(message.contains("livefarm/redeemer"), "{message}");
            assert!(message.starts_with("cannot get lease"), "{message}");
        }
    }

    // A failing write is reported with the write.
    *fake.fail_with.lock().expect("fake state") = None;
    *fake.fail_writes_with.lock().expect("fake state") = Some(500);
    let error = lease
        .renew("a", token, LONG_TTL)
        .await
        .expect_err("api error");
    assert_eq!(
        error.to_string(),
        "cannot replace lease livefarm/redeemer: api server answered 500 InternalError: \
         injected failure"
    );
    let error = lease_at(addr, "other")
        .acquire("a", TTL)
        .await
        .expect_err("api error");
    assert!(
        error
            .to_string()
            .starts_with("cannot create lease livefarm/other: "),
        "{error}"
    );

    // Nothing was lost meanwhile: a's lease stands once the server recovers.
    *fake.fail_writes_with.lock().expect("fake state") = None;
    assert!(lease.renew("a", token, LONG_TTL).await.expect("api call"));
    assert_eq!(
        lease.holder().await.expect("api call"),
        Some(("a".to_owned(), token))
    );

    // A deleted lease is not held by anyone.
    fake.leases.lock().expect("fake state").clear();
    assert!(!lease.renew("a", token, LONG_TTL).await.expect("api call"));
    assert!(!lease.release("a", token).await.expect("api call"));
    assert_eq!(lease.holder().await.expect("api call"), None);
}

#[tokio::test]
async fn unreachable_api_server_is_an_error() {
    // A port that was just free: nothing listens there.
    let addr = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("local addr")
    };
    let lease = lease_at(addr, "redeemer");
    let errors = [
        lease.acquire("a", TTL).await.expect_err("api error"),
        lease.renew("a", 1, TTL).await.expect_err("api error"),
        lease.release("a", 1).await.expect_err("api error"),
        lease.holder().await.expect_err("api error"),
    ];
    for error in errors {
        assert!(matches!(error, LeaseError::Request { .. }), "{error:?}");
        let message = error.to_string();
        assert!(
            message.starts_with("cannot get lease livefarm/redeemer: "),
            "{message}"
        );
    }
}

#[tokio::test]
async fn written_lease_is_what_kubectl_shows() {
    let (fake, addr) = start_fake().await;
    let lease = lease_at(addr, "redeemer");
    let token = lease
        .acquire("redeemer-0", Duration::from_millis(1500))
        .await
        .expect("api call")
        .expect("free");

    let stored = fake.lease("redeemer").expect("created");
    assert_eq!(stored["apiVersion"], "coordination.k8s.io/v1", "{stored}");
    assert_eq!(stored["kind"], "Lease", "{stored}");
    assert_eq!(stored["metadata"]["name"], "redeemer", "{stored}");
    assert_eq!(stored["metadata"]["namespace"], NS, "{stored}");
    let spec = &stored["spec"];
    assert_eq!(spec["holderIdentity"], "redeemer-0", "{stored}");
    assert_eq!(spec["leaseDurationSeconds"], 2, "ttl rounded up: {stored}");
    assert_eq!(spec["leaseTransitions"], 0, "{stored}");
    assert_eq!(token, 1, "token is leaseTransitions + 1");
    for field in ["acquireTime", "renewTime"] {
        let time = spec[field]
            .as_str()
            .unwrap_or_else(|| panic!("{field}: {stored}"));
        // MicroTime: RFC 3339 in UTC with six fractional digits, e.g. 2025-01-02T03:04:05.123456Z.
        assert_eq!(time.len(), 27, "{field}: {time}");
        assert!(
            time.ends_with('Z') && time.as_bytes()[10] == b'T',
            "{field}: {time}"
        );
        assert_eq!(time.as_bytes()[19], b'.', "{field}: {time}");
    }

    // A renewal moves renewTime and keeps acquireTime and leaseTransitions.
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert!(lease
        .renew("redeemer-0", token, Duration::from_secs(5))
        .await
        .expect("api call"));
    let renewed = fake.lease("redeemer").expect("stored");
    assert_eq!(renewed["spec"]["acquireTime"], spec["acquireTime"]);
    assert!(
        renewed["spec"]["renewTime"].as_str() > spec["renewTime"].as_str(),
        "{renewed}"
    );
    assert_eq!(renewed["spec"]["leaseDurationSeconds"], 5);
    assert_eq!(renewed["spec"]["leaseTransitions"], 0);
    assert_eq!(fake.writes.load(Ordering::SeqCst), 2);
}
