//! The Livepeer orchestrator surface of Livefarm (livepeer-protocol.md §1, §3, §7): the
//! `net.Orchestrator` gRPC service (GetOrchestrator, Ping, EndTranscodingSession), auth
//! tokens, capabilities and their compatibility test, the live-session registry, and the
//! conversions between `livefarm_pm`'s payment structs, `livefarm_profiles`' profiles and
//! the generated `net` proto types. The TLS port and `/segment` build on this.

pub mod auth;
pub mod capabilities;
pub mod convert;
pub mod error;
pub mod service;
pub mod sessions;

pub use auth::{AuthTokens, AUTH_TOKEN_VALIDITY};
pub use convert::{profile_from_proto, FromProto, ToProto};
pub use error::OrchestratorError;
pub use livefarm_proto::livepeer::net;
pub use service::{OrchestratorConfig, OrchestratorService};
pub use sessions::{SessionRegistry, DEFAULT_MAX_SESSIONS};
