//! The JSON profile shape of go-livepeer's transcoding options (§5.3).
//!
//! Reading follows Go's `encoding/json` where it matters for files written
//! for go-livepeer: keys match case-insensitively, `null` leaves a field at its
//! default, and **unknown keys are ignored** (Go ignores them, and the auth
//! webhook and `Livepeer-Transcode-Configuration` objects may carry newer
//! fields). Type errors name the entry index and the field.
//!
//! Field mapping to [`Profile`]:
//! - `profile`: `""`, `none`, `h264baseline`, `h264main`, `h264high`,
//!   `h264constrainedhigh`, any case.
//! - `gop`: `""` (default), `intra` (any case), or seconds as a decimal number
//!   greater than zero; stored as whole milliseconds (rounded), at least 1 ms.
//! - `encoder`: `""`/`H.264`, `HEVC`, `VP8`, `VP9` (any case; `h264`, `h265` too).
//! - `colorDepth`: bits per sample as lpms' JSON reader takes it: 0 or 8
//!   (8-bit), 10, 12 or 16; stored as the wire code bits − 8.
//! - `chromaFormat`: 0 (4:2:0), 1 (4:2:2), 2 (4:4:4).
//! - `format`: a Livefarm extension, `"mpegts"` (default) or `"mp4"`; written
//!   only for MP4 so that go-livepeer, which ignores it, reads the same ladder.
//! - An empty `name` becomes `custom_{w}x{h}_{bitrate}`.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

use crate::error::ProfileError;
use crate::profile::{custom_name, ChromaFormat, EncoderProfile, Format, Gop, Profile, VideoCodec};

/// One entry of a JSON profile array, in its JSON types (`ffmpeg.JsonProfile`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct JsonProfile {
    pub name: String,
    pub width: u32,
    pub height: u32,
    pub bitrate: u32,
    pub fps: u32,
    pub fps_den: u32,
    pub profile: String,
    pub gop: String,
    pub encoder: String,
    pub color_depth: u32,
    pub chroma_format: u32,
    pub quality: u32,
    /// Livefarm extension; see the module docs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub format: Option<String>,
}

/// A problem with one field of one entry, before the entry index is known.
struct FieldError {
    field: &'static str,
    reason: String,
}

fn field_error(field: &'static str, reason: impl Into<String>) -> FieldError {
    FieldError {
        field,
        reason: reason.into(),
    }
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn read_u32(field: &'static str, value: &Value) -> Result<u32, FieldError> {
    match value {
        Value::Null => Ok(0),
        Value::Number(n) => {
            if let Some(v) = n.as_u64() {
                u32::try_from(v).map_err(|_| field_error(field, format!("{v} is too large")))
            } else if n.as_i64().is_some() {
                Err(field_error(field, format!("{n} is negative")))
            } else {
                Err(field_error(field, format!("{n} is not an integer")))
            }
        }
        other => Err(field_error(
            field,
            format!("expected an integer, got {}", json_type(other)),
        )),
    }
}

fn read_string(field: &'static str, value: &Value) -> Result<String, FieldError> {
    match value {
        Value::Null => Ok(String::new()),
        Value::String(s) => Ok(s.clone()),
        other => Err(field_error(
            field,
            format!("expected a string, got {}", json_type(other)),
        )),
    }
}

const KEYS: [&str; 13] = [
    "name",
    "width",
    "height",
    "bitrate",
    "fps",
    "fpsDen",
    "profile",
    "gop",
    "encoder",
    "colorDepth",
    "chromaFormat",
    "quality",
    "format",
];

impl JsonProfile {
    fn from_object(map: &Map<String, Value>) -> Result<Self, FieldError> {
        let mut out = JsonProfile::default();
        for (key, value) in map {
            // Go's encoding/json matches keys case-insensitively
            let Some(field) = KEYS.iter().copied().find(|k| k.eq_ignore_ascii_case(key)) else {
                continue;
            };
            match field {
                "name" => out.name = read_string(field, value)?,
                "width" => out.width = read_u32(field, value)?,
                "height" => out.height = read_u32(field, value)?,
                "bitrate" => out.bitrate = read_u32(field, value)?,
                "fps" => out.fps = read_u32(field, value)?,
                "fpsDen" => out.fps_den = read_u32(field, value)?,
                "profile" => out.profile = read_string(field, value)?,
                "gop" => out.gop = read_string(field, value)?,
                "encoder" => out.encoder = read_string(field, value)?,
                "colorDepth" => out.color_depth = read_u32(field, value)?,
                "chromaFormat" => out.chroma_format = read_u32(field, value)?,
                "quality" => out.quality = read_u32(field, value)?,
                _ => out.format = Some(read_string(field, value)?),
            }
        }
        Ok(out)
    }

    fn to_profile(&self) -> Result<Profile, FieldError> {
        let name = if self.name.is_empty() {
            custom_name(self.width.into(), self.height.into(), self.bitrate.into())
        } else {
            self.name.clone()
        };
        let profile = EncoderProfile::from_json_name(&self.profile).ok_or_else(|| {
            field_error(
                "profile",
                format!(
                    "unknown encoder profile {:?}; expected one of \"\", none, h264baseline, h264main, h264high, h264constrainedhigh",
                    self.profile
                ),
            )
        })?;
        let encoder = VideoCodec::from_json_name(&self.encoder).ok_or_else(|| {
            field_error(
                "encoder",
                format!(
                    "unknown encoder {:?}; expected one of \"\", H.264, HEVC, VP8, VP9",
                    self.encoder
                ),
            )
        })?;
        let color_depth = match self.color_depth {
            0 | 8 => 0,
            bits @ (10 | 12 | 16) => bits - 8,
            other => {
                return Err(field_error(
                    "colorDepth",
                    format!("{other} is not one of 8, 10, 12, 16 bits"),
                ))
            }
        };
        let chroma_format = i32::try_from(self.chroma_format)
            .ok()
            .and_then(|v| ChromaFormat::from_wire(v).ok())
            .ok_or_else(|| {
                field_error(
                    "chromaFormat",
                    format!(
                        "{} is not 0 (4:2:0), 1 (4:2:2) or 2 (4:4:4)",
                        self.chroma_format
                    ),
                )
            })?;
        let format = match self
            .format
            .as_deref()
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            None | Some("") | Some("mpegts") | Some("ts") => Format::MpegTs,
            Some("mp4") => Format::Mp4,
            Some(_) => {
                return Err(field_error(
                    "format",
                    format!(
                        "{:?} is not mpegts or mp4",
                        self.format.as_deref().unwrap_or_default()
                    ),
                ))
            }
        };
        Ok(Profile {
            name,
            width: self.width,
            height: self.height,
            bitrate: self.bitrate,
            fps: self.fps,
            fps_den: self.fps_den,
            format,
            profile,
            gop: parse_gop(&self.gop)?,
            encoder,
            color_depth,
            chroma_format,
            quality: self.quality,
        })
    }

    /// Converts to a [`Profile`] (naming an unnamed entry); `index` is only used in errors.
    pub fn into_profile(self, index: usize) -> Result<Profile, ProfileError> {
        self.to_profile().map_err(|e| ProfileError::JsonField {
            index,
            field: e.field,
            reason: e.reason,
        })
    }
}

fn parse_gop(text: &str) -> Result<Gop, FieldError> {
    if text.is_empty() {
        return Ok(Gop::Default);
    }
    if text.eq_ignore_ascii_case("intra") {
        return Ok(Gop::Intra);
    }
    let seconds: f64 = text.parse().map_err(|_| {
        field_error(
            "gop",
            format!("{text:?} is neither seconds as a decimal number nor \"intra\""),
        )
    })?;
    if !seconds.is_finite() || seconds <= 0.0 {
        return Err(field_error(
            "gop",
            format!("{text:?} must be a positive number of seconds"),
        ));
    }
    let ms = (seconds * 1000.0).round();
    if ms < 1.0 || ms > f64::from(i32::MAX) {
        return Err(field_error(
            "gop",
            format!("{text:?} seconds is outside 0.001..=2147483.647"),
        ));
    }
    // in range 1..=i32::MAX, so the cast is exact
    Ok(Gop::Millis(ms as u32))
}

fn format_gop(gop: Gop) -> String {
    match gop {
        Gop::Default => String::new(),
        Gop::Intra => "intra".to_owned(),
        Gop::Millis(ms) => {
            let text = format!("{}.{:03}", ms / 1000, ms % 1000);
            text.trim_end_matches('0').trim_end_matches('.').to_owned()
        }
    }
}

impl From<&Profile> for JsonProfile {
    fn from(p: &Profile) -> Self {
        JsonProfile {
            name: p.name.clone(),
            width: p.width,
            height: p.height,
            bitrate: p.bitrate,
            fps: p.fps,
            fps_den: p.fps_den,
            profile: p.profile.json_name().to_owned(),
            gop: format_gop(p.gop),
            encoder: p.encoder.name().to_owned(),
            color_depth: p.color_depth.saturating_add(8),
            chroma_format: p.chroma_format.to_wire().unsigned_abs(),
            quality: p.quality,
            format: (p.format == Format::Mp4).then(|| "mp4".to_owned()),
        }
    }
}

/// Parses a JSON array of profile objects (a `-transcodingOptions` file, or
/// the `profiles` of an auth webhook reply). Does not [`Profile::validate`].
pub fn parse_json_profiles(text: &str) -> Result<Vec<Profile>, ProfileError> {
    let value: Value =
        serde_json::from_str(text).map_err(|e| ProfileError::JsonSyntax(e.to_string()))?;
    let Value::Array(entries) = value else {
        return Err(ProfileError::JsonSyntax(format!(
            "expected an array of profile objects, got {}",
            json_type(&value)
        )));
    };
    parse_json_values(&entries)
}

/// Like [`parse_json_profiles`] over already-parsed JSON values.
pub fn parse_json_values(entries: &[Value]) -> Result<Vec<Profile>, ProfileError> {
    entries
        .iter()
        .enumerate()
        .map(|(index, entry)| {
            let Value::Object(map) = entry else {
                return Err(ProfileError::JsonEntry {
                    index,
                    reason: format!("expected an object, got {}", json_type(entry)),
                });
            };
            JsonProfile::from_object(map)
                .map_err(|e| ProfileError::JsonField {
                    index,
                    field: e.field,
                    reason: e.reason,
                })?
                .into_profile(index)
        })
        .collect()
}

/// Writes profiles as a compact JSON array in the shape [`parse_json_profiles`] reads.
pub fn to_json_profiles(profiles: &[Profile]) -> String {
    let entries: Vec<JsonProfile> = profiles.iter().map(JsonProfile::from).collect();
    serde_json::to_string(&entries).expect("plain strings and integers always serialise")
}

/// A profile serialises as one object of the §5.3 JSON shape.
impl Serialize for Profile {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        JsonProfile::from(self).serialize(serializer)
    }
}

/// A profile deserialises from one object of the §5.3 JSON shape.
impl<'de> Deserialize<'de> for Profile {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let value = Value::deserialize(deserializer)?;
        let Value::Object(map) = value else {
            return Err(D::Error::custom(format!(
                "expected a profile object, got {}",
                json_type(&value)
            )));
        };
        JsonProfile::from_object(&map)
            .and_then(|j| j.to_profile())
            .map_err(|e| D::Error::custom(format!("field {:?}: {}", e.field, e.reason)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_every_field() {
        let text = r#"[
          {"name": "hi", "width": 1280, "height": 720, "bitrate": 3000000, "fps": 60000,
           "fpsDen": 1001, "profile": "H264ConstrainedHigh", "gop": "2.5", "encoder": "H.264",
           "colorDepth": 8, "chromaFormat": 0, "quality": 23, "format": "mp4"},
          {"width": 640, "height": 360, "bitrate": 800000, "gop": "intra", "profile": "none"}
        ]"#;
        let got = parse_json_profiles(text).expect("valid json");
        assert_eq!(
            got[0],
            Profile {
                name: "hi".to_owned(),
                width: 1280,
                height: 720,
                bitrate: 3_000_000,
                fps: 60000,
                fps_den: 1001,
                format: Format::Mp4,
                profile: EncoderProfile::H264ConstrainedHigh,
                gop: Gop::Millis(2500),
                encoder: VideoCodec::H264,
                color_depth: 0,
                chroma_format: ChromaFormat::Yuv420,
                quality: 23,
            }
        );
        assert_eq!(got[1].name, "custom_640x360_800000");
        assert_eq!(got[1].gop, Gop::Intra);
        assert_eq!(got[1].profile, EncoderProfile::EncoderDefault);
        assert_eq!(got[1].frame_rate(), None);
    }

    #[test]
    fn reads_go_style_keys_and_ignores_unknown_ones() {
        let text = r#"[{"Name": "a", "WIDTH": 320, "height": 240, "fpsden": null,
                        "encoder": "hevc", "colorDepth": 10, "chromaFormat": 2,
                        "somethingNew": {"x": 1}}]"#;
        let got = parse_json_profiles(text).expect("valid json");
        assert_eq!(got[0].name, "a");
        assert_eq!(got[0].width, 320);
        assert_eq!(got[0].fps_den, 0);
        assert_eq!(got[0].encoder, VideoCodec::H265);
        assert_eq!(got[0].color_depth, 2);
        assert_eq!(got[0].chroma_format, ChromaFormat::Yuv444);
    }

    #[test]
    fn errors_name_the_entry_and_field() {
        let cases = [
            (r#"[{}, {"width": -2}]"#, 1, "width"),
            (r#"[{"height": 1.5}]"#, 0, "height"),
            (r#"[{"bitrate": "600k"}]"#, 0, "bitrate"),
            (r#"[{"bitrate": 4294967296}]"#, 0, "bitrate"),
            (r#"[{}, {}, {"profile": "h265main"}]"#, 2, "profile"),
            (r#"[{"gop": "0"}]"#, 0, "gop"),
            (r#"[{"gop": "-1"}]"#, 0, "gop"),
            (r#"[{"gop": "2s"}]"#, 0, "gop"),
            (r#"[{"gop": "0.0001"}]"#, 0, "gop"),
            (r#"[{"gop": "NaN"}]"#, 0, "gop"),
            (r#"[{"gop": 2}]"#, 0, "gop"),
            (r#"[{"encoder": "AV1"}]"#, 0, "encoder"),
            (r#"[{"colorDepth": 9}]"#, 0, "colorDepth"),
            (r#"[{"chromaFormat": 3}]"#, 0, "chromaFormat"),
            (r#"[{"format": "mkv"}]"#, 0, "format"),
            (r#"[{"name": 5}]"#, 0, "name"),
        ];
        for (text, want_index, want_field) in cases {
            match parse_json_profiles(text) {
                Err(ProfileError::JsonField { index, field, .. }) => {
                    assert_eq!((index, field), (want_index, want_field), "{text}");
                }
                other => panic!("{text}: expected a field error, got {other:?}"),
            }
        }
        assert!(matches!(
            parse_json_profiles(r#"[{}, 3]"#),
            Err(ProfileError::JsonEntry { index: 1, .. })
        ));
        assert!(matches!(
            parse_json_profiles(r#"{"profiles": []}"#),
            Err(ProfileError::JsonSyntax(_))
        ));
        assert!(matches!(
            parse_json_profiles("[{"),
            Err(ProfileError::JsonSyntax(_))
        ));
    }

    #[test]
    fn gop_seconds_convert_to_millis_and_back() {
        for (text, ms) in [("2", 2000), ("1.5", 1500), ("0.033", 33), ("10.25", 10250)] {
            assert_eq!(parse_gop(text).ok(), Some(Gop::Millis(ms)), "{text}");
            assert_eq!(format_gop(Gop::Millis(ms)), text);
        }
        assert_eq!(format_gop(Gop::Intra), "intra");
        assert_eq!(format_gop(Gop::Default), "");
    }

    #[test]
    fn serialises_the_go_shape() {
        let p = Profile {
            gop: Gop::Millis(2000),
            profile: EncoderProfile::H264High,
            fps: 30,
            ..Profile::new("x", 640, 360, 800_000)
        };
        let value: Value = serde_json::from_str(&to_json_profiles(&[p])).expect("json");
        let obj = &value[0];
        assert_eq!(obj["name"], "x");
        assert_eq!(obj["fpsDen"], 0);
        assert_eq!(obj["profile"], "h264high");
        assert_eq!(obj["gop"], "2");
        assert_eq!(obj["encoder"], "H.264");
        assert_eq!(obj["colorDepth"], 8);
        assert!(obj.get("format").is_none(), "format only written for mp4");
    }

    #[test]
    fn serde_impls_use_the_json_shape() {
        let p: Profile =
            serde_json::from_str(r#"{"name": "a", "width": 2, "height": 4, "gop": "intra"}"#)
                .expect("profile");
        assert_eq!(p.gop, Gop::Intra);
        let back: Profile =
            serde_json::from_str(&serde_json::to_string(&p).expect("ser")).expect("de");
        assert_eq!(back, p);
        let err = serde_json::from_str::<Profile>(r#"{"gop": "x"}"#).expect_err("bad gop");
        assert!(err.to_string().contains("gop"), "{err}");
    }

    fn arb_profile() -> impl Strategy<Value = Profile> {
        (
            "[A-Za-z0-9_.-]{1,20}",
            (0u32..10_000, 0u32..10_000, any::<u32>()),
            (0u32..1000, 0u32..1002, 0u32..60),
            (0usize..2, 0usize..5, 0usize..4, 0usize..3),
            prop_oneof![
                Just(Gop::Default),
                Just(Gop::Intra),
                (1u32..=i32::MAX.unsigned_abs()).prop_map(Gop::Millis)
            ],
            prop::sample::select(vec![0u32, 2, 4, 8]),
        )
            .prop_map(
                |(name, (width, height, bitrate), (fps, fps_den, quality), enums, gop, depth)| {
                    Profile {
                        name,
                        width,
                        height,
                        bitrate,
                        fps,
                        fps_den,
                        format: [Format::MpegTs, Format::Mp4][enums.0],
                        profile: EncoderProfile::from_wire(enums.1 as i32).expect("in range"),
                        gop,
                        encoder: VideoCodec::from_wire(enums.2 as i32).expect("in range"),
                        color_depth: depth,
                        chroma_format: ChromaFormat::from_wire(enums.3 as i32).expect("in range"),
                        quality,
                    }
                },
            )
    }

    proptest! {
        #[test]
        fn json_round_trip(profiles in prop::collection::vec(arb_profile(), 0..5)) {
            let text = to_json_profiles(&profiles);
            let back = parse_json_profiles(&text).expect("own output parses");
            prop_assert_eq!(back, profiles);
        }

        #[test]
        fn parsing_and_validating_never_panic(text in "\\PC{0,200}") {
            if let Ok(profiles) = parse_json_profiles(&text) {
                for p in profiles {
                    let _ = p.validate();
                }
            }
        }

        #[test]
        fn arbitrary_json_objects_never_panic(
            entries in prop::collection::vec(
                prop::collection::btree_map(
                    prop::sample::select(KEYS.to_vec()),
                    prop_oneof![
                        any::<i64>().prop_map(Value::from),
                        any::<f64>().prop_map(Value::from),
                        "\\PC{0,12}".prop_map(Value::from),
                        Just(Value::Null),
                        any::<bool>().prop_map(Value::from),
                    ],
                    0..8,
                ),
                0..4,
            )
        ) {
            let values: Vec<Value> = entries
                .into_iter()
                .map(|m| Value::Object(m.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()))
                .collect();
            if let Ok(profiles) = parse_json_values(&values) {
                for p in profiles {
                    let _ = p.validate();
                    let _ = p.pricing_fps();
                }
            }
        }

        #[test]
        fn validate_never_panics(p in arb_profile()) {
            let _ = p.validate();
            let _ = p.frame_rate();
            let _ = p.pixels_per_frame();
            let _ = p.pricing_fps();
        }
    }
}
