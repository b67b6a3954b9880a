//! The delivery request (Studio §5.3): the JSON body with its keys in Studio's order, and the
//! headers.

use livefarm_store::EventRecord;
use serde::Serialize;
use serde_json::Value;

use crate::signature::{signature_header, SIGNATURE_HEADER};

/// `user-agent` of every delivery, as Studio sends it (receivers may filter on it).
pub const USER_AGENT: &str = "livepeer.studio";

/// Studio's event names (§5.1), the closed set the SDKs accept in `events`.
pub const EVENT_NAMES: &[&str] = &[
    "stream.started",
    "stream.detection",
    "stream.idle",
    "recording.ready",
    "recording.started",
    "recording.waiting",
    "multistream.connected",
    "multistream.error",
    "multistream.disconnected",
    "playback.user.new",
    "playback.accessControl",
    "asset.created",
    "asset.updated",
    "asset.failed",
    "asset.ready",
    "asset.deleted",
    "task.spawned",
    "task.updated",
    "task.completed",
    "task.failed",
];

/// The body, field order as Studio's `JSON.stringify` writes it.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct DeliveryBody<'a> {
    id: &'a str,
    webhook_id: &'a str,
    created_at: i64,
    timestamp: i64,
    event: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    stream: Option<&'a Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    payload: Option<&'a Value>,
}

/// The exact body of an attempt at `timestamp` (ms): `id, webhookId, createdAt, timestamp,
/// event, stream?, payload?`. `id` is the event's, the same on every attempt and resend.
pub fn delivery_body(event: &EventRecord, webhook_id: &str, timestamp: i64) -> String {
    let body = DeliveryBody {
        id: &event.id,
        webhook_id,
        created_at: event.created_at,
        timestamp,
        event: &event.event,
        stream: event.stream.as_ref(),
        payload: event.payload.as_ref(),
    };
    // a struct of strings, numbers and Values always serializes
    serde_json::to_string(&body).unwrap_or_default()
}

/// The headers of an attempt, in sending order: `content-type`, `user-agent`, and
/// `Livepeer-Signature` when the webhook has a secret.
pub fn delivery_headers(body: &str, timestamp: i64, secret: Option<&str>) -> Vec<(String, String)> {
    let mut headers = vec![
        ("content-type".to_owned(), "application/json".to_owned()),
        ("user-agent".to_owned(), USER_AGENT.to_owned()),
    ];
    if let Some(secret) = secret.filter(|s| !s.is_empty()) {
        headers.push((
            SIGNATURE_HEADER.to_owned(),
            signature_header(timestamp, body.as_bytes(), secret),
        ));
    }
    headers
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::signature::verify;

    fn event(stream: Option<Value>, payload: Option<Value>) -> EventRecord {
        EventRecord {
            id: "9f1c2d3e-0000-4000-8000-000000000001".to_owned(),
            tenant_id: "t".to_owned(),
            event: "stream.started".to_owned(),
            created_at: 1_700_000_000_000,
            stream,
            payload,
        }
    }

    #[test]
    fn body_matches_studio_byte_for_byte() {
        // the §5.4 test vector's body is what Studio sends for this event
        let body = delivery_body(
            &event(Some(json!({"id": "s-1", "name": "my-stream"})), None),
            "w-1",
            1_700_000_000_123,
        );
        assert_eq!(
            body,
            r#"{"id":"9f1c2d3e-0000-4000-8000-000000000001","webhookId":"w-1","createdAt":1700000000000,"timestamp":1700000000123,"event":"stream.started","stream":{"id":"s-1","name":"my-stream"}}"#
        );
        let headers = delivery_headers(&body, 1_700_000_000_123, Some("my-secret"));
        assert_eq!(
            headers[2].1,
            "t=1700000000123,v1=cea29d35441b810217ff0b12cc696bb9fde65938b7c1c13113391e58cbeb7f35"
        );
    }

    #[test]
    fn payload_follows_stream_and_absent_parts_are_omitted() {
        let body = delivery_body(&event(None, Some(json!({"session": {}}))), "w", 5);
        assert!(
            body.ends_with(r#""event":"stream.started","payload":{"session":{}}}"#),
            "{body}"
        );
        assert!(!body.contains("stream\":"), "{body}");
        let bare = delivery_body(&event(None, None), "w", 5);
        assert!(bare.ends_with(r#""event":"stream.started"}"#), "{bare}");
    }

    #[test]
    fn headers_sign_only_with_a_secret() {
        let body = delivery_body(&event(None, None), "w", 42);
        let unsigned = delivery_headers(&body, 42, None);
        assert_eq!(unsigned.len(), 2);
        assert_eq!(delivery_headers(&body, 42, Some("")).len(), 2);
        let signed = delivery_headers(&body, 42, Some("s3cret"));
        assert_eq!(
            signed[0],
            ("content-type".to_owned(), "application/json".to_owned())
        );
        assert_eq!(
            signed[1],
            ("user-agent".to_owned(), "livepeer.studio".to_owned())
        );
        assert_eq!(signed[2].0, "Livepeer-Signature");
        assert_eq!(
            verify(
                &signed[2].1,
                body.as_bytes(),
                "s3cret",
                42,
                std::time::Duration::ZERO
            ),
            Ok(42)
        );
    }
}
