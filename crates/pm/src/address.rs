//! 20-byte Ethereum addresses and their EIP-55 checksummed form (Go `common.Address.Hex()`).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::PmError;
use crate::hash::keccak256;
use crate::hexfmt;

/// An Ethereum account address.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Address(pub [u8; 20]);

impl Address {
    /// The zero address.
    pub const ZERO: Address = Address([0u8; 20]);

    /// Go `common.BytesToAddress`: keeps the last 20 bytes, left-pads shorter input with zeros.
    /// Peers send addresses as raw proto bytes, and go-livepeer reads them this way.
    pub fn from_slice_lenient(bytes: &[u8]) -> Address {
        let mut out = [0u8; 20];
        let take = bytes.len().min(20);
        out[20 - take..].copy_from_slice(&bytes[bytes.len() - take..]);
        Address(out)
    }

    /// Whether this is the zero address.
    pub fn is_zero(&self) -> bool {
        self.0 == [0u8; 20]
    }

    /// The address of an uncompressed public key: the last 20 bytes of `keccak256(x || y)`.
    pub fn from_uncompressed_pubkey(pubkey65: &[u8; 65]) -> Address {
        let h = keccak256(&pubkey65[1..]);
        let mut out = [0u8; 20];
        out.copy_from_slice(&h[12..]);
        Address(out)
    }

    /// The EIP-55 checksummed `0x…` string, 42 ASCII bytes (Go `Address.Hex()`).
    pub fn to_checksum(&self) -> String {
        let lower = hexfmt::encode(&self.0);
        let h = keccak256(lower.as_bytes());
        let mut out = String::with_capacity(42);
        out.push_str("0x");
        for (i, c) in lower.chars().enumerate() {
            let nib = (h[i / 2] >> if i % 2 == 0 { 4 } else { 0 }) & 0x0f;
            if c.is_ascii_alphabetic() && nib >= 8 {
                out.push(c.to_ascii_uppercase());
            } else {
                out.push(c);
            }
        }
        out
    }
}

impl FromStr for Address {
    type Err = PmError;

    /// Parses 40 hex digits, with or without `0x`, in any case (the checksum is not enforced).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Address(hexfmt::decode_array::<20>(s)?))
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_checksum())
    }
}

impl fmt::Debug for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_checksum())
    }
}

impl Serialize for Address {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_checksum())
    }
}

impl<'de> Deserialize<'de> for Address {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The test vectors of EIP-55 itself.
    const EIP55: [&str; 4] = [
        "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
        "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359",
        "0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB",
        "0xD1220A0cf47c7B9Be7A2E6BA89F429762e7b9aDb",
    ];

    #[test]
    fn eip55_vectors_round_trip_from_lowercase() {
        for v in EIP55 {
            let a: Address = v.to_lowercase().parse().expect("valid hex");
            assert_eq!(a.to_checksum(), v);
            assert_eq!(a.to_string().len(), 42);
        }
    }

    #[test]
    fn lenient_bytes_keep_the_last_twenty() {
        let mut long = vec![0xaa; 2];
        long.extend_from_slice(&[1u8; 20]);
        assert_eq!(Address::from_slice_lenient(&long), Address([1u8; 20]));
        let short = Address::from_slice_lenient(&[7]);
        assert_eq!(short.0[19], 7);
        assert!(short.0[..19].iter().all(|b| *b == 0));
        assert!(Address::from_slice_lenient(&[]).is_zero());
    }
}
