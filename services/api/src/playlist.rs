//! Live and recorded HLS playlists of every stream, built from transcoder results.
//!
//! Each stream has a ladder (the source, when the result says it is stored where playback
//! serves it, then the renditions in the order results list them), each rung with a sliding
//! [`LiveWindow`] and, for recorded streams, every segment for a VOD playlist. Everything comes
//! from the results (durations, sizes, codecs); no segment is read. Results are applied once
//! per `(stream_id, seq)`: a result for a seq at or below the last applied one is a duplicate
//! or arrived too late for a live window, and is ignored.
//!
//! `EXT-X-DISCONTINUITY` marks a gap in seq (a failed, dropped or lost segment, or a publisher
//! restart that skipped numbers) and a segment whose result carries `discontinuity` (the first
//! after a publisher's reconnect, as the segmenter marked its job).
//!
//! A stream's state can be saved as a [`StreamSnapshot`] and restored, so that a restarted
//! replica need not replay the whole results stream; streams changed since the last save are
//! tracked ([`Playlists::take_dirty`]).

use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, PoisonError};

use livefarm_hls::{
    LiveWindow, MasterPlaylist, MediaPlaylist, PlaylistType, Segment, UtcMillis, Variant,
};

use crate::snapshot::{RenditionSnapshot, SegmentSnapshot, StreamSnapshot};

/// One rendition of one segment, as measured by the results consumer.
#[derive(Debug, Clone, PartialEq)]
pub struct SegmentMeta {
    /// Rendition name (`source` for the source segment).
    pub rendition: String,
    /// Seconds.
    pub duration: f64,
    /// Bytes of the segment object.
    pub size: u64,
    /// Width and height, when known.
    pub resolution: Option<(u32, u32)>,
    /// Frames per second, when known.
    pub frame_rate: Option<f64>,
    /// RFC 6381 codecs, when known.
    pub codecs: Option<String>,
}

/// How playlist URIs are laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// `/hls/{playbackId}/index.m3u8`, `{rendition}/index.m3u8`, `{seq}.ts`.
    Hls,
    /// go-livepeer's `/stream/{id}.m3u8`, `{id}/{rendition}.m3u8`, `{rendition}/{seq}.ts`.
    Livepeer,
}

/// Every stream's playlists.
#[derive(Debug)]
pub struct Playlists {
    window: usize,
    streams: Mutex<Streams>,
}

#[derive(Debug, Default)]
struct Streams {
    by_id: HashMap<String, StreamState>,
    /// Streams changed since [`Playlists::take_dirty`] last ran.
    dirty: HashSet<String>,
}

#[derive(Debug, Default)]
struct StreamState {
    record: bool,
    last_seq: Option<u64>,
    ended: bool,
    /// Where the next contiguous segment starts, ms since the epoch.
    next_start_ms: Option<i64>,
    renditions: Vec<RenditionState>,
}

#[derive(Debug)]
struct RenditionState {
    name: String,
    window: LiveWindow,
    recording: Vec<Segment>,
    resolution: Option<(u32, u32)>,
    frame_rate: Option<f64>,
    codecs: Option<String>,
    peak_bps: u64,
    total_bits: f64,
    total_seconds: f64,
}

impl Playlists {
    /// Live windows of `window` segments (at least 1).
    pub fn new(window: usize) -> Self {
        Playlists {
            window: window.max(1),
            streams: Mutex::new(Streams::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Streams> {
        self.streams.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Reads the streams.
    fn with<T>(&self, f: impl FnOnce(&HashMap<String, StreamState>) -> T) -> T {
        f(&self.lock().by_id)
    }

    /// Changes `stream_id`'s state (made if new) and marks it dirty.
    fn change<T>(&self, stream_id: &str, f: impl FnOnce(&mut StreamState) -> T) -> T {
        let mut streams = self.lock();
        if !streams.dirty.contains(stream_id) {
            streams.dirty.insert(stream_id.to_owned());
        }
        f(streams.by_id.entry(stream_id.to_owned()).or_default())
    }

    /// Keeps (or stops keeping) a full VOD playlist of the stream.
    pub fn set_record(&self, stream_id: &str, record: bool) {
        self.change(stream_id, |s| s.record = record);
    }

    /// Every stream changed since the last call, with its snapshot now.
    pub fn take_dirty(&self) -> Vec<(String, StreamSnapshot)> {
        let mut streams = self.lock();
        let dirty = std::mem::take(&mut streams.dirty);
        dirty
            .into_iter()
            .filter_map(|id| {
                // a stream without segments has nothing a restart would miss
                let state = streams
                    .by_id
                    .get(&id)
                    .filter(|s| !s.renditions.is_empty())?;
                Some((id.clone(), state.snapshot()))
            })
            .collect()
    }

    /// Marks streams dirty again (their snapshots could not be saved).
    pub fn mark_dirty(&self, stream_ids: impl IntoIterator<Item = String>) {
        self.lock().dirty.extend(stream_ids);
    }

    /// Replaces `stream_id`'s state with a saved one; a snapshot from another window length
    /// is trimmed or grown to this one.
    pub fn restore(&self, stream_id: &str, snapshot: StreamSnapshot) {
        let state = StreamState::restore(snapshot, self.window);
        self.lock().by_id.insert(stream_id.to_owned(), state);
    }

    /// Whether the stream has any state yet.
    pub fn knows(&self, stream_id: &str) -> bool {
        self.with(|s| s.contains_key(stream_id))
    }

    /// Whether a result for `seq` would still be applied.
    pub fn is_new(&self, stream_id: &str, seq: u64) -> bool {
        self.with(|s| {
            s.get(stream_id)
                .and_then(|st| st.last_seq)
                .is_none_or(|last| seq > last)
        })
    }

    /// Adds segment `seq` of a stream in every rendition in `segments`; `start_ms` is when it
    /// began, used unless it follows the previous segment directly. Returns false when it was
    /// not applied (a duplicate or late result, or nothing to add).
    pub fn apply(
        &self,
        stream_id: &str,
        seq: u64,
        start_ms: i64,
        segments: Vec<SegmentMeta>,
    ) -> bool {
        self.apply_marked(stream_id, seq, start_ms, false, segments)
    }

    /// [`Self::apply`] for a segment the segmenter marked as following a reconnect: it gets
    /// `EXT-X-DISCONTINUITY` even though its seq follows the previous one.
    pub fn apply_marked(
        &self,
        stream_id: &str,
        seq: u64,
        start_ms: i64,
        reconnect: bool,
        segments: Vec<SegmentMeta>,
    ) -> bool {
        if segments.is_empty() {
            return false;
        }
        let window = self.window;
        if !self.is_new(stream_id, seq) {
            return false;
        }
        self.change(stream_id, |state| {
            if state.last_seq.is_some_and(|last| seq <= last) {
                return false;
            }
            let discontinuity = state
                .last_seq
                .is_some_and(|last| seq != last + 1 || reconnect);
            // new segments make an ended stream live again (the publisher came back)
            state.ended = false;
            let start = match state.next_start_ms {
                Some(next) if !discontinuity => next,
                _ => start_ms,
            };
            let duration = segments.iter().map(|s| s.duration).fold(0.0, f64::max);
            state.last_seq = Some(seq);
            state.next_start_ms = Some(start + (duration * 1000.0).round() as i64);
            for meta in segments {
                let record = state.record;
                let rendition = match state
                    .renditions
                    .iter_mut()
                    .position(|r| r.name == meta.rendition)
                {
                    Some(i) => &mut state.renditions[i],
                    None => {
                        state
                            .renditions
                            .push(RenditionState::new(&meta.rendition, window, seq));
                        let last = state.renditions.len() - 1;
                        &mut state.renditions[last]
                    }
                };
                let segment = Segment {
                    uri: format!("{seq}.ts"),
                    duration: meta.duration,
                    discontinuity,
                    program_date_time: Some(UtcMillis(start)),
                    title: None,
                };
                rendition.add(&meta, segment, record);
            }
            // the source is listed first, as go-livepeer does
            state
                .renditions
                .sort_by_key(|r| r.name != livefarm_storage::keys::SOURCE_RENDITION);
            true
        })
    }

    /// Marks the stream ended (`EXT-X-ENDLIST`); returns whether it had playlists.
    pub fn end_stream(&self, stream_id: &str) -> bool {
        let already = self.with(|s| {
            s.get(stream_id)
                .filter(|st| st.ended)
                .map(|st| !st.renditions.is_empty())
        });
        if let Some(had_playlists) = already {
            return had_playlists;
        }
        self.change(stream_id, |state| {
            state.ended = true;
            for r in &mut state.renditions {
                r.window.end();
            }
            !state.renditions.is_empty()
        })
    }

    /// Whether the stream has ended.
    pub fn is_ended(&self, stream_id: &str) -> bool {
        self.with(|s| s.get(stream_id).is_some_and(|st| st.ended))
    }

    /// The master playlist, `None` until a segment arrived. `stream_id` names the media
    /// playlists in the [`Layout::Livepeer`] layout.
    pub fn master(&self, stream_id: &str, layout: Layout) -> Option<String> {
        self.render_master(stream_id, false, |name| match layout {
            Layout::Hls => format!("{name}/index.m3u8"),
            Layout::Livepeer => format!("{stream_id}/{name}.m3u8"),
        })
    }

    /// The master playlist of a recorded stream's whole session (every rendition's
    /// `recording.m3u8`, [`Layout::Hls`]); `None` unless the stream records and has segments.
    pub fn recording_master(&self, stream_id: &str) -> Option<String> {
        self.render_master(stream_id, true, |name| format!("{name}/recording.m3u8"))
    }

    fn render_master(
        &self,
        stream_id: &str,
        recording: bool,
        uri: impl Fn(&str) -> String,
    ) -> Option<String> {
        self.with(|streams| {
            let state = streams
                .get(stream_id)
                .filter(|s| !s.renditions.is_empty() && (s.record || !recording))?;
            let variants = state
                .renditions
                .iter()
                .map(|r| Variant {
                    uri: uri(&r.name),
                    bandwidth: r.peak_bps.max(1),
                    average_bandwidth: (r.total_seconds > 0.0)
                        .then(|| (r.total_bits / r.total_seconds).round() as u64),
                    resolution: r.resolution,
                    codecs: r.codecs.clone(),
                    frame_rate: r.frame_rate,
                    name: Some(r.name.clone()),
                })
                .collect();
            Some(MasterPlaylist { variants }.render())
        })
    }

    /// A rendition's live playlist, or its full recording when `recording` (recorded streams
    /// only); `None` if unknown.
    pub fn media(
        &self,
        stream_id: &str,
        rendition: &str,
        layout: Layout,
        recording: bool,
    ) -> Option<String> {
        self.with(|streams| {
            let state = streams.get(stream_id)?;
            let r = state.renditions.iter().find(|r| r.name == rendition)?;
            let mut playlist = if recording {
                if !state.record {
                    return None;
                }
                MediaPlaylist {
                    target_duration: None,
                    media_sequence: 0,
                    discontinuity_sequence: 0,
                    playlist_type: Some(if state.ended {
                        PlaylistType::Vod
                    } else {
                        PlaylistType::Event
                    }),
                    ended: state.ended,
                    segments: r.recording.clone(),
                }
            } else {
                r.window.playlist()
            };
            if layout == Layout::Livepeer {
                for s in &mut playlist.segments {
                    s.uri = format!("{rendition}/{}", s.uri);
                }
            }
            Some(playlist.render())
        })
    }

    /// Whether the stream has this rendition.
    pub fn has_rendition(&self, stream_id: &str, rendition: &str) -> bool {
        self.with(|s| {
            s.get(stream_id)
                .is_some_and(|st| st.renditions.iter().any(|r| r.name == rendition))
        })
    }
}

impl StreamState {
    fn snapshot(&self) -> StreamSnapshot {
        StreamSnapshot {
            cursor: String::new(),
            record: self.record,
            last_seq: self.last_seq,
            ended: self.ended,
            next_start_ms: self.next_start_ms,
            renditions: self
                .renditions
                .iter()
                .map(RenditionState::snapshot)
                .collect(),
        }
    }

    fn restore(snapshot: StreamSnapshot, window: usize) -> Self {
        StreamState {
            record: snapshot.record,
            last_seq: snapshot.last_seq,
            ended: snapshot.ended,
            next_start_ms: snapshot.next_start_ms,
            renditions: snapshot
                .renditions
                .into_iter()
                .map(|r| RenditionState::restore(r, window))
                .collect(),
        }
    }
}

impl RenditionState {
    fn new(name: &str, window: usize, first_seq: u64) -> Self {
        RenditionState {
            name: name.to_owned(),
            // media sequence numbers follow segment numbers from the first one seen
            window: LiveWindow::new(window).starting_at(first_seq),
            recording: Vec::new(),
            resolution: None,
            frame_rate: None,
            codecs: None,
            peak_bps: 0,
            total_bits: 0.0,
            total_seconds: 0.0,
        }
    }

    fn snapshot(&self) -> RenditionSnapshot {
        RenditionSnapshot {
            name: self.name.clone(),
            media_sequence: self.window.media_sequence(),
            discontinuity_sequence: self.window.discontinuity_sequence(),
            target_duration: self.window.playlist().target_duration.unwrap_or(1),
            window_ended: self.window.is_ended(),
            window: self.window.segments().map(SegmentSnapshot::from).collect(),
            recording: self.recording.iter().map(SegmentSnapshot::from).collect(),
            resolution: self.resolution,
            frame_rate: self.frame_rate,
            codecs: self.codecs.clone(),
            peak_bps: self.peak_bps,
            total_bits: self.total_bits,
            total_seconds: self.total_seconds,
        }
    }

    fn restore(snapshot: RenditionSnapshot, window: usize) -> Self {
        let live = MediaPlaylist {
            target_duration: Some(snapshot.target_duration),
            media_sequence: snapshot.media_sequence,
            discontinuity_sequence: snapshot.discontinuity_sequence,
            playlist_type: None,
            ended: snapshot.window_ended,
            segments: snapshot.window.into_iter().map(Segment::from).collect(),
        };
        RenditionState {
            name: snapshot.name,
            window: LiveWindow::from_playlist(window, live),
            recording: snapshot.recording.into_iter().map(Segment::from).collect(),
            resolution: snapshot.resolution,
            frame_rate: snapshot.frame_rate,
            codecs: snapshot.codecs,
            peak_bps: snapshot.peak_bps,
            total_bits: snapshot.total_bits,
            total_seconds: snapshot.total_seconds,
        }
    }

    fn add(&mut self, meta: &SegmentMeta, segment: Segment, record: bool) {
        if meta.duration > 0.0 {
            let bits = meta.size as f64 * 8.0;
            let bps = (bits / meta.duration).ceil() as u64;
            self.peak_bps = self.peak_bps.max(bps);
            self.total_bits += bits;
            self.total_seconds += meta.duration;
        }
        self.resolution = meta.resolution.or(self.resolution);
        if let Some(rate) = meta.frame_rate.filter(|r| r.is_finite() && *r > 0.0) {
            self.frame_rate = Some(self.frame_rate.map_or(rate, |old| old.max(rate)));
        }
        if let Some(codecs) = &meta.codecs {
            self.codecs = Some(codecs.clone());
        }
        if record {
            self.recording.push(segment.clone());
        }
        self.window.push(segment);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(rendition: &str, size: u64) -> SegmentMeta {
        SegmentMeta {
            rendition: rendition.to_owned(),
            duration: 2.0,
            size,
            resolution: Some((320, 180)),
            frame_rate: Some(30.0),
            codecs: Some("avc1.4d401f".to_owned()),
        }
    }

    #[test]
    fn duplicates_and_late_results_are_ignored() {
        let p = Playlists::new(6);
        assert!(p.apply("s", 1, 0, vec![meta("a", 10)]));
        assert!(!p.apply("s", 1, 0, vec![meta("a", 10)]));
        assert!(!p.apply("s", 0, 0, vec![meta("a", 10)]));
        assert!(!p.is_new("s", 1));
        assert!(p.is_new("s", 2));
        let media = p.media("s", "a", Layout::Hls, false).expect("media");
        let parsed = livefarm_hls::parse_media(&media).expect("parses");
        assert_eq!(parsed.segments.len(), 1);
    }

    #[test]
    fn a_reconnect_marks_a_discontinuity_and_reopens_an_ended_stream() {
        let p = Playlists::new(6);
        p.apply("s", 0, 1_000, vec![meta("a", 10)]);
        assert!(p.end_stream("s"));
        assert!(p.is_ended("s"));
        assert!(p.apply_marked("s", 1, 60_000, true, vec![meta("a", 10)]));
        assert!(!p.is_ended("s"), "the publisher came back");
        let parsed =
            livefarm_hls::parse_media(&p.media("s", "a", Layout::Hls, false).expect("media"))
                .expect("parses");
        let flags: Vec<bool> = parsed.segments.iter().map(|s| s.discontinuity).collect();
        assert_eq!(flags, [false, true]);
        assert_eq!(
            parsed.segments[1].program_date_time.map(|t| t.0),
            Some(60_000),
            "the clock restarts at the reconnect"
        );
    }

    #[test]
    fn gaps_mark_discontinuities_and_restart_the_clock() {
        let p = Playlists::new(6);
        p.apply("s", 0, 1_000, vec![meta("a", 10)]);
        p.apply("s", 1, 9_999, vec![meta("a", 10)]);
        p.apply("s", 3, 50_000, vec![meta("a", 10)]);
        let parsed =
            livefarm_hls::parse_media(&p.media("s", "a", Layout::Hls, false).expect("media"))
                .expect("parses");
        let flags: Vec<bool> = parsed.segments.iter().map(|s| s.discontinuity).collect();
        assert_eq!(flags, [false, false, true]);
        let pdt: Vec<Option<UtcMillis>> = parsed
            .segments
            .iter()
            .map(|s| s.program_date_time)
            .collect();
        assert_eq!(
            pdt,
            [
                Some(UtcMillis(1_000)),
                Some(UtcMillis(3_000)),
                Some(UtcMillis(50_000))
            ]
        );
    }

    #[test]
    fn master_reports_peak_and_average_bandwidth() {
        let p = Playlists::new(6);
        p.apply("s", 0, 0, vec![meta("a", 1_000)]);
        p.apply("s", 1, 0, vec![meta("a", 3_000)]);
        let master = livefarm_hls::parse_master(&p.master("s", Layout::Hls).expect("master"))
            .expect("parses");
        assert_eq!(master.variants.len(), 1);
        let v = &master.variants[0];
        assert_eq!(v.bandwidth, 12_000);
        assert_eq!(v.average_bandwidth, Some(8_000));
        assert_eq!(v.uri, "a/index.m3u8");
        assert_eq!(v.resolution, Some((320, 180)));
    }

    #[test]
    fn recordings_keep_every_segment_and_end_as_vod() {
        let p = Playlists::new(2);
        p.set_record("s", true);
        for seq in 0..5 {
            p.apply("s", seq, 0, vec![meta("a", 10)]);
        }
        p.end_stream("s");
        let vod =
            livefarm_hls::parse_media(&p.media("s", "a", Layout::Livepeer, true).expect("vod"))
                .expect("parses");
        assert_eq!(vod.segments.len(), 5);
        assert_eq!(vod.playlist_type, Some(PlaylistType::Vod));
        assert!(vod.ended);
        assert_eq!(vod.segments[0].uri, "a/0.ts");
        let live = livefarm_hls::parse_media(&p.media("s", "a", Layout::Hls, false).expect("live"))
            .expect("parses");
        assert_eq!(live.media_sequence, 3);
        assert!(live.ended);
        assert!(p.media("other", "a", Layout::Hls, true).is_none());
    }

    #[test]
    fn recorded_sessions_have_a_vod_master_across_reconnects() {
        let p = Playlists::new(2);
        p.set_record("rec", true);
        p.apply("live", 0, 0, vec![meta("a", 10)]);
        for seq in [0, 1, 2, 5, 6] {
            p.apply("rec", seq, 0, vec![meta("a", 10), meta("b", 20)]);
        }
        // only recorded streams have a recording master
        assert!(p.recording_master("live").is_none());
        assert!(p.recording_master("none").is_none());
        let master = livefarm_hls::parse_master(&p.recording_master("rec").expect("master"))
            .expect("parses");
        let uris: Vec<&str> = master.variants.iter().map(|v| v.uri.as_str()).collect();
        assert_eq!(uris, ["a/recording.m3u8", "b/recording.m3u8"]);
        // while live the recording is an EVENT playlist that grows, then VOD once ended
        let event =
            livefarm_hls::parse_media(&p.media("rec", "b", Layout::Hls, true).expect("event"))
                .expect("parses");
        assert_eq!(event.playlist_type, Some(PlaylistType::Event));
        assert!(!event.ended);
        p.end_stream("rec");
        let vod = livefarm_hls::parse_media(&p.media("rec", "b", Layout::Hls, true).expect("vod"))
            .expect("parses");
        assert_eq!(vod.playlist_type, Some(PlaylistType::Vod));
        assert!(vod.ended);
        let seqs: Vec<&str> = vod.segments.iter().map(|s| s.uri.as_str()).collect();
        assert_eq!(seqs, ["0.ts", "1.ts", "2.ts", "5.ts", "6.ts"]);
        let flags: Vec<bool> = vod.segments.iter().map(|s| s.discontinuity).collect();
        assert_eq!(flags, [false, false, false, true, false]);
        // the live window kept only the last two
        let live =
            livefarm_hls::parse_media(&p.media("rec", "b", Layout::Hls, false).expect("live"))
                .expect("parses");
        assert_eq!(live.segments.len(), 2);
    }

    #[test]
    fn a_restored_snapshot_renders_the_same_playlists() {
        let p = Playlists::new(3);
        p.set_record("s", true);
        for seq in [0, 1, 2, 4, 5] {
            p.apply_marked(
                "s",
                seq,
                1_000 * seq as i64,
                seq == 5,
                vec![meta("source", 30), meta("a", 10 + seq)],
            );
        }
        p.apply("other", 7, 0, vec![meta("a", 10)]);
        p.end_stream("other");
        let dirty = p.take_dirty();
        assert_eq!(dirty.len(), 2);
        assert!(p.take_dirty().is_empty(), "nothing changed since");

        let restored = Playlists::new(3);
        for (id, snapshot) in dirty {
            let json = serde_json::to_vec(&snapshot).expect("serialises");
            restored.restore(&id, serde_json::from_slice(&json).expect("parses"));
        }
        for id in ["s", "other"] {
            assert_eq!(restored.master(id, Layout::Hls), p.master(id, Layout::Hls));
            assert_eq!(restored.recording_master(id), p.recording_master(id));
            for rendition in ["source", "a"] {
                for recording in [false, true] {
                    assert_eq!(
                        restored.media(id, rendition, Layout::Livepeer, recording),
                        p.media(id, rendition, Layout::Livepeer, recording),
                        "{id} {rendition} {recording}"
                    );
                }
            }
            assert_eq!(restored.is_ended(id), p.is_ended(id));
        }
        // the restored state goes on as the original does
        for playlists in [&p, &restored] {
            assert!(!playlists.apply("s", 5, 0, vec![meta("a", 10)]));
            assert!(playlists.apply("s", 6, 0, vec![meta("a", 10)]));
        }
        assert_eq!(
            restored.media("s", "a", Layout::Hls, false),
            p.media("s", "a", Layout::Hls, false)
        );
    }
}
