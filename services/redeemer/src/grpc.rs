//! go-livepeer's `net.TicketRedeemer` (§1.3): an orchestrator queues winning tickets and asks
//! for each sender's max float.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures_util::Stream;
use livefarm_bus::StreamBus;
use livefarm_chain::{Address, Chain, U256};
use livefarm_proto::convert::{address_from_proto, winning_ticket_from_proto};
use livefarm_proto::livepeer::net;
use livefarm_proto::livepeer::net::ticket_redeemer_server::{TicketRedeemer, TicketRedeemerServer};
use livefarm_proto::ServiceError;
use tonic::{Request, Response, Status};

use crate::error::RedeemerError;
use crate::redeemer::pending_amount;
use crate::store::Store;

/// Max float of `sender` towards `recipient` (§11.1): the reserve allocation from the pool
/// size and what `recipient` already claimed this round, less what is in flight unless the
/// deposit covers three times that.
pub async fn max_float(
    chain: &Chain,
    store: &Store,
    sender: Address,
    recipient: Address,
) -> Result<U256, RedeemerError> {
    let info = chain.sender_info(sender).await?;
    let pool = chain.transcoder_pool_size().await?;
    let claimed = chain.claimed_reserve(sender, recipient).await?;
    let pending = pending_amount(store, sender).await?;
    // chain and pm share ruint's U256: no conversion between them
    let pm_info = livefarm_pm::SenderInfo {
        deposit: info.deposit,
        reserve: livefarm_pm::ReserveInfo {
            funds_remaining: info.reserve_funds_remaining,
            claimed_in_current_round: info.reserve_claimed_in_current_round,
        },
        withdraw_round: i64::try_from(info.withdraw_round.saturating_to::<u64>())
            .unwrap_or(i64::MAX),
    };
    let alloc = livefarm_pm::chain::reserve_alloc(&pm_info, pool, &claimed);
    let float = livefarm_pm::chain::max_float(&alloc, &pm_info.deposit, &pending);
    Ok(float)
}

/// The `net.TicketRedeemer` service.
#[derive(Clone, Debug)]
pub struct RedeemerService {
    bus: Arc<dyn StreamBus>,
    stream: String,
    chain: Chain,
    store: Store,
    recipient: Address,
    poll: Duration,
}

impl RedeemerService {
    /// Queues onto `stream` of `bus`; max floats are towards `recipient`.
    pub fn new(
        bus: Arc<dyn StreamBus>,
        stream: String,
        chain: Chain,
        store: Store,
        recipient: Address,
        poll: Duration,
    ) -> RedeemerService {
        RedeemerService {
            bus,
            stream,
            chain,
            store,
            recipient,
            poll,
        }
    }

    /// The tonic server.
    pub fn server(self) -> TicketRedeemerServer<RedeemerService> {
        TicketRedeemerServer::new(self)
    }

    async fn float(&self, sender: &[u8]) -> Result<net::MaxFloatUpdate, Status> {
        let sender = Address::from(address_from_proto("sender", sender)?.0);
        let float = max_float(&self.chain, &self.store, sender, self.recipient)
            .await
            .map_err(|e| ServiceError::Unavailable(e.to_string()))?;
        Ok(net::MaxFloatUpdate {
            max_float: livefarm_pm::num::min_be_bytes(&float),
        })
    }
}

type FloatStream = Pin<Box<dyn Stream<Item = Result<net::MaxFloatUpdate, Status>> + Send>>;

#[tonic::async_trait]
impl TicketRedeemer for RedeemerService {
    async fn queue_ticket(
        &self,
        request: Request<net::Ticket>,
    ) -> Result<Response<net::QueueTicketRes>, Status> {
        let ticket = winning_ticket_from_proto(request.get_ref())?;
        let payload =
            serde_json::to_vec(&ticket).map_err(|e| ServiceError::Internal(e.to_string()))?;
        let headers =
            livefarm_jobs::winning_ticket_headers(&ticket.sender.to_string(), &ticket.ticket_hash);
        self.bus
            .publish(&self.stream, &payload, &headers)
            .await
            .map_err(|e| ServiceError::Unavailable(e.to_string()))?;
        Ok(Response::new(net::QueueTicketRes {}))
    }

    async fn max_float(
        &self,
        request: Request<net::MaxFloatReq>,
    ) -> Result<Response<net::MaxFloatUpdate>, Status> {
        Ok(Response::new(self.float(&request.get_ref().sender).await?))
    }

    type MonitorMaxFloatStream = FloatStream;

    async fn monitor_max_float(
        &self,
        request: Request<net::MaxFloatReq>,
    ) -> Result<Response<Self::MonitorMaxFloatStream>, Status> {
        let sender = request.into_inner().sender;
        let first = self.float(&sender).await?;
        let service = self.clone();
        // The first value at once, then one update each time it changes.
        let stream = futures_util::stream::unfold(
            (service, sender, None::<Vec<u8>>, Some(first)),
            |(service, sender, last, first)| async move {
                if let Some(update) = first {
                    let last = Some(update.max_float.clone());
                    return Some((Ok(update), (service, sender, last, None)));
                }
                loop {
                    tokio::time::sleep(service.poll).await;
                    match service.float(&sender).await {
                        Ok(update) if last.as_ref() != Some(&update.max_float) => {
                            let next = Some(update.max_float.clone());
                            return Some((Ok(update), (service, sender, next, None)));
                        }
                        Ok(_) => {}
                        Err(status) => return Some((Err(status), (service, sender, last, None))),
                    }
                }
            },
        );
        Ok(Response::new(Box::pin(stream)))
    }
}
