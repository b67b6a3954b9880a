//! Request bodies and query strings of the Studio routes.
//!
//! [`StudioJson`] reads at most [`MAX_BODY_BYTES`] (413 beyond), whatever the
//! `Content-Type` (the SDKs send `application/json` with a body; nothing is refused for its
//! content type), and parses strictly into `deny_unknown_fields` request structs: malformed
//! JSON is 400, a body that does not fit the schema (unknown field, wrong type, missing field)
//! is 422 with a message naming the field. An empty body reads as `{}`, as Studio's parser
//! leaves it. Bodiless routes take no body extractor at all (§1.2 D7).

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header::CONTENT_LENGTH;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;
use serde_json::error::Category;

use crate::studio::error::StudioError;

/// Largest request body, bytes.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// A JSON body parsed strictly into `T`.
#[derive(Debug, Clone)]
pub struct StudioJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for StudioJson<T> {
    type Rejection = StudioError;

    async fn from_request(request: Request, _state: &S) -> Result<Self, Self::Rejection> {
        let declared = request
            .headers()
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|n| n > MAX_BODY_BYTES as u64) {
            return Err(StudioError::payload_too_large(MAX_BODY_BYTES));
        }
        let bytes = axum::body::to_bytes(request.into_body(), MAX_BODY_BYTES)
            .await
            .map_err(|error| {
                let inner = error.into_inner();
                if inner.is::<http_body_util::LengthLimitError>() {
                    StudioError::payload_too_large(MAX_BODY_BYTES)
                } else {
                    StudioError::bad_request(format!("cannot read the request body: {inner}"))
                }
            })?;
        parse_json(&bytes).map(StudioJson)
    }
}

/// Parses `bytes` as [`StudioJson`] does.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, StudioError> {
    let bytes: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        bytes
    };
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
        let path = error.path().to_string();
        let inner = error.into_inner();
        match inner.classify() {
            Category::Data => {
                // the field path says where; the line and column add nothing
                let reason = without_position(inner.to_string());
                StudioError::unprocessable(if path == "." {
                    reason
                } else {
                    format!("{path}: {reason}")
                })
            }
            Category::Syntax | Category::Eof | Category::Io => {
                StudioError::bad_request(format!("malformed JSON body: {inner}"))
            }
        }
    })?;
    deserializer
        .end()
        .map_err(|error| StudioError::bad_request(format!("malformed JSON body: {error}")))?;
    Ok(value)
}

/// `message` without serde_json's trailing ` at line L column C`.
fn without_position(mut message: String) -> String {
    if let Some(at) = message.rfind(" at line ") {
        let tail = &message[at + " at line ".len()..];
        let positional = tail.split_once(" column ").is_some_and(|(line, column)| {
            line.bytes().all(|b| b.is_ascii_digit()) && column.bytes().all(|b| b.is_ascii_digit())
        });
        if positional {
            message.truncate(at);
        }
    }
    message
}

/// The query string as name/value pairs, percent-decoded; never a rejection.
#[derive(Debug, Clone, Default)]
pub struct Params(Vec<(String, String)>);

impl Params {
    /// Parses a raw query string.
    pub fn parse(query: &str) -> Params {
        Params(
            url::form_urlencoded::parse(query.as_bytes())
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }

    /// The last value given for `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every pair, in order.
    pub fn pairs(&self) -> &[(String, String)] {
        &self.0
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Params {
    type Rejection = StudioError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(Params::parse(parts.uri.query().unwrap_or_default()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::StatusCode;
    use serde::Deserialize;

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Body {
        name: String,
        #[serde(default)]
        inner: Vec<Inner>,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Inner {
        width: u32,
    }

    fn status(text: &str) -> (StatusCode, String) {
        let error = parse_json::<Body>(text.as_bytes()).expect_err("refused");
        (error.status(), error.message().to_owned())
    }

    #[test]
    fn syntax_is_400_and_schema_is_422_naming_the_field() {
        assert_eq!(status("{").0, StatusCode::BAD_REQUEST);
        assert_eq!(status("not json").0, StatusCode::BAD_REQUEST);
        assert_eq!(status(r#"{"name":"a"} x"#).0, StatusCode::BAD_REQUEST);
        let (code, message) = status(r#"{"name":"a","bogus":1}"#);
        assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(message.contains("unknown field `bogus`"), "{message}");
        let (code, message) = status(r#"{"name":"a","inner":[{"width":"x"}]}"#);
        assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(
            message.starts_with("inner[0].width: invalid type"),
            "{message}"
        );
        let (code, message) = status("{}");
        assert_eq!(code, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(message.contains("missing field `name`"), "{message}");
        assert_eq!(status("  ").1, "missing field `name`");
        assert_eq!(status("[1]").0, StatusCode::UNPROCESSABLE_ENTITY);
        let ok: Body = parse_json(br#"{"name":"a"}"#).expect("parses");
        assert_eq!(ok.name, "a");
    }

    #[test]
    fn params_decode_and_keep_the_last_value() {
        let params = Params::parse("a=1&b=x%20y&a=2&filters=%5B%5D");
        assert_eq!(params.get("a"), Some("2"));
        assert_eq!(params.get("b"), Some("x y"));
        assert_eq!(params.get("filters"), Some("[]"));
        assert_eq!(params.get("c"), None);
    }
}
