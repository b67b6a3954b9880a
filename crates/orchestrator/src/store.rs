//! Where `/segment` keeps renditions until the broadcaster downloads them: in memory, a ring
//! of the last [`RING_PER_RENDITION`] files per `{session}/{rendition}` directory, as
//! go-livepeer's memory driver does (§4.4). Served by `GET /stream/{session}/{rendition}/{file}`.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use bytes::Bytes;

/// Files kept per rendition directory.
pub const RING_PER_RENDITION: usize = 12;

type Dir = VecDeque<(String, Bytes)>;

/// The in-memory result store.
#[derive(Debug, Default)]
pub struct ResultStore {
    dirs: Mutex<HashMap<(String, String), Dir>>,
}

impl ResultStore {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(String, String), Dir>> {
        self.dirs.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Stores `file` (e.g. `7.ts`) of a session's rendition; the oldest file of that
    /// directory goes when the ring is full. A second write of a name replaces the first.
    pub fn put(&self, session: &str, rendition: &str, file: &str, data: Bytes) {
        let mut dirs = self.lock();
        let dir = dirs
            .entry((session.to_string(), rendition.to_string()))
            .or_default();
        dir.retain(|(name, _)| name != file);
        dir.push_back((file.to_string(), data));
        while dir.len() > RING_PER_RENDITION {
            dir.pop_front();
        }
    }

    /// A stored file.
    pub fn get(&self, session: &str, rendition: &str, file: &str) -> Option<Bytes> {
        self.lock()
            .get(&(session.to_string(), rendition.to_string()))
            .and_then(|dir| dir.iter().find(|(name, _)| name == file))
            .map(|(_, data)| data.clone())
    }

    /// Drops everything of a session (EndTranscodingSession, idle timeout).
    pub fn end_session(&self, session: &str) {
        self.lock().retain(|(s, _), _| s != session);
    }

    /// Bytes held, for the metrics.
    pub fn bytes(&self) -> usize {
        self.lock()
            .values()
            .flat_map(|dir| dir.iter().map(|(_, d)| d.len()))
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_a_ring_of_twelve_per_rendition() {
        let store = ResultStore::default();
        for seq in 0..15 {
            store.put(
                "s",
                "P240p",
                &format!("{seq}.ts"),
                Bytes::from(vec![seq as u8]),
            );
        }
        store.put("s", "P360p", "0.ts", Bytes::from_static(b"x"));
        assert!(store.get("s", "P240p", "2.ts").is_none(), "evicted");
        assert_eq!(store.get("s", "P240p", "3.ts").as_deref(), Some(&[3u8][..]));
        assert_eq!(store.get("s", "P360p", "0.ts").as_deref(), Some(&b"x"[..]));
        assert!(store.get("other", "P240p", "3.ts").is_none());
        store.end_session("s");
        assert!(store.get("s", "P360p", "0.ts").is_none());
        assert_eq!(store.bytes(), 0);
    }
}
