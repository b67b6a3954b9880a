//! Test helpers for leader election (feature `testing`): a client for a kubeconfig (the real
//! API server of `livefarm_testkit::kube::ControlPlane`), and a fake Kubernetes API server for
//! the faults the real one cannot produce on demand.
//!
//! The fake is a small axum server on 127.0.0.1 that keeps `coordination.k8s.io/v1` Lease
//! objects in memory and answers GET, POST (create; 409 AlreadyExists when present) and PUT
//! (replace; 409 Conflict when `metadata.resourceVersion` is stale), bumping `resourceVersion`
//! on every write and answering errors as Kubernetes `Status` objects, as the real API server
//! does. What only it can do: answer 500s (every request, or only writes after reads
//! succeeded), and hold racing candidates' reads at a barrier so that all of them read the
//! same resourceVersion before any writes (the real server's 409 is then the only thing that
//! stops all of them from winning, deterministically).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::KubeLease;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};
use tokio::sync::Barrier;

pub const NS: &str = "livefarm";

#[derive(Default)]
pub struct Fake {
    pub leases: Mutex<HashMap<(String, String), Value>>,
    pub resource_version: AtomicU64,
    /// 409 answers given (AlreadyExists and Conflict).
    pub conflicts: AtomicU64,
    /// Writes accepted (creates and replaces).
    pub writes: AtomicU64,
    /// When set, every request is answered with this status code.
    pub fail_with: Mutex<Option<u16>>,
    /// When set, creates and replaces are answered with this status code.
    pub fail_writes_with: Mutex<Option<u16>>,
    /// When set, GETs of a lease wait on it, so that racing candidates all read the same
    /// resourceVersion before any of them writes.
    pub get_barrier: Mutex<Option<Arc<Barrier>>>,
    /// Requests that reached a handler.
    pub requests: AtomicU64,
}

impl Fake {
    pub fn lease(&self, name: &str) -> Option<Value> {
        self.leases
            .lock()
            .expect("fake state")
            .get(&(NS.to_owned(), name.to_owned()))
            .cloned()
    }

    fn next_version(&self) -> String {
        (self.resource_version.fetch_add(1, Ordering::SeqCst) + 1).to_string()
    }

    fn failure(&self, write: bool) -> Option<Response> {
        self.requests.fetch_add(1, Ordering::SeqCst);
        let code = (*self.fail_with.lock().expect("fake state")).or_else(|| {
            write
                .then(|| *self.fail_writes_with.lock().expect("fake state"))
                .flatten()
        })?;
        let reason = match code {
            503 => "ServiceUnavailable",
            _ => "InternalError",
        };
        Some(status(code, reason, "injected failure".into()))
    }
}

/// A Kubernetes `Status` error object.
fn status(code: u16, reason: &str, message: String) -> Response {
    let body = json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "details": { "group": "coordination.k8s.io", "kind": "leases" },
        "code": code,
    });
    (
        StatusCode::from_u16(code).expect("valid status code"),
        Json(body),
    )
        .into_response()
}

async fn get_lease(
    State(fake): State<Arc<Fake>>,
    Path((ns, name)): Path<(String, String)>,
) -> Response {
    if let Some(failure) = fake.failure(false) {
        return failure;
    }
    // Read before waiting, so that racing candidates all see the same version.
    let lease = fake
        .leases
        .lock()
        .expect("fake state")
        .get(&(ns, name.clone()))
        .cloned();
    let barrier = fake.get_barrier.lock().expect("fake state").clone();
    if let Some(barrier) = barrier {
        barrier.wait().await;
    }
    match lease {
        Some(lease) => Json(lease).into_response(),
        None => status(
            404,
            "NotFound",
            format!("leases.coordination.k8s.io \"{name}\" not found"),
        ),
    }
}

async fn create_lease(
    State(fake): State<Arc<Fake>>,
    Path(ns): Path<String>,
    Json(mut lease): Json<Value>,
) -> Response {
    if let Some(failure) = fake.failure(true) {
        return failure;
    }
    let Some(name) = lease["metadata"]["name"].as_str().map(str::to_owned) else {
        return status(422, "Invalid", "metadata.name: Required value".into());
    };
    let mut leases = fake.leases.lock().expect("fake state");
    let key = (ns.clone(), name.clone());
    if leases.contains_key(&key) {
        fake.conflicts.fetch_add(1, Ordering::SeqCst);
        return status(
            409,
            "AlreadyExists",
            format!("leases.coordination.k8s.io \"{name}\" already exists"),
        );
    }
    lease["metadata"]["namespace"] = json!(ns);
    lease["metadata"]["resourceVersion"] = json!(fake.next_version());
    lease["metadata"]["uid"] = json!(format!("uid-{name}"));
    leases.insert(key, lease.clone());
    fake.writes.fetch_add(1, Ordering::SeqCst);
    (StatusCode::CREATED, Json(lease)).into_response()
}

async fn replace_lease(
    State(fake): State<Arc<Fake>>,
    Path((ns, name)): Path<(String, String)>,
    Json(mut lease): Json<Value>,
) -> Response {
    if let Some(failure) = fake.failure(true) {
        return failure;
    }
    let mut leases = fake.leases.lock().expect("fake state");
    let key = (ns.clone(), name.clone());
    let Some(stored) = leases.get(&key) else {
        return status(
            404,
            "NotFound",
            format!("leases.coordination.k8s.io \"{name}\" not found"),
        );
    };
    if lease["metadata"]["resourceVersion"] != stored["metadata"]["resourceVersion"] {
        fake.conflicts.fetch_add(1, Ordering::SeqCst);
        return status(
            409,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on leases.coordination.k8s.io \"{name}\": \
                 the object has been modified; please apply your changes to the latest version \
                 and try again"
            ),
        );
    }
    lease["metadata"]["namespace"] = json!(ns);
    lease["metadata"]["resourceVersion"] = json!(fake.next_version());
    leases.insert(key, lease.clone());
    fake.writes.fetch_add(1, Ordering::SeqCst);
    Json(lease).into_response()
}

/// The fake's routes: the Lease endpoints of `coordination.k8s.io/v1`.
pub fn router(fake: Arc<Fake>) -> Router {
    Router::new()
        .route(
            "/apis/coordination.k8s.io/v1/namespaces/{ns}/leases",
            post(create_lease),
        )
        .route(
            "/apis/coordination.k8s.io/v1/namespaces/{ns}/leases/{name}",
            get(get_lease).put(replace_lease),
        )
        .with_state(fake)
}

/// The fake over plain http on a free loopback port.
pub async fn start_fake() -> (Arc<Fake>, SocketAddr) {
    let fake = Arc::new(Fake::default());
    let app = router(fake.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind fake");
    let addr = listener.local_addr().expect("local addr");
    tokio::spawn(async move { axum::serve(listener, app).await.expect("fake serves") });
    (fake, addr)
}

/// A lease client for `name` on the plain-http fake at `addr`.
pub fn lease_at(addr: SocketAddr, name: &str) -> KubeLease {
    let config = kube::Config::new(format!("http://{addr}").parse().expect("url"));
    let client = kube::Client::try_from(config).expect("client");
    KubeLease::new(client, NS, name)
}

/// A client for the cluster and user of a kubeconfig given as YAML text.
pub async fn client_from_kubeconfig(yaml: &str) -> kube::Client {
    crate::install_crypto_provider();
    let kubeconfig = kube::config::Kubeconfig::from_yaml(yaml).expect("kubeconfig parses");
    let config = kube::Config::from_custom_kubeconfig(
        kubeconfig,
        &kube::config::KubeConfigOptions::default(),
    )
    .await
    .expect("kubeconfig is usable");
    kube::Client::try_from(config).expect("client")
}
