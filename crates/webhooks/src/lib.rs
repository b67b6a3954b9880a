//! `livefarm-webhooks`: Livepeer Studio-compatible webhooks (Studio §5).
//!
//! - **Routes' logic**: [`Webhooks`] does what `/api/webhook...` does (validation with clear
//!   errors via [`WebhookInput`], the SSRF check, the store calls, the JSON objects of
//!   [`webhook_json`] / [`webhook_log_json`]); the api's handlers only extract the tenant and
//!   map [`WebhookError::status`].
//! - **Events**: whoever emits one calls [`Store::enqueue_event`](livefarm_store::Store::enqueue_event)
//!   with a [`NewEvent`]; that persists the event and one delivery per subscribed webhook,
//!   idempotently on the event id (use [`event_id`] for ids that must survive a replay).
//! - **Delivery**: [`spawn_deliverer`] runs the loop that claims due deliveries (leased, so
//!   replicas never send the same attempt twice), signs ([`signature_header`]) and sends them
//!   (bodies as [`delivery_body`]), and retries as Studio does ([`WebhookConfig::backoff_ms`]).
//! - **SSRF guard**: [`check_target`] at create/replace, and the HTTP client's resolver at
//!   every attempt, refuse private and special addresses unless
//!   [`WebhookConfig::allow_private_targets`].
//!
//! Delivery is at least once per webhook: a receiver dedupes on the body's `id`, which is the
//! same on every retry and resend of an event.

mod body;
mod config;
mod deliverer;
mod error;
mod guard;
mod input;
mod metrics;
mod render;
mod sender;
mod service;
mod signature;

pub use body::{delivery_body, delivery_headers, EVENT_NAMES, USER_AGENT};
pub use config::{ConfigError, WebhookConfig};
pub use deliverer::{spawn_deliverer, DelivererHandle, DeliveryWaker};
pub use error::WebhookError;
pub use guard::{check_target, forbidden_kind, TargetError};
pub use input::WebhookInput;
pub use livefarm_store::NewEvent;
pub use render::{webhook_json, webhook_log_json};
pub use sender::{classify_status, Classified};
pub use service::Webhooks;
pub use signature::{sign, signature_header, verify, SignatureError, SIGNATURE_HEADER};

/// A deterministic event id from what identifies the event (e.g. the session id and the
/// event name): a replayed event gets the same id, and [`Store::enqueue_event`] ignores it.
///
/// [`Store::enqueue_event`]: livefarm_store::Store::enqueue_event
pub fn event_id(parts: &[&str]) -> String {
    livefarm_store::ids::derived_uuid(parts)
}
