//! Obeys the control plane: every ingest replica tails `livefarm:stream-control` from its end
//! and ends the live publishes (RTMP and SRT) of each stream named there. The api appends an
//! entry when a stream is terminated, suspended or deleted, after writing the change to the
//! store; the stream's cached auth answer is dropped too, so a reconnect is checked against
//! the store at once (refused after suspend or delete, let in after terminate).

use std::sync::Arc;

use livefarm_bus::JobBus;
use livefarm_jobs::{StreamControl, Tail, TailFrom, TailOptions, STREAM_CONTROL};
use livefarm_runtime::Shutdown;
use tokio::task::JoinHandle;

use crate::live::LiveIngest;

/// Starts following the control stream: returns once the tail's starting point is fixed (an
/// entry appended after this returns is obeyed), with the task that runs until `shutdown`.
pub async fn follow_stream_control(
    bus: Arc<dyn JobBus>,
    live: LiveIngest,
    shutdown: Shutdown,
) -> JoinHandle<()> {
    let mut tail = Tail::new(bus, STREAM_CONTROL, TailFrom::End, TailOptions::default());
    tokio::select! {
        _ = tail.start() => {}
        () = shutdown.triggered() => return tokio::spawn(async {}),
    }
    tokio::spawn(async move {
        loop {
            let message = tokio::select! {
                message = tail.next() => message,
                () = shutdown.triggered() => return,
            };
            let control: StreamControl = match serde_json::from_slice(&message.payload) {
                Ok(control) => control,
                Err(error) => {
                    tracing::warn!(%error, id = %message.id, "ignoring a malformed stream-control entry");
                    continue;
                }
            };
            live.auth.forget_stream(&control.stream_id);
            let stopped = live.sessions.stop(&control.stream_id);
            tracing::info!(
                stream_id = control.stream_id,
                action = ?control.action,
                stopped,
                "stream control"
            );
        }
    })
}
