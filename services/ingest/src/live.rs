//! What RTMP and SRT publishes share: stream paths, auth, and handing the bytes to a
//! segmenter.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use livefarm_publish::{Chunk, ContainerFormat, KeyframeMark, PublishStart, SegmenterSink};
use livefarm_runtime::Shutdown;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::auth::{redact, AuthorizedStream, PublishRequest, PublisherAuth};
use crate::error::IngestError;

/// Chunks in flight between a connection and its segmenter; a full queue slows the reader.
const QUEUE: usize = 256;

/// Splits a publish path (`live/{key}`, `live/{manifestID}/{key}`, also without `live/`)
/// into the manifest id and the stream key, as go-livepeer does.
pub fn parse_stream_path(path: &str) -> Result<(Option<String>, String), IngestError> {
    let bad = |reason: &str| IngestError::BadPath {
        path: redact(path),
        reason: reason.to_string(),
    };
    let trimmed = path.trim_start_matches([' ', '/']);
    let trimmed = trimmed.strip_prefix("stream/").unwrap_or(trimmed);
    let trimmed = trimmed.strip_prefix("live/").unwrap_or(trimmed);
    // A query string (`?token=...`) is not part of the key.
    let trimmed = trimmed.split('?').next().unwrap_or_default();
    let trimmed = trimmed.trim_end_matches('/');
    let mut parts = trimmed.split('/');
    let first = parts.next().unwrap_or_default();
    let second = parts.next();
    if parts.next().is_some() {
        return Err(bad("expected live/{key} or live/{manifestID}/{key}"));
    }
    match second {
        None if !first.is_empty() => Ok((None, first.to_string())),
        Some(key) if !first.is_empty() && !key.is_empty() => {
            Ok((Some(first.to_string()), key.to_string()))
        }
        _ => Err(bad("no stream key")),
    }
}

/// The resource an SRT `streamid` names: `#!::r=live/KEY,m=publish` (SRT access control
/// syntax), `publish:live/KEY` (MediaMTX), or a plain path or key. `Err` when the stream id
/// asks for something other than publishing.
pub fn parse_srt_stream_id(stream_id: &str) -> Result<String, IngestError> {
    let bad = |reason: &str| IngestError::BadPath {
        path: redact(stream_id),
        reason: reason.to_string(),
    };
    if let Some(fields) = stream_id.strip_prefix("#!::") {
        let mut resource = None;
        for field in fields.split(',') {
            let (name, value) = field.split_once('=').unwrap_or((field, ""));
            match name {
                "r" => resource = Some(value.to_string()),
                "m" if value != "publish" => return Err(bad("only m=publish is served")),
                _ => {}
            }
        }
        return resource.ok_or_else(|| bad("no r= resource"));
    }
    if let Some(rest) = stream_id.strip_prefix("publish:") {
        return Ok(rest.to_string());
    }
    if stream_id.starts_with("read:") {
        return Err(bad("only publishing is served"));
    }
    Ok(stream_id.to_string())
}

/// Shared by every live listener.
#[derive(Clone)]
pub struct LiveIngest {
    pub auth: Arc<dyn PublisherAuth>,
    pub sink: Arc<dyn SegmenterSink>,
    /// The publishes in progress, by stream, so the control plane can end them.
    pub sessions: LiveSessions,
}

/// Stream id -> (registration id, the publish's stop trigger) of each live publish.
type SessionMap = HashMap<String, Vec<(u64, Shutdown)>>;

/// The live publishes of one ingest process, by stream id: what a `livefarm:stream-control`
/// order ends.
#[derive(Clone, Default)]
pub struct LiveSessions {
    inner: Arc<Mutex<SessionMap>>,
    next: Arc<AtomicU64>,
}

impl LiveSessions {
    fn register(&self, stream_id: &str) -> Registration {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let stop = Shutdown::new();
        self.lock()
            .entry(stream_id.to_owned())
            .or_default()
            .push((id, stop.clone()));
        Registration {
            sessions: self.clone(),
            stream_id: stream_id.to_owned(),
            id,
            stop,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, SessionMap> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Ends every publish of `stream_id` (its connection is closed, the segmenter cuts the
    /// last segment); returns how many there were.
    pub fn stop(&self, stream_id: &str) -> usize {
        let sessions = self.lock().get(stream_id).cloned().unwrap_or_default();
        for (_, stop) in &sessions {
            stop.trigger();
        }
        sessions.len()
    }

    /// How many publishes of `stream_id` are live.
    pub fn count(&self, stream_id: &str) -> usize {
        self.lock().get(stream_id).map_or(0, Vec::len)
    }
}

/// A publish's entry in [`LiveSessions`], removed when the publish ends.
struct Registration {
    sessions: LiveSessions,
    stream_id: String,
    id: u64,
    stop: Shutdown,
}

impl Drop for Registration {
    fn drop(&mut self) {
        let mut map = self.sessions.lock();
        if let Some(list) = map.get_mut(&self.stream_id) {
            list.retain(|(id, _)| *id != self.id);
            if list.is_empty() {
                map.remove(&self.stream_id);
            }
        }
    }
}

/// A live publish that was let in: its bytes go to the segmenter until it is finished.
pub struct Publish {
    pub stream_id: String,
    pub session_id: String,
    protocol: &'static str,
    tx: Option<mpsc::Sender<Chunk>>,
    task: JoinHandle<()>,
    registration: Registration,
    /// Ingest's span for the media since the last keyframe: the root of the trace of the
    /// segment that starts there. Replacing it (next keyframe) or dropping it ends it.
    gop: Option<tracing::Span>,
}

/// Completes when `stop` fires; never when there is none.
pub(crate) async fn stopped(stop: Option<Shutdown>) {
    match stop {
        Some(stop) => stop.triggered().await,
        None => std::future::pending().await,
    }
}

impl Publish {
    /// Fires when the control plane ends this publish (terminate, suspend, delete).
    pub(crate) fn stop_signal(&self) -> Shutdown {
        self.registration.stop.clone()
    }

    /// Queues bytes for the segmenter; `Err` when the segmenter gave up on this publish.
    pub async fn send(&mut self, bytes: Bytes) -> Result<(), IngestError> {
        let tx = self.tx.as_ref().ok_or(IngestError::SinkClosed)?;
        crate::metrics::received(self.protocol, bytes.len());
        tx.send(Chunk::Data(bytes))
            .await
            .map_err(|_| IngestError::SinkClosed)
    }

    /// A video keyframe with decode timestamp `timestamp_ms` comes next: starts the span (and
    /// trace) of the media from it on and tells the segmenter, so the segment that starts at
    /// this keyframe continues the trace.
    pub async fn keyframe(&mut self, timestamp_ms: u32) -> Result<(), IngestError> {
        let span = tracing::info_span!(
            parent: None,
            "ingest_gop",
            stream_id = %self.stream_id,
            protocol = self.protocol,
            timestamp_ms
        );
        let trace = livefarm_telemetry::inject_context(&span);
        self.gop = Some(span);
        if trace.is_empty() {
            // no tracing layer: nothing to carry
            return Ok(());
        }
        let tx = self.tx.as_ref().ok_or(IngestError::SinkClosed)?;
        let mark = KeyframeMark {
            timestamp_ms: u64::from(timestamp_ms),
            trace,
        };
        tx.send(Chunk::Keyframe(mark))
            .await
            .map_err(|_| IngestError::SinkClosed)
    }

    /// Ends the publish (the segmenter cuts the last segment) and waits for the segmenter.
    pub async fn finish(mut self) {
        self.tx = None;
        self.gop = None;
        if let Err(error) = (&mut self.task).await {
            tracing::warn!(%error, "publish task ended abnormally");
        }
    }
}

impl LiveIngest {
    /// Live ingest with `auth` and `sink` and no publish in progress.
    pub fn new(auth: Arc<dyn PublisherAuth>, sink: Arc<dyn SegmenterSink>) -> Self {
        LiveIngest {
            auth,
            sink,
            sessions: LiveSessions::default(),
        }
    }

    /// Authorizes `request` and starts a segmenter session for it. A refusal is logged here
    /// (with the key redacted) and returned.
    pub async fn begin(
        &self,
        request: PublishRequest,
        format: ContainerFormat,
    ) -> Result<Publish, IngestError> {
        let stream = match self.auth.authorize(&request).await {
            Ok(stream) => stream,
            Err(error) => {
                tracing::warn!(
                    protocol = request.protocol,
                    key = %redact(&request.stream_key),
                    %error,
                    "publish refused"
                );
                let error = IngestError::from(error);
                crate::metrics::publish_refused(request.protocol, &error);
                return Err(error);
            }
        };
        let AuthorizedStream {
            stream_id,
            profiles,
            record,
        } = stream;
        let session_id = random_session_id();
        let start = PublishStart {
            stream_id: stream_id.clone(),
            session_id: session_id.clone(),
            format,
            profiles,
            record,
            protocol: request.protocol.to_string(),
        };
        let registration = self.sessions.register(&stream_id);
        let (tx, rx) = mpsc::channel(QUEUE);
        let sink = Arc::clone(&self.sink);
        let (id, session) = (stream_id.clone(), session_id.clone());
        let protocol = request.protocol;
        tracing::info!(protocol, stream_id, session_id, "publish started");
        crate::metrics::publish_started(protocol);
        let task = tokio::spawn(async move {
            let outcome = sink.publish(start, rx).await;
            crate::metrics::publish_ended(protocol, outcome.is_ok());
            match outcome {
                Ok(summary) => tracing::info!(
                    protocol,
                    stream_id = id,
                    session_id = session,
                    segments = summary.segments,
                    duration_s = summary.duration_seconds,
                    "publish ended"
                ),
                Err(error) => tracing::warn!(
                    protocol,
                    stream_id = id,
                    session_id = session,
                    %error,
                    "publish failed"
                ),
            }
        });
        Ok(Publish {
            stream_id,
            session_id,
            protocol,
            tx: Some(tx),
            task,
            registration,
            gop: None,
        })
    }
}

fn random_session_id() -> String {
    let mut bytes = [0u8; 8];
    // A clash only merges two sessions' log lines; fall back to the clock.
    if getrandom::fill(&mut bytes).is_err() {
        bytes = livefarm_jobs::now_ms().to_be_bytes();
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_paths() {
        let key = |p: &str| parse_stream_path(p).ok();
        assert_eq!(key("live/abc"), Some((None, "abc".into())));
        assert_eq!(
            key("/live/man/abc"),
            Some((Some("man".into()), "abc".into()))
        );
        assert_eq!(key("abc"), Some((None, "abc".into())));
        assert_eq!(key("live/abc?token=1"), Some((None, "abc".into())));
        assert_eq!(key("live/"), None);
        assert_eq!(key("live/a/b/c"), None);
        assert_eq!(key("live/a/"), Some((None, "a".into())));
    }

    #[test]
    fn srt_stream_ids() {
        let id = |s: &str| parse_srt_stream_id(s).ok();
        assert_eq!(id("#!::r=live/KEY,m=publish"), Some("live/KEY".into()));
        assert_eq!(id("#!::m=publish,r=KEY"), Some("KEY".into()));
        assert_eq!(id("#!::r=live/KEY,m=request"), None);
        assert_eq!(id("publish:live/KEY"), Some("live/KEY".into()));
        assert_eq!(id("read:live/KEY"), None);
        assert_eq!(id("KEY"), Some("KEY".into()));
    }
}
