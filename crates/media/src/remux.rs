//! Remuxing a recording: MPEG-TS segments (one rendition of a session, in order) into one MP4
//! with `faststart` (the index before the media, so players start before the whole file is
//! downloaded). Packets are copied, never decoded: H.264 and AAC go in as they are (the MP4
//! muxer converts Annex B and ADTS itself).
//!
//! Segments may restart their timestamps (a transcoder that numbers each segment from zero)
//! or leave gaps (a lost segment): a segment whose first timestamp is not where the previous
//! one ended, give or take [`JUMP_TOLERANCE_US`], is shifted to follow it, so the MP4 has
//! one continuous timeline.

use std::path::{Path, PathBuf};

use ffmpeg::mathematics::Rescale;
use ffmpeg::{format, media, Rational};
use ffmpeg_next as ffmpeg;

use crate::error::{ff, MediaError};

/// A segment's start this far (µs) from where the previous one ended counts as continuous.
pub const JUMP_TOLERANCE_US: i64 = 500_000;

/// What [`remux_ts_to_mp4`] wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct RemuxReport {
    /// Seconds of media in the MP4.
    pub duration: f64,
    /// Segments copied (unreadable ones are skipped).
    pub segments: usize,
    /// Segments skipped because they could not be read.
    pub skipped: usize,
    /// Whether the MP4 has a video and an audio track.
    pub has_video: bool,
    pub has_audio: bool,
}

/// One output track: where it maps from and how far it got.
struct Track {
    out_index: usize,
    in_time_base: Rational,
    /// Last DTS written, in the output time base, to keep DTS strictly increasing.
    last_dts: Option<i64>,
}

const AV_US: Rational = Rational(1, 1_000_000);

/// Copies the video and audio of `segments` (MPEG-TS files, in order) into an MP4 at
/// `output`. The first segment decides the tracks: its first video and first audio stream.
/// Fails if no segment can be read or the MP4 cannot be written.
pub fn remux_ts_to_mp4(segments: &[PathBuf], output: &Path) -> Result<RemuxReport, MediaError> {
    let out_err = |e: ffmpeg::Error| MediaError::Output {
        path: output.display().to_string(),
        reason: ff(e),
    };
    let mut octx: Option<(format::context::Output, Vec<Option<Track>>)> = None;
    let mut report = RemuxReport {
        duration: 0.0,
        segments: 0,
        skipped: 0,
        has_video: false,
        has_audio: false,
    };
    // where the previous segment ended and the shift applied to it, µs
    let mut end_us: Option<i64> = None;
    let mut start_us: Option<i64> = None;
    let mut shift_us: i64 = 0;
    for path in segments {
        let mut ictx = match format::input(path) {
            Ok(ictx) => ictx,
            Err(error) => {
                tracing::warn!(path = %path.display(), error = %ff(error), "recording segment unreadable; skipped");
                report.skipped += 1;
                continue;
            }
        };
        if octx.is_none() {
            let mut out = format::output_as(output, "mp4").map_err(out_err)?;
            let mut tracks: Vec<Option<Track>> = Vec::new();
            let video = ictx.streams().best(media::Type::Video).map(|s| s.index());
            let audio = ictx.streams().best(media::Type::Audio).map(|s| s.index());
            for stream in ictx.streams() {
                let wanted = Some(stream.index()) == video || Some(stream.index()) == audio;
                if !wanted {
                    tracks.push(None);
                    continue;
                }
                let mut ost = out
                    .add_stream(ffmpeg::encoder::find(ffmpeg::codec::Id::None))
                    .map_err(out_err)?;
                ost.set_parameters(stream.parameters());
                // let the muxer pick a tag valid for MP4 (TS tags are not)
                unsafe {
                    (*ost.parameters().as_mut_ptr()).codec_tag = 0;
                }
                tracks.push(Some(Track {
                    out_index: ost.index(),
                    in_time_base: stream.time_base(),
                    last_dts: None,
                }));
            }
            report.has_video = video.is_some();
            report.has_audio = audio.is_some();
            let mut options = ffmpeg::Dictionary::new();
            options.set("movflags", "+faststart");
            out.write_header_with(options).map_err(out_err)?;
            octx = Some((out, tracks));
        }
        let Some((out, tracks)) = octx.as_mut() else {
            continue;
        };
        // read the segment's packets first: its first timestamp decides the shift
        let mut packets = Vec::new();
        for (stream, packet) in ictx.packets() {
            let index = stream.index();
            if tracks.get(index).is_some_and(Option::is_some) {
                packets.push((index, packet));
            }
        }
        let to_us = |index: usize, ts: i64, tracks: &[Option<Track>]| {
            tracks[index]
                .as_ref()
                .map(|t| ts.rescale(t.in_time_base, AV_US))
        };
        let first = packets
            .iter()
            .filter_map(|(i, p)| p.dts().or(p.pts()).and_then(|ts| to_us(*i, ts, tracks)))
            .min();
        let Some(first) = first else {
            report.skipped += 1;
            continue;
        };
        match end_us {
            None => shift_us = -first,
            Some(end) if (first + shift_us - end).abs() > JUMP_TOLERANCE_US => {
                shift_us = end - first;
            }
            Some(_) => {}
        }
        start_us.get_or_insert(first + shift_us);
        let mut seg_end = end_us.unwrap_or(0);
        for (index, mut packet) in packets {
            let Some(track) = tracks[index].as_mut() else {
                continue;
            };
            let out_tb = out
                .stream(track.out_index)
                .map(|s| s.time_base())
                .unwrap_or(AV_US);
            let shift =
                |ts: i64| (ts.rescale(track.in_time_base, AV_US) + shift_us).rescale(AV_US, out_tb);
            let pts = packet.pts().map(shift);
            let mut dts = packet.dts().map(shift).or(pts);
            if let (Some(d), Some(last)) = (dts, track.last_dts) {
                if d <= last {
                    dts = Some(last + 1);
                }
            }
            let pts = match (pts, dts) {
                (Some(p), Some(d)) if p < d => Some(d),
                (p, _) => p,
            };
            track.last_dts = dts;
            let duration = packet.duration().rescale(track.in_time_base, out_tb);
            if let Some(p) = pts {
                let end = p.rescale(out_tb, AV_US) + duration.rescale(out_tb, AV_US);
                seg_end = seg_end.max(end);
            }
            packet.set_pts(pts);
            packet.set_dts(dts);
            packet.set_duration(duration);
            packet.set_stream(track.out_index);
            packet.set_position(-1);
            packet.write_interleaved(out).map_err(out_err)?;
        }
        end_us = Some(seg_end);
        report.segments += 1;
    }
    let Some((mut out, _)) = octx else {
        return Err(MediaError::Input {
            path: segments
                .first()
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
            reason: "no readable segment".to_owned(),
        });
    };
    out.write_trailer().map_err(out_err)?;
    report.duration = (end_us.unwrap_or(0) - start_us.unwrap_or(0)).max(0) as f64 / 1e6;
    Ok(report)
}

/// The duration of a media file (seconds) as its container says, `None` if unreadable.
pub fn probe_duration(path: &Path) -> Option<f64> {
    let ictx = format::input(path).ok()?;
    let duration = ictx.duration();
    (duration > 0).then(|| duration as f64 / f64::from(ffmpeg::ffi::AV_TIME_BASE))
}

/// Video and audio of a media file: whether each is there, and the duration (seconds).
pub fn probe_tracks(path: &Path) -> Option<(bool, bool, f64)> {
    let ictx = format::input(path).ok()?;
    let video = ictx.streams().best(media::Type::Video).is_some();
    let audio = ictx.streams().best(media::Type::Audio).is_some();
    let duration = ictx.duration().max(0) as f64 / f64::from(ffmpeg::ffi::AV_TIME_BASE);
    Some((video, audio, duration))
}
