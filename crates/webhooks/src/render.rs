//! The JSON objects of the webhook routes: Webhook (§5.1, Appendix A) and WebhookLog (§5.2).
//! Optional fields are omitted rather than `null` (the TS SDK refuses `null` where its schema
//! does not allow it).

use livefarm_store::{WebhookLogRecord, WebhookRecord};
use serde_json::{json, Map, Value};

/// The Webhook object. `sharedSecret` is write-only in Studio's schema and the SDKs drop it;
/// it is included only when `with_secret` (the create response, which echoes what the caller
/// just sent, as Studio does), never in get, list, update or delete.
pub fn webhook_json(webhook: &WebhookRecord, with_secret: bool) -> Value {
    let mut out = Map::new();
    out.insert("id".to_owned(), json!(webhook.id));
    out.insert("name".to_owned(), json!(webhook.name));
    out.insert("kind".to_owned(), json!("webhook"));
    out.insert("userId".to_owned(), json!(webhook.tenant_id));
    if let Some(project) = &webhook.project_id {
        out.insert("projectId".to_owned(), json!(project));
    }
    out.insert("createdAt".to_owned(), json!(webhook.created_at));
    out.insert("events".to_owned(), json!(webhook.events));
    out.insert("url".to_owned(), json!(webhook.url));
    if let Some(stream) = &webhook.stream_id {
        out.insert("streamId".to_owned(), json!(stream));
    }
    if with_secret {
        if let Some(secret) = &webhook.shared_secret {
            out.insert("sharedSecret".to_owned(), json!(secret));
        }
    }
    let mut status = Map::new();
    if let Some(at) = webhook.last_triggered_at {
        status.insert("lastTriggeredAt".to_owned(), json!(at));
    }
    if let Some(failure) = &webhook.last_failure {
        status.insert("lastFailure".to_owned(), failure.clone());
    }
    if !status.is_empty() {
        out.insert("status".to_owned(), Value::Object(status));
    }
    Value::Object(out)
}

/// The WebhookLog object: `duration` in seconds, `response.body` base64 of the first 1024
/// characters of what the receiver answered; no `response` when none came.
pub fn webhook_log_json(log: &WebhookLogRecord) -> Value {
    let mut out = Map::new();
    out.insert("id".to_owned(), json!(log.id));
    out.insert("webhookId".to_owned(), json!(log.webhook_id));
    out.insert("event".to_owned(), json!(log.event));
    out.insert("createdAt".to_owned(), json!(log.created_at));
    out.insert(
        "duration".to_owned(),
        json!(log.duration_us as f64 / 1_000_000.0),
    );
    out.insert("success".to_owned(), json!(log.success));
    out.insert("request".to_owned(), log.request.clone());
    if let Some(response) = &log.response {
        out.insert("response".to_owned(), response.clone());
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn webhook() -> WebhookRecord {
        WebhookRecord {
            id: "w-1".to_owned(),
            tenant_id: "u-1".to_owned(),
            name: "hook".to_owned(),
            url: "https://example.com/hook".to_owned(),
            events: vec!["stream.started".to_owned(), "stream.idle".to_owned()],
            shared_secret: Some("hunter2".to_owned()),
            stream_id: None,
            project_id: Some("p-1".to_owned()),
            created_at: 1_700_000_000_000,
            updated_at: 1_700_000_000_000,
            deleted_at: None,
            last_triggered_at: Some(1_700_000_000_000),
            last_failure: None,
        }
    }

    #[test]
    fn webhook_matches_the_golden_body() {
        assert_eq!(
            webhook_json(&webhook(), false),
            json!({
                "id": "w-1", "name": "hook", "kind": "webhook", "userId": "u-1",
                "projectId": "p-1", "createdAt": 1_700_000_000_000_i64,
                "events": ["stream.started", "stream.idle"],
                "url": "https://example.com/hook",
                "status": {"lastTriggeredAt": 1_700_000_000_000_i64}
            })
        );
        assert_eq!(webhook_json(&webhook(), true)["sharedSecret"], "hunter2");
        let fresh = WebhookRecord {
            last_triggered_at: None,
            project_id: None,
            ..webhook()
        };
        let fresh = webhook_json(&fresh, false);
        assert!(fresh.get("status").is_none() && fresh.get("projectId").is_none());
        assert!(!fresh.to_string().contains("null"), "{fresh}");
    }

    #[test]
    fn log_matches_the_golden_body() {
        let log = WebhookLogRecord {
            id: "l-1".to_owned(),
            webhook_id: "w-1".to_owned(),
            tenant_id: "u-1".to_owned(),
            event_id: "e".to_owned(),
            event: "stream.started".to_owned(),
            created_at: 1_700_000_000_000,
            duration_us: 120_000,
            success: true,
            status_code: Some(200),
            request: json!({"url": "https://example.com/hook", "method": "POST",
                            "headers": {"user-agent": "livepeer.studio"}, "body": "{}"}),
            response: Some(json!({"body": "", "status": 200, "statusText": "OK"})),
            error: None,
        };
        assert_eq!(
            webhook_log_json(&log),
            json!({
                "id": "l-1", "webhookId": "w-1", "event": "stream.started",
                "createdAt": 1_700_000_000_000_i64, "duration": 0.12, "success": true,
                "request": {"url": "https://example.com/hook", "method": "POST",
                            "headers": {"user-agent": "livepeer.studio"}, "body": "{}"},
                "response": {"body": "", "status": 200, "statusText": "OK"}
            })
        );
        let failed = WebhookLogRecord {
            response: None,
            success: false,
            ..log
        };
        assert!(webhook_log_json(&failed).get("response").is_none());
    }
}
