//! Leader election against a fake Kubernetes API server (`livefarm_lease::testing`), over
//! plain http, for what the real one (tests/apiserver.rs) cannot do on demand: hold racing
//! candidates' reads at a barrier so that all of them read the same resourceVersion (only the
//! 409 then stops them all from winning), answer 500s, fail writes after reads succeeded.
//! Plus a server that is not there at all.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use livefarm_lease::testing::{lease_at, start_fake};
use livefarm_lease::LeaseError;
use tokio::sync::Barrier;

const TTL: Duration = Duration::from_secs(1);
const LONG_TTL: Duration = Duration::from_secs(30);

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

    // 500 only: kube's client retries 503s (with backoff) before it reports them.
    for code in [500] {
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
