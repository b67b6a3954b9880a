//! The webhook tables' suite, on SQLite and on a real PostgreSQL server (as
//! `conformance.rs`): CRUD and tenancy, idempotent enqueue, leased claims (two claimers racing
//! on one due delivery: only one gets it), attempts and logs.

use std::collections::HashSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use livefarm_store::ids::now_ms;
use livefarm_store::testing::PgServer;
use livefarm_store::{
    Attempt, AttemptOutcome, DeliveryState, NewEvent, NewLog, NewWebhook, Page, Store, StoreError,
    StoreOptions,
};
use serde_json::json;

type Case = fn(Store) -> Pin<Box<dyn Future<Output = ()> + Send>>;

const CASES: &[(&str, Case)] = &[
    ("crud", |s| Box::pin(crud(s))),
    ("enqueue", |s| Box::pin(enqueue(s))),
    ("claims", |s| Box::pin(claims(s))),
    ("claim_race", |s| Box::pin(claim_race(s))),
    ("per_webhook_bound", |s| Box::pin(per_webhook_bound(s))),
    ("logs", |s| Box::pin(logs(s))),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_webhooks() {
    let dir = tempfile::tempdir().expect("tempdir");
    for (name, case) in CASES {
        let url = format!("sqlite://{}/{name}.db", dir.path().display());
        let store = Store::open(&url, &StoreOptions::default())
            .await
            .expect("open sqlite");
        eprintln!("sqlite: {name}");
        case(store).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_webhooks() {
    let Some(server) = PgServer::start_or_skip() else {
        return;
    };
    for (name, case) in CASES {
        let url = server.fresh_database(&format!("webhooks_{name}")).await;
        let store = Store::open(&url, &StoreOptions::default())
            .await
            .expect("open postgres");
        eprintln!("postgres: {name}");
        case(store.clone()).await;
        store.close().await;
    }
}

fn hook(name: &str, events: &[&str]) -> NewWebhook {
    NewWebhook {
        name: name.to_owned(),
        url: "https://example.com/hook".to_owned(),
        events: events.iter().map(|e| (*e).to_owned()).collect(),
        shared_secret: Some("s3cret".to_owned()),
        stream_id: None,
        project_id: None,
    }
}

fn event(id: &str, tenant: &str, name: &'static str) -> NewEvent {
    NewEvent {
        id: id.to_owned(),
        tenant_id: tenant.to_owned(),
        event: name,
        created_at: 1_700_000_000_000,
        stream: Some(json!({"id": "s-1", "name": "my-stream"})),
        payload: None,
    }
}

fn log_of(webhook_id: &str, tenant: &str, event_id: &str, at: i64, success: bool) -> NewLog {
    NewLog {
        webhook_id: webhook_id.to_owned(),
        tenant_id: tenant.to_owned(),
        event_id: event_id.to_owned(),
        event: "stream.started".to_owned(),
        created_at: at,
        duration_us: 1_500,
        success,
        status_code: Some(if success { 200 } else { 503 }),
        request: json!({"url": "https://example.com/hook", "method": "POST", "headers": {}, "body": "{}"}),
        response: Some(json!({"status": 200, "statusText": "OK", "body": ""})),
        error: None,
    }
}

async fn crud(store: Store) {
    let tenant = store.create_tenant("acme").await.expect("tenant");
    let other = store.create_tenant("other").await.expect("tenant");
    let hostile = "Robert'); DROP TABLE webhooks;--";
    let made = store
        .create_webhook(
            &tenant.id,
            &NewWebhook {
                stream_id: Some(hostile.to_owned()),
                project_id: Some("p-1".to_owned()),
                ..hook(hostile, &["stream.started", "stream.idle"])
            },
        )
        .await
        .expect("create");
    assert_eq!(made.name, hostile, "stored verbatim");
    assert_eq!(made.shared_secret.as_deref(), Some("s3cret"));
    assert_eq!(
        store.webhook(&tenant.id, &made.id).await.expect("get"),
        Some(made.clone())
    );
    assert_eq!(store.webhook(&other.id, &made.id).await.expect("get"), None);

    // PUT: every field replaced; no secret given keeps the stored one, "" removes it
    let replaced = store
        .replace_webhook(
            &tenant.id,
            &made.id,
            &NewWebhook {
                shared_secret: None,
                ..hook("renamed", &["recording.ready"])
            },
        )
        .await
        .expect("replace")
        .expect("found");
    assert_eq!(replaced.name, "renamed");
    assert_eq!(replaced.events, ["recording.ready"]);
    assert_eq!(replaced.shared_secret.as_deref(), Some("s3cret"), "kept");
    assert_eq!(replaced.stream_id, None, "replaced, not merged");
    assert_eq!(replaced.created_at, made.created_at);
    let cleared = store
        .replace_webhook(
            &tenant.id,
            &made.id,
            &NewWebhook {
                shared_secret: Some(String::new()),
                ..hook("renamed", &[])
            },
        )
        .await
        .expect("replace")
        .expect("found");
    assert_eq!(cleared.shared_secret, None, "removed");
    assert_eq!(
        store
            .replace_webhook(&other.id, &made.id, &hook("x", &[]))
            .await
            .expect("replace other"),
        None
    );

    // lists: newest first, paginated, per tenant
    for i in 0..4 {
        store
            .create_webhook(&tenant.id, &hook(&format!("h{i}"), &[]))
            .await
            .expect("create");
    }
    let mut seen = Vec::new();
    let mut cursor = None;
    loop {
        let (page, next) = store
            .list_webhooks(&tenant.id, &Page { limit: 2, cursor })
            .await
            .expect("page");
        seen.extend(page.into_iter().map(|w| w.id));
        match next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    assert_eq!(seen.len(), 5);
    assert_eq!(seen.iter().collect::<HashSet<_>>().len(), 5);
    assert_eq!(store.count_webhooks(&tenant.id).await.expect("count"), 5);
    let (theirs, _) = store
        .list_webhooks(
            &other.id,
            &Page {
                limit: 100,
                cursor: None,
            },
        )
        .await
        .expect("list");
    assert!(theirs.is_empty());
    assert!(matches!(
        store
            .list_webhooks(
                &tenant.id,
                &Page {
                    limit: 2,
                    cursor: Some("' OR 1=1".to_owned())
                }
            )
            .await,
        Err(StoreError::Invalid {
            field: "cursor",
            ..
        })
    ));

    // delete: soft, once, only by its tenant
    assert_eq!(
        store
            .delete_webhook(&other.id, &made.id)
            .await
            .expect("del"),
        None
    );
    let deleted = store
        .delete_webhook(&tenant.id, &made.id)
        .await
        .expect("delete")
        .expect("found");
    assert!(deleted.deleted_at.is_some());
    assert_eq!(
        store
            .delete_webhook(&tenant.id, &made.id)
            .await
            .expect("again"),
        None
    );
    assert_eq!(
        store.webhook(&tenant.id, &made.id).await.expect("get"),
        None
    );
    assert_eq!(store.count_webhooks(&tenant.id).await.expect("count"), 4);

    assert!(matches!(
        store
            .create_webhook("no-such-tenant", &hook("x", &[]))
            .await,
        Err(StoreError::NotFound { what: "tenant", .. })
    ));
    assert!(matches!(
        store.create_webhook(&tenant.id, &hook(" ", &[])).await,
        Err(StoreError::Invalid { field: "name", .. })
    ));
}

async fn enqueue(store: Store) {
    let tenant = store.create_tenant("acme").await.expect("tenant");
    let other = store.create_tenant("other").await.expect("tenant");
    let started = store
        .create_webhook(&tenant.id, &hook("started", &["stream.started"]))
        .await
        .expect("create");
    let both = store
        .create_webhook(
            &tenant.id,
            &hook("both", &["stream.started", "stream.idle"]),
        )
        .await
        .expect("create");
    let gone = store
        .create_webhook(&tenant.id, &hook("gone", &["stream.started"]))
        .await
        .expect("create");
    store
        .delete_webhook(&tenant.id, &gone.id)
        .await
        .expect("delete");
    store
        .create_webhook(&other.id, &hook("theirs", &["stream.started"]))
        .await
        .expect("create");

    let first = event("ev-1", &tenant.id, "stream.started");
    assert_eq!(store.enqueue_event(&first).await.expect("enqueue"), 2);
    assert_eq!(
        store.enqueue_event(&first).await.expect("replay"),
        0,
        "idempotent"
    );
    let deliveries = store.event_deliveries("ev-1").await.expect("deliveries");
    let mut targets: Vec<&str> = deliveries.iter().map(|d| d.webhook_id.as_str()).collect();
    targets.sort();
    let mut expected = vec![started.id.as_str(), both.id.as_str()];
    expected.sort();
    assert_eq!(
        targets, expected,
        "subscribed, live webhooks of the tenant only"
    );
    assert!(deliveries
        .iter()
        .all(|d| d.state == DeliveryState::Pending && d.attempts == 0 && d.claimed_by.is_none()));

    assert_eq!(
        store
            .enqueue_event(&event("ev-2", &tenant.id, "stream.idle"))
            .await
            .expect("idle"),
        1
    );
    assert_eq!(
        store
            .enqueue_event(&event("ev-3", &tenant.id, "asset.ready"))
            .await
            .expect("nobody"),
        0
    );
    let stored = store
        .webhook_event("ev-1")
        .await
        .expect("event")
        .expect("found");
    assert_eq!(stored.stream, first.stream);
    assert_eq!(stored.payload, None);
    assert_eq!(stored.event, "stream.started");
    assert!(matches!(
        store
            .enqueue_event(&NewEvent {
                payload: Some(json!("x".repeat(300 * 1024))),
                ..event("ev-4", &tenant.id, "stream.started")
            })
            .await,
        Err(StoreError::Invalid {
            field: "payload",
            ..
        })
    ));

    // deleting a webhook gives up its pending deliveries
    store
        .delete_webhook(&tenant.id, &both.id)
        .await
        .expect("delete");
    let after = store.event_deliveries("ev-2").await.expect("deliveries");
    assert_eq!(after[0].state, DeliveryState::Failed);
}

async fn claims(store: Store) {
    let tenant = store.create_tenant("acme").await.expect("tenant");
    let webhook = store
        .create_webhook(&tenant.id, &hook("h", &["stream.started"]))
        .await
        .expect("create");
    store
        .enqueue_event(&event("ev-1", &tenant.id, "stream.started"))
        .await
        .expect("enqueue");
    let now = now_ms() + 1;

    let claimed = store
        .claim_due(now, 10_000, 10, 2, "a")
        .await
        .expect("claim");
    assert_eq!(claimed.len(), 1);
    let delivery = &claimed[0];
    assert_eq!(delivery.attempts, 0);
    assert_eq!(delivery.claimed_until, now + 10_000);
    assert_eq!(delivery.event.id, "ev-1");
    assert_eq!(delivery.webhook.id, webhook.id);
    assert_eq!(delivery.webhook.shared_secret.as_deref(), Some("s3cret"));
    // leased: nobody else gets it before the lease ends; then anyone does
    assert!(store
        .claim_due(now, 10_000, 10, 2, "b")
        .await
        .expect("b")
        .is_empty());
    assert!(store
        .claim_due(now + 9_999, 10_000, 10, 2, "b")
        .await
        .expect("b")
        .is_empty());
    let taken = store
        .claim_due(now + 10_000, 10_000, 10, 2, "b")
        .await
        .expect("b");
    assert_eq!(taken.len(), 1, "an expired lease is taken over");

    // the first owner's late record keeps its log but leaves the delivery to the new owner
    let late = store
        .record_attempt(
            &delivery.id,
            "a",
            &Attempt {
                log: log_of(&webhook.id, &tenant.id, "ev-1", now, false),
                outcome: AttemptOutcome::Failed,
                failure: Some(json!({"timestamp": now, "statusCode": 503})),
            },
        )
        .await
        .expect("record");
    assert!(!late.delivery_updated);
    let row = &store.event_deliveries("ev-1").await.expect("rows")[0];
    assert_eq!((row.state, row.attempts), (DeliveryState::Pending, 0));
    assert_eq!(row.claimed_by.as_deref(), Some("b"));

    // b's attempt fails retryably: rescheduled, lease cleared, status updated
    let retry_at = now + 60_000;
    let recorded = store
        .record_attempt(
            &delivery.id,
            "b",
            &Attempt {
                log: log_of(&webhook.id, &tenant.id, "ev-1", now + 10_001, false),
                outcome: AttemptOutcome::Retry { at: retry_at },
                failure: Some(json!({"timestamp": now + 10_001, "statusCode": 503})),
            },
        )
        .await
        .expect("record");
    assert!(recorded.delivery_updated);
    let row = &store.event_deliveries("ev-1").await.expect("rows")[0];
    assert_eq!((row.state, row.attempts), (DeliveryState::Pending, 1));
    assert_eq!(
        (row.next_attempt_at, row.claimed_by.clone()),
        (retry_at, None)
    );
    let status = store
        .webhook(&tenant.id, &webhook.id)
        .await
        .expect("get")
        .expect("found");
    assert_eq!(status.last_triggered_at, Some(now + 10_001));
    assert_eq!(
        status.last_failure,
        Some(json!({"timestamp": now + 10_001, "statusCode": 503}))
    );

    // not due before its time; then delivered, which keeps the last failure (as Studio)
    assert!(store
        .claim_due(retry_at - 1, 10_000, 10, 2, "c")
        .await
        .expect("c")
        .is_empty());
    let again = store
        .claim_due(retry_at, 10_000, 10, 2, "c")
        .await
        .expect("c");
    assert_eq!(again[0].attempts, 1);
    store
        .record_attempt(
            &again[0].id,
            "c",
            &Attempt {
                log: log_of(&webhook.id, &tenant.id, "ev-1", retry_at, true),
                outcome: AttemptOutcome::Delivered,
                failure: None,
            },
        )
        .await
        .expect("record");
    let row = &store.event_deliveries("ev-1").await.expect("rows")[0];
    assert_eq!((row.state, row.attempts), (DeliveryState::Delivered, 2));
    assert!(store
        .claim_due(retry_at + 1_000_000, 10_000, 10, 2, "d")
        .await
        .expect("d")
        .is_empty());
    let status = store
        .webhook(&tenant.id, &webhook.id)
        .await
        .expect("get")
        .expect("found");
    assert_eq!(status.last_triggered_at, Some(retry_at));
    assert!(status.last_failure.is_some());
    let (logs, _) = store
        .list_webhook_logs(
            &tenant.id,
            &webhook.id,
            &Page {
                limit: 10,
                cursor: None,
            },
        )
        .await
        .expect("logs");
    assert_eq!(logs.len(), 3, "every attempt is logged, the late one too");

    // a released lease is due again at once
    store
        .enqueue_event(&event("ev-2", &tenant.id, "stream.started"))
        .await
        .expect("enqueue");
    let now = now_ms() + 1;
    assert_eq!(
        store
            .claim_due(now, 60_000, 10, 2, "e")
            .await
            .expect("e")
            .len(),
        1
    );
    assert_eq!(store.release_claims("e").await.expect("release"), 1);
    assert_eq!(
        store
            .claim_due(now, 60_000, 10, 2, "f")
            .await
            .expect("f")
            .len(),
        1
    );
}

async fn claim_race(store: Store) {
    let tenant = store.create_tenant("acme").await.expect("tenant");
    store
        .create_webhook(&tenant.id, &hook("h", &["stream.started"]))
        .await
        .expect("create");
    let store = Arc::new(store);
    const CLAIMERS: usize = 8;
    // many rounds of several claimers released together on one due delivery: exactly one
    // gets it each time
    for round in 0..25 {
        let id = format!("race-{round}");
        store
            .enqueue_event(&event(&id, &tenant.id, "stream.started"))
            .await
            .expect("enqueue");
        let now = now_ms() + 1;
        let start = Arc::new(tokio::sync::Barrier::new(CLAIMERS));
        let claimers: Vec<_> = (0..CLAIMERS)
            .map(|i| {
                let store = Arc::clone(&store);
                let start = Arc::clone(&start);
                tokio::spawn(async move {
                    let owner = format!("claimer-{i}");
                    start.wait().await;
                    store
                        .claim_due(now, 60_000, 10, 10, &owner)
                        .await
                        .expect("claim")
                })
            })
            .collect();
        let mut got = 0;
        for claimer in claimers {
            got += claimer.await.expect("no panic").len();
        }
        assert_eq!(
            got, 1,
            "round {round}: one due delivery claimed {got} times"
        );
        // finish it so the next round has one due delivery again
        let row = &store.event_deliveries(&id).await.expect("rows")[0];
        let owner = row.claimed_by.clone().expect("claimed");
        store
            .record_attempt(
                &row.id,
                &owner,
                &Attempt {
                    log: log_of(&row.webhook_id, &tenant.id, &id, now, true),
                    outcome: AttemptOutcome::Delivered,
                    failure: None,
                },
            )
            .await
            .expect("record");
    }
}

async fn per_webhook_bound(store: Store) {
    let tenant = store.create_tenant("acme").await.expect("tenant");
    let slow = store
        .create_webhook(&tenant.id, &hook("slow", &["stream.started"]))
        .await
        .expect("create");
    let quick = store
        .create_webhook(&tenant.id, &hook("quick", &["stream.idle"]))
        .await
        .expect("create");
    for i in 0..6 {
        store
            .enqueue_event(&event(&format!("s{i}"), &tenant.id, "stream.started"))
            .await
            .expect("enqueue");
    }
    for i in 0..3 {
        store
            .enqueue_event(&event(&format!("q{i}"), &tenant.id, "stream.idle"))
            .await
            .expect("enqueue");
    }
    let now = now_ms() + 1;
    // at most 2 per webhook per claim, and leases held by anyone count against it
    let first = store.claim_due(now, 60_000, 100, 2, "a").await.expect("a");
    let count = |batch: &[livefarm_store::ClaimedDelivery], id: &str| {
        batch.iter().filter(|d| d.webhook.id == id).count()
    };
    assert_eq!((count(&first, &slow.id), count(&first, &quick.id)), (2, 2));
    let second = store.claim_due(now, 60_000, 100, 2, "b").await.expect("b");
    assert!(
        second.is_empty(),
        "both webhooks are at their bound: {second:?}"
    );
    let third = store.claim_due(now, 60_000, 100, 3, "b").await.expect("b");
    assert_eq!((count(&third, &slow.id), count(&third, &quick.id)), (1, 1));
    // oldest first within the limit
    let ids: Vec<&str> = first
        .iter()
        .filter(|d| d.webhook.id == slow.id)
        .map(|d| d.event.id.as_str())
        .collect();
    assert_eq!(ids.len(), 2);
}

async fn logs(store: Store) {
    let tenant = store.create_tenant("acme").await.expect("tenant");
    let other = store.create_tenant("other").await.expect("tenant");
    let webhook = store
        .create_webhook(&tenant.id, &hook("h", &["stream.started"]))
        .await
        .expect("create");
    let mut made = Vec::new();
    for i in 0..5 {
        let log = store
            .record_log(
                &log_of(&webhook.id, &tenant.id, "ev", 1_000 + i, i % 2 == 0),
                None,
            )
            .await
            .expect("log");
        made.push(log);
    }
    let read = store
        .webhook_log(&tenant.id, &made[1].id)
        .await
        .expect("get")
        .expect("found");
    assert_eq!(read, made[1]);
    assert_eq!(read.status_code, Some(503));
    assert!(!read.success);
    assert_eq!(
        store
            .webhook_log(&other.id, &made[1].id)
            .await
            .expect("get"),
        None
    );
    let (page, next) = store
        .list_webhook_logs(
            &tenant.id,
            &webhook.id,
            &Page {
                limit: 3,
                cursor: None,
            },
        )
        .await
        .expect("page");
    assert_eq!(
        page.iter().map(|l| l.created_at).collect::<Vec<_>>(),
        [1_004, 1_003, 1_002],
        "newest first"
    );
    let (rest, end) = store
        .list_webhook_logs(
            &tenant.id,
            &webhook.id,
            &Page {
                limit: 3,
                cursor: next,
            },
        )
        .await
        .expect("page");
    assert_eq!(
        rest.iter().map(|l| l.created_at).collect::<Vec<_>>(),
        [1_001, 1_000]
    );
    assert_eq!(end, None);
    let (theirs, _) = store
        .list_webhook_logs(
            &other.id,
            &webhook.id,
            &Page {
                limit: 10,
                cursor: None,
            },
        )
        .await
        .expect("page");
    assert!(theirs.is_empty());
    let status = store
        .webhook(&tenant.id, &webhook.id)
        .await
        .expect("get")
        .expect("found");
    assert_eq!(status.last_triggered_at, Some(1_004));
    assert_eq!(status.last_failure, None, "no failure given, none set");
}
