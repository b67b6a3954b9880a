//! The readiness flag behind `/readyz`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use crate::shutdown::Shutdown;

#[derive(Debug, Default)]
struct Inner {
    ready: AtomicBool,
    followed: Mutex<Vec<Shutdown>>,
}

/// A cloneable readiness flag, not ready until [`Readiness::set_ready`]`(true)`.
#[derive(Debug, Clone, Default)]
pub struct Readiness {
    inner: Arc<Inner>,
}

impl Readiness {
    /// A flag that is not ready yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Marks the process ready (dependencies reachable, listeners up) or not.
    pub fn set_ready(&self, ready: bool) {
        self.inner.ready.store(ready, Ordering::SeqCst);
    }

    /// Ready: set ready, and no followed shutdown has fired.
    pub fn is_ready(&self) -> bool {
        self.inner.ready.load(Ordering::SeqCst)
            && !self
                .inner
                .followed
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .iter()
                .any(Shutdown::is_triggered)
    }

    /// Reports not ready from the moment `shutdown` fires, whatever `set_ready` says after.
    ///
    /// Checked on every read, so the flip needs no task and cannot lag the trigger.
    pub fn follow_shutdown(&self, shutdown: &Shutdown) {
        self.inner
            .followed
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(shutdown.clone());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_not_ready_and_follows_set_ready() {
        let readiness = Readiness::new();
        assert!(!readiness.is_ready());
        let clone = readiness.clone();
        clone.set_ready(true);
        assert!(readiness.is_ready());
        readiness.set_ready(false);
        assert!(!clone.is_ready());
    }

    #[test]
    fn shutdown_turns_readiness_off_for_good() {
        let readiness = Readiness::new();
        let shutdown = Shutdown::new();
        readiness.follow_shutdown(&shutdown);
        readiness.set_ready(true);
        assert!(readiness.is_ready());
        shutdown.clone().trigger();
        assert!(!readiness.is_ready());
        readiness.set_ready(true);
        assert!(!readiness.is_ready(), "no way back after shutdown");
    }
}
