//! EIP-191 `personal_sign` signatures on libsecp256k1: 65 bytes `R||S||V`, `V ∈ {27,28}`,
//! low s required on verification (GL eth/accountmanager.go, crypto/verify.go).

use std::fmt;

use secp256k1::ecdsa::{RecoverableSignature, RecoveryId};
use secp256k1::{Message, PublicKey, SecretKey};

use crate::address::Address;
use crate::error::PmError;
use crate::hash::{keccak256, keccak256_concat};

/// Length of an Ethereum signature `R||S||V`.
pub const SIGNATURE_LEN: usize = 65;

/// secp256k1 group order n, big-endian.
const SECP256K1_N: [u8; 32] = [
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe,
    0xba, 0xae, 0xdc, 0xe6, 0xaf, 0x48, 0xa0, 0x3b, 0xbf, 0xd2, 0x5e, 0x8c, 0xd0, 0x36, 0x41, 0x41,
];

/// n / 2, big-endian: the largest s go-ethereum and OpenZeppelin accept.
const SECP256K1_HALF_N: [u8; 32] = [
    0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0x5d, 0x57, 0x6e, 0x73, 0x57, 0xa4, 0x50, 0x1d, 0xdf, 0xe9, 0x2f, 0x46, 0x68, 0x1b, 0x20, 0xa0,
];

/// `keccak256("\x19Ethereum Signed Message:\n" || len(data) || data)` (go-ethereum
/// `accounts.TextHash`). For a 32-byte `data` the prefix is the 28-byte `"...:\n32"`.
pub fn personal_hash(data: &[u8]) -> [u8; 32] {
    let len = data.len().to_string();
    keccak256_concat(&[b"\x19Ethereum Signed Message:\n", len.as_bytes(), data])
}

/// Signs a 32-byte digest as is, returning `R||S||V` with `V ∈ {27,28}`.
pub fn sign_digest(sk: &SecretKey, digest: &[u8; 32]) -> [u8; SIGNATURE_LEN] {
    let sig = RecoverableSignature::sign_ecdsa_recoverable(Message::from_digest(*digest), sk);
    let (recid, rs) = sig.serialize_compact();
    let mut out = [0u8; SIGNATURE_LEN];
    out[..64].copy_from_slice(&rs);
    out[64] = 27 + recid.to_u8();
    out
}

/// Checks the 65-byte format exactly as go-livepeer does before recovering: length 65,
/// `V ∈ {27,28}`, `1 ≤ r < n`, `1 ≤ s ≤ n/2`.
pub fn check_signature_format(sig: &[u8]) -> Result<(), PmError> {
    if sig.len() != SIGNATURE_LEN {
        return Err(PmError::SignatureLength(sig.len()));
    }
    let v = sig[64];
    if v != 27 && v != 28 {
        return Err(PmError::SignatureV(v));
    }
    let (r, s) = (&sig[..32], &sig[32..64]);
    let zero = [0u8; 32];
    if r == zero || s == zero || r >= &SECP256K1_N[..] || s > &SECP256K1_HALF_N[..] {
        return Err(PmError::SignatureValues);
    }
    Ok(())
}

/// Recovers the public key that signed `digest` (no prefix added here).
pub fn recover_pubkey(digest: &[u8; 32], sig: &[u8]) -> Result<PublicKey, PmError> {
    check_signature_format(sig)?;
    let recid =
        RecoveryId::try_from(i32::from(sig[64] - 27)).map_err(|_| PmError::SignatureV(sig[64]))?;
    let rsig = RecoverableSignature::from_compact(&sig[..64], recid)
        .map_err(|_| PmError::SignatureValues)?;
    rsig.recover_ecdsa(Message::from_digest(*digest))
        .map_err(|_| PmError::RecoveryFailed)
}

/// Recovers the address that signed `digest` (no prefix added here).
pub fn recover_digest(digest: &[u8; 32], sig: &[u8]) -> Result<Address, PmError> {
    let pk = recover_pubkey(digest, sig)?;
    Ok(Address::from_uncompressed_pubkey(
        &pk.serialize_uncompressed(),
    ))
}

/// Recovers the signer of `personal_sign(data)`.
pub fn recover_personal(data: &[u8], sig: &[u8]) -> Result<Address, PmError> {
    recover_digest(&personal_hash(data), sig)
}

/// go-livepeer `VerifySig(addr, data, sig)`: true when `sig` is a well-formed
/// `personal_sign(data)` by `addr`. Tickets use this with `data = ticketHash`.
pub fn verify_personal(addr: &Address, data: &[u8], sig: &[u8]) -> bool {
    matches!(recover_personal(data, sig), Ok(a) if a == *addr)
}

/// Verifies a node-level `Sign(msg)` = `personal_sign(keccak256(msg))` (GL core/broadcaster.go,
/// core/orchestrator.go): GetOrchestrator's InfoSig, Ping, segment and result signatures.
pub fn verify_message(addr: &Address, msg: &[u8], sig: &[u8]) -> bool {
    verify_personal(addr, &keccak256(msg), sig)
}

/// Verifies a GetOrchestrator `OrchestratorRequest.sig`: `Sign(utf8(addr.Hex()))` (§3.1).
pub fn verify_address_sig(addr: &Address, sig: &[u8]) -> bool {
    verify_message(addr, addr.to_checksum().as_bytes(), sig)
}

/// An Ethereum account key that signs like go-livepeer's account manager.
#[derive(Clone)]
pub struct Signer {
    sk: SecretKey,
    address: Address,
}

impl Signer {
    /// A signer for a secret key.
    pub fn new(sk: SecretKey) -> Signer {
        let pk = PublicKey::from_secret_key(&sk);
        let address = Address::from_uncompressed_pubkey(&pk.serialize_uncompressed());
        Signer { sk, address }
    }

    /// A signer from 32 secret bytes.
    pub fn from_bytes(bytes: [u8; 32]) -> Result<Signer, PmError> {
        SecretKey::from_secret_bytes(bytes)
            .map(Signer::new)
            .map_err(|_| PmError::InvalidSecretKey)
    }

    /// A signer with a fresh random key from the operating system.
    pub fn random() -> Result<Signer, PmError> {
        loop {
            let mut b = [0u8; 32];
            getrandom::fill(&mut b).map_err(|e| PmError::Randomness(e.to_string()))?;
            // A random 32-byte string is out of range with probability about 2^-128.
            if let Ok(s) = Signer::from_bytes(b) {
                return Ok(s);
            }
        }
    }

    /// The account address.
    pub fn address(&self) -> Address {
        self.address
    }

    /// The secret key.
    pub fn secret_key(&self) -> &SecretKey {
        &self.sk
    }

    /// Account-manager `Sign(data)`: `personal_sign(data)`. Tickets are signed this way over
    /// the 32-byte ticket hash, with no second keccak (§9.2).
    pub fn sign_personal(&self, data: &[u8]) -> [u8; SIGNATURE_LEN] {
        sign_digest(&self.sk, &personal_hash(data))
    }

    /// Node-level `Sign(msg)`: `personal_sign(keccak256(msg))` (§3.1).
    pub fn sign_message(&self, msg: &[u8]) -> [u8; SIGNATURE_LEN] {
        self.sign_personal(&keccak256(msg))
    }

    /// GetOrchestrator's `InfoSig = Sign(utf8(addr.Hex()))` (§3.1).
    pub fn sign_address(&self) -> [u8; SIGNATURE_LEN] {
        self.sign_message(self.address.to_checksum().as_bytes())
    }
}

impl fmt::Debug for Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print the key.
        f.debug_struct("Signer")
            .field("address", &self.address)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hexfmt::{decode, encode};

    // web3.js documentation key and its documented account and signature.
    const WEB3_KEY: &str = "4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318";

    fn web3_signer() -> Signer {
        Signer::from_bytes(crate::hexfmt::decode_array::<32>(WEB3_KEY).expect("hex")).expect("key")
    }

    #[test]
    fn known_key_gives_known_address() {
        assert_eq!(
            web3_signer().address().to_checksum(),
            "0x2c7536E3605D9C16a7a3D7b1898e529396a65c23"
        );
    }

    #[test]
    fn known_personal_sign_vector() {
        // web3.eth.accounts.sign("Some data", key): RFC 6979 nonces make it deterministic.
        let s = web3_signer();
        assert_eq!(
            encode(&personal_hash(b"Some data")),
            "1da44b586eb0729ff70a73c326926f6ed5a25f5b056e7f47fbc6e58d86871655"
        );
        let sig = s.sign_personal(b"Some data");
        assert_eq!(
            encode(&sig),
            "b91467e570a6466aa9e9876cbcd013baba02900b8979d43fe208a4a4f339f5fd6007e74cd82e037b800186422fc2da167c747ef045e5d18a5f5d4300f8e1a0291c"
        );
        assert!(verify_personal(&s.address(), b"Some data", &sig));
    }

    #[test]
    fn thirty_two_byte_prefix_is_28_bytes() {
        let data = [7u8; 32];
        let mut manual = b"\x19Ethereum Signed Message:\n32".to_vec();
        assert_eq!(manual.len(), 28);
        manual.extend_from_slice(&data);
        assert_eq!(personal_hash(&data), keccak256(&manual));
    }

    #[test]
    fn address_sig_round_trip_and_wrong_address() {
        let s = web3_signer();
        let sig = s.sign_address();
        assert!(verify_address_sig(&s.address(), &sig));
        let other = Signer::random().expect("rng");
        assert!(!verify_address_sig(&other.address(), &sig));
    }

    #[test]
    fn malformed_signatures_are_rejected() {
        let s = web3_signer();
        let sig = s.sign_personal(b"x");
        assert_eq!(
            check_signature_format(&sig[..64]),
            Err(PmError::SignatureLength(64))
        );
        let mut bad_v = sig;
        bad_v[64] = 1;
        assert_eq!(check_signature_format(&bad_v), Err(PmError::SignatureV(1)));
        let mut zero_r = sig;
        zero_r[..32].fill(0);
        assert_eq!(
            check_signature_format(&zero_r),
            Err(PmError::SignatureValues)
        );
        assert!(decode("0xzz").is_err());
    }
}
