//! One rendition of a session: scale, convert the frame rate, encode and mux. Each rendition runs
//! on its own thread and keeps its scaler and frame-rate state across segments, so renditions
//! encode in parallel and a slow one never stalls decoding of the others' frames for long.

use std::sync::mpsc::{Receiver, SyncSender};
use std::sync::Arc;

use ffmpeg::format::Pixel;
use ffmpeg::software::scaling;
use ffmpeg::{codec, frame, Packet, Rational};
use ffmpeg_next as ffmpeg;
use livefarm_profiles::{Format, Profile};

use crate::encode::{self, EncoderSettings};
use crate::error::{ff, SegmentError};
use crate::fps::FpsConverter;
use crate::gpu_scale::CudaScaler;
use crate::io::open_memory_output;

/// A decoded frame shared read-only by every rendition thread.
pub(crate) struct SharedFrame(pub frame::Video);

// SAFETY: after decoding, a frame is only ever read (sws_scale takes const source planes); the
// last Arc owner frees it, on whichever thread that is.
unsafe impl Sync for SharedFrame {}

/// Audio for one segment, already in 90 kHz timestamps.
#[derive(Clone)]
pub(crate) struct AudioTrack {
    pub params: codec::Parameters,
    pub packets: Vec<Packet>,
}

pub(crate) enum RenditionMsg {
    /// A source frame shown from `pts` until `end` (90 kHz).
    Frame {
        frame: Arc<SharedFrame>,
        pts: i64,
        end: i64,
        source_rate: Rational,
    },
    /// End of segment: flush, mux with `audio`, reply with the rendition's bytes.
    Finish {
        audio: Option<AudioTrack>,
        reply: SyncSender<Result<RenditionOutput, SegmentError>>,
    },
    /// Drop what this segment produced so far.
    Abort,
}

/// One encoded rendition of one segment.
#[derive(Debug, Clone)]
pub struct RenditionOutput {
    pub name: String,
    pub data: Vec<u8>,
    pub format: Format,
    pub width: u32,
    pub height: u32,
    /// Video frames encoded.
    pub frames: u64,
    /// Encoded pixels (frames x width x height): what payments are priced on.
    pub pixels: u64,
    /// Presentation span of the rendition's frames, seconds.
    pub duration: f64,
    /// Output frame rate (num, den): the profile's, or the source's when passed through.
    pub frame_rate: (i32, i32),
    /// RFC 6381 codecs of the rendition (`avc1.64001f,mp4a.40.2`).
    pub codecs: String,
    /// `libx264` or `h264_nvenc`.
    pub encoder: &'static str,
}

pub(crate) struct RenditionWorker {
    profile: Profile,
    settings: EncoderSettings,
    nvenc_gpu: Option<u32>,
    scaler: Option<ScalerState>,
    cuda_scaler: Option<CudaScaler>,
    /// scale_cuda failed once: CUDA frames are downloaded and scaled on the CPU from then on.
    cuda_scale_failed: bool,
    scaled: Option<frame::Video>,
    fps: Option<FpsConverter>,
    encoder: Option<OpenEncoder>,
    packets: Vec<Packet>,
    frames: u64,
    first_pts: Option<i64>,
    last_end: i64,
    next_key_pts: Option<i64>,
    error: Option<SegmentError>,
}

struct ScalerState {
    source: (u32, u32, Pixel),
    output: (u32, u32),
    context: scaling::Context,
}

struct OpenEncoder {
    encoder: ffmpeg::encoder::Video,
    name: &'static str,
    width: u32,
    height: u32,
    frame_rate: Rational,
}

impl RenditionWorker {
    pub(crate) fn new(profile: Profile, settings: EncoderSettings, nvenc_gpu: Option<u32>) -> Self {
        let fps = profile
            .frame_rate()
            .map(|(num, den)| FpsConverter::new(num, den));
        RenditionWorker {
            profile,
            settings,
            nvenc_gpu,
            scaler: None,
            cuda_scaler: None,
            cuda_scale_failed: false,
            scaled: None,
            fps,
            encoder: None,
            packets: Vec::new(),
            frames: 0,
            first_pts: None,
            last_end: 0,
            next_key_pts: None,
            error: None,
        }
    }

    /// The thread body: serve messages until the session drops its sender.
    pub(crate) fn run(mut self, inbox: Receiver<RenditionMsg>) {
        while let Ok(msg) = inbox.recv() {
            let outcome =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.handle(msg)));
            if outcome.is_err() {
                tracing::error!(rendition = %self.profile.name, "rendition worker panicked; segment dropped");
                self.reset_segment();
                self.error = Some(SegmentError::Encode {
                    rendition: self.profile.name.clone(),
                    reason: "internal error".to_string(),
                });
            }
        }
    }

    fn handle(&mut self, msg: RenditionMsg) {
        match msg {
            RenditionMsg::Frame {
                frame,
                pts,
                end,
                source_rate,
            } => {
                if self.error.is_none() {
                    if let Err(error) = self.on_frame(&frame.0, pts, end, source_rate) {
                        self.error = Some(error);
                    }
                }
            }
            RenditionMsg::Finish { audio, reply } => {
                let result = match self.error.take() {
                    Some(error) => Err(error),
                    None => self.finish(audio),
                };
                self.reset_segment();
                // The session may have given up waiting; nothing to do then.
                let _ = reply.send(result);
            }
            RenditionMsg::Abort => {
                self.reset_segment();
                if let Some(fps) = self.fps.as_mut() {
                    fps.reset();
                }
            }
        }
    }

    fn reset_segment(&mut self) {
        self.encoder = None;
        self.packets.clear();
        self.frames = 0;
        self.first_pts = None;
        self.next_key_pts = None;
        self.error = None;
    }

    fn encode_error(&self, reason: impl Into<String>) -> SegmentError {
        SegmentError::Encode {
            rendition: self.profile.name.clone(),
            reason: reason.into(),
        }
    }

    fn on_frame(
        &mut self,
        source: &frame::Video,
        pts: i64,
        end: i64,
        source_rate: Rational,
    ) -> Result<(), SegmentError> {
        let points = match self.fps.as_mut() {
            Some(fps) => fps.points_for(pts, end),
            None => vec![pts],
        };
        self.last_end = self.last_end.max(end);
        if points.is_empty() {
            return Ok(());
        }
        self.scale(source)?;
        for out_pts in points {
            self.encode_scaled(out_pts, source_rate)?;
        }
        Ok(())
    }

    /// Output size for a source of `width x height`: fixed while an encoder is open (a
    /// mid-segment resolution change keeps the segment's size).
    fn output_size(&self, width: u32, height: u32) -> (u32, u32) {
        match &self.encoder {
            Some(open) => (open.width, open.height),
            None => encode::fit_dimensions(self.profile.width, self.profile.height, width, height),
        }
    }

    fn scale(&mut self, source: &frame::Video) -> Result<(), SegmentError> {
        if source.format() != Pixel::CUDA {
            return self.scale_on_cpu(source);
        }
        if !self.cuda_scale_failed {
            match self.scale_on_gpu(source) {
                Ok(()) => return Ok(()),
                Err(reason) => {
                    // Per-stage fallback: this rendition scales on the CPU from now on.
                    tracing::warn!(rendition = %self.profile.name, %reason, "scale_cuda unavailable, scaling on the cpu");
                    self.cuda_scale_failed = true;
                    self.cuda_scaler = None;
                }
            }
        }
        let downloaded = crate::hw::download(source).map_err(|reason| self.encode_error(reason))?;
        self.scale_on_cpu(&downloaded)
    }

    fn scale_on_gpu(&mut self, source: &frame::Video) -> Result<(), String> {
        let dims = (source.width(), source.height());
        let output = self.output_size(dims.0, dims.1);
        if self.cuda_scaler.as_ref().map(|s| (s.source, s.output)) != Some((dims, output)) {
            self.cuda_scaler = Some(CudaScaler::new(source, output.0, output.1)?);
        }
        let mut scaled = frame::Video::empty();
        self.cuda_scaler
            .as_mut()
            .expect("cuda scaler was just created")
            .run(source, &mut scaled)?;
        self.scaled = Some(scaled);
        Ok(())
    }

    fn scale_on_cpu(&mut self, source: &frame::Video) -> Result<(), SegmentError> {
        let key = (source.width(), source.height(), source.format());
        if self.scaler.as_ref().map(|s| s.source) != Some(key) {
            let output = self.output_size(key.0, key.1);
            let context = scaling::Context::get(
                key.2,
                key.0,
                key.1,
                Pixel::YUV420P,
                output.0,
                output.1,
                scaling::Flags::BICUBIC,
            )
            .map_err(|e| self.encode_error(format!("scaler: {}", ff(e))))?;
            self.scaler = Some(ScalerState {
                source: key,
                output,
                context,
            });
            self.scaled = None;
        }
        let scaler = self.scaler.as_mut().expect("scaler was just created");
        let (w, h) = scaler.output;
        let wrong_size = self
            .scaled
            .as_ref()
            .is_some_and(|f| (f.width(), f.height(), f.format()) != (w, h, Pixel::YUV420P));
        // Reuse the output frame unless the encoder still holds a reference to it.
        let reusable = self
            .scaled
            .as_ref()
            // SAFETY: plain query on a valid frame pointer.
            .is_some_and(
                |f| unsafe { ffmpeg::ffi::av_frame_is_writable(f.as_ptr() as *mut _) } > 0,
            );
        if !reusable || wrong_size {
            self.scaled = Some(frame::Video::new(Pixel::YUV420P, w, h));
        }
        let scaled = self.scaled.as_mut().expect("scaled frame exists");
        scaler
            .context
            .run(source, scaled)
            .map_err(|e| SegmentError::Encode {
                rendition: self.profile.name.clone(),
                reason: format!("scale: {}", ff(e)),
            })
    }

    fn open_encoder(&mut self, source_rate: Rational) -> Result<(), SegmentError> {
        // The scaled frame (from swscale or scale_cuda) sizes the encoder.
        let (w, h) = self
            .scaled
            .as_ref()
            .map(|f| (f.width(), f.height()))
            .ok_or_else(|| self.encode_error("no frame to size the encoder"))?;
        let frame_rate = match self.profile.frame_rate() {
            Some((num, den)) => Rational(num as i32, den as i32),
            None if source_rate.numerator() > 0 && source_rate.denominator() > 0 => source_rate,
            None => Rational(30, 1),
        };
        if let Some(gpu) = self.nvenc_gpu {
            match self.try_open("h264_nvenc", w, h, frame_rate, Some(gpu)) {
                Ok(open) => {
                    self.encoder = Some(open);
                    return Ok(());
                }
                Err(reason) => {
                    // Per-stage fallback: this rendition encodes on the CPU from now on.
                    tracing::warn!(rendition = %self.profile.name, gpu, %reason, "nvenc unavailable, falling back to libx264");
                    self.nvenc_gpu = None;
                }
            }
        }
        let open = self
            .try_open("libx264", w, h, frame_rate, None)
            .map_err(|reason| self.encode_error(reason))?;
        self.encoder = Some(open);
        Ok(())
    }

    fn try_open(
        &self,
        name: &'static str,
        w: u32,
        h: u32,
        frame_rate: Rational,
        gpu: Option<u32>,
    ) -> Result<OpenEncoder, String> {
        let codec = ffmpeg::encoder::find_by_name(name)
            .ok_or_else(|| format!("{name} is not in this ffmpeg build"))?;
        let mut video = codec::context::Context::new_with_codec(codec)
            .encoder()
            .video()
            .map_err(ff)?;
        encode::configure_video_encoder(
            &mut video,
            &self.profile,
            w,
            h,
            frame_rate,
            Pixel::YUV420P,
        );
        let mut options = encode::encoder_options(&self.profile, &self.settings, gpu.is_some());
        if let Some(gpu) = gpu {
            options.set("gpu", &gpu.to_string());
        }
        let encoder = video.open_with(options).map_err(ff)?;
        Ok(OpenEncoder {
            encoder,
            name,
            width: w,
            height: h,
            frame_rate,
        })
    }

    fn encode_scaled(&mut self, out_pts: i64, source_rate: Rational) -> Result<(), SegmentError> {
        if self.encoder.is_none() {
            self.open_encoder(source_rate)?;
        }
        let keyframe = match (self.first_pts, self.next_key_pts) {
            (None, _) => true,
            (Some(_), Some(next)) => out_pts >= next,
            (Some(_), None) => false,
        };
        if self.first_pts.is_none() {
            self.first_pts = Some(out_pts);
        }
        if keyframe {
            if let Some(gop) = encode::gop_ticks(&self.profile) {
                // Boundaries count from the segment start, identically in every rendition.
                let base = self.first_pts.unwrap_or(out_pts);
                let mut next = self.next_key_pts.unwrap_or(base);
                while next <= out_pts {
                    next += gop;
                }
                self.next_key_pts = Some(next);
            }
        }
        let scaled = self
            .scaled
            .as_mut()
            .expect("a frame was scaled before encoding");
        scaled.set_pts(Some(out_pts));
        scaled.set_kind(if keyframe {
            ffmpeg::picture::Type::I
        } else {
            ffmpeg::picture::Type::None
        });
        let open = self.encoder.as_mut().expect("encoder opened above");
        open.encoder
            .send_frame(scaled)
            .map_err(|e| SegmentError::Encode {
                rendition: self.profile.name.clone(),
                reason: ff(e),
            })?;
        self.frames += 1;
        self.drain(false)
    }

    fn drain(&mut self, eof: bool) -> Result<(), SegmentError> {
        let Some(open) = self.encoder.as_mut() else {
            return Ok(());
        };
        if eof {
            open.encoder.send_eof().map_err(|e| SegmentError::Encode {
                rendition: self.profile.name.clone(),
                reason: ff(e),
            })?;
        }
        loop {
            let mut packet = Packet::empty();
            match open.encoder.receive_packet(&mut packet) {
                Ok(()) => self.packets.push(packet),
                Err(ffmpeg::Error::Eof) => return Ok(()),
                Err(ffmpeg::Error::Other { errno }) if errno == libc::EAGAIN => return Ok(()),
                Err(e) => {
                    return Err(SegmentError::Encode {
                        rendition: self.profile.name.clone(),
                        reason: ff(e),
                    })
                }
            }
        }
    }

    fn finish(&mut self, audio: Option<AudioTrack>) -> Result<RenditionOutput, SegmentError> {
        if self.encoder.is_none() {
            return Err(SegmentError::NoFrames);
        }
        self.drain(true)?;
        let open = self.encoder.take().expect("checked above");
        let params = codec::Parameters::from(&open.encoder);
        let first_pts = self.first_pts.unwrap_or(0);
        let frame_ticks = i64::from(open.frame_rate.denominator()) * 90_000
            / i64::from(open.frame_rate.numerator().max(1));
        let last_pts = self
            .packets
            .iter()
            .filter_map(|p| p.pts())
            .max()
            .unwrap_or(first_pts);
        let duration = (last_pts + frame_ticks - first_pts) as f64 / 90_000.0;
        let video_codecs = self.video_codec_string(&params);
        let mut packets = std::mem::take(&mut self.packets);
        // libx264 leaves packet durations unset; MP4 needs them, or the muxer gives the last
        // sample no duration and players (edit list trimming) drop the segment's last frame.
        for packet in packets.iter_mut().filter(|p| p.duration() <= 0) {
            packet.set_duration(frame_ticks);
        }
        let data = self.mux(params, &mut packets, audio.as_ref())?;
        let codecs = match &audio {
            Some(track) if track.params.id() == codec::Id::AAC => {
                format!("{video_codecs},mp4a.40.2")
            }
            _ => video_codecs,
        };
        Ok(RenditionOutput {
            name: self.profile.name.clone(),
            data,
            format: self.profile.format,
            width: open.width,
            height: open.height,
            frames: self.frames,
            pixels: self.frames * u64::from(open.width) * u64::from(open.height),
            duration,
            frame_rate: (open.frame_rate.numerator(), open.frame_rate.denominator()),
            codecs,
            encoder: open.name,
        })
    }

    fn video_codec_string(&self, params: &codec::Parameters) -> String {
        // MP4 outputs carry avcC extradata; TS outputs carry the SPS in the first keyframe.
        livefarm_hls::codecs::avc1_from_extradata(extradata_of(params))
            .ok()
            .or_else(|| {
                self.packets
                    .first()
                    .and_then(|p| p.data())
                    .and_then(|d| livefarm_hls::codecs::avc1_from_extradata(d).ok())
            })
            .unwrap_or_else(|| "avc1.640028".to_string())
    }

    fn mux(
        &self,
        video_params: codec::Parameters,
        video: &mut [Packet],
        audio: Option<&AudioTrack>,
    ) -> Result<Vec<u8>, SegmentError> {
        let mux_error = |reason: String| SegmentError::Mux {
            rendition: self.profile.name.clone(),
            reason,
        };
        let muxer = match self.profile.format {
            Format::MpegTs => "mpegts",
            Format::Mp4 => "mp4",
        };
        let (mut output, buffer) = open_memory_output(muxer).map_err(|e| mux_error(ff(e)))?;
        let tick = Rational(1, 90_000);
        {
            let mut stream = output
                .add_stream(ffmpeg::encoder::find(codec::Id::None))
                .map_err(|e| mux_error(ff(e)))?;
            stream.set_parameters(video_params);
            stream.set_time_base(tick);
            // SAFETY: clearing the codec tag lets the muxer choose its own for the container.
            unsafe { (*(*stream.as_mut_ptr()).codecpar).codec_tag = 0 };
        }
        let mut audio_packets: Vec<Packet> = Vec::new();
        if let Some(track) = audio {
            let mut stream = output
                .add_stream(ffmpeg::encoder::find(codec::Id::None))
                .map_err(|e| mux_error(ff(e)))?;
            stream.set_parameters(track.params.clone());
            stream.set_time_base(tick);
            // SAFETY: as above.
            unsafe { (*(*stream.as_mut_ptr()).codecpar).codec_tag = 0 };
            audio_packets = track.packets.clone();
            if self.profile.format == Format::Mp4 {
                audio_packets =
                    crate::bsf::adts_to_asc(&mut output, 1, audio_packets).map_err(mux_error)?;
            }
        }
        output.write_header().map_err(|e| mux_error(ff(e)))?;
        let video_tb = output.stream(0).map(|s| s.time_base()).unwrap_or(tick);
        let audio_tb = output.stream(1).map(|s| s.time_base()).unwrap_or(tick);
        // Interleave by decode time so the muxer never waits on a stream.
        let mut order: Vec<(i64, bool, usize)> = video
            .iter()
            .enumerate()
            .map(|(i, p)| (p.dts().or(p.pts()).unwrap_or(0), true, i))
            .chain(
                audio_packets
                    .iter()
                    .enumerate()
                    .map(|(i, p)| (p.dts().or(p.pts()).unwrap_or(0), false, i)),
            )
            .collect();
        order.sort_by_key(|(dts, is_video, i)| (*dts, !*is_video, *i));
        for (_, is_video, i) in order {
            let (packet, index, tb) = if is_video {
                (&mut video[i], 0, video_tb)
            } else {
                (&mut audio_packets[i], 1, audio_tb)
            };
            packet.set_stream(index);
            packet.rescale_ts(tick, tb);
            packet.set_position(-1);
            packet
                .write_interleaved(&mut output)
                .map_err(|e| mux_error(ff(e)))?;
        }
        output.write_trailer().map_err(|e| mux_error(ff(e)))?;
        drop(output);
        Ok(buffer.take())
    }
}

/// The extradata bytes of codec parameters (empty when there are none).
pub(crate) fn extradata_of(params: &codec::Parameters) -> &[u8] {
    // SAFETY: the slice borrows the parameters' own extradata buffer for as long as `params`.
    unsafe {
        let raw = params.as_ptr();
        if (*raw).extradata.is_null() || (*raw).extradata_size <= 0 {
            &[]
        } else {
            std::slice::from_raw_parts((*raw).extradata, (*raw).extradata_size as usize)
        }
    }
}
