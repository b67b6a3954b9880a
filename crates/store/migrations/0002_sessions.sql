-- Publish sessions (one per publish of a stream; the id is ingest's session id) and their
-- recordings. Portable SQL as in 0001: times in Unix ms, flags 0/1, JSON as text.
-- A session is the seq range [first_seq, next_seq) of its stream; next_seq is known once
-- the publisher left. Counters are written as absolute values that only grow (every api
-- replica computes them from the results it read), never incremented.

CREATE TABLE sessions (
    id                     TEXT PRIMARY KEY,
    stream_id              TEXT NOT NULL REFERENCES streams (id),
    tenant_id              TEXT NOT NULL REFERENCES tenants (id),
    name                   TEXT NOT NULL,
    record                 BIGINT NOT NULL,
    -- profiles and recordingSpec copied from the stream when the session started
    spec                   TEXT NOT NULL,
    protocol               TEXT NOT NULL,
    created_at             BIGINT NOT NULL,
    last_seen              BIGINT NOT NULL,
    ended_at               BIGINT,
    first_seq              BIGINT NOT NULL,
    next_seq               BIGINT,
    source_segments        BIGINT NOT NULL DEFAULT 0,
    transcoded_segments    BIGINT NOT NULL DEFAULT 0,
    source_duration_ms     BIGINT NOT NULL DEFAULT 0,
    transcoded_duration_ms BIGINT NOT NULL DEFAULT 0,
    source_bytes           BIGINT NOT NULL DEFAULT 0,
    transcoded_bytes       BIGINT NOT NULL DEFAULT 0,
    -- waiting | ready | failed | none
    recording_status       TEXT NOT NULL,
    recording_ready_at     BIGINT,
    error                  TEXT,
    -- the replica finalizing the recording, until claim_until (a lease)
    claimed_by             TEXT,
    claim_until            BIGINT,
    -- webhook events this session owes and has handed over (bit sets; an outbox, so that
    -- an event decided in a transition is emitted even if the process dies right after)
    events_owed            BIGINT NOT NULL DEFAULT 0,
    events_sent            BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX sessions_by_tenant ON sessions (tenant_id, created_at, id);
CREATE INDEX sessions_by_stream ON sessions (stream_id, created_at, id);
CREATE INDEX sessions_by_recording ON sessions (recording_status, ended_at);
