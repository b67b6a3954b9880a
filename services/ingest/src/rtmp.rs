//! The RTMP listener: `rtmp://host:1935/live/{streamKey}` and `/live/{manifestID}/{streamKey}`.
//! Each publish's audio and video messages become an FLV byte stream for the segmenter.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Duration;

use livefarm_publish::ContainerFormat;
use livefarm_runtime::Shutdown;
use rml_rtmp::handshake::{Handshake, HandshakeProcessResult, PeerType};
use rml_rtmp::sessions::{
    ServerSession, ServerSessionConfig, ServerSessionEvent, ServerSessionResult,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::auth::{redact, PublishRequest};
use crate::error::{AuthError, IngestError};
use crate::flv;
use crate::live::{parse_stream_path, stopped, LiveIngest, Publish};

/// Accepts RTMP connections until `shutdown` fires; each connection runs on its own task.
pub async fn serve(
    listener: TcpListener,
    live: LiveIngest,
    idle_timeout: Duration,
    shutdown: Shutdown,
) {
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = shutdown.triggered() => return,
        };
        let (socket, peer) = match accepted {
            Ok(pair) => pair,
            Err(error) => {
                tracing::warn!(%error, "rtmp accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let live = live.clone();
        let stop = shutdown.clone();
        tokio::spawn(async move {
            let mut connection = Connection {
                socket,
                live,
                idle_timeout,
                publish: None,
            };
            let outcome = tokio::select! {
                outcome = connection.run() => outcome,
                () = stop.triggered() => Ok(()),
            };
            if let Err(error) = outcome {
                tracing::info!(%peer, %error, "rtmp connection closed");
            }
            if let Some(publish) = connection.publish.take() {
                publish.finish().await;
            }
        });
    }
}

struct Connection {
    socket: TcpStream,
    live: LiveIngest,
    idle_timeout: Duration,
    publish: Option<Publish>,
}

fn rtmp_error(error: impl std::fmt::Display) -> IngestError {
    IngestError::Rtmp(error.to_string())
}

impl Connection {
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, IngestError> {
        let stop = self.publish.as_ref().map(Publish::stop_signal);
        let stream_id = self.publish.as_ref().map(|p| p.stream_id.clone());
        let read = tokio::time::timeout(self.idle_timeout, self.socket.read(buf));
        tokio::select! {
            read = read => match read {
                Ok(read) => read.map_err(|source| IngestError::Io {
                    what: "rtmp read",
                    source,
                }),
                Err(_) => Err(IngestError::Rtmp("publisher idle, closing".to_string())),
            },
            () = stopped(stop) => Err(IngestError::Stopped(stream_id.unwrap_or_default())),
        }
    }

    async fn write(&mut self, bytes: &[u8]) -> Result<(), IngestError> {
        self.socket
            .write_all(bytes)
            .await
            .map_err(|source| IngestError::Io {
                what: "rtmp write",
                source,
            })
    }

    async fn run(&mut self) -> Result<(), IngestError> {
        let mut buf = vec![0u8; 64 * 1024];
        let mut handshake = Handshake::new(PeerType::Server);
        let remaining = loop {
            let n = self.read(&mut buf).await?;
            if n == 0 {
                return Ok(());
            }
            match handshake.process_bytes(&buf[..n]).map_err(rtmp_error)? {
                HandshakeProcessResult::InProgress { response_bytes } => {
                    self.write(&response_bytes).await?;
                }
                HandshakeProcessResult::Completed {
                    response_bytes,
                    remaining_bytes,
                } => {
                    self.write(&response_bytes).await?;
                    break remaining_bytes;
                }
            }
        };
        let (mut session, results) =
            ServerSession::new(ServerSessionConfig::new()).map_err(rtmp_error)?;
        let mut queue: VecDeque<ServerSessionResult> = results.into();
        if !remaining.is_empty() {
            queue.extend(session.handle_input(&remaining).map_err(rtmp_error)?);
        }
        loop {
            while let Some(result) = queue.pop_front() {
                if !self.apply(&mut session, result, &mut queue).await? {
                    return Ok(());
                }
            }
            let n = self.read(&mut buf).await?;
            if n == 0 {
                return Ok(());
            }
            queue.extend(session.handle_input(&buf[..n]).map_err(rtmp_error)?);
        }
    }

    /// Acts on one session result; `false` closes the connection.
    async fn apply(
        &mut self,
        session: &mut ServerSession,
        result: ServerSessionResult,
        queue: &mut VecDeque<ServerSessionResult>,
    ) -> Result<bool, IngestError> {
        let event = match result {
            ServerSessionResult::OutboundResponse(packet) => {
                self.write(&packet.bytes).await?;
                return Ok(true);
            }
            ServerSessionResult::UnhandleableMessageReceived(_) => return Ok(true),
            ServerSessionResult::RaisedEvent(event) => event,
        };
        match event {
            ServerSessionEvent::ConnectionRequested { request_id, .. } => {
                queue.extend(session.accept_request(request_id).map_err(rtmp_error)?);
            }
            ServerSessionEvent::PublishStreamRequested {
                request_id,
                app_name,
                stream_key,
                ..
            } => {
                if self.publish.is_some() {
                    return Err(IngestError::Rtmp(
                        "a second publish on one connection".to_string(),
                    ));
                }
                match self.begin(&app_name, &stream_key).await {
                    Ok(mut publish) => {
                        queue.extend(session.accept_request(request_id).map_err(rtmp_error)?);
                        publish.send(flv::header()).await?;
                        self.publish = Some(publish);
                    }
                    Err(error) => {
                        // a publisher may retry when the authority could not be asked
                        let (code, description) = match &error {
                            IngestError::Auth(AuthError::Unavailable(_)) => {
                                ("NetStream.Publish.Failed", "auth unavailable, try again")
                            }
                            _ => ("NetStream.Publish.BadName", "refused"),
                        };
                        let refusal = session
                            .reject_request(request_id, code, description)
                            .map_err(rtmp_error)?;
                        for result in refusal {
                            if let ServerSessionResult::OutboundResponse(packet) = result {
                                self.write(&packet.bytes).await?;
                            }
                        }
                        return Err(error);
                    }
                }
            }
            ServerSessionEvent::VideoDataReceived {
                data, timestamp, ..
            } => self.forward(flv::TAG_VIDEO, timestamp.value, &data).await?,
            ServerSessionEvent::AudioDataReceived {
                data, timestamp, ..
            } => self.forward(flv::TAG_AUDIO, timestamp.value, &data).await?,
            ServerSessionEvent::PublishStreamFinished { .. } => {
                if let Some(publish) = self.publish.take() {
                    publish.finish().await;
                }
            }
            ServerSessionEvent::PlayStreamRequested { request_id, .. } => {
                // Playback is HLS; refuse RTMP play so the client does not hang.
                let refusal = session
                    .reject_request(request_id, "NetStream.Play.Failed", "play over hls")
                    .map_err(rtmp_error)?;
                queue.extend(refusal);
            }
            _ => {}
        }
        Ok(true)
    }

    async fn begin(&self, app: &str, key: &str) -> Result<Publish, IngestError> {
        let path = format!("{app}/{key}");
        let (manifest_id, stream_key) = parse_stream_path(&path).inspect_err(|error| {
            tracing::warn!(protocol = "rtmp", path = %redact(&path), %error, "publish refused");
            crate::metrics::publish_refused("rtmp", error);
        })?;
        let local = self
            .socket
            .local_addr()
            .map_or_else(|_| "localhost".to_string(), |a| a.to_string());
        let request = PublishRequest {
            protocol: "rtmp",
            url: format!("rtmp://{local}/{path}"),
            manifest_id,
            stream_key,
        };
        self.live.begin(request, ContainerFormat::Flv).await
    }

    async fn forward(&mut self, kind: u8, timestamp: u32, data: &[u8]) -> Result<(), IngestError> {
        // Media before a publish was accepted has nowhere to go.
        let Some(publish) = self.publish.as_mut() else {
            return Ok(());
        };
        if kind == flv::TAG_VIDEO && flv::is_keyframe(data) {
            publish.keyframe(timestamp).await?;
        }
        publish.send(flv::tag(kind, timestamp, data)).await
    }
}

/// Binds the RTMP listener.
pub async fn bind(addr: SocketAddr) -> Result<TcpListener, IngestError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| IngestError::Io {
            what: "binding the rtmp listener",
            source,
        })
}
