//! Hex encoding and the serde helpers that write bytes and integers as `0x` strings.

use crate::error::PmError;

const DIGITS: &[u8; 16] = b"0123456789abcdef";

/// Lowercase hex without a prefix.
pub fn encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[(b >> 4) as usize] as char);
        out.push(DIGITS[(b & 0x0f) as usize] as char);
    }
    out
}

/// Lowercase hex with a `0x` prefix.
pub fn encode_prefixed(bytes: &[u8]) -> String {
    format!("0x{}", encode(bytes))
}

fn nibble(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Decodes hex with or without a `0x` prefix, in either case.
pub fn decode(s: &str) -> Result<Vec<u8>, PmError> {
    let s = s
        .strip_prefix("0x")
        .or_else(|| s.strip_prefix("0X"))
        .unwrap_or(s);
    let bytes = s.as_bytes();
    // An odd length is read as if it had one leading zero, like a JSON-RPC quantity.
    let padded: Vec<u8>;
    let bytes = if bytes.len() % 2 == 1 {
        padded = std::iter::once(b'0').chain(bytes.iter().copied()).collect();
        &padded[..]
    } else {
        bytes
    };
    bytes
        .chunks(2)
        .map(|pair| match (nibble(pair[0]), nibble(pair[1])) {
            (Some(h), Some(l)) => Ok(h << 4 | l),
            _ => Err(PmError::InvalidHex(s.to_string())),
        })
        .collect()
}

/// Decodes exactly `N` bytes of hex.
pub fn decode_array<const N: usize>(s: &str) -> Result<[u8; N], PmError> {
    let v = decode(s)?;
    v.try_into()
        .map_err(|v: Vec<u8>| PmError::InvalidHex(format!("{s}: {} bytes, want {N}", v.len())))
}

/// Serde: `Vec<u8>` as a `0x` hex string.
pub mod bytes {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::encode_prefixed(v))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = String::deserialize(d)?;
        super::decode(&s).map_err(serde::de::Error::custom)
    }
}

/// Serde: `[u8; 32]` as a `0x` hex string.
pub mod bytes32 {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[u8; 32], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::encode_prefixed(v))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 32], D::Error> {
        let s = String::deserialize(d)?;
        super::decode_array::<32>(&s).map_err(serde::de::Error::custom)
    }
}

/// Serde: a `U256` as a decimal string (exact, and what Go's `big.Int` prints).
pub mod u256_dec {
    use crate::num::U256;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &U256, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&v.to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<U256, D::Error> {
        let s = String::deserialize(d)?;
        U256::from_str_radix(&s, 10).map_err(serde::de::Error::custom)
    }
}
