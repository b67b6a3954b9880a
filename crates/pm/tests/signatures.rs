//! Property tests of EIP-191 signing and verification.

use livefarm_pm::hash::keccak256;
use livefarm_pm::sig::{personal_hash, recover_pubkey, sign_digest, verify_personal, Signer};
use livefarm_pm::{Address, PmError, U256};
use proptest::prelude::*;

const N: &str = "fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141";

fn signer(seed: [u8; 32]) -> Signer {
    // Hash the seed so every input is a valid key with overwhelming probability.
    Signer::from_bytes(keccak256(&seed)).expect("keccak output is a valid key")
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn sign_then_verify_round_trips(seed in any::<[u8; 32]>(), msg in proptest::collection::vec(any::<u8>(), 0..200)) {
        let s = signer(seed);
        let sig = s.sign_personal(&msg);
        prop_assert!(sig[64] == 27 || sig[64] == 28);
        prop_assert!(verify_personal(&s.address(), &msg, &sig));
        let node_sig = s.sign_message(&msg);
        prop_assert!(livefarm_pm::sig::verify_message(&s.address(), &msg, &node_sig));
    }

    #[test]
    fn tampered_message_fails(seed in any::<[u8; 32]>(), msg in proptest::collection::vec(any::<u8>(), 1..100), idx in any::<usize>(), bit in 0u8..8) {
        let s = signer(seed);
        let sig = s.sign_personal(&msg);
        let mut bad = msg.clone();
        let i = idx % bad.len();
        bad[i] ^= 1 << bit;
        prop_assert!(!verify_personal(&s.address(), &bad, &sig));
    }

    #[test]
    fn tampered_signature_fails(seed in any::<[u8; 32]>(), msg in proptest::collection::vec(any::<u8>(), 0..100), idx in 0usize..64, bit in 0u8..8) {
        let s = signer(seed);
        let mut sig = s.sign_personal(&msg);
        sig[idx] ^= 1 << bit;
        prop_assert!(!verify_personal(&s.address(), &msg, &sig));
    }

    #[test]
    fn wrong_signer_fails(a in any::<[u8; 32]>(), b in any::<[u8; 32]>(), msg in proptest::collection::vec(any::<u8>(), 0..64)) {
        prop_assume!(a != b);
        let sig = signer(a).sign_personal(&msg);
        prop_assert!(!verify_personal(&signer(b).address(), &msg, &sig));
    }

    #[test]
    fn high_s_is_rejected(seed in any::<[u8; 32]>(), digest in any::<[u8; 32]>()) {
        let s = signer(seed);
        let sig = sign_digest(s.secret_key(), &personal_hash(&digest));
        // The malleable twin (n − s, flipped parity) is mathematically valid for the same key.
        let n = U256::from_str_radix(N, 16).expect("n");
        let low_s = U256::from_be_slice(&sig[32..64]);
        let high_s = n - low_s;
        let mut twin = sig;
        twin[32..64].copy_from_slice(&high_s.to_be_bytes::<32>());
        twin[64] = if sig[64] == 27 { 28 } else { 27 };
        prop_assert_eq!(recover_pubkey(&personal_hash(&digest), &twin).err(), Some(PmError::SignatureValues));
        prop_assert!(!verify_personal(&s.address(), &digest, &twin));
        prop_assert!(verify_personal(&s.address(), &digest, &sig));
    }

    #[test]
    fn v_outside_27_28_is_rejected(seed in any::<[u8; 32]>(), msg in proptest::collection::vec(any::<u8>(), 0..64), v in any::<u8>()) {
        prop_assume!(v != 27 && v != 28);
        let s = signer(seed);
        let mut sig = s.sign_personal(&msg);
        // 0/1 is the raw recovery id: a valid signature in another encoding, still refused.
        sig[64] = v;
        prop_assert!(!verify_personal(&s.address(), &msg, &sig));
    }

    #[test]
    fn checksum_address_parses_back(bytes in any::<[u8; 20]>()) {
        let a = Address(bytes);
        let s = a.to_checksum();
        prop_assert_eq!(s.len(), 42);
        prop_assert_eq!(s.parse::<Address>().expect("hex"), a);
    }
}

#[test]
fn wrong_length_is_rejected() {
    let s = signer([1u8; 32]);
    let sig = s.sign_personal(b"m");
    let mut long = sig.to_vec();
    long.push(0);
    assert!(!verify_personal(&s.address(), b"m", &long));
    assert!(!verify_personal(&s.address(), b"m", &sig[..64]));
    assert!(!verify_personal(&s.address(), b"m", &[]));
}
