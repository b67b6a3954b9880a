//! Plain structs mirroring the `net/lp_rpc.proto` payment messages (§1.2), field for field.
//! Integers are bytes in minimal big-endian form, as go-livepeer writes them; the proto crate
//! converts these to and from prost types.

/// `net.PriceInfo`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PriceInfoMsg {
    /// 1: wei per unit.
    pub price_per_unit: i64,
    /// 2: pixels per unit.
    pub pixels_per_unit: i64,
    /// 3: set only for per-capability prices.
    pub capability: u32,
    /// 4: model id or BYOC capability name.
    pub constraint: String,
}

/// `net.TicketExpirationParams`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TicketExpirationParamsMsg {
    /// 1
    pub creation_round: i64,
    /// 2: 32 bytes.
    pub creation_round_block_hash: Vec<u8>,
}

/// `net.TicketParams`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TicketParamsMsg {
    /// 1: 20-byte address.
    pub recipient: Vec<u8>,
    /// 2: minimal big-endian.
    pub face_value: Vec<u8>,
    /// 3: minimal big-endian.
    pub win_prob: Vec<u8>,
    /// 4: 32 bytes.
    pub recipient_rand_hash: Vec<u8>,
    /// 5: minimal big-endian.
    pub seed: Vec<u8>,
    /// 6: minimal big-endian L1 block number.
    pub expiration_block: Vec<u8>,
    /// 7: set by O in OrchestratorInfo; left unset by B inside a Payment.
    pub expiration_params: Option<TicketExpirationParamsMsg>,
}

/// `net.TicketSenderParams`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TicketSenderParamsMsg {
    /// 1
    pub sender_nonce: u32,
    /// 2: 65 bytes.
    pub sig: Vec<u8>,
}

/// `net.Payment`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PaymentMsg {
    /// 1: O's params echoed by B (without field 7).
    pub ticket_params: Option<TicketParamsMsg>,
    /// 2: 20 bytes.
    pub sender: Vec<u8>,
    /// 3: the expiration params O reads.
    pub expiration_params: Option<TicketExpirationParamsMsg>,
    /// 4: one entry per ticket.
    pub ticket_sender_params: Vec<TicketSenderParamsMsg>,
    /// 5: O's last advertised price.
    pub expected_price: Option<PriceInfoMsg>,
}
