-- Webhooks (Studio's §5): subscriptions, the events emitted for them, the persisted delivery
-- queue and the log of every HTTP attempt.
-- Portable SQL as in 0001: text ids, BIGINT Unix-millisecond times, 0/1 flags, JSON as text.

CREATE TABLE webhooks (
    id                TEXT PRIMARY KEY,
    tenant_id         TEXT NOT NULL REFERENCES tenants (id),
    name              TEXT NOT NULL,
    url               TEXT NOT NULL,
    -- JSON array of event names
    events            TEXT NOT NULL,
    -- the HMAC key of Livepeer-Signature, kept as given: every delivery signs with it, so it
    -- must be readable; listings and reads never return it
    shared_secret     TEXT,
    stream_id         TEXT,
    project_id        TEXT,
    created_at        BIGINT NOT NULL,
    updated_at        BIGINT NOT NULL,
    deleted_at        BIGINT,
    last_triggered_at BIGINT,
    -- JSON {timestamp, error?, response?, statusCode?}
    last_failure      TEXT
);
CREATE INDEX webhooks_by_tenant ON webhooks (tenant_id, created_at, id);

-- One row per emitted event: the parts of the delivery body that do not change between
-- attempts. The id is the event id receivers dedupe on; a replayed event is a no-op.
CREATE TABLE webhook_events (
    id         TEXT PRIMARY KEY,
    tenant_id  TEXT NOT NULL,
    event      TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    -- JSON, absent when the event carries none
    stream     TEXT,
    payload    TEXT
);

-- The queue: one row per (event, subscribed webhook). A deliverer claims a due row by setting
-- claimed_by/claimed_until (a lease); another replica takes it over only once the lease ends.
CREATE TABLE webhook_deliveries (
    id              TEXT PRIMARY KEY,
    event_id        TEXT NOT NULL REFERENCES webhook_events (id),
    webhook_id      TEXT NOT NULL REFERENCES webhooks (id),
    tenant_id       TEXT NOT NULL,
    -- pending | delivered | failed
    state           TEXT NOT NULL,
    attempts        BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    claimed_by      TEXT,
    claimed_until   BIGINT,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    UNIQUE (event_id, webhook_id)
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (state, next_attempt_at);
CREATE INDEX webhook_deliveries_by_webhook ON webhook_deliveries (webhook_id, state);

-- Studio's WebhookLog: one row per HTTP attempt (retries and resends included).
CREATE TABLE webhook_logs (
    id          TEXT PRIMARY KEY,
    webhook_id  TEXT NOT NULL REFERENCES webhooks (id),
    tenant_id   TEXT NOT NULL,
    event_id    TEXT NOT NULL,
    event       TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    duration_us BIGINT NOT NULL,
    success     BIGINT NOT NULL,
    -- HTTP status; absent after a transport error or timeout
    status_code BIGINT,
    -- JSON {url, method, headers, body}
    request     TEXT NOT NULL,
    -- JSON {status, statusText, body}; absent when no response came
    response    TEXT,
    error       TEXT
);
CREATE INDEX webhook_logs_by_webhook ON webhook_logs (webhook_id, created_at, id);
