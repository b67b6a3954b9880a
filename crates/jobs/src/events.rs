//! Publish lifecycle events: the segmenter announces when a publisher starts (and whether it
//! is a reconnect) and when it has left with every segment enqueued, so playback can mark
//! discontinuities and end playlists.

use serde::{Deserialize, Serialize};

/// What happened to a stream's publish.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StreamEventKind {
    /// A publisher started; `discontinuity` says it is a reconnect.
    Started,
    /// The publisher left and every segment of the session is enqueued.
    Ended,
}

/// One entry of [`STREAM_EVENTS`](crate::STREAM_EVENTS).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StreamEvent {
    pub event: StreamEventKind,
    pub stream_id: String,
    pub session_id: String,
    /// `rtmp`, `srt`.
    pub protocol: String,
    /// Seq of the session's first segment.
    pub first_seq: u64,
    /// Seq the next segment of the stream will get (`ended`: one past the session's last).
    pub next_seq: u64,
    /// Segments enqueued in the session (0 on `started`).
    pub segments: u64,
    /// Sum of their durations, milliseconds.
    pub duration_ms: u64,
    /// The session follows an earlier one of the same stream.
    pub discontinuity: bool,
    /// Milliseconds since the epoch.
    pub at_ms: u64,
}

/// What the api did to a stream that ends its live publish.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StreamControlAction {
    /// End the session; the publisher may reconnect at once.
    Terminate,
    /// End the session; publishes are refused until the stream is unsuspended.
    Suspend,
    /// End the session; the stream is gone.
    Delete,
}

/// One entry of [`STREAM_CONTROL`](crate::STREAM_CONTROL).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StreamControl {
    pub stream_id: String,
    pub action: StreamControlAction,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_control_wire_format() {
        let control = StreamControl {
            stream_id: "s1".to_owned(),
            action: StreamControlAction::Suspend,
        };
        let text = serde_json::to_string(&control).expect("json");
        assert_eq!(text, r#"{"stream_id":"s1","action":"suspend"}"#);
        let back: StreamControl =
            serde_json::from_str(r#"{"stream_id":"s1","action":"terminate"}"#).expect("parses");
        assert_eq!(back.action, StreamControlAction::Terminate);
        assert!(
            serde_json::from_str::<StreamControl>(r#"{"stream_id":"s","action":"x"}"#).is_err()
        );
    }
}
