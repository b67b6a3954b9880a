//! Small text helpers shared by the renderers.

/// A quoted-string attribute value; `"`, CR and LF cannot appear in one (RFC 8216 §4.2).
pub(crate) fn quoted(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    out.extend(value.chars().filter(|c| !matches!(c, '"' | '\r' | '\n')));
    out.push('"');
    out
}

/// A URI line: CR and LF would split it, so they are dropped.
pub(crate) fn uri_line(uri: &str) -> String {
    uri.chars().filter(|c| !matches!(c, '\r' | '\n')).collect()
}

/// A decimal with 3 fraction digits; non-finite or negative values become 0.
pub(crate) fn decimal3(value: f64) -> String {
    let value = if value.is_finite() && value > 0.0 {
        value
    } else {
        0.0
    };
    format!("{value:.3}")
}
