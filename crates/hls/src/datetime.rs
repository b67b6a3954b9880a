//! UTC timestamps in RFC 3339 form for `EXT-X-PROGRAM-DATE-TIME`.

use std::fmt;
use std::str::FromStr;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::error::HlsError;

/// A UTC instant with millisecond precision: milliseconds since the Unix epoch.
///
/// Renders as `YYYY-MM-DDTHH:MM:SS.mmmZ`. Years outside 0000..=9999 have no
/// RFC 3339 form; such values still render (with more digits or a sign) but
/// will not parse back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UtcMillis(pub i64);

const MS_PER_DAY: i64 = 86_400_000;

impl UtcMillis {
    /// Converts a system time, saturating far outside the representable range.
    pub fn from_system_time(time: SystemTime) -> Self {
        let millis = match time.duration_since(UNIX_EPOCH) {
            Ok(after) => i64::try_from(after.as_millis()).unwrap_or(i64::MAX),
            Err(before) => i64::try_from(before.duration().as_millis())
                .map(|ms| -ms)
                .unwrap_or(i64::MIN),
        };
        UtcMillis(millis)
    }

    /// Parses RFC 3339 (`2024-05-01T12:00:00.250Z`, `...+02:00`); fractional
    /// digits beyond milliseconds are truncated. Also accepts `t`/`z` in lower
    /// case and offsets written `+0200`, which some encoders emit.
    pub fn parse_rfc3339(text: &str) -> Result<Self, HlsError> {
        parse(text.as_bytes()).ok_or_else(|| HlsError::DateTime(text.to_owned()))
    }
}

impl fmt::Display for UtcMillis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let days = self.0.div_euclid(MS_PER_DAY);
        let ms_of_day = self.0.rem_euclid(MS_PER_DAY);
        let (year, month, day) = civil_from_days(days);
        let secs = ms_of_day / 1000;
        write!(
            f,
            "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
            secs / 3600,
            secs / 60 % 60,
            secs % 60,
            ms_of_day % 1000
        )
    }
}

impl FromStr for UtcMillis {
    type Err = HlsError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        UtcMillis::parse_rfc3339(s)
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Inverse of [`days_from_civil`].
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

fn digits(bytes: &[u8]) -> Option<i64> {
    if bytes.is_empty() || !bytes.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(
        bytes
            .iter()
            .fold(0i64, |acc, b| acc * 10 + i64::from(b - b'0')),
    )
}

fn parse(b: &[u8]) -> Option<UtcMillis> {
    // fixed part: YYYY-MM-DDTHH:MM:SS
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    if !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    let year = digits(&b[0..4])?;
    let month = digits(&b[5..7])?;
    let day = digits(&b[8..10])?;
    let hour = digits(&b[11..13])?;
    let minute = digits(&b[14..16])?;
    let second = digits(&b[17..19])?;
    if !(1..=12).contains(&month)
        || day < 1
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        // 60 is a leap second; it rolls into the next minute
        || second > 60
    {
        return None;
    }
    let mut rest = &b[19..];
    let mut millis = 0;
    if let Some(frac) = rest.strip_prefix(b".") {
        let len = frac.iter().take_while(|c| c.is_ascii_digit()).count();
        if len == 0 {
            return None;
        }
        let mut ms_digits = [b'0'; 3];
        for (slot, digit) in ms_digits.iter_mut().zip(&frac[..len]) {
            *slot = *digit;
        }
        millis = digits(&ms_digits)?;
        rest = &frac[len..];
    }
    let offset_minutes = match rest {
        [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), tail @ ..] => {
            let (hh, mm) = match tail {
                [h1, h2, b':', m1, m2] | [h1, h2, m1, m2] => {
                    (digits(&[*h1, *h2])?, digits(&[*m1, *m2])?)
                }
                _ => return None,
            };
            if hh > 23 || mm > 59 {
                return None;
            }
            let minutes = hh * 60 + mm;
            if *sign == b'-' {
                -minutes
            } else {
                minutes
            }
        }
        _ => return None,
    };
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second - offset_minutes * 60;
    Some(UtcMillis(secs * 1000 + millis))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::time::Duration;

    #[test]
    fn formats_known_instants() {
        assert_eq!(UtcMillis(0).to_string(), "1970-01-01T00:00:00.000Z");
        // 2024-02-29T23:59:59.999Z, a leap day: 19782 days after the epoch
        let leap = 19_782 * MS_PER_DAY + 86_399_999;
        assert_eq!(UtcMillis(leap).to_string(), "2024-02-29T23:59:59.999Z");
        assert_eq!(UtcMillis(-1).to_string(), "1969-12-31T23:59:59.999Z");
        assert_eq!(
            UtcMillis(951_782_400_000).to_string(),
            "2000-02-29T00:00:00.000Z"
        );
    }

    #[test]
    fn parses_offsets_and_fractions() {
        let base = UtcMillis::parse_rfc3339("2024-05-01T12:00:00Z").expect("utc");
        let cases = [
            ("2024-05-01T14:00:00+02:00", 0),
            ("2024-05-01T14:00:00+0200", 0),
            ("2024-05-01T07:30:00-04:30", 0),
            ("2024-05-01t12:00:00.25z", 250),
            ("2024-05-01T12:00:00.123987Z", 123),
            ("2024-05-01 12:00:00.1Z", 100),
        ];
        for (text, extra) in cases {
            let parsed = UtcMillis::parse_rfc3339(text).expect(text);
            assert_eq!(parsed.0 - base.0, extra, "{text}");
        }
        let system = UNIX_EPOCH + Duration::from_millis(base.0.unsigned_abs());
        assert_eq!(UtcMillis::from_system_time(system), base);
    }

    #[test]
    fn rejects_malformed() {
        for text in [
            "",
            "2024-05-01",
            "2024-05-01T12:00:00",
            "2024-13-01T12:00:00Z",
            "2023-02-29T12:00:00Z",
            "2024-05-01T24:00:00Z",
            "2024-05-01T12:00:00.Z",
            "2024-05-01T12:00:00+2:00",
            "2024-05-01T12:00:00Zjunk",
            "２024-05-01T12:00:00Z",
        ] {
            assert!(UtcMillis::parse_rfc3339(text).is_err(), "{text}");
        }
    }

    proptest! {
        #[test]
        fn round_trip(ms in -62_167_219_200_000i64..253_402_300_800_000) {
            // year 0000 through 9999
            let text = UtcMillis(ms).to_string();
            prop_assert_eq!(UtcMillis::parse_rfc3339(&text), Ok(UtcMillis(ms)));
        }

        #[test]
        fn parse_never_panics(text in "\\PC{0,40}") {
            let _ = UtcMillis::parse_rfc3339(&text);
        }
    }
}
