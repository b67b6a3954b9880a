//! Built-in presets (§6), Livepeer Studio's default ladder and the legacy ID table.

use crate::profile::{legacy_id, Profile};

/// (name, width, height, bitrate bps, fps, in go-livepeer's `VideoProfileLookup`).
const BUILTINS: [(&str, u32, u32, u32, u32, bool); 14] = [
    ("P720p60fps16x9", 1280, 720, 6_000_000, 60, true),
    ("P720p30fps16x9", 1280, 720, 4_000_000, 30, true),
    ("P720p25fps16x9", 1280, 720, 3_500_000, 25, true),
    ("P720p30fps4x3", 960, 720, 3_500_000, 30, true),
    ("P576p30fps16x9", 1024, 576, 1_500_000, 30, true),
    ("P576p25fps16x9", 1024, 576, 1_500_000, 25, true),
    ("P360p30fps16x9", 640, 360, 1_200_000, 30, true),
    ("P360p25fps16x9", 640, 360, 1_000_000, 25, true),
    ("P360p30fps4x3", 480, 360, 1_000_000, 30, true),
    ("P240p30fps16x9", 426, 240, 600_000, 30, true),
    ("P240p25fps16x9", 426, 240, 600_000, 25, true),
    ("P240p30fps4x3", 320, 240, 600_000, 30, true),
    ("P144p30fps16x9", 256, 144, 400_000, 30, true),
    // defined by lpms and given a legacy ID, but absent from the lookup table
    ("P144p25fps16x9", 256, 144, 400_000, 25, false),
];

/// Names [`preset`] resolves: go-livepeer's `VideoProfileLookup`, in §6 order.
pub const PRESET_NAMES: [&str; 13] = [
    "P720p60fps16x9",
    "P720p30fps16x9",
    "P720p25fps16x9",
    "P720p30fps4x3",
    "P576p30fps16x9",
    "P576p25fps16x9",
    "P360p30fps16x9",
    "P360p25fps16x9",
    "P360p30fps4x3",
    "P240p30fps16x9",
    "P240p25fps16x9",
    "P240p30fps4x3",
    "P144p30fps16x9",
];

/// Every built-in profile name, including `P144p25fps16x9`, which has a legacy
/// ID but cannot be selected by name.
pub const BUILTIN_NAMES: [&str; 14] = [
    "P720p60fps16x9",
    "P720p30fps16x9",
    "P720p25fps16x9",
    "P720p30fps4x3",
    "P576p30fps16x9",
    "P576p25fps16x9",
    "P360p30fps16x9",
    "P360p25fps16x9",
    "P360p30fps4x3",
    "P240p30fps16x9",
    "P240p25fps16x9",
    "P240p30fps4x3",
    "P144p30fps16x9",
    "P144p25fps16x9",
];

/// Names of Livepeer Studio's default ladder, lowest first.
pub const STUDIO_LADDER_NAMES: [&str; 4] = ["240p0", "360p0", "480p0", "720p0"];

/// (name, width, height, bitrate bps) of Studio's default ladder; source frame rate.
const STUDIO: [(&str, u32, u32, u32); 4] = [
    ("240p0", 426, 240, 250_000),
    ("360p0", 640, 360, 800_000),
    ("480p0", 854, 480, 1_600_000),
    ("720p0", 1280, 720, 3_000_000),
];

/// go-livepeer's `-transcodingOptions` default.
pub const LIVEPEER_DEFAULT_LADDER: [&str; 2] = ["P240p30fps16x9", "P360p30fps16x9"];

fn builtin_profile(entry: &(&str, u32, u32, u32, u32, bool)) -> Profile {
    let &(name, width, height, bitrate, fps, _) = entry;
    // presets leave GOP, encoder profile, codec, depth and chroma at defaults;
    // go-livepeer takes the format from the input, MPEG-TS for live segments
    Profile {
        fps,
        ..Profile::new(name, width, height, bitrate)
    }
}

/// A preset selectable by name (go-livepeer's `VideoProfileLookup`). Returns
/// `None` for `P144p25fps16x9`, as go-livepeer does; see [`builtin`].
pub fn preset(name: &str) -> Option<Profile> {
    BUILTINS
        .iter()
        .find(|entry| entry.0 == name && entry.5)
        .map(builtin_profile)
}

/// Any built-in profile, including `P144p25fps16x9`.
pub fn builtin(name: &str) -> Option<Profile> {
    BUILTINS
        .iter()
        .find(|entry| entry.0 == name)
        .map(builtin_profile)
}

/// The built-in profile whose legacy 4-byte ID is `id` (GL common/videoprofile_ids.go).
pub fn builtin_by_legacy_id(id: [u8; 4]) -> Option<Profile> {
    BUILTINS
        .iter()
        .find(|entry| legacy_id(entry.0) == id)
        .map(builtin_profile)
}

/// One rung of Studio's default ladder by name (`240p0` ... `720p0`).
pub fn studio_preset(name: &str) -> Option<Profile> {
    STUDIO
        .iter()
        .find(|entry| entry.0 == name)
        .map(|&(name, width, height, bitrate)| Profile::new(name, width, height, bitrate))
}

/// Livepeer Studio's default ladder: 240p0, 360p0, 480p0 and 720p0 at the
/// source frame rate, H.264, lowest first.
pub fn studio_default_ladder() -> Vec<Profile> {
    STUDIO_LADDER_NAMES
        .iter()
        .filter_map(|name| studio_preset(name))
        .collect()
}

/// go-livepeer's default ladder: P240p30fps16x9, P360p30fps16x9.
pub fn livepeer_default_ladder() -> Vec<Profile> {
    LIVEPEER_DEFAULT_LADDER
        .iter()
        .filter_map(|name| preset(name))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::{legacy_id_hex, ChromaFormat, EncoderProfile, Format, Gop, VideoCodec};

    /// The §6 table, typed in from the spec: name, resolution, bitrate in k, fps, in lookup.
    const SPEC_TABLE: &str = "\
P720p60fps16x9 1280x720 6000k 60 yes
P720p30fps16x9 1280x720 4000k 30 yes
P720p25fps16x9 1280x720 3500k 25 yes
P720p30fps4x3 960x720 3500k 30 yes
P576p30fps16x9 1024x576 1500k 30 yes
P576p25fps16x9 1024x576 1500k 25 yes
P360p30fps16x9 640x360 1200k 30 yes
P360p25fps16x9 640x360 1000k 25 yes
P360p30fps4x3 480x360 1000k 30 yes
P240p30fps16x9 426x240 600k 30 yes
P240p25fps16x9 426x240 600k 25 yes
P240p30fps4x3 320x240 600k 30 yes
P144p30fps16x9 256x144 400k 30 yes
P144p25fps16x9 256x144 400k 25 no";

    /// The §6 legacy ID table.
    const SPEC_IDS: &str = "\
P720p60fps16x9 a7ac137a
P720p30fps16x9 49d54ea9
P720p25fps16x9 e4a64019
P720p30fps4x3 79332fe7
P576p30fps16x9 5ecf4b52
P576p25fps16x9 8b1843d6
P360p30fps16x9 93c717e7
P360p25fps16x9 7cd40fc7
P360p30fps4x3 b60382a0
P240p30fps16x9 c0a6517a
P240p25fps16x9 1301a7d0
P240p30fps4x3 d435c53a
P144p30fps16x9 fca40bf9
P144p25fps16x9 03f01d1f";

    fn parse_u32(s: &str) -> u32 {
        s.parse().expect("number in spec table")
    }

    #[test]
    fn presets_match_the_spec_table() {
        let mut rows = 0;
        for line in SPEC_TABLE.lines() {
            let cols: Vec<&str> = line.split_whitespace().collect();
            let (w, h) = cols[1].split_once('x').expect("WxH");
            let bitrate = parse_u32(cols[2].trim_end_matches('k')) * 1000;
            let in_lookup = cols[4] == "yes";
            let p = builtin(cols[0]).expect("every table row is built in");
            assert_eq!(p.name, cols[0]);
            assert_eq!((p.width, p.height), (parse_u32(w), parse_u32(h)), "{line}");
            assert_eq!(p.bitrate, bitrate, "{line}");
            assert_eq!(p.frame_rate(), Some((parse_u32(cols[3]), 1)), "{line}");
            assert_eq!(p.fps_den, 0);
            assert_eq!(p.format, Format::MpegTs);
            assert_eq!(p.profile, EncoderProfile::EncoderDefault);
            assert_eq!(p.gop, Gop::Default);
            assert_eq!(p.encoder, VideoCodec::H264);
            assert_eq!((p.color_depth, p.chroma_format), (0, ChromaFormat::Yuv420));
            assert_eq!(preset(cols[0]).is_some(), in_lookup, "{line}");
            assert_eq!(PRESET_NAMES.contains(&cols[0]), in_lookup, "{line}");
            assert!(BUILTIN_NAMES.contains(&cols[0]));
            p.validate().expect("built-in presets are valid");
            rows += 1;
        }
        assert_eq!(rows, BUILTIN_NAMES.len());
        assert_eq!(preset("P144p25fps16x9"), None);
        assert_eq!(preset("p720p30fps16x9"), None, "lookup is case-sensitive");
        for name in PRESET_NAMES {
            assert!(preset(name).is_some(), "{name}");
        }
    }

    #[test]
    fn legacy_ids_match_the_spec_table() {
        for line in SPEC_IDS.lines() {
            let (name, id) = line.split_once(' ').expect("name id");
            assert_eq!(legacy_id_hex(name), id, "{name}");
            let bytes = legacy_id(name);
            let found = builtin_by_legacy_id(bytes).expect("id resolves");
            assert_eq!(found.name, name);
        }
        assert_eq!(builtin_by_legacy_id([0, 0, 0, 0]), None);
    }

    #[test]
    fn studio_ladder() {
        let ladder = studio_default_ladder();
        let got: Vec<(&str, u32, u32, u32, u32)> = ladder
            .iter()
            .map(|p| (p.name.as_str(), p.width, p.height, p.bitrate, p.fps))
            .collect();
        assert_eq!(
            got,
            vec![
                ("240p0", 426, 240, 250_000, 0),
                ("360p0", 640, 360, 800_000, 0),
                ("480p0", 854, 480, 1_600_000, 0),
                ("720p0", 1280, 720, 3_000_000, 0),
            ]
        );
        for p in &ladder {
            assert_eq!(p.encoder, VideoCodec::H264);
            assert_eq!(p.frame_rate(), None);
            p.validate().expect("studio ladder is valid");
        }
        assert_eq!(studio_preset("1080p0"), None);
    }

    #[test]
    fn livepeer_ladder() {
        let names: Vec<String> = livepeer_default_ladder()
            .into_iter()
            .map(|p| p.name)
            .collect();
        assert_eq!(names, ["P240p30fps16x9", "P360p30fps16x9"]);
    }
}
