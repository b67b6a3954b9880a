//! Playlist snapshots: a compact copy of one stream's playlist state, saved in the bus's
//! key/value store so that a starting replica restores every stream and reads only the results
//! published since, instead of the whole results stream.
//!
//! ```text
//! livefarm:api:playlist:{stream_id}   JSON StreamSnapshot, with the results entry id it covers
//! livefarm:api:playlists:cursor       results entry id through which every snapshot is saved
//! ```
//!
//! A replica saves the streams changed since its last save at most every
//! `snapshot_interval_ms`, then moves the shared cursor forward to the results entry it had
//! applied before taking them: every stream's state through that entry is then saved (a
//! stream not saved in that round had not changed since its last save). On start a replica
//! loads every snapshot and tails results after the shared cursor; results a snapshot already
//! holds are ignored when read again (each `(stream_id, seq)` applies once). Replicas write the
//! same keys; a write never replaces a snapshot or the cursor with an older one (read, then
//! write: two replicas racing at the same instant can still leave the older snapshot).

use std::time::Duration;

use livefarm_bus::{BusError, JobBus, MessageId};
use livefarm_hls::{Segment, UtcMillis};
use serde::{Deserialize, Serialize};

/// Prefix of the snapshot keys (named in `livefarm_jobs::names`).
pub const SNAPSHOT_PREFIX: &str = livefarm_jobs::names::API_SNAPSHOT_PREFIX;
/// The shared cursor key.
pub const CURSOR_KEY: &str = livefarm_jobs::names::API_SNAPSHOT_CURSOR_KEY;
/// How long an unchanged snapshot is kept: a stream idle this long is forgotten on restart.
const SNAPSHOT_TTL: Duration = Duration::from_secs(7 * 24 * 3600);

/// The key of `stream_id`'s snapshot.
pub fn snapshot_key(stream_id: &str) -> String {
    format!("{SNAPSHOT_PREFIX}{stream_id}")
}

/// One stream's playlist state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StreamSnapshot {
    /// The results entry id (`ms-seq`) through which results are in this state.
    #[serde(default)]
    pub cursor: String,
    pub record: bool,
    pub last_seq: Option<u64>,
    pub ended: bool,
    pub next_start_ms: Option<i64>,
    pub renditions: Vec<RenditionSnapshot>,
}

impl StreamSnapshot {
    /// [`StreamSnapshot::cursor`] as an id (the start of the stream when unset or bad).
    pub fn cursor(&self) -> MessageId {
        self.cursor.parse().unwrap_or_default()
    }
}

/// One rung of a stream's ladder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RenditionSnapshot {
    pub name: String,
    pub media_sequence: u64,
    pub discontinuity_sequence: u64,
    pub target_duration: u32,
    pub window_ended: bool,
    /// The live window's segments.
    pub window: Vec<SegmentSnapshot>,
    /// Every segment, for recorded streams.
    pub recording: Vec<SegmentSnapshot>,
    pub resolution: Option<(u32, u32)>,
    pub frame_rate: Option<f64>,
    pub codecs: Option<String>,
    pub peak_bps: u64,
    pub total_bits: f64,
    pub total_seconds: f64,
}

/// One segment as `[uri, duration, discontinuity, program date time ms]` (compact JSON).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SegmentSnapshot(pub String, pub f64, pub bool, pub Option<i64>);

impl From<&Segment> for SegmentSnapshot {
    fn from(segment: &Segment) -> Self {
        SegmentSnapshot(
            segment.uri.clone(),
            segment.duration,
            segment.discontinuity,
            segment.program_date_time.map(|t| t.0),
        )
    }
}

impl From<SegmentSnapshot> for Segment {
    fn from(SegmentSnapshot(uri, duration, discontinuity, pdt): SegmentSnapshot) -> Self {
        Segment {
            uri,
            duration,
            discontinuity,
            program_date_time: pdt.map(UtcMillis),
            title: None,
        }
    }
}

/// Saves `snapshot` of `stream_id` covering results through `cursor`, unless a snapshot
/// covering later results is there. Returns whether it was written.
pub async fn save(
    bus: &dyn JobBus,
    stream_id: &str,
    mut snapshot: StreamSnapshot,
    cursor: MessageId,
) -> Result<bool, BusError> {
    let key = snapshot_key(stream_id);
    if let Some(stored) = bus.get(&key).await? {
        let newer = serde_json::from_slice::<StreamSnapshot>(&stored)
            .is_ok_and(|stored| stored.cursor() > cursor);
        if newer {
            return Ok(false);
        }
    }
    snapshot.cursor = cursor.to_string();
    let bytes =
        serde_json::to_vec(&snapshot).expect("a snapshot of strings and numbers serialises");
    bus.set_with_ttl(&key, &bytes, SNAPSHOT_TTL).await?;
    Ok(true)
}

/// Moves the shared cursor forward to `cursor` (never back).
pub async fn save_cursor(bus: &dyn JobBus, cursor: MessageId) -> Result<(), BusError> {
    if load_cursor(bus)
        .await?
        .is_some_and(|stored| stored >= cursor)
    {
        return Ok(());
    }
    bus.set_with_ttl(CURSOR_KEY, cursor.to_string().as_bytes(), SNAPSHOT_TTL)
        .await
}

async fn load_cursor(bus: &dyn JobBus) -> Result<Option<MessageId>, BusError> {
    Ok(bus
        .get(CURSOR_KEY)
        .await?
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .and_then(|text| text.parse().ok()))
}

/// Every saved snapshot, and the results entry id to read after so that nothing since any
/// of them is missed (the start of the stream when there is none).
pub async fn load(
    bus: &dyn JobBus,
) -> Result<(Vec<(String, StreamSnapshot)>, MessageId), BusError> {
    let shared = load_cursor(bus).await?;
    let mut snapshots = Vec::new();
    for (key, bytes) in bus.scan_prefix(SNAPSHOT_PREFIX).await? {
        let Some(stream_id) = key.strip_prefix(SNAPSHOT_PREFIX) else {
            continue;
        };
        match serde_json::from_slice::<StreamSnapshot>(&bytes) {
            Ok(snapshot) => snapshots.push((stream_id.to_owned(), snapshot)),
            Err(error) => tracing::warn!(%error, stream_id, "unreadable playlist snapshot skipped"),
        }
    }
    // without the shared cursor nothing says every stream was saved: read everything
    Ok((snapshots, shared.unwrap_or_default()))
}
