//! The ticket, its hash, the winning rule and recipientRandHash (§9.1–§9.4, §19.4).

use num_rational::BigRational;
use serde::{Deserialize, Serialize};

use crate::address::Address;
use crate::error::PmError;
use crate::hash::{keccak256, keccak256_concat};
use crate::hexfmt;
use crate::num::{be32, ticket_ev, U256};
use crate::price::Price;
use crate::sig::verify_personal;
use crate::wire::TicketExpirationParamsMsg;

/// The round a ticket was created in and that round's block hash, which the contract checks
/// (`auxData`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TicketExpirationParams {
    /// `lastInitializedRound` when O made the params.
    pub creation_round: i64,
    /// `blockHashForRound(creation_round)`.
    #[serde(with = "hexfmt::bytes32")]
    pub creation_round_block_hash: [u8; 32],
}

impl TicketExpirationParams {
    /// Whether both fields are zero, the legacy case hashed with empty auxData.
    pub fn is_zero(&self) -> bool {
        self.creation_round == 0 && self.creation_round_block_hash == [0u8; 32]
    }

    /// `uint256_be(creationRound) || blockHash` (64 bytes), or empty when both are zero:
    /// the rule go-livepeer applies and the §17 vectors need (§19.4).
    pub fn aux_data(&self) -> Vec<u8> {
        if self.is_zero() {
            return Vec::new();
        }
        let mut out = Vec::with_capacity(64);
        // Go takes big.Int.Bytes() of an int64, i.e. the magnitude.
        out.extend_from_slice(&be32(&U256::from(self.creation_round.unsigned_abs())));
        out.extend_from_slice(&self.creation_round_block_hash);
        out
    }

    /// Decodes the wire message; a missing message reads as zero. The hash is read like Go's
    /// `BytesToHash` (last 32 bytes, left-padded).
    pub fn from_wire(msg: Option<&TicketExpirationParamsMsg>) -> TicketExpirationParams {
        match msg {
            None => TicketExpirationParams::default(),
            Some(m) => TicketExpirationParams {
                creation_round: m.creation_round,
                creation_round_block_hash: bytes_to_hash(&m.creation_round_block_hash),
            },
        }
    }

    /// Encodes the wire message.
    pub fn to_wire(&self) -> TicketExpirationParamsMsg {
        TicketExpirationParamsMsg {
            creation_round: self.creation_round,
            creation_round_block_hash: self.creation_round_block_hash.to_vec(),
        }
    }
}

/// Go `common.BytesToHash`: the last 32 bytes, left-padded with zeros.
pub fn bytes_to_hash(b: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    let take = b.len().min(32);
    out[32 - take..].copy_from_slice(&b[b.len() - take..]);
    out
}

/// A probabilistic micropayment ticket (GL pm/ticket.go `Ticket`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ticket {
    /// The orchestrator's ETH address.
    pub recipient: Address,
    /// The broadcaster's ETH address.
    pub sender: Address,
    /// Wei paid if the ticket wins.
    pub face_value: U256,
    /// Numerator over `2^256 - 1`.
    pub win_prob: U256,
    /// Unique per recipientRand; a uint32 on the wire.
    pub sender_nonce: u32,
    /// `keccak256(pad32(recipientRand))`.
    pub recipient_rand_hash: [u8; 32],
    /// Hashed as auxData.
    pub expiration_params: TicketExpirationParams,
    /// Not hashed: the L1 block at which the params expire.
    pub params_expiration_block: u64,
    /// Not hashed: the price the recipientRand was derived with.
    pub price_per_pixel: Price,
}

impl Ticket {
    /// The `abi.encodePacked` layout the contract hashes:
    /// `recipient || sender || faceValue || winProb || senderNonce || recipientRandHash || auxData`.
    pub fn flatten(&self) -> Vec<u8> {
        let aux = self.expiration_params.aux_data();
        let mut out = Vec::with_capacity(20 + 20 + 32 * 4 + aux.len());
        out.extend_from_slice(&self.recipient.0);
        out.extend_from_slice(&self.sender.0);
        out.extend_from_slice(&be32(&self.face_value));
        out.extend_from_slice(&be32(&self.win_prob));
        out.extend_from_slice(&be32(&U256::from(self.sender_nonce)));
        out.extend_from_slice(&self.recipient_rand_hash);
        out.extend_from_slice(&aux);
        out
    }

    /// `keccak256(flatten())`, the hash the sender signs and the contract records.
    pub fn hash(&self) -> [u8; 32] {
        keccak256(&self.flatten())
    }

    /// Exact EV: `faceValue × winProb / (2^256 − 1)`.
    pub fn ev(&self) -> BigRational {
        ticket_ev(&self.face_value, &self.win_prob)
    }

    /// Whether `sig` is a valid `personal_sign(hash())` by the sender.
    pub fn verify_sig(&self, sig: &[u8]) -> bool {
        verify_personal(&self.sender, &self.hash(), sig)
    }

    /// Whether the ticket wins with this signature and recipientRand (§9.3).
    pub fn is_winning(&self, sig: &[u8], recipient_rand: &U256) -> bool {
        is_winning_ticket(sig, recipient_rand, &self.win_prob)
    }

    /// Basic validity as go-livepeer's validator checks it, in its order (§9.6 step 2).
    pub fn validate(
        &self,
        recipient: &Address,
        sig: &[u8],
        recipient_rand: &U256,
    ) -> Result<(), PmError> {
        if self.recipient != *recipient {
            return Err(PmError::InvalidTicketRecipient);
        }
        if self.sender.is_zero() {
            return Err(PmError::InvalidTicketSender);
        }
        if recipient_rand_hash(recipient_rand) != self.recipient_rand_hash {
            return Err(PmError::InvalidRecipientRand);
        }
        if !self.verify_sig(sig) {
            return Err(PmError::InvalidTicketSignature);
        }
        Ok(())
    }
}

/// `uint256(keccak256(sig || uint256_be(recipientRand))) < winProb`.
pub fn is_winning_ticket(sig: &[u8], recipient_rand: &U256, win_prob: &U256) -> bool {
    let h = keccak256_concat(&[sig, &be32(recipient_rand)]);
    U256::from_be_bytes(h) < *win_prob
}

/// `keccak256(uint256_be(recipientRand))`.
pub fn recipient_rand_hash(recipient_rand: &U256) -> [u8; 32] {
    keccak256(&be32(recipient_rand))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hexfmt::{decode_array, encode};

    fn zero_ticket() -> Ticket {
        Ticket {
            recipient: Address::ZERO,
            sender: Address::ZERO,
            face_value: U256::ZERO,
            win_prob: U256::ZERO,
            sender_nonce: 0,
            recipient_rand_hash: [0u8; 32],
            expiration_params: TicketExpirationParams::default(),
            params_expiration_block: 0,
            price_per_pixel: Price::zero(),
        }
    }

    const RAND_HASH: &str = "41b1a0649752af1b28b3dc29a1556eee781e4a4c3a1f7f53f90fa834de098c4d";

    // §17: the five vectors of GL pm/ticket_test.go.
    #[test]
    fn vector_sender_nonce_1() {
        let t = Ticket {
            sender_nonce: 1,
            ..zero_ticket()
        };
        assert_eq!(
            encode(&t.hash()),
            "ce0918ba94518293e9712effbe5fca4f1f431089833a5b8c257cb1e024595f68"
        );
    }

    #[test]
    fn vector_face_value_and_win_prob() {
        let t = Ticket {
            face_value: U256::from(1u64),
            win_prob: U256::from(500u64),
            ..zero_ticket()
        };
        assert_eq!(
            encode(&t.hash()),
            "87ef13f2d37e4d5352a01d3c77b8179d80e0887f1953bfabfd0bfd7b0f689ddd"
        );
    }

    #[test]
    fn vector_recipient_rand_hash() {
        let t = Ticket {
            recipient_rand_hash: decode_array::<32>(RAND_HASH).expect("hex"),
            ..zero_ticket()
        };
        assert_eq!(
            encode(&t.hash()),
            "be5eaf9a49a39540b9bb02f1a21904f61324a29819e2c032824bfaa10c100b17"
        );
    }

    #[test]
    fn vector_aux_data() {
        let t = Ticket {
            expiration_params: TicketExpirationParams {
                creation_round: 10,
                creation_round_block_hash: decode_array::<32>(RAND_HASH).expect("hex"),
            },
            ..zero_ticket()
        };
        assert_eq!(t.expiration_params.aux_data().len(), 64);
        assert_eq!(
            encode(&t.hash()),
            "e502907c16036ab3d11b78c5a2e93c20f3d6415c67f91de4ed01348182b3b2e2"
        );
    }

    #[test]
    fn vector_recipient() {
        let t = Ticket {
            recipient: "0x73AEd7b5dEb30222fa896f399d46cC99c7BEe57F"
                .parse()
                .expect("address"),
            ..zero_ticket()
        };
        assert_eq!(
            encode(&t.hash()),
            "81e353ae39046e2b77b9f996abbaeed527fda559b61ef90f299c4499dd508ccc"
        );
    }

    #[test]
    fn always_appending_aux_data_would_change_the_hash() {
        // §19.4: 64 zero bytes of auxData give 4f8b1b95… for the nonce-1 vector instead.
        let t = Ticket {
            sender_nonce: 1,
            ..zero_ticket()
        };
        let mut flat = t.flatten();
        assert_eq!(flat.len(), 20 + 20 + 32 * 4);
        flat.extend_from_slice(&[0u8; 64]);
        assert!(encode(&keccak256(&flat)).starts_with("4f8b1b95"));
    }

    #[test]
    fn only_both_zero_gives_empty_aux_data() {
        let round_only = TicketExpirationParams {
            creation_round: 1,
            ..Default::default()
        };
        assert_eq!(round_only.aux_data().len(), 64);
        let hash_only = TicketExpirationParams {
            creation_round: 0,
            creation_round_block_hash: [1u8; 32],
        };
        assert_eq!(hash_only.aux_data().len(), 64);
    }

    #[test]
    fn winning_rule_compares_against_win_prob() {
        let sig = [1u8; 65];
        let rand = U256::from(42u64);
        let h = U256::from_be_bytes(keccak256_concat(&[&sig, &be32(&rand)]));
        assert!(is_winning_ticket(&sig, &rand, &(h + U256::from(1u64))));
        assert!(!is_winning_ticket(&sig, &rand, &h));
        assert!(!is_winning_ticket(&sig, &rand, &U256::ZERO));
    }

    #[test]
    fn recipient_rand_hash_pads_to_32_bytes() {
        let mut padded = [0u8; 32];
        padded[31] = 5;
        assert_eq!(recipient_rand_hash(&U256::from(5u64)), keccak256(&padded));
    }
}
