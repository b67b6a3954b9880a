//! The registry of live transcode sessions, keyed by auth-token session id, and the
//! capacity check (GL core/orchestrator.go `CheckCapacity`, `endTranscodingSession`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::error::OrchestratorError;

/// go-livepeer's `-maxSessions` default.
pub const DEFAULT_MAX_SESSIONS: usize = 10;

/// Segments of one session that may wait behind the one being transcoded (go-livepeer's
/// segment channel buffer); one more is `OrchestratorBusy`.
pub const SEGMENT_QUEUE: usize = 4;

/// A session ends after this long without a segment (`transcodeLoopTimeout`).
pub const SESSION_IDLE_TIMEOUT: Duration = Duration::from_secs(70);

#[derive(Debug)]
struct SessionState {
    last_active: Instant,
    in_flight: usize,
}

type Sessions = Mutex<HashMap<String, SessionState>>;

/// Live sessions, at most `max_sessions` of them. Shared by GetOrchestrator, `/segment`
/// and EndTranscodingSession.
#[derive(Debug)]
pub struct SessionRegistry {
    max_sessions: usize,
    sessions: Arc<Sessions>,
}

fn lock(sessions: &Sessions) -> std::sync::MutexGuard<'_, HashMap<String, SessionState>> {
    // The map stays consistent even if a holder panicked.
    sessions.lock().unwrap_or_else(|e| e.into_inner())
}

/// One segment in flight in a session; dropping it frees the slot.
#[derive(Debug)]
pub struct SegmentSlot {
    sessions: Arc<Sessions>,
    session_id: String,
}

impl Drop for SegmentSlot {
    fn drop(&mut self) {
        if let Some(state) = lock(&self.sessions).get_mut(&self.session_id) {
            state.in_flight = state.in_flight.saturating_sub(1);
            state.last_active = Instant::now();
        }
    }
}

impl SessionRegistry {
    /// An empty registry with room for `max_sessions`.
    pub fn new(max_sessions: usize) -> SessionRegistry {
        SessionRegistry {
            max_sessions,
            sessions: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, SessionState>> {
        lock(&self.sessions)
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
        self.lock().contains_key(session_id)
    }

    /// `CheckCapacity(session_id)`: a live session always passes; a new one (or `""`, as
    /// GetOrchestrator asks) fails with `OrchestratorCapped` when every slot is taken.
    pub fn check_capacity(&self, session_id: &str) -> Result<(), OrchestratorError> {
        let sessions = self.lock();
        if sessions.contains_key(session_id) || sessions.len() < self.max_sessions {
            Ok(())
        } else {
            Err(OrchestratorError::Capped)
        }
    }

    /// Checks capacity and registers `session_id` in one step; true when it is new.
    pub fn open(&self, session_id: &str) -> Result<bool, OrchestratorError> {
        let mut sessions = self.lock();
        if let Some(state) = sessions.get_mut(session_id) {
            state.last_active = Instant::now();
            return Ok(false);
        }
        if sessions.len() >= self.max_sessions {
            return Err(OrchestratorError::Capped);
        }
        sessions.insert(
            session_id.to_string(),
            SessionState {
                last_active: Instant::now(),
                in_flight: 0,
            },
        );
        Ok(true)
    }

    /// Takes a transcode slot in a live session: `OrchestratorBusy` when the session already
    /// has one segment transcoding and [`SEGMENT_QUEUE`] waiting.
    pub fn begin_segment(&self, session_id: &str) -> Result<SegmentSlot, OrchestratorError> {
        let mut sessions = self.lock();
        let state = sessions
            .get_mut(session_id)
            .ok_or(OrchestratorError::Capped)?;
        if state.in_flight > SEGMENT_QUEUE {
            return Err(OrchestratorError::Busy);
        }
        state.in_flight += 1;
        state.last_active = Instant::now();
        Ok(SegmentSlot {
            sessions: Arc::clone(&self.sessions),
            session_id: session_id.to_string(),
        })
    }

    /// Ends a session; true when it was live.
    pub fn end(&self, session_id: &str) -> bool {
        self.lock().remove(session_id).is_some()
    }

    /// Ends sessions idle for `timeout` with nothing in flight; returns their ids.
    pub fn reap_idle(&self, timeout: Duration) -> Vec<String> {
        let now = Instant::now();
        let mut sessions = self.lock();
        let idle: Vec<String> = sessions
            .iter()
            .filter(|(_, s)| s.in_flight == 0 && now.duration_since(s.last_active) >= timeout)
            .map(|(id, _)| id.clone())
            .collect();
        for id in &idle {
            sessions.remove(id);
        }
        idle
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

    #[test]
    fn a_session_takes_one_plus_queue_segments_then_is_busy() {
        let r = SessionRegistry::new(1);
        assert!(matches!(
            r.begin_segment("a"),
            Err(OrchestratorError::Capped)
        ));
        r.open("a").expect("room");
        let slots: Vec<_> = (0..=SEGMENT_QUEUE)
            .map(|_| r.begin_segment("a").expect("room in the queue"))
            .collect();
        assert!(matches!(r.begin_segment("a"), Err(OrchestratorError::Busy)));
        drop(slots);
        let _slot = r.begin_segment("a").expect("freed");
    }

    #[test]
    fn idle_sessions_are_reaped_busy_ones_are_not() {
        let r = SessionRegistry::new(3);
        r.open("idle").expect("room");
        r.open("busy").expect("room");
        let _slot = r.begin_segment("busy").expect("room");
        assert_eq!(r.reap_idle(Duration::ZERO), vec!["idle".to_string()]);
        assert!(r.contains("busy"));
        assert!(r.reap_idle(Duration::from_secs(3600)).is_empty());
    }
}
