//! The record a redeemer needs for one winning ticket, serialisable for the bus.

use serde::{Deserialize, Serialize};

use crate::address::Address;
use crate::hexfmt;
use crate::num::U256;
use crate::price::Price;
use crate::ticket::{Ticket, TicketExpirationParams};

/// A winning ticket with its signature and revealed recipientRand: enough to call
/// `redeemWinningTicket(ticket, sig, recipientRand)` once `params_expiration_block` has passed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WinningTicket {
    /// Ticket recipient (the orchestrator).
    pub recipient: Address,
    /// Ticket sender (the broadcaster).
    pub sender: Address,
    /// Wei, decimal string.
    #[serde(with = "hexfmt::u256_dec")]
    pub face_value: U256,
    /// Numerator over 2^256−1, decimal string.
    #[serde(with = "hexfmt::u256_dec")]
    pub win_prob: U256,
    /// Sender nonce.
    pub sender_nonce: u32,
    /// `keccak256(pad32(recipient_rand))`.
    #[serde(with = "hexfmt::bytes32")]
    pub recipient_rand_hash: [u8; 32],
    /// Creation round (auxData).
    pub creation_round: i64,
    /// Creation round block hash (auxData).
    #[serde(with = "hexfmt::bytes32")]
    pub creation_round_block_hash: [u8; 32],
    /// The sender's 65-byte signature.
    #[serde(with = "hexfmt::bytes")]
    pub sig: Vec<u8>,
    /// The revealed recipientRand, decimal string.
    #[serde(with = "hexfmt::u256_dec")]
    pub recipient_rand: U256,
    /// L1 block at which the params expire; redeem only at or after it.
    pub params_expiration_block: u64,
    /// The ticket hash, for deduplication and `usedTickets` look-ups.
    #[serde(with = "hexfmt::bytes32")]
    pub ticket_hash: [u8; 32],
    /// The auth session the ticket paid for.
    pub session_id: String,
}

impl WinningTicket {
    /// The record for a winning `ticket`.
    pub fn new(ticket: &Ticket, sig: &[u8], recipient_rand: U256, session_id: &str) -> Self {
        WinningTicket {
            recipient: ticket.recipient,
            sender: ticket.sender,
            face_value: ticket.face_value,
            win_prob: ticket.win_prob,
            sender_nonce: ticket.sender_nonce,
            recipient_rand_hash: ticket.recipient_rand_hash,
            creation_round: ticket.expiration_params.creation_round,
            creation_round_block_hash: ticket.expiration_params.creation_round_block_hash,
            sig: sig.to_vec(),
            recipient_rand,
            params_expiration_block: ticket.params_expiration_block,
            ticket_hash: ticket.hash(),
            session_id: session_id.to_string(),
        }
    }

    /// The expiration params (auxData source).
    pub fn expiration_params(&self) -> TicketExpirationParams {
        TicketExpirationParams {
            creation_round: self.creation_round,
            creation_round_block_hash: self.creation_round_block_hash,
        }
    }

    /// The ticket again (the price is not kept: redemption does not need it).
    pub fn ticket(&self) -> Ticket {
        Ticket {
            recipient: self.recipient,
            sender: self.sender,
            face_value: self.face_value,
            win_prob: self.win_prob,
            sender_nonce: self.sender_nonce,
            recipient_rand_hash: self.recipient_rand_hash,
            expiration_params: self.expiration_params(),
            params_expiration_block: self.params_expiration_block,
            price_per_pixel: Price::zero(),
        }
    }

    /// The 64-byte auxData the contract takes (empty only for legacy zero params).
    pub fn aux_data(&self) -> Vec<u8> {
        self.expiration_params().aux_data()
    }
}
