//! Capabilities (§7; GL core/capabilities.go): the bitstring layout, the transcoding
//! capability numbers, the default orchestrator set and the broadcaster-vs-orchestrator
//! compatibility test.

use livefarm_proto::livepeer::net;

/// H.264 decoding and encoding.
pub const H264: u32 = 0;
/// MPEG-TS output.
pub const MPEGTS: u32 = 1;
/// MP4 output.
pub const MP4: u32 = 2;
/// Frame rates with a denominator.
pub const FRACTIONAL_FRAMERATES: u32 = 3;
/// Results kept by O (no external store).
pub const STORAGE_DIRECT: u32 = 4;
/// Results written to S3.
pub const STORAGE_S3: u32 = 5;
/// Results written to Google Cloud Storage.
pub const STORAGE_GCS: u32 = 6;
/// H.264 baseline encoder profile.
pub const PROFILE_H264_BASELINE: u32 = 7;
/// H.264 main encoder profile.
pub const PROFILE_H264_MAIN: u32 = 8;
/// H.264 high encoder profile.
pub const PROFILE_H264_HIGH: u32 = 9;
/// H.264 constrained-high encoder profile.
pub const PROFILE_H264_CONSTRAINED_HIGH: u32 = 10;
/// A GOP length set on an output.
pub const GOP: u32 = 11;
/// Segments carry O's auth token; mandatory.
pub const AUTH_TOKEN: u32 = 12;
/// Deprecated; the slot is kept.
pub const SCENE_CLASSIFICATION: u32 = 13;
/// MPEG-7 video signature (verification).
pub const MPEG7_VIDEO_SIGNATURE: u32 = 14;
/// HEVC decoding.
pub const HEVC_DECODE: u32 = 15;
/// HEVC encoding.
pub const HEVC_ENCODE: u32 = 16;
/// VP8 decoding.
pub const VP8_DECODE: u32 = 17;
/// VP9 decoding.
pub const VP9_DECODE: u32 = 18;
/// VP8 encoding.
pub const VP8_ENCODE: u32 = 19;
/// VP9 encoding.
pub const VP9_ENCODE: u32 = 20;
/// H.264 4:4:4 8-bit input.
pub const H264_DECODE_444_8BIT: u32 = 21;
/// H.264 4:2:2 8-bit input.
pub const H264_DECODE_422_8BIT: u32 = 22;
/// H.264 4:4:4 10-bit input.
pub const H264_DECODE_444_10BIT: u32 = 23;
/// H.264 4:2:2 10-bit input.
pub const H264_DECODE_422_10BIT: u32 = 24;
/// H.264 4:2:0 10-bit input.
pub const H264_DECODE_420_10BIT: u32 = 25;
/// Clipping a segment (`SegParameters`).
pub const SEGMENT_SLICING: u32 = 26;

/// O's default set before codec self-tests add optional codecs: {0..12, 14, 26}.
pub const DEFAULT_CAPABILITIES: [u32; 15] = [
    H264,
    MPEGTS,
    MP4,
    FRACTIONAL_FRAMERATES,
    STORAGE_DIRECT,
    STORAGE_S3,
    STORAGE_GCS,
    PROFILE_H264_BASELINE,
    PROFILE_H264_MAIN,
    PROFILE_H264_HIGH,
    PROFILE_H264_CONSTRAINED_HIGH,
    GOP,
    AUTH_TOKEN,
    MPEG7_VIDEO_SIGNATURE,
    SEGMENT_SLICING,
];

/// The capabilities every broadcaster must request.
pub const MANDATORY_CAPABILITIES: [u32; 1] = [AUTH_TOKEN];

/// The bitstring of a set: capability `c` sets bit `c % 64` of word `c / 64`.
pub fn bitstring(capabilities: &[u32]) -> Vec<u64> {
    let mut words: Vec<u64> = Vec::new();
    for &c in capabilities {
        let word = (c / 64) as usize;
        if words.len() <= word {
            words.resize(word + 1, 0);
        }
        words[word] |= 1u64 << (c % 64);
    }
    words
}

/// Whether capability `c` is set in `bits`.
pub fn has_capability(bits: &[u64], c: u32) -> bool {
    bits.get((c / 64) as usize)
        .is_some_and(|w| w & (1u64 << (c % 64)) != 0)
}

/// O's advertised capabilities: the default set, AuthToken mandatory, and `version`.
pub fn default_capabilities(version: &str) -> net::Capabilities {
    net::Capabilities {
        bitstring: bitstring(&DEFAULT_CAPABILITIES),
        mandatories: bitstring(&MANDATORY_CAPABILITIES),
        version: version.to_string(),
        ..net::Capabilities::default()
    }
}

/// GL `CapabilityString.CompatibleWith`: `x ⊆ y` word-wise, and `x` no longer than `y`
/// (even when the extra words are zero, as go-livepeer does).
pub fn is_subset(x: &[u64], y: &[u64]) -> bool {
    x.len() <= y.len() && x.iter().zip(y).all(|(a, b)| a & b == *a)
}

/// `major.minor.patch` with an optional `v` and missing parts as 0; prerelease (`-…`) and
/// build (`+…`) suffixes dropped, since go-livepeer ignores them.
fn parse_version(v: &str) -> Option<[u64; 3]> {
    let v = v.trim();
    let v = v.strip_prefix('v').unwrap_or(v);
    let core = v.split(['-', '+']).next().unwrap_or_default();
    let mut out = [0u64; 3];
    let mut parts = core.split('.');
    for (i, slot) in out.iter_mut().enumerate() {
        match parts.next() {
            Some(p) => *slot = p.parse().ok()?,
            None if i > 0 => break,
            None => return None,
        }
    }
    if parts.next().is_some() {
        return None;
    }
    Some(out)
}

/// GL `isVersionCompatible`: an empty `min_version` always passes, an empty or
/// `undefined` `version` fails, otherwise `version ≥ min_version` ignoring suffixes.
pub fn is_version_compatible(min_version: &str, version: &str) -> bool {
    if min_version.is_empty() {
        return true;
    }
    if version.is_empty() || version == "undefined" {
        return false;
    }
    match (parse_version(min_version), parse_version(version)) {
        (Some(min), Some(have)) => have >= min,
        _ => false,
    }
}

/// Per-capability model constraints (AI only): every capability and model B constrains
/// must exist at O, and a model B wants warm must be warm at O.
fn constraints_compatible(b: &net::Capabilities, o: &net::Capabilities) -> bool {
    let Some(bc) = b.constraints.as_ref() else {
        return true;
    };
    let empty = Default::default();
    let o_per = o.constraints.as_ref().map_or(&empty, |c| &c.per_capability);
    bc.per_capability.iter().all(|(cap, b_models)| {
        o_per.get(cap).is_some_and(|o_models| {
            b_models.models.iter().all(|(id, want)| {
                o_models
                    .models
                    .get(id)
                    .is_some_and(|have| !want.warm || have.warm)
            })
        })
    })
}

/// GL `Capabilities.CompatibleWith`: whether O (`o`) can serve a job needing `b`.
pub fn compatible_with(b: &net::Capabilities, o: &net::Capabilities) -> bool {
    let min_version = b
        .constraints
        .as_ref()
        .map_or("", |c| c.min_version.as_str());
    is_version_compatible(min_version, &o.version)
        && is_subset(&o.mandatories, &b.bitstring)
        && constraints_compatible(b, o)
        && is_subset(&b.bitstring, &o.bitstring)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(caps: &[u32]) -> net::Capabilities {
        net::Capabilities {
            bitstring: bitstring(caps),
            ..net::Capabilities::default()
        }
    }

    #[test]
    fn default_set_matches_the_spec_words() {
        let o = default_capabilities("0.8.0");
        assert_eq!(o.bitstring, vec![0x4005FFF]);
        assert_eq!(o.mandatories, vec![0x1000]);
        assert!(has_capability(&o.bitstring, SEGMENT_SLICING));
        assert!(!has_capability(&o.bitstring, SCENE_CLASSIFICATION));
        assert!(!has_capability(&o.bitstring, HEVC_ENCODE));
        assert!(!has_capability(&o.bitstring, 200));
    }

    #[test]
    fn bitstring_spans_words_least_significant_bit_first() {
        assert_eq!(bitstring(&[0, 63, 64, 130]), vec![1 | (1 << 63), 1, 1 << 2]);
        assert!(bitstring(&[]).is_empty());
    }

    #[test]
    fn a_plain_h264_job_is_served_by_the_default_set() {
        let o = default_capabilities("0.8.0");
        assert!(compatible_with(&job(&[AUTH_TOKEN, H264, MPEGTS]), &o));
        assert!(compatible_with(
            &job(&[AUTH_TOKEN, H264, MP4, GOP, PROFILE_H264_HIGH]),
            &o
        ));
    }

    #[test]
    fn missing_mandatory_or_unsupported_capability_is_incompatible() {
        let o = default_capabilities("0.8.0");
        // No AuthToken: O's mandatories are not a subset of B's bitstring.
        assert!(!compatible_with(&job(&[H264, MPEGTS]), &o));
        // HEVC encoding is not in the default set.
        assert!(!compatible_with(&job(&[AUTH_TOKEN, HEVC_ENCODE]), &o));
        // An empty job misses the mandatory bit too (a segment without capabilities).
        assert!(!compatible_with(&net::Capabilities::default(), &o));
    }

    #[test]
    fn a_longer_bitstring_is_incompatible_even_with_zero_words() {
        let o = default_capabilities("0.8.0");
        let mut b = job(&[AUTH_TOKEN, H264]);
        b.bitstring.push(0);
        assert!(!compatible_with(&b, &o));
        assert!(is_subset(&[0b01], &[0b11, 0]));
        assert!(!is_subset(&[0b100], &[0b011]));
    }

    #[test]
    fn min_version_is_compared_ignoring_suffixes() {
        assert!(is_version_compatible("", ""));
        assert!(!is_version_compatible("0.5.0", ""));
        assert!(!is_version_compatible("0.5.0", "undefined"));
        assert!(is_version_compatible("0.5.0", "0.5.0"));
        assert!(is_version_compatible("0.5.0", "v0.7.2-dirty"));
        assert!(is_version_compatible("0.7.2", "0.7.2-rc1"));
        assert!(!is_version_compatible("0.7.3", "0.7.2"));
        assert!(!is_version_compatible("1.0", "0.9.9"));
        assert!(is_version_compatible("1", "1.0.1"));
        assert!(!is_version_compatible("0.5.0", "not-a-version"));

        let o = default_capabilities("0.7.2");
        let mut b = job(&[AUTH_TOKEN, H264]);
        b.constraints = Some(net::capabilities::Constraints {
            min_version: "0.8.0".into(),
            ..Default::default()
        });
        assert!(!compatible_with(&b, &o));
        assert!(compatible_with(&b, &default_capabilities("0.8.1")));
    }

    #[test]
    fn model_constraints_need_the_model_at_o() {
        use net::capabilities::capability_constraints::ModelConstraint;
        use net::capabilities::{CapabilityConstraints, Constraints};
        let model = |warm| CapabilityConstraints {
            models: [(
                "m".to_string(),
                ModelConstraint {
                    warm,
                    ..Default::default()
                },
            )]
            .into(),
        };
        let with = |warm| Constraints {
            per_capability: [(27, model(warm))].into(),
            ..Default::default()
        };
        let mut b = job(&[AUTH_TOKEN, 27]);
        b.constraints = Some(with(true));
        let mut o = net::Capabilities {
            bitstring: bitstring(&[AUTH_TOKEN, 27]),
            mandatories: bitstring(&MANDATORY_CAPABILITIES),
            ..Default::default()
        };
        assert!(!compatible_with(&b, &o));
        o.constraints = Some(with(false));
        assert!(!compatible_with(&b, &o));
        o.constraints = Some(with(true));
        assert!(compatible_with(&b, &o));
    }
}
