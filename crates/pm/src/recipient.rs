//! The orchestrator side: making TicketParams and receiving tickets and payments
//! (§9.4–§9.7; GL pm/recipient.go, pm/validator.go, core/orchestrator.go `ProcessPayment`).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use hmac::{Hmac, KeyInit, Mac};
use num_bigint::BigUint;
use num_rational::BigRational;
use num_traits::Zero;
use sha2::Sha256;

use crate::address::Address;
use crate::balance::Balances;
use crate::chain::{max_float, reserve_alloc, ChainState};
use crate::error::PmError;
use crate::num::{min_be_bytes, min_be_bytes_u64, U256};
use crate::params::{RecipientConfig, TicketParams, PARAMS_EXPIRATION_BLOCKS};
use crate::price::Price;
use crate::ticket::{recipient_rand_hash, Ticket, TicketExpirationParams};
use crate::winning::WinningTicket;
use crate::wire::PaymentMsg;

/// Senders whose max float a redeemer monitor follows at most.
pub const MAX_FOLLOWED_SENDERS: usize = 10_000;

/// `maxSenderNonces`: nonces kept per recipientRand before further tickets are refused.
pub const MAX_SENDER_NONCES: usize = 600;

type HmacSha256 = Hmac<Sha256>;

#[derive(Debug)]
struct NonceEntry {
    seen: HashSet<u32>,
    expiration_block: u64,
}

/// What receiving one ticket gave.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReceiveOutcome {
    /// Whether the ticket won; a winner is redeemable even when `error` is a non-fatal error.
    pub won: bool,
    /// The recomputed recipientRand.
    pub recipient_rand: U256,
    /// The first check that failed, if any.
    pub error: Option<PmError>,
}

/// What processing one `Payment` gave.
#[derive(Clone, Debug, PartialEq)]
pub struct PaymentOutcome {
    /// Tickets credited.
    pub credited_tickets: usize,
    /// EV credited to `(sender, session)`.
    pub credited_ev: BigRational,
    /// Winning tickets to queue for redemption, including those that came with a
    /// non-fatal error.
    pub winning_tickets: Vec<WinningTicket>,
    /// The error `/segment` answers 400 with: a fatal one, or else the last non-fatal one
    /// (go-livepeer overwrites its `receiveErr` on each failure).
    pub error: Option<PmError>,
}

impl PaymentOutcome {
    fn empty() -> PaymentOutcome {
        PaymentOutcome {
            credited_tickets: 0,
            credited_ev: BigRational::zero(),
            winning_tickets: Vec::new(),
            error: None,
        }
    }

    fn failed(error: PmError) -> PaymentOutcome {
        PaymentOutcome {
            error: Some(error),
            ..PaymentOutcome::empty()
        }
    }
}

/// The on-chain orchestrator's ticket receiver. One per process; shared between threads.
pub struct Recipient {
    address: Address,
    secret: [u8; 32],
    cfg: RecipientConfig,
    chain: Arc<dyn ChainState>,
    nonces: Mutex<HashMap<[u8; 32], NonceEntry>>,
    pending: Mutex<HashMap<Address, U256>>,
    /// Max float per sender as a remote redeemer reports it (it knows the redemptions in
    /// flight); preferred to the local computation while present.
    reported_max_float: Mutex<HashMap<Address, U256>>,
    /// Senders that asked for ticket params, for a max-float monitor to follow.
    senders: Mutex<HashSet<Address>>,
}

impl std::fmt::Debug for Recipient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The secret stays out of logs.
        f.debug_struct("Recipient")
            .field("address", &self.address)
            .field("cfg", &self.cfg)
            .finish_non_exhaustive()
    }
}

fn biguint_min_bytes(v: &BigUint) -> Vec<u8> {
    // BigUint writes zero as [0]; Go's big.Int.Bytes() writes it as nothing.
    if v.is_zero() {
        Vec::new()
    } else {
        v.to_bytes_be()
    }
}

/// 32 bytes from the operating system's random source.
pub fn random_bytes32() -> Result<[u8; 32], PmError> {
    let mut b = [0u8; 32];
    getrandom::fill(&mut b).map_err(|e| PmError::Randomness(e.to_string()))?;
    Ok(b)
}

impl Recipient {
    /// A recipient with a caller-chosen secret (tests, or a secret shared by replicas so that
    /// any of them can recompute recipientRand).
    pub fn with_secret(
        address: Address,
        secret: [u8; 32],
        cfg: RecipientConfig,
        chain: Arc<dyn ChainState>,
    ) -> Recipient {
        Recipient {
            address,
            secret,
            cfg,
            chain,
            nonces: Mutex::new(HashMap::new()),
            pending: Mutex::new(HashMap::new()),
            reported_max_float: Mutex::new(HashMap::new()),
            senders: Mutex::new(HashSet::new()),
        }
    }

    /// A recipient with a fresh random secret: restarting invalidates outstanding params.
    pub fn new(
        address: Address,
        cfg: RecipientConfig,
        chain: Arc<dyn ChainState>,
    ) -> Result<Recipient, PmError> {
        Ok(Recipient::with_secret(
            address,
            random_bytes32()?,
            cfg,
            chain,
        ))
    }

    /// The recipient address tickets must name.
    pub fn address(&self) -> Address {
        self.address
    }

    /// The ticket settings.
    pub fn config(&self) -> &RecipientConfig {
        &self.cfg
    }

    /// The EV a session must keep in credit (`-ticketEV`), exactly.
    pub fn ev(&self) -> BigRational {
        crate::num::rational_from_u256(&self.cfg.ev)
    }

    /// recipientRand as HMAC-SHA256 over the fields §9.4 lists, each in minimal big-endian
    /// form, so that any re-encoding B applies on the echo gives the same value (§19.6).
    #[allow(clippy::too_many_arguments)]
    pub fn recipient_rand(
        &self,
        seed: &U256,
        sender: &Address,
        face_value: &U256,
        win_prob: &U256,
        expiration_block: u64,
        price: &Price,
        expiration_params: &TicketExpirationParams,
    ) -> U256 {
        let mut mac =
            HmacSha256::new_from_slice(&self.secret).expect("hmac accepts keys of any length");
        mac.update(&min_be_bytes(seed));
        mac.update(&sender.0);
        mac.update(&min_be_bytes(face_value));
        mac.update(&min_be_bytes(win_prob));
        mac.update(&min_be_bytes_u64(expiration_block));
        mac.update(&biguint_min_bytes(&price.numer()));
        mac.update(&biguint_min_bytes(&price.denom()));
        mac.update(&expiration_params.aux_data());
        let mut out = [0u8; 32];
        out.copy_from_slice(&mac.finalize().into_bytes());
        U256::from_be_bytes(out)
    }

    /// The sender's max float after in-flight redemptions (§11.1): as the redeemer reports
    /// it when one does, else computed from the chain and the local pending amounts.
    pub fn max_float(&self, sender: &Address) -> Result<U256, PmError> {
        if let Some(reported) = self.reported_max_float(sender) {
            return Ok(reported);
        }
        let info = self.chain.sender_info(sender)?;
        let claimed = self.chain.claimed_reserve(sender, &self.address);
        let alloc = reserve_alloc(&info, self.chain.transcoder_pool_size(), &claimed);
        let pending = self.pending_amount(sender);
        Ok(max_float(&alloc, &info.deposit, &pending))
    }

    /// Face value of tickets for `sender` (§9.5).
    pub fn face_value(&self, sender: &Address) -> Result<U256, PmError> {
        self.cfg
            .face_value(&self.chain.gas_price(), &self.max_float(sender)?)
    }

    /// `txCostMultiplier(sender) = faceValue / txCost`, 0 when txCost is 0.
    pub fn tx_cost_multiplier(&self, sender: &Address) -> Result<BigRational, PmError> {
        let fv = self.face_value(sender)?;
        let tx_cost = self.cfg.tx_cost(&self.chain.gas_price());
        if tx_cost.is_zero() {
            return Ok(BigRational::zero());
        }
        Ok(BigRational::new(
            crate::num::to_bigint(&fv),
            crate::num::to_bigint(&tx_cost),
        ))
    }

    /// The auto-adjusted price to quote `sender` for a base price (§9.8).
    pub fn auto_adjusted_price(&self, base: &Price, sender: &Address) -> Result<Price, PmError> {
        if base.is_zero() {
            return Ok(Price::zero());
        }
        let fv = self.face_value(sender)?;
        let tx_cost = self.cfg.tx_cost(&self.chain.gas_price());
        Ok(base.auto_adjusted(&fv, &tx_cost))
    }

    /// Creation round and block hash; when Arbitrum reports a zero hash for the current
    /// round, the round before and its hash (go-livepeer PR #2362).
    pub fn expiration_params(&self) -> TicketExpirationParams {
        let round = self.chain.last_initialized_round();
        let hash = self.chain.last_initialized_block_hash();
        if hash == [0u8; 32] {
            return TicketExpirationParams {
                creation_round: round - 1,
                creation_round_block_hash: self.chain.pre_last_initialized_block_hash(),
            };
        }
        TicketExpirationParams {
            creation_round: round,
            creation_round_block_hash: hash,
        }
    }

    /// New TicketParams for `sender` at `price` (§9.5). A zero price gives zero face value
    /// and win probability.
    pub fn ticket_params(&self, sender: &Address, price: &Price) -> Result<TicketParams, PmError> {
        let seed = U256::from_be_bytes(random_bytes32()?);
        self.ticket_params_with_seed(sender, price, seed)
    }

    /// `ticket_params` with a chosen seed.
    pub fn ticket_params_with_seed(
        &self,
        sender: &Address,
        price: &Price,
        seed: U256,
    ) -> Result<TicketParams, PmError> {
        {
            // Bounded: anyone can sign a GetOrchestrator with a fresh key.
            let mut seen = self.senders.lock().unwrap_or_else(|e| e.into_inner());
            if seen.len() < MAX_FOLLOWED_SENDERS {
                seen.insert(*sender);
            }
        }
        let face_value = if price.is_zero() {
            U256::ZERO
        } else {
            self.face_value(sender)?
        };
        let win_prob = self.cfg.win_prob(&face_value);
        let expiration_block = self.chain.last_seen_l1_block() + PARAMS_EXPIRATION_BLOCKS;
        let expiration_params = self.expiration_params();
        let rand = self.recipient_rand(
            &seed,
            sender,
            &face_value,
            &win_prob,
            expiration_block,
            price,
            &expiration_params,
        );
        Ok(TicketParams {
            recipient: self.address,
            face_value,
            win_prob,
            recipient_rand_hash: recipient_rand_hash(&rand),
            seed,
            expiration_block,
            price_per_pixel: price.clone(),
            expiration_params,
        })
    }

    /// `SenderMonitor.ValidateSender`: refuses a sender whose funds unlock this round or next.
    pub fn validate_sender(&self, sender: &Address) -> Result<(), PmError> {
        let info = self
            .chain
            .sender_info(sender)
            .map_err(|e| PmError::SenderInfoUnavailable {
                sender: *sender,
                reason: e.to_string(),
            })?;
        let max_withdraw_round = self.chain.last_initialized_round() + 1;
        if info.withdraw_round != 0 && info.withdraw_round <= max_withdraw_round {
            return Err(PmError::SenderUnlockSoon { sender: *sender });
        }
        Ok(())
    }

    /// Receives one ticket (`ReceiveTicket`), recomputing recipientRand from `seed` and the
    /// ticket's echoed fields, in go-livepeer's order: sender, recipient, sender address,
    /// recipientRand, signature, win check, nonce, expiry.
    pub fn receive_ticket(&self, ticket: &Ticket, sig: &[u8], seed: &U256) -> ReceiveOutcome {
        let rand = self.recipient_rand(
            seed,
            &ticket.sender,
            &ticket.face_value,
            &ticket.win_prob,
            ticket.params_expiration_block,
            &ticket.price_per_pixel,
            &ticket.expiration_params,
        );
        self.receive_with_rand(ticket, sig, rand)
    }

    fn receive_with_rand(&self, ticket: &Ticket, sig: &[u8], rand: U256) -> ReceiveOutcome {
        let fail = |won: bool, e: PmError| ReceiveOutcome {
            won,
            recipient_rand: rand,
            error: Some(e),
        };
        if let Err(e) = self.validate_sender(&ticket.sender) {
            return fail(false, e);
        }
        if let Err(e) = ticket.validate(&self.address, sig, &rand) {
            return fail(false, e);
        }
        let won = ticket.is_winning(sig, &rand);
        if let Err(e) = self.update_sender_nonce(&rand, ticket) {
            return fail(won, e);
        }
        if ticket.params_expiration_block <= self.chain.last_seen_l1_block() {
            return fail(won, PmError::TicketParamsExpired);
        }
        ReceiveOutcome {
            won,
            recipient_rand: rand,
            error: None,
        }
    }

    fn update_sender_nonce(&self, rand: &U256, ticket: &Ticket) -> Result<(), PmError> {
        let mut g = self.nonces.lock().unwrap_or_else(|e| e.into_inner());
        let entry = g.entry(rand.to_be_bytes()).or_insert_with(|| NonceEntry {
            seen: HashSet::new(),
            expiration_block: ticket.params_expiration_block,
        });
        let (sender, nonce) = (ticket.sender, ticket.sender_nonce);
        if entry.seen.contains(&nonce) {
            return Err(PmError::NonceAlreadySeen { sender, nonce });
        }
        if entry.seen.len() >= MAX_SENDER_NONCES {
            return Err(PmError::TooManyNonces { sender, nonce });
        }
        entry.seen.insert(nonce);
        Ok(())
    }

    /// Forgets the nonces of params whose expiration block is at or below `latest_l1_block`;
    /// call on every new L1 block. Returns how many recipientRands were dropped.
    pub fn cleanup_nonces(&self, latest_l1_block: u64) -> usize {
        let mut g = self.nonces.lock().unwrap_or_else(|e| e.into_inner());
        let before = g.len();
        g.retain(|_, e| e.expiration_block > latest_l1_block);
        before - g.len()
    }

    /// Number of recipientRands whose nonces are tracked.
    pub fn tracked_rands(&self) -> usize {
        self.nonces.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Sets (or, with `None`, forgets) the max float a remote redeemer reports for `sender`
    /// (go-livepeer's `-redeemerAddr`: the redeemer owns the redemptions in flight).
    pub fn set_reported_max_float(&self, sender: Address, max_float: Option<U256>) {
        let mut g = self
            .reported_max_float
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        match max_float {
            Some(v) => g.insert(sender, v),
            None => g.remove(&sender),
        };
    }

    /// The max float the redeemer last reported for `sender`, if any.
    pub fn reported_max_float(&self, sender: &Address) -> Option<U256> {
        let g = self
            .reported_max_float
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        g.get(sender).copied()
    }

    /// Every sender that asked for ticket params so far.
    pub fn senders(&self) -> Vec<Address> {
        let g = self.senders.lock().unwrap_or_else(|e| e.into_inner());
        g.iter().copied().collect()
    }

    /// Face value of this sender's tickets now being redeemed (lowers max float).
    pub fn pending_amount(&self, sender: &Address) -> U256 {
        let g = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        g.get(sender).copied().unwrap_or(U256::ZERO)
    }

    /// Marks `face_value` of `sender`'s tickets as being redeemed.
    pub fn add_pending(&self, sender: Address, face_value: U256) {
        let mut g = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        let v = g.entry(sender).or_insert(U256::ZERO);
        *v = v.saturating_add(face_value);
    }

    /// Ends a redemption started with `add_pending`.
    pub fn sub_pending(&self, sender: Address, face_value: U256) {
        let mut g = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(v) = g.get_mut(&sender) {
            *v = v.saturating_sub(face_value);
            if v.is_zero() {
                g.remove(&sender);
            }
        }
    }

    /// `ProcessPayment` for an on-chain orchestrator (§9.6): fixes the session price, credits
    /// EV to `(sender, session_id)` in `balances` until the first non-fatal error, stops at a
    /// fatal one, and returns the winners either way. An off-chain orchestrator does not call
    /// this: it accepts every payment.
    pub fn process_payment(
        &self,
        payment: &PaymentMsg,
        session_id: &str,
        balances: &Balances,
    ) -> PaymentOutcome {
        if payment.sender.is_empty() && payment.ticket_params.is_some() {
            return PaymentOutcome::failed(PmError::MissingSender);
        }
        let sender = Address::from_slice_lenient(&payment.sender);
        let Some(wire_params) = payment.ticket_params.as_ref() else {
            // No params: the price is zero and nothing is owed.
            balances.fix_price(sender, session_id, &Price::zero());
            return PaymentOutcome::empty();
        };
        let recipient = Address::from_slice_lenient(&wire_params.recipient);
        let round = self.chain.last_initialized_round();
        if !self.chain.is_active(&recipient, round) {
            return PaymentOutcome::failed(PmError::OrchestratorInactive {
                orchestrator: recipient,
                round,
            });
        }
        let price = match payment.expected_price.as_ref() {
            None => Err(PmError::InvalidExpectedPrice(
                "expected price is nil".to_string(),
            )),
            Some(info) => Price::from_price_info(info)
                .map_err(|e| PmError::InvalidExpectedPrice(e.to_string())),
        };
        let price = match price {
            Ok(p) => p,
            Err(e) => return PaymentOutcome::failed(e),
        };
        balances.fix_price(sender, session_id, &price);

        let params = match TicketParams::from_wire(wire_params, price) {
            Ok(p) => p,
            Err(e) => return PaymentOutcome::failed(e),
        };
        let expiration_params =
            TicketExpirationParams::from_wire(payment.expiration_params.as_ref());
        // Every ticket of a payment shares seed, sender and params: one HMAC covers them all.
        let rand = self.recipient_rand(
            &params.seed,
            &sender,
            &params.face_value,
            &params.win_prob,
            params.expiration_block,
            &params.price_per_pixel,
            &expiration_params,
        );

        let mut out = PaymentOutcome::empty();
        for tsp in &payment.ticket_sender_params {
            let ticket = params.ticket(sender, tsp.sender_nonce, expiration_params);
            let r = self.receive_with_rand(&ticket, &tsp.sig, rand);
            if let Some(e) = r.error {
                if e.is_fatal() {
                    out.error = Some(e);
                    return out;
                }
                out.error = Some(e);
            }
            if out.error.is_none() {
                let ev = ticket.ev();
                balances.credit(sender, session_id, &ev);
                out.credited_ev += ev;
                out.credited_tickets += 1;
            }
            if r.won {
                out.winning_tickets
                    .push(WinningTicket::new(&ticket, &tsp.sig, rand, session_id));
            }
        }
        out
    }
}
