//! The registry of live transcode sessions, keyed by auth-token session id, and the
//! capacity check (GL core/orchestrator.go `CheckCapacity`, `endTranscodingSession`).

use std::collections::HashSet;
use std::sync::Mutex;

use crate::error::OrchestratorError;

/// go-livepeer's `-maxSessions` default.
pub const DEFAULT_MAX_SESSIONS: usize = 10;

/// Live sessions, at most `max_sessions` of them. Shared by GetOrchestrator, `/segment`
/// and EndTranscodingSession.
#[derive(Debug)]
pub struct SessionRegistry {
    max_sessions: usize,
    sessions: Mutex<HashSet<String>>,
}

impl SessionRegistry {
    /// An empty registry with room for `max_sessions`.
    pub fn new(max_sessions: usize) -> SessionRegistry {
        SessionRegistry {
            max_sessions,
            sessions: Mutex::new(HashSet::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        // The set stays consistent even if a holder panicked.
        self.sessions.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The configured limit.
    pub fn max_sessions(&self) -> usize {
        self.max_sessions
    }

    /// Live sessions now.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no session is live.
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    /// Whether `session_id` is live.
    pub fn contains(&self, session_id: &str) -> bool {
        self.lock().contains(session_id)
    }

    /// `CheckCapacity(session_id)`: a live session always passes; a new one (or `""`, as
    /// GetOrchestrator asks) fails with `OrchestratorCapped` when every slot is taken.
    pub fn check_capacity(&self, session_id: &str) -> Result<(), OrchestratorError> {
        let sessions = self.lock();
        if sessions.contains(session_id) || sessions.len() < self.max_sessions {
            Ok(())
        } else {
            Err(OrchestratorError::Capped)
        }
    }

    /// Checks capacity and registers `session_id` in one step; true when it is new.
    pub fn open(&self, session_id: &str) -> Result<bool, OrchestratorError> {
        let mut sessions = self.lock();
        if sessions.contains(session_id) {
            return Ok(false);
        }
        if sessions.len() >= self.max_sessions {
            return Err(OrchestratorError::Capped);
        }
        Ok(sessions.insert(session_id.to_string()))
    }

    /// Ends a session; true when it was live.
    pub fn end(&self, session_id: &str) -> bool {
        self.lock().remove(session_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capacity_counts_new_sessions_only() {
        let r = SessionRegistry::new(2);
        assert_eq!(r.open("a"), Ok(true));
        assert_eq!(r.open("a"), Ok(false));
        assert_eq!(r.open("b"), Ok(true));
        assert_eq!(r.len(), 2);
        assert_eq!(r.check_capacity(""), Err(OrchestratorError::Capped));
        assert_eq!(r.open("c"), Err(OrchestratorError::Capped));
        // A live session keeps working at capacity.
        assert_eq!(r.check_capacity("a"), Ok(()));
        assert!(r.end("a"));
        assert!(!r.end("a"));
        assert_eq!(r.check_capacity(""), Ok(()));
        assert_eq!(r.open("c"), Ok(true));
    }
}
