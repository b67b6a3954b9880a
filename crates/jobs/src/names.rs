//! The catalogue of every name Livefarm's processes share on the bus and in Redis: streams,
//! consumer groups, headers and keys. Each name is written here once; producers and readers
//! use these constants and functions instead of spelling the name themselves.
//!
//! ```text
//! livefarm:stream:{stream_id}:jobs          Redis stream of one live stream's jobs, in seq order
//! livefarm:stream:{stream_id}:jobs:dlq      its dead letters (poison jobs), written by the bus
//! livefarm:jobs                             index: one tiny entry per job, tailed by every worker
//! livefarm:results                          every SegmentResult, one entry per (stream_id, seq)
//! livefarm:stream:{stream_id}:owner         affinity claim: id of the worker holding the session
//! livefarm:stream:{stream_id}:result:{seq}  idempotency marker of a published result
//! livefarm:stream:{stream_id}:timeline      where a stream's seq and clock stand between publishes
//! livefarm:worker:{worker_id}               worker registration, refreshed by its heartbeat
//! livefarm:stream-events                    publish started / ended (StreamEvent)
//! livefarm:stream-control                   terminate / suspend / delete a live publish (StreamControl)
//! livefarm:tickets:winning                  winning tickets for the redeemer (WinningTicket)
//! livefarm:chain:events                     the indexer's chain events
//! livefarm:indexer:...                      the indexer's cursor and state (prefix)
//! livefarm:redeemer:...                     the redeemer's ticket records and lock (prefix)
//! livefarm:api:playlist:{stream_id}         the api's playlist snapshot of a stream
//! livefarm:api:playlists:cursor             results entry through which every snapshot is saved
//! ```
//!
//! Object-store keys have their own catalogue, `livefarm_storage::keys`.

use livefarm_bus::Headers;

/// The index stream: one entry per enqueued job (payload: the stream id, header `seq`).
pub const INDEX_STREAM: &str = "livefarm:jobs";
/// The results stream: one `SegmentResult` per `(stream_id, seq)`.
pub const RESULTS_STREAM: &str = "livefarm:results";
/// Consumer group of the transcoder workers on every per-stream job stream.
pub const WORKER_GROUP: &str = "transcoders";
/// Prefix of worker registration keys.
pub const WORKER_KEY_PREFIX: &str = "livefarm:worker:";
/// The bus stream of publish lifecycle events (`StreamEvent`, JSON).
pub const STREAM_EVENTS: &str = "livefarm:stream-events";
/// The bus stream of orders to end a live publish (`StreamControl`, JSON): the api appends,
/// every ingest replica tails it from the end.
pub const STREAM_CONTROL: &str = "livefarm:stream-control";
/// The stream winning tickets are appended to (one JSON `WinningTicket` per entry), read by
/// the redeemer.
pub const WINNING_TICKETS_STREAM: &str = "livefarm:tickets:winning";
/// Consumer group of the redeemers on [`WINNING_TICKETS_STREAM`].
pub const REDEEMER_GROUP: &str = "redeemer";
/// The indexer's stream of chain events.
pub const CHAIN_EVENTS_STREAM: &str = "livefarm:chain:events";
/// Default prefix of the indexer's keys (cursor, state).
pub const INDEXER_KEY_PREFIX: &str = "livefarm:indexer";
/// Default prefix of the redeemer's keys (ticket records, leader lock).
pub const REDEEMER_KEY_PREFIX: &str = "livefarm:redeemer";
/// Prefix of the api's playlist snapshot keys (`{prefix}{stream_id}`).
pub const API_SNAPSHOT_PREFIX: &str = "livefarm:api:playlist:";
/// The api's shared snapshot cursor.
pub const API_SNAPSHOT_CURSOR_KEY: &str = "livefarm:api:playlists:cursor";

/// Header on job, index, result and stream-event entries naming the live stream.
pub const STREAM_ID_HEADER: &str = "stream_id";
/// Header on job, index and result entries with the segment number.
pub const SEQ_HEADER: &str = "seq";
/// Header on result entries with the `ResultStatus` (`ok`, `failed`, `dropped`).
pub const STATUS_HEADER: &str = "status";
/// Header on [`STREAM_EVENTS`] entries naming the event (`started`, `ended`).
pub const EVENT_HEADER: &str = "event";
/// Header on [`WINNING_TICKETS_STREAM`] entries with the ticket's sender (`0x...`).
pub const SENDER_HEADER: &str = "sender";
/// Header on [`WINNING_TICKETS_STREAM`] entries with the ticket hash (hex, no `0x`).
pub const TICKET_HASH_HEADER: &str = "ticket_hash";

/// The job stream of `stream_id`.
pub fn jobs_stream(stream_id: &str) -> String {
    format!("livefarm:stream:{stream_id}:jobs")
}

/// The dead-letter stream of `stream_id`'s jobs (the bus appends `:dlq`).
pub fn dead_letter_stream(stream_id: &str) -> String {
    livefarm_bus::dlq_stream(&jobs_stream(stream_id))
}

/// The affinity key of `stream_id`: its value is the id of the worker holding the session.
pub fn affinity_key(stream_id: &str) -> String {
    format!("livefarm:stream:{stream_id}:owner")
}

/// The idempotency marker of the result of `(stream_id, seq)`.
pub fn result_marker_key(stream_id: &str, seq: u64) -> String {
    format!("livefarm:stream:{stream_id}:result:{seq}")
}

/// The key of a stream's timeline (next seq and clock), kept between publish sessions so that
/// a reconnect on any segmenter replica continues it.
pub fn timeline_key(stream_id: &str) -> String {
    format!("livefarm:stream:{stream_id}:timeline")
}

/// The registration key of a worker.
pub fn worker_key(worker_id: &str) -> String {
    format!("{WORKER_KEY_PREFIX}{worker_id}")
}

/// The headers of a [`WINNING_TICKETS_STREAM`] entry: the sender and the ticket hash, so
/// that tools can filter entries without parsing JSON.
pub fn winning_ticket_headers(sender: &str, ticket_hash: &[u8; 32]) -> Headers {
    let mut headers = Headers::new();
    headers.insert(SENDER_HEADER.to_owned(), sender.to_owned());
    let hash = ticket_hash.iter().map(|b| format!("{b:02x}")).collect();
    headers.insert(TICKET_HASH_HEADER.to_owned(), hash);
    headers
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_stream_names() {
        assert_eq!(jobs_stream("s"), "livefarm:stream:s:jobs");
        assert_eq!(dead_letter_stream("s"), "livefarm:stream:s:jobs:dlq");
        assert_eq!(affinity_key("s"), "livefarm:stream:s:owner");
        assert_eq!(result_marker_key("s", 7), "livefarm:stream:s:result:7");
        assert_eq!(timeline_key("s"), "livefarm:stream:s:timeline");
        assert_eq!(worker_key("w"), "livefarm:worker:w");
    }

    #[test]
    fn winning_ticket_entries_carry_sender_and_hash() {
        let mut hash = [0u8; 32];
        hash[0] = 0xab;
        let headers = winning_ticket_headers("0x11", &hash);
        assert_eq!(headers[SENDER_HEADER], "0x11");
        assert_eq!(
            headers[TICKET_HASH_HEADER],
            format!("ab{}", "00".repeat(31))
        );
    }
}
