//! The stream record and the random ids it is made of.

use livefarm_profiles::Profile;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::RegistryError;

/// A live stream as the registry knows it; serialises in Livepeer Studio's camelCase shape
/// (`streamKey`, `playbackId`, `createdAt`, profiles as §5.3 JSON objects).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Stream {
    /// Stable id; also the stream id on the bus and in storage keys.
    pub id: String,
    /// Name given by the creator.
    pub name: String,
    /// Secret the publisher authenticates with.
    pub stream_key: String,
    /// Public id of the playback URLs.
    pub playback_id: String,
    /// The rendition ladder.
    #[serde(
        serialize_with = "serialize_profiles",
        deserialize_with = "deserialize_profiles"
    )]
    pub profiles: Vec<Profile>,
    /// Whether the whole session is kept as a VOD playlist.
    pub record: bool,
    /// Creation time, ms since the epoch.
    pub created_at: u64,
}

impl Stream {
    /// A stream with fresh random id (32 characters), stream key (24) and playback id (16).
    pub fn new(name: String, profiles: Vec<Profile>, record: bool) -> Result<Self, RegistryError> {
        Ok(Stream {
            id: random_id(32)?,
            name,
            stream_key: random_id(24)?,
            playback_id: random_id(16)?,
            profiles,
            record,
            created_at: now_ms(),
        })
    }

    /// Checks what a registry needs: ids that follow Livefarm's one id rule (each becomes a
    /// bus key part, a storage path segment or a URL segment) and differ from each other.
    pub fn validate(&self) -> Result<(), RegistryError> {
        for (field, value) in [
            ("id", &self.id),
            ("streamKey", &self.stream_key),
            ("playbackId", &self.playback_id),
        ] {
            livefarm_storage::keys::check_id(value)
                .map_err(|reason| RegistryError::InvalidStream(format!("{field}: {reason}")))?;
        }
        // the key is secret and the playback id public: one must never reveal the other
        if self.stream_key == self.playback_id {
            return Err(RegistryError::InvalidStream(
                "streamKey and playbackId must differ".to_owned(),
            ));
        }
        Ok(())
    }
}

fn serialize_profiles<S: Serializer>(
    profiles: &[Profile],
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.collect_seq(profiles)
}

fn deserialize_profiles<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Vec<Profile>, D::Error> {
    let entries = Vec::<serde_json::Value>::deserialize(deserializer)?;
    livefarm_profiles::parse_json_values(&entries).map_err(serde::de::Error::custom)
}

/// Milliseconds since the Unix epoch (the clock of every `*_ms` timestamp).
pub use livefarm_jobs::now_ms;

const ALPHABET: &[u8; 62] = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";

/// `len` random letters and digits (url-safe, valid as a stream id and a storage key part).
pub fn random_id(len: usize) -> Result<String, RegistryError> {
    let mut out = String::with_capacity(len);
    let mut buf = [0u8; 64];
    while out.len() < len {
        getrandom::fill(&mut buf).map_err(|e| RegistryError::Randomness(e.to_string()))?;
        // rejection sampling keeps every character equally likely
        for b in buf.iter().map(|b| b & 0x3f).filter(|b| *b < 62) {
            if out.len() == len {
                break;
            }
            out.push(char::from(ALPHABET[usize::from(b)]));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_ids_are_url_safe() {
        let id = random_id(40).expect("random");
        assert_eq!(id.len(), 40);
        assert!(id.chars().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(id, random_id(40).expect("random"));
    }

    #[test]
    fn json_round_trips_in_studio_shape() {
        let profiles = livefarm_profiles::studio_default_ladder();
        let stream = Stream::new("cam".to_owned(), profiles, true).expect("stream");
        let json = serde_json::to_value(&stream).expect("serialise");
        assert_eq!(json["streamKey"], stream.stream_key.as_str());
        assert_eq!(json["playbackId"], stream.playback_id.as_str());
        assert_eq!(json["profiles"][0]["width"], stream.profiles[0].width);
        let back: Stream = serde_json::from_value(json).expect("deserialise");
        assert_eq!(back, stream);
    }

    #[test]
    fn ids_must_be_url_safe_and_distinct() {
        let mut stream = Stream::new("cam".to_owned(), Vec::new(), false).expect("stream");
        stream.validate().expect("valid");
        stream.stream_key = "a/b".to_owned();
        assert!(stream.validate().is_err());
        stream.stream_key = stream.playback_id.clone();
        assert!(stream.validate().is_err());
    }
}
