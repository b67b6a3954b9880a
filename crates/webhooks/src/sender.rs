//! One HTTP attempt: the signed request, the response (or what went wrong), and the log
//! entry and `status.lastFailure` it leaves. Retried or not is decided by [`Classified`].

use std::time::Instant;

use base64::Engine;
use livefarm_store::ids::now_ms;
use livefarm_store::{EventRecord, NewLog, WebhookRecord};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde_json::{json, Map, Value};
use url::Url;

use crate::body::{delivery_body, delivery_headers};
use crate::guard::{check_target, refusal_in, GuardedResolver, TargetError};
use crate::{WebhookConfig, WebhookError};

/// How much of a response body is read (the log keeps the first 1024 characters).
const RESPONSE_READ_LIMIT: usize = 4096;
/// Characters of the response body kept in the log and in `lastFailure.response`.
const RESPONSE_KEEP_CHARS: usize = 1024;

/// What an attempt's result means for the delivery (Studio §5.5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Classified {
    /// A 2xx: delivered.
    Delivered,
    /// 5xx, a transport error or a timeout: try again later.
    Retryable,
    /// 3xx or 4xx (redirects are not followed), or a refused target: given up at once.
    Final,
}

/// The outcome of one attempt.
#[derive(Debug, Clone, PartialEq)]
pub struct AttemptResult {
    pub classified: Classified,
    /// The log entry to store.
    pub log: NewLog,
    /// The webhook's new `status.lastFailure` when this attempt failed.
    pub failure: Option<Value>,
}

/// Classifies an HTTP status by Studio's rules.
pub fn classify_status(status: u16) -> Classified {
    match status {
        200..=299 => Classified::Delivered,
        500.. => Classified::Retryable,
        _ => Classified::Final,
    }
}

/// Sends attempts through one HTTP client whose resolver is the SSRF guard.
#[derive(Debug, Clone)]
pub(crate) struct Sender {
    client: reqwest::Client,
    allow_private: bool,
}

impl Sender {
    pub(crate) fn new(config: &WebhookConfig) -> Result<Sender, WebhookError> {
        let client = reqwest::Client::builder()
            .dns_resolver(GuardedResolver {
                allow_private: config.allow_private_targets,
            })
            // a redirect could lead anywhere, past the guard; Studio does not retry 3xx either
            .redirect(reqwest::redirect::Policy::none())
            // a proxy would resolve the name itself, past the guard
            .no_proxy()
            .timeout(config.timeout())
            .build()
            .map_err(|e| WebhookError::Client(e.to_string()))?;
        Ok(Sender {
            client,
            allow_private: config.allow_private_targets,
        })
    }

    /// Makes one attempt of `event` to `webhook` now: new timestamp, new signature, the
    /// event's id.
    pub(crate) async fn attempt(
        &self,
        event: &EventRecord,
        webhook: &WebhookRecord,
    ) -> AttemptResult {
        let started_at = now_ms();
        let started = Instant::now();
        let body = delivery_body(event, &webhook.id, started_at);
        let headers = delivery_headers(&body, started_at, webhook.shared_secret.as_deref());
        let mut logged_headers = Map::new();
        let mut header_map = HeaderMap::new();
        for (name, value) in &headers {
            logged_headers.insert(name.clone(), json!(value));
            if let (Ok(name), Ok(value)) = (
                HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_str(value),
            ) {
                header_map.insert(name, value);
            }
        }
        let request = json!({
            "url": webhook.url,
            "method": "POST",
            "headers": logged_headers,
            "body": body,
        });
        let log = |success, status_code, response, error| NewLog {
            webhook_id: webhook.id.clone(),
            tenant_id: webhook.tenant_id.clone(),
            event_id: event.id.clone(),
            event: event.event.clone(),
            created_at: started_at,
            duration_us: i64::try_from(started.elapsed().as_micros()).unwrap_or(i64::MAX),
            success,
            status_code,
            request: request.clone(),
            response,
            error,
        };
        let refused = |error: String| AttemptResult {
            classified: Classified::Final,
            failure: Some(json!({"timestamp": started_at, "error": error})),
            log: log(false, None, None, Some(error.clone())),
        };

        // IP literals never reach the resolver: vet them here (names are vetted there)
        let url = match Url::parse(&webhook.url) {
            Ok(url) => url,
            Err(e) => return refused(format!("bad url: {e}")),
        };
        if matches!(url.host(), Some(url::Host::Ipv4(_) | url::Host::Ipv6(_))) {
            if let Err(error) = check_target(&url, self.allow_private).await {
                return refused(error.to_string());
            }
        }

        let sent = self
            .client
            .post(url)
            .headers(header_map)
            .body(body.clone())
            .send()
            .await;
        match sent {
            Ok(mut response) => {
                let status = response.status();
                let mut read = Vec::new();
                // the client's timeout covers the body too; a body cut short is kept as is
                while read.len() < RESPONSE_READ_LIMIT {
                    match response.chunk().await {
                        Ok(Some(chunk)) => read.extend_from_slice(&chunk),
                        Ok(None) | Err(_) => break,
                    }
                }
                let text: String = String::from_utf8_lossy(&read)
                    .chars()
                    .take(RESPONSE_KEEP_CHARS)
                    .collect();
                let encoded = base64::engine::general_purpose::STANDARD.encode(text.as_bytes());
                let classified = classify_status(status.as_u16());
                let response_json = json!({
                    "status": status.as_u16(),
                    "statusText": status.canonical_reason().unwrap_or(""),
                    "body": encoded,
                });
                let failure = (classified != Classified::Delivered).then(|| {
                    json!({
                        "timestamp": started_at,
                        "statusCode": status.as_u16(),
                        "response": encoded,
                    })
                });
                AttemptResult {
                    classified,
                    failure,
                    log: log(
                        classified == Classified::Delivered,
                        Some(status.as_u16()),
                        Some(response_json),
                        None,
                    ),
                }
            }
            Err(error) => {
                if let Some(refusal) = refusal_in(&error) {
                    return refused(refusal.to_string());
                }
                let message = if error.is_timeout() {
                    "timed out".to_owned()
                } else {
                    transport_message(&error)
                };
                AttemptResult {
                    classified: Classified::Retryable,
                    failure: Some(json!({"timestamp": started_at, "error": message})),
                    log: log(false, None, None, Some(message)),
                }
            }
        }
    }
}

/// The error and its causes, `: `-joined (reqwest's own message alone says little).
fn transport_message(error: &reqwest::Error) -> String {
    let mut message = error.to_string();
    let mut next = std::error::Error::source(error);
    while let Some(cause) = next {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        next = cause.source();
    }
    message
}

impl From<TargetError> for WebhookError {
    fn from(error: TargetError) -> Self {
        WebhookError::Unprocessable(error.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_are_classified_as_studio_does() {
        for (status, expected) in [
            (200, Classified::Delivered),
            (204, Classified::Delivered),
            (299, Classified::Delivered),
            (301, Classified::Final),
            (302, Classified::Final),
            (400, Classified::Final),
            (404, Classified::Final),
            (429, Classified::Final),
            (500, Classified::Retryable),
            (503, Classified::Retryable),
            (599, Classified::Retryable),
        ] {
            assert_eq!(classify_status(status), expected, "{status}");
        }
    }
}
