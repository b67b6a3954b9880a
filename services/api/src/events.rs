//! Where the lifecycle's events go in production: the webhook delivery queue in the store
//! (idempotent on the event id, so an event emitted twice is delivered once), then a wake-up
//! for this replica's deliverer so the first attempt does not wait for its next poll.

use livefarm_store::{NewEvent, Store};
use livefarm_webhooks::DeliveryWaker;

use crate::lifecycle::{EventSink, LifecycleEvent, SinkFuture};

/// Enqueues lifecycle events for webhook delivery.
#[derive(Debug, Clone)]
pub struct WebhookSink {
    store: Store,
    waker: DeliveryWaker,
}

impl WebhookSink {
    pub fn new(store: Store, waker: DeliveryWaker) -> Self {
        WebhookSink { store, waker }
    }
}

impl EventSink for WebhookSink {
    fn emit<'a>(&'a self, event: &'a LifecycleEvent) -> SinkFuture<'a> {
        Box::pin(async move {
            let new = NewEvent {
                id: event.id.clone(),
                tenant_id: event.tenant_id.clone(),
                event: event.event,
                created_at: event.created_at,
                stream: event.stream.clone(),
                payload: event.payload.clone(),
            };
            let deliveries = self
                .store
                .enqueue_event(&new)
                .await
                .map_err(|e| e.to_string())?;
            if deliveries > 0 {
                self.waker.wake();
            }
            Ok(())
        })
    }
}
