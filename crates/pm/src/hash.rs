//! Keccak-256 (the Ethereum variant, not SHA3-256).

use tiny_keccak::{Hasher, Keccak};

/// `keccak256(data)`.
pub fn keccak256(data: &[u8]) -> [u8; 32] {
    keccak256_concat(&[data])
}

/// `keccak256(parts[0] || parts[1] || ...)` without building the concatenation.
pub fn keccak256_concat(parts: &[&[u8]]) -> [u8; 32] {
    let mut k = Keccak::v256();
    for p in parts {
        k.update(p);
    }
    let mut out = [0u8; 32];
    k.finalize(&mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hexfmt::encode;

    #[test]
    fn keccak_of_empty_input_is_the_ethereum_constant() {
        assert_eq!(
            encode(&keccak256(b"")),
            "c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470"
        );
    }

    #[test]
    fn concat_equals_hash_of_concatenation() {
        assert_eq!(keccak256_concat(&[b"ab", b"c"]), keccak256(b"abc"));
    }
}
