//! Media playlists (VOD and live) and the sliding live window.

use std::collections::VecDeque;
use std::fmt::Write;

use crate::datetime::UtcMillis;
use crate::render::{decimal3, uri_line};

/// One media segment.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Segment {
    pub uri: String,
    /// Seconds; written with 3 decimals.
    pub duration: f64,
    /// An `EXT-X-DISCONTINUITY` precedes this segment.
    pub discontinuity: bool,
    /// `EXT-X-PROGRAM-DATE-TIME` of the segment's first sample.
    pub program_date_time: Option<UtcMillis>,
    /// The `EXTINF` title; CR and LF are dropped when rendering, and
    /// trailing whitespace does not survive a parse.
    pub title: Option<String>,
}

impl Segment {
    /// A segment with only a URI and a duration.
    pub fn new(uri: impl Into<String>, duration: f64) -> Self {
        Segment {
            uri: uri.into(),
            duration,
            ..Segment::default()
        }
    }
}

/// `EXT-X-PLAYLIST-TYPE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PlaylistType {
    Vod,
    Event,
}

impl PlaylistType {
    pub fn as_str(self) -> &'static str {
        match self {
            PlaylistType::Vod => "VOD",
            PlaylistType::Event => "EVENT",
        }
    }
}

/// A media playlist. A live one has `ended == false` and no playlist type.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct MediaPlaylist {
    /// Lower bound for `EXT-X-TARGETDURATION`. The rendered value is the
    /// larger of this and [`MediaPlaylist::required_target_duration`], so the
    /// RFC 8216 rule always holds; a live playlist sets it so that the target
    /// stays constant while segments slide (the RFC forbids it changing).
    pub target_duration: Option<u32>,
    /// Sequence number of the first segment (`EXT-X-MEDIA-SEQUENCE`).
    pub media_sequence: u64,
    /// Discontinuities before the first segment (`EXT-X-DISCONTINUITY-SEQUENCE`);
    /// written only when not 0.
    pub discontinuity_sequence: u64,
    pub playlist_type: Option<PlaylistType>,
    /// `EXT-X-ENDLIST`: no more segments will be added.
    pub ended: bool,
    pub segments: Vec<Segment>,
}

/// Whole seconds a target duration must be for a segment of `duration`
/// seconds: the ceiling of the duration as rendered (to the millisecond), so
/// the rendered duration rounded to the nearest integer is never above it.
pub fn target_for(duration: f64) -> u32 {
    // work from the rendered text so that target and EXTINF always agree
    let text = decimal3(duration);
    let (whole, frac) = text.split_once('.').unwrap_or((text.as_str(), ""));
    let whole: u32 = whole.parse().unwrap_or(u32::MAX);
    if frac.bytes().any(|b| b != b'0') {
        whole.saturating_add(1)
    } else {
        whole
    }
}

impl MediaPlaylist {
    /// The smallest valid target duration for the segments present (at least 1).
    pub fn required_target_duration(&self) -> u32 {
        self.segments
            .iter()
            .map(|s| target_for(s.duration))
            .max()
            .unwrap_or(0)
            .max(1)
    }

    /// The `EXT-X-TARGETDURATION` value [`MediaPlaylist::render`] writes.
    pub fn effective_target_duration(&self) -> u32 {
        self.required_target_duration()
            .max(self.target_duration.unwrap_or(0))
    }

    /// Total duration of the segments, in seconds.
    pub fn duration(&self) -> f64 {
        self.segments.iter().map(|s| s.duration).sum()
    }

    /// Renders the playlist (version 3: decimal durations).
    pub fn render(&self) -> String {
        let mut out = String::from("#EXTM3U\n#EXT-X-VERSION:3\n");
        // writing to a String cannot fail
        let _ = writeln!(
            out,
            "#EXT-X-TARGETDURATION:{}",
            self.effective_target_duration()
        );
        let _ = writeln!(out, "#EXT-X-MEDIA-SEQUENCE:{}", self.media_sequence);
        if self.discontinuity_sequence != 0 {
            let _ = writeln!(
                out,
                "#EXT-X-DISCONTINUITY-SEQUENCE:{}",
                self.discontinuity_sequence
            );
        }
        if let Some(kind) = self.playlist_type {
            let _ = writeln!(out, "#EXT-X-PLAYLIST-TYPE:{}", kind.as_str());
        }
        for s in &self.segments {
            if s.discontinuity {
                out.push_str("#EXT-X-DISCONTINUITY\n");
            }
            if let Some(time) = s.program_date_time {
                let _ = writeln!(out, "#EXT-X-PROGRAM-DATE-TIME:{time}");
            }
            let title: String = s
                .title
                .as_deref()
                .unwrap_or_default()
                .chars()
                .filter(|c| !matches!(c, '\r' | '\n'))
                .collect();
            let _ = writeln!(out, "#EXTINF:{},{title}", decimal3(s.duration));
            out.push_str(&uri_line(&s.uri));
            out.push('\n');
        }
        if self.ended {
            out.push_str("#EXT-X-ENDLIST\n");
        }
        out
    }
}

/// A live playlist that keeps the last `capacity` segments.
///
/// When a segment slides out, the media sequence grows by one, and the
/// discontinuity sequence grows by one if that segment carried a
/// discontinuity (its tag leaves the playlist with it). The target duration
/// never shrinks, so it stays constant once the longest segment has been seen.
#[derive(Debug, Clone, PartialEq)]
pub struct LiveWindow {
    capacity: usize,
    segments: VecDeque<Segment>,
    media_sequence: u64,
    discontinuity_sequence: u64,
    target_duration: u32,
    ended: bool,
}

impl Default for LiveWindow {
    fn default() -> Self {
        LiveWindow::new(LiveWindow::DEFAULT_CAPACITY)
    }
}

impl LiveWindow {
    /// go-livepeer's `LIVE_LIST_LENGTH`.
    pub const DEFAULT_CAPACITY: usize = 6;

    /// An empty window holding at most `capacity` segments (at least 1).
    pub fn new(capacity: usize) -> Self {
        LiveWindow {
            capacity: capacity.max(1),
            segments: VecDeque::new(),
            media_sequence: 0,
            discontinuity_sequence: 0,
            target_duration: 1,
            ended: false,
        }
    }

    /// Sets the sequence number of the next segment pushed into an empty window.
    pub fn starting_at(mut self, media_sequence: u64) -> Self {
        if self.segments.is_empty() {
            self.media_sequence = media_sequence;
        }
        self
    }

    /// A window of `capacity` holding what [`LiveWindow::playlist`] gave (to restore a saved
    /// window): its segments, sequence numbers, target duration and end.
    pub fn from_playlist(capacity: usize, playlist: MediaPlaylist) -> Self {
        let mut window = LiveWindow::new(capacity);
        window.media_sequence = playlist.media_sequence;
        window.discontinuity_sequence = playlist.discontinuity_sequence;
        window.target_duration = playlist.target_duration.unwrap_or(1).max(1);
        window.ended = playlist.ended;
        for segment in playlist.segments {
            window.push(segment);
        }
        window
    }

    /// Sets the minimum target duration (the segmenter's cap), so that the
    /// advertised target does not grow when the first long segment arrives.
    pub fn with_target_duration(mut self, seconds: u32) -> Self {
        self.target_duration = self.target_duration.max(seconds);
        self
    }

    /// Appends a segment, dropping the oldest beyond the capacity.
    pub fn push(&mut self, segment: Segment) {
        self.target_duration = self.target_duration.max(target_for(segment.duration));
        self.segments.push_back(segment);
        while self.segments.len() > self.capacity {
            if let Some(gone) = self.segments.pop_front() {
                self.media_sequence += 1;
                if gone.discontinuity {
                    self.discontinuity_sequence += 1;
                }
            }
        }
    }

    /// Marks the stream finished (`EXT-X-ENDLIST`).
    pub fn end(&mut self) {
        self.ended = true;
    }

    pub fn is_ended(&self) -> bool {
        self.ended
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Segments in the window, oldest first.
    pub fn segments(&self) -> impl ExactSizeIterator<Item = &Segment> {
        self.segments.iter()
    }

    /// Sequence number of the oldest segment in the window.
    pub fn media_sequence(&self) -> u64 {
        self.media_sequence
    }

    /// Discontinuity tags that have slid out of the window.
    pub fn discontinuity_sequence(&self) -> u64 {
        self.discontinuity_sequence
    }

    /// Sequence number the next pushed segment gets.
    pub fn next_sequence(&self) -> u64 {
        self.media_sequence + self.segments.len() as u64
    }

    /// The window as a playlist.
    pub fn playlist(&self) -> MediaPlaylist {
        MediaPlaylist {
            target_duration: Some(self.target_duration),
            media_sequence: self.media_sequence,
            discontinuity_sequence: self.discontinuity_sequence,
            playlist_type: None,
            ended: self.ended,
            segments: self.segments.iter().cloned().collect(),
        }
    }

    /// Renders [`LiveWindow::playlist`].
    pub fn render(&self) -> String {
        self.playlist().render()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_a_vod_playlist() {
        let playlist = MediaPlaylist {
            playlist_type: Some(PlaylistType::Vod),
            ended: true,
            segments: vec![
                Segment::new("0.ts", 2.0),
                Segment {
                    discontinuity: true,
                    program_date_time: Some(UtcMillis(1_714_564_800_250)),
                    title: Some("live".to_owned()),
                    ..Segment::new("1.ts", 2.5)
                },
                Segment::new("2.ts", 1.9999),
            ],
            ..MediaPlaylist::default()
        };
        let expected = "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:3\n\
#EXT-X-MEDIA-SEQUENCE:0\n#EXT-X-PLAYLIST-TYPE:VOD\n#EXTINF:2.000,\n0.ts\n\
#EXT-X-DISCONTINUITY\n#EXT-X-PROGRAM-DATE-TIME:2024-05-01T12:00:00.250Z\n\
#EXTINF:2.500,live\n1.ts\n#EXTINF:2.000,\n2.ts\n#EXT-X-ENDLIST\n";
        assert_eq!(playlist.render(), expected);
        assert!((playlist.duration() - 6.4999).abs() < 1e-9);
    }

    #[test]
    fn target_duration_is_never_below_any_rounded_segment() {
        for (durations, want) in [
            (vec![2.0, 2.0], 2),
            (vec![2.0004], 2), // renders as 2.000
            (vec![2.0006], 3), // renders as 2.001
            (vec![2.4, 1.0], 3),
            (vec![0.2], 1),
            (vec![], 1),
            (vec![f64::NAN, -3.0], 1),
        ] {
            let playlist = MediaPlaylist {
                segments: durations.iter().map(|d| Segment::new("s.ts", *d)).collect(),
                ..MediaPlaylist::default()
            };
            assert_eq!(playlist.effective_target_duration(), want, "{durations:?}");
        }
        let floor = MediaPlaylist {
            target_duration: Some(4),
            segments: vec![Segment::new("s.ts", 2.0)],
            ..MediaPlaylist::default()
        };
        assert_eq!(floor.effective_target_duration(), 4);
        let raised = MediaPlaylist {
            target_duration: Some(1),
            segments: vec![Segment::new("s.ts", 5.5)],
            ..MediaPlaylist::default()
        };
        assert_eq!(raised.effective_target_duration(), 6);
    }

    #[test]
    fn live_window_slides_sequences() {
        let mut window = LiveWindow::new(3).starting_at(10);
        for i in 0..5u64 {
            let mut seg = Segment::new(format!("{}.ts", 10 + i), 2.0);
            // discontinuities before segments 11 and 13
            seg.discontinuity = i == 1 || i == 3;
            window.push(seg);
        }
        // 12, 13, 14 remain: 10 and 11 slid out, 11 took one discontinuity
        assert_eq!(window.media_sequence(), 12);
        assert_eq!(window.discontinuity_sequence(), 1);
        assert_eq!(window.next_sequence(), 15);
        let uris: Vec<&str> = window.segments().map(|s| s.uri.as_str()).collect();
        assert_eq!(uris, ["12.ts", "13.ts", "14.ts"]);
        let text = window.render();
        assert!(text.contains("#EXT-X-MEDIA-SEQUENCE:12\n"), "{text}");
        assert!(text.contains("#EXT-X-DISCONTINUITY-SEQUENCE:1\n"), "{text}");
        assert!(!text.contains("ENDLIST"));
        window.end();
        assert!(window.render().ends_with("#EXT-X-ENDLIST\n"));

        // a window restored from its playlist is the same window, and slides the same way
        let mut restored = LiveWindow::from_playlist(3, window.playlist());
        assert_eq!(restored, window);
        let mut seg = Segment::new("15.ts", 2.0);
        seg.discontinuity = true;
        for w in [&mut window, &mut restored] {
            w.push(seg.clone());
            w.push(Segment::new("16.ts", 2.0));
        }
        assert_eq!(restored, window);
        assert_eq!(restored.discontinuity_sequence(), 2);
    }

    #[test]
    fn live_window_target_never_shrinks() {
        let mut window = LiveWindow::new(2).with_target_duration(2);
        window.push(Segment::new("0.ts", 2.0));
        assert_eq!(window.playlist().effective_target_duration(), 2);
        window.push(Segment::new("1.ts", 3.7));
        window.push(Segment::new("2.ts", 2.0));
        window.push(Segment::new("3.ts", 2.0));
        // the 3.7 s segment is gone, but the target stays at 4
        assert!(window.segments().all(|s| s.duration == 2.0));
        assert_eq!(window.playlist().effective_target_duration(), 4);
        assert_eq!(LiveWindow::default().capacity(), 6);
        assert_eq!(LiveWindow::new(0).capacity(), 1);
    }
}
