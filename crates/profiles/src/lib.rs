//! Video transcoding profiles: what each output rendition of a ladder looks
//! like, in the shapes Livepeer uses for it.
//!
//! - [`Profile`] mirrors the wire `VideoProfile` (§1.2 of
//!   `livepeer-protocol.md`), with `to_wire`/`from_wire` on each enum and
//!   [`Profile::validate`] for what this transcoder can encode (H.264, 8-bit 4:2:0).
//! - [`preset`], [`PRESET_NAMES`], [`studio_default_ladder`] and
//!   [`livepeer_default_ladder`] are the built-in ladders (§6), with the legacy
//!   4-byte IDs ([`legacy_id`], [`profiles_hex`]) that segment signatures use.
//! - [`parse_json_profiles`] / [`to_json_profiles`] read and write the JSON
//!   profile array of go-livepeer's transcoding options (§5.3); `Profile`
//!   itself (de)serialises with serde in that shape.
//! - [`parse_profiles_arg`] reads a `-transcodingOptions`-style argument.
//!
//! Pure Rust, no I/O besides reading an `@file` argument.

mod arg;
mod error;
mod json;
mod presets;
mod profile;

pub use arg::{parse_profiles_arg, validate_list};
pub use error::ProfileError;
pub use json::{parse_json_profiles, parse_json_values, to_json_profiles, JsonProfile};
pub use presets::{
    builtin, builtin_by_legacy_id, livepeer_default_ladder, preset, studio_default_ladder,
    studio_preset, BUILTIN_NAMES, LIVEPEER_DEFAULT_LADDER, PRESET_NAMES, STUDIO_LADDER_NAMES,
};
pub use profile::{
    custom_name, ffmpeg_name, legacy_id, legacy_id_hex, net_name, profiles_hex, ChromaFormat,
    EncoderProfile, Format, Gop, Profile, VideoCodec, MAX_BITRATE, MAX_DIMENSION, MAX_FRAME_RATE,
    MAX_NAME_LEN, MAX_PIXELS_PER_FRAME, MAX_QUALITY, MIN_BITRATE, MIN_DIMENSION,
};
