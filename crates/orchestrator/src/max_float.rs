//! Max float from the redeemer (go-livepeer's `-redeemerAddr`): the redeemer knows which
//! redemptions are in flight, so its max float per sender (§11.1) is the one face values must
//! respect. For every sender that asked for ticket params, one `MonitorMaxFloat` stream keeps
//! the recipient's copy current; while a stream is down the recipient falls back to its own
//! computation from the chain.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use livefarm_pm::{Address, Recipient, U256};
use livefarm_proto::livepeer::net;
use livefarm_proto::livepeer::net::ticket_redeemer_client::TicketRedeemerClient;
use tokio::task::JoinSet;
use tonic::transport::{Channel, Endpoint};

use crate::error::OrchestratorError;

/// How often new senders are looked for.
const SCAN_EVERY: Duration = Duration::from_millis(500);
const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// A lazy channel to the redeemer's gRPC port (`http://redeemer:9480`).
pub fn redeemer_channel(url: &str) -> Result<Channel, OrchestratorError> {
    Ok(Endpoint::from_shared(url.to_string())
        .map_err(|e| OrchestratorError::Config(format!("redeemer_url {url}: {e}")))?
        .connect_timeout(Duration::from_secs(5))
        .connect_lazy())
}

/// Follows the max float of every sender `recipient` has quoted until `stop` resolves.
pub async fn follow_max_floats(
    channel: Channel,
    recipient: Arc<Recipient>,
    stop: impl std::future::Future<Output = ()>,
) {
    let mut followed = HashSet::new();
    let mut monitors = JoinSet::new();
    let mut scan = tokio::time::interval(SCAN_EVERY);
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = scan.tick() => {
                for sender in recipient.senders() {
                    if followed.insert(sender) {
                        monitors.spawn(monitor(channel.clone(), Arc::clone(&recipient), sender));
                    }
                }
            }
            _ = &mut stop => {
                monitors.abort_all();
                return;
            }
        }
    }
}

/// One sender's `MonitorMaxFloat` stream, reopened with backoff whenever it ends.
async fn monitor(channel: Channel, recipient: Arc<Recipient>, sender: Address) {
    let mut client = TicketRedeemerClient::new(channel);
    let mut backoff = Duration::from_millis(200);
    loop {
        match follow_one(&mut client, &recipient, sender).await {
            Ok(()) => tracing::debug!(%sender, "max float stream ended: reopening"),
            Err(error) => {
                tracing::warn!(%sender, %error, "max float from the redeemer unavailable: computing it locally")
            }
        }
        recipient.set_reported_max_float(sender, None);
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

async fn follow_one(
    client: &mut TicketRedeemerClient<Channel>,
    recipient: &Recipient,
    sender: Address,
) -> Result<(), tonic::Status> {
    let mut updates = client
        .monitor_max_float(net::MaxFloatReq {
            sender: sender.0.to_vec(),
        })
        .await?
        .into_inner();
    while let Some(update) = updates.message().await? {
        let Some(value) = U256::try_from_be_slice(&update.max_float) else {
            return Err(tonic::Status::data_loss("max float wider than 256 bits"));
        };
        recipient.set_reported_max_float(sender, Some(value));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::pin::Pin;

    use livefarm_pm::{InMemoryChain, RecipientConfig, ReserveInfo, SenderInfo};
    use livefarm_proto::livepeer::net::ticket_redeemer_server::{
        TicketRedeemer, TicketRedeemerServer,
    };
    use tokio::sync::watch;
    use tonic::{Request, Response, Status};

    use super::*;

    /// A stand-in redeemer whose max float the test sets (the real one is tested in
    /// services/redeemer and end to end in integration-tests/tests/chain_payments.rs).
    #[derive(Clone)]
    struct Reporter(watch::Receiver<u64>);

    type Updates =
        Pin<Box<dyn futures_util::Stream<Item = Result<net::MaxFloatUpdate, Status>> + Send>>;

    fn update(v: u64) -> net::MaxFloatUpdate {
        net::MaxFloatUpdate {
            max_float: v.to_be_bytes().to_vec(),
        }
    }

    #[tonic::async_trait]
    impl TicketRedeemer for Reporter {
        async fn queue_ticket(
            &self,
            _: Request<net::Ticket>,
        ) -> Result<Response<net::QueueTicketRes>, Status> {
            Err(Status::unimplemented("not here"))
        }

        async fn max_float(
            &self,
            _: Request<net::MaxFloatReq>,
        ) -> Result<Response<net::MaxFloatUpdate>, Status> {
            Ok(Response::new(update(*self.0.borrow())))
        }

        type MonitorMaxFloatStream = Updates;

        async fn monitor_max_float(
            &self,
            _: Request<net::MaxFloatReq>,
        ) -> Result<Response<Updates>, Status> {
            let stream = futures_util::stream::unfold(
                (self.0.clone(), true),
                |(mut rx, first)| async move {
                    if !first && rx.changed().await.is_err() {
                        return None;
                    }
                    let v = *rx.borrow_and_update();
                    Some((Ok(update(v)), (rx, false)))
                },
            );
            Ok(Response::new(Box::pin(stream)))
        }
    }

    async fn wait_for(recipient: &Recipient, sender: &Address, want: Option<U256>) {
        for _ in 0..200 {
            if recipient.reported_max_float(sender) == want {
                return;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!(
            "reported max float stayed {:?}, wanted {want:?}",
            recipient.reported_max_float(sender)
        );
    }

    #[tokio::test]
    async fn face_values_follow_the_redeemers_max_float_and_fall_back_without_it() {
        let sender = Address([0x22; 20]);
        let chain = Arc::new(InMemoryChain::new());
        chain.set_round(5, [1; 32]);
        chain.set_pool_size(1);
        chain.set_gas_price(U256::from(1u64));
        let funds = U256::from(1_000_000_000u64);
        chain.set_sender(
            sender,
            SenderInfo {
                deposit: funds,
                reserve: ReserveInfo {
                    funds_remaining: funds,
                    claimed_in_current_round: U256::ZERO,
                },
                withdraw_round: 0,
            },
        );
        let recipient = Arc::new(
            Recipient::new(
                Address([0x11; 20]),
                RecipientConfig {
                    ev: U256::from(1_000u64),
                    redeem_gas: 1,
                    tx_cost_multiplier: 1_000_000,
                    max_face_value: U256::ZERO,
                },
                chain,
            )
            .expect("recipient"),
        );
        // Locally: the reserve allocation (1e9) caps the face value (tx cost × 1e6 = 1e6 < 1e9).
        let price = livefarm_pm::Price::new(1, 1).expect("price");
        let local = recipient.face_value(&sender).expect("face value");
        assert_eq!(local, U256::from(1_000_000u64));
        recipient.ticket_params(&sender, &price).expect("params");

        let (tx, rx) = watch::channel(500_000u64);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (stop_server, server_stopped) = watch::channel(false);
        let server = tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(TicketRedeemerServer::new(Reporter(rx)))
                .serve_with_incoming_shutdown(
                    tonic::transport::server::TcpIncoming::from(listener),
                    async move {
                        let mut stopped = server_stopped;
                        let _ = stopped.wait_for(|s| *s).await;
                    },
                ),
        );
        let channel = redeemer_channel(&format!("http://{addr}")).expect("channel");
        let (stop, stopped) = watch::channel(false);
        let follower = tokio::spawn(follow_max_floats(channel, recipient.clone(), async move {
            let mut stopped = stopped;
            let _ = stopped.wait_for(|s| *s).await;
        }));

        // The redeemer's figure (in-flight redemptions taken off) binds the face value.
        wait_for(&recipient, &sender, Some(U256::from(500_000u64))).await;
        assert_eq!(
            recipient.face_value(&sender).expect("face value"),
            U256::from(500_000u64)
        );
        tx.send(300_000).expect("update");
        wait_for(&recipient, &sender, Some(U256::from(300_000u64))).await;

        // The redeemer goes away: back to the local computation.
        stop_server.send(true).expect("stop server");
        drop(tx);
        let _ = server.await;
        wait_for(&recipient, &sender, None).await;
        assert_eq!(recipient.face_value(&sender).expect("face value"), local);
        stop.send(true).expect("stop");
        follower.await.expect("follower stops");
    }
}
