//! What the api's test files share: an api on a memory bus and storage over a real database
//! (a SQLite file, or a real PostgreSQL server), a tenant with an API key, and HTTP calls.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;

use livefarm_api::{ApiConfig, ApiServer, Store, StoreOptions};
use livefarm_bus::JobBus;
use livefarm_runtime::Shutdown;
use livefarm_storage::Storage;
use livefarm_testkit::{http_request_async, HttpReply};

/// A running api with its parts.
pub struct Api {
    pub server: ApiServer,
    pub shutdown: Shutdown,
    pub store: Store,
    pub bus: Arc<dyn JobBus>,
    pub storage: Storage,
    /// A tenant's API key (named `tok`) and the tenant id.
    pub key: String,
    pub tenant: String,
    _dir: Option<tempfile::TempDir>,
}

/// A fresh bus name, so that tests in one process do not share a memory bus.
pub fn unique(prefix: &str) -> String {
    let id = livefarm_store::ids::uuid_v4().expect("random id");
    format!("{prefix}-{id}")
}

/// The API config of the tests: loopback, free ports, fast polling.
pub fn config(bus_url: &str, database_url: &str) -> ApiConfig {
    ApiConfig {
        listen: "127.0.0.1:0".parse().expect("addr"),
        admin_listen: "127.0.0.1:0".parse().expect("addr"),
        bus_url: bus_url.to_owned(),
        database_url: database_url.to_owned(),
        poll_interval_ms: 50,
        ..ApiConfig::default()
    }
}

/// A tenant named `name` with a key named `tok`: (tenant id, secret).
pub async fn tenant_with_key(store: &Store, name: &str) -> (String, String) {
    let tenant = store.create_tenant(name).await.expect("tenant");
    let key = store
        .create_api_key(&tenant.id, "tok")
        .await
        .expect("api key");
    (tenant.id, key.secret)
}

/// Starts an api over `config`, on a SQLite file of its own unless `database_url` is set.
pub async fn start(mut config: ApiConfig) -> Api {
    let dir = if config.database_url.starts_with("postgres") {
        None
    } else {
        let dir = tempfile::tempdir().expect("tempdir");
        config.database_url = format!("sqlite://{}/livefarm.db", dir.path().display());
        Some(dir)
    };
    let bus = livefarm_bus::connect(&config.bus_url).await.expect("bus");
    let storage = Storage::from_url("memory://").await.expect("storage");
    let store = Store::open(&config.database_url, &StoreOptions::default())
        .await
        .expect("store");
    let (tenant, key) = tenant_with_key(&store, "acme").await;
    let shutdown = Shutdown::new();
    let server = livefarm_api::start_with(
        &config,
        bus.clone(),
        storage.clone(),
        store.clone(),
        shutdown.clone(),
    )
    .await
    .expect("server starts");
    Api {
        server,
        shutdown,
        store,
        bus,
        storage,
        key,
        tenant,
        _dir: dir,
    }
}

/// An api on a private memory bus and a SQLite file of its own.
pub async fn start_sqlite() -> Api {
    start(config(&format!("memory://{}", unique("api")), "")).await
}

impl Api {
    pub fn addr(&self) -> SocketAddr {
        self.server.local_addr()
    }

    /// A call with this api's key.
    pub async fn call(&self, method: &str, path: &str, body: Option<&str>) -> HttpReply {
        call(self.addr(), method, path, Some(&self.key), body).await
    }

    /// A call with this api's key, answered with `status` and a JSON body.
    pub async fn json(
        &self,
        method: &str,
        path: &str,
        body: Option<&str>,
        status: u16,
    ) -> serde_json::Value {
        let reply = self.call(method, path, body).await;
        assert_eq!(reply.status, status, "{method} {path}: {}", reply.text());
        assert!(
            reply
                .header("content-type")
                .is_some_and(|t| t.starts_with("application/json")),
            "{method} {path}: {:?}",
            reply.header("content-type")
        );
        serde_json::from_slice(&reply.body).expect("json body")
    }

    /// Creates a stream with `body` (201).
    pub async fn create_stream(&self, body: &str) -> serde_json::Value {
        self.json("POST", "/api/stream", Some(body), 201).await
    }

    pub async fn stop(self) {
        self.shutdown.trigger();
        self.server.wait().await.expect("clean shutdown");
    }
}

/// One HTTP call with `key` as bearer (none when `None`) and, with a body, JSON's content type
/// (and, without one, the `application/octet-stream` the Python SDK sends).
pub async fn call(
    addr: SocketAddr,
    method: &str,
    path: &str,
    key: Option<&str>,
    body: Option<&str>,
) -> HttpReply {
    let auth = key.map(|k| format!("Bearer {k}"));
    let mut headers: Vec<(&str, &str)> = vec![(
        "Content-Type",
        if body.is_some() {
            "application/json"
        } else {
            "application/octet-stream"
        },
    )];
    if let Some(auth) = &auth {
        headers.push(("Authorization", auth));
    }
    let body = body.unwrap_or_default().as_bytes();
    http_request_async(addr, method, path, &headers, body)
        .await
        .unwrap_or_else(|error| panic!("{method} {path}: {error}"))
}

/// The first error message of a `{"errors": [...]}` reply.
pub fn error_message(reply: &HttpReply) -> String {
    let body: serde_json::Value = serde_json::from_slice(&reply.body)
        .unwrap_or_else(|_| panic!("not a json error body: {}", reply.text()));
    body["errors"][0]
        .as_str()
        .unwrap_or_else(|| panic!("no errors[0] in {body}"))
        .to_owned()
}
