//! The derived state: a pure fold over the contracts' logs, block by block, with an undo
//! journal per block so a reorg can roll it back to the fork point exactly.

use std::collections::BTreeMap;

use alloy::primitives::{keccak256, Address, B256, U256};
use alloy::sol_types::SolEvent;
use livefarm_chain::bindings::{BondingManager, RoundsManager, ServiceRegistry, TicketBroker};
use serde::{Deserialize, Serialize};

use crate::rpc::RawLog;

/// `deactivationRound` of a transcoder that stays in the pool (the contract's
/// `MAX_FUTURE_ROUND`, clamped to 64 bits).
pub const NEVER: u64 = u64::MAX;

/// The contracts whose logs are folded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contracts {
    /// TicketBroker: deposits, reserves, unlocks, redemptions.
    pub ticket_broker: Address,
    /// RoundsManager: `NewRound` and round length updates.
    pub rounds_manager: Address,
    /// BondingManager: transcoder activation and deactivation.
    pub bonding_manager: Address,
    /// ServiceRegistry: service URIs.
    pub service_registry: Address,
}

impl Contracts {
    /// The addresses, for an `eth_getLogs` filter.
    pub fn addresses(&self) -> Vec<Address> {
        vec![
            self.ticket_broker,
            self.rounds_manager,
            self.bonding_manager,
            self.service_registry,
        ]
    }

    /// The `topic0` values the fold understands.
    pub fn topics() -> Vec<B256> {
        vec![
            TicketBroker::DepositFunded::SIGNATURE_HASH,
            TicketBroker::ReserveFunded::SIGNATURE_HASH,
            TicketBroker::ReserveClaimed::SIGNATURE_HASH,
            TicketBroker::WinningTicketRedeemed::SIGNATURE_HASH,
            TicketBroker::Unlock::SIGNATURE_HASH,
            TicketBroker::UnlockCancelled::SIGNATURE_HASH,
            TicketBroker::Withdrawal::SIGNATURE_HASH,
            RoundsManager::NewRound::SIGNATURE_HASH,
            RoundsManager::ParameterUpdate::SIGNATURE_HASH,
            BondingManager::TranscoderActivated::SIGNATURE_HASH,
            BondingManager::TranscoderDeactivated::SIGNATURE_HASH,
            ServiceRegistry::ServiceURIUpdate::SIGNATURE_HASH,
        ]
    }
}

/// The RoundsManager parameters `currentRound()` is computed from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoundParams {
    /// `roundLength()`.
    pub round_length: u64,
    /// `lastRoundLengthUpdateRound()`.
    pub length_update_round: u64,
    /// `lastRoundLengthUpdateStartBlock()`.
    pub length_update_start_block: u64,
}

/// Rounds as `NewRound` logs tell them.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoundsState {
    /// `lastInitializedRound()`.
    pub last_initialized_round: u64,
    /// `blockHashForRound(r)` of every initialised round seen.
    pub block_hashes: BTreeMap<u64, B256>,
    /// Round length parameters.
    pub params: RoundParams,
    /// The block of the `NewRound` log of the last few rounds, where the redeemed-ticket set
    /// is cut (see [`REDEEMED_ROUNDS_KEPT`]).
    #[serde(default)]
    pub initialized_at_block: BTreeMap<u64, u64>,
}

impl RoundsState {
    /// `currentRound()` at `block` (the L1 block on Arbitrum, where `block.number` is L1's).
    pub fn current_round(&self, block: u64) -> u64 {
        let p = &self.params;
        if p.round_length == 0 {
            return self.last_initialized_round;
        }
        p.length_update_round + block.saturating_sub(p.length_update_start_block) / p.round_length
    }

    /// `currentRoundStartBlock()` at `block`.
    pub fn current_round_start_block(&self, block: u64) -> u64 {
        let p = &self.params;
        p.length_update_start_block
            + (self
                .current_round(block)
                .saturating_sub(p.length_update_round))
                * p.round_length
    }

    /// `blockHashForRound(round)`, zero when it was never initialised.
    pub fn block_hash(&self, round: u64) -> B256 {
        self.block_hashes.get(&round).copied().unwrap_or_default()
    }
}

/// Reserve claimed from one sender in one round.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoundClaims {
    /// `claimedForRound[round]`.
    pub total: U256,
    /// `claimedByAddress[round][claimant]`.
    pub by_claimant: BTreeMap<Address, U256>,
}

/// One sender's TicketBroker state.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SenderState {
    /// Deposit in wei.
    pub deposit: U256,
    /// Round from which `withdraw()` is allowed; 0 when no unlock is in progress.
    pub withdraw_round: u64,
    /// Reserve funds left.
    pub reserve: U256,
    /// Claims per round (only the recent rounds are kept).
    pub claims: BTreeMap<u64, RoundClaims>,
}

impl SenderState {
    /// Reserve claimed in `round` by everyone.
    pub fn claimed_in_round(&self, round: u64) -> U256 {
        self.claims.get(&round).map(|c| c.total).unwrap_or_default()
    }

    /// Reserve claimed in `round` by `claimant`.
    pub fn claimed_by(&self, round: u64, claimant: &Address) -> U256 {
        self.claims
            .get(&round)
            .and_then(|c| c.by_claimant.get(claimant).copied())
            .unwrap_or_default()
    }
}

/// One orchestrator (transcoder) as BondingManager and ServiceRegistry logs tell it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrchestratorState {
    /// First active round; 0 when it never joined the pool.
    pub activation_round: u64,
    /// First round it is no longer active; [`NEVER`] while in the pool.
    pub deactivation_round: u64,
    /// Whether it is in the pool now (counts toward the pool size).
    pub in_pool: bool,
    /// `getServiceURI(addr)`.
    pub service_uri: String,
}

impl OrchestratorState {
    /// `activationRound ≤ round < deactivationRound`, as `isActiveTranscoder`.
    pub fn is_active(&self, round: u64) -> bool {
        self.activation_round > 0
            && self.activation_round <= round
            && round < self.deactivation_round
    }
}

/// How to undo one change.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Undo {
    /// Restore a sender (or remove it when it did not exist).
    Sender(Address, Option<SenderState>),
    /// Restore an orchestrator (or remove it).
    Orchestrator(Address, Option<OrchestratorState>),
    /// Restore the rounds state.
    Rounds(RoundsState),
    /// Forget a redeemed ticket.
    Ticket(B256),
    /// Restore a redeemed ticket that aged out of the kept rounds.
    Redeemed(B256, u64),
}

/// What applying a log changed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Applied {
    /// The log touched the state.
    pub changed: bool,
    /// A `NewRound` log.
    pub new_round: bool,
    /// A RoundsManager `ParameterUpdate`: the round parameters must be read again.
    pub round_params: bool,
}

/// Everything derived from the logs.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainData {
    /// Rounds.
    pub rounds: RoundsState,
    /// Senders by address.
    pub senders: BTreeMap<Address, SenderState>,
    /// Orchestrators by address.
    pub orchestrators: BTreeMap<Address, OrchestratorState>,
    /// Redeemed ticket hashes and the block of their redemption.
    pub redeemed: BTreeMap<B256, u64>,
}

/// Rounds of redemptions kept, the current one included: a ticket is redeemable for `ticketValidityPeriod` (2) rounds
/// after its creation round, so anything redeemed longer ago is expired on chain whatever its
/// state; keeping more would grow the saved state with every redemption on the network.
pub const REDEEMED_ROUNDS_KEPT: u64 = 4;

/// Rounds of claims kept per sender: the current one and the one before suffice for
/// `claimedInCurrentRound`, one more covers a reorg across a round boundary.
const CLAIM_ROUNDS_KEPT: u64 = 3;

impl ChainData {
    /// The pool size (`getTranscoderPoolSize()`).
    pub fn pool_size(&self) -> u64 {
        self.orchestrators.values().filter(|o| o.in_pool).count() as u64
    }

    fn sender_mut(&mut self, addr: Address, undo: &mut Vec<Undo>) -> &mut SenderState {
        undo.push(Undo::Sender(addr, self.senders.get(&addr).cloned()));
        self.senders.entry(addr).or_default()
    }

    fn orchestrator_mut(&mut self, addr: Address, undo: &mut Vec<Undo>) -> &mut OrchestratorState {
        undo.push(Undo::Orchestrator(
            addr,
            self.orchestrators.get(&addr).cloned(),
        ));
        self.orchestrators.entry(addr).or_default()
    }

    /// Sets the round parameters (read from RoundsManager when they change).
    pub fn set_round_params(&mut self, params: RoundParams, undo: &mut Vec<Undo>) {
        if self.rounds.params != params {
            undo.push(Undo::Rounds(self.rounds.clone()));
            self.rounds.params = params;
        }
    }

    /// Folds one log in, journaling what it changes in `undo`. Logs of other contracts or
    /// events are ignored; a log that does not decode is skipped (and reported by the caller).
    pub fn apply(
        &mut self,
        contracts: &Contracts,
        log: &RawLog,
        undo: &mut Vec<Undo>,
    ) -> Result<Applied, alloy::sol_types::Error> {
        let Some(topic0) = log.topics.first().copied() else {
            return Ok(Applied::default());
        };
        let changed = Applied {
            changed: true,
            ..Applied::default()
        };
        if log.address == contracts.ticket_broker {
            if topic0 == TicketBroker::DepositFunded::SIGNATURE_HASH {
                let e = decode::<TicketBroker::DepositFunded>(log)?;
                let s = self.sender_mut(e.sender, undo);
                s.deposit = s.deposit.saturating_add(e.amount);
            } else if topic0 == TicketBroker::ReserveFunded::SIGNATURE_HASH {
                let e = decode::<TicketBroker::ReserveFunded>(log)?;
                let s = self.sender_mut(e.reserveHolder, undo);
                s.reserve = s.reserve.saturating_add(e.amount);
            } else if topic0 == TicketBroker::ReserveClaimed::SIGNATURE_HASH {
                let e = decode::<TicketBroker::ReserveClaimed>(log)?;
                // Redemption requires an initialised current round, so the claim belongs to
                // the last initialised round.
                let round = self.rounds.last_initialized_round;
                let s = self.sender_mut(e.reserveHolder, undo);
                s.reserve = s.reserve.saturating_sub(e.amount);
                let claims = s.claims.entry(round).or_default();
                claims.total = claims.total.saturating_add(e.amount);
                let mine = claims.by_claimant.entry(e.claimant).or_default();
                *mine = mine.saturating_add(e.amount);
                s.claims.retain(|r, _| r + CLAIM_ROUNDS_KEPT > round);
            } else if topic0 == TicketBroker::WinningTicketRedeemed::SIGNATURE_HASH {
                let e = decode::<TicketBroker::WinningTicketRedeemed>(log)?;
                // The deposit pays first: `faceValue > deposit` empties it, otherwise it
                // shrinks by the face value; the reserve part comes with `ReserveClaimed`.
                let s = self.sender_mut(e.sender, undo);
                s.deposit = s.deposit.saturating_sub(e.faceValue);
                let hash = ticket_hash(&e);
                if self.redeemed.insert(hash, log.block_number).is_none() {
                    undo.push(Undo::Ticket(hash));
                }
            } else if topic0 == TicketBroker::Unlock::SIGNATURE_HASH {
                let e = decode::<TicketBroker::Unlock>(log)?;
                self.sender_mut(e.sender, undo).withdraw_round = e.endRound.saturating_to();
            } else if topic0 == TicketBroker::UnlockCancelled::SIGNATURE_HASH {
                let e = decode::<TicketBroker::UnlockCancelled>(log)?;
                self.sender_mut(e.sender, undo).withdraw_round = 0;
            } else if topic0 == TicketBroker::Withdrawal::SIGNATURE_HASH {
                let e = decode::<TicketBroker::Withdrawal>(log)?;
                // withdrawRound stays set, as the contract leaves it.
                let s = self.sender_mut(e.sender, undo);
                s.deposit = U256::ZERO;
                s.reserve = U256::ZERO;
            } else {
                return Ok(Applied::default());
            }
            return Ok(changed);
        }
        if log.address == contracts.rounds_manager {
            if topic0 == RoundsManager::NewRound::SIGNATURE_HASH {
                let e = decode::<RoundsManager::NewRound>(log)?;
                undo.push(Undo::Rounds(self.rounds.clone()));
                let round: u64 = e.round.saturating_to();
                self.rounds.last_initialized_round = round;
                self.rounds.block_hashes.insert(round, e.blockHash);
                self.forget_old_redemptions(round, log.block_number, undo);
                return Ok(Applied {
                    new_round: true,
                    ..changed
                });
            }
            if topic0 == RoundsManager::ParameterUpdate::SIGNATURE_HASH {
                return Ok(Applied {
                    round_params: true,
                    ..Applied::default()
                });
            }
            return Ok(Applied::default());
        }
        if log.address == contracts.bonding_manager {
            if topic0 == BondingManager::TranscoderActivated::SIGNATURE_HASH {
                let e = decode::<BondingManager::TranscoderActivated>(log)?;
                let o = self.orchestrator_mut(e.transcoder, undo);
                o.activation_round = e.activationRound.saturating_to();
                o.deactivation_round = NEVER;
                o.in_pool = true;
            } else if topic0 == BondingManager::TranscoderDeactivated::SIGNATURE_HASH {
                let e = decode::<BondingManager::TranscoderDeactivated>(log)?;
                let o = self.orchestrator_mut(e.transcoder, undo);
                o.deactivation_round = e.deactivationRound.saturating_to();
                o.in_pool = false;
            } else {
                return Ok(Applied::default());
            }
            return Ok(changed);
        }
        if log.address == contracts.service_registry
            && topic0 == ServiceRegistry::ServiceURIUpdate::SIGNATURE_HASH
        {
            let e = decode::<ServiceRegistry::ServiceURIUpdate>(log)?;
            self.orchestrator_mut(e.addr, undo).service_uri = e.serviceURI;
            return Ok(changed);
        }
        Ok(Applied::default())
    }

    /// Drops redemptions older than the last [`REDEEMED_ROUNDS_KEPT`] rounds when `round` is
    /// initialised at `block`; journaled, so a rollback restores them exactly (the rounds
    /// bookkeeping itself is in the `Undo::Rounds` pushed before).
    fn forget_old_redemptions(&mut self, round: u64, block: u64, undo: &mut Vec<Undo>) {
        let starts = &mut self.rounds.initialized_at_block;
        starts.insert(round, block);
        // The kept rounds are the current one and the ones before it, REDEEMED_ROUNDS_KEPT in all.
        starts.retain(|r, _| r + REDEEMED_ROUNDS_KEPT > round);
        let Some(&cutoff) = (round + 1)
            .checked_sub(REDEEMED_ROUNDS_KEPT)
            .and_then(|oldest| starts.get(&oldest))
        else {
            return;
        };
        let old: Vec<(B256, u64)> = self
            .redeemed
            .iter()
            .filter(|(_, at)| **at < cutoff)
            .map(|(hash, at)| (*hash, *at))
            .collect();
        for (hash, at) in old {
            self.redeemed.remove(&hash);
            undo.push(Undo::Redeemed(hash, at));
        }
    }

    /// Undoes one block's journal (newest change first).
    pub fn rollback(&mut self, undo: Vec<Undo>) {
        for step in undo.into_iter().rev() {
            match step {
                Undo::Sender(addr, Some(old)) => {
                    self.senders.insert(addr, old);
                }
                Undo::Sender(addr, None) => {
                    self.senders.remove(&addr);
                }
                Undo::Orchestrator(addr, Some(old)) => {
                    self.orchestrators.insert(addr, old);
                }
                Undo::Orchestrator(addr, None) => {
                    self.orchestrators.remove(&addr);
                }
                Undo::Rounds(old) => self.rounds = old,
                Undo::Ticket(hash) => {
                    self.redeemed.remove(&hash);
                }
                Undo::Redeemed(hash, at) => {
                    self.redeemed.insert(hash, at);
                }
            }
        }
    }
}

fn decode<E: SolEvent>(log: &RawLog) -> Result<E, alloy::sol_types::Error> {
    E::decode_raw_log(log.topics.iter().copied(), &log.data)
}

/// The TicketBroker ticket hash of a redeemed ticket (§9.1): the log carries every field but
/// `recipientRandHash`, which is `keccak256(recipientRand)`.
pub fn ticket_hash(e: &TicketBroker::WinningTicketRedeemed) -> B256 {
    let rand_hash = keccak256(e.recipientRand.to_be_bytes::<32>());
    let mut buf = Vec::with_capacity(20 * 2 + 32 * 4 + e.auxData.len());
    buf.extend_from_slice(e.recipient.as_slice());
    buf.extend_from_slice(e.sender.as_slice());
    buf.extend_from_slice(&e.faceValue.to_be_bytes::<32>());
    buf.extend_from_slice(&e.winProb.to_be_bytes::<32>());
    buf.extend_from_slice(&e.senderNonce.to_be_bytes::<32>());
    buf.extend_from_slice(rand_hash.as_slice());
    buf.extend_from_slice(&e.auxData);
    keccak256(&buf)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy::primitives::{Bytes, LogData};
    use alloy::sol_types::SolEvent;

    fn contracts() -> Contracts {
        Contracts {
            ticket_broker: Address::repeat_byte(1),
            rounds_manager: Address::repeat_byte(2),
            bonding_manager: Address::repeat_byte(3),
            service_registry: Address::repeat_byte(4),
        }
    }

    fn raw<E: SolEvent>(address: Address, event: &E, block: u64) -> RawLog {
        let data: LogData = event.encode_log_data();
        RawLog {
            address,
            topics: data.topics().to_vec(),
            data: data.data.clone(),
            block_number: block,
            block_hash: B256::ZERO,
            log_index: 0,
            removed: false,
        }
    }

    #[test]
    fn senders_follow_the_broker_rules_and_roll_back_exactly() {
        let c = contracts();
        let sender = Address::repeat_byte(9);
        let orch = Address::repeat_byte(8);
        let mut data = ChainData::default();
        let mut undo0 = Vec::new();
        let logs0 = [
            raw(
                c.rounds_manager,
                &RoundsManager::NewRound {
                    round: U256::from(5),
                    blockHash: B256::repeat_byte(5),
                },
                1,
            ),
            raw(
                c.ticket_broker,
                &TicketBroker::DepositFunded {
                    sender,
                    amount: U256::from(1000),
                },
                1,
            ),
            raw(
                c.ticket_broker,
                &TicketBroker::ReserveFunded {
                    reserveHolder: sender,
                    amount: U256::from(500),
                },
                1,
            ),
        ];
        for l in &logs0 {
            assert!(data.apply(&c, l, &mut undo0).expect("decodes").changed);
        }
        let before = data.clone();

        // A ticket worth more than the deposit: deposit emptied, reserve claimed.
        let redeemed = TicketBroker::WinningTicketRedeemed {
            sender,
            recipient: orch,
            faceValue: U256::from(1100),
            winProb: U256::MAX,
            senderNonce: U256::from(1),
            recipientRand: U256::from(42),
            auxData: Bytes::new(),
        };
        let mut undo1 = Vec::new();
        for l in [
            raw(
                c.ticket_broker,
                &TicketBroker::ReserveClaimed {
                    reserveHolder: sender,
                    claimant: orch,
                    amount: U256::from(100),
                },
                2,
            ),
            raw(c.ticket_broker, &redeemed, 2),
            raw(
                c.ticket_broker,
                &TicketBroker::Unlock {
                    sender,
                    startRound: U256::from(5),
                    endRound: U256::from(7),
                },
                2,
            ),
        ] {
            data.apply(&c, &l, &mut undo1).expect("decodes");
        }
        let s = &data.senders[&sender];
        assert_eq!(s.deposit, U256::ZERO);
        assert_eq!(s.reserve, U256::from(400));
        assert_eq!(s.withdraw_round, 7);
        assert_eq!(s.claimed_in_round(5), U256::from(100));
        assert_eq!(s.claimed_by(5, &orch), U256::from(100));
        assert_eq!(data.redeemed.get(&ticket_hash(&redeemed)), Some(&2));
        assert_eq!(data.rounds.block_hash(5), B256::repeat_byte(5));

        data.rollback(undo1);
        assert_eq!(data, before);
        data.rollback(undo0);
        assert_eq!(data, ChainData::default());
    }

    #[test]
    fn redemptions_older_than_the_kept_rounds_are_forgotten_and_come_back_on_rollback() {
        let c = contracts();
        let mut data = ChainData::default();
        let new_round = |round: u64, block: u64| {
            raw(
                c.rounds_manager,
                &RoundsManager::NewRound {
                    round: U256::from(round),
                    blockHash: B256::repeat_byte(round as u8),
                },
                block,
            )
        };
        let redemption = |nonce: u64, block: u64| {
            let e = TicketBroker::WinningTicketRedeemed {
                sender: Address::repeat_byte(9),
                recipient: Address::repeat_byte(8),
                faceValue: U256::from(1),
                winProb: U256::MAX,
                senderNonce: U256::from(nonce),
                recipientRand: U256::from(nonce),
                auxData: Bytes::new(),
            };
            (ticket_hash(&e), raw(c.ticket_broker, &e, block))
        };
        // Round r starts at block 100 r; one redemption in each round, at block 100 r + 50.
        let mut hashes = Vec::new();
        let mut journal = Vec::new();
        for r in 1..=REDEEMED_ROUNDS_KEPT {
            let mut undo = Vec::new();
            data.apply(&c, &new_round(r, 100 * r), &mut undo)
                .expect("decodes");
            let (hash, log) = redemption(r, 100 * r + 50);
            data.apply(&c, &log, &mut undo).expect("decodes");
            hashes.push(hash);
            journal.push(undo);
        }
        assert_eq!(data.redeemed.len(), hashes.len(), "nothing old enough yet");
        let before = data.clone();
        // The next round keeps rounds 2..=5: the cut is at round 2's start, round 1's goes.
        let mut undo = Vec::new();
        let next = REDEEMED_ROUNDS_KEPT + 1;
        data.apply(&c, &new_round(next, 100 * next), &mut undo)
            .expect("decodes");
        assert!(
            !data.redeemed.contains_key(&hashes[0]),
            "round 1's redemption aged out"
        );
        assert!(hashes[1..].iter().all(|h| data.redeemed.contains_key(h)));
        assert_eq!(
            data.rounds
                .initialized_at_block
                .keys()
                .copied()
                .collect::<Vec<_>>(),
            (2..=next).collect::<Vec<_>>()
        );
        data.rollback(undo);
        assert_eq!(
            data, before,
            "a rollback brings the forgotten redemption back"
        );
        for undo in journal.into_iter().rev() {
            data.rollback(undo);
        }
        assert_eq!(data, ChainData::default());
    }

    #[test]
    fn orchestrators_activate_deactivate_and_count_in_the_pool() {
        let c = contracts();
        let o = Address::repeat_byte(7);
        let mut data = ChainData::default();
        let mut undo = Vec::new();
        data.apply(
            &c,
            &raw(
                c.bonding_manager,
                &BondingManager::TranscoderActivated {
                    transcoder: o,
                    activationRound: U256::from(3),
                },
                1,
            ),
            &mut undo,
        )
        .expect("decodes");
        data.apply(
            &c,
            &raw(
                c.service_registry,
                &ServiceRegistry::ServiceURIUpdate {
                    addr: o,
                    serviceURI: "https://o.example:8935".into(),
                },
                1,
            ),
            &mut undo,
        )
        .expect("decodes");
        assert_eq!(data.pool_size(), 1);
        let st = &data.orchestrators[&o];
        assert!(!st.is_active(2) && st.is_active(3) && st.is_active(1000));
        assert_eq!(st.service_uri, "https://o.example:8935");
        data.apply(
            &c,
            &raw(
                c.bonding_manager,
                &BondingManager::TranscoderDeactivated {
                    transcoder: o,
                    deactivationRound: U256::from(6),
                },
                2,
            ),
            &mut undo,
        )
        .expect("decodes");
        assert_eq!(data.pool_size(), 0);
        assert!(data.orchestrators[&o].is_active(5) && !data.orchestrators[&o].is_active(6));
        // The same event from another address is not ours.
        let stray = raw(
            Address::repeat_byte(0xee),
            &BondingManager::TranscoderDeactivated {
                transcoder: o,
                deactivationRound: U256::from(9),
            },
            3,
        );
        assert!(!data.apply(&c, &stray, &mut undo).expect("decodes").changed);
        assert_eq!(data.orchestrators[&o].deactivation_round, 6);
    }

    #[test]
    fn current_round_follows_the_rounds_manager_formula() {
        let r = RoundsState {
            params: RoundParams {
                round_length: 10,
                length_update_round: 1,
                length_update_start_block: 100,
            },
            ..RoundsState::default()
        };
        assert_eq!(r.current_round(100), 1);
        assert_eq!(r.current_round(109), 1);
        assert_eq!(r.current_round(110), 2);
        assert_eq!(r.current_round_start_block(125), 120);
    }
}
