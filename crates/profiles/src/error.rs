//! Errors for profile parsing and validation.

use std::path::PathBuf;

use crate::profile::VideoCodec;

/// Everything that can go wrong while reading, converting or validating profiles.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProfileError {
    /// A field of a profile is out of the range this transcoder accepts.
    #[error("profile {name:?}: invalid {field}: {reason}")]
    Invalid {
        name: String,
        field: &'static str,
        reason: String,
    },
    /// The profile asks for an encoder this transcoder cannot run.
    #[error("profile {name:?}: {codec} encoding is not supported by this transcoder")]
    UnsupportedEncoder { name: String, codec: VideoCodec },
    /// Wire `Format` value outside the enum (message as go-livepeer's).
    #[error("unrecognized profile output format")]
    UnrecognizedFormat(i32),
    /// Wire `Profile` value outside the enum (message as go-livepeer's).
    #[error("unrecognized encoder profile")]
    UnrecognizedEncoderProfile(i32),
    /// Wire `VideoCodec` value outside the enum (message as go-livepeer's).
    #[error("unrecognized video codec")]
    UnrecognizedCodec(i32),
    /// Wire `ChromaSubsampling` value outside the enum.
    #[error("unrecognized chroma format")]
    UnrecognizedChromaFormat(i32),
    /// Wire GOP that is negative but not a known special code.
    #[error("unrecognized gop value {0}")]
    UnrecognizedGop(i32),
    /// The JSON text is not a JSON array (syntax error or wrong top-level type).
    #[error("invalid profile json: {0}")]
    JsonSyntax(String),
    /// An array entry is not an object.
    #[error("profile json entry {index}: {reason}")]
    JsonEntry { index: usize, reason: String },
    /// A field of an array entry has the wrong type or value.
    #[error("profile json entry {index}: field {field:?}: {reason}")]
    JsonField {
        index: usize,
        field: &'static str,
        reason: String,
    },
    /// A name in a comma-separated list is not a known preset.
    #[error("unknown preset {0:?}")]
    UnknownPreset(String),
    /// Two profiles in one list share a name (their outputs would collide).
    #[error("duplicate profile name {0:?}")]
    DuplicateName(String),
    /// A profile list must hold at least one profile.
    #[error("empty profile list")]
    EmptyList,
    /// The `@file` given for a profile list could not be read.
    #[error("read profiles file {path}: {source}")]
    ReadFile {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A profile of a list failed validation; `index` is its position.
    #[error("profile list entry {index}: {source}")]
    Entry {
        index: usize,
        #[source]
        source: Box<ProfileError>,
    },
}
