//! The redemption loop: leader election, the winning-ticket stream, the per-ticket checks of
//! §11.2 and the transaction life cycle (sign, record, broadcast, replace, confirm).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use livefarm_bus::{Delivery, MessageId, StreamBus};
use livefarm_chain::{Address, Chain, B256, U256};
use livefarm_pm::WinningTicket;
use livefarm_runtime::Shutdown;
use tokio::sync::Mutex;
use tracing::{debug, info, warn};

use crate::config::RedeemerConfig;
use crate::election::{Election, Leadership};
use crate::error::RedeemerError;
use crate::metrics::{metrics, LeaderTerm};
use crate::store::{now_ms, Store, TicketRecord, TicketState, Written};
use crate::tx::{bump, EstimateError, TxSender};

fn address(a: &livefarm_pm::Address) -> Address {
    Address::from(a.0)
}

/// Mined-and-reverted redemptions of one ticket before it ends `failed`.
pub const MAX_REVERTED_TXS: u32 = 3;

/// What a contract refusal at gas estimation means for the ticket.
enum Refusal {
    /// Final: record this state.
    Final(TicketState),
    /// Transient (the round is not initialised yet, the system is paused): retry later.
    Retry,
}

fn classify_revert(reason: &str) -> Refusal {
    match reason {
        "ticket is used" => Refusal::Final(TicketState::AlreadyUsed),
        "ticket is expired" => Refusal::Final(TicketState::Expired),
        "sender deposit and reserve are zero" => Refusal::Final(TicketState::InsufficientFunds {
            available: "0".to_owned(),
            tx_cost: "0".to_owned(),
        }),
        "current round is not initialized" | "system is paused" => Refusal::Retry,
        other => Refusal::Final(TicketState::Failed {
            reason: other.to_owned(),
            tx: None,
        }),
    }
}

/// One redeemer instance: standby until it holds the lock, then the only one redeeming.
#[derive(Debug)]
pub struct Redeemer {
    config: RedeemerConfig,
    instance: String,
    bus: Arc<dyn StreamBus>,
    store: Store,
    election: Election,
    chain: Chain,
    sender: TxSender,
    validity_period: u64,
    /// Bus entries of each open ticket (by hash), acknowledged once its outcome is durable.
    deliveries: Mutex<HashMap<String, Vec<MessageId>>>,
}

impl Redeemer {
    /// Connects to the store, the chain (resolving the Controller) and the signing account;
    /// competes for leadership as `config.leader_election` says.
    pub async fn connect(
        config: RedeemerConfig,
        bus: Arc<dyn StreamBus>,
    ) -> Result<Redeemer, RedeemerError> {
        config.validate()?;
        let store = Store::connect(config.effective_redis_url(), &config.key_prefix).await?;
        let election = Election::from_config(&config, store.clone()).await?;
        Redeemer::connect_with(config, bus, store, election).await
    }

    /// Like [`Redeemer::connect`] with a given store and election (tests run a Kubernetes
    /// Lease on a fake API server).
    pub async fn connect_with(
        config: RedeemerConfig,
        bus: Arc<dyn StreamBus>,
        store: Store,
        election: Election,
    ) -> Result<Redeemer, RedeemerError> {
        config.validate()?;
        let key = config.signer_key()?;
        let controller = config.controller_address()?;
        let deployment = livefarm_chain::resolve(&config.rpc_url, controller).await?;
        let chain = Chain::read_only(&config.rpc_url, deployment)?;
        let sender = TxSender::connect(&config.rpc_url, &key, deployment.ticket_broker).await?;
        let validity_period = if config.ticket_validity_period > 0 {
            config.ticket_validity_period
        } else {
            let broker = livefarm_chain::bindings::TicketBroker::new(
                deployment.ticket_broker,
                chain.provider().clone(),
            );
            let period = broker
                .ticketValidityPeriod()
                .call()
                .await
                .map_err(|e| RedeemerError::Rpc(format!("ticketValidityPeriod: {e}")))?;
            period.saturating_to()
        };
        Ok(Redeemer {
            instance: config.effective_instance_id(),
            config,
            bus,
            store,
            election,
            chain,
            sender,
            validity_period,
            deliveries: Mutex::new(HashMap::new()),
        })
    }

    /// The ticket records.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The chain it reads.
    pub fn chain(&self) -> &Chain {
        &self.chain
    }

    /// The account paying for redemptions.
    pub fn account(&self) -> Address {
        self.sender.address()
    }

    /// This instance's name in the lock.
    pub fn instance(&self) -> &str {
        &self.instance
    }

    /// Waits for the lock, redeems while holding it, and goes back to standby if it is lost;
    /// returns on shutdown (releasing the lock). Aborting the task is a crash: the lock then
    /// expires after its TTL and anything in flight is recovered by the next leader.
    pub async fn run(self: Arc<Self>, shutdown: Shutdown) -> Result<(), RedeemerError> {
        let ttl = Duration::from_millis(self.config.lock_ttl_ms);
        let renew_every = Duration::from_millis(self.config.lock_renew_ms);
        info!(
            instance = self.instance,
            election = self.election.describe(),
            "competing for leadership"
        );
        loop {
            let held: Leadership = loop {
                if shutdown.is_triggered() {
                    return Ok(());
                }
                match self.election.acquire(&self.instance, ttl).await {
                    Ok(Some(held)) => break held,
                    Ok(None) => debug!(instance = self.instance, "standby: another instance leads"),
                    Err(error) => warn!(%error, "cannot reach the leader election"),
                }
                tokio::select! {
                    _ = tokio::time::sleep(renew_every) => {}
                    _ = shutdown.triggered() => return Ok(()),
                }
            };
            let token = held.fence;
            info!(instance = self.instance, token, "leader: redeeming");
            // Dropped when this term ends however it ends (also when the task is aborted).
            let term = LeaderTerm::start();
            // The renewal runs in this task, not a spawned one, so that killing the redeemer
            // also stops renewing and a standby takes over after the TTL.
            let renew = async {
                let mut last_ok = Instant::now();
                loop {
                    tokio::time::sleep(renew_every).await;
                    match self.election.renew(&self.instance, held, ttl).await {
                        Ok(true) => last_ok = Instant::now(),
                        Ok(false) => return RedeemerError::Fenced { token },
                        Err(error) => {
                            warn!(%error, "cannot renew the leadership");
                            if last_ok.elapsed() >= ttl {
                                return RedeemerError::Fenced { token };
                            }
                        }
                    }
                }
            };
            let result = tokio::select! {
                r = self.lead(token, &shutdown) => r,
                e = renew => Err(e),
            };
            drop(term);
            match result {
                Ok(()) => {
                    if let Err(error) = self.election.release(&self.instance, held).await {
                        warn!(%error, "cannot release the leadership");
                    }
                    return Ok(());
                }
                Err(RedeemerError::Fenced { token }) => {
                    warn!(
                        instance = self.instance,
                        token, "lost the leadership: back to standby"
                    );
                    self.deliveries.lock().await.clear();
                }
                Err(error) => {
                    warn!(%error, "redeemer loop failed: retrying");
                    tokio::select! {
                        _ = tokio::time::sleep(self.config.poll_interval()) => {}
                        _ = shutdown.triggered() => {}
                    }
                }
            }
        }
    }

    async fn lead(&self, token: u64, shutdown: &Shutdown) -> Result<(), RedeemerError> {
        let (stream, group) = (&self.config.stream, &self.config.group);
        self.bus.ensure_group(stream, group).await?;
        // Entries a dead predecessor (or this instance before a restart) took but never
        // acknowledged: their records exist or are created now.
        let orphans = self
            .bus
            .reclaim(stream, group, &self.instance, Duration::ZERO, 10_000)
            .await?;
        self.ingest(orphans, token).await?;
        while !shutdown.is_triggered() {
            let new = self
                .bus
                .consume(stream, group, &self.instance, 100, Duration::ZERO)
                .await?;
            self.ingest(new, token).await?;
            self.process_open(token, shutdown).await?;
            tokio::select! {
                _ = tokio::time::sleep(self.config.poll_interval()) => {}
                _ = shutdown.triggered() => {}
            }
        }
        Ok(())
    }

    async fn ingest(&self, deliveries: Vec<Delivery>, token: u64) -> Result<(), RedeemerError> {
        metrics().taken.inc_by(deliveries.len() as u64);
        for delivery in deliveries {
            let ticket: WinningTicket = match serde_json::from_slice(&delivery.payload) {
                Ok(t) => t,
                Err(error) => {
                    warn!(%error, id = %delivery.id, "dropping an unreadable winning ticket");
                    self.ack(&[delivery.id]).await?;
                    continue;
                }
            };
            let record = TicketRecord::pending(ticket, token);
            let hash = record.hash_hex();
            match self.store.create(&record).await? {
                Written::Stored => info!(ticket = hash, "ticket queued"),
                Written::Exists => {
                    let existing = self.store.get(&hash).await?;
                    if existing.is_some_and(|r| r.state.is_final()) {
                        debug!(ticket = hash, "ticket queued again after its outcome");
                        self.ack(&[delivery.id]).await?;
                        continue;
                    }
                    debug!(ticket = hash, "ticket queued again while open");
                }
            }
            self.deliveries
                .lock()
                .await
                .entry(hash)
                .or_default()
                .push(delivery.id);
        }
        Ok(())
    }

    async fn ack(&self, ids: &[MessageId]) -> Result<(), RedeemerError> {
        if !ids.is_empty() {
            self.bus
                .ack_batch(&self.config.stream, &self.config.group, ids)
                .await?;
        }
        Ok(())
    }

    async fn process_open(&self, token: u64, shutdown: &Shutdown) -> Result<(), RedeemerError> {
        let open = self.store.open().await?;
        metrics()
            .open
            .set(i64::try_from(open.len()).unwrap_or(i64::MAX));
        if open.is_empty() {
            return Ok(());
        }
        let l1_block = self.sender.l1_block_number().await?;
        let round = self.chain.current_round().await?;
        for record in &open {
            if shutdown.is_triggered() {
                break;
            }
            let mut record = record.clone();
            record.fence = token;
            match &record.state {
                TicketState::Pending => self.try_redeem(record, l1_block, round, shutdown).await?,
                TicketState::Submitted { .. } => self.follow(record, shutdown).await?,
                _ => {}
            }
        }
        Ok(())
    }

    /// Puts a ticket off to a later block (§11.2: go-livepeer retries these until the ticket
    /// expires), recording why; written only when the reason changes.
    async fn defer(&self, mut record: TicketRecord, why: TicketState) -> Result<(), RedeemerError> {
        let changed = record.deferred.as_ref().map(TicketState::name) != Some(why.name());
        if changed {
            info!(
                ticket = record.hash_hex(),
                reason = why.name(),
                "redemption put off: retrying on later blocks"
            );
            let reason = why.name();
            record.deferred = Some(why);
            self.store.update(&record).await?;
            metrics().deferred(reason);
        }
        Ok(())
    }

    /// A mined redemption reverted: it spent gas but not the ticket (`usedTickets` is
    /// unchanged). Its cause is often gone a block later (gas was estimated against the latest
    /// block and the transaction landed in the next, past a round boundary or after another
    /// redemption of the same sender's funds), so the ticket goes back to pending and the next
    /// poll estimates it again: a refusal that stays then names itself (`ticket is expired`,
    /// `sender is unlocked`, ...) instead of an anonymous revert. After
    /// [`MAX_REVERTED_TXS`] reverts it ends `failed`.
    async fn reverted(&self, mut record: TicketRecord, tx: String) -> Result<(), RedeemerError> {
        record.reverted_txs += 1;
        let failed = TicketState::Failed {
            reason: "transaction failed: reverted on chain".to_owned(),
            tx: Some(tx.clone()),
        };
        if record.reverted_txs >= MAX_REVERTED_TXS {
            return self.finish(record, failed).await;
        }
        warn!(
            ticket = record.hash_hex(),
            tx,
            reverted = record.reverted_txs,
            "redemption reverted on chain: estimating it again on the next poll"
        );
        record.state = TicketState::Pending;
        record.deferred = Some(failed);
        self.store.update(&record).await?;
        metrics().deferred("reverted");
        Ok(())
    }

    async fn finish(
        &self,
        mut record: TicketRecord,
        state: TicketState,
    ) -> Result<(), RedeemerError> {
        let hash = record.hash_hex();
        info!(ticket = hash, outcome = state.name(), "ticket done");
        record.state = state;
        record.finished_at_ms = Some(now_ms());
        self.store.update(&record).await?;
        // Counted once durable: a fenced write is the successor's outcome, not ours.
        metrics().finished(&record);
        let ids = self
            .deliveries
            .lock()
            .await
            .remove(&hash)
            .unwrap_or_default();
        self.ack(&ids).await
    }

    /// Sum of the face values of `sender`'s tickets with a transaction in flight.
    pub async fn pending_amount(&self, sender: Address) -> Result<U256, RedeemerError> {
        pending_amount(&self.store, sender).await
    }

    async fn try_redeem(
        &self,
        mut record: TicketRecord,
        l1_block: u64,
        round: u64,
        shutdown: &Shutdown,
    ) -> Result<(), RedeemerError> {
        let t = record.ticket.clone();
        let hash = record.hash_hex();
        // §11.2: only once the params have expired, so the revealed recipientRand cannot be
        // replayed against fresh params.
        if t.params_expiration_block > l1_block {
            debug!(
                ticket = hash,
                l1_block,
                until = t.params_expiration_block,
                "holding ticket"
            );
            return Ok(());
        }
        if record.params_expired_at_ms.is_none() {
            record.params_expired_at_ms = Some(now_ms());
        }
        let creation = u64::try_from(t.creation_round).unwrap_or(0);
        if creation.saturating_add(self.validity_period) <= round {
            // Never redeemable now; if it waited for funds or cheaper gas, that is why.
            let state = record.deferred.take().unwrap_or(TicketState::Expired);
            return self.finish(record, state).await;
        }
        if self.chain.used_ticket(B256::from(t.ticket_hash)).await? {
            return self.finish(record, TicketState::AlreadyUsed).await;
        }
        let (sender, recipient) = (address(&t.sender), address(&t.recipient));
        let info = self.chain.sender_info(sender).await?;
        let reserve_alloc = self.chain.claimable_reserve(sender, recipient).await?;
        let pending = self.pending_amount(sender).await?;
        let available = reserve_alloc
            .saturating_add(info.deposit)
            .saturating_sub(pending);
        let gas = match self.sender.estimate(&t).await {
            Ok(gas) => gas.saturating_mul(self.config.gas_margin_percent) / 100,
            Err(EstimateError::Reverted(reason)) => match classify_revert(&reason) {
                Refusal::Final(TicketState::InsufficientFunds { .. }) => {
                    let state = TicketState::InsufficientFunds {
                        available: available.to_string(),
                        tx_cost: "0".to_owned(),
                    };
                    return self.defer(record, state).await;
                }
                Refusal::Final(state) => return self.finish(record, state).await,
                Refusal::Retry => {
                    debug!(ticket = hash, reason, "redemption refused for now");
                    return Ok(());
                }
            },
            Err(EstimateError::Other(error)) => {
                warn!(ticket = hash, error, "cannot estimate gas: retrying");
                return Ok(());
            }
        };
        let tx_cost = U256::from(gas) * U256::from(self.sender.gas_price().await?);
        if available <= tx_cost {
            let state = TicketState::InsufficientFunds {
                available: available.to_string(),
                tx_cost: tx_cost.to_string(),
            };
            return self.defer(record, state).await;
        }
        let face = t.face_value;
        if face <= tx_cost {
            let state = TicketState::Unprofitable {
                face_value: face.to_string(),
                tx_cost: tx_cost.to_string(),
            };
            return self.defer(record, state).await;
        }
        let nonce = self.sender.pending_nonce().await?;
        let (max_fee, tip) = self.sender.fees().await?;
        let tx = self.sender.sign(&t, gas, nonce, max_fee, tip).await?;
        record.state = TicketState::Submitted {
            txs: vec![tx.clone()],
        };
        // Whatever put it off is past: this attempt is the ticket's state now.
        record.deferred = None;
        // Durable (and fenced) before the node sees it: never two submissions of one ticket.
        self.store.update(&record).await?;
        metrics().submitted.inc();
        info!(ticket = hash, tx = tx.hash, nonce, "redemption submitted");
        if let Err(error) = self.sender.broadcast(&tx).await {
            warn!(ticket = hash, %error, "broadcast failed: will retry");
        }
        self.follow(record, shutdown).await
    }

    /// Waits for one of the ticket's transactions to be mined and confirmed, sending the last
    /// one again if the node lost it and replacing it with a higher fee when it is stuck.
    /// Returns with the ticket still submitted on shutdown.
    async fn follow(
        &self,
        mut record: TicketRecord,
        shutdown: &Shutdown,
    ) -> Result<(), RedeemerError> {
        let hash = record.hash_hex();
        let stuck = Duration::from_millis(self.config.stuck_timeout_ms);
        'follow: loop {
            let TicketState::Submitted { txs } = &record.state else {
                return Ok(());
            };
            let txs = txs.clone();
            for tx in txs.iter().rev() {
                if let Some(mined) = self.sender.mined(&tx.hash).await? {
                    if !mined.success {
                        return self.reverted(record, tx.hash.clone()).await;
                    }
                    let head = self.sender.block_number().await?;
                    if head + 1 >= mined.block + self.config.confirmations {
                        let state = TicketState::Redeemed {
                            tx: tx.hash.clone(),
                            block: mined.block,
                        };
                        return self.finish(record, state).await;
                    }
                    debug!(ticket = hash, tx = tx.hash, "waiting for confirmations");
                    self.wait(shutdown).await?;
                    if shutdown.is_triggered() {
                        return Ok(());
                    }
                    continue 'follow;
                }
            }
            let Some(last) = txs.last() else {
                return self
                    .finish(
                        record,
                        TicketState::Failed {
                            reason: "submitted without a transaction".to_owned(),
                            tx: None,
                        },
                    )
                    .await;
            };
            if !self.sender.known(&last.hash).await? {
                if self.sender.mined_nonce().await? > last.nonce {
                    // Our nonce went to a transaction we did not record: give up on this one.
                    let used = self
                        .chain
                        .used_ticket(B256::from(record.ticket.ticket_hash))
                        .await?;
                    let state = if used {
                        TicketState::AlreadyUsed
                    } else {
                        TicketState::Failed {
                            reason: format!("nonce {} taken by another transaction", last.nonce),
                            tx: None,
                        }
                    };
                    return self.finish(record, state).await;
                }
                // Recorded but never broadcast (a crash in between) or dropped by the node:
                // the same signed bytes again.
                info!(
                    ticket = hash,
                    tx = last.hash,
                    "sending the recorded transaction again"
                );
                if let Err(error) = self.sender.broadcast(last).await {
                    warn!(ticket = hash, %error, "broadcast failed: will retry");
                }
            } else if now_ms().saturating_sub(last.sent_at_ms) >= stuck.as_millis() as u64
                && txs.len() <= self.config.max_replacements as usize
            {
                let (est_fee, est_tip) = self.sender.fees().await?;
                let max_fee = bump(last.max_fee_per_gas, self.config.fee_bump_percent).max(est_fee);
                let tip =
                    bump(last.max_priority_fee_per_gas, self.config.fee_bump_percent).max(est_tip);
                let gas = match self.sender.estimate(&record.ticket).await {
                    Ok(gas) => gas.saturating_mul(self.config.gas_margin_percent) / 100,
                    // The pending original makes estimation unreliable; keep a fixed budget.
                    Err(_) => livefarm_chain::client::REDEEM_GAS_PER_TICKET,
                };
                let replacement = self
                    .sender
                    .sign(&record.ticket, gas, last.nonce, max_fee, tip)
                    .await?;
                let mut all = txs.clone();
                all.push(replacement.clone());
                record.state = TicketState::Submitted { txs: all };
                self.store.update(&record).await?;
                metrics().replaced.inc();
                info!(
                    ticket = hash,
                    tx = replacement.hash,
                    nonce = last.nonce,
                    max_fee,
                    "replacing a stuck redemption"
                );
                if let Err(error) = self.sender.broadcast(&replacement).await {
                    warn!(ticket = hash, %error, "replacement broadcast failed");
                }
            }
            self.wait(shutdown).await?;
            if shutdown.is_triggered() {
                return Ok(());
            }
        }
    }

    async fn wait(&self, shutdown: &Shutdown) -> Result<(), RedeemerError> {
        tokio::select! {
            _ = tokio::time::sleep(self.config.poll_interval()) => {}
            _ = shutdown.triggered() => {}
        }
        Ok(())
    }
}

/// Sum of the face values of `sender`'s tickets with a transaction in flight (§11.1).
pub async fn pending_amount(store: &Store, sender: Address) -> Result<U256, RedeemerError> {
    let mut sum = U256::ZERO;
    for record in store.open().await? {
        if matches!(record.state, TicketState::Submitted { .. })
            && address(&record.ticket.sender) == sender
        {
            sum = sum.saturating_add(record.ticket.face_value);
        }
    }
    Ok(sum)
}
