//! The Livefarm ticket redeemer: takes winning tickets from the bus (`livefarm:tickets:winning`),
//! records each durably in Redis, holds it until its params expire (§11.2), skips what is
//! already used, expired, unfunded or unprofitable, and submits `redeemWinningTicket` once,
//! surviving crashes (transactions are recorded before they are broadcast and recovered by
//! hash) and replacing stuck ones with a higher fee. Exactly one instance redeems: a Redis
//! lock, or a Kubernetes Lease inside a cluster, with a fencing token checked on every write. It also serves go-livepeer's
//! `net.TicketRedeemer` (queue a ticket, max float per sender).

pub mod bench;
pub mod config;
pub mod election;
pub mod error;
pub mod grpc;
mod metrics;
pub mod redeemer;
pub mod store;
pub mod testnet;
pub mod tx;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use livefarm_chain::Address;
use livefarm_proto::health::ServingStatus;
use livefarm_runtime::{drain_with_deadline, Readiness, Shutdown};
use tonic::transport::server::TcpIncoming;
use tracing::{info, warn};

pub use config::{ElectionKind, RedeemerConfig, WINNING_TICKETS_STREAM};
pub use election::{Election, Leadership};
pub use error::RedeemerError;
pub use grpc::{max_float, RedeemerService};
pub use livefarm_proto::convert::winning_ticket_from_proto;
pub use redeemer::{pending_amount, Redeemer};
pub use store::{SentTx, Store, TicketRecord, TicketState};

/// Runs the redeemer until `shutdown`: the gRPC port (`grpc.health.v1`, `net.TicketRedeemer`),
/// the admin port, and the redemption loop (standby until this instance holds the lock).
pub async fn run(config: RedeemerConfig, shutdown: Shutdown) -> anyhow::Result<()> {
    config.validate()?;
    let bus = livefarm_bus::connect(&config.bus_url)
        .await
        .map_err(RedeemerError::from)?;
    let redeemer = Arc::new(Redeemer::connect(config.clone(), bus.clone()).await?);
    let recipient = if config.recipient.is_empty() {
        redeemer.account()
    } else {
        config
            .recipient
            .parse::<Address>()
            .context("recipient is not an address")?
    };

    let readiness = Readiness::new();
    let admin =
        livefarm_runtime::admin::serve(config.admin_listen, readiness.clone(), shutdown.clone())
            .await
            .context("cannot start the admin server")?;
    let listener = tokio::net::TcpListener::bind(config.grpc_listen)
        .await
        .map_err(|e| RedeemerError::Server {
            what: "grpc listener",
            reason: format!("cannot bind {}: {e}", config.grpc_listen),
        })?;
    let grpc_addr = listener.local_addr().context("grpc listener address")?;
    let (health, health_service) = livefarm_proto::health::server::health_reporter();
    health.set_service_status("", ServingStatus::Serving).await;
    let service = RedeemerService::new(
        bus,
        config.stream.clone(),
        redeemer.chain().clone(),
        redeemer.store().clone(),
        recipient,
        Duration::from_millis(config.max_float_poll_ms),
    );
    let grpc_stop = Shutdown::new();
    let grpc = {
        let stop = grpc_stop.clone();
        let router = tonic::transport::Server::builder()
            .add_service(health_service)
            .add_service(service.server());
        tokio::spawn(async move {
            router
                .serve_with_incoming_shutdown(TcpIncoming::from(listener), stop.triggered())
                .await
        })
    };
    readiness.set_ready(true);
    info!(
        instance = redeemer.instance(),
        account = %redeemer.account(),
        grpc = %grpc_addr,
        admin = %admin.local_addr(),
        "redeemer started"
    );

    let loop_task = tokio::spawn(redeemer.clone().run(shutdown.clone()));
    shutdown.triggered().await;
    readiness.set_ready(false);
    // The loop returns at its next await point once shutdown is set; an in-flight
    // transaction stays recorded as submitted and is recovered by the next leader.
    let grace = Duration::from_millis(config.drain_grace_ms);
    match drain_with_deadline(loop_task, grace).await {
        livefarm_runtime::DrainOutcome::Drained(Ok(Ok(()))) => {}
        livefarm_runtime::DrainOutcome::Drained(Ok(Err(error))) => {
            warn!(%error, "redeemer loop failed")
        }
        livefarm_runtime::DrainOutcome::Drained(Err(error)) => {
            warn!(%error, "redeemer loop panicked")
        }
        _ => warn!("redeemer did not stop within the grace period"),
    }
    grpc_stop.trigger();
    let _ = grpc.await;
    admin.stop().await.context("stopping the admin server")?;
    Ok(())
}
