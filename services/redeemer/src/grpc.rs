//! go-livepeer's `net.TicketRedeemer` (§1.3): an orchestrator queues winning tickets and asks
//! for each sender's max float.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures_util::Stream;
use livefarm_bus::{Headers, StreamBus};
use livefarm_chain::{Address, Chain, U256};
use livefarm_pm::ticket::recipient_rand_hash;
use livefarm_pm::{Price, Ticket, TicketExpirationParams, WinningTicket};
use livefarm_proto::livepeer::net;
use livefarm_proto::livepeer::net::ticket_redeemer_server::{TicketRedeemer, TicketRedeemerServer};
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
    let pm = |v: U256| livefarm_pm::U256::from_be_bytes(v.to_be_bytes::<32>());
    let pm_info = livefarm_pm::SenderInfo {
        deposit: pm(info.deposit),
        reserve: livefarm_pm::ReserveInfo {
            funds_remaining: pm(info.reserve_funds_remaining),
            claimed_in_current_round: pm(info.reserve_claimed_in_current_round),
        },
        withdraw_round: i64::try_from(info.withdraw_round.saturating_to::<u64>())
            .unwrap_or(i64::MAX),
    };
    let alloc = livefarm_pm::chain::reserve_alloc(&pm_info, pool, &pm(claimed));
    let float = livefarm_pm::chain::max_float(&alloc, &pm_info.deposit, &pm(pending));
    Ok(U256::from_be_bytes(float.to_be_bytes::<32>()))
}

/// Minimal big-endian bytes, as go-livepeer's `big.Int.Bytes()` writes them.
fn minimal_be(v: U256) -> Vec<u8> {
    let bytes = v.to_be_bytes::<32>();
    let first = bytes.iter().position(|b| *b != 0).unwrap_or(32);
    bytes[first..].to_vec()
}

fn be_u256(field: &'static str, bytes: &[u8]) -> Result<livefarm_pm::U256, Status> {
    livefarm_pm::U256::try_from_be_slice(bytes)
        .ok_or_else(|| Status::invalid_argument(format!("{field} is longer than 32 bytes")))
}

fn address(field: &'static str, bytes: &[u8]) -> Result<livefarm_pm::Address, Status> {
    let arr: [u8; 20] = bytes
        .try_into()
        .map_err(|_| Status::invalid_argument(format!("{field} must be 20 bytes")))?;
    Ok(livefarm_pm::Address(arr))
}

/// The winning-ticket record for a `net.Ticket`.
pub fn winning_ticket_from_proto(t: &net::Ticket) -> Result<WinningTicket, Status> {
    let params = t
        .ticket_params
        .as_ref()
        .ok_or_else(|| Status::invalid_argument("ticket_params missing"))?;
    let sender_params = t
        .sender_params
        .as_ref()
        .ok_or_else(|| Status::invalid_argument("sender_params missing"))?;
    let expiration = t
        .expiration_params
        .as_ref()
        .or(params.expiration_params.as_ref())
        .ok_or_else(|| Status::invalid_argument("expiration_params missing"))?;
    let block_hash: [u8; 32] = if expiration.creation_round_block_hash.is_empty() {
        [0; 32]
    } else {
        expiration
            .creation_round_block_hash
            .as_slice()
            .try_into()
            .map_err(|_| Status::invalid_argument("creation_round_block_hash must be 32 bytes"))?
    };
    let rand_hash: [u8; 32] = params
        .recipient_rand_hash
        .as_slice()
        .try_into()
        .map_err(|_| Status::invalid_argument("recipient_rand_hash must be 32 bytes"))?;
    let rand = be_u256("recipient_rand", &t.recipient_rand)?;
    if recipient_rand_hash(&rand) != rand_hash {
        return Err(Status::invalid_argument(
            "recipient_rand does not match recipient_rand_hash",
        ));
    }
    let expiration_block = be_u256("expiration_block", &params.expiration_block)?;
    let ticket = Ticket {
        recipient: address("recipient", &params.recipient)?,
        sender: address("sender", &t.sender)?,
        face_value: be_u256("face_value", &params.face_value)?,
        win_prob: be_u256("win_prob", &params.win_prob)?,
        sender_nonce: sender_params.sender_nonce,
        recipient_rand_hash: rand_hash,
        expiration_params: TicketExpirationParams {
            creation_round: expiration.creation_round,
            creation_round_block_hash: block_hash,
        },
        params_expiration_block: expiration_block.saturating_to(),
        price_per_pixel: Price::zero(),
    };
    if sender_params.sig.len() != 65 {
        return Err(Status::invalid_argument("sig must be 65 bytes"));
    }
    Ok(WinningTicket::new(
        &ticket,
        &sender_params.sig,
        rand,
        "redeemer-grpc",
    ))
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
        let sender = Address::from(address("sender", sender)?.0);
        let float = max_float(&self.chain, &self.store, sender, self.recipient)
            .await
            .map_err(|e| Status::unavailable(e.to_string()))?;
        Ok(net::MaxFloatUpdate {
            max_float: minimal_be(float),
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
        let payload = serde_json::to_vec(&ticket).map_err(|e| Status::internal(e.to_string()))?;
        let mut headers = Headers::new();
        headers.insert("sender".to_owned(), ticket.sender.to_string());
        self.bus
            .publish(&self.stream, &payload, &headers)
            .await
            .map_err(|e| Status::unavailable(e.to_string()))?;
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
