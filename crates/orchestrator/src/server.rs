//! The orchestrator port (§2, §16.1): one listener serving gRPC `net.Orchestrator` and the HTTP
//! routes (`/segment`, `/stream/...`) together, over TLS with h2 and http/1.1 (or plaintext
//! with h2c when the service URI is `http://`). gRPC and HTTP share the router: gRPC paths are
//! `/net.Orchestrator/...`, so no content-type sniffing is needed.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::http::SegmentState;
use crate::sessions::SESSION_IDLE_TIMEOUT;

/// A client that has not finished the TLS handshake in this time is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections still open this long after shutdown begins are cut.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// The whole surface: gRPC plus `/segment` and `/stream/...`.
pub fn app(state: SegmentState) -> Router {
    let grpc = tonic::service::Routes::new(state.orchestrator.clone().into_server())
        .prepare()
        .into_axum_router();
    crate::http::router(state).merge(grpc)
}

/// Serves `app` on `listener` until `shutdown` resolves; with `tls` every connection is TLS.
/// In-flight requests get [`DRAIN_TIMEOUT`] to finish.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    tls: Option<Arc<rustls::ServerConfig>>,
    shutdown: impl Future<Output = ()>,
) {
    let acceptor = tls.map(TlsAcceptor::from);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let builder = auto::Builder::new(TokioExecutor::new());
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(app.clone());
        match &acceptor {
            Some(acceptor) => {
                let acceptor = acceptor.clone();
                let builder = builder.clone();
                let watcher = graceful.watcher();
                tokio::spawn(async move {
                    let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream))
                        .await
                    {
                        Ok(Ok(tls)) => tls,
                        Ok(Err(error)) => {
                            tracing::debug!(%peer, %error, "tls handshake failed");
                            return;
                        }
                        Err(_) => {
                            tracing::debug!(%peer, "tls handshake timed out");
                            return;
                        }
                    };
                    let conn = builder.serve_connection_with_upgrades(TokioIo::new(tls), service);
                    log_conn_end(peer, watcher.watch(conn.into_owned()).await);
                });
            }
            None => {
                let conn = builder
                    .serve_connection_with_upgrades(TokioIo::new(stream), service)
                    .into_owned();
                let watched = graceful.watch(conn);
                tokio::spawn(async move { log_conn_end(peer, watched.await) });
            }
        }
    }
    if tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("orchestrator connections still open after the drain timeout");
    }
}

fn log_conn_end(peer: SocketAddr, result: Result<(), Box<dyn std::error::Error + Send + Sync>>) {
    if let Err(error) = result {
        tracing::debug!(%peer, %error, "connection ended with an error");
    }
}

/// Ends sessions idle for longer than go-livepeer's transcode loop timeout, until `stop`.
pub async fn reap_idle_sessions(state: SegmentState, stop: impl Future<Output = ()>) {
    tokio::pin!(stop);
    let mut tick = tokio::time::interval(Duration::from_secs(10));
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = &mut stop => return,
        }
        for session in state
            .orchestrator
            .sessions()
            .reap_idle(SESSION_IDLE_TIMEOUT)
        {
            tracing::debug!(%session, "idle session ended");
            state.orchestrator.store().end_session(&session);
            state.transcoder.end_session(&session);
        }
    }
}
