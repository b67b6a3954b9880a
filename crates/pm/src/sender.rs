//! The broadcaster side (§10; GL pm/sender.go, server/segment_rpc.go `estimateFee`,
//! `genPayment`): accepting an orchestrator's params, sizing and signing ticket batches.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use num_bigint::BigInt;
use num_rational::BigRational;
use num_traits::{Signed, Zero};

use crate::address::Address;
use crate::chain::ChainState;
use crate::error::PmError;
use crate::num::{float_string, rational_from_f64, rational_from_u256, U256};
use crate::params::{TicketParams, PARAMS_EXPIRY_BUFFER};
use crate::price::Price;
use crate::sig::{Signer, SIGNATURE_LEN};
use crate::ticket::{Ticket, TicketExpirationParams};
use crate::wire::{PaymentMsg, PriceInfoMsg, TicketSenderParamsMsg};

/// `pixelEstimateMultiplier`; go-livepeer takes it through `big.Rat.SetFloat64`, so the
/// exact binary value of 1.02 is used, not 51/50.
pub const PIXEL_ESTIMATE_MULTIPLIER: f64 = 1.02;
/// `-maxTicketEV` default, wei.
pub const DEFAULT_MAX_TICKET_EV: u64 = 3_000_000_000_000;
/// `-maxTotalEV` default, wei.
pub const DEFAULT_MAX_TOTAL_EV: u64 = 20_000_000_000_000;
/// An fps of 0 (pass-through) is estimated as this.
pub const PASSTHROUGH_FPS_ESTIMATE: u32 = 60;

/// A broadcaster's acceptance limits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SenderConfig {
    /// `-maxTicketEV`.
    pub max_ev: BigRational,
    /// `-maxTotalEV`.
    pub max_total_ev: BigRational,
    /// `-depositMultiplier`: face value may be at most `deposit / multiplier`.
    pub deposit_multiplier: u64,
}

impl Default for SenderConfig {
    fn default() -> Self {
        SenderConfig {
            max_ev: BigRational::from_integer(BigInt::from(DEFAULT_MAX_TICKET_EV)),
            max_total_ev: BigRational::from_integer(BigInt::from(DEFAULT_MAX_TOTAL_EV)),
            deposit_multiplier: 1,
        }
    }
}

/// An output rendition as the fee estimate sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OutputProfile {
    /// Pixels wide.
    pub width: u32,
    /// Pixels high.
    pub height: u32,
    /// Frame rate numerator; 0 means pass-through.
    pub fps: u32,
    /// Frame rate denominator; 0 means 1.
    pub fps_den: u32,
}

/// `Σ w × h × ceil(fps/fpsDen) × ceil(duration) × 1.02 × price` (§10), exactly.
pub fn estimate_fee(profiles: &[OutputProfile], segment_secs: f64, price: &Price) -> BigRational {
    let secs = BigInt::from(segment_secs.max(0.0).ceil() as u64);
    let mut pixels = BigInt::zero();
    for p in profiles {
        let fps = if p.fps == 0 {
            PASSTHROUGH_FPS_ESTIMATE
        } else {
            p.fps
        };
        let den = if p.fps_den == 0 { 1 } else { p.fps_den };
        let fps = u64::from(fps).div_ceil(u64::from(den));
        pixels +=
            BigInt::from(u64::from(p.width) * u64::from(p.height)) * BigInt::from(fps) * &secs;
    }
    BigRational::from_integer(pixels)
        * rational_from_f64(PIXEL_ESTIMATE_MULTIPLIER)
        * price.as_rational()
}

/// Signed tickets for one payment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TicketBatch {
    /// The params the tickets are under.
    pub params: TicketParams,
    /// The expiration params the tickets were hashed with.
    pub expiration_params: TicketExpirationParams,
    /// Our address.
    pub sender: Address,
    /// `(nonce, sig)` per ticket.
    pub sender_params: Vec<(u32, [u8; SIGNATURE_LEN])>,
}

impl TicketBatch {
    /// The tickets of the batch.
    pub fn tickets(&self) -> Vec<Ticket> {
        self.sender_params
            .iter()
            .map(|(n, _)| self.params.ticket(self.sender, *n, self.expiration_params))
            .collect()
    }
}

/// Builds the `Payment` (`genPayment`): sender and expected price always; params, expiration
/// params and per-ticket nonces and signatures when there is a batch.
pub fn gen_payment(
    sender: Address,
    expected_price: PriceInfoMsg,
    batch: Option<&TicketBatch>,
) -> PaymentMsg {
    let mut p = PaymentMsg {
        sender: sender.0.to_vec(),
        expected_price: Some(expected_price),
        ..PaymentMsg::default()
    };
    if let Some(b) = batch.filter(|b| !b.sender_params.is_empty()) {
        p.ticket_params = Some(b.params.to_wire(false));
        p.expiration_params = Some(b.expiration_params.to_wire());
        p.ticket_sender_params = b
            .sender_params
            .iter()
            .map(|(n, s)| TicketSenderParamsMsg {
                sender_nonce: *n,
                sig: s.to_vec(),
            })
            .collect();
    }
    p
}

#[derive(Debug)]
struct PmSession {
    nonce: u32,
    params: TicketParams,
}

/// The broadcaster's ticket sender.
pub struct Sender {
    signer: Signer,
    cfg: SenderConfig,
    chain: Arc<dyn ChainState>,
    sessions: Mutex<HashMap<String, PmSession>>,
}

impl std::fmt::Debug for Sender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sender")
            .field("signer", &self.signer)
            .field("cfg", &self.cfg)
            .finish_non_exhaustive()
    }
}

impl Sender {
    /// A sender signing with `signer`.
    pub fn new(signer: Signer, cfg: SenderConfig, chain: Arc<dyn ChainState>) -> Sender {
        Sender {
            signer,
            cfg,
            chain,
            sessions: Mutex::new(HashMap::new()),
        }
    }

    /// Our address.
    pub fn address(&self) -> Address {
        self.signer.address()
    }

    /// Starts a PM session for new params; its id is `recipientRandHash.Hex()` and its nonce
    /// starts at 0, pre-incremented, so the first ticket has nonce 1.
    pub fn start_session(&self, params: TicketParams) -> String {
        let id = params.session_id();
        let mut g = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        g.insert(id.clone(), PmSession { nonce: 0, params });
        id
    }

    /// Forgets a PM session.
    pub fn cleanup_session(&self, session_id: &str) {
        self.sessions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(session_id);
    }

    /// EV of one ticket in the session.
    pub fn ev(&self, session_id: &str) -> Result<BigRational, PmError> {
        let g = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        g.get(session_id)
            .map(|s| s.params.ev())
            .ok_or_else(|| PmError::UnknownSession(session_id.to_string()))
    }

    /// Whether the params are acceptable for one ticket (B drops the O otherwise).
    pub fn validate_ticket_params(&self, params: &TicketParams) -> Result<(), PmError> {
        self.validate_ticket_params_n(params, 1)
    }

    /// go-livepeer's `validateTicketParams` for `num_tickets` tickets, in its order.
    pub fn validate_ticket_params_n(
        &self,
        params: &TicketParams,
        num_tickets: usize,
    ) -> Result<(), PmError> {
        // go-livepeer skips every check for params without an expiration block.
        if params.expiration_block == 0 {
            return Ok(());
        }
        let latest = self.chain.last_seen_l1_block();
        if params.expiration_block.saturating_sub(latest) <= PARAMS_EXPIRY_BUFFER {
            return Err(PmError::TicketParamsExpired);
        }
        let ev = params.ev();
        if !ev.is_positive() {
            return Ok(());
        }
        if ev >= rational_from_u256(&params.face_value) {
            return Err(PmError::FaceValueTooLow {
                face_value: params.face_value.to_string(),
            });
        }
        if ev > self.cfg.max_ev {
            return Err(PmError::TicketEvTooHigh {
                ev: float_string(&ev, 5),
                max: float_string(&self.cfg.max_ev, 5),
            });
        }
        let info = self.chain.sender_info(&self.address())?;
        let max_withdraw_round = self.chain.last_initialized_round() + 1;
        if info.withdraw_round != 0 && info.withdraw_round <= max_withdraw_round {
            return Err(PmError::OwnDepositUnlockSoon);
        }
        if info.reserve.funds_remaining.is_zero() {
            return Err(PmError::NoSenderReserve);
        }
        if info.deposit.is_zero() {
            return Err(PmError::NoSenderDeposit);
        }
        let total = &ev * BigRational::from_integer(BigInt::from(num_tickets));
        if total > self.cfg.max_total_ev {
            return Err(PmError::TotalEvTooHigh {
                total: float_string(&total, 5),
                num_tickets,
                max: float_string(&self.cfg.max_total_ev, 5),
            });
        }
        let max_face_value = info.deposit / U256::from(self.cfg.deposit_multiplier.max(1));
        if params.face_value > max_face_value {
            return Err(PmError::FaceValueTooHigh {
                face_value: params.face_value.to_string(),
                max: max_face_value.to_string(),
            });
        }
        Ok(())
    }

    /// Our own expiration params, used when O sent none or zero ones.
    fn own_expiration_params(&self) -> TicketExpirationParams {
        TicketExpirationParams {
            creation_round: self.chain.last_initialized_round(),
            creation_round_block_hash: self.chain.last_initialized_block_hash(),
        }
    }

    /// Validates the session's params for `size` tickets and signs that many, with the next
    /// nonces (`CreateTicketBatch`).
    pub fn create_ticket_batch(
        &self,
        session_id: &str,
        size: usize,
    ) -> Result<TicketBatch, PmError> {
        let (params, first_nonce) = {
            let mut g = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
            let s = g
                .get_mut(session_id)
                .ok_or_else(|| PmError::UnknownSession(session_id.to_string()))?;
            self.validate_ticket_params_n(&s.params, size)?;
            let first = s.nonce.wrapping_add(1);
            s.nonce = s.nonce.wrapping_add(size as u32);
            (s.params.clone(), first)
        };
        let ep = params.expiration_params;
        let expiration_params =
            if ep.creation_round == 0 || ep.creation_round_block_hash == [0u8; 32] {
                self.own_expiration_params()
            } else {
                ep
            };
        let sender = self.address();
        let sender_params = (0..size as u32)
            .map(|i| {
                let nonce = first_nonce.wrapping_add(i);
                let ticket = params.ticket(sender, nonce, expiration_params);
                (nonce, self.signer.sign_personal(&ticket.hash()))
            })
            .collect();
        Ok(TicketBatch {
            params,
            expiration_params,
            sender,
            sender_params,
        })
    }
}
