//! Graceful shutdown: a shared trigger, SIGTERM/SIGINT handling and a bounded drain.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::error::{RuntimeError, EXIT_SECOND_SIGNAL};

/// A cloneable shutdown trigger; every clone sees the same state.
#[derive(Debug, Clone)]
pub struct Shutdown {
    tx: Arc<watch::Sender<bool>>,
}

impl Default for Shutdown {
    fn default() -> Self {
        Self::new()
    }
}

impl Shutdown {
    /// A trigger that has not fired.
    pub fn new() -> Self {
        Self {
            tx: Arc::new(watch::Sender::new(false)),
        }
    }

    /// Fires the trigger; returns `true` for the call that fired it first.
    pub fn trigger(&self) -> bool {
        self.tx
            .send_if_modified(|fired| !std::mem::replace(fired, true))
    }

    /// Whether the trigger has fired.
    pub fn is_triggered(&self) -> bool {
        *self.tx.borrow()
    }

    /// Completes once the trigger has fired (at once if it already has).
    pub async fn triggered(&self) {
        let mut rx = self.tx.subscribe();
        // the sender lives in `self`, so the channel cannot close while we wait
        let _ = rx.wait_for(|fired| *fired).await;
    }
}

/// What a termination signal does, by how many have arrived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignalAction {
    /// Stop accepting work and drain.
    Graceful,
    /// Exit now with [`EXIT_SECOND_SIGNAL`].
    Exit,
}

/// The policy: the first signal drains, any later one exits.
pub fn signal_action(signals_seen: u32) -> SignalAction {
    if signals_seen <= 1 {
        SignalAction::Graceful
    } else {
        SignalAction::Exit
    }
}

/// Handles SIGTERM and SIGINT on a tokio task: the first fires `shutdown`, a second exits the
/// process at once with code 130. Must be called inside a tokio runtime.
pub fn install_signal_handlers(shutdown: Shutdown) -> Result<JoinHandle<()>, RuntimeError> {
    use tokio::signal::unix::{signal, SignalKind};

    // register before spawning so a failure reaches the caller and no early signal is missed
    let mut term = signal(SignalKind::terminate()).map_err(RuntimeError::Signal)?;
    let mut int = signal(SignalKind::interrupt()).map_err(RuntimeError::Signal)?;
    Ok(tokio::spawn(async move {
        let mut seen = 0u32;
        loop {
            let name = tokio::select! {
                Some(()) = term.recv() => "SIGTERM",
                Some(()) = int.recv() => "SIGINT",
                else => return,
            };
            seen += 1;
            match signal_action(seen) {
                SignalAction::Graceful => {
                    tracing::info!(signal = name, "shutdown requested, draining");
                    shutdown.trigger();
                }
                SignalAction::Exit => {
                    tracing::warn!(signal = name, "second signal, exiting now");
                    std::process::exit(EXIT_SECOND_SIGNAL);
                }
            }
        }
    }))
}

/// How a bounded drain ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DrainOutcome<T> {
    /// The work finished within the grace period, with this output.
    Drained(T),
    /// The grace period ran out; the work was dropped unfinished.
    TimedOut,
}

impl<T> DrainOutcome<T> {
    /// Whether the drain finished in time.
    pub fn is_drained(&self) -> bool {
        matches!(self, Self::Drained(_))
    }
}

/// Runs `fut` (the drain of in-flight work) for at most `grace`.
///
/// Keep `grace` shorter than the pod's `terminationGracePeriodSeconds` so the drain ends before
/// the kubelet's SIGKILL.
pub async fn drain_with_deadline<F: Future>(fut: F, grace: Duration) -> DrainOutcome<F::Output> {
    match tokio::time::timeout(grace, fut).await {
        Ok(output) => DrainOutcome::Drained(output),
        Err(_) => {
            tracing::warn!(
                grace_ms = grace.as_millis() as u64,
                "drain deadline passed, dropping in-flight work"
            );
            DrainOutcome::TimedOut
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_signal_drains_later_ones_exit() {
        assert_eq!(signal_action(1), SignalAction::Graceful);
        assert_eq!(signal_action(2), SignalAction::Exit);
        assert_eq!(signal_action(7), SignalAction::Exit);
    }

    #[test]
    fn trigger_is_shared_and_fires_once() {
        let a = Shutdown::new();
        let b = a.clone();
        assert!(!b.is_triggered());
        assert!(a.trigger());
        assert!(!b.trigger(), "second trigger reports it was already fired");
        assert!(a.is_triggered() && b.is_triggered());
        assert!(
            !Shutdown::new().is_triggered(),
            "a new trigger is independent"
        );
    }

    #[tokio::test]
    async fn triggered_wakes_waiters() {
        let shutdown = Shutdown::new();
        let waiter = tokio::spawn({
            let shutdown = shutdown.clone();
            async move { shutdown.triggered().await }
        });
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished());
        shutdown.trigger();
        tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .expect("waiter woke")
            .expect("waiter task");
        // already fired: completes at once
        tokio::time::timeout(Duration::from_secs(1), shutdown.triggered())
            .await
            .expect("immediate");
    }

    #[tokio::test]
    async fn drain_reports_completion_and_timeout() {
        let quick = drain_with_deadline(async { 5 }, Duration::from_secs(1)).await;
        assert_eq!(quick, DrainOutcome::Drained(5));
        let slow = drain_with_deadline(
            tokio::time::sleep(Duration::from_secs(60)),
            Duration::from_millis(50),
        )
        .await;
        assert_eq!(slow, DrainOutcome::TimedOut);
        assert!(!slow.is_drained());
    }
}
