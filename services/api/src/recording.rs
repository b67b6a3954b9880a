//! Recordings of sessions: what results say about each segment ([`SegmentTracker`]), making a
//! session's recording once it ended ([`finalize`]: static HLS of every rendition and an MP4
//! of the top rendition with audio, copied under `recordings/{sessionId}/`), serving it
//! ([`routes`]), and the session object of §3 ([`session_json`]; its playback info is
//! [`crate::studio::recording_playback`]).
//!
//! Storage layout of a ready recording (segments are copied out of `live/`, which retention
//! may trim):
//! ```text
//! recordings/{sessionId}/index.m3u8                 master playlist
//! recordings/{sessionId}/{rendition}/index.m3u8     VOD media playlist (EXT-X-ENDLIST)
//! recordings/{sessionId}/{rendition}/{seq:010}.ts   the segments
//! recordings/{sessionId}/output.mp4                 top rendition with audio, faststart
//! ```
//! A recording is made with what arrived: a segment that failed or never came is a gap
//! (`EXT-X-DISCONTINUITY` in the playlists, a jump closed in the MP4). A session with no
//! segment at all, or whose MP4 cannot be written, ends `failed` with the reason.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use bytes::Bytes;
use livefarm_hls::{MasterPlaylist, MediaPlaylist, PlaylistType, Segment, Variant};
use livefarm_jobs::{ResultStatus, SegmentResult};
use livefarm_storage::{keys, Storage, StorageError};
use livefarm_store::{RecordingStatus, SessionCounters, SessionRecord};
use serde_json::{json, Map, Value};
use tracing::{debug, warn};

/// `Content-Type` of playlists.
const PLAYLIST_TYPE: &str = "application/vnd.apple.mpegurl";
/// `Content-Type` of segments.
const SEGMENT_TYPE: &str = "video/mp2t";
/// A ready recording never changes.
const FINAL_CACHE: &str = "max-age=3600";
/// Longest a stream's tracked segments are kept without a new result (long after any
/// recording of it was made).
const TRACK_TTL_MS: i64 = 30 * 60 * 1000;

/// The storage key of a recording's file (`file` relative to the session's folder).
pub fn recording_key(session_id: &str, file: &str) -> String {
    format!("{}{session_id}/{file}", keys::RECORDINGS_ROOT)
}

/// One rendition of one segment, as its result described it.
#[derive(Debug, Clone, PartialEq)]
pub struct TrackedRendition {
    pub name: String,
    /// Seconds.
    pub duration: f64,
    pub bytes: u64,
    pub width: u32,
    pub height: u32,
    pub codecs: Option<String>,
}

/// What the result of one segment said.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TrackedSegment {
    /// The segment was transcoded (`ok`); otherwise it failed or was dropped.
    pub ok: bool,
    /// The source segment, when the result says it is stored where playback serves it.
    pub source: Option<TrackedRendition>,
    pub renditions: Vec<TrackedRendition>,
}

#[derive(Debug, Default)]
struct TrackedStream {
    segments: BTreeMap<u64, TrackedSegment>,
    /// Newest activity seen (a result or a cut segment), ms.
    last_activity_ms: i64,
    dirty: bool,
}

/// Every stream's segments as results describe them, fed by every result (each replica reads
/// every result), so that counters can be written as absolute values and a recording knows
/// its segments' durations and when the last one is in. Streams silent for half an hour are
/// forgotten.
#[derive(Debug, Default)]
pub struct SegmentTracker {
    streams: Mutex<HashMap<String, TrackedStream>>,
}

impl SegmentTracker {
    /// An empty tracker.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, TrackedStream>> {
        self.streams.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records a result seen at `at_ms` (its bus entry's time). The first result of a seq
    /// wins; a later one for the same seq (a duplicate) changes nothing.
    pub fn record(&self, result: &SegmentResult, at_ms: i64) {
        let renditions: Vec<TrackedRendition> = result
            .renditions
            .iter()
            .map(|r| TrackedRendition {
                name: r.name.clone(),
                duration: r.duration,
                bytes: r.bytes,
                width: r.width,
                height: r.height,
                codecs: r.codecs.clone(),
            })
            .collect();
        let duration = renditions.iter().map(|r| r.duration).fold(0.0, f64::max);
        let source = (result.source_bytes > 0
            && result.source_key == keys::source_segment(&result.stream_id, result.seq))
        .then(|| TrackedRendition {
            name: keys::SOURCE_RENDITION.to_owned(),
            duration,
            bytes: result.source_bytes,
            width: result.source_width,
            height: result.source_height,
            codecs: result.source_codecs.clone(),
        });
        let mut streams = self.lock();
        let stream = streams.entry(result.stream_id.clone()).or_default();
        stream
            .segments
            .entry(result.seq)
            .or_insert_with(|| TrackedSegment {
                ok: result.status == ResultStatus::Ok,
                source,
                renditions,
            });
        stream.last_activity_ms = stream.last_activity_ms.max(at_ms);
        stream.dirty = true;
    }

    /// Records that the stream's publisher was active at `at_ms` (a segment was cut).
    pub fn note_activity(&self, stream_id: &str, at_ms: i64) {
        let mut streams = self.lock();
        let stream = streams.entry(stream_id.to_owned()).or_default();
        if at_ms > stream.last_activity_ms {
            stream.last_activity_ms = at_ms;
            stream.dirty = true;
        }
    }

    /// Whether the result of `(stream_id, seq)` has been seen.
    pub fn has(&self, stream_id: &str, seq: u64) -> bool {
        self.lock()
            .get(stream_id)
            .is_some_and(|s| s.segments.contains_key(&seq))
    }

    /// The segments seen in `[first, end)`.
    pub fn segments(&self, stream_id: &str, first: u64, end: u64) -> BTreeMap<u64, TrackedSegment> {
        self.lock()
            .get(stream_id)
            .map(|s| {
                s.segments
                    .range(first..end.max(first))
                    .map(|(seq, seg)| (*seq, seg.clone()))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The highest seq seen at or after `first`.
    pub fn last_seq(&self, stream_id: &str, first: u64) -> Option<u64> {
        self.lock()
            .get(stream_id)
            .and_then(|s| s.segments.range(first..).next_back().map(|(seq, _)| *seq))
    }

    /// Absolute counters of the segments seen in `[first, end)`.
    pub fn counters(&self, stream_id: &str, first: u64, end: u64) -> SessionCounters {
        let mut c = SessionCounters::default();
        for segment in self.segments(stream_id, first, end).values() {
            if !segment.ok {
                continue;
            }
            let duration = segment
                .renditions
                .iter()
                .map(|r| r.duration)
                .fold(0.0, f64::max);
            c.source_segments += 1;
            c.source_duration_ms += (duration * 1000.0).round() as i64;
            c.source_bytes += segment.source.as_ref().map_or(0, |s| s.bytes as i64);
            for r in &segment.renditions {
                c.transcoded_segments += 1;
                c.transcoded_duration_ms += (r.duration * 1000.0).round() as i64;
                c.transcoded_bytes += r.bytes as i64;
            }
        }
        c
    }

    /// Streams with news since the last call, with their newest activity; forgets streams
    /// silent since before `now - 30 min`.
    pub fn take_dirty(&self, now_ms: i64) -> Vec<(String, i64)> {
        let mut streams = self.lock();
        streams.retain(|_, s| s.dirty || s.last_activity_ms >= now_ms - TRACK_TTL_MS);
        streams
            .iter_mut()
            .filter(|(_, s)| s.dirty)
            .map(|(id, s)| {
                s.dirty = false;
                (id.clone(), s.last_activity_ms)
            })
            .collect()
    }
}

/// Why a recording could not be made.
#[derive(Debug, thiserror::Error)]
pub enum RecordingError {
    /// Not one segment of the session is in storage.
    #[error("no segment of the session was recorded")]
    NoSegments,
    /// Reading or writing storage failed.
    #[error("storage: {0}")]
    Storage(#[from] StorageError),
    /// A temporary file could not be written.
    #[error("temporary file: {0}")]
    Io(#[from] std::io::Error),
    /// The MP4 could not be made.
    #[error("mp4: {0}")]
    Mp4(String),
}

/// What [`finalize`] made.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordingSummary {
    /// Renditions in the master playlist.
    pub renditions: Vec<String>,
    /// Segments of the top rendition.
    pub segments: usize,
    /// Seconds of the MP4.
    pub mp4_duration: f64,
    /// The rendition in the MP4.
    pub mp4_rendition: String,
}

/// One rendition's segments as copied.
struct Copied {
    name: String,
    /// `(seq, seconds, bytes)`.
    segments: Vec<(u64, f64, u64)>,
    width: u32,
    height: u32,
    codecs: Option<String>,
}

/// Waits until the result of the session's last segment is in (or `results_wait` after the
/// session ended), then writes the recording to storage. The caller holds the session's
/// claim and marks the recording ready or failed with the outcome.
pub async fn finalize(
    storage: &Storage,
    tracker: &SegmentTracker,
    session: &SessionRecord,
    end_seq: Option<u64>,
    results_wait: Duration,
) -> Result<RecordingSummary, RecordingError> {
    let first = u64::try_from(session.first_seq).unwrap_or(0);
    let ended_at = session.ended_at.unwrap_or(session.last_seen);
    let wait_until =
        ended_at.saturating_add(i64::try_from(results_wait.as_millis()).unwrap_or(i64::MAX));
    loop {
        let caught_up = match end_seq {
            Some(end) => end <= first || tracker.has(&session.stream_id, end - 1),
            None => false,
        };
        if caught_up || livefarm_jobs::now_ms() as i64 >= wait_until {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // without ingest's `ended` (the idle timeout ended it), the segments seen make the end
    let end = end_seq
        .or_else(|| tracker.last_seq(&session.stream_id, first).map(|s| s + 1))
        .unwrap_or(first);
    let tracked = tracker.segments(&session.stream_id, first, end);
    let names = rendition_names(session, &tracked);
    let dir = tempfile::tempdir()?;
    let mut copied = Vec::new();
    for name in &names {
        let rendition = copy_rendition(storage, session, name, first, end, &tracked, &dir).await?;
        if !rendition.segments.is_empty() {
            copied.push(rendition);
        }
    }
    if copied.is_empty() {
        return Err(RecordingError::NoSegments);
    }
    // the MP4 first: the playlists make the recording visible, so they come last
    let top = top_rendition(&copied);
    let files: Vec<PathBuf> = top
        .segments
        .iter()
        .map(|(seq, _, _)| segment_file(&dir, &top.name, *seq))
        .collect();
    let mp4 = dir.path().join("output.mp4");
    let target = mp4.clone();
    let report =
        tokio::task::spawn_blocking(move || livefarm_media::remux_ts_to_mp4(&files, &target))
            .await
            .map_err(|e| RecordingError::Mp4(e.to_string()))?
            .map_err(|e| RecordingError::Mp4(e.to_string()))?;
    let bytes = tokio::fs::read(&mp4).await?;
    storage
        .put(
            &recording_key(&session.id, "output.mp4"),
            Bytes::from(bytes),
        )
        .await?;
    for rendition in &copied {
        let playlist = media_playlist(&rendition.segments);
        storage
            .put(
                &recording_key(&session.id, &format!("{}/index.m3u8", rendition.name)),
                Bytes::from(playlist),
            )
            .await?;
    }
    storage
        .put(
            &recording_key(&session.id, "index.m3u8"),
            Bytes::from(master_playlist(&copied)),
        )
        .await?;
    Ok(RecordingSummary {
        renditions: copied.iter().map(|r| r.name.clone()).collect(),
        segments: top.segments.len(),
        mp4_duration: report.duration,
        mp4_rendition: top.name.clone(),
    })
}

/// The renditions to record: the source (when stored where playback serves it) and every
/// rendition the results named, else the session's profiles.
fn rendition_names(
    session: &SessionRecord,
    tracked: &BTreeMap<u64, TrackedSegment>,
) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    if tracked.values().any(|s| s.source.is_some()) || tracked.is_empty() {
        names.push(keys::SOURCE_RENDITION.to_owned());
    }
    for segment in tracked.values() {
        for r in &segment.renditions {
            if !names.contains(&r.name) {
                names.push(r.name.clone());
            }
        }
    }
    if names.len() <= 1 {
        let profiles = session.spec.get("profiles").and_then(Value::as_array);
        for profile in profiles.into_iter().flatten() {
            if let Some(name) = profile.get("name").and_then(Value::as_str) {
                if !names.iter().any(|n| n == name) {
                    names.push(name.to_owned());
                }
            }
        }
    }
    names
}

fn segment_file(dir: &tempfile::TempDir, rendition: &str, seq: u64) -> PathBuf {
    dir.path().join(format!("{rendition}-{seq:010}.ts"))
}

/// Copies one rendition's segments of `[first, end)` into the recording and a temporary
/// folder (the MP4 and duration probes read them there).
async fn copy_rendition(
    storage: &Storage,
    session: &SessionRecord,
    name: &str,
    first: u64,
    end: u64,
    tracked: &BTreeMap<u64, TrackedSegment>,
    dir: &tempfile::TempDir,
) -> Result<Copied, RecordingError> {
    let mut copied = Copied {
        name: name.to_owned(),
        segments: Vec::new(),
        width: 0,
        height: 0,
        codecs: None,
    };
    if keys::check_id(name).is_err() {
        return Ok(copied);
    }
    for seq in first..end {
        let key = keys::rendition_segment(&session.stream_id, name, seq, "ts");
        let data = match storage.get(&key).await {
            Ok(data) => data,
            Err(StorageError::NotFound { .. }) => {
                debug!(session = %session.id, rendition = name, seq, "segment missing; a gap");
                continue;
            }
            Err(error) => return Err(error.into()),
        };
        let info = tracked.get(&seq).and_then(|s| {
            if name == keys::SOURCE_RENDITION {
                s.source.clone()
            } else {
                s.renditions.iter().find(|r| r.name == name).cloned()
            }
        });
        let file = segment_file(dir, name, seq);
        tokio::fs::write(&file, &data).await?;
        let duration = match info.as_ref().filter(|i| i.duration > 0.0) {
            Some(info) => info.duration,
            None => {
                let probe = file.clone();
                tokio::task::spawn_blocking(move || livefarm_media::probe_duration(&probe))
                    .await
                    .ok()
                    .flatten()
                    .unwrap_or(0.0)
            }
        };
        if duration <= 0.0 {
            warn!(session = %session.id, rendition = name, seq, "segment has no duration; left out");
            continue;
        }
        if let Some(info) = &info {
            if info.width * info.height > copied.width * copied.height {
                copied.width = info.width;
                copied.height = info.height;
            }
            if copied.codecs.is_none() {
                copied.codecs.clone_from(&info.codecs);
            }
        }
        if copied.codecs.is_none() {
            copied.codecs = livefarm_hls::tsprobe::probe(&data).codecs();
        }
        storage
            .put(
                &recording_key(&session.id, &format!("{name}/{seq:010}.ts")),
                data.clone(),
            )
            .await?;
        copied.segments.push((seq, duration, data.len() as u64));
    }
    Ok(copied)
}

/// The rendition of the MP4: the largest transcoded picture, else the source.
fn top_rendition(copied: &[Copied]) -> &Copied {
    let transcoded = copied
        .iter()
        .filter(|r| r.name != keys::SOURCE_RENDITION)
        .max_by_key(|r| {
            (
                u64::from(r.width) * u64::from(r.height),
                peak_bps(&r.segments),
            )
        });
    transcoded.unwrap_or(&copied[0])
}

fn peak_bps(segments: &[(u64, f64, u64)]) -> u64 {
    segments
        .iter()
        .map(|(_, d, b)| (*b as f64 * 8.0 / d.max(0.001)).round() as u64)
        .max()
        .unwrap_or(1)
        .max(1)
}

fn media_playlist(segments: &[(u64, f64, u64)]) -> String {
    let mut previous: Option<u64> = None;
    let segments = segments
        .iter()
        .map(|(seq, duration, _)| {
            let discontinuity = previous.is_some_and(|p| *seq != p + 1);
            previous = Some(*seq);
            Segment {
                uri: format!("{seq:010}.ts"),
                duration: *duration,
                discontinuity,
                program_date_time: None,
                title: None,
            }
        })
        .collect();
    MediaPlaylist {
        target_duration: None,
        media_sequence: 0,
        discontinuity_sequence: 0,
        playlist_type: Some(PlaylistType::Vod),
        ended: true,
        segments,
    }
    .render()
}

fn master_playlist(copied: &[Copied]) -> String {
    let variants = copied
        .iter()
        .map(|r| {
            let (bits, seconds) = r
                .segments
                .iter()
                .fold((0.0, 0.0), |(b, s), (_, d, n)| (b + *n as f64 * 8.0, s + d));
            Variant {
                uri: format!("{}/index.m3u8", r.name),
                bandwidth: peak_bps(&r.segments),
                average_bandwidth: (seconds > 0.0).then(|| (bits / seconds).round() as u64),
                resolution: (r.width > 0 && r.height > 0).then_some((r.width, r.height)),
                codecs: r.codecs.clone(),
                frame_rate: None,
                name: Some(r.name.clone()),
            }
        })
        .collect();
    MasterPlaylist { variants }.render()
}

/// `public_url` without a trailing slash (empty: URLs are relative to the api's host).
fn base(public_url: &str) -> &str {
    public_url.trim_end_matches('/')
}

/// The HLS URL of a session's recording.
pub fn recording_url(session_id: &str, public_url: &str) -> String {
    format!("{}/recordings/{session_id}/index.m3u8", base(public_url))
}

/// The MP4 URL of a session's recording.
pub fn mp4_url(session_id: &str, public_url: &str) -> String {
    format!("{}/recordings/{session_id}/output.mp4", base(public_url))
}

/// The session object of §3.1 (Appendix A's shape). Optional fields that are unknown are
/// left out; `recordingStatus` only when the session records; `recordingUrl` and `mp4Url`
/// once the recording is ready. `userId` and `projectId` are the tenant.
pub fn session_json(session: &SessionRecord, public_url: &str) -> Value {
    let c = &session.counters;
    let mut object = Map::new();
    let mut put = |k: &str, v: Value| {
        object.insert(k.to_owned(), v);
    };
    put("id", json!(session.id));
    put("name", json!(session.name));
    put("kind", json!("session"));
    put("userId", json!(session.tenant_id));
    put("projectId", json!(session.tenant_id));
    put("parentId", json!(session.stream_id));
    if let Some(playback_id) = session.spec.get("playbackId") {
        put("playbackId", playback_id.clone());
    }
    put("createdAt", json!(session.created_at));
    put("lastSeen", json!(session.last_seen));
    put("sourceSegments", json!(c.source_segments));
    put("transcodedSegments", json!(c.transcoded_segments));
    put(
        "sourceSegmentsDuration",
        json!(c.source_duration_ms as f64 / 1000.0),
    );
    put(
        "transcodedSegmentsDuration",
        json!(c.transcoded_duration_ms as f64 / 1000.0),
    );
    put("sourceBytes", json!(c.source_bytes));
    put("transcodedBytes", json!(c.transcoded_bytes));
    put("ingestRate", json!(0));
    put("outgoingRate", json!(0));
    put("record", json!(session.record));
    if session.record {
        put("recordingStatus", json!(session.recording_status.as_str()));
        if session.recording_status == RecordingStatus::Ready {
            put(
                "recordingUrl",
                json!(recording_url(&session.id, public_url)),
            );
            put("mp4Url", json!(mp4_url(&session.id, public_url)));
        }
    }
    for key in ["profiles", "recordingSpec"] {
        if let Some(value) = session.spec.get(key).filter(|v| !v.is_null()) {
            put(key, value.clone());
        }
    }
    Value::Object(object)
}

/// The recording routes alone, over `storage` (the api serves the same handlers from its route
/// table).
pub fn routes(storage: Storage) -> Router {
    Router::new()
        .route("/recordings/{session_id}/{file}", get(serve_top))
        .route(
            "/recordings/{session_id}/{rendition}/{file}",
            get(serve_rendition),
        )
        .with_state(storage)
}

/// Serving ready recordings from storage (no authentication: playback URLs are public, as
/// Studio's), with single `Range` requests.
#[utoipa::path(
    get,
    path = "/recordings/{session_id}/{file}",
    tag = "hls",
    security(()),
    params(
        ("session_id" = String, Path, description = "Session id"),
        ("file" = String, Path, description = "`index.m3u8` (HLS master) or `output.mp4`"),
    ),
    responses(
        (status = 200, description = "The playlist or the MP4"),
        (status = 206, description = "A byte range of it"),
        (status = 404, description = "No such recording (yet)"),
    )
)]
pub(crate) async fn serve_top(
    State(storage): State<Storage>,
    Path((session_id, file)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let storage = &storage;
    let content_type = match file.as_str() {
        "index.m3u8" => PLAYLIST_TYPE,
        "output.mp4" => "video/mp4",
        _ => return not_found(),
    };
    serve(storage, &[&session_id], &file, content_type, &headers).await
}

/// A recording's rendition playlist or segment.
#[utoipa::path(
    get,
    path = "/recordings/{session_id}/{rendition}/{file}",
    tag = "hls",
    security(()),
    params(
        ("session_id" = String, Path, description = "Session id"),
        ("rendition" = String, Path, description = "Rendition name"),
        ("file" = String, Path, description = "`index.m3u8` or `<seq>.ts`"),
    ),
    responses(
        (status = 200, description = "The playlist or the segment"),
        (status = 404, description = "No such recording, rendition or segment"),
    )
)]
pub(crate) async fn serve_rendition(
    State(storage): State<Storage>,
    Path((session_id, rendition, file)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Response {
    let storage = &storage;
    let content_type = if file == "index.m3u8" {
        PLAYLIST_TYPE
    } else if file
        .strip_suffix(".ts")
        .is_some_and(|seq| seq.bytes().all(|b| b.is_ascii_digit()) && !seq.is_empty())
    {
        SEGMENT_TYPE
    } else {
        return not_found();
    };
    serve(
        storage,
        &[&session_id, &rendition],
        &file,
        content_type,
        &headers,
    )
    .await
}

async fn serve(
    storage: &Storage,
    ids: &[&str],
    file: &str,
    content_type: &'static str,
    headers: &HeaderMap,
) -> Response {
    if ids.iter().any(|id| keys::check_id(id).is_err()) {
        return not_found();
    }
    let key = format!("{}{}/{file}", keys::RECORDINGS_ROOT, ids.join("/"));
    let data = match storage.get(&key).await {
        Ok(data) => data,
        Err(StorageError::NotFound { .. } | StorageError::InvalidKey { .. }) => return not_found(),
        Err(error) => {
            warn!(%error, key, "cannot read a recording");
            return (StatusCode::SERVICE_UNAVAILABLE, "storage unavailable").into_response();
        }
    };
    let total = data.len();
    let range = headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| parse_range(v, total));
    let mut response = match range {
        Some(Ok((start, end))) => {
            let mut response =
                (StatusCode::PARTIAL_CONTENT, data.slice(start..=end)).into_response();
            if let Ok(value) = HeaderValue::from_str(&format!("bytes {start}-{end}/{total}")) {
                response.headers_mut().insert(header::CONTENT_RANGE, value);
            }
            response
        }
        Some(Err(())) => {
            let mut response = StatusCode::RANGE_NOT_SATISFIABLE.into_response();
            if let Ok(value) = HeaderValue::from_str(&format!("bytes */{total}")) {
                response.headers_mut().insert(header::CONTENT_RANGE, value);
            }
            return response;
        }
        None => data.into_response(),
    };
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(FINAL_CACHE));
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    h.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    response
}

/// One `bytes=a-b`, `bytes=a-` or `bytes=-n` range within `total` bytes: `None` for a form
/// not understood (the whole body is sent), `Err` for one outside the body (416).
fn parse_range(value: &str, total: usize) -> Option<Result<(usize, usize), ()>> {
    let spec = value.strip_prefix("bytes=")?;
    if spec.contains(',') {
        return None;
    }
    let (a, b) = spec.split_once('-')?;
    let range = match (a.trim(), b.trim()) {
        ("", n) => {
            let n: usize = n.parse().ok()?;
            (n > 0 && total > 0).then(|| (total.saturating_sub(n), total - 1))
        }
        (a, "") => {
            let a: usize = a.parse().ok()?;
            (a < total).then(|| (a, total - 1))
        }
        (a, b) => {
            let (a, b): (usize, usize) = (a.parse().ok()?, b.parse().ok()?);
            (a <= b && a < total).then(|| (a, b.min(total - 1)))
        }
    };
    Some(range.ok_or(()))
}

fn not_found() -> Response {
    let mut response = (
        StatusCode::NOT_FOUND,
        [(header::CONTENT_TYPE, "application/json")],
        r#"{"errors":["not found"]}"#,
    )
        .into_response();
    response.headers_mut().insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(parse_range("bytes=0-9", 100), Some(Ok((0, 9))));
        assert_eq!(parse_range("bytes=90-", 100), Some(Ok((90, 99))));
        assert_eq!(parse_range("bytes=-10", 100), Some(Ok((90, 99))));
        assert_eq!(parse_range("bytes=50-500", 100), Some(Ok((50, 99))));
        assert_eq!(parse_range("bytes=100-", 100), Some(Err(())));
        assert_eq!(parse_range("bytes=0-1,5-6", 100), None);
        assert_eq!(parse_range("items=0-1", 100), None);
    }

    #[test]
    fn playlists_mark_gaps() {
        let text = media_playlist(&[(3, 2.0, 10), (4, 2.0, 10), (6, 1.5, 10)]);
        let parsed = livefarm_hls::parse_media(&text).expect("parses");
        assert!(parsed.ended);
        let uris: Vec<&str> = parsed.segments.iter().map(|s| s.uri.as_str()).collect();
        assert_eq!(uris, ["0000000003.ts", "0000000004.ts", "0000000006.ts"]);
        let gaps: Vec<bool> = parsed.segments.iter().map(|s| s.discontinuity).collect();
        assert_eq!(gaps, [false, false, true]);
    }
}
