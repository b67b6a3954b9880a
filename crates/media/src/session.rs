//! A transcode session: one per live stream, fed segment by segment.
//!
//! The session decodes each segment once and hands every decoded frame to one thread per
//! rendition (scale, frame-rate conversion, encode, mux). The decoder, the audio encoder, the
//! scalers and the frame-rate state live as long as the session; video encoders are opened per
//! segment so every output segment starts with an IDR frame and decodes on its own (FFmpeg 5.1's
//! libx264 cannot be flushed and reused).

use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::Arc;
use std::thread::JoinHandle;

use bytes::Bytes;
use ffmpeg::{codec, frame, media, Packet, Rational};
use ffmpeg_next as ffmpeg;
use livefarm_profiles::Profile;

use crate::accel::{Device, GpuLease, StagePlan};
use crate::audio::AudioTranscoder;
use crate::encode::EncoderSettings;
use crate::error::{ff, MediaError, SegmentError};
use crate::io::{open_memory_input, InputFormat};
use crate::rendition::{AudioTrack, RenditionMsg, RenditionOutput, RenditionWorker, SharedFrame};

const TICK: Rational = Rational(1, 90_000);
/// A forward jump larger than this between segments is a discontinuity, not a gap.
const MAX_FORWARD_JUMP: i64 = 10 * 90_000;

/// Video codecs a session decodes (as Livepeer's transcoders do).
const SUPPORTED_VIDEO: [codec::Id; 4] = [
    codec::Id::H264,
    codec::Id::HEVC,
    codec::Id::VP8,
    codec::Id::VP9,
];

/// What a session needs to start.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    pub profiles: Vec<Profile>,
    pub settings: EncoderSettings,
}

/// One segment handed to a session.
#[derive(Debug, Clone)]
pub struct SegmentInput {
    pub seq: u64,
    pub data: Bytes,
    pub format: InputFormat,
}

/// How audio reached the renditions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AudioMode {
    None,
    Passthrough,
    Transcoded,
}

/// Everything one segment produced.
#[derive(Debug, Clone)]
pub struct SegmentOutput {
    pub seq: u64,
    pub renditions: Vec<RenditionOutput>,
    pub decoded_frames: u64,
    /// Decoded input pixels (frames x width x height).
    pub decoded_pixels: u64,
    pub source_width: u32,
    pub source_height: u32,
    /// First presentation timestamp (90 kHz) of the segment's output.
    pub start_pts: i64,
    /// Span of the segment's video, seconds.
    pub duration: f64,
    /// Frames dropped because their timestamps went backwards.
    pub dropped_frames: u64,
    /// The decoder was rebuilt for this segment (codec change).
    pub reinitialized: bool,
    /// A timestamp jump was smoothed over (publisher restart, broken clock).
    pub discontinuity: bool,
    pub audio: AudioMode,
    /// Where the stages ran for this segment.
    pub plan: StagePlan,
}

struct RenditionHandle {
    name: String,
    inbox: Option<SyncSender<RenditionMsg>>,
    thread: Option<JoinHandle<()>>,
}

struct VideoDecoder {
    decoder: ffmpeg::decoder::Video,
    codec: codec::Id,
    hw: bool,
}

/// A per-stream transcoder. Not `Sync`: feed it from one thread (or behind a mutex).
pub struct TranscodeSession {
    renditions: Vec<RenditionHandle>,
    settings: EncoderSettings,
    decoder: Option<VideoDecoder>,
    audio: Option<AudioTranscoder>,
    plan: StagePlan,
    _lease: Option<GpuLease>,
    /// Last emitted video pts (output clock) and the offset from input to output clock.
    last_pts: Option<i64>,
    offset: i64,
    frame_ticks: i64,
}

/// Per-segment bookkeeping on the decode side.
struct SegmentState {
    pending: Option<(Arc<SharedFrame>, i64)>,
    first_pts: Option<i64>,
    decoded_frames: u64,
    decoded_pixels: u64,
    dropped: u64,
    discontinuity: bool,
    source_rate: Rational,
    size: (u32, u32),
    decode_errors: u32,
    last_decode_error: Option<String>,
}

impl TranscodeSession {
    /// Starts a session. `lease` places its stages on a GPU (None = CPU only).
    pub fn new(config: SessionConfig, lease: Option<GpuLease>) -> Result<Self, MediaError> {
        ffmpeg::init().map_err(|e| MediaError::Init(ff(e)))?;
        if config.profiles.is_empty() {
            return Err(MediaError::NoProfiles);
        }
        for profile in &config.profiles {
            profile.validate()?;
        }
        if ffmpeg::encoder::find_by_name("libx264").is_none() {
            return Err(MediaError::MissingEncoder("libx264".to_string()));
        }
        let plan = lease.as_ref().map(|l| l.plan).unwrap_or(StagePlan::CPU);
        let nvenc_gpu = match plan.encode {
            Device::Gpu(index) => Some(index),
            Device::Cpu => None,
        };
        let mut renditions = Vec::with_capacity(config.profiles.len());
        for profile in &config.profiles {
            // A few frames of slack: decoding runs ahead of the slowest encoder, bounded.
            let (tx, rx) = mpsc::sync_channel::<RenditionMsg>(8);
            let (worker_profile, worker_settings) = (profile.clone(), config.settings.clone());
            let thread = std::thread::Builder::new()
                .name(format!("rendition-{}", profile.name))
                // Built on its own thread: FFmpeg's scaler context is not Send.
                .spawn(move || {
                    RenditionWorker::new(worker_profile, worker_settings, nvenc_gpu).run(rx)
                })
                .map_err(|e| MediaError::Init(format!("cannot start rendition thread: {e}")))?;
            renditions.push(RenditionHandle {
                name: profile.name.clone(),
                inbox: Some(tx),
                thread: Some(thread),
            });
        }
        Ok(TranscodeSession {
            renditions,
            settings: config.settings,
            decoder: None,
            audio: None,
            plan,
            _lease: lease,
            last_pts: None,
            offset: 0,
            frame_ticks: 3600,
        })
    }

    pub fn plan(&self) -> StagePlan {
        self.plan
    }

    pub fn rendition_names(&self) -> Vec<String> {
        self.renditions.iter().map(|r| r.name.clone()).collect()
    }

    /// Transcodes one segment into every rendition. An error concerns this segment only.
    pub fn transcode(&mut self, input: SegmentInput) -> Result<SegmentOutput, SegmentError> {
        if input.data.is_empty() {
            return Err(SegmentError::Empty);
        }
        let mut demuxer =
            open_memory_input(input.data, input.format).map_err(|e| SegmentError::Demux(ff(e)))?;
        let video_stream = demuxer
            .streams()
            .best(media::Type::Video)
            .ok_or(SegmentError::NoVideo)?;
        let video_index = video_stream.index();
        let video_tb = video_stream.time_base();
        let video_params = video_stream.parameters();
        if !SUPPORTED_VIDEO.contains(&video_params.id()) {
            return Err(SegmentError::UnsupportedCodec(
                format!("{:?}", video_params.id()).to_lowercase(),
            ));
        }
        let source_rate = {
            let avg = video_stream.avg_frame_rate();
            if avg.numerator() > 0 && avg.denominator() > 0 {
                avg
            } else {
                video_stream.rate()
            }
        };
        let audio_stream = demuxer
            .streams()
            .best(media::Type::Audio)
            .map(|s| (s.index(), s.time_base(), s.parameters()));

        let reinitialized = self.ensure_decoder(video_params)?;
        let audio_mode = match &audio_stream {
            None => AudioMode::None,
            Some((_, _, params)) if params.id() == codec::Id::AAC => AudioMode::Passthrough,
            Some((_, _, params)) => {
                if !self.audio.as_ref().is_some_and(|a| a.fits(params)) {
                    self.audio = Some(AudioTranscoder::new(
                        params.clone(),
                        self.settings.aac_bitrate,
                    )?);
                }
                AudioMode::Transcoded
            }
        };
        if source_rate.numerator() > 0 && source_rate.denominator() > 0 {
            self.frame_ticks = (90_000 * i64::from(source_rate.denominator())
                / i64::from(source_rate.numerator()))
            .max(1);
        }

        let mut state = SegmentState {
            pending: None,
            first_pts: None,
            decoded_frames: 0,
            decoded_pixels: 0,
            dropped: 0,
            discontinuity: false,
            source_rate,
            size: (0, 0),
            decode_errors: 0,
            last_decode_error: None,
        };
        let mut raw_audio: Vec<Packet> = Vec::new();

        for (stream, mut packet) in demuxer.packets() {
            let index = stream.index();
            if index == video_index {
                packet.rescale_ts(video_tb, TICK);
                let sent = self.decoder_mut().send_packet(&packet);
                if let Err(e) = sent {
                    state.decode_errors += 1;
                    state.last_decode_error = Some(ff(e));
                }
                self.receive_frames(&mut state)?;
            } else if let Some((audio_index, audio_tb, _)) = &audio_stream {
                if index == *audio_index {
                    packet.rescale_ts(*audio_tb, TICK);
                    raw_audio.push(packet);
                }
            }
        }
        // Drain the decoder; it stays open for the next segment.
        let _ = self.decoder_mut().send_eof();
        self.receive_frames(&mut state)?;
        self.decoder_mut().flush();
        // SAFETY: plain field writes on the open decoder's context, between two segments. The
        // best-effort timestamp heuristic starts afresh for each segment, as for a new stream.
        unsafe {
            let context = self.decoder_mut().as_mut_ptr();
            (*context).pts_correction_num_faulty_pts = 0;
            (*context).pts_correction_num_faulty_dts = 0;
        }

        if state.decoded_frames == 0 {
            self.abort_renditions();
            if state.dropped > 0 {
                return Err(SegmentError::NonMonotonic(format!(
                    "all {} frames were at or before the previous segment's last timestamp",
                    state.dropped
                )));
            }
            return Err(match state.last_decode_error {
                Some(reason) => SegmentError::Decode(reason),
                None => SegmentError::NoFrames,
            });
        }
        let end_pts = match &state.pending {
            Some((_, pts)) => pts + self.frame_ticks,
            None => self.last_pts.unwrap_or(0) + self.frame_ticks,
        };
        self.flush_pending(&mut state, end_pts)?;

        let audio = self.prepare_audio(audio_mode, audio_stream.map(|(_, _, p)| p), raw_audio)?;
        let renditions = self.finish_renditions(audio)?;
        let start_pts = state.first_pts.unwrap_or(0);
        Ok(SegmentOutput {
            seq: input.seq,
            renditions,
            decoded_frames: state.decoded_frames,
            decoded_pixels: state.decoded_pixels,
            source_width: state.size.0,
            source_height: state.size.1,
            start_pts,
            duration: (end_pts - start_pts) as f64 / 90_000.0,
            dropped_frames: state.dropped,
            reinitialized,
            discontinuity: state.discontinuity,
            audio: audio_mode,
            plan: self.plan,
        })
    }

    fn decoder_mut(&mut self) -> &mut ffmpeg::decoder::Video {
        &mut self
            .decoder
            .as_mut()
            .expect("decoder is opened before packets are read")
            .decoder
    }

    /// Opens the decoder on first use or when the codec changes; true when it was rebuilt.
    fn ensure_decoder(&mut self, params: codec::Parameters) -> Result<bool, SegmentError> {
        let codec_id = params.id();
        if self.decoder.as_ref().is_some_and(|d| d.codec == codec_id) {
            return Ok(false);
        }
        let rebuilt = self.decoder.is_some();
        let mut hw = false;
        let mut context = codec::context::Context::from_parameters(params.clone())
            .map_err(|e| SegmentError::Decode(ff(e)))?;
        if let Device::Gpu(index) = self.plan.decode {
            match crate::hw::attach_cuda_decoder(&mut context, index) {
                Ok(()) => hw = true,
                Err(reason) => {
                    tracing::warn!(gpu = index, %reason, "nvdec unavailable, decoding on the cpu");
                    self.plan.fall_back(crate::accel::Stage::Decode);
                    context = codec::context::Context::from_parameters(params)
                        .map_err(|e| SegmentError::Decode(ff(e)))?;
                }
            }
        }
        // SAFETY: plain field writes on a context that is not opened yet.
        unsafe {
            (*context.as_mut_ptr()).pkt_timebase = TICK.into();
        }
        let mut options = ffmpeg::Dictionary::new();
        options.set("threads", "auto");
        let decoder = context
            .decoder()
            .open_as_with(ffmpeg::decoder::find(codec_id), options)
            .and_then(|opened| opened.video())
            .map_err(|e| SegmentError::Decode(ff(e)))?;
        if rebuilt {
            tracing::info!(codec = ?codec_id, "video codec changed; decoder rebuilt");
        }
        self.decoder = Some(VideoDecoder {
            decoder,
            codec: codec_id,
            hw,
        });
        Ok(rebuilt)
    }

    fn receive_frames(&mut self, state: &mut SegmentState) -> Result<(), SegmentError> {
        loop {
            let mut decoded = frame::Video::empty();
            match self.decoder_mut().receive_frame(&mut decoded) {
                Ok(()) => {}
                Err(ffmpeg::Error::Other { errno }) if errno == libc::EAGAIN => return Ok(()),
                Err(ffmpeg::Error::Eof) => return Ok(()),
                Err(e) => {
                    state.decode_errors += 1;
                    state.last_decode_error = Some(ff(e));
                    return Ok(());
                }
            }
            // With GPU scaling, CUDA frames go to the renditions as they are (scale_cuda there);
            // otherwise they are downloaded once here for the CPU scalers.
            let keep_on_gpu = matches!(self.plan.scale, Device::Gpu(_));
            let decoded = if self.decoder.as_ref().is_some_and(|d| d.hw) && !keep_on_gpu {
                crate::hw::download(&decoded).map_err(SegmentError::Decode)?
            } else {
                decoded
            };
            self.on_frame(decoded, state)?;
        }
    }

    fn on_frame(
        &mut self,
        decoded: frame::Video,
        state: &mut SegmentState,
    ) -> Result<(), SegmentError> {
        // The frame's own pts first: libavcodec's best-effort guess keeps faulty-timestamp counts
        // for the life of the decoder, so one damaged segment would make it guess from DTS (and
        // shift every later segment's frames) for the rest of the session.
        let raw = match decoded.pts().or(decoded.timestamp()) {
            Some(pts) => pts,
            // No timestamp at all: continue the clock one frame on.
            None => match (&state.pending, self.last_pts) {
                (Some((_, pts)), _) => pts + self.frame_ticks - self.offset,
                (None, Some(last)) => last + self.frame_ticks - self.offset,
                (None, None) => 0,
            },
        };
        if state.first_pts.is_none() {
            if let Some(last) = self.last_pts {
                // Keep the output clock continuous across publisher restarts and broken clocks.
                let expected = last + self.frame_ticks;
                let candidate = raw + self.offset;
                if candidate <= last || candidate > expected + MAX_FORWARD_JUMP {
                    self.offset = expected - raw;
                    state.discontinuity = true;
                    tracing::warn!(
                        jump_ticks = candidate - expected,
                        "timestamp discontinuity smoothed"
                    );
                }
            }
        }
        let pts = raw + self.offset;
        let previous = state.pending.as_ref().map(|(_, p)| *p).or(self.last_pts);
        if previous.is_some_and(|prev| pts <= prev) {
            state.dropped += 1;
            return Ok(());
        }
        state.first_pts.get_or_insert(pts);
        state.decoded_frames += 1;
        state.decoded_pixels += u64::from(decoded.width()) * u64::from(decoded.height());
        state.size = (decoded.width(), decoded.height());
        let shared = Arc::new(SharedFrame(decoded));
        if let Some((frame, prev_pts)) = state.pending.take() {
            self.broadcast_frame(frame, prev_pts, pts, state.source_rate)?;
        }
        state.pending = Some((shared, pts));
        Ok(())
    }

    fn flush_pending(&mut self, state: &mut SegmentState, end: i64) -> Result<(), SegmentError> {
        if let Some((frame, pts)) = state.pending.take() {
            self.broadcast_frame(frame, pts, end, state.source_rate)?;
        }
        Ok(())
    }

    fn broadcast_frame(
        &mut self,
        frame: Arc<SharedFrame>,
        pts: i64,
        end: i64,
        source_rate: Rational,
    ) -> Result<(), SegmentError> {
        self.last_pts = Some(pts);
        for rendition in &self.renditions {
            let inbox = rendition
                .inbox
                .as_ref()
                .ok_or(SegmentError::SessionClosed)?;
            inbox
                .send(RenditionMsg::Frame {
                    frame: Arc::clone(&frame),
                    pts,
                    end,
                    source_rate,
                })
                .map_err(|_| SegmentError::SessionClosed)?;
        }
        Ok(())
    }

    fn abort_renditions(&mut self) {
        for rendition in &self.renditions {
            if let Some(inbox) = &rendition.inbox {
                let _ = inbox.send(RenditionMsg::Abort);
            }
        }
    }

    fn prepare_audio(
        &mut self,
        mode: AudioMode,
        params: Option<codec::Parameters>,
        raw: Vec<Packet>,
    ) -> Result<Option<AudioTrack>, SegmentError> {
        let offset = self.offset;
        let shift = |mut p: Packet| {
            if let Some(pts) = p.pts() {
                p.set_pts(Some(pts + offset));
            }
            if let Some(dts) = p.dts() {
                p.set_dts(Some(dts + offset));
            }
            p
        };
        match (mode, params) {
            (AudioMode::Passthrough, Some(params)) => Ok(Some(AudioTrack {
                params,
                packets: raw.into_iter().map(shift).collect(),
            })),
            (AudioMode::Transcoded, Some(_)) => {
                let transcoder = self
                    .audio
                    .as_mut()
                    .expect("audio transcoder created for this mode");
                let mut packets = Vec::new();
                for packet in raw {
                    packets.extend(transcoder.push(&shift(packet))?);
                }
                Ok(Some(AudioTrack {
                    params: transcoder.params(),
                    packets,
                }))
            }
            _ => Ok(None),
        }
    }

    fn finish_renditions(
        &mut self,
        audio: Option<AudioTrack>,
    ) -> Result<Vec<RenditionOutput>, SegmentError> {
        let mut replies: Vec<Receiver<Result<RenditionOutput, SegmentError>>> = Vec::new();
        for rendition in &self.renditions {
            let (tx, rx) = mpsc::sync_channel(1);
            let inbox = rendition
                .inbox
                .as_ref()
                .ok_or(SegmentError::SessionClosed)?;
            inbox
                .send(RenditionMsg::Finish {
                    audio: audio.clone(),
                    reply: tx,
                })
                .map_err(|_| SegmentError::SessionClosed)?;
            replies.push(rx);
        }
        let mut outputs = Vec::with_capacity(replies.len());
        let mut first_error = None;
        for rx in replies {
            match rx.recv() {
                Ok(Ok(output)) => outputs.push(output),
                Ok(Err(error)) => {
                    first_error.get_or_insert(error);
                }
                Err(_) => {
                    first_error.get_or_insert(SegmentError::SessionClosed);
                }
            }
        }
        match first_error {
            Some(error) => Err(error),
            None => Ok(outputs),
        }
    }
}

impl Drop for TranscodeSession {
    fn drop(&mut self) {
        for rendition in &mut self.renditions {
            rendition.inbox.take();
        }
        for rendition in &mut self.renditions {
            if let Some(thread) = rendition.thread.take() {
                let _ = thread.join();
            }
        }
    }
}
