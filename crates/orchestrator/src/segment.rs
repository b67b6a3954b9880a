//! The pure parts of `POST /segment` (livepeer-protocol.md §4): decoding the
//! `Livepeer-Segment` and `Livepeer-Payment` headers, `coreSegMetadata`, the segment
//! signature's flattened bytes (§4.3) and the result signature's digest (§4.4). No I/O here,
//! so the fuzz target and the unit tests drive exactly what the server runs.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use livefarm_pm::hash::keccak256;
use livefarm_profiles::{builtin_by_legacy_id, Profile};
use livefarm_proto::livepeer::net;
use prost::Message as _;

use crate::convert::profile_from_proto;

/// `MaxDuration`: a segment longer than five minutes is refused.
pub const MAX_SEGMENT_DURATION_MS: i32 = 5 * 60 * 1000;
/// What a duration of 0 means.
pub const DEFAULT_SEGMENT_DURATION_MS: u64 = 2000;
/// `MaxSegSize`: 300 s at 8 Mbit/s.
pub const MAX_SEGMENT_BYTES: usize = 300_000_000;
/// The largest header value we decode (base64 of a `SegData` or `Payment`); real ones are a
/// few kilobytes, and HTTP servers cap headers well below this anyway.
pub const MAX_HEADER_BYTES: usize = 64 * 1024;

/// go-livepeer's `ErrorSegEncoding` text.
pub const ERR_SEG_ENCODING: &str = "ErrorSegEncoding";
/// go-livepeer's `ErrSegSig` text.
pub const ERR_SEG_SIG: &str = "ErrSegSig";

/// Decodes `Livepeer-Payment`: standard base64 of a `net.Payment`. The empty string (an
/// off-chain broadcaster) is the empty payment.
pub fn decode_payment(header: &str) -> Result<net::Payment, String> {
    let bytes = decode_base64(header)?;
    net::Payment::decode(bytes.as_slice()).map_err(|e| format!("payment proto: {e}"))
}

/// Decodes `Livepeer-Segment`: standard base64 of a `net.SegData`.
pub fn decode_seg_data(header: &str) -> Result<net::SegData, String> {
    let bytes = decode_base64(header).map_err(|_| ERR_SEG_ENCODING.to_string())?;
    net::SegData::decode(bytes.as_slice()).map_err(|e| format!("segment proto: {e}"))
}

fn decode_base64(text: &str) -> Result<Vec<u8>, String> {
    if text.len() > MAX_HEADER_BYTES {
        return Err(format!("header longer than {MAX_HEADER_BYTES} bytes"));
    }
    STANDARD
        .decode(text.trim())
        .map_err(|e| format!("base64: {e}"))
}

/// A segment's metadata as the orchestrator works with it (GL `core.SegTranscodingMetadata`).
#[derive(Debug, Clone, PartialEq)]
pub struct SegMetadata {
    pub manifest_id: Vec<u8>,
    pub seq: i64,
    pub hash: Vec<u8>,
    pub profiles: Vec<Profile>,
    pub sig: Vec<u8>,
    /// Milliseconds; 0 on the wire means 2 s.
    pub duration_ms: u64,
    pub capabilities: net::Capabilities,
    pub auth_token: Option<net::AuthToken>,
    pub calc_perceptual_hash: bool,
}

/// `coreSegMetadata`: the first non-empty of `fullProfiles3`, `fullProfiles2`,
/// `fullProfiles`, else the legacy 4-byte profile IDs; the duration bounds.
pub fn seg_metadata(seg: net::SegData) -> Result<SegMetadata, String> {
    if !(0..=MAX_SEGMENT_DURATION_MS).contains(&seg.duration) {
        return Err("invalid duration".to_string());
    }
    let wire = if !seg.full_profiles3.is_empty() {
        &seg.full_profiles3
    } else if !seg.full_profiles2.is_empty() {
        &seg.full_profiles2
    } else {
        &seg.full_profiles
    };
    let profiles = if wire.is_empty() {
        legacy_profiles(&seg.profiles)?
    } else {
        wire.iter()
            .map(profile_from_proto)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| e.to_string())?
    };
    let duration_ms = match u64::try_from(seg.duration) {
        Ok(0) | Err(_) => DEFAULT_SEGMENT_DURATION_MS,
        Ok(ms) => ms,
    };
    Ok(SegMetadata {
        manifest_id: seg.manifest_id,
        seq: seg.seq,
        hash: seg.hash,
        profiles,
        sig: seg.sig,
        duration_ms,
        capabilities: seg.capabilities.unwrap_or_default(),
        auth_token: seg.auth_token,
        calc_perceptual_hash: seg.calc_perceptual_hash,
    })
}

/// The legacy `profiles` field: concatenated 4-byte IDs of built-in presets. New
/// broadcasters send the literal `"invalid"` next to `fullProfiles`, which never reaches here.
fn legacy_profiles(bytes: &[u8]) -> Result<Vec<Profile>, String> {
    if !bytes.len().is_multiple_of(4) {
        return Err("invalid profile ids".to_string());
    }
    bytes
        .chunks_exact(4)
        .map(|id| {
            let id: [u8; 4] = id.try_into().expect("chunks_exact(4)");
            builtin_by_legacy_id(id).ok_or_else(|| format!("unknown profile id {}", hex(&id)))
        })
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The bytes the broadcaster signs (§4.3, GL `Flatten`): manifest id, the sequence number
/// left-padded to 32 bytes, the segment hash, and the lowercase hex of each profile name's
/// keccak prefix.
pub fn flatten(md: &SegMetadata) -> Vec<u8> {
    let mut out = Vec::with_capacity(md.manifest_id.len() + 64 + 8 * md.profiles.len());
    out.extend_from_slice(&md.manifest_id);
    // bigEndianMinimal of an int64 as Go's big.Int writes it; a negative seq keeps only
    // its magnitude there, and so here.
    let mut seq = [0u8; 32];
    seq[24..].copy_from_slice(&md.seq.unsigned_abs().to_be_bytes());
    out.extend_from_slice(&seq);
    out.extend_from_slice(&md.hash);
    for profile in &md.profiles {
        out.extend_from_slice(hex(&keccak256(profile.name.as_bytes())[..4]).as_bytes());
    }
    out
}

/// The digest the result signature covers (§4.4): `keccak256(keccak256(out_0) || …)`.
pub fn result_digest<T: AsRef<[u8]>>(outputs: &[T]) -> [u8; 32] {
    let mut concat = Vec::with_capacity(32 * outputs.len());
    for output in outputs {
        concat.extend_from_slice(&keccak256(output.as_ref()));
    }
    keccak256(&concat)
}

/// Whether the segment bytes are MP4 (an `ftyp` box first); otherwise MPEG-TS is assumed,
/// as go-livepeer labels both `video/MP2T`.
pub fn looks_like_mp4(data: &[u8]) -> bool {
    data.len() >= 8 && &data[4..8] == b"ftyp"
}

/// The standard-base64 header value of a message (what a broadcaster sends).
pub fn encode_header<M: prost::Message>(message: &M) -> String {
    STANDARD.encode(message.encode_to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::convert::ToProto;
    use livefarm_profiles::preset;

    fn ladder() -> Vec<Profile> {
        ["P240p30fps16x9", "P360p30fps16x9"]
            .iter()
            .map(|n| preset(n).expect("builtin"))
            .collect()
    }

    #[test]
    fn profiles_hex_matches_the_spec_example() {
        let md = SegMetadata {
            manifest_id: b"m".to_vec(),
            seq: 1,
            hash: vec![0xaa; 32],
            profiles: ladder(),
            sig: Vec::new(),
            duration_ms: 2000,
            capabilities: net::Capabilities::default(),
            auth_token: None,
            calc_perceptual_hash: false,
        };
        let flat = flatten(&md);
        assert!(flat.ends_with(b"c0a6517a93c717e7"), "{flat:?}");
        assert_eq!(&flat[..1], b"m");
        assert_eq!(flat[32], 1, "seq is the last byte of its 32-byte word");
        assert_eq!(flat.len(), 1 + 32 + 32 + 16);
    }

    #[test]
    fn full_profiles_win_in_the_go_order() {
        let wire: Vec<_> = ladder().iter().map(ToProto::to_proto).collect();
        let seg = net::SegData {
            full_profiles: vec![wire[0].clone()],
            full_profiles3: vec![wire[1].clone()],
            profiles: b"invalid".to_vec(),
            ..net::SegData::default()
        };
        let md = seg_metadata(seg).expect("valid");
        assert_eq!(md.profiles[0].name, "P360p30fps16x9");
        assert_eq!(md.duration_ms, DEFAULT_SEGMENT_DURATION_MS);
    }

    #[test]
    fn durations_outside_five_minutes_are_refused() {
        for bad in [-1, MAX_SEGMENT_DURATION_MS + 1] {
            let seg = net::SegData {
                duration: bad,
                ..net::SegData::default()
            };
            assert_eq!(seg_metadata(seg), Err("invalid duration".to_string()));
        }
        let seg = net::SegData {
            duration: 1500,
            ..net::SegData::default()
        };
        assert_eq!(seg_metadata(seg).expect("valid").duration_ms, 1500);
    }

    #[test]
    fn legacy_ids_decode_and_bad_ones_fail() {
        let ids = hex_decode("c0a6517a93c717e7");
        let seg = net::SegData {
            profiles: ids,
            ..net::SegData::default()
        };
        let names: Vec<_> = seg_metadata(seg)
            .expect("valid")
            .profiles
            .into_iter()
            .map(|p| p.name)
            .collect();
        assert_eq!(names, ["P240p30fps16x9", "P360p30fps16x9"]);
        let seg = net::SegData {
            profiles: b"invalid".to_vec(),
            ..net::SegData::default()
        };
        assert!(seg_metadata(seg).is_err());
    }

    fn hex_decode(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
            .collect()
    }

    #[test]
    fn headers_decode_and_garbage_is_refused() {
        assert_eq!(decode_payment("").expect("empty"), net::Payment::default());
        let seg = net::SegData {
            seq: 7,
            ..net::SegData::default()
        };
        assert_eq!(
            decode_seg_data(&encode_header(&seg))
                .expect("round trip")
                .seq,
            7
        );
        assert_eq!(
            decode_seg_data("!!not base64"),
            Err(ERR_SEG_ENCODING.to_string())
        );
        assert!(decode_seg_data(&STANDARD.encode([0xff, 0xff, 0xff])).is_err());
        assert!(decode_payment("%%%").is_err());
        assert!(decode_payment(&"A".repeat(MAX_HEADER_BYTES + 4)).is_err());
    }

    #[test]
    fn result_digest_hashes_each_output_then_the_concatenation() {
        let a = keccak256(b"a");
        let b = keccak256(b"bb");
        let mut both = a.to_vec();
        both.extend_from_slice(&b);
        assert_eq!(result_digest(&[b"a".as_slice(), b"bb"]), keccak256(&both));
        assert_ne!(result_digest(&[b"bb".as_slice(), b"a"]), keccak256(&both));
    }

    proptest::proptest! {
        /// The stable stand-in for the fuzz target: any header text or protobuf bytes are
        /// decoded or refused, never a panic.
        #[test]
        fn garbage_headers_never_panic(raw in proptest::collection::vec(proptest::num::u8::ANY, 0..512), text in ".{0,256}") {
            let encoded = STANDARD.encode(&raw);
            for header in [text.as_str(), encoded.as_str()] {
                if let Ok(seg) = decode_seg_data(header) {
                    if let Ok(md) = seg_metadata(seg) {
                        let _ = flatten(&md);
                    }
                }
                let _ = decode_payment(header);
            }
        }
    }

    #[test]
    fn mp4_is_sniffed_by_its_ftyp_box() {
        assert!(looks_like_mp4(b"\0\0\0\x20ftypisom"));
        assert!(!looks_like_mp4(&[0x47; 188]));
    }
}
