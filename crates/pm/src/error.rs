//! Errors of the payment crate. Where go-livepeer has a fixed text, the Display string is that
//! text byte for byte, because peers and operators match on it.

use crate::address::Address;

/// Every failure the payment code reports.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PmError {
    // --- receiving tickets (GL pm/validator.go, pm/recipient.go, pm/sendermonitor.go)
    /// The ticket names another recipient.
    #[error("invalid ticket recipient")]
    InvalidTicketRecipient,
    /// The ticket sender is the zero address.
    #[error("invalid ticket sender")]
    InvalidTicketSender,
    /// `keccak256(pad32(recipientRand))` does not match the ticket's recipientRandHash.
    #[error("invalid recipientRand for ticket recipientRandHash")]
    InvalidRecipientRand,
    /// The ticket signature does not recover to the sender (non-fatal).
    #[error("invalid ticket signature")]
    InvalidTicketSignature,
    /// The sender's deposit and reserve unlock this round or the next.
    #[error("deposit and reserve for sender {sender} is set to unlock soon")]
    SenderUnlockSoon { sender: Address },
    /// The chain state could not say anything about the sender.
    #[error("could not get sender info for {sender}: {reason}")]
    SenderInfoUnavailable { sender: Address, reason: String },
    /// The nonce was already used with this recipientRand (non-fatal).
    #[error("invalid ticket senderNonce: already seen sender={sender} nonce={nonce}")]
    NonceAlreadySeen { sender: Address, nonce: u32 },
    /// More than `maxSenderNonces` nonces for one recipientRand (non-fatal).
    #[error("invalid ticket senderNonce: too many values sender={sender} nonce={nonce}")]
    TooManyNonces { sender: Address, nonce: u32 },
    /// The params' expiration block is at or below the latest L1 block.
    #[error("TicketParams expired")]
    TicketParamsExpired,
    /// No face value satisfies EV, max float and the tx-cost floor.
    #[error("insufficient sender reserve")]
    InsufficientSenderReserve,
    /// The recipient is not an active orchestrator in the current round.
    #[error("orchestrator {orchestrator} is inactive in round {round}, cannot process payments")]
    OrchestratorInactive { orchestrator: Address, round: i64 },
    /// A payment carries ticket params but no sender.
    #[error("could not find sender for payment")]
    MissingSender,
    /// The payment's expected price is missing or malformed.
    #[error("invalid expected price sent with payment err={0:?}")]
    InvalidExpectedPrice(String),
    /// A price with `pixelsPerUnit == 0`.
    #[error("pixels per unit is 0")]
    ZeroPixelsPerUnit,
    /// A negative price.
    #[error("price is negative")]
    NegativePrice,
    /// A price whose reduced numerator or denominator does not fit an int64 `PriceInfo`.
    #[error("price {0} does not fit in PriceInfo")]
    PriceOverflow(String),
    /// A wire field that cannot be decoded.
    #[error("invalid {field}: {reason}")]
    InvalidField { field: &'static str, reason: String },

    // --- signatures (GL crypto/verify.go)
    /// A signature that is not 65 bytes long.
    #[error("invalid signature length {0}")]
    SignatureLength(usize),
    /// A signature whose V is not 27 or 28.
    #[error("invalid signature v value {0}")]
    SignatureV(u8),
    /// A signature with r or s out of range, including high s.
    #[error("invalid signature r or s value")]
    SignatureValues,
    /// libsecp256k1 could not recover a key.
    #[error("signature recovery failed")]
    RecoveryFailed,
    /// A secret key of zero or at least the curve order.
    #[error("invalid secret key")]
    InvalidSecretKey,

    // --- sending tickets (GL pm/sender.go)
    /// EV is not below the face value.
    #[error("ticket faceValue too low faceValue={face_value}")]
    FaceValueTooLow { face_value: String },
    /// EV above `-maxTicketEV`.
    #[error("ticket EV {ev} > max ticket EV {max}")]
    TicketEvTooHigh { ev: String, max: String },
    /// Our own deposit and reserve unlock soon.
    #[error("unable to validate sender: deposit and reserve is set to unlock soon")]
    OwnDepositUnlockSoon,
    /// Our own reserve is zero.
    #[error("no sender reserve")]
    NoSenderReserve,
    /// Our own deposit is zero.
    #[error("no sender deposit")]
    NoSenderDeposit,
    /// The batch's EV is above `-maxTotalEV`.
    #[error("total ticket EV {total} for {num_tickets} tickets > max total ticket EV {max}")]
    TotalEvTooHigh {
        total: String,
        num_tickets: usize,
        max: String,
    },
    /// The face value is above `deposit / depositMultiplier`.
    #[error("ticket faceValue {face_value} > max faceValue {max}")]
    FaceValueTooHigh { face_value: String, max: String },
    /// No PM session with that id.
    #[error("error loading session: {0}")]
    UnknownSession(String),

    // --- plumbing
    /// The operating system's random source failed.
    #[error("random source unavailable: {0}")]
    Randomness(String),
    /// A hex string that does not decode.
    #[error("invalid hex: {0}")]
    InvalidHex(String),
}

impl PmError {
    /// Whether go-livepeer treats this error as fatal while receiving a payment: a fatal error
    /// stops processing at once; a non-fatal one stops crediting later tickets but lets them
    /// be checked (and winners queued).
    pub fn is_fatal(&self) -> bool {
        !matches!(
            self,
            PmError::InvalidTicketSignature
                | PmError::NonceAlreadySeen { .. }
                | PmError::TooManyNonces { .. }
                | PmError::TicketParamsExpired
        )
    }
}
