//! The `Profile` type, its enums and validation.

use std::fmt;

use crate::error::ProfileError;

/// Output container (wire `Format`: `MPEGTS=0, MP4=1`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Format {
    #[default]
    MpegTs,
    Mp4,
}

impl Format {
    /// The protobuf enum value.
    pub fn to_wire(self) -> i32 {
        match self {
            Format::MpegTs => 0,
            Format::Mp4 => 1,
        }
    }

    /// Reads the protobuf enum value; unknown values give go-livepeer's error.
    pub fn from_wire(value: i32) -> Result<Self, ProfileError> {
        match value {
            0 => Ok(Format::MpegTs),
            1 => Ok(Format::Mp4),
            other => Err(ProfileError::UnrecognizedFormat(other)),
        }
    }

    /// File extension of a rendition, with the dot (`.ts`, `.mp4`).
    pub fn extension(self) -> &'static str {
        match self {
            Format::MpegTs => ".ts",
            Format::Mp4 => ".mp4",
        }
    }

    /// MIME type of a rendition (`video/mp2t`, `video/mp4`).
    pub fn mime(self) -> &'static str {
        match self {
            Format::MpegTs => "video/mp2t",
            Format::Mp4 => "video/mp4",
        }
    }
}

/// H.264 encoder profile (wire `Profile`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum EncoderProfile {
    #[default]
    EncoderDefault,
    H264Baseline,
    H264Main,
    H264High,
    H264ConstrainedHigh,
}

impl EncoderProfile {
    /// The protobuf enum value.
    pub fn to_wire(self) -> i32 {
        match self {
            EncoderProfile::EncoderDefault => 0,
            EncoderProfile::H264Baseline => 1,
            EncoderProfile::H264Main => 2,
            EncoderProfile::H264High => 3,
            EncoderProfile::H264ConstrainedHigh => 4,
        }
    }

    /// Reads the protobuf enum value; unknown values give go-livepeer's error.
    pub fn from_wire(value: i32) -> Result<Self, ProfileError> {
        match value {
            0 => Ok(EncoderProfile::EncoderDefault),
            1 => Ok(EncoderProfile::H264Baseline),
            2 => Ok(EncoderProfile::H264Main),
            3 => Ok(EncoderProfile::H264High),
            4 => Ok(EncoderProfile::H264ConstrainedHigh),
            other => Err(ProfileError::UnrecognizedEncoderProfile(other)),
        }
    }

    /// The spelling used by the JSON `profile` field (`""` for the default).
    pub fn json_name(self) -> &'static str {
        match self {
            EncoderProfile::EncoderDefault => "",
            EncoderProfile::H264Baseline => "h264baseline",
            EncoderProfile::H264Main => "h264main",
            EncoderProfile::H264High => "h264high",
            EncoderProfile::H264ConstrainedHigh => "h264constrainedhigh",
        }
    }

    /// Reads the JSON `profile` field, case-insensitively (`""` and `none` are the default).
    pub fn from_json_name(name: &str) -> Option<Self> {
        match name.to_ascii_lowercase().as_str() {
            "" | "none" => Some(EncoderProfile::EncoderDefault),
            "h264baseline" => Some(EncoderProfile::H264Baseline),
            "h264main" => Some(EncoderProfile::H264Main),
            "h264high" => Some(EncoderProfile::H264High),
            "h264constrainedhigh" => Some(EncoderProfile::H264ConstrainedHigh),
            _ => None,
        }
    }

    /// The libx264/NVENC `profile` option, if one must be set. Constrained
    /// high is "high" plus no B-frames (see [`Profile::no_b_frames`]), as in lpms.
    pub fn x264_name(self) -> Option<&'static str> {
        match self {
            EncoderProfile::EncoderDefault => None,
            EncoderProfile::H264Baseline => Some("baseline"),
            EncoderProfile::H264Main => Some("main"),
            EncoderProfile::H264High | EncoderProfile::H264ConstrainedHigh => Some("high"),
        }
    }
}

/// Keyframe interval.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Gop {
    /// Encoder default (wire 0).
    #[default]
    Default,
    /// Every frame is a keyframe (wire −1).
    Intra,
    /// A keyframe at least every this many milliseconds (wire value > 0).
    Millis(u32),
}

impl Gop {
    /// Wire value in milliseconds; −1 for intra-only. Millis above `i32::MAX`
    /// saturate (validation rejects them first).
    pub fn to_wire_ms(self) -> i32 {
        match self {
            Gop::Default => 0,
            Gop::Intra => -1,
            Gop::Millis(ms) => i32::try_from(ms).unwrap_or(i32::MAX),
        }
    }

    /// Reads the wire value; a negative value other than −1 is an error.
    pub fn from_wire_ms(value: i32) -> Result<Self, ProfileError> {
        match value {
            0 => Ok(Gop::Default),
            -1 => Ok(Gop::Intra),
            v if v > 0 => Ok(Gop::Millis(v.unsigned_abs())),
            other => Err(ProfileError::UnrecognizedGop(other)),
        }
    }
}

/// Output video codec (wire `VideoCodec`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum VideoCodec {
    #[default]
    H264,
    H265,
    Vp8,
    Vp9,
}

impl VideoCodec {
    /// The protobuf enum value.
    pub fn to_wire(self) -> i32 {
        match self {
            VideoCodec::H264 => 0,
            VideoCodec::H265 => 1,
            VideoCodec::Vp8 => 2,
            VideoCodec::Vp9 => 3,
        }
    }

    /// Reads the protobuf enum value; unknown values give go-livepeer's error.
    pub fn from_wire(value: i32) -> Result<Self, ProfileError> {
        match value {
            0 => Ok(VideoCodec::H264),
            1 => Ok(VideoCodec::H265),
            2 => Ok(VideoCodec::Vp8),
            3 => Ok(VideoCodec::Vp9),
            other => Err(ProfileError::UnrecognizedCodec(other)),
        }
    }

    /// go-livepeer's name, also the JSON `encoder` spelling: `H.264`, `HEVC`, `VP8`, `VP9`.
    pub fn name(self) -> &'static str {
        match self {
            VideoCodec::H264 => "H.264",
            VideoCodec::H265 => "HEVC",
            VideoCodec::Vp8 => "VP8",
            VideoCodec::Vp9 => "VP9",
        }
    }

    /// Reads the JSON `encoder` field. go-livepeer accepts `""` and the exact
    /// names; we also accept any case and `h264`/`h265`/`h.265`.
    pub fn from_json_name(name: &str) -> Option<Self> {
        match name.to_ascii_lowercase().as_str() {
            "" | "h.264" | "h264" => Some(VideoCodec::H264),
            "hevc" | "h265" | "h.265" => Some(VideoCodec::H265),
            "vp8" => Some(VideoCodec::Vp8),
            "vp9" => Some(VideoCodec::Vp9),
            _ => None,
        }
    }
}

impl fmt::Display for VideoCodec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Chroma subsampling (wire `ChromaSubsampling`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ChromaFormat {
    #[default]
    Yuv420,
    Yuv422,
    Yuv444,
}

impl ChromaFormat {
    /// The protobuf enum value.
    pub fn to_wire(self) -> i32 {
        match self {
            ChromaFormat::Yuv420 => 0,
            ChromaFormat::Yuv422 => 1,
            ChromaFormat::Yuv444 => 2,
        }
    }

    /// Reads the protobuf enum value.
    pub fn from_wire(value: i32) -> Result<Self, ProfileError> {
        match value {
            0 => Ok(ChromaFormat::Yuv420),
            1 => Ok(ChromaFormat::Yuv422),
            2 => Ok(ChromaFormat::Yuv444),
            other => Err(ProfileError::UnrecognizedChromaFormat(other)),
        }
    }
}

/// Smallest accepted width or height, in pixels.
pub const MIN_DIMENSION: u32 = 16;
/// Largest accepted width or height, in pixels (portrait 8K fits).
pub const MAX_DIMENSION: u32 = 7680;
/// Largest accepted frame area: 8K UHD, 7680x4320.
pub const MAX_PIXELS_PER_FRAME: u64 = 7680 * 4320;
/// Smallest accepted non-zero bitrate, bits per second.
pub const MIN_BITRATE: u32 = 1_000;
/// Largest accepted bitrate, bits per second (well under the wire's int32).
pub const MAX_BITRATE: u32 = 200_000_000;
/// Largest accepted output frame rate, frames per second.
pub const MAX_FRAME_RATE: u32 = 240;
/// Largest accepted CRF/CQ value (H.264's QP range).
pub const MAX_QUALITY: u32 = 51;
/// Longest accepted profile name, bytes.
pub const MAX_NAME_LEN: usize = 128;

/// One output rendition, with the fields of the wire `VideoProfile` (§1.2).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Profile {
    /// Rendition name; used as a path element of rendition URLs.
    pub name: String,
    pub width: u32,
    pub height: u32,
    /// Bits per second; 0 means unset (encoder default or `quality` alone).
    pub bitrate: u32,
    /// Frame-rate numerator; 0 means pass through the source rate.
    pub fps: u32,
    /// Frame-rate denominator; 0 is treated as 1.
    pub fps_den: u32,
    pub format: Format,
    pub profile: EncoderProfile,
    pub gop: Gop,
    pub encoder: VideoCodec,
    /// Wire colour depth code: bits − 8 (0 is 8-bit, 2 is 10-bit).
    pub color_depth: u32,
    pub chroma_format: ChromaFormat,
    /// CRF/CQ; 0 means unset. With a bitrate set too, the bitrate is the maximum.
    pub quality: u32,
}

impl Profile {
    /// An H.264 MPEG-TS profile at the source frame rate, everything else default.
    pub fn new(name: impl Into<String>, width: u32, height: u32, bitrate: u32) -> Self {
        Profile {
            name: name.into(),
            width,
            height,
            bitrate,
            ..Profile::default()
        }
    }

    /// Output frame rate as (numerator, denominator), or `None` to pass the source rate through.
    pub fn frame_rate(&self) -> Option<(u32, u32)> {
        if self.fps == 0 {
            None
        } else {
            Some((self.fps, self.fps_den.max(1)))
        }
    }

    /// Whether the encoder must not emit B-frames (baseline has none, and
    /// constrained high is high without them).
    pub fn no_b_frames(&self) -> bool {
        matches!(
            self.profile,
            EncoderProfile::H264Baseline | EncoderProfile::H264ConstrainedHigh
        )
    }

    /// Output pixels per frame.
    pub fn pixels_per_frame(&self) -> u64 {
        u64::from(self.width) * u64::from(self.height)
    }

    /// Frames per second used by a broadcaster's fee estimate (§10):
    /// `ceil(fps / fpsDen)`, with a pass-through rate counted as 60.
    pub fn pricing_fps(&self) -> u64 {
        match self.frame_rate() {
            None => 60,
            Some((num, den)) => u64::from(num).div_ceil(u64::from(den)),
        }
    }

    /// Whether go-livepeer would send this profile only in `fullProfiles3`
    /// (fractional rate, explicit encoder profile or GOP; §1.2).
    pub fn needs_full_profiles3(&self) -> bool {
        self.fps_den != 0
            || self.profile != EncoderProfile::EncoderDefault
            || self.gop != Gop::Default
    }

    /// Checks that this transcoder can produce the profile.
    ///
    /// Bounds: name 1..=128 bytes of `[A-Za-z0-9_.-]`, not starting with `.`
    /// (it becomes a path element); width and height even, 16..=7680, and at
    /// most 7680x4320 pixels per frame (so portrait 4320x7680 passes); bitrate 0
    /// or 1 kbps..=200 Mbps; `fpsDen` only with `fps`, rate at most 240 fps;
    /// quality 0..=51; GOP at least 1 ms and at most `i32::MAX` ms; encoder
    /// H.264 only; 8-bit 4:2:0 only.
    pub fn validate(&self) -> Result<(), ProfileError> {
        let invalid = |field: &'static str, reason: String| ProfileError::Invalid {
            name: self.name.clone(),
            field,
            reason,
        };
        validate_name(&self.name).map_err(|reason| invalid("name", reason))?;
        for (field, value) in [("width", self.width), ("height", self.height)] {
            if !(MIN_DIMENSION..=MAX_DIMENSION).contains(&value) {
                return Err(invalid(
                    field,
                    format!("{value} is outside {MIN_DIMENSION}..={MAX_DIMENSION}"),
                ));
            }
            // 4:2:0 chroma planes need even luma dimensions
            if value % 2 != 0 {
                return Err(invalid(field, format!("{value} is odd")));
            }
        }
        if self.pixels_per_frame() > MAX_PIXELS_PER_FRAME {
            return Err(invalid(
                "resolution",
                format!(
                    "{}x{} exceeds {MAX_PIXELS_PER_FRAME} pixels per frame",
                    self.width, self.height
                ),
            ));
        }
        if self.bitrate != 0 && !(MIN_BITRATE..=MAX_BITRATE).contains(&self.bitrate) {
            return Err(invalid(
                "bitrate",
                format!(
                    "{} bps is outside {MIN_BITRATE}..={MAX_BITRATE}",
                    self.bitrate
                ),
            ));
        }
        if self.fps == 0 && self.fps_den != 0 {
            return Err(invalid(
                "fpsDen",
                format!("{} is set without fps", self.fps_den),
            ));
        }
        if let Some((num, den)) = self.frame_rate() {
            if u64::from(num) > u64::from(MAX_FRAME_RATE) * u64::from(den) {
                return Err(invalid(
                    "fps",
                    format!("{num}/{den} is above {MAX_FRAME_RATE} fps"),
                ));
            }
        }
        if self.quality > MAX_QUALITY {
            return Err(invalid(
                "quality",
                format!("{} is outside 0..={MAX_QUALITY}", self.quality),
            ));
        }
        if let Gop::Millis(ms) = self.gop {
            if ms == 0 || i32::try_from(ms).is_err() {
                return Err(invalid(
                    "gop",
                    format!("{ms} ms is outside 1..={} ms", i32::MAX),
                ));
            }
        }
        if self.encoder != VideoCodec::H264 {
            return Err(ProfileError::UnsupportedEncoder {
                name: self.name.clone(),
                codec: self.encoder,
            });
        }
        if self.color_depth != 0 {
            return Err(invalid(
                "colorDepth",
                format!(
                    "{}-bit output is not supported by this transcoder (only 8-bit)",
                    u64::from(self.color_depth) + 8
                ),
            ));
        }
        if self.chroma_format != ChromaFormat::Yuv420 {
            return Err(invalid(
                "chromaFormat",
                format!(
                    "{:?} output is not supported by this transcoder (only 4:2:0)",
                    self.chroma_format
                ),
            ));
        }
        Ok(())
    }

    /// The legacy 4-byte ID of this profile's name (see [`legacy_id`]).
    pub fn legacy_id(&self) -> [u8; 4] {
        legacy_id(&self.name)
    }
}

fn validate_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("empty".to_owned());
    }
    if name.len() > MAX_NAME_LEN {
        return Err(format!("longer than {MAX_NAME_LEN} bytes"));
    }
    if name.starts_with('.') {
        return Err(format!("{name:?} starts with a dot"));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')))
    {
        return Err(format!("{name:?} holds {c:?}; allowed: A-Z a-z 0-9 _ - ."));
    }
    Ok(())
}

/// Name an orchestrator gives an empty-named profile received on the wire.
pub fn net_name(width: i64, height: i64, bitrate: i64) -> String {
    format!("net_{width}x{height}_{bitrate}")
}

/// Name a broadcaster gives an empty-named profile before sending it.
pub fn ffmpeg_name(width: i64, height: i64, bitrate: i64) -> String {
    format!("ffmpeg_{width}x{height}_{bitrate}")
}

/// Name given to an empty-named profile read from JSON transcoding options.
pub fn custom_name(width: i64, height: i64, bitrate: i64) -> String {
    format!("custom_{width}x{height}_{bitrate}")
}

/// Legacy profile ID: the first 4 bytes of `keccak256(name)`.
pub fn legacy_id(name: &str) -> [u8; 4] {
    use tiny_keccak::{Hasher, Keccak};
    let mut hasher = Keccak::v256();
    hasher.update(name.as_bytes());
    let mut digest = [0u8; 32];
    hasher.finalize(&mut digest);
    [digest[0], digest[1], digest[2], digest[3]]
}

/// [`legacy_id`] as 8 lowercase hex digits.
pub fn legacy_id_hex(name: &str) -> String {
    legacy_id(name).iter().map(|b| format!("{b:02x}")).collect()
}

/// The `profilesHex` of a segment signature (§4.3): the legacy IDs of the
/// names, in order, as lowercase hex.
pub fn profiles_hex(profiles: &[Profile]) -> String {
    profiles.iter().map(|p| legacy_id_hex(&p.name)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid() -> Profile {
        Profile::new("720p0", 1280, 720, 3_000_000)
    }

    fn field_of(err: ProfileError) -> &'static str {
        match err {
            ProfileError::Invalid { field, .. } => field,
            other => panic!("expected an invalid-field error, got {other:?}"),
        }
    }

    #[test]
    fn wire_enums_round_trip_and_reject_unknown() {
        for v in 0..2 {
            assert_eq!(Format::from_wire(v).expect("known").to_wire(), v);
        }
        for v in 0..5 {
            assert_eq!(EncoderProfile::from_wire(v).expect("known").to_wire(), v);
        }
        for v in 0..4 {
            assert_eq!(VideoCodec::from_wire(v).expect("known").to_wire(), v);
        }
        for v in 0..3 {
            assert_eq!(ChromaFormat::from_wire(v).expect("known").to_wire(), v);
        }
        for v in [-1, 0, 1, 2000, i32::MAX] {
            assert_eq!(Gop::from_wire_ms(v).expect("known").to_wire_ms(), v);
        }
        let format = Format::from_wire(2).expect_err("unknown format");
        assert_eq!(format.to_string(), "unrecognized profile output format");
        let prof = EncoderProfile::from_wire(5).expect_err("unknown profile");
        assert_eq!(prof.to_string(), "unrecognized encoder profile");
        let codec = VideoCodec::from_wire(-1).expect_err("unknown codec");
        assert_eq!(codec.to_string(), "unrecognized video codec");
        assert!(ChromaFormat::from_wire(3).is_err());
        assert!(Gop::from_wire_ms(-2).is_err());
    }

    #[test]
    fn frame_rate_treats_zero_den_as_one_and_zero_fps_as_passthrough() {
        let mut p = valid();
        assert_eq!(p.frame_rate(), None);
        assert_eq!(p.pricing_fps(), 60);
        p.fps = 30;
        assert_eq!(p.frame_rate(), Some((30, 1)));
        assert_eq!(p.pricing_fps(), 30);
        p.fps = 30000;
        p.fps_den = 1001;
        assert_eq!(p.frame_rate(), Some((30000, 1001)));
        assert_eq!(p.pricing_fps(), 30);
        assert!(p.needs_full_profiles3());
    }

    #[test]
    fn no_b_frames_for_baseline_and_constrained_high_only() {
        let mut p = valid();
        let cases = [
            (EncoderProfile::EncoderDefault, false),
            (EncoderProfile::H264Baseline, true),
            (EncoderProfile::H264Main, false),
            (EncoderProfile::H264High, false),
            (EncoderProfile::H264ConstrainedHigh, true),
        ];
        for (profile, expected) in cases {
            p.profile = profile;
            assert_eq!(p.no_b_frames(), expected, "{profile:?}");
        }
    }

    #[test]
    fn validate_accepts_sane_profiles() {
        valid().validate().expect("720p is valid");
        let mut p = valid();
        p.width = 4320;
        p.height = 7680;
        p.fps = 60000;
        p.fps_den = 1001;
        p.quality = 23;
        p.gop = Gop::Millis(2000);
        p.profile = EncoderProfile::H264High;
        p.validate().expect("portrait 8k at 59.94 is valid");
        p.bitrate = 0;
        p.gop = Gop::Intra;
        p.validate().expect("no bitrate is valid");
    }

    #[test]
    fn validate_names_the_bad_field() {
        type Mutation = fn(&mut Profile);
        let cases: Vec<(Mutation, &str)> = vec![
            (|p| p.width = 1281, "width"),
            (|p| p.height = 8, "height"),
            (|p| p.width = 7682, "width"),
            (
                |p| {
                    p.width = 7680;
                    p.height = 7680;
                },
                "resolution",
            ),
            (|p| p.bitrate = 999, "bitrate"),
            (|p| p.bitrate = MAX_BITRATE + 1, "bitrate"),
            (|p| p.fps_den = 1, "fpsDen"),
            (|p| p.fps = 241, "fps"),
            (|p| p.quality = 52, "quality"),
            (|p| p.gop = Gop::Millis(0), "gop"),
            (|p| p.gop = Gop::Millis(u32::MAX), "gop"),
            (|p| p.color_depth = 2, "colorDepth"),
            (|p| p.chroma_format = ChromaFormat::Yuv444, "chromaFormat"),
            (|p| p.name = String::new(), "name"),
            (|p| p.name = "../etc".to_owned(), "name"),
            (|p| p.name = "a/b".to_owned(), "name"),
            (|p| p.name = "x".repeat(129), "name"),
        ];
        for (mutate, field) in cases {
            let mut p = valid();
            mutate(&mut p);
            let err = p.validate().expect_err(field);
            assert_eq!(field_of(err), field, "{p:?}");
        }
    }

    #[test]
    fn non_h264_encoders_are_unsupported() {
        for codec in [VideoCodec::H265, VideoCodec::Vp8, VideoCodec::Vp9] {
            let mut p = valid();
            p.encoder = codec;
            let err = p.validate().expect_err("unsupported");
            assert!(matches!(err, ProfileError::UnsupportedEncoder { .. }));
            assert!(
                err.to_string().contains("not supported by this transcoder"),
                "{err}"
            );
            assert!(err.to_string().contains(codec.name()), "{err}");
        }
    }

    #[test]
    fn wire_names() {
        assert_eq!(net_name(640, 360, 1_200_000), "net_640x360_1200000");
        assert_eq!(ffmpeg_name(426, 240, 600_000), "ffmpeg_426x240_600000");
        assert_eq!(custom_name(-1, 0, 5), "custom_-1x0_5");
    }

    #[test]
    fn profiles_hex_matches_the_signature_example() {
        let ladder = [
            Profile::new("P240p30fps16x9", 426, 240, 600_000),
            Profile::new("P360p30fps16x9", 640, 360, 1_200_000),
        ];
        assert_eq!(profiles_hex(&ladder), "c0a6517a93c717e7");
        assert_eq!(profiles_hex(&[]), "");
    }
}
