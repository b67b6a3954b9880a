//! [`Webhooks`]: everything the `/api/webhook` routes do, so that each route is a thin
//! wrapper: parse the body with [`WebhookInput::from_json`] (or the api's own extractor), call
//! one method with the caller's tenant, answer 200 with the JSON, or
//! [`WebhookError::status`] with its message.

use livefarm_store::{Page, Store};
use serde_json::Value;

use crate::guard::check_target;
use crate::render::{webhook_json, webhook_log_json};
use crate::sender::Sender;
use crate::{WebhookConfig, WebhookError, WebhookInput};

const WEBHOOK_NOT_FOUND: &str = "webhook not found";
const LOG_NOT_FOUND: &str = "webhook log not found";

/// The webhook routes' logic over the store.
#[derive(Debug, Clone)]
pub struct Webhooks {
    store: Store,
    config: WebhookConfig,
    sender: Sender,
}

impl Webhooks {
    /// Builds the routes' logic (the HTTP client for resends included).
    pub fn new(store: Store, config: WebhookConfig) -> Result<Webhooks, WebhookError> {
        let sender = Sender::new(&config)?;
        Ok(Webhooks {
            store,
            config,
            sender,
        })
    }

    /// The configuration in use.
    pub fn config(&self) -> &WebhookConfig {
        &self.config
    }

    /// Validates `input` and checks its target's address (422 when refused).
    async fn vet(&self, input: WebhookInput) -> Result<livefarm_store::NewWebhook, WebhookError> {
        let (new, url) = input.validate()?;
        check_target(&url, self.config.allow_private_targets).await?;
        Ok(new)
    }

    /// `POST /webhook` (SDK: 200): the new webhook, with `sharedSecret` as Studio echoes it.
    pub async fn create(
        &self,
        tenant_id: &str,
        input: WebhookInput,
    ) -> Result<Value, WebhookError> {
        let new = self.vet(input).await?;
        let webhook = self.store.create_webhook(tenant_id, &new).await?;
        Ok(webhook_json(&webhook, true))
    }

    /// `GET /webhook/{id}`.
    pub async fn get(&self, tenant_id: &str, id: &str) -> Result<Value, WebhookError> {
        let webhook = self
            .store
            .webhook(tenant_id, id)
            .await?
            .ok_or(WebhookError::NotFound(WEBHOOK_NOT_FOUND))?;
        Ok(webhook_json(&webhook, false))
    }

    /// `GET /webhook`: one page, newest first, and the next page's cursor (for `Link`).
    pub async fn list(
        &self,
        tenant_id: &str,
        page: &Page,
    ) -> Result<(Vec<Value>, Option<String>), WebhookError> {
        let (webhooks, next) = self.store.list_webhooks(tenant_id, page).await?;
        Ok((
            webhooks.iter().map(|w| webhook_json(w, false)).collect(),
            next,
        ))
    }

    /// How many webhooks the tenant has (`X-Total-Count`).
    pub async fn count(&self, tenant_id: &str) -> Result<i64, WebhookError> {
        Ok(self.store.count_webhooks(tenant_id).await?)
    }

    /// `PUT /webhook/{id}` (SDK: 200 with the full webhook): replaces the webhook named by the
    /// path. An omitted `sharedSecret` keeps the stored one; `""` removes it.
    pub async fn replace(
        &self,
        tenant_id: &str,
        id: &str,
        input: WebhookInput,
    ) -> Result<Value, WebhookError> {
        if self.store.webhook(tenant_id, id).await?.is_none() {
            // 404 before 422: another tenant's id says nothing about its webhook
            return Err(WebhookError::NotFound(WEBHOOK_NOT_FOUND));
        }
        let new = self.vet(input).await?;
        let webhook = self
            .store
            .replace_webhook(tenant_id, id, &new)
            .await?
            .ok_or(WebhookError::NotFound(WEBHOOK_NOT_FOUND))?;
        Ok(webhook_json(&webhook, false))
    }

    /// `DELETE /webhook/{id}` (SDK: 200 with the deleted webhook): soft delete; its pending
    /// deliveries are given up.
    pub async fn delete(&self, tenant_id: &str, id: &str) -> Result<Value, WebhookError> {
        let webhook = self
            .store
            .delete_webhook(tenant_id, id)
            .await?
            .ok_or(WebhookError::NotFound(WEBHOOK_NOT_FOUND))?;
        Ok(webhook_json(&webhook, false))
    }

    /// `GET /webhook/{id}/log`: one page of attempts, newest first, and the next cursor.
    pub async fn logs(
        &self,
        tenant_id: &str,
        webhook_id: &str,
        page: &Page,
    ) -> Result<(Vec<Value>, Option<String>), WebhookError> {
        if self.store.webhook(tenant_id, webhook_id).await?.is_none() {
            return Err(WebhookError::NotFound(WEBHOOK_NOT_FOUND));
        }
        let (logs, next) = self
            .store
            .list_webhook_logs(tenant_id, webhook_id, page)
            .await?;
        Ok((logs.iter().map(webhook_log_json).collect(), next))
    }

    /// `GET /webhook/{id}/log/{logId}`.
    pub async fn log(
        &self,
        tenant_id: &str,
        webhook_id: &str,
        log_id: &str,
    ) -> Result<Value, WebhookError> {
        let (_, log) = self.webhook_and_log(tenant_id, webhook_id, log_id).await?;
        Ok(webhook_log_json(&log))
    }

    /// `POST /webhook/{id}/log/{logId}/resend`: sends the logged event again now (new
    /// `timestamp` and signature, same `id`), logs it, and returns the new log entry. The
    /// webhook's current URL and secret are used; the delivery queue is not touched.
    pub async fn resend(
        &self,
        tenant_id: &str,
        webhook_id: &str,
        log_id: &str,
    ) -> Result<Value, WebhookError> {
        let (webhook, log) = self.webhook_and_log(tenant_id, webhook_id, log_id).await?;
        let event = self
            .store
            .webhook_event(&log.event_id)
            .await?
            .filter(|e| e.tenant_id == tenant_id)
            .ok_or(WebhookError::NotFound(LOG_NOT_FOUND))?;
        let result = self.sender.attempt(&event, &webhook).await;
        let recorded = self
            .store
            .record_log(&result.log, result.failure.as_ref())
            .await?;
        Ok(webhook_log_json(&recorded))
    }

    async fn webhook_and_log(
        &self,
        tenant_id: &str,
        webhook_id: &str,
        log_id: &str,
    ) -> Result<
        (
            livefarm_store::WebhookRecord,
            livefarm_store::WebhookLogRecord,
        ),
        WebhookError,
    > {
        let webhook = self
            .store
            .webhook(tenant_id, webhook_id)
            .await?
            .ok_or(WebhookError::NotFound(WEBHOOK_NOT_FOUND))?;
        let log = self
            .store
            .webhook_log(tenant_id, log_id)
            .await?
            .ok_or(WebhookError::NotFound(LOG_NOT_FOUND))?;
        if log.webhook_id != webhook.id {
            return Err(WebhookError::BadRequest(
                "mismatch between webhook and webhook log".to_owned(),
            ));
        }
        Ok((webhook, log))
    }
}
