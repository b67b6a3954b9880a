//! The Studio objects the API reads and writes (§2.1, §2.2), typed once: request payloads
//! (`deny_unknown_fields`, so an unknown field is a 422), the stream object as answered
//! ([`Stream`], [`stream_json`]), and the part of it the store keeps as `spec`
//! ([`StreamSpec`]).
//!
//! Response rules (§1.5): optional fields that are unset are omitted, never `null`, except the
//! fields Studio's schema marks nullable (`lastTerminatedAt`); enum fields only ever carry the
//! values the SDKs know.

use livefarm_store::StreamRecord;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

/// H.264 profile of a rendition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub enum H264Profile {
    H264Baseline,
    H264Main,
    H264High,
    H264ConstrainedHigh,
}

/// Encoder of a live rendition (only H.264).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub enum FfmpegEncoder {
    #[serde(rename = "H.264")]
    H264,
}

/// Encoder of a recording rendition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub enum TranscodeEncoder {
    #[serde(rename = "H.264")]
    H264,
    #[serde(rename = "HEVC")]
    Hevc,
    #[serde(rename = "VP8")]
    Vp8,
    #[serde(rename = "VP9")]
    Vp9,
}

/// One rendition of a live stream (Studio's `ffmpeg-profile`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FfmpegProfile {
    /// 1 to 500 characters, not `source`, unique in the stream.
    pub name: String,
    /// At least 128.
    pub width: i64,
    /// At least 128.
    pub height: i64,
    /// Bits per second, at least 400.
    pub bitrate: i64,
    /// Frames per second; 0 keeps the source's rate.
    pub fps: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false, minimum = 1)]
    pub fps_den: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false, minimum = 0, maximum = 44)]
    pub quality: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub gop: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub profile: Option<H264Profile>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub encoder: Option<FfmpegEncoder>,
}

/// One rendition of a recording (Studio's `transcode-profile`): only `bitrate` is required.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TranscodeProfile {
    pub bitrate: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub width: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub height: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub fps: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub fps_den: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub quality: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub gop: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub profile: Option<H264Profile>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub encoder: Option<TranscodeEncoder>,
}

/// Renditions of a recording.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RecordingSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub profiles: Option<Vec<TranscodeProfile>>,
}

/// Who may play a stream (§7.1). Absent or `null`: public.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum PlaybackPolicyType {
    Public,
    Jwt,
    Webhook,
}

/// A playback policy (§7.1).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PlaybackPolicy {
    #[serde(rename = "type")]
    pub kind: PlaybackPolicyType,
    /// The access-control webhook (type `webhook`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub webhook_id: Option<String>,
    /// Passed to the access-control webhook as `context`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false, value_type = Object)]
    pub webhook_context: Option<Map<String, Value>>,
    /// Seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub refresh_interval: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub allowed_origins: Option<Vec<String>>,
}

/// An inline multistream target (write-only: never answered).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TargetSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub name: Option<String>,
    /// `rtmp://`, `rtmps://` or `srt://`.
    pub url: String,
}

/// Where a rendition of the stream is pushed (as given).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Target {
    /// A profile name of the stream, or `source`.
    pub profile: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub video_only: Option<bool>,
    /// An existing multistream target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub id: Option<String>,
    /// A target made inline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub spec: Option<TargetSpec>,
}

/// The stream's multistream targets.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Multistream {
    #[serde(default)]
    pub targets: Vec<Target>,
}

/// A target as answered: the inline spec (its URL holds a stream key) is write-only.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TargetOut {
    pub profile: String,
    pub video_only: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub id: Option<String>,
}

/// The stream's multistream targets, as answered.
#[derive(Debug, Clone, PartialEq, Default, Serialize, ToSchema)]
pub struct MultistreamOut {
    pub targets: Vec<TargetOut>,
}

/// `creatorId` as answered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreatorId {
    /// Always `unverified`.
    #[serde(rename = "type")]
    pub kind: CreatorIdType,
    pub value: String,
}

/// The kinds of creator id (only `unverified`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum CreatorIdType {
    Unverified,
}

/// `creatorId` as given: a plain string or the object.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum CreatorIdInput {
    Plain(String),
    Object(CreatorId),
}

impl From<CreatorIdInput> for CreatorId {
    fn from(input: CreatorIdInput) -> Self {
        match input {
            CreatorIdInput::Plain(value) => CreatorId {
                kind: CreatorIdType::Unverified,
                value,
            },
            CreatorIdInput::Object(id) => id,
        }
    }
}

/// `POST /api/stream` (Studio's `new-stream-payload`).
#[derive(Debug, Clone, PartialEq, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewStreamPayload {
    pub name: String,
    #[serde(default)]
    #[schema(nullable = false)]
    pub creator_id: Option<CreatorIdInput>,
    /// `null` or absent: public.
    #[serde(default)]
    pub playback_policy: Option<PlaybackPolicy>,
    /// `null` or absent: the default ladder (§2.2).
    #[serde(default)]
    pub profiles: Option<Vec<FfmpegProfile>>,
    #[serde(default)]
    #[schema(nullable = false)]
    pub record: Option<bool>,
    /// Only with `record: true`.
    #[serde(default)]
    #[schema(nullable = false)]
    pub recording_spec: Option<RecordingSpec>,
    #[serde(default)]
    #[schema(nullable = false)]
    pub multistream: Option<Multistream>,
    /// Strings, numbers or arrays of them; at most 2048 characters of JSON.
    #[serde(default)]
    #[schema(nullable = false, value_type = Object)]
    pub user_tags: Option<Map<String, Value>>,
}

/// Reads a field that may be absent (`None`), `null` (`Some(None)`) or set.
fn nullable<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

/// `PATCH /api/stream/{id}` (Studio's `stream-patch-payload`); absent fields stay as they are.
#[derive(Debug, Clone, PartialEq, Default, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct StreamPatchPayload {
    #[serde(default)]
    #[schema(nullable = false)]
    pub name: Option<String>,
    #[serde(default)]
    #[schema(nullable = false)]
    pub creator_id: Option<CreatorIdInput>,
    #[serde(default)]
    #[schema(nullable = false)]
    pub record: Option<bool>,
    #[serde(default)]
    #[schema(nullable = false)]
    pub suspended: Option<bool>,
    #[serde(default)]
    #[schema(nullable = false)]
    pub multistream: Option<Multistream>,
    /// `null`: public.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<PlaybackPolicy>)]
    pub playback_policy: Option<Option<PlaybackPolicy>>,
    /// `null`: the default ladder.
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<Vec<FfmpegProfile>>)]
    pub profiles: Option<Option<Vec<FfmpegProfile>>>,
    #[serde(default)]
    #[schema(nullable = false)]
    pub recording_spec: Option<RecordingSpec>,
    #[serde(default)]
    #[schema(nullable = false, value_type = Object)]
    pub user_tags: Option<Map<String, Value>>,
}

/// Legacy `PATCH /api/stream/{id}/suspended`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SuspendPayload {
    pub suspended: bool,
}

/// What the store keeps of a stream besides its columns (the store's `spec`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StreamSpec {
    #[serde(default)]
    pub profiles: Vec<FfmpegProfile>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recording_spec: Option<RecordingSpec>,
    #[serde(default)]
    pub multistream: Multistream,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub playback_policy: Option<PlaybackPolicy>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub creator_id: Option<CreatorId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_tags: Option<Map<String, Value>>,
}

impl StreamSpec {
    /// The spec stored with `record`; `None` (logged) if it does not decode.
    pub fn of(record: &StreamRecord) -> Option<StreamSpec> {
        // straight from the stored map: no copy of it
        match StreamSpec::deserialize(&record.spec) {
            Ok(spec) => Some(spec),
            Err(error) => {
                tracing::warn!(%error, stream_id = record.id, "stored stream spec does not decode");
                None
            }
        }
    }

    /// As the store keeps it.
    pub fn to_map(&self) -> Map<String, Value> {
        match serde_json::to_value(self) {
            Ok(Value::Object(map)) => map,
            // a struct of plain data always serializes to an object
            _ => Map::new(),
        }
    }
}

/// Studio's default ladder (§2.2): 240p0, 360p0, 480p0, 720p0 at the source frame rate.
pub fn default_ladder() -> Vec<FfmpegProfile> {
    [
        ("240p0", 426, 240, 250_000),
        ("360p0", 640, 360, 800_000),
        ("480p0", 854, 480, 1_600_000),
        ("720p0", 1280, 720, 3_000_000),
    ]
    .into_iter()
    .map(|(name, width, height, bitrate)| FfmpegProfile {
        name: name.to_owned(),
        width,
        height,
        bitrate,
        fps: 0,
        fps_den: None,
        quality: None,
        gop: None,
        profile: Some(H264Profile::H264ConstrainedHigh),
        encoder: None,
    })
    .collect()
}

/// The stream object (§2.1), as `POST`, `GET` and list answer it.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Stream {
    pub id: String,
    pub name: String,
    /// Always `stream`.
    pub kind: String,
    /// The tenant.
    pub user_id: String,
    /// The tenant (a tenant is its own project).
    pub project_id: String,
    /// Unix milliseconds.
    pub created_at: i64,
    /// Name of the API key that made the stream.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub created_by_token_name: Option<String>,
    /// `xxxx-xxxx-xxxx-xxxx`: publish to `rtmp://<ingest>/live/<streamKey>`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub stream_key: Option<String>,
    pub playback_id: String,
    pub profiles: Vec<FfmpegProfile>,
    /// Always `{}`.
    #[schema(value_type = Object)]
    pub renditions: Map<String, Value>,
    pub record: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub recording_spec: Option<RecordingSpec>,
    pub multistream: MultistreamOut,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub playback_policy: Option<PlaybackPolicy>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub creator_id: Option<CreatorId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false, value_type = Object)]
    pub user_tags: Option<Map<String, Value>>,
    pub is_active: bool,
    /// Unix milliseconds a publisher was last seen; 0 if never.
    pub last_seen: i64,
    pub suspended: bool,
    /// Unix milliseconds of the last terminate; `null` if never.
    pub last_terminated_at: Option<i64>,
    pub source_segments: i64,
    pub transcoded_segments: i64,
    pub source_segments_duration: f64,
    pub transcoded_segments_duration: f64,
    pub source_bytes: i64,
    pub transcoded_bytes: i64,
}

impl Stream {
    /// The object of `record`; `with_key: false` leaves out `streamKey` (webhook payloads).
    pub fn of(record: &StreamRecord, with_key: bool) -> Stream {
        let spec = StreamSpec::of(record).unwrap_or_default();
        let targets = spec
            .multistream
            .targets
            .into_iter()
            .map(|target| TargetOut {
                profile: target.profile,
                video_only: target.video_only.unwrap_or(false),
                id: target.id,
            })
            .collect();
        Stream {
            id: record.id.clone(),
            name: record.name.clone(),
            kind: "stream".to_owned(),
            user_id: record.tenant_id.clone(),
            project_id: record.tenant_id.clone(),
            created_at: record.created_at,
            created_by_token_name: record.created_by_key_name.clone(),
            stream_key: with_key.then(|| record.stream_key.clone()),
            playback_id: record.playback_id.clone(),
            profiles: spec.profiles,
            renditions: Map::new(),
            record: record.record,
            recording_spec: spec.recording_spec,
            multistream: MultistreamOut { targets },
            playback_policy: spec.playback_policy,
            creator_id: spec.creator_id,
            user_tags: spec.user_tags,
            is_active: record.is_active,
            last_seen: record.last_seen,
            suspended: record.suspended,
            last_terminated_at: record.last_terminated_at,
            source_segments: record.counters.source_segments,
            transcoded_segments: record.counters.transcoded_segments,
            source_segments_duration: record.counters.source_duration_ms as f64 / 1000.0,
            transcoded_segments_duration: record.counters.transcoded_duration_ms as f64 / 1000.0,
            source_bytes: record.counters.source_bytes,
            transcoded_bytes: record.counters.transcoded_bytes,
        }
    }
}

/// The §2.1 stream object of `record` as JSON; `with_key: false` leaves out `streamKey`
/// (webhook payloads).
pub fn stream_json(record: &StreamRecord, with_key: bool) -> Value {
    serde_json::to_value(Stream::of(record, with_key)).unwrap_or_else(|error| {
        // plain data with string keys: cannot fail
        tracing::error!(%error, "stream object does not serialize");
        Value::Null
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn record(spec: Map<String, Value>) -> StreamRecord {
        StreamRecord {
            id: "ab12c3d4-0000-4000-8000-000000000000".to_owned(),
            tenant_id: "t1".to_owned(),
            name: "cam".to_owned(),
            stream_key: "ab12-aaaa-bbbb-cccc".to_owned(),
            playback_id: "ab12aaaabbbbcccc".to_owned(),
            record: false,
            suspended: false,
            is_active: false,
            last_seen: 0,
            last_terminated_at: None,
            created_at: 1_700_000_000_000,
            updated_at: 1_700_000_000_000,
            created_by_key_name: Some("tok".to_owned()),
            spec,
            counters: Default::default(),
        }
    }

    #[test]
    fn a_new_stream_has_studios_default_fields_and_no_nulls_but_the_nullable() {
        let spec = StreamSpec {
            profiles: default_ladder(),
            ..StreamSpec::default()
        };
        let value = stream_json(&record(spec.to_map()), true);
        let object = value.as_object().expect("object");
        for (key, field) in object {
            if key != "lastTerminatedAt" {
                assert!(!field.is_null(), "{key} is null");
            }
        }
        assert_eq!(value["lastTerminatedAt"], Value::Null);
        assert_eq!(value["kind"], "stream");
        assert_eq!(value["renditions"], json!({}));
        assert_eq!(value["multistream"], json!({"targets": []}));
        assert_eq!(value["isActive"], false);
        assert_eq!(value["lastSeen"], 0);
        assert_eq!(value["createdByTokenName"], "tok");
        assert_eq!(value["streamKey"], "ab12-aaaa-bbbb-cccc");
        assert_eq!(
            value["profiles"][0],
            json!({"name":"240p0","fps":0,"bitrate":250000,"width":426,"height":240,"profile":"H264ConstrainedHigh"})
        );
        for absent in [
            "playbackPolicy",
            "userTags",
            "creatorId",
            "recordingSpec",
            "isHealthy",
        ] {
            assert!(!object.contains_key(absent), "{absent} present");
        }
        let no_key = stream_json(&record(spec.to_map()), false);
        assert!(no_key.get("streamKey").is_none());
    }

    #[test]
    fn inline_target_specs_are_never_answered() {
        let spec: StreamSpec = serde_json::from_value(json!({
            "profiles": [],
            "multistream": {"targets": [{"profile": "source", "spec": {"url": "rtmp://x/live/secret"}}]}
        }))
        .expect("spec");
        let value = stream_json(&record(spec.to_map()), true);
        assert_eq!(
            value["multistream"]["targets"],
            json!([{"profile": "source", "videoOnly": false}])
        );
        assert!(!value.to_string().contains("secret"));
    }

    #[test]
    fn creator_ids_map_to_the_object() {
        let plain: CreatorIdInput = serde_json::from_value(json!("me")).expect("plain");
        assert_eq!(
            serde_json::to_value(CreatorId::from(plain)).expect("json"),
            json!({"type": "unverified", "value": "me"})
        );
    }
}
