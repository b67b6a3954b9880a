-- A stream's usage over all its sessions (Studio's stream object carries sourceSegments,
-- transcodedSegments, their durations and bytes). Kept on the stream row, recomputed from the
-- sessions whenever a session's counters change, so reading a stream stays one row.
ALTER TABLE streams ADD COLUMN source_segments BIGINT NOT NULL DEFAULT 0;
ALTER TABLE streams ADD COLUMN transcoded_segments BIGINT NOT NULL DEFAULT 0;
ALTER TABLE streams ADD COLUMN source_duration_ms BIGINT NOT NULL DEFAULT 0;
ALTER TABLE streams ADD COLUMN transcoded_duration_ms BIGINT NOT NULL DEFAULT 0;
ALTER TABLE streams ADD COLUMN source_bytes BIGINT NOT NULL DEFAULT 0;
ALTER TABLE streams ADD COLUMN transcoded_bytes BIGINT NOT NULL DEFAULT 0;
-- streams that already had sessions
UPDATE streams SET
    source_segments = (SELECT COALESCE(SUM(source_segments), 0) FROM sessions WHERE sessions.stream_id = streams.id),
    transcoded_segments = (SELECT COALESCE(SUM(transcoded_segments), 0) FROM sessions WHERE sessions.stream_id = streams.id),
    source_duration_ms = (SELECT COALESCE(SUM(source_duration_ms), 0) FROM sessions WHERE sessions.stream_id = streams.id),
    transcoded_duration_ms = (SELECT COALESCE(SUM(transcoded_duration_ms), 0) FROM sessions WHERE sessions.stream_id = streams.id),
    source_bytes = (SELECT COALESCE(SUM(source_bytes), 0) FROM sessions WHERE sessions.stream_id = streams.id),
    transcoded_bytes = (SELECT COALESCE(SUM(transcoded_bytes), 0) FROM sessions WHERE sessions.stream_id = streams.id);
