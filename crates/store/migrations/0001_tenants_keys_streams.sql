-- Tenants, their API keys and their live streams.
-- Portable SQL: the same text runs on SQLite and PostgreSQL. Times are Unix milliseconds
-- (BIGINT), flags are 0/1 (BIGINT), structured fields are JSON text.

CREATE TABLE tenants (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    created_at  BIGINT NOT NULL
);

CREATE TABLE api_keys (
    id           TEXT PRIMARY KEY,
    tenant_id    TEXT NOT NULL REFERENCES tenants (id),
    name         TEXT NOT NULL,
    -- SHA-256 of the secret, hex; the secret itself is never stored
    key_hash     TEXT NOT NULL UNIQUE,
    -- the first characters of the secret, to tell keys apart in listings
    key_prefix   TEXT NOT NULL,
    created_at   BIGINT NOT NULL,
    last_used_at BIGINT,
    revoked_at   BIGINT
);
CREATE INDEX api_keys_by_tenant ON api_keys (tenant_id, created_at);

CREATE TABLE streams (
    id                  TEXT PRIMARY KEY,
    tenant_id           TEXT NOT NULL REFERENCES tenants (id),
    name                TEXT NOT NULL,
    stream_key          TEXT NOT NULL UNIQUE,
    playback_id         TEXT NOT NULL UNIQUE,
    record              BIGINT NOT NULL,
    suspended           BIGINT NOT NULL DEFAULT 0,
    is_active           BIGINT NOT NULL DEFAULT 0,
    last_seen           BIGINT NOT NULL DEFAULT 0,
    last_terminated_at  BIGINT,
    created_at          BIGINT NOT NULL,
    updated_at          BIGINT NOT NULL,
    deleted_at          BIGINT,
    created_by_key_name TEXT,
    -- profiles, recordingSpec, multistream, playbackPolicy, userTags, creatorId (Studio's shapes)
    spec                TEXT NOT NULL
);
CREATE INDEX streams_by_tenant ON streams (tenant_id, created_at, id);
