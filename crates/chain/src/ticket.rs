//! Mapping `livefarm_pm` tickets onto the contract's `Ticket` struct (§9.1).

use alloy::primitives::{Address, Bytes, B256, U256};
use livefarm_pm::{Ticket, TicketExpirationParams, WinningTicket};

use crate::bindings::TicketBroker;

/// The on-chain ticket for a queued winning ticket. The auxData is livefarm_pm's: 64 bytes, or
/// empty for a zero creation round and hash, which the contract then refuses (§19.4).
pub fn onchain_ticket(w: &WinningTicket) -> TicketBroker::Ticket {
    let aux = TicketExpirationParams {
        creation_round: w.creation_round,
        creation_round_block_hash: w.creation_round_block_hash,
    }
    .aux_data();
    TicketBroker::Ticket {
        recipient: Address::from(w.recipient.0),
        sender: Address::from(w.sender.0),
        faceValue: w.face_value,
        winProb: w.win_prob,
        senderNonce: U256::from(w.sender_nonce),
        recipientRandHash: B256::from(w.recipient_rand_hash),
        auxData: Bytes::from(aux),
    }
}

/// The on-chain ticket for a `livefarm_pm` ticket.
pub fn onchain_ticket_from_pm(t: &Ticket) -> TicketBroker::Ticket {
    TicketBroker::Ticket {
        recipient: Address::from(t.recipient.0),
        sender: Address::from(t.sender.0),
        faceValue: t.face_value,
        winProb: t.win_prob,
        senderNonce: U256::from(t.sender_nonce),
        recipientRandHash: B256::from(t.recipient_rand_hash),
        auxData: Bytes::from(t.expiration_params.aux_data()),
    }
}

/// The recipientRand as the contract takes it.
pub(crate) fn recipient_rand(w: &WinningTicket) -> U256 {
    w.recipient_rand
}
