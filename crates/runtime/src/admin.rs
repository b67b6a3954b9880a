//! The admin HTTP server: `/livez`, `/readyz` and `/metrics` on their own port.
//!
//! The server keeps answering while the process drains (readiness reports 503 from the moment
//! shutdown fires, liveness and metrics stay up) and stops when [`AdminServer::stop`] is called
//! or the [`AdminServer`] is dropped, normally after the drain.

use std::net::SocketAddr;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use livefarm_telemetry::metrics;
use tokio::task::JoinHandle;

use crate::error::RuntimeError;
use crate::readiness::Readiness;
use crate::shutdown::Shutdown;

/// A running admin server.
#[derive(Debug)]
pub struct AdminServer {
    local_addr: SocketAddr,
    stop: Shutdown,
    handle: Option<JoinHandle<std::io::Result<()>>>,
}

impl AdminServer {
    /// The bound address (the real port when 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stops accepting, lets in-flight requests finish, and waits for the server task.
    pub async fn stop(mut self) -> Result<(), RuntimeError> {
        self.stop.trigger();
        match self.handle.take() {
            Some(handle) => handle.await?.map_err(RuntimeError::AdminServe),
            None => Ok(()),
        }
    }
}

impl Drop for AdminServer {
    fn drop(&mut self) {
        // graceful stop in the background; the task ends once open requests are answered
        self.stop.trigger();
    }
}

/// Binds `addr` and serves the admin routes on a tokio task.
///
/// `readiness` is made to follow `shutdown`, so `/readyz` turns 503 as soon as it fires.
pub async fn serve(
    addr: SocketAddr,
    readiness: Readiness,
    shutdown: Shutdown,
) -> Result<AdminServer, RuntimeError> {
    readiness.follow_shutdown(&shutdown);
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| RuntimeError::Bind { addr, source })?;
    let local_addr = listener
        .local_addr()
        .map_err(|source| RuntimeError::Bind { addr, source })?;

    let app = Router::new()
        .route("/livez", get(livez))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .with_state(readiness);

    let stop = Shutdown::new();
    let stopped = stop.clone();
    let handle = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move { stopped.triggered().await })
            .await
    });
    tracing::info!(addr = %local_addr, "admin server listening");
    Ok(AdminServer {
        local_addr,
        stop,
        handle: Some(handle),
    })
}

async fn livez() -> &'static str {
    "ok"
}

async fn readyz(State(readiness): State<Readiness>) -> impl IntoResponse {
    if readiness.is_ready() {
        (StatusCode::OK, "ready")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready")
    }
}

async fn metrics_text() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, metrics::OPENMETRICS_CONTENT_TYPE)],
        metrics::render(),
    )
}
