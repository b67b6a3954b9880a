//! The deliverer: a tokio task that claims due deliveries from the store and sends them, at
//! most `max_in_flight` at once on this replica and `max_in_flight_per_webhook` per webhook
//! across replicas (the claim counts every live lease), each attempt bounded by `timeout_ms`.
//! A receiver that hangs therefore holds only its own webhook's slots; others go on.
//!
//! Every replica may run one; the store's leases make each attempt go out once. On shutdown
//! the deliverer stops claiming, lets in-flight attempts finish for `shutdown_grace_ms`, then
//! abandons the rest and releases their leases (if the process dies instead, the leases
//! expire after `lease_ms`): another deliverer retries them, nothing is lost.

use std::sync::Arc;
use std::time::Duration;

use livefarm_store::ids::{now_ms, uuid_v4};
use livefarm_store::{Attempt, AttemptOutcome, ClaimedDelivery, Store};
use tokio::sync::{watch, Notify, OwnedSemaphorePermit, Semaphore};
use tokio::task::{JoinHandle, JoinSet};

use crate::sender::{AttemptResult, Classified, Sender};
use crate::{WebhookConfig, WebhookError};

/// Tries to record an attempt before leaving it to the lease.
const RECORD_TRIES: u32 = 3;

/// Wakes a deliverer at once (after an event was queued), instead of at its next poll.
#[derive(Debug, Clone, Default)]
pub struct DeliveryWaker(Arc<Notify>);

impl DeliveryWaker {
    /// Makes the deliverer look for due deliveries now.
    pub fn wake(&self) {
        self.0.notify_one();
    }
}

/// A running deliverer. Dropping it aborts it at once (as a killed process would: its
/// in-flight attempts are left to their leases); [`DelivererHandle::shutdown`] stops it
/// gracefully.
#[derive(Debug)]
pub struct DelivererHandle {
    owner: String,
    waker: DeliveryWaker,
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<()>>,
}

impl DelivererHandle {
    /// The lease owner name this deliverer claims under.
    pub fn owner(&self) -> &str {
        &self.owner
    }

    /// A handle that wakes this deliverer (clone it into whatever queues events).
    pub fn waker(&self) -> DeliveryWaker {
        self.waker.clone()
    }

    /// Stops claiming, waits up to `shutdown_grace_ms` for in-flight attempts, abandons the
    /// rest and releases their leases.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for DelivererHandle {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// Starts a deliverer on `store` (needs a tokio runtime).
pub fn spawn_deliverer(
    store: Store,
    config: WebhookConfig,
) -> Result<DelivererHandle, WebhookError> {
    config.validate()?;
    crate::metrics::register();
    let sender = Sender::new(&config)?;
    let owner = format!("deliverer-{}", uuid_v4()?);
    let waker = DeliveryWaker::default();
    let (stop, stopped) = watch::channel(false);
    let worker = Worker {
        store,
        config,
        sender,
        owner: owner.clone(),
    };
    let task = tokio::spawn(worker.run(waker.clone(), stopped));
    Ok(DelivererHandle {
        owner,
        waker,
        stop,
        task: Some(task),
    })
}

#[derive(Clone)]
struct Worker {
    store: Store,
    config: WebhookConfig,
    sender: Sender,
    owner: String,
}

impl Worker {
    async fn run(self, waker: DeliveryWaker, mut stopped: watch::Receiver<bool>) {
        let slots = Arc::new(Semaphore::new(self.config.max_in_flight as usize));
        let mut in_flight = JoinSet::new();
        tracing::info!(owner = %self.owner, "webhook deliverer started");
        loop {
            if *stopped.borrow() {
                break;
            }
            while in_flight.try_join_next().is_some() {}
            let free = slots.available_permits();
            let mut full_batch = false;
            if free > 0 {
                let limit = u32::try_from(free).unwrap_or(u32::MAX);
                match self
                    .store
                    .claim_due(
                        now_ms(),
                        i64::try_from(self.config.lease_ms).unwrap_or(i64::MAX),
                        limit,
                        self.config.max_in_flight_per_webhook,
                        &self.owner,
                    )
                    .await
                {
                    Ok(batch) => {
                        full_batch = batch.len() == free;
                        for delivery in batch {
                            // only this loop takes permits, and it claimed no more than free
                            let Ok(permit) = Arc::clone(&slots).try_acquire_owned() else {
                                break;
                            };
                            let worker = self.clone();
                            in_flight.spawn(async move { worker.deliver(delivery, permit).await });
                        }
                    }
                    Err(error) => tracing::warn!(%error, "claiming webhook deliveries failed"),
                }
            }
            if full_batch && slots.available_permits() > 0 {
                // more may be due right now
                continue;
            }
            tokio::select! {
                _ = tokio::time::sleep(self.config.poll_interval()) => {}
                _ = waker.0.notified() => {}
                // a slot came free, or a webhook's in-flight count dropped: look again
                Some(_) = in_flight.join_next(), if !in_flight.is_empty() => {}
                changed = stopped.changed() => {
                    if changed.is_err() {
                        // the handle is gone without a shutdown: abort as a drop would
                        return;
                    }
                }
            }
        }
        let open = in_flight.len();
        let drained = tokio::time::timeout(self.config.shutdown_grace(), async {
            while in_flight.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            in_flight.abort_all();
            while in_flight.join_next().await.is_some() {}
            match self.store.release_claims(&self.owner).await {
                Ok(released) => tracing::info!(
                    released,
                    "webhook deliverer stopped; abandoned attempts are left to other deliverers"
                ),
                Err(error) => {
                    tracing::warn!(%error, "releasing webhook leases failed; they expire on their own")
                }
            }
        } else {
            tracing::info!(finished = open, "webhook deliverer stopped");
        }
    }

    /// One attempt of a claimed delivery, recorded with its outcome.
    async fn deliver(&self, delivery: ClaimedDelivery, _permit: OwnedSemaphorePermit) {
        let result = self
            .sender
            .attempt(&delivery.event, &delivery.webhook)
            .await;
        let outcome = self.outcome(&delivery, &result);
        crate::metrics::attempt(&outcome);
        tracing::debug!(
            webhook_id = %delivery.webhook.id,
            event_id = %delivery.event.id,
            attempt = delivery.attempts + 1,
            status = ?result.log.status_code,
            ?outcome,
            "webhook attempt"
        );
        let attempt = Attempt {
            log: result.log,
            outcome,
            failure: result.failure,
        };
        for tried in 1..=RECORD_TRIES {
            match self
                .store
                .record_attempt(&delivery.id, &self.owner, &attempt)
                .await
            {
                Ok(recorded) => {
                    if !recorded.delivery_updated {
                        tracing::warn!(
                            delivery_id = %delivery.id,
                            "webhook attempt outlived its lease; another deliverer owns the delivery"
                        );
                    }
                    return;
                }
                Err(error) if tried < RECORD_TRIES => {
                    tracing::warn!(%error, tried, "recording a webhook attempt failed; trying again");
                    tokio::time::sleep(Duration::from_millis(200 * u64::from(tried))).await;
                }
                Err(error) => {
                    tracing::error!(%error, delivery_id = %delivery.id,
                        "recording a webhook attempt failed; it will be retried when its lease ends");
                }
            }
        }
    }

    /// Studio's §5.5: retry 5xx, transport errors and timeouts with doubling backoff up to
    /// `max_retries`; anything else ends the delivery.
    fn outcome(&self, delivery: &ClaimedDelivery, result: &AttemptResult) -> AttemptOutcome {
        match result.classified {
            Classified::Delivered => AttemptOutcome::Delivered,
            Classified::Final => AttemptOutcome::Failed,
            Classified::Retryable => {
                // this attempt was number attempts + 1; retries used so far: attempts
                let retries_done = u32::try_from(delivery.attempts).unwrap_or(u32::MAX);
                if retries_done >= self.config.max_retries {
                    AttemptOutcome::Failed
                } else {
                    let delay = self.config.backoff_ms(retries_done + 1);
                    let delay = i64::try_from(delay).unwrap_or(i64::MAX);
                    AttemptOutcome::Retry {
                        at: now_ms().saturating_add(delay),
                    }
                }
            }
        }
    }
}
