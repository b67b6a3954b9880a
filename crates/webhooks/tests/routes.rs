//! The routes' logic ([`Webhooks`]) as the api's handlers call it: statuses and bodies the
//! SDKs expect (§5.2, §10), errors for bad input, tenancy.

mod common;

use common::{fast_config, sqlite_store, Mode, Receiver};
use livefarm_store::{NewEvent, Page};
use livefarm_webhooks::{spawn_deliverer, WebhookInput, Webhooks};
use serde_json::json;

fn input(body: serde_json::Value) -> WebhookInput {
    WebhookInput::from_json(body.to_string().as_bytes()).expect("input")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crud_as_the_sdks_expect() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (store, _) = sqlite_store(&dir, "crud").await;
    let tenant = store.create_tenant("acme").await.expect("tenant").id;
    let intruder = store.create_tenant("intruder").await.expect("tenant").id;
    let webhooks = Webhooks::new(store.clone(), fast_config()).expect("webhooks");

    let made = webhooks
        .create(
            &tenant,
            input(json!({"name": "hook", "url": "https://example.com/h",
                         "events": ["stream.started", "recording.ready"],
                         "sharedSecret": "s3cret", "projectId": "p-1"})),
        )
        .await
        .expect("create");
    let id = made["id"].as_str().expect("id").to_owned();
    assert_eq!(made["kind"], "webhook");
    assert_eq!(made["name"], "hook");
    assert_eq!(made["url"], "https://example.com/h");
    assert_eq!(made["events"], json!(["stream.started", "recording.ready"]));
    assert_eq!(made["projectId"], "p-1");
    assert_eq!(
        made["sharedSecret"], "s3cret",
        "echoed on create, as Studio"
    );
    assert!(made["createdAt"].as_i64().is_some());

    let got = webhooks.get(&tenant, &id).await.expect("get");
    assert!(got.get("sharedSecret").is_none());
    assert_eq!(got["id"], id.as_str());
    let (listed, next) = webhooks
        .list(
            &tenant,
            &Page {
                limit: 20,
                cursor: None,
            },
        )
        .await
        .expect("list");
    assert_eq!((listed, next), (vec![got.clone()], None));
    assert_eq!(webhooks.count(&tenant).await.expect("count"), 1);

    // PUT by the path id, full object back; the secret stays when omitted
    let updated = webhooks
        .replace(
            &tenant,
            &id,
            input(json!({"name": "renamed", "url": "https://example.org/h2", "events": ["stream.idle"]})),
        )
        .await
        .expect("replace");
    assert_eq!(updated["name"], "renamed");
    assert_eq!(updated["url"], "https://example.org/h2");
    assert_eq!(updated["events"], json!(["stream.idle"]));
    assert!(updated.get("projectId").is_none(), "replaced, not merged");
    assert_eq!(
        store
            .webhook(&tenant, &id)
            .await
            .expect("row")
            .expect("found")
            .shared_secret
            .as_deref(),
        Some("s3cret")
    );

    // another tenant sees nothing and changes nothing
    for error in [
        webhooks.get(&intruder, &id).await.expect_err("get"),
        webhooks
            .replace(
                &intruder,
                &id,
                input(json!({"name": "x", "url": "https://e.com", "events": []})),
            )
            .await
            .expect_err("replace"),
        webhooks.delete(&intruder, &id).await.expect_err("delete"),
        webhooks
            .logs(
                &intruder,
                &id,
                &Page {
                    limit: 5,
                    cursor: None,
                },
            )
            .await
            .expect_err("logs"),
    ] {
        assert_eq!(error.status(), 404, "{error}");
        assert_eq!(error.to_string(), "webhook not found");
    }
    // 404 comes before validation for an unknown id
    let error = webhooks
        .replace(
            &tenant,
            "nope",
            input(json!({"name": "x", "url": "ftp://e", "events": []})),
        )
        .await
        .expect_err("replace");
    assert_eq!(error.status(), 404);
    let error = webhooks
        .replace(
            &tenant,
            &id,
            input(json!({"name": "x", "url": "ftp://e", "events": []})),
        )
        .await
        .expect_err("replace");
    assert_eq!(
        (error.status(), error.to_string()),
        (422, "bad url: ftp://e".to_owned())
    );
    let error = webhooks
        .list(
            &tenant,
            &Page {
                limit: 5,
                cursor: Some("junk".to_owned()),
            },
        )
        .await
        .expect_err("cursor");
    assert_eq!(error.status(), 400, "{error}");

    // DELETE: 200 with the webhook; then gone
    let deleted = webhooks.delete(&tenant, &id).await.expect("delete");
    assert_eq!(deleted["id"], id.as_str());
    assert_eq!(deleted["name"], "renamed");
    assert_eq!(
        webhooks.get(&tenant, &id).await.expect_err("gone").status(),
        404
    );
    assert_eq!(
        webhooks
            .delete(&tenant, &id)
            .await
            .expect_err("again")
            .status(),
        404
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_routes_check_ownership() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (store, _) = sqlite_store(&dir, "logs").await;
    let tenant = store.create_tenant("acme").await.expect("tenant").id;
    let intruder = store.create_tenant("intruder").await.expect("tenant").id;
    let webhooks = Webhooks::new(store.clone(), fast_config()).expect("webhooks");
    let receiver = Receiver::start(Mode::Ok, None).await;
    let body = json!({"name": "h", "url": receiver.url(), "events": ["stream.idle"]});
    let first = webhooks
        .create(&tenant, input(body.clone()))
        .await
        .expect("create");
    let second = webhooks.create(&tenant, input(body)).await.expect("create");
    let (first, second) = (
        first["id"].as_str().expect("id").to_owned(),
        second["id"].as_str().expect("id").to_owned(),
    );
    let deliverer = spawn_deliverer(store.clone(), fast_config()).expect("deliverer");
    store
        .enqueue_event(&NewEvent {
            id: livefarm_webhooks::event_id(&["session-1", "stream.idle"]),
            tenant_id: tenant.clone(),
            event: "stream.idle",
            created_at: 1,
            stream: None,
            payload: Some(json!({"x": 1})),
        })
        .await
        .expect("enqueue");
    let log_id =
        livefarm_testkit::wait_until(std::time::Duration::from_secs(30), "a log", || async {
            let (logs, _) = webhooks
                .logs(
                    &tenant,
                    &first,
                    &Page {
                        limit: 5,
                        cursor: None,
                    },
                )
                .await
                .map_err(|e| e.to_string())?;
            logs.first()
                .and_then(|l| l["id"].as_str().map(str::to_owned))
                .ok_or_else(|| "no log yet".to_owned())
        })
        .await;
    deliverer.shutdown().await;

    let log = webhooks.log(&tenant, &first, &log_id).await.expect("log");
    assert_eq!(log["webhookId"], first.as_str());
    assert_eq!(log["event"], "stream.idle");
    let error = webhooks
        .log(&tenant, &second, &log_id)
        .await
        .expect_err("mismatch");
    assert_eq!(
        (error.status(), error.to_string()),
        (400, "mismatch between webhook and webhook log".to_owned())
    );
    let error = webhooks
        .log(&tenant, &first, "nope")
        .await
        .expect_err("unknown");
    assert_eq!(
        (error.status(), error.to_string()),
        (404, "webhook log not found".to_owned())
    );
    assert_eq!(
        webhooks
            .log(&intruder, &first, &log_id)
            .await
            .expect_err("other")
            .status(),
        404
    );
    assert_eq!(
        webhooks
            .resend(&intruder, &first, &log_id)
            .await
            .expect_err("other")
            .status(),
        404
    );
    let resent = webhooks
        .resend(&tenant, &first, &log_id)
        .await
        .expect("resend");
    assert_eq!(resent["webhookId"], first.as_str());
    let bodies: Vec<_> = receiver.seen().into_iter().map(|r| r.body).collect();
    assert_eq!(
        bodies
            .iter()
            .filter(|b| b["webhookId"] == first.as_str())
            .count(),
        2
    );
    assert!(bodies.iter().all(|b| b["payload"] == json!({"x": 1})));
}
