//! A real HTTP webhook receiver on loopback (axum), checking every signature as a customer's
//! receiver would, and a store on a fresh SQLite file.

#![allow(dead_code)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use livefarm_store::ids::now_ms;
use livefarm_store::{Store, StoreOptions};
use livefarm_webhooks::{verify, WebhookConfig};
use serde_json::Value;

/// What the receiver answers.
#[derive(Clone, Debug)]
pub enum Mode {
    /// 200 at once.
    Ok,
    /// 200 after this long (a slow but healthy receiver).
    Slow(Duration),
    /// This status on the first request of each event id, 200 afterwards.
    FailFirst(u16),
    /// Always this status.
    Status(u16),
    /// Never answers.
    Hang,
}

/// One request as the receiver saw it.
#[derive(Clone, Debug)]
pub struct Received {
    pub raw: String,
    pub body: Value,
    pub headers: HashMap<String, String>,
    pub at: Instant,
}

impl Received {
    pub fn id(&self) -> &str {
        self.body["id"].as_str().unwrap_or_default()
    }
}

#[derive(Clone)]
struct Shared {
    mode: Mode,
    secret: Option<String>,
    seen: Arc<Mutex<Vec<Received>>>,
    bad: Arc<Mutex<Vec<String>>>,
    open: Arc<AtomicUsize>,
}

/// A running receiver.
#[derive(Clone)]
pub struct Receiver {
    pub addr: SocketAddr,
    shared: Shared,
}

impl Receiver {
    /// Starts a receiver on a free loopback port that checks signatures with `secret`.
    pub async fn start(mode: Mode, secret: Option<&str>) -> Receiver {
        let shared = Shared {
            mode,
            secret: secret.map(str::to_owned),
            seen: Arc::default(),
            bad: Arc::default(),
            open: Arc::default(),
        };
        let app = Router::new()
            .route("/hook", post(receive))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind receiver");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            axum::serve(listener, app).await.expect("receiver serves");
        });
        Receiver { addr, shared }
    }

    pub fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    pub fn seen(&self) -> Vec<Received> {
        self.shared.seen.lock().expect("lock").clone()
    }

    /// How many requests carried each event id.
    pub fn counts(&self) -> HashMap<String, usize> {
        let mut counts = HashMap::new();
        for r in self.seen() {
            *counts.entry(r.id().to_owned()).or_insert(0) += 1;
        }
        counts
    }

    /// Requests whose signature or timestamp did not check out (must stay empty).
    pub fn bad(&self) -> Vec<String> {
        self.shared.bad.lock().expect("lock").clone()
    }

    /// Requests still waiting for an answer (hanging mode).
    pub fn open(&self) -> usize {
        self.shared.open.load(Ordering::SeqCst)
    }
}

/// Counts a hanging request while its connection is open.
struct OpenGuard(Arc<AtomicUsize>);

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn receive(State(shared): State<Shared>, headers: HeaderMap, raw: Bytes) -> StatusCode {
    let raw = String::from_utf8_lossy(&raw).into_owned();
    let headers: HashMap<String, String> = headers
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_owned(),
                v.to_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    let body: Value = serde_json::from_str(&raw).unwrap_or(Value::Null);
    // what a receiver does: HMAC over the raw body, t recent and equal to body.timestamp
    if let Some(secret) = &shared.secret {
        match headers.get("livepeer-signature") {
            None => shared
                .bad
                .lock()
                .expect("lock")
                .push(format!("unsigned: {raw}")),
            Some(header) => {
                match verify(
                    header,
                    raw.as_bytes(),
                    secret,
                    now_ms(),
                    Duration::from_secs(60),
                ) {
                    Ok(t) if Some(t) == body["timestamp"].as_i64() => {}
                    Ok(t) => shared
                        .bad
                        .lock()
                        .expect("lock")
                        .push(format!("t={t} but body.timestamp={}", body["timestamp"])),
                    Err(e) => shared.bad.lock().expect("lock").push(format!("{e}: {raw}")),
                }
            }
        }
    }
    let first = {
        let mut seen = shared.seen.lock().expect("lock");
        let id = body["id"].clone();
        let first = !seen.iter().any(|r| r.body["id"] == id);
        seen.push(Received {
            raw,
            body,
            headers,
            at: Instant::now(),
        });
        first
    };
    match shared.mode {
        Mode::Ok => StatusCode::OK,
        Mode::Slow(delay) => {
            tokio::time::sleep(delay).await;
            StatusCode::OK
        }
        Mode::FailFirst(status) if first => {
            StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
        }
        Mode::FailFirst(_) => StatusCode::OK,
        Mode::Status(status) => {
            StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
        }
        Mode::Hang => {
            shared.open.fetch_add(1, Ordering::SeqCst);
            let _guard = OpenGuard(Arc::clone(&shared.open));
            std::future::pending::<StatusCode>().await
        }
    }
}

/// A migrated store on a new SQLite file in `dir`, and its URL.
pub async fn sqlite_store(dir: &tempfile::TempDir, name: &str) -> (Store, String) {
    let url = format!("sqlite://{}/{name}.db", dir.path().display());
    let store = Store::open(&url, &StoreOptions::default())
        .await
        .expect("open sqlite");
    (store, url)
}

/// Quick retries and polls, private targets allowed (the receivers are on loopback).
pub fn fast_config() -> WebhookConfig {
    WebhookConfig {
        allow_private_targets: true,
        timeout_ms: 2_000,
        retry_base_ms: 100,
        retry_max_ms: 400,
        poll_interval_ms: 50,
        lease_ms: 3_000,
        shutdown_grace_ms: 5_000,
        ..WebhookConfig::default()
    }
}
