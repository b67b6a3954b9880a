//! Random ids and secrets in the shapes Livepeer Studio uses, and the clock.

use std::time::{SystemTime, UNIX_EPOCH};

use sha2::{Digest, Sha256};

use crate::StoreError;

const BASE36: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";

fn random_bytes<const N: usize>() -> Result<[u8; N], StoreError> {
    let mut buf = [0u8; N];
    getrandom::fill(&mut buf).map_err(|e| StoreError::Randomness(e.to_string()))?;
    Ok(buf)
}

/// A random UUID v4 in its usual lowercase text form: the id of every row.
pub fn uuid_v4() -> Result<String, StoreError> {
    let mut b = random_bytes::<16>()?;
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    Ok(uuid_text(&b))
}

/// The usual lowercase text form of 16 UUID bytes.
fn uuid_text(b: &[u8; 16]) -> String {
    let hex = to_hex(b);
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// A UUID (version 5 layout, SHA-256 instead of SHA-1) determined by `parts`: the same parts
/// always give the same id, so an event replayed from the bus gets the id it had the first
/// time and is delivered once. Each part is length-prefixed, so `["ab", "c"]` and
/// `["a", "bc"]` differ.
pub fn derived_uuid(parts: &[&str]) -> String {
    let mut hash = Sha256::new();
    for part in parts {
        hash.update((part.len() as u64).to_be_bytes());
        hash.update(part.as_bytes());
    }
    let digest = hash.finalize();
    let mut b = [0u8; 16];
    b.copy_from_slice(&digest[..16]);
    b[6] = (b[6] & 0x0f) | 0x50;
    b[8] = (b[8] & 0x3f) | 0x80;
    uuid_text(&b)
}

/// `len` random base36 characters, each equally likely.
fn base36(len: usize) -> Result<String, StoreError> {
    let mut out = String::with_capacity(len);
    while out.len() < len {
        // 252 = 7 x 36: rejecting bytes above it keeps the characters uniform
        for b in random_bytes::<32>()?.into_iter().filter(|b| *b < 252) {
            if out.len() == len {
                break;
            }
            out.push(char::from(BASE36[usize::from(b % 36)]));
        }
    }
    Ok(out)
}

/// A stream key as Studio makes them: `xxxx-xxxx-xxxx-xxxx` in base36, its first four
/// characters those of the stream id (Studio's shard prefix).
pub fn stream_key(stream_id: &str) -> Result<String, StoreError> {
    let tail = base36(12)?;
    Ok(format!(
        "{}-{}-{}-{}",
        shard_prefix(stream_id)?,
        &tail[0..4],
        &tail[4..8],
        &tail[8..12]
    ))
}

/// A playback id as Studio makes them: 16 base36 characters starting with the id's first four.
pub fn playback_id(stream_id: &str) -> Result<String, StoreError> {
    Ok(format!("{}{}", shard_prefix(stream_id)?, base36(12)?))
}

fn shard_prefix(id: &str) -> Result<&str, StoreError> {
    id.get(0..4)
        .filter(|p| p.bytes().all(|b| BASE36.contains(&b)))
        .ok_or_else(|| StoreError::Invalid {
            field: "id",
            reason: format!("{id:?} does not start with 4 base36 characters"),
        })
}

/// Prefix of every API key secret, so that a leaked key is recognisable (secret scanners).
pub const API_KEY_PREFIX: &str = "lf_";

/// A fresh API key secret: [`API_KEY_PREFIX`] and 192 random bits in hex.
pub fn api_key_secret() -> Result<String, StoreError> {
    Ok(format!(
        "{API_KEY_PREFIX}{}",
        to_hex(&random_bytes::<24>()?)
    ))
}

/// What is stored of an API key: SHA-256 of the secret, hex. A fast hash is enough because
/// the secret has 192 random bits; nothing about it can be guessed from the hash.
pub fn api_key_hash(secret: &str) -> String {
    to_hex(&Sha256::digest(secret.as_bytes()))
}

fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Milliseconds since the Unix epoch: the clock of every timestamp in the store.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_are_version_4() {
        let id = uuid_v4().expect("uuid");
        assert_eq!(id.len(), 36);
        assert_eq!(&id[14..15], "4");
        assert!(matches!(&id[19..20], "8" | "9" | "a" | "b"), "{id}");
        assert_ne!(id, uuid_v4().expect("uuid"));
    }

    #[test]
    fn derived_uuids_are_stable_and_unambiguous() {
        let id = derived_uuid(&["session-1", "stream.started"]);
        assert_eq!(id, derived_uuid(&["session-1", "stream.started"]));
        assert_eq!(id.len(), 36);
        assert_eq!(&id[14..15], "5");
        assert_ne!(id, derived_uuid(&["session-1", "stream.idle"]));
        assert_ne!(derived_uuid(&["ab", "c"]), derived_uuid(&["a", "bc"]));
    }

    #[test]
    fn keys_and_playback_ids_have_studio_shapes() {
        let id = "ab12c3d4-0000-4000-8000-000000000000";
        let key = stream_key(id).expect("key");
        assert_eq!(key.len(), 19);
        assert!(key.starts_with("ab12-"));
        assert_eq!(key.matches('-').count(), 3);
        let pid = playback_id(id).expect("pid");
        assert_eq!(pid.len(), 16);
        assert!(pid.starts_with("ab12"));
        assert!(pid.bytes().all(|b| BASE36.contains(&b)));
        assert!(stream_key("A!").is_err());
    }

    #[test]
    fn api_key_hash_is_sha256_hex() {
        assert_eq!(
            api_key_hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let secret = api_key_secret().expect("secret");
        assert!(secret.starts_with(API_KEY_PREFIX));
        assert_eq!(secret.len(), API_KEY_PREFIX.len() + 48);
    }
}
