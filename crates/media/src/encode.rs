//! Encoder settings derived from a [`Profile`]: output geometry, rate control, GOP and H.264
//! profile, for libx264 and NVENC alike.

use ffmpeg_next as ffmpeg;
use livefarm_profiles::{EncoderProfile, Format, Gop, Profile};

/// Settings every encoder of a session shares (the benchmark gives the `ffmpeg` CLI the same).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncoderSettings {
    /// libx264 preset; `veryfast` is the usual choice for live CPU transcoding.
    pub x264_preset: String,
    /// NVENC preset (p1 fastest .. p7 best).
    pub nvenc_preset: String,
    /// Audio bitrate when audio has to be transcoded to AAC.
    pub aac_bitrate: usize,
}

impl Default for EncoderSettings {
    fn default() -> Self {
        EncoderSettings {
            x264_preset: "veryfast".to_string(),
            nvenc_preset: "p4".to_string(),
            aac_bitrate: 128_000,
        }
    }
}

/// Output size for a source of `src_w x src_h`: the largest even size with the source's aspect
/// ratio that fits the profile's box. A portrait source turns the box (720x1280 for 1280x720),
/// as Livepeer does, so phones are not squashed.
pub fn fit_dimensions(profile_w: u32, profile_h: u32, src_w: u32, src_h: u32) -> (u32, u32) {
    if src_w == 0 || src_h == 0 {
        return (even(profile_w), even(profile_h));
    }
    let (box_w, box_h) = if src_h > src_w && profile_w > profile_h {
        (profile_h, profile_w)
    } else {
        (profile_w, profile_h)
    };
    // Same shape (within 1%): use the profile's exact size, as a ladder promises (854x480 from
    // 1280x720 rather than the 852x480 that strict fitting rounds to).
    let src_aspect = f64::from(src_w) / f64::from(src_h);
    let box_aspect = f64::from(box_w) / f64::from(box_h);
    if (src_aspect / box_aspect - 1.0).abs() < 0.01 {
        return (even(box_w).max(2), even(box_h).max(2));
    }
    let scale = f64::min(
        f64::from(box_w) / f64::from(src_w),
        f64::from(box_h) / f64::from(src_h),
    );
    let w = (f64::from(src_w) * scale).round() as u32;
    let h = (f64::from(src_h) * scale).round() as u32;
    (even(w).max(2), even(h).max(2))
}

fn even(v: u32) -> u32 {
    v & !1
}

/// Frames between forced keyframes for a profile's GOP at a frame rate (`None` = only at
/// segment starts).
pub fn gop_ticks(profile: &Profile) -> Option<i64> {
    match profile.gop {
        Gop::Millis(ms) if ms > 0 => Some(i64::from(ms) * 90),
        _ => None,
    }
}

/// The libx264 or NVENC private options for a profile.
pub fn encoder_options(
    profile: &Profile,
    settings: &EncoderSettings,
    nvenc: bool,
) -> ffmpeg::Dictionary<'static> {
    let mut opts = ffmpeg::Dictionary::new();
    opts.set("threads", "auto");
    if nvenc {
        opts.set("preset", &settings.nvenc_preset);
        opts.set("forced-idr", "1");
        opts.set("zerolatency", "1");
        if let Some(p) = h264_profile_name(profile) {
            opts.set("profile", p);
        }
        if profile.quality > 0 {
            opts.set("rc", "vbr");
            opts.set("cq", &profile.quality.to_string());
        } else {
            opts.set("rc", "cbr");
        }
    } else {
        opts.set("preset", &settings.x264_preset);
        opts.set("forced-idr", "1");
        if let Some(p) = h264_profile_name(profile) {
            opts.set("profile", p);
        }
        if profile.quality > 0 {
            opts.set("crf", &profile.quality.to_string());
        }
        // Keyframes are placed by the session (segment starts and GOP boundaries, on the same
        // timestamps in every rendition); x264's scene-cut keyframes would break alignment.
        opts.set("sc_threshold", "0");
    }
    opts
}

fn h264_profile_name(profile: &Profile) -> Option<&'static str> {
    match profile.profile {
        EncoderProfile::EncoderDefault => None,
        EncoderProfile::H264Baseline => Some("baseline"),
        EncoderProfile::H264Main => Some("main"),
        EncoderProfile::H264High | EncoderProfile::H264ConstrainedHigh => Some("high"),
    }
}

/// Applies geometry, timing and rate control to an unopened encoder.
pub fn configure_video_encoder(
    encoder: &mut ffmpeg::encoder::video::Video,
    profile: &Profile,
    width: u32,
    height: u32,
    frame_rate: ffmpeg::Rational,
    pixel_format: ffmpeg::format::Pixel,
) {
    encoder.set_width(width);
    encoder.set_height(height);
    encoder.set_format(pixel_format);
    encoder.set_time_base(ffmpeg::Rational(1, 90_000));
    encoder.set_frame_rate(Some(frame_rate));
    match profile.gop {
        Gop::Intra => encoder.set_gop(1),
        // Keyframes are forced by the session; keep the encoder from adding its own.
        _ => encoder.set_gop(100_000),
    }
    if profile.no_b_frames() {
        encoder.set_max_b_frames(0);
    }
    if profile.format == Format::Mp4 {
        encoder.set_flags(ffmpeg::codec::Flags::GLOBAL_HEADER);
    }
    if profile.bitrate > 0 {
        let bitrate = profile.bitrate as usize;
        if profile.quality == 0 {
            encoder.set_bit_rate(bitrate);
        }
        // A VBV cap: never above the profile's bitrate over a two-second buffer.
        encoder.set_max_bit_rate(bitrate);
        // SAFETY: the pointer is the live codec context owned by `encoder`; rc_buffer_size is a
        // plain int field that ffmpeg-next exposes no setter for.
        unsafe {
            (*encoder.as_mut_ptr()).rc_buffer_size =
                i32::try_from(bitrate.saturating_mul(2)).unwrap_or(i32::MAX);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fits_ladders_onto_16x9_sources() {
        assert_eq!(fit_dimensions(1280, 720, 1920, 1080), (1280, 720));
        assert_eq!(fit_dimensions(854, 480, 1920, 1080), (854, 480));
        assert_eq!(fit_dimensions(426, 240, 1280, 720), (426, 240));
        assert_eq!(fit_dimensions(640, 360, 1280, 720), (640, 360));
    }

    #[test]
    fn keeps_aspect_for_other_shapes() {
        // 4:3 source into a 16:9 box: pillar-boxed size, not stretched.
        assert_eq!(fit_dimensions(1280, 720, 640, 480), (960, 720));
        // portrait phone video turns the box.
        assert_eq!(fit_dimensions(1280, 720, 1080, 1920), (720, 1280));
        // odd sizes become even.
        let (w, h) = fit_dimensions(427, 241, 1001, 563);
        assert!(w % 2 == 0 && h % 2 == 0);
    }
}
