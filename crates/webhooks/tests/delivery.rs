//! Deliveries end to end: the store's queue, the deliverer, and real HTTP receivers on
//! loopback that check every signature.

mod common;

use std::collections::HashSet;
use std::time::Duration;

use common::{fast_config, sqlite_store, Mode, Receiver};
use livefarm_store::ids::now_ms;
use livefarm_store::testing::PgServer;
use livefarm_store::{DeliveryState, NewEvent, NewWebhook, Page, Store, StoreOptions};
use livefarm_testkit::wait_until;
use livefarm_webhooks::{spawn_deliverer, WebhookConfig, WebhookInput, Webhooks};
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(30);

fn started(id: &str, tenant: &str) -> NewEvent {
    NewEvent {
        id: id.to_owned(),
        tenant_id: tenant.to_owned(),
        event: "stream.started",
        created_at: now_ms(),
        stream: Some(json!({"id": "s-1", "name": "my-stream", "isActive": true})),
        payload: None,
    }
}

fn input(url: &str, secret: Option<&str>) -> WebhookInput {
    let mut body = json!({"name": "hook", "url": url, "events": ["stream.started", "stream.idle"]});
    if let Some(secret) = secret {
        body["sharedSecret"] = json!(secret);
    }
    WebhookInput::from_json(body.to_string().as_bytes()).expect("input")
}

async fn webhook_via_routes(
    webhooks: &Webhooks,
    tenant: &str,
    url: &str,
    secret: Option<&str>,
) -> String {
    let made = webhooks
        .create(tenant, input(url, secret))
        .await
        .expect("create");
    made["id"].as_str().expect("id").to_owned()
}

/// Waits until every delivery of `event_ids` is in `state`.
async fn wait_for_state(store: &Store, event_ids: &[String], state: DeliveryState) {
    wait_until(WAIT, "deliveries to settle", || async {
        let mut pending = 0;
        for id in event_ids {
            for d in store
                .event_deliveries(id)
                .await
                .map_err(|e| e.to_string())?
            {
                if d.state != state {
                    pending += 1;
                }
            }
        }
        if pending == 0 {
            Ok(())
        } else {
            Err(format!("{pending} not yet {state:?}"))
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_deliveries_verify_at_the_receiver_and_resend_re_signs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (store, _) = sqlite_store(&dir, "signed").await;
    let tenant = store.create_tenant("acme").await.expect("tenant").id;
    let webhooks = Webhooks::new(store.clone(), fast_config()).expect("webhooks");
    let signed = Receiver::start(Mode::Ok, Some("my-secret")).await;
    let unsigned = Receiver::start(Mode::Ok, None).await;
    let signed_id = webhook_via_routes(&webhooks, &tenant, &signed.url(), Some("my-secret")).await;
    webhook_via_routes(&webhooks, &tenant, &unsigned.url(), None).await;

    let deliverer = spawn_deliverer(store.clone(), fast_config()).expect("deliverer");
    let event = started("9f1c2d3e-0000-4000-8000-000000000001", &tenant);
    assert_eq!(store.enqueue_event(&event).await.expect("enqueue"), 2);
    deliverer.waker().wake();
    wait_until(WAIT, "both receivers to get the event", || async {
        signed.seen().len() == 1 && unsigned.seen().len() == 1
    })
    .await;
    assert_eq!(
        signed.bad(),
        Vec::<String>::new(),
        "every signature checks out"
    );

    let got = &signed.seen()[0];
    assert_eq!(got.headers["content-type"], "application/json");
    assert_eq!(got.headers["user-agent"], "livepeer.studio");
    // keys in Studio's order, values as emitted
    let keys: Vec<&str> = [
        "\"id\":",
        "\"webhookId\":",
        "\"createdAt\":",
        "\"timestamp\":",
        "\"event\":",
        "\"stream\":",
    ]
    .into_iter()
    .collect();
    let positions: Vec<usize> = keys
        .iter()
        .map(|k| {
            got.raw
                .find(k)
                .unwrap_or_else(|| panic!("{k} in {}", got.raw))
        })
        .collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{}", got.raw);
    assert_eq!(got.body["id"], event.id);
    assert_eq!(got.body["webhookId"], signed_id);
    assert_eq!(got.body["createdAt"], event.created_at);
    assert_eq!(got.body["event"], "stream.started");
    assert_eq!(got.body["stream"]["name"], "my-stream");
    assert!(got.body.get("payload").is_none());
    assert!(
        !unsigned.seen()[0]
            .headers
            .contains_key("livepeer-signature"),
        "no secret, no signature"
    );

    // the log is Studio's WebhookLog, and the webhook's status moved
    wait_for_state(
        &store,
        std::slice::from_ref(&event.id),
        DeliveryState::Delivered,
    )
    .await;
    let (logs, _) = webhooks
        .logs(
            &tenant,
            &signed_id,
            &Page {
                limit: 10,
                cursor: None,
            },
        )
        .await
        .expect("logs");
    assert_eq!(logs.len(), 1);
    let log = &logs[0];
    assert_eq!(log["success"], true);
    assert_eq!(log["event"], "stream.started");
    assert_eq!(log["request"]["method"], "POST");
    assert_eq!(log["request"]["url"], signed.url());
    assert_eq!(
        log["request"]["body"],
        got.raw.as_str(),
        "the exact body sent"
    );
    assert_eq!(
        log["request"]["headers"]["Livepeer-Signature"],
        got.headers["livepeer-signature"].as_str()
    );
    assert_eq!(log["response"]["status"], 200);
    assert_eq!(log["response"]["statusText"], "OK");
    assert!(log["duration"].as_f64().expect("duration") >= 0.0);
    let hook = webhooks.get(&tenant, &signed_id).await.expect("get");
    assert!(hook["status"]["lastTriggeredAt"].as_i64().is_some());
    assert!(
        hook.get("sharedSecret").is_none(),
        "write-only after create"
    );

    // resend: a new log, a new timestamp and signature, the same id
    let log_id = log["id"].as_str().expect("log id");
    let resent = webhooks
        .resend(&tenant, &signed_id, log_id)
        .await
        .expect("resend");
    assert_ne!(resent["id"], log["id"]);
    assert_eq!(resent["success"], true);
    assert_eq!(signed.seen().len(), 2);
    let again = &signed.seen()[1];
    assert_eq!(again.body["id"], event.id);
    assert_ne!(again.body["timestamp"], got.body["timestamp"]);
    assert_ne!(
        again.headers["livepeer-signature"],
        got.headers["livepeer-signature"]
    );
    assert_eq!(signed.bad(), Vec::<String>::new());
    let resent_body: Value =
        serde_json::from_str(resent["request"]["body"].as_str().expect("body")).expect("json");
    assert_eq!(resent_body["id"], event.id);
    assert_eq!(
        webhooks
            .log(&tenant, &signed_id, resent["id"].as_str().expect("id"))
            .await
            .expect("get log"),
        resent
    );
    deliverer.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_5xx_and_transport_errors_but_not_4xx() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (store, _) = sqlite_store(&dir, "retries").await;
    let tenant = store.create_tenant("acme").await.expect("tenant").id;
    let config = WebhookConfig {
        max_retries: 2,
        ..fast_config()
    };
    let webhooks = Webhooks::new(store.clone(), config.clone()).expect("webhooks");
    let flaky = Receiver::start(Mode::FailFirst(500), Some("k")).await;
    let missing = Receiver::start(Mode::Status(404), None).await;
    let flaky_id = webhook_via_routes(&webhooks, &tenant, &flaky.url(), Some("k")).await;
    let missing_id = webhook_via_routes(&webhooks, &tenant, &missing.url(), None).await;
    // nothing listens on this port: connection refused, a transport error
    let closed = format!("http://127.0.0.1:{}/hook", livefarm_testkit::free_port());
    let closed_id = webhook_via_routes(&webhooks, &tenant, &closed, None).await;

    let deliverer = spawn_deliverer(store.clone(), config.clone()).expect("deliverer");
    store
        .enqueue_event(&started("ev-1", &tenant))
        .await
        .expect("enqueue");
    wait_until(WAIT, "every delivery to end", || async {
        let rows = store
            .event_deliveries("ev-1")
            .await
            .map_err(|e| e.to_string())?;
        let done = rows
            .iter()
            .filter(|d| d.state != DeliveryState::Pending)
            .count();
        if done == 3 {
            Ok(rows)
        } else {
            Err(format!("{rows:?}"))
        }
    })
    .await;
    let rows = store.event_deliveries("ev-1").await.expect("rows");
    let row = |id: &str| {
        rows.iter()
            .find(|d| d.webhook_id == id)
            .expect("row")
            .clone()
    };

    // 500, then 200 on the retry: delivered after 2 attempts, at least retry_base_ms apart
    assert_eq!(
        (row(&flaky_id).state, row(&flaky_id).attempts),
        (DeliveryState::Delivered, 2)
    );
    let seen = flaky.seen();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].id(), seen[1].id(), "same event id on the retry");
    assert_ne!(seen[0].body["timestamp"], seen[1].body["timestamp"]);
    assert!(seen[1].at - seen[0].at >= Duration::from_millis(config.retry_base_ms));
    assert_eq!(flaky.bad(), Vec::<String>::new());
    let (logs, _) = webhooks
        .logs(
            &tenant,
            &flaky_id,
            &Page {
                limit: 10,
                cursor: None,
            },
        )
        .await
        .expect("logs");
    assert_eq!(
        logs.iter()
            .map(|l| (l["success"].clone(), l["response"]["status"].clone()))
            .collect::<Vec<_>>(),
        [(json!(true), json!(200)), (json!(false), json!(500))],
        "newest first"
    );
    let status = webhooks.get(&tenant, &flaky_id).await.expect("get")["status"].clone();
    assert_eq!(status["lastFailure"]["statusCode"], 500);

    // 404 is final: one attempt, never retried (the delivery is done, so none can follow)
    assert_eq!(
        (row(&missing_id).state, row(&missing_id).attempts),
        (DeliveryState::Failed, 1)
    );
    assert_eq!(missing.seen().len(), 1);

    // a transport error is retried until max_retries, then given up
    assert_eq!(
        (row(&closed_id).state, row(&closed_id).attempts),
        (DeliveryState::Failed, 3)
    );
    let (logs, _) = webhooks
        .logs(
            &tenant,
            &closed_id,
            &Page {
                limit: 10,
                cursor: None,
            },
        )
        .await
        .expect("logs");
    assert_eq!(logs.len(), 3);
    assert!(logs
        .iter()
        .all(|l| l["success"] == false && l.get("response").is_none()));
    let status = webhooks.get(&tenant, &closed_id).await.expect("get")["status"].clone();
    assert!(
        status["lastFailure"]["error"]
            .as_str()
            .expect("error")
            .contains("onnect"),
        "{status}"
    );
    deliverer.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_receiver_does_not_delay_other_webhooks() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (store, _) = sqlite_store(&dir, "hanging").await;
    let tenant = store.create_tenant("acme").await.expect("tenant").id;
    let config = WebhookConfig {
        // the hanging attempts stay open for the whole test
        timeout_ms: 60_000,
        lease_ms: 65_000,
        max_in_flight_per_webhook: 2,
        max_in_flight: 8,
        ..fast_config()
    };
    let webhooks = Webhooks::new(store.clone(), config.clone()).expect("webhooks");
    let hanging = Receiver::start(Mode::Hang, None).await;
    let healthy = Receiver::start(Mode::Ok, None).await;
    let hanging_id = webhook_via_routes(&webhooks, &tenant, &hanging.url(), None).await;
    webhook_via_routes(&webhooks, &tenant, &healthy.url(), None).await;

    let deliverer = spawn_deliverer(store.clone(), config).expect("deliverer");
    let ids: Vec<String> = (0..20).map(|i| format!("ev-{i}")).collect();
    for id in &ids {
        store
            .enqueue_event(&started(id, &tenant))
            .await
            .expect("enqueue");
    }
    deliverer.waker().wake();
    wait_until(WAIT, "the healthy receiver to get every event", || async {
        let n = healthy.counts().len();
        if n == ids.len() {
            Ok(())
        } else {
            Err(format!("{n} of {}", ids.len()))
        }
    })
    .await;
    // ...while the hanging receiver still holds its two attempts open, and nothing more
    assert_eq!(hanging.open(), 2, "the per-webhook bound holds");
    assert_eq!(hanging.seen().len(), 2);
    let (logs, _) = webhooks
        .logs(
            &tenant,
            &hanging_id,
            &Page {
                limit: 10,
                cursor: None,
            },
        )
        .await
        .expect("logs");
    assert!(logs.is_empty(), "no hanging attempt has finished: {logs:?}");
    drop(deliverer);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_deliverer_loses_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (store, url) = sqlite_store(&dir, "restart").await;
    let tenant = store.create_tenant("acme").await.expect("tenant").id;
    let config = WebhookConfig {
        max_in_flight: 1,
        max_in_flight_per_webhook: 1,
        ..fast_config()
    };
    let webhooks = Webhooks::new(store.clone(), config.clone()).expect("webhooks");
    let receiver = Receiver::start(Mode::Slow(Duration::from_millis(40)), Some("k")).await;
    webhook_via_routes(&webhooks, &tenant, &receiver.url(), Some("k")).await;
    let ids: Vec<String> = (0..20).map(|i| format!("ev-{i}")).collect();
    for id in &ids {
        store
            .enqueue_event(&started(id, &tenant))
            .await
            .expect("enqueue");
    }

    // a graceful stop part-way: in-flight attempts finish, the rest stay queued
    let first = spawn_deliverer(store.clone(), config.clone()).expect("deliverer");
    wait_until(WAIT, "a few deliveries", || async {
        receiver.seen().len() >= 3
    })
    .await;
    first.shutdown().await;
    let before = receiver.seen().len();
    assert!(
        before < ids.len(),
        "the test needs deliveries left at the stop"
    );

    // a new deliverer on a new connection to the same database delivers the rest, each once
    let reopened = Store::open(&url, &StoreOptions::default())
        .await
        .expect("reopen");
    let second = spawn_deliverer(reopened.clone(), config.clone()).expect("deliverer");
    wait_for_state(&reopened, &ids, DeliveryState::Delivered).await;
    let counts = receiver.counts();
    assert_eq!(counts.len(), ids.len(), "every event arrived");
    assert!(
        counts.values().all(|n| *n == 1),
        "each event id once: {counts:?}"
    );

    // an abrupt stop (the process killed mid-attempt): the lease runs out and another
    // deliverer retries; every event arrives, a duplicate only for the attempt in flight
    second.shutdown().await;
    let more: Vec<String> = (0..10).map(|i| format!("more-{i}")).collect();
    for id in &more {
        reopened
            .enqueue_event(&started(id, &tenant))
            .await
            .expect("enqueue");
    }
    let third = spawn_deliverer(reopened.clone(), config.clone()).expect("deliverer");
    wait_until(WAIT, "some of the new events", || async {
        receiver
            .counts()
            .keys()
            .filter(|k| k.starts_with("more-"))
            .count()
            >= 2
    })
    .await;
    drop(third);
    let fourth = spawn_deliverer(reopened.clone(), config.clone()).expect("deliverer");
    wait_for_state(&reopened, &more, DeliveryState::Delivered).await;
    let counts = receiver.counts();
    let dupes = more
        .iter()
        .filter(|id| counts.get(*id).copied().unwrap_or(0) > 1)
        .count();
    assert!(
        more.iter().all(|id| counts.contains_key(id)),
        "every event arrived: {counts:?}"
    );
    assert!(
        dupes <= config.max_in_flight as usize,
        "{dupes} duplicates: {counts:?}"
    );
    assert_eq!(receiver.bad(), Vec::<String>::new());
    fourth.shutdown().await;
}

/// Two deliverers (two replicas) on one database: each event reaches each webhook once.
async fn two_deliverers_deliver_each_event_once(first: Store, second: Store) {
    let tenant = first.create_tenant("acme").await.expect("tenant").id;
    let config = WebhookConfig {
        max_in_flight: 4,
        ..fast_config()
    };
    let webhooks = Webhooks::new(first.clone(), config.clone()).expect("webhooks");
    let a = Receiver::start(Mode::Ok, Some("a")).await;
    let b = Receiver::start(Mode::Slow(Duration::from_millis(5)), Some("b")).await;
    webhook_via_routes(&webhooks, &tenant, &a.url(), Some("a")).await;
    webhook_via_routes(&webhooks, &tenant, &b.url(), Some("b")).await;
    let one = spawn_deliverer(first.clone(), config.clone()).expect("deliverer");
    let two = spawn_deliverer(second.clone(), config.clone()).expect("deliverer");
    let ids: Vec<String> = (0..40).map(|i| format!("ev-{i}")).collect();
    for id in &ids {
        first
            .enqueue_event(&started(id, &tenant))
            .await
            .expect("enqueue");
    }
    wait_for_state(&first, &ids, DeliveryState::Delivered).await;
    for receiver in [&a, &b] {
        let counts = receiver.counts();
        assert_eq!(
            counts.keys().cloned().collect::<HashSet<_>>(),
            ids.iter().cloned().collect::<HashSet<_>>()
        );
        assert!(
            counts.values().all(|n| *n == 1),
            "each event once: {counts:?}"
        );
        assert_eq!(receiver.bad(), Vec::<String>::new());
    }
    one.shutdown().await;
    two.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_deliverers_on_sqlite() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (first, url) = sqlite_store(&dir, "two").await;
    let second = Store::open(&url, &StoreOptions::default())
        .await
        .expect("second");
    two_deliverers_deliver_each_event_once(first, second).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_deliverers_on_postgres() {
    let Some(server) = PgServer::start_or_skip() else {
        return;
    };
    let url = server.fresh_database("two_deliverers").await;
    let first = Store::open(&url, &StoreOptions::default())
        .await
        .expect("first");
    let second = Store::open(&url, &StoreOptions::default())
        .await
        .expect("second");
    two_deliverers_deliver_each_event_once(first.clone(), second.clone()).await;
    first.close().await;
    second.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_targets_are_refused_at_create_and_at_delivery() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (store, _) = sqlite_store(&dir, "ssrf").await;
    let tenant = store.create_tenant("acme").await.expect("tenant").id;
    let strict = WebhookConfig {
        allow_private_targets: false,
        ..fast_config()
    };
    let webhooks = Webhooks::new(store.clone(), strict.clone()).expect("webhooks");
    for url in [
        "http://127.0.0.1:8080/hook",
        "http://10.1.2.3/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "http://localhost:8080/hook",
    ] {
        let error = webhooks
            .create(&tenant, input(url, None))
            .await
            .expect_err(url);
        assert_eq!(error.status(), 422, "{url}: {error}");
        assert!(
            error.to_string().contains("public addresses"),
            "{url}: {error}"
        );
    }
    assert_eq!(store.count_webhooks(&tenant).await.expect("count"), 0);

    // rows that got past the check (made while allowed, or DNS changed since) are refused
    // when the attempt connects, once, without retries, and logged
    let receiver = Receiver::start(Mode::Ok, None).await;
    let port = receiver.addr.port();
    let mut ids = Vec::new();
    for url in [
        format!("http://localhost:{port}/hook"),
        format!("http://127.0.0.1:{port}/hook"),
    ] {
        let made = store
            .create_webhook(
                &tenant,
                &NewWebhook {
                    name: "sneaky".to_owned(),
                    url,
                    events: vec!["stream.started".to_owned()],
                    ..NewWebhook::default()
                },
            )
            .await
            .expect("create");
        ids.push(made.id);
    }
    let deliverer = spawn_deliverer(store.clone(), strict).expect("deliverer");
    store
        .enqueue_event(&started("ev-1", &tenant))
        .await
        .expect("enqueue");
    wait_for_state(&store, &["ev-1".to_owned()], DeliveryState::Failed).await;
    assert!(
        receiver.seen().is_empty(),
        "nothing reached the loopback receiver"
    );
    for id in &ids {
        let row = store
            .event_deliveries("ev-1")
            .await
            .expect("rows")
            .into_iter()
            .find(|d| &d.webhook_id == id)
            .expect("row");
        assert_eq!(row.attempts, 1, "a refusal is final");
        let hook = webhooks.get(&tenant, id).await.expect("get");
        let error = hook["status"]["lastFailure"]["error"]
            .as_str()
            .expect("error");
        assert!(error.contains("loopback"), "{error}");
    }
    deliverer.shutdown().await;
}
