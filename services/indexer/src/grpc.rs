//! `livefarm.chain.v1.ChainIndex`: the derived state over gRPC, read from the follower's
//! shared state, and a stream of its block events.

use std::pin::Pin;

use alloy::primitives::{Address, B256, U256};
use futures_util::{Stream, StreamExt};
use livefarm_proto::ServiceError;
use livefarm_runtime::Shutdown;
use tokio::sync::broadcast;
use tonic::{Request, Response, Status};

use crate::follower::{BlockEvent, IndexHandle, IndexState};
use crate::pb;
use crate::pb::chain_index_server::{ChainIndex, ChainIndexServer};

/// The gRPC service over one follower's state.
#[derive(Clone, Debug)]
pub struct ChainIndexService {
    handle: IndexHandle,
    stop: Shutdown,
}

impl ChainIndexService {
    /// A service over `handle`; `Subscribe` streams end when `stop` fires, so a graceful
    /// server shutdown does not wait for subscribers forever.
    pub fn new(handle: IndexHandle, stop: Shutdown) -> ChainIndexService {
        ChainIndexService { handle, stop }
    }

    /// The tonic server wrapper.
    pub fn server(handle: IndexHandle, stop: Shutdown) -> ChainIndexServer<ChainIndexService> {
        ChainIndexServer::new(ChainIndexService::new(handle, stop))
    }
}

fn address(bytes: &[u8], field: &str) -> Result<Address, Status> {
    Address::try_from(bytes)
        .map_err(|_| ServiceError::InvalidArgument(format!("{field} must be 20 bytes")).into())
}

fn word(v: U256) -> Vec<u8> {
    v.to_be_bytes::<32>().to_vec()
}

/// Rounds as the API reports them at the state's cursor.
pub(crate) fn rounds_of(s: &IndexState, requested: &[u64]) -> pb::Rounds {
    let r = &s.data.rounds;
    let lir = r.last_initialized_round;
    let l1 = s.l1_block();
    let current = s.current_round();
    pb::Rounds {
        last_initialized_round: lir,
        last_initialized_block_hash: r.block_hash(lir).to_vec(),
        pre_last_initialized_block_hash: r.block_hash(lir.saturating_sub(1)).to_vec(),
        current_round: current,
        current_round_initialized: current == lir,
        round_length: r.params.round_length,
        current_round_start_block: r.current_round_start_block(l1),
        requested: requested
            .iter()
            .map(|&round| pb::RoundHash {
                round,
                block_hash: r.block_hash(round).to_vec(),
            })
            .collect(),
    }
}

fn l1_block_of(s: &IndexState) -> pb::L1Block {
    pb::L1Block {
        l1_block: s.l1_block(),
        block_number: s.block_number(),
        block_hash: s.cursor.map(|c| c.hash).unwrap_or_default().to_vec(),
    }
}

/// A sender's state as the contract reports it at the cursor: claims count only when the
/// current round is the last initialised one (no claim can happen in another).
fn sender_of(s: &IndexState, sender: Address, claimant: Option<Address>) -> pb::SenderInfo {
    let current = s.current_round();
    let st = s.data.senders.get(&sender).cloned().unwrap_or_default();
    pb::SenderInfo {
        sender: sender.to_vec(),
        deposit: word(st.deposit),
        withdraw_round: st.withdraw_round,
        reserve_funds_remaining: word(st.reserve),
        reserve_claimed_in_current_round: word(st.claimed_in_round(current)),
        claimed_by_claimant: word(
            claimant
                .map(|c| st.claimed_by(current, &c))
                .unwrap_or_default(),
        ),
    }
}

/// The whole state as one message.
pub(crate) fn snapshot_of(s: &IndexState) -> pb::Snapshot {
    let current = s.current_round();
    let mut claims = Vec::new();
    for (sender, st) in &s.data.senders {
        if let Some(round) = st.claims.get(&current) {
            for (claimant, amount) in &round.by_claimant {
                claims.push(pb::Claim {
                    sender: sender.to_vec(),
                    claimant: claimant.to_vec(),
                    amount: word(*amount),
                });
            }
        }
    }
    pb::Snapshot {
        rounds: Some(rounds_of(s, &[])),
        block: Some(l1_block_of(s)),
        senders: s
            .data
            .senders
            .keys()
            .map(|a| sender_of(s, *a, None))
            .collect(),
        orchestrators: s
            .data
            .orchestrators
            .iter()
            .map(|(a, o)| pb::Orchestrator {
                address: a.to_vec(),
                activation_round: o.activation_round,
                deactivation_round: o.deactivation_round,
                service_uri: o.service_uri.clone(),
                in_pool: o.in_pool,
            })
            .collect(),
        claims,
        transcoder_pool_size: s.data.pool_size(),
        gas_price: word(s.gas_price),
    }
}

fn event_of(handle: &IndexHandle, ev: &BlockEvent) -> pb::ChainEvent {
    pb::ChainEvent {
        block: Some(pb::L1Block {
            l1_block: ev.l1_block,
            block_number: ev.number,
            block_hash: ev.hash.to_vec(),
        }),
        new_round: ev.new_round.map(|_| handle.read(|s| rounds_of(s, &[]))),
        reorg_to: ev.reorg_to,
        state_changed: ev.state_changed,
    }
}

type EventStream = Pin<Box<dyn Stream<Item = Result<pb::ChainEvent, Status>> + Send>>;

#[tonic::async_trait]
impl ChainIndex for ChainIndexService {
    async fn get_rounds(
        &self,
        request: Request<pb::GetRoundsRequest>,
    ) -> Result<Response<pb::Rounds>, Status> {
        let req = request.into_inner();
        Ok(Response::new(
            self.handle.read(|s| rounds_of(s, &req.rounds)),
        ))
    }

    async fn get_sender_info(
        &self,
        request: Request<pb::GetSenderInfoRequest>,
    ) -> Result<Response<pb::SenderInfo>, Status> {
        let req = request.into_inner();
        let sender = address(&req.sender, "sender")?;
        let claimant = if req.claimant.is_empty() {
            None
        } else {
            Some(address(&req.claimant, "claimant")?)
        };
        Ok(Response::new(
            self.handle.read(|s| sender_of(s, sender, claimant)),
        ))
    }

    async fn is_active(
        &self,
        request: Request<pb::IsActiveRequest>,
    ) -> Result<Response<pb::IsActiveResponse>, Status> {
        let req = request.into_inner();
        let orch = address(&req.orchestrator, "orchestrator")?;
        Ok(Response::new(self.handle.read(|s| {
            let round = if req.round == 0 {
                s.current_round()
            } else {
                req.round
            };
            let o = s.data.orchestrators.get(&orch).cloned().unwrap_or_default();
            pb::IsActiveResponse {
                active: o.is_active(round),
                activation_round: o.activation_round,
                deactivation_round: o.deactivation_round,
                service_uri: o.service_uri,
            }
        })))
    }

    async fn get_l1_block(
        &self,
        _request: Request<pb::GetL1BlockRequest>,
    ) -> Result<Response<pb::L1Block>, Status> {
        Ok(Response::new(self.handle.read(l1_block_of)))
    }

    async fn is_ticket_redeemed(
        &self,
        request: Request<pb::IsTicketRedeemedRequest>,
    ) -> Result<Response<pb::IsTicketRedeemedResponse>, Status> {
        let req = request.into_inner();
        let hash = B256::try_from(req.ticket_hash.as_slice())
            .map_err(|_| ServiceError::InvalidArgument("ticket_hash must be 32 bytes".into()))?;
        let block = self.handle.read(|s| s.data.redeemed.get(&hash).copied());
        Ok(Response::new(pb::IsTicketRedeemedResponse {
            redeemed: block.is_some(),
            block_number: block.unwrap_or(0),
        }))
    }

    async fn get_snapshot(
        &self,
        _request: Request<pb::GetSnapshotRequest>,
    ) -> Result<Response<pb::Snapshot>, Status> {
        Ok(Response::new(self.handle.read(snapshot_of)))
    }

    type SubscribeStream = EventStream;

    async fn subscribe(
        &self,
        _request: Request<pb::SubscribeRequest>,
    ) -> Result<Response<Self::SubscribeStream>, Status> {
        let rx = self.handle.subscribe();
        let handle = self.handle.clone();
        let first = event_of(&handle, &handle.current_event());
        let rest = futures_util::stream::unfold((rx, handle), |(mut rx, handle)| async move {
            let ev = match rx.recv().await {
                Ok(ev) => ev,
                // a slow client missed events: tell it the state changed at the current block
                Err(broadcast::error::RecvError::Lagged(_)) => handle.current_event(),
                Err(broadcast::error::RecvError::Closed) => return None,
            };
            let msg = event_of(&handle, &ev);
            Some((Ok(msg), (rx, handle)))
        });
        let stop = self.stop.clone();
        let stream = futures_util::stream::once(async move { Ok(first) })
            .chain(rest)
            .take_until(async move { stop.triggered().await });
        Ok(Response::new(Box::pin(stream)))
    }
}
