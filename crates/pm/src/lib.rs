//! Livepeer probabilistic micropayments (PM), wire-compatible with go-livepeer and the
//! TicketBroker contract: ticket hashing and EIP-191 signatures on libsecp256k1, the winning
//! rule, recipientRand derivation, TicketParams generation, receiving tickets and payments
//! with replay protection and per-session balances (orchestrator side), sizing and signing
//! ticket batches (broadcaster side), the winning-ticket record for the redeemer, and the
//! `livefarm bench tickets` benchmark. No network code lives here.

pub mod address;
pub mod balance;
pub mod bench;
pub mod chain;
pub mod error;
pub mod hash;
pub mod hexfmt;
pub mod num;
pub mod params;
pub mod price;
pub mod recipient;
pub mod sender;
pub mod sig;
pub mod ticket;
pub mod winning;
pub mod wire;

pub use address::Address;
pub use balance::{BalanceUpdate, Balances, UpdateStatus};
pub use chain::{ChainState, InMemoryChain, ReserveInfo, SenderInfo};
pub use error::PmError;
pub use num::{ticket_ev, MAX_WIN_PROB, U256};
pub use params::{RecipientConfig, TicketParams};
pub use price::Price;
pub use recipient::{PaymentOutcome, ReceiveOutcome, Recipient, MAX_SENDER_NONCES};
pub use sender::{estimate_fee, gen_payment, OutputProfile, Sender, SenderConfig, TicketBatch};
pub use sig::Signer;
pub use ticket::{Ticket, TicketExpirationParams};
pub use winning::WinningTicket;
