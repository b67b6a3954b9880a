//! The Livefarm chain indexer: follows the Livepeer-compatible contracts (TicketBroker,
//! RoundsManager, BondingManager, ServiceRegistry) over JSON-RPC (HTTP polling, woken at once
//! by a WebSocket `newHeads` subscription where `ws_url` is set), survives reorgs, keeps its
//! cursor and derived state in Redis, and serves rounds, senders, orchestrators and redeemed
//! tickets over gRPC (`livefarm.chain.v1.ChainIndex`) and as new-block events on the bus.
//!
//! [`run`] is the whole service (the `livefarm-indexer` binary and the all-in-one command
//! call it); [`Follower`] is the engine; the orchestrator reads it through
//! `livefarm_chain_index::IndexerChainState`; [`bench::bench`] measures a backfill
//! against a plain `eth_getLogs` loop.
//!
//! Ports: gRPC 9470 (`ChainIndex`, `grpc.health.v1`), admin HTTP 9471 (`/metrics`: see the
//! README).

pub mod bench;
mod config;
mod error;
mod follower;
mod grpc;
mod metrics;
pub mod rpc;
pub mod state;
mod store;
mod ws;

/// Generated gRPC code of `livefarm.chain.v1` (compiled by livefarm-proto).
pub use livefarm_proto::chain::v1 as pb;

use std::time::Duration;

use anyhow::Context;
use livefarm_runtime::{Readiness, Shutdown};
use tonic::transport::server::TcpIncoming;
use tonic_health::ServingStatus;
use tracing::{info, warn};

pub use config::IndexerConfig;
pub use error::IndexerError;
pub use follower::{
    BlockEvent, BlockRecord, ContractsSource, Cursor, Follower, FollowerOptions, IndexHandle,
    IndexState, Stats,
};
pub use grpc::ChainIndexService;
pub use store::Store;

/// Bus stream of new blocks and rounds (JSON [`BlockEvent`]s).
pub use livefarm_jobs::CHAIN_EVENTS_STREAM as EVENTS_STREAM;

/// Runs the indexer until `shutdown` fires: follows the chain, serves gRPC and the admin
/// port.
pub async fn run(config: IndexerConfig, shutdown: Shutdown) -> anyhow::Result<()> {
    config.validate()?;
    let store = if config.redis_url.is_empty() {
        warn!("no redis_url: the indexer state lives in memory and a restart re-indexes");
        Store::memory()
    } else {
        match connect_store(&config.redis_url, &shutdown).await? {
            Some(s) => s,
            None => return Ok(()),
        }
    };
    let mut follower = Follower::new(config.follower_options()?, store).await?;
    if !config.bus_url.is_empty() {
        let bus = livefarm_bus::connect(&config.bus_url)
            .await
            .map_err(IndexerError::from)?;
        follower = follower.with_bus(bus);
    }
    let handle = follower.handle();
    // exported until `run` returns
    let _exported = metrics::export(handle.clone());

    let readiness = Readiness::new();
    let admin =
        livefarm_runtime::admin::serve(config.admin_listen, readiness.clone(), shutdown.clone())
            .await
            .context("cannot start the admin server")?;
    let listener = tokio::net::TcpListener::bind(config.grpc_listen)
        .await
        .map_err(|e| IndexerError::Server {
            what: "grpc listener",
            reason: format!("cannot bind {}: {e}", config.grpc_listen),
        })?;
    let grpc_addr = listener.local_addr().context("grpc listener address")?;
    let (health, health_service) = tonic_health::server::health_reporter();
    health.set_service_status("", ServingStatus::Serving).await;
    health
        .set_serving::<pb::chain_index_server::ChainIndexServer<ChainIndexService>>()
        .await;
    let grpc_stop = Shutdown::new();
    let grpc = {
        let stop = grpc_stop.clone();
        let router = tonic::transport::Server::builder()
            .add_service(health_service)
            .add_service(ChainIndexService::server(handle.clone(), stop.clone()));
        tokio::spawn(async move {
            router
                .serve_with_incoming_shutdown(TcpIncoming::from(listener), stop.triggered())
                .await
        })
    };
    let follow = tokio::spawn(follower.run(shutdown.clone()));
    readiness.set_ready(true);
    info!(grpc = %grpc_addr, admin = %admin.local_addr(), "chain indexer started");

    shutdown.triggered().await;
    health
        .set_service_status("", ServingStatus::NotServing)
        .await;
    if let Err(error) = follow.await {
        warn!(%error, "follower task ended abnormally");
    }
    grpc_stop.trigger();
    match grpc.await {
        Ok(Ok(())) => {}
        Ok(Err(error)) => warn!(%error, "grpc server failed"),
        Err(error) => warn!(%error, "grpc server task ended abnormally"),
    }
    admin.stop().await.context("admin server")?;
    info!(
        block = handle.read(|s| s.block_number()),
        "chain indexer stopped"
    );
    Ok(())
}

/// Connects to Redis, waiting while it is unavailable; `None` if `shutdown` fired first.
async fn connect_store(url: &str, shutdown: &Shutdown) -> Result<Option<Store>, IndexerError> {
    let mut backoff = Duration::from_millis(200);
    loop {
        match Store::redis(url).await {
            Ok(s) => return Ok(Some(s)),
            Err(e @ IndexerError::Config { .. }) => return Err(e),
            Err(error) => warn!(%error, "redis unavailable, retrying"),
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = shutdown.triggered() => return Ok(None),
        }
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}
