//! The Livepeer orchestrator surface of Livefarm (livepeer-protocol.md §1, §3, §7): the
//! `net.Orchestrator` gRPC service (GetOrchestrator, Ping, EndTranscodingSession), auth
//! tokens, capabilities and their compatibility test, the live-session registry (the
//! conversions to and from the generated `net` types are `livefarm_proto::convert`,
//! re-exported here); and the orchestrator port itself: TLS (self-signed or
//! provided), `POST /segment` (§4.2) with payments, the result store and `GET /stream/...`,
//! transcoding through the worker pool, and winning tickets queued for the redeemer.

pub mod auth;
pub mod broadcaster;
pub mod capabilities;
pub use livefarm_proto::convert;
pub mod error;
pub mod http;
pub mod max_float;
mod metrics;
pub mod node;
pub mod segment;
pub mod server;
pub mod service;
pub mod sessions;
pub mod store;
pub mod tickets;
pub mod tls;
pub mod transcode;

pub use auth::{AuthTokens, AUTH_TOKEN_VALIDITY};
pub use convert::{profile_from_proto, FromProto, ToProto};
pub use error::OrchestratorError;
pub use http::SegmentState;
pub use livefarm_proto::livepeer::net;
pub use metrics::register as register_metrics;
pub use node::{NodeConfig, RunningNode};
pub use service::{OrchestratorConfig, OrchestratorService};
pub use sessions::{SessionRegistry, DEFAULT_MAX_SESSIONS};
pub use tickets::{BusTicketSink, MemoryTicketSink, WinningTicketSink, WINNING_TICKETS_STREAM};
pub use transcode::{PoolTranscoder, SegmentTranscoder, TranscodeRequest, TranscodedRendition};
