//! The body of `POST /webhook` and `PUT /webhook/{id}` (the SDKs' `WebhookInput`), parsed and
//! validated with messages a person can act on.

use std::fmt;

use livefarm_store::{NewWebhook, MAX_SECRET_LEN, MAX_URL_LEN};
use serde::Deserialize;
use url::Url;

use crate::body::EVENT_NAMES;
use crate::WebhookError;

/// Longest webhook name, in bytes (the store's limit on names).
const MAX_NAME_LEN: usize = 500;

/// `{name, url, events?, sharedSecret?, streamId?, projectId?}`, and Studio's legacy `event`
/// (one name). Unknown fields are refused (Studio's schema has `additionalProperties: false`).
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct WebhookInput {
    pub name: String,
    pub url: String,
    #[serde(default)]
    pub events: Option<Vec<String>>,
    /// Legacy single event (Studio accepts it when `events` is absent).
    #[serde(default)]
    pub event: Option<String>,
    #[serde(default)]
    pub shared_secret: Option<String>,
    #[serde(default)]
    pub stream_id: Option<String>,
    #[serde(default)]
    pub project_id: Option<String>,
}

impl fmt::Debug for WebhookInput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookInput")
            .field("name", &self.name)
            .field("url", &self.url)
            .field("events", &self.events)
            .field("event", &self.event)
            .field("shared_secret", &self.shared_secret.as_ref().map(|_| "***"))
            .field("stream_id", &self.stream_id)
            .field("project_id", &self.project_id)
            .finish()
    }
}

impl WebhookInput {
    /// Parses a request body: 400 when it is not JSON, 422 (naming the field) when it does
    /// not fit the schema.
    pub fn from_json(body: &[u8]) -> Result<WebhookInput, WebhookError> {
        let value: serde_json::Value = serde_json::from_slice(body)
            .map_err(|e| WebhookError::BadRequest(format!("malformed JSON body: {e}")))?;
        if !value.is_object() {
            return Err(WebhookError::Unprocessable(
                "body must be a JSON object".to_owned(),
            ));
        }
        serde_path_to_error::deserialize(value).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner();
            if path == "." {
                WebhookError::Unprocessable(inner.to_string())
            } else {
                WebhookError::Unprocessable(format!("{path}: {inner}"))
            }
        })
    }

    /// Checks the values (URL shape, event names, lengths) and gives what the store takes.
    /// The target's address is checked separately ([`crate::check_target`]).
    pub fn validate(self) -> Result<(NewWebhook, Url), WebhookError> {
        let invalid = |m: String| Err(WebhookError::Unprocessable(m));
        if self.name.trim().is_empty() || self.name.len() > MAX_NAME_LEN {
            return invalid(format!(
                "name: must be 1 to {MAX_NAME_LEN} bytes and not blank"
            ));
        }
        let url = parse_url(&self.url)?;
        let events = match (self.events, self.event) {
            (Some(events), _) => events,
            (None, Some(event)) => vec![event],
            (None, None) => {
                return invalid("must provide \"events\" field with subscriptions".to_owned())
            }
        };
        let mut unique: Vec<String> = Vec::with_capacity(events.len());
        for event in events {
            if !EVENT_NAMES.contains(&event.as_str()) {
                return invalid(format!(
                    "events: unknown event {event:?}; expected one of {}",
                    EVENT_NAMES.join(", ")
                ));
            }
            if !unique.contains(&event) {
                unique.push(event);
            }
        }
        if let Some(secret) = &self.shared_secret {
            if secret.len() > MAX_SECRET_LEN {
                return invalid(format!("sharedSecret: at most {MAX_SECRET_LEN} bytes"));
            }
        }
        for (field, value) in [
            ("streamId", &self.stream_id),
            ("projectId", &self.project_id),
        ] {
            if value.as_ref().is_some_and(|v| v.len() > 256) {
                return invalid(format!("{field}: at most 256 bytes"));
            }
        }
        Ok((
            NewWebhook {
                name: self.name,
                url: self.url,
                events: unique,
                shared_secret: self.shared_secret,
                stream_id: self.stream_id,
                project_id: self.project_id,
            },
            url,
        ))
    }
}

/// Studio's rule (`^http(s)?://` and a URL that parses), with Studio's message.
fn parse_url(text: &str) -> Result<Url, WebhookError> {
    let bad = || WebhookError::Unprocessable(format!("bad url: {text}"));
    if text.len() > MAX_URL_LEN {
        return Err(WebhookError::Unprocessable(format!(
            "url: at most {MAX_URL_LEN} bytes"
        )));
    }
    if !(text.starts_with("http://") || text.starts_with("https://")) {
        return Err(bad());
    }
    let url = Url::parse(text).map_err(|_| bad())?;
    if url.host().is_none() || !url.username().is_empty() || url.password().is_some() {
        // credentials in a URL would be shown back in every log's request.url
        return Err(bad());
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(body: &str) -> Result<WebhookInput, WebhookError> {
        WebhookInput::from_json(body.as_bytes())
    }

    fn check(body: &str) -> Result<NewWebhook, WebhookError> {
        parse(body)?.validate().map(|(new, _)| new)
    }

    #[test]
    fn a_full_sdk_body_is_accepted() {
        let new = check(
            r#"{"name":"hook","url":"https://example.com/h","events":["stream.started","stream.idle","stream.started"],
                "sharedSecret":"s","streamId":"st","projectId":"p"}"#,
        )
        .expect("valid");
        assert_eq!(
            new.events,
            ["stream.started", "stream.idle"],
            "deduplicated"
        );
        assert_eq!(new.shared_secret.as_deref(), Some("s"));
        assert_eq!(new.stream_id.as_deref(), Some("st"));
        let legacy = check(r#"{"name":"h","url":"http://example.com","event":"asset.ready"}"#)
            .expect("legacy event");
        assert_eq!(legacy.events, ["asset.ready"]);
        let nulls =
            check(r#"{"name":"h","url":"http://example.com","events":[],"sharedSecret":null}"#)
                .expect("nulls for optional fields");
        assert!(nulls.events.is_empty() && nulls.shared_secret.is_none());
    }

    #[test]
    fn bad_bodies_get_clear_errors() {
        let cases: &[(&str, u16, &str)] = &[
            ("{", 400, "malformed JSON"),
            ("[]", 422, "must be a JSON object"),
            (
                r#"{"url":"https://e.com","events":[]}"#,
                422,
                "missing field `name`",
            ),
            (r#"{"name":"h","events":[]}"#, 422, "missing field `url`"),
            (
                r#"{"name":"h","url":"https://e.com","events":[],"colour":1}"#,
                422,
                "unknown field `colour`",
            ),
            (
                r#"{"name":"h","url":"https://e.com","events":"stream.started"}"#,
                422,
                "events: invalid type",
            ),
            (
                r#"{"name":5,"url":"https://e.com","events":[]}"#,
                422,
                "name: invalid type",
            ),
            (
                r#"{"name":"h","url":"https://e.com","events":[1]}"#,
                422,
                "events[0]: invalid type",
            ),
            (
                r#"{"name":"h","url":"ftp://e.com","events":[]}"#,
                422,
                "bad url: ftp://e.com",
            ),
            (
                r#"{"name":"h","url":"https://","events":[]}"#,
                422,
                "bad url",
            ),
            (
                r#"{"name":"h","url":"https://u:p@e.com","events":[]}"#,
                422,
                "bad url",
            ),
            (
                r#"{"name":"h","url":"https://e.com"}"#,
                422,
                "must provide \"events\" field with subscriptions",
            ),
            (
                r#"{"name":"h","url":"https://e.com","events":["stream.exploded"]}"#,
                422,
                "unknown event \"stream.exploded\"",
            ),
            (
                r#"{"name":"  ","url":"https://e.com","events":[]}"#,
                422,
                "name: must be",
            ),
        ];
        for (body, status, message) in cases {
            let error = check(body).expect_err(body);
            assert_eq!(error.status(), *status, "{body}: {error}");
            assert!(error.to_string().contains(message), "{body}: {error}");
        }
    }

    #[test]
    fn secrets_stay_out_of_debug() {
        let input =
            parse(r#"{"name":"h","url":"https://e.com","sharedSecret":"hunter2"}"#).expect("parse");
        assert!(!format!("{input:?}").contains("hunter2"));
    }
}
