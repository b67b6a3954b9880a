//! Audio for renditions: AAC passes through untouched; anything else is decoded, resampled and
//! encoded to AAC by one encoder that lives as long as the session, so there is no priming gap at
//! segment boundaries.

use ffmpeg::{codec, filter, frame, Packet, Rational};
use ffmpeg_next as ffmpeg;

use crate::error::{ff, SegmentError};

const TICK: Rational = Rational(1, 90_000);

pub(crate) struct AudioTranscoder {
    source_codec: codec::Id,
    source_key: (u32, &'static str, u64),
    decoder: ffmpeg::decoder::Audio,
    graph: filter::Graph,
    encoder: ffmpeg::encoder::Audio,
    params: codec::Parameters,
    /// Next output pts in samples; continuous for the life of the session.
    next_pts: Option<i64>,
    sample_rate: i32,
}

fn audio_error(e: ffmpeg::Error) -> SegmentError {
    SegmentError::Audio(ff(e))
}

impl AudioTranscoder {
    pub(crate) fn new(
        stream_params: codec::Parameters,
        bitrate: usize,
    ) -> Result<Self, SegmentError> {
        let source_codec = stream_params.id();
        let mut context =
            codec::context::Context::from_parameters(stream_params).map_err(audio_error)?;
        // SAFETY: packet timestamps are rescaled to 90 kHz before decoding.
        unsafe { (*context.as_mut_ptr()).pkt_timebase = TICK.into() };
        let decoder = context.decoder().audio().map_err(audio_error)?;
        let rate = decoder.rate().max(8000);
        let sample_rate = match rate {
            r if r >= 48_000 => 48_000,
            r if r >= 44_100 => 44_100,
            r => r as i32,
        };
        let aac = ffmpeg::encoder::find(codec::Id::AAC)
            .ok_or_else(|| SegmentError::Audio("aac encoder missing".to_string()))?;
        let mut encoder = codec::context::Context::new_with_codec(aac)
            .encoder()
            .audio()
            .map_err(audio_error)?;
        let channels = if decoder.channels() == 1 { 1 } else { 2 };
        let layout = if channels == 1 {
            ffmpeg::ChannelLayout::MONO
        } else {
            ffmpeg::ChannelLayout::STEREO
        };
        encoder.set_rate(sample_rate);
        encoder.set_channel_layout(layout);
        encoder.set_format(ffmpeg::format::Sample::F32(
            ffmpeg::format::sample::Type::Planar,
        ));
        encoder.set_bit_rate(bitrate);
        encoder.set_time_base(Rational(1, sample_rate));
        let encoder = encoder.open().map_err(audio_error)?;
        let params = codec::Parameters::from(&encoder);
        let frame_size = encoder.frame_size().max(1024);
        let source_key = (
            decoder.rate(),
            decoder.format().name(),
            decoder.channel_layout().bits(),
        );
        let graph = build_graph(&decoder, sample_rate, channels, frame_size)?;
        Ok(AudioTranscoder {
            source_codec,
            source_key,
            decoder,
            graph,
            encoder,
            params,
            next_pts: None,
            sample_rate,
        })
    }

    /// Whether this transcoder still fits the stream (codec and layout unchanged).
    pub(crate) fn fits(&self, params: &codec::Parameters) -> bool {
        params.id() == self.source_codec
    }

    pub(crate) fn params(&self) -> codec::Parameters {
        self.params.clone()
    }

    /// Decodes `packet` (90 kHz timestamps) and returns finished AAC packets in 90 kHz.
    pub(crate) fn push(&mut self, packet: &Packet) -> Result<Vec<Packet>, SegmentError> {
        if self.next_pts.is_none() {
            if let Some(pts) = packet.pts() {
                self.next_pts = Some(pts * i64::from(self.sample_rate) / 90_000);
            }
        }
        if self.decoder.send_packet(packet).is_err() {
            // A damaged audio packet costs a few milliseconds of sound, never the segment.
            return Ok(Vec::new());
        }
        let mut out = Vec::new();
        let mut decoded = frame::Audio::empty();
        while self.decoder.receive_frame(&mut decoded).is_ok() {
            let key = (
                decoded.rate(),
                decoded.format().name(),
                decoded.channel_layout().bits(),
            );
            if key != self.source_key {
                // The source changed its sampling mid-stream: rebuild the resampler.
                self.graph = build_graph(
                    &self.decoder,
                    self.sample_rate,
                    self.params_channels(),
                    self.encoder.frame_size().max(1024),
                )?;
                self.source_key = key;
            }
            decoded.set_pts(None);
            self.graph
                .get("in")
                .ok_or_else(|| SegmentError::Audio("filter graph input missing".to_string()))?
                .source()
                .add(&decoded)
                .map_err(audio_error)?;
            self.pull(&mut out)?;
        }
        Ok(out)
    }

    fn params_channels(&self) -> i32 {
        i32::from(self.encoder.channels())
    }

    fn pull(&mut self, out: &mut Vec<Packet>) -> Result<(), SegmentError> {
        let mut resampled = frame::Audio::empty();
        loop {
            let got = self
                .graph
                .get("out")
                .ok_or_else(|| SegmentError::Audio("filter graph output missing".to_string()))?
                .sink()
                .frame(&mut resampled);
            if got.is_err() {
                return Ok(());
            }
            let pts = self.next_pts.unwrap_or(0);
            resampled.set_pts(Some(pts));
            self.next_pts = Some(pts + resampled.samples() as i64);
            self.encoder.send_frame(&resampled).map_err(audio_error)?;
            let mut packet = Packet::empty();
            while self.encoder.receive_packet(&mut packet).is_ok() {
                packet.rescale_ts(Rational(1, self.sample_rate), TICK);
                out.push(packet);
                packet = Packet::empty();
            }
        }
    }
}

fn build_graph(
    decoder: &ffmpeg::decoder::Audio,
    sample_rate: i32,
    channels: i32,
    frame_size: u32,
) -> Result<filter::Graph, SegmentError> {
    let mut graph = filter::Graph::new();
    let layout_bits = match decoder.channel_layout().bits() {
        0 if decoder.channels() == 1 => ffmpeg::ChannelLayout::MONO.bits(),
        0 => ffmpeg::ChannelLayout::STEREO.bits(),
        bits => bits,
    };
    let args = format!(
        "time_base=1/{rate}:sample_rate={rate}:sample_fmt={fmt}:channel_layout=0x{layout:x}",
        rate = decoder.rate().max(1),
        fmt = decoder.format().name(),
        layout = layout_bits,
    );
    let abuffer = filter::find("abuffer")
        .ok_or_else(|| SegmentError::Audio("abuffer missing".to_string()))?;
    let abuffersink = filter::find("abuffersink")
        .ok_or_else(|| SegmentError::Audio("abuffersink missing".to_string()))?;
    graph.add(&abuffer, "in", &args).map_err(audio_error)?;
    graph.add(&abuffersink, "out", "").map_err(audio_error)?;
    let out_layout = if channels == 1 { "mono" } else { "stereo" };
    let spec = format!(
        "aresample={sample_rate},aformat=sample_fmts=fltp:channel_layouts={out_layout},asetnsamples=n={frame_size}:p=0"
    );
    graph
        .output("in", 0)
        .and_then(|p| p.input("out", 0))
        .and_then(|p| p.parse(&spec))
        .map_err(audio_error)?;
    graph.validate().map_err(audio_error)?;
    Ok(graph)
}
