//! Cuts a container stream (a file, or a live FLV/MPEG-TS stream) into MPEG-TS segments at video
//! keyframes, once a segment has reached the target duration. Timestamps stay continuous and are
//! moved so the stream starts at 1.4 s (as FFmpeg's MPEG-TS muxer does), which keeps decode
//! timestamps of B-frame streams positive.

use std::path::Path;

use bytes::Bytes;
use ffmpeg::format::context::Input;
use ffmpeg::{codec, media, Packet, Rational};
use ffmpeg_next as ffmpeg;

use crate::error::{ff, MediaError};
use crate::io::{open_memory_output, open_stream_input, InputFormat};

const TICK: Rational = Rational(1, 90_000);
/// Where the first timestamp of a segmented stream lands (90 kHz).
pub const START_OFFSET: i64 = 126_000;

/// One source segment, remuxed to MPEG-TS.
#[derive(Debug, Clone)]
pub struct SourceSegment {
    pub seq: u64,
    pub data: Bytes,
    /// First video pts (90 kHz).
    pub start_pts: i64,
    /// Decode timestamp of the first video packet in the source's own clock (90 kHz, before
    /// the shift onto the stream's timeline): what a sender of the source saw, so it can tell
    /// which of its keyframes started the segment.
    pub source_dts: i64,
    pub duration: f64,
    /// The source's keyframes are further apart than the cap: this segment is too long.
    pub too_long: bool,
}

/// Facts about the source needed for playlists.
#[derive(Debug, Clone)]
pub struct SourceInfo {
    pub width: u32,
    pub height: u32,
    pub frame_rate: (i32, i32),
    pub video_codec: codec::Id,
    pub has_audio: bool,
    pub duration: Option<f64>,
    /// RFC 6381 codecs of the source (`avc1.640028,mp4a.40.2`), when known.
    pub codecs: Option<String>,
}

pub struct Segmenter {
    input: Input,
    video_index: usize,
    audio_index: Option<usize>,
    time_bases: Vec<Rational>,
    params: Vec<(usize, codec::Parameters)>,
    target: i64,
    max: i64,
    offset: Option<i64>,
    /// Where the first timestamp lands (90 kHz): [`START_OFFSET`], or where the previous
    /// publish session of the same stream ended.
    start_at: i64,
    frame_ticks: i64,
    seq: u64,
    current: Vec<(usize, Packet)>,
    current_start: Option<i64>,
    /// `current_start`'s packet's decode timestamp in the source's clock.
    current_source_dts: Option<i64>,
    last_video_pts: Option<i64>,
    finished: bool,
    info: SourceInfo,
}

impl Segmenter {
    /// Opens a media file. `target` is the segment duration in seconds; segments are cut at the
    /// first keyframe after it, and flagged `too_long` past `3 x target`.
    pub fn open_file(path: &Path, target: f64) -> Result<Self, MediaError> {
        crate::init()?;
        let input = ffmpeg::format::input(path).map_err(|e| MediaError::Input {
            path: path.display().to_string(),
            reason: ff(e),
        })?;
        Self::from_input(input, target).map_err(|reason| MediaError::Input {
            path: path.display().to_string(),
            reason,
        })
    }

    /// Opens a live stream read from `reader` (FLV from RTMP, MPEG-TS from SRT). Blocks until
    /// the demuxer has seen both streams, so call it where blocking is fine.
    pub fn open_stream<R>(reader: R, format: InputFormat, target: f64) -> Result<Self, MediaError>
    where
        R: std::io::Read + Send + 'static,
    {
        crate::init()?;
        let input = open_stream_input(reader, format).map_err(|e| MediaError::Input {
            path: "live stream".to_string(),
            reason: ff(e),
        })?;
        Self::from_input(input, target).map_err(|reason| MediaError::Input {
            path: "live stream".to_string(),
            reason,
        })
    }

    /// Continues the numbering and the timeline of an earlier stream: the first segment gets
    /// `seq` and its first timestamp lands at `start_pts` (90 kHz). Call before the first
    /// [`Segmenter::next_segment`]; later calls change nothing.
    pub fn continue_from(&mut self, seq: u64, start_pts: i64) {
        if self.offset.is_none() {
            self.seq = seq;
            self.start_at = start_pts;
        }
    }

    /// The timestamp (90 kHz) where the next segment will start: the end of the last one.
    pub fn next_start_pts(&self) -> i64 {
        self.last_video_pts
            .map_or(self.start_at, |last| last + self.frame_ticks)
    }

    /// Wraps an opened demuxer (for live streams: an input over a pipe or socket).
    pub fn from_input(input: Input, target: f64) -> Result<Self, String> {
        let video = input
            .streams()
            .best(media::Type::Video)
            .ok_or_else(|| "no video stream".to_string())?;
        let video_index = video.index();
        let rate = {
            let avg = video.avg_frame_rate();
            if avg.numerator() > 0 && avg.denominator() > 0 {
                avg
            } else {
                video.rate()
            }
        };
        let vparams = video.parameters();
        // SAFETY: reading plain fields of valid codec parameters.
        let (width, height) = unsafe {
            (
                (*vparams.as_ptr()).width as u32,
                (*vparams.as_ptr()).height as u32,
            )
        };
        let audio_index = input.streams().best(media::Type::Audio).map(|s| s.index());
        let time_bases = input.streams().map(|s| s.time_base()).collect();
        let mut params = vec![(video_index, vparams.clone())];
        if let Some(index) = audio_index {
            let stream = input
                .stream(index)
                .expect("index came from the stream list");
            params.push((index, stream.parameters()));
        }
        let duration = (input.duration() > 0)
            .then(|| input.duration() as f64 / f64::from(ffmpeg::ffi::AV_TIME_BASE));
        let mut codecs =
            livefarm_hls::codecs::avc1_from_extradata(crate::rendition::extradata_of(&vparams))
                .ok();
        if let (Some(video), Some(audio_index)) = (codecs.as_mut(), audio_index) {
            let audio = input
                .stream(audio_index)
                .expect("index came from the stream list");
            if audio.parameters().id() == codec::Id::AAC {
                video.push_str(",mp4a.40.2");
            }
        }
        let frame_ticks = if rate.numerator() > 0 {
            (90_000 * i64::from(rate.denominator()) / i64::from(rate.numerator())).max(1)
        } else {
            3000
        };
        let target_ticks = (target.max(0.1) * 90_000.0) as i64;
        Ok(Segmenter {
            video_index,
            audio_index,
            time_bases,
            params,
            target: target_ticks,
            max: target_ticks * 3,
            offset: None,
            start_at: START_OFFSET,
            frame_ticks,
            seq: 0,
            current: Vec::new(),
            current_start: None,
            current_source_dts: None,
            last_video_pts: None,
            finished: false,
            info: SourceInfo {
                width,
                height,
                frame_rate: (rate.numerator(), rate.denominator()),
                video_codec: vparams.id(),
                has_audio: audio_index.is_some(),
                duration,
                codecs,
            },
            input,
        })
    }

    pub fn info(&self) -> &SourceInfo {
        &self.info
    }

    fn to_ticks(&self, stream: usize, ts: i64) -> i64 {
        ts.rescale(self.time_bases[stream], TICK)
    }

    /// The next segment, `None` at the end of the stream.
    pub fn next_segment(&mut self) -> Option<Result<SourceSegment, MediaError>> {
        if self.finished {
            return None;
        }
        loop {
            let mut packet = Packet::empty();
            match packet.read(&mut self.input) {
                Ok(()) => {}
                Err(ffmpeg::Error::Eof) => {
                    self.finished = true;
                    return self.cut(None);
                }
                Err(e) => {
                    // A damaged tail ends the stream; what was read so far is still a segment.
                    tracing::warn!(error = %ff(e), "source read failed; ending stream");
                    self.finished = true;
                    return self.cut(None);
                }
            }
            let stream = packet.stream();
            if stream != self.video_index && Some(stream) != self.audio_index {
                continue;
            }
            let ts = packet.dts().or(packet.pts());
            let Some(ts) = ts else {
                if stream == self.video_index {
                    // Without a timestamp a video packet cannot be placed; skip it.
                    continue;
                }
                self.current.push((stream, packet));
                continue;
            };
            let ticks = self.to_ticks(stream, ts);
            let offset = *self.offset.get_or_insert(self.start_at - ticks);
            if stream == self.video_index {
                let pts = packet
                    .pts()
                    .map(|p| self.to_ticks(stream, p) + offset)
                    .unwrap_or(ticks + offset);
                if packet.is_key() {
                    if let Some(start) = self.current_start {
                        if pts - start >= self.target {
                            let segment = self.cut(Some(pts));
                            self.current_start = Some(pts);
                            self.current_source_dts = Some(ticks);
                            self.current.push((stream, packet));
                            self.last_video_pts = Some(pts);
                            return segment;
                        }
                    }
                }
                if self.current_start.is_none() {
                    self.current_start = Some(pts);
                    self.current_source_dts = Some(ticks);
                }
                self.last_video_pts = Some(self.last_video_pts.map_or(pts, |l| l.max(pts)));
            }
            self.current.push((stream, packet));
        }
    }

    /// Muxes the packets gathered so far into one segment ending at `next_start`.
    fn cut(&mut self, next_start: Option<i64>) -> Option<Result<SourceSegment, MediaError>> {
        let start = self.current_start?;
        let end =
            next_start.unwrap_or_else(|| self.last_video_pts.unwrap_or(start) + self.frame_ticks);
        let packets = std::mem::take(&mut self.current);
        let result = self.mux(packets).map(|data| {
            let segment = SourceSegment {
                seq: self.seq,
                data: Bytes::from(data),
                start_pts: start,
                source_dts: self
                    .current_source_dts
                    .unwrap_or(start - self.offset.unwrap_or(0)),
                duration: (end - start) as f64 / 90_000.0,
                too_long: end - start > self.max,
            };
            self.seq += 1;
            segment
        });
        Some(result)
    }

    fn mux(&self, packets: Vec<(usize, Packet)>) -> Result<Vec<u8>, MediaError> {
        let error = |reason: String| MediaError::Output {
            path: "segment".to_string(),
            reason,
        };
        let (mut output, buffer) = open_memory_output("mpegts").map_err(|e| error(ff(e)))?;
        let mut map = Vec::new();
        for (input_index, params) in &self.params {
            let mut stream = output
                .add_stream(ffmpeg::encoder::find(codec::Id::None))
                .map_err(|e| error(ff(e)))?;
            stream.set_parameters(params.clone());
            stream.set_time_base(TICK);
            // SAFETY: clearing the codec tag lets the TS muxer pick its own.
            unsafe { (*(*stream.as_mut_ptr()).codecpar).codec_tag = 0 };
            map.push(*input_index);
        }
        output.write_header().map_err(|e| error(ff(e)))?;
        let offset = self.offset.unwrap_or(0);
        for (input_index, mut packet) in packets {
            let Some(out_index) = map.iter().position(|i| *i == input_index) else {
                continue;
            };
            let tb = self.time_bases[input_index];
            packet.rescale_ts(tb, TICK);
            if let Some(pts) = packet.pts() {
                packet.set_pts(Some(pts + offset));
            }
            if let Some(dts) = packet.dts() {
                packet.set_dts(Some(dts + offset));
            }
            let out_tb = output
                .stream(out_index)
                .map(|s| s.time_base())
                .unwrap_or(TICK);
            packet.rescale_ts(TICK, out_tb);
            packet.set_stream(out_index);
            packet.set_position(-1);
            packet
                .write_interleaved(&mut output)
                .map_err(|e| error(ff(e)))?;
        }
        output.write_trailer().map_err(|e| error(ff(e)))?;
        drop(output);
        Ok(buffer.take())
    }
}

impl Iterator for Segmenter {
    type Item = Result<SourceSegment, MediaError>;
    fn next(&mut self) -> Option<Self::Item> {
        self.next_segment()
    }
}

use ffmpeg::Rescale;
