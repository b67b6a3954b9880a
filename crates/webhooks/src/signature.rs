//! `Livepeer-Signature` (Studio §5.4): HMAC-SHA256 of the raw request body, keyed with the
//! webhook's shared secret (UTF-8), lowercase hex, sent as `t=<timestamp ms>,v1=<hex>`. The
//! timestamp is not part of the HMAC input; it is protected because the body carries the same
//! value as `"timestamp"`.

use std::time::Duration;

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// The header's name.
pub const SIGNATURE_HEADER: &str = "Livepeer-Signature";

/// Why a signature header is not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// Not `t=<ms>,v1=<hex>`.
    #[error("malformed signature header: {0}")]
    Malformed(&'static str),
    /// No `v1` matches the body and secret.
    #[error("signature does not match the body")]
    Mismatch,
    /// `t` is further from now than allowed.
    #[error("signature timestamp {timestamp} is {age_ms} ms from now; at most {max_ms} allowed")]
    Stale {
        /// `t` of the header.
        timestamp: i64,
        /// How far from now.
        age_ms: u64,
        /// The limit.
        max_ms: u64,
    },
}

fn mac(secret: &str) -> HmacSha256 {
    HmacSha256::new_from_slice(secret.as_bytes()).expect("hmac accepts keys of any length")
}

/// HMAC-SHA256 of `body` keyed with `secret`, lowercase hex (Studio's `sign`).
pub fn sign(body: &[u8], secret: &str) -> String {
    let mut mac = mac(secret);
    mac.update(body);
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The `Livepeer-Signature` value for an attempt made at `timestamp_ms`.
pub fn signature_header(timestamp_ms: i64, body: &[u8], secret: &str) -> String {
    format!("t={timestamp_ms},v1={}", sign(body, secret))
}

fn from_hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

/// What a receiver does: checks `header` against the raw `body` and `secret` (in constant
/// time), and that `t` is within `max_age` of `now_ms`; returns `t`. Several `v1` values are
/// accepted (any one may match); unknown schemes are ignored, as Studio's docs advise.
pub fn verify(
    header: &str,
    body: &[u8],
    secret: &str,
    now_ms: i64,
    max_age: Duration,
) -> Result<i64, SignatureError> {
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        let (key, value) = part
            .trim()
            .split_once('=')
            .ok_or(SignatureError::Malformed("a part without '='"))?;
        match key {
            "t" => {
                let t = value
                    .parse::<i64>()
                    .map_err(|_| SignatureError::Malformed("t is not an integer"))?;
                timestamp = Some(t);
            }
            "v1" => signatures.push(value),
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or(SignatureError::Malformed("no t"))?;
    if signatures.is_empty() {
        return Err(SignatureError::Malformed("no v1"));
    }
    let matched = signatures.iter().any(|hex| {
        from_hex(hex).is_some_and(|expected| {
            let mut mac = mac(secret);
            mac.update(body);
            mac.verify_slice(&expected).is_ok()
        })
    });
    if !matched {
        return Err(SignatureError::Mismatch);
    }
    let max_ms = u64::try_from(max_age.as_millis()).unwrap_or(u64::MAX);
    let age_ms = now_ms.abs_diff(timestamp);
    if age_ms > max_ms {
        return Err(SignatureError::Stale {
            timestamp,
            age_ms,
            max_ms,
        });
    }
    Ok(timestamp)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Studio §5.4's test vector, computed with Studio's algorithm in Node and Python.
    const VECTOR_BODY: &str = r#"{"id":"9f1c2d3e-0000-4000-8000-000000000001","webhookId":"w-1","createdAt":1700000000000,"timestamp":1700000000123,"event":"stream.started","stream":{"id":"s-1","name":"my-stream"}}"#;
    const VECTOR_HEADER: &str =
        "t=1700000000123,v1=cea29d35441b810217ff0b12cc696bb9fde65938b7c1c13113391e58cbeb7f35";

    #[test]
    fn studio_test_vector() {
        assert_eq!(
            signature_header(1_700_000_000_123, VECTOR_BODY.as_bytes(), "my-secret"),
            VECTOR_HEADER
        );
        assert_eq!(
            verify(
                VECTOR_HEADER,
                VECTOR_BODY.as_bytes(),
                "my-secret",
                1_700_000_000_500,
                Duration::from_secs(300)
            ),
            Ok(1_700_000_000_123)
        );
    }

    #[test]
    fn verification_refuses_what_it_should() {
        let body = VECTOR_BODY.as_bytes();
        let now = 1_700_000_000_200;
        let age = Duration::from_secs(300);
        assert_eq!(
            verify(VECTOR_HEADER, body, "other-secret", now, age),
            Err(SignatureError::Mismatch)
        );
        let mut tampered = body.to_vec();
        tampered[10] ^= 1;
        assert_eq!(
            verify(VECTOR_HEADER, &tampered, "my-secret", now, age),
            Err(SignatureError::Mismatch)
        );
        assert!(matches!(
            verify(VECTOR_HEADER, body, "my-secret", now + 301_000, age),
            Err(SignatureError::Stale { .. })
        ));
        for malformed in ["", "t=1", "v1=ab", "t=x,v1=ab", "garbage"] {
            assert!(
                matches!(
                    verify(malformed, body, "my-secret", now, age),
                    Err(SignatureError::Malformed(_))
                ),
                "{malformed:?}"
            );
        }
        // an odd-length or non-hex v1 is a mismatch, not a panic
        for junk in ["t=1700000000123,v1=abc", "t=1700000000123,v1=zz"] {
            assert_eq!(
                verify(junk, body, "my-secret", now, age),
                Err(SignatureError::Mismatch)
            );
        }
        // any one of several v1 may match; unknown schemes are skipped
        let many = format!("t=1700000000123,v0=xx,v1=00,{}", &VECTOR_HEADER[16..]);
        assert_eq!(
            verify(&many, body, "my-secret", now, age),
            Ok(1_700_000_000_123)
        );
    }
}
