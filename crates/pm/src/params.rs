//! TicketParams and the formulas an orchestrator uses to pick face value and win probability
//! (§9.5; GL pm/recipient.go `TicketParams`, `faceValue`, `winProb`).

use num_rational::BigRational;

use crate::address::Address;
use crate::error::PmError;
use crate::hexfmt;
use crate::num::{
    min_be_bytes, min_be_bytes_u64, ticket_ev, u256_from_be, u64_from_be, MAX_WIN_PROB, U256,
};
use crate::price::Price;
use crate::ticket::{bytes_to_hash, Ticket, TicketExpirationParams};
use crate::wire::TicketParamsMsg;

/// `paramsExpirationBlock`: params expire this many L1 blocks after they are made.
pub const PARAMS_EXPIRATION_BLOCKS: u64 = 40;
/// `paramsExpiryBuffer`: B refreshes params this many blocks before they expire.
pub const PARAMS_EXPIRY_BUFFER: u64 = 1;
/// `evMultiplier`: face value is `EV × 100` when `txCost × multiplier` is below EV.
pub const EV_MULTIPLIER: u64 = 100;
/// `avgGasPrice`: 3 gwei, the second tx-cost floor for the face value.
pub const AVG_GAS_PRICE_WEI: u64 = 3_000_000_000;
/// `-ticketEV` default, wei.
pub const DEFAULT_TICKET_EV: u64 = 8_000_000_000;
/// `redeemGas` on Arbitrum.
pub const DEFAULT_REDEEM_GAS: u64 = 1_200_000;
/// `-txCostMultiplier` default.
pub const DEFAULT_TX_COST_MULTIPLIER: u64 = 100;

/// An orchestrator's ticket settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecipientConfig {
    /// `-ticketEV`: the EV required per ticket, wei.
    pub ev: U256,
    /// Gas one redemption takes.
    pub redeem_gas: u64,
    /// `-txCostMultiplier`: face value as a multiple of the redemption cost.
    pub tx_cost_multiplier: u64,
    /// `-maxFaceValue`; 0 for no cap.
    pub max_face_value: U256,
}

impl Default for RecipientConfig {
    fn default() -> Self {
        RecipientConfig {
            ev: U256::from(DEFAULT_TICKET_EV),
            redeem_gas: DEFAULT_REDEEM_GAS,
            tx_cost_multiplier: DEFAULT_TX_COST_MULTIPLIER,
            max_face_value: U256::ZERO,
        }
    }
}

impl RecipientConfig {
    /// `txCost = redeemGas × gasPrice`.
    pub fn tx_cost(&self, gas_price: &U256) -> U256 {
        U256::from(self.redeem_gas).saturating_mul(*gas_price)
    }

    /// The face value for a sender whose max float is `max_float` (§9.5 steps 1–5).
    pub fn face_value(&self, gas_price: &U256, max_float: &U256) -> Result<U256, PmError> {
        let tx_cost = self.tx_cost(gas_price);
        let mut fv = tx_cost.saturating_mul(U256::from(self.tx_cost_multiplier));
        if fv < self.ev {
            fv = self.ev.saturating_mul(U256::from(EV_MULTIPLIER));
        }
        if fv > *max_float {
            fv = *max_float;
        }
        if !self.max_face_value.is_zero() && self.max_face_value < fv {
            fv = self.max_face_value;
        }
        if fv < self.ev {
            return Err(PmError::InsufficientSenderReserve);
        }
        let avg_tx_cost = self.tx_cost(&U256::from(AVG_GAS_PRICE_WEI));
        if fv < tx_cost && fv < avg_tx_cost {
            return Err(PmError::InsufficientSenderReserve);
        }
        Ok(fv)
    }

    /// The win probability for a face value: 0 for 0, `2^256−1` when it equals EV, else
    /// `EV × ceil((2^256−1) / faceValue)`.
    pub fn win_prob(&self, face_value: &U256) -> U256 {
        if face_value.is_zero() {
            return U256::ZERO;
        }
        if *face_value == self.ev {
            return MAX_WIN_PROB;
        }
        let (q, r) = MAX_WIN_PROB.div_rem(*face_value);
        let q = if r.is_zero() { q } else { q + U256::from(1u64) };
        // Overflows only when EV > faceValue, which face_value() never returns.
        self.ev.saturating_mul(q)
    }
}

/// Parameters an orchestrator hands a broadcaster for one PM session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TicketParams {
    /// The orchestrator's ETH address.
    pub recipient: Address,
    /// Wei paid by a winning ticket.
    pub face_value: U256,
    /// Numerator over `2^256 − 1`.
    pub win_prob: U256,
    /// `keccak256(pad32(recipientRand))`.
    pub recipient_rand_hash: [u8; 32],
    /// Random per params; an input to recipientRand.
    pub seed: U256,
    /// L1 block at which the params expire.
    pub expiration_block: u64,
    /// Price the params were made for.
    pub price_per_pixel: Price,
    /// Creation round and its block hash.
    pub expiration_params: TicketExpirationParams,
}

impl TicketParams {
    /// Exact EV of one ticket.
    pub fn ev(&self) -> BigRational {
        ticket_ev(&self.face_value, &self.win_prob)
    }

    /// PM session id on the sender side: `recipientRandHash.Hex()` (lowercase, `0x`).
    pub fn session_id(&self) -> String {
        hexfmt::encode_prefixed(&self.recipient_rand_hash)
    }

    /// A ticket for `sender` and `nonce` under these params.
    pub fn ticket(
        &self,
        sender: Address,
        nonce: u32,
        expiration_params: TicketExpirationParams,
    ) -> Ticket {
        Ticket {
            recipient: self.recipient,
            sender,
            face_value: self.face_value,
            win_prob: self.win_prob,
            sender_nonce: nonce,
            recipient_rand_hash: self.recipient_rand_hash,
            expiration_params,
            params_expiration_block: self.expiration_block,
            price_per_pixel: self.price_per_pixel.clone(),
        }
    }

    /// The wire message, with minimal big-endian integers; `with_expiration_params` sets
    /// field 7 (O's OrchestratorInfo does, B's Payment does not).
    pub fn to_wire(&self, with_expiration_params: bool) -> TicketParamsMsg {
        TicketParamsMsg {
            recipient: self.recipient.0.to_vec(),
            face_value: min_be_bytes(&self.face_value),
            win_prob: min_be_bytes(&self.win_prob),
            recipient_rand_hash: self.recipient_rand_hash.to_vec(),
            seed: min_be_bytes(&self.seed),
            expiration_block: min_be_bytes_u64(self.expiration_block),
            expiration_params: with_expiration_params.then(|| self.expiration_params.to_wire()),
        }
    }

    /// Decodes wire params (read the way go-livepeer reads them: addresses and hashes
    /// lenient, integers of any length up to their type), with the price they were quoted at.
    /// Integers are normalised, so re-encoding gives minimal bytes (§19.6).
    pub fn from_wire(msg: &TicketParamsMsg, price: Price) -> Result<TicketParams, PmError> {
        Ok(TicketParams {
            recipient: Address::from_slice_lenient(&msg.recipient),
            face_value: u256_from_be("face_value", &msg.face_value)?,
            win_prob: u256_from_be("win_prob", &msg.win_prob)?,
            recipient_rand_hash: bytes_to_hash(&msg.recipient_rand_hash),
            seed: u256_from_be("seed", &msg.seed)?,
            expiration_block: u64_from_be("expiration_block", &msg.expiration_block)?,
            price_per_pixel: price,
            expiration_params: TicketExpirationParams::from_wire(msg.expiration_params.as_ref()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(ev: u64) -> RecipientConfig {
        RecipientConfig {
            ev: U256::from(ev),
            ..RecipientConfig::default()
        }
    }

    #[test]
    fn face_value_is_tx_cost_times_multiplier() {
        let c = cfg(DEFAULT_TICKET_EV);
        let gas = U256::from(10_000_000u64); // 0.01 gwei
        let fv = c.face_value(&gas, &U256::MAX).expect("enough float");
        assert_eq!(fv, U256::from(1_200_000u64 * 10_000_000 * 100));
    }

    #[test]
    fn face_value_falls_back_to_ev_times_100() {
        let c = cfg(DEFAULT_TICKET_EV);
        // gas price 0: txCost × 100 = 0 < EV → EV × 100; the tx-cost floor is met (fv ≥ 0)
        let fv = c.face_value(&U256::ZERO, &U256::MAX).expect("enough float");
        assert_eq!(fv, U256::from(DEFAULT_TICKET_EV * 100));
    }

    #[test]
    fn face_value_is_capped_by_max_float_and_max_face_value() {
        let mut c = cfg(1000);
        let fv = c
            .face_value(&U256::ZERO, &U256::from(5000u64))
            .expect("above EV");
        assert_eq!(fv, U256::from(5000u64));
        c.max_face_value = U256::from(2000u64);
        let fv = c
            .face_value(&U256::ZERO, &U256::from(5000u64))
            .expect("above EV");
        assert_eq!(fv, U256::from(2000u64));
        assert_eq!(
            c.face_value(&U256::ZERO, &U256::from(999u64)),
            Err(PmError::InsufficientSenderReserve)
        );
    }

    #[test]
    fn face_value_below_both_tx_costs_is_refused() {
        let c = cfg(1);
        // txCost = 1.2M × 10 gwei; avg txCost = 1.2M × 3 gwei; float in between both? no: below both
        let gas = U256::from(10_000_000_000u64);
        let float = U256::from(1_200_000u64 * 3_000_000_000 - 1);
        assert_eq!(
            c.face_value(&gas, &float),
            Err(PmError::InsufficientSenderReserve)
        );
        // at the avg-gas tx cost it is accepted even though below the current tx cost
        let float = U256::from(1_200_000u64 * 3_000_000_000);
        assert_eq!(c.face_value(&gas, &float), Ok(float));
    }

    #[test]
    fn win_prob_formula() {
        let c = cfg(1000);
        assert_eq!(c.win_prob(&U256::ZERO), U256::ZERO);
        assert_eq!(c.win_prob(&U256::from(1000u64)), MAX_WIN_PROB);
        let fv = U256::from(100_000u64);
        let (q, r) = MAX_WIN_PROB.div_rem(fv);
        assert!(!r.is_zero());
        assert_eq!(
            c.win_prob(&fv),
            U256::from(1000u64) * (q + U256::from(1u64))
        );
        // 2^256−1 = 3 × 5 × 17 × 257 × …: 255 divides it exactly, no rounding up
        let fv = U256::from(255u64);
        let c = cfg(5);
        assert_eq!(c.win_prob(&fv), U256::from(5u64) * (MAX_WIN_PROB / fv));
    }

    #[test]
    fn wire_round_trip_normalises_leading_zeros() {
        let p = TicketParams {
            recipient: Address([9u8; 20]),
            face_value: U256::from(0x0100u64),
            win_prob: U256::ZERO,
            recipient_rand_hash: [3u8; 32],
            seed: U256::from(0x00ffu64),
            expiration_block: 70_000,
            price_per_pixel: Price::new(1, 1).expect("valid"),
            expiration_params: TicketExpirationParams::default(),
        };
        let w = p.to_wire(false);
        assert_eq!(w.face_value, vec![1, 0]);
        assert!(w.win_prob.is_empty());
        assert_eq!(w.seed, vec![0xff]);
        assert!(w.expiration_params.is_none());
        let mut padded = w.clone();
        padded.seed = vec![0, 0, 0xff];
        let back = TicketParams::from_wire(&padded, p.price_per_pixel.clone()).expect("valid");
        assert_eq!(back, p);
        assert_eq!(back.to_wire(false), w);
    }
}
