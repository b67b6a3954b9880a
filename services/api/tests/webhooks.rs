//! Webhooks through the api, end to end: a webhook made over HTTP, an ingest `started` event
//! on the bus, and a real receiver on loopback that checks every `Livepeer-Signature`. The
//! receiver fails while the first api runs, so deliveries are pending when it stops; a
//! second api over the same database delivers them: each event id reaches the receiver once.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use common::{call, config, tenant_with_key, unique};
use livefarm_api::{Store, StoreOptions};
use livefarm_bus::{Headers, JobBus};
use livefarm_jobs::{StreamEvent, StreamEventKind, STREAM_EVENTS};
use livefarm_runtime::Shutdown;
use livefarm_storage::Storage;
use livefarm_store::NewStream;
use livefarm_testkit::wait_until;
use serde_json::Value;

const SECRET: &str = "receiver-secret";

/// What the receiver saw: every attempt's (event id, event name, answered status).
#[derive(Debug, Default)]
struct Seen {
    attempts: Vec<(String, String, u16)>,
    bad_signatures: usize,
    failing: bool,
}

type Receiver = Arc<Mutex<Seen>>;

async fn receive(State(seen): State<Receiver>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let mut seen = seen.lock().expect("receiver lock");
    let value: Value = serde_json::from_slice(&body).unwrap_or_default();
    let signed = headers
        .get("livepeer-signature")
        .and_then(|h| h.to_str().ok())
        .and_then(|h| {
            livefarm_webhooks::verify(
                h,
                &body,
                SECRET,
                livefarm_store::ids::now_ms(),
                Duration::from_secs(300),
            )
            .ok()
        });
    if signed.is_none() || signed != value["timestamp"].as_i64() {
        seen.bad_signatures += 1;
        return StatusCode::UNAUTHORIZED;
    }
    let status = if seen.failing {
        StatusCode::INTERNAL_SERVER_ERROR
    } else {
        StatusCode::NO_CONTENT
    };
    let id = value["id"].as_str().unwrap_or_default().to_owned();
    let event = value["event"].as_str().unwrap_or_default().to_owned();
    seen.attempts.push((id, event, status.as_u16()));
    status
}

async fn publish(bus: &Arc<dyn JobBus>, kind: StreamEventKind, stream_id: &str, session: &str) {
    let event = StreamEvent {
        event: kind,
        stream_id: stream_id.to_owned(),
        session_id: session.to_owned(),
        protocol: "rtmp".to_owned(),
        first_seq: 0,
        next_seq: 0,
        segments: 0,
        duration_ms: 0,
        discontinuity: false,
        at_ms: livefarm_jobs::now_ms(),
    };
    let payload = serde_json::to_vec(&event).expect("event json");
    bus.publish(STREAM_EVENTS, &payload, &Headers::new())
        .await
        .expect("publish");
}

fn delivered(seen: &Receiver, event: &str) -> Vec<String> {
    seen.lock()
        .expect("receiver lock")
        .attempts
        .iter()
        .filter(|(_, name, status)| name == event && *status < 300)
        .map(|(id, _, _)| id.clone())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pending_deliveries_survive_an_api_restart_and_arrive_once() {
    let seen: Receiver = Arc::new(Mutex::new(Seen {
        failing: true,
        ..Seen::default()
    }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind receiver");
    let receiver = listener.local_addr().expect("addr");
    let app = axum::Router::new()
        .route("/hook", post(receive))
        .with_state(seen.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });

    let dir = tempfile::tempdir().expect("tempdir");
    let database = format!("sqlite://{}/livefarm.db", dir.path().display());
    let mut config = config(&format!("memory://{}", unique("hooks")), &database);
    config.webhooks.allow_private_targets = true;
    config.webhooks.retry_base_ms = 200;
    config.webhooks.retry_max_ms = 400;
    config.lifecycle.idle_grace_ms = 200;
    config.lifecycle.sweep_interval_ms = 100;
    let bus = livefarm_bus::connect(&config.bus_url).await.expect("bus");
    let storage = Storage::from_url("memory://").await.expect("storage");
    let store = Store::open(&database, &StoreOptions::default())
        .await
        .expect("store");
    let (tenant, key) = tenant_with_key(&store, "acme").await;
    let start = |shutdown: Shutdown| {
        let (config, bus, storage, store) =
            (config.clone(), bus.clone(), storage.clone(), store.clone());
        async move {
            livefarm_api::start_with(&config, bus, storage, store, shutdown)
                .await
                .expect("api starts")
        }
    };

    let shutdown = Shutdown::new();
    let api = start(shutdown.clone()).await;
    let body = format!(
        r#"{{"name":"hook","url":"http://{receiver}/hook","events":["stream.started","stream.idle"],"sharedSecret":"{SECRET}"}}"#
    );
    let created = call(
        api.local_addr(),
        "POST",
        "/api/webhook",
        Some(&key),
        Some(&body),
    )
    .await;
    assert_eq!(created.status, 200, "{}", created.text());
    let webhook: Value = serde_json::from_slice(&created.body).expect("webhook json");
    let webhook_id = webhook["id"].as_str().expect("id").to_owned();
    let stream = store
        .create_stream(
            &tenant,
            NewStream {
                name: "cam".to_owned(),
                ..NewStream::default()
            },
        )
        .await
        .expect("stream");

    // started while the receiver fails: attempts are made, logged, and stay pending
    publish(&bus, StreamEventKind::Started, &stream.id, "session-1").await;
    wait_until(Duration::from_secs(20), "a failed attempt", || async {
        seen.lock().expect("lock").attempts.len() >= 2
    })
    .await;
    let logs = call(
        api.local_addr(),
        "GET",
        &format!("/api/webhook/{webhook_id}/log"),
        Some(&key),
        None,
    )
    .await;
    assert_eq!(logs.status, 200, "{}", logs.text());
    let logs: Vec<Value> = serde_json::from_slice(&logs.body).expect("logs");
    assert!(logs.iter().all(|l| l["success"] == false), "{logs:?}");
    shutdown.trigger();
    api.wait().await.expect("first api stops");

    // a new api over the same database delivers what was pending, then goes on
    seen.lock().expect("lock").failing = false;
    let shutdown = Shutdown::new();
    let api = start(shutdown.clone()).await;
    wait_until(
        Duration::from_secs(20),
        "stream.started delivered",
        || async { !delivered(&seen, "stream.started").is_empty() },
    )
    .await;
    publish(&bus, StreamEventKind::Ended, &stream.id, "session-1").await;
    wait_until(Duration::from_secs(20), "stream.idle delivered", || async {
        !delivered(&seen, "stream.idle").is_empty()
    })
    .await;
    // both deliveries are finished in the store (no further attempt can come), and each
    // event id arrived once
    let ids: Vec<String> = delivered(&seen, "stream.started")
        .into_iter()
        .chain(delivered(&seen, "stream.idle"))
        .collect();
    for id in &ids {
        wait_until(Duration::from_secs(10), "delivery recorded", || async {
            store
                .event_deliveries(id)
                .await
                .expect("deliveries")
                .iter()
                .all(|d| d.state == livefarm_store::DeliveryState::Delivered)
        })
        .await;
    }
    let started = delivered(&seen, "stream.started");
    let idle = delivered(&seen, "stream.idle");
    assert_eq!((started.len(), idle.len()), (1, 1), "{started:?} {idle:?}");
    assert_ne!(started[0], idle[0]);
    assert_eq!(seen.lock().expect("lock").bad_signatures, 0);
    let logs = call(
        api.local_addr(),
        "GET",
        &format!("/api/webhook/{webhook_id}/log"),
        Some(&key),
        None,
    )
    .await;
    let logs: Vec<Value> = serde_json::from_slice(&logs.body).expect("logs");
    assert!(logs.iter().any(|l| l["success"] == true), "{logs:?}");
    shutdown.trigger();
    api.wait().await.expect("second api stops");
}
