//! The key layout of segment objects, and the rules every key and id follows.
//!
//! ```text
//! live/{stream}/source/{seq:010}.ts              source segment, as cut by the segmenter
//! live/{stream}/{rendition}/{seq:010}.{ext}      one rendition of that segment
//! recordings/{stream}/{session}/{seq:010}.ts    kept recordings of one publish session
//! ```
//!
//! Sequence numbers are zero-padded to ten digits so keys sort in sequence order.
//!
//! Ids (stream, rendition, session, extension) are one path segment each: 1 to
//! [`MAX_ID_LEN`] bytes of ASCII letters, digits and `- _ . = + , @`, and never `.` or `..`.
//! Check untrusted ids at the edge with [`validate_id`]. If an invalid id reaches a function
//! here anyway, the key it returns carries an empty segment in place of the id, so every
//! [`Storage`](crate::Storage) call rejects it with [`StorageError::InvalidKey`] instead of
//! writing into another stream's folder.

use crate::StorageError;

/// The longest id accepted, in bytes.
pub const MAX_ID_LEN: usize = 128;

/// The longest key accepted, in bytes (S3's limit).
pub const MAX_KEY_LEN: usize = 1024;

/// The top-level folder of live segments, which retention trims.
pub const LIVE_ROOT: &str = "live/";

/// The top-level folder of recordings, which retention keeps by default.
pub const RECORDINGS_ROOT: &str = "recordings/";

/// The rendition name under which source segments are stored.
pub const SOURCE_RENDITION: &str = "source";

/// `live/{stream}/source/{seq:010}.ts`
pub fn source_segment(stream_id: &str, seq: u64) -> String {
    rendition_segment(stream_id, SOURCE_RENDITION, seq, "ts")
}

/// `live/{stream}/{rendition}/{seq:010}.{ext}`
pub fn rendition_segment(stream_id: &str, rendition: &str, seq: u64, ext: &str) -> String {
    // An invalid extension empties the whole file name, which leaves a trailing '/'.
    let file = if check_segment(ext, MAX_ID_LEN).is_ok() {
        format!("{seq:010}.{ext}")
    } else {
        String::new()
    };
    format!("live/{}/{}/{file}", segment(stream_id), segment(rendition))
}

/// `recordings/{stream}/{session}/`
pub fn recording_prefix(stream_id: &str, session: &str) -> String {
    format!("recordings/{}/{}/", segment(stream_id), segment(session))
}

/// `recordings/{stream}/{session}/{seq:010}.ts`: one source segment of a kept recording.
pub fn recording_segment(stream_id: &str, session: &str, seq: u64) -> String {
    format!("{}{seq:010}.ts", recording_prefix(stream_id, session))
}

/// `live/{stream}/`
pub fn stream_prefix(stream_id: &str) -> String {
    format!("live/{}/", segment(stream_id))
}

/// Checks that `id` can stand as one key segment (see the module docs).
pub fn validate_id(id: &str) -> Result<(), StorageError> {
    check_id(id).map_err(|reason| StorageError::InvalidKey {
        key: id.to_owned(),
        reason: format!("invalid id: {reason}"),
    })
}

/// The one id rule of Livefarm (stream ids, rendition names, session ids, registry ids): `Err`
/// says why `id` breaks it. Crates with their own error type map the reason into it.
pub fn check_id(id: &str) -> Result<(), String> {
    check_segment(id, MAX_ID_LEN)
}

/// Checks a full object key: non-empty segments separated by single `/`, each following the
/// id rules (any length), no leading or trailing `/`, at most [`MAX_KEY_LEN`] bytes.
pub fn validate_key(key: &str) -> Result<(), StorageError> {
    check_path(key, false).map_err(|reason| StorageError::InvalidKey {
        key: key.to_owned(),
        reason,
    })
}

/// Checks a listing prefix: empty (everything), or a key that may end with `/` and whose last
/// segment may be a partial name.
pub fn validate_prefix(prefix: &str) -> Result<(), StorageError> {
    if prefix.is_empty() {
        return Ok(());
    }
    check_path(prefix, true).map_err(|reason| StorageError::InvalidKey {
        key: prefix.to_owned(),
        reason,
    })
}

fn segment(id: &str) -> &str {
    // An empty segment makes the whole key invalid, so a bad id can never name another folder.
    if check_segment(id, MAX_ID_LEN).is_ok() {
        id
    } else {
        ""
    }
}

fn check_path(path: &str, allow_trailing_slash: bool) -> Result<(), String> {
    if path.len() > MAX_KEY_LEN {
        return Err(format!("longer than {MAX_KEY_LEN} bytes"));
    }
    let body = if allow_trailing_slash {
        path.strip_suffix('/').unwrap_or(path)
    } else {
        path
    };
    for part in body.split('/') {
        if part.is_empty() {
            return Err(
                "empty path segment (leading, trailing or double '/', or an invalid id)".into(),
            );
        }
        check_segment(part, MAX_KEY_LEN)?;
    }
    Ok(())
}

fn check_segment(part: &str, max_len: usize) -> Result<(), String> {
    if part.is_empty() {
        return Err("empty".into());
    }
    if part.len() > max_len {
        return Err(format!("longer than {max_len} bytes"));
    }
    if part == "." || part == ".." {
        return Err(format!("{part:?} is a relative path component"));
    }
    if let Some(bad) = part.chars().find(|c| !allowed(*c)) {
        return Err(format!(
            "character {bad:?} not allowed (only ASCII letters, digits and - _ . = + , @)"
        ));
    }
    Ok(())
}

fn allowed(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '=' | '+' | ',' | '@')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout() {
        assert_eq!(source_segment("abc", 7), "live/abc/source/0000000007.ts");
        assert_eq!(
            rendition_segment("abc", "720p30", 12_345, "mp4"),
            "live/abc/720p30/0000012345.mp4"
        );
        assert_eq!(recording_prefix("abc", "s-1"), "recordings/abc/s-1/");
        assert_eq!(
            recording_segment("abc", "s-1", 3),
            "recordings/abc/s-1/0000000003.ts"
        );
        assert_eq!(stream_prefix("abc"), "live/abc/");
        // Wider than ten digits still formats (no truncation).
        assert_eq!(
            source_segment("a", u64::MAX),
            "live/a/source/18446744073709551615.ts"
        );
    }

    #[test]
    fn keys_sort_by_sequence() {
        let mut keys: Vec<String> = [10, 9, 100, 1]
            .iter()
            .map(|s| source_segment("x", *s))
            .collect();
        keys.sort();
        assert_eq!(
            keys,
            [1, 9, 10, 100]
                .iter()
                .map(|s| source_segment("x", *s))
                .collect::<Vec<_>>()
        );
    }

    #[test]
    fn bad_ids_are_rejected() {
        for bad in [
            "", ".", "..", "a/b", "/", "a\0b", "a\nb", "tab\t", "a\\b", "a#1", "é", "a b",
        ] {
            let error = validate_id(bad).expect_err(bad);
            assert!(matches!(error, StorageError::InvalidKey { .. }), "{bad:?}");
        }
        assert!(validate_id(&"x".repeat(MAX_ID_LEN)).is_ok());
        assert!(validate_id(&"x".repeat(MAX_ID_LEN + 1)).is_err());
        for good in ["abc", "A-b_c.d", "0", "a=b+c,d@e", "..."] {
            validate_id(good).unwrap_or_else(|e| panic!("{good:?}: {e}"));
        }
    }

    #[test]
    fn bad_ids_make_keys_every_call_rejects() {
        for bad in ["", "..", "a/b", "a\u{1}b", "../recordings"] {
            for key in [
                source_segment(bad, 1),
                rendition_segment("ok", bad, 1, "ts"),
                rendition_segment("ok", "720p", 1, bad),
            ] {
                assert!(
                    validate_key(&key).is_err(),
                    "{bad:?} gave valid key {key:?}"
                );
            }
            for prefix in [
                stream_prefix(bad),
                recording_prefix(bad, "s"),
                recording_prefix("s", bad),
            ] {
                assert!(
                    validate_prefix(&prefix).is_err(),
                    "{bad:?} gave valid prefix {prefix:?}"
                );
            }
        }
    }

    #[test]
    fn key_rules() {
        for good in ["a", "live/a/source/0000000001.ts", "x/y.z"] {
            validate_key(good).unwrap_or_else(|e| panic!("{good:?}: {e}"));
        }
        for bad in ["", "/a", "a/", "a//b", "a/../b", "./a", "a/\u{7f}", "a/b c"] {
            assert!(validate_key(bad).is_err(), "{bad:?}");
        }
        assert!(validate_key(&"k".repeat(MAX_KEY_LEN + 1)).is_err());
        for good in ["", "live/", "live/a", "live/a/", "recordings/s/"] {
            validate_prefix(good).unwrap_or_else(|e| panic!("{good:?}: {e}"));
        }
        for bad in ["/", "/live", "live//", "a/../", ".."] {
            assert!(validate_prefix(bad).is_err(), "{bad:?}");
        }
    }
}
