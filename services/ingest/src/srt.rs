//! The SRT listener: MPEG-TS over SRT, the stream chosen by the caller's `streamid`
//! (`#!::r=live/KEY,m=publish`, `publish:live/KEY`, or a plain key).

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::StreamExt;
use livefarm_publish::ContainerFormat;
use livefarm_runtime::Shutdown;
use srt_tokio::access::{RejectReason, ServerRejectReason};
use srt_tokio::options::PacketSize;
use srt_tokio::{ConnectionRequest, SrtListener};

use crate::auth::{redact, PublishRequest};
use crate::error::{AuthError, IngestError};
use crate::live::{parse_srt_stream_id, parse_stream_path, LiveIngest};

/// A bound SRT listener.
pub struct SrtServer {
    listener: SrtListener,
    incoming: srt_tokio::SrtIncoming,
    local_addr: SocketAddr,
}

impl SrtServer {
    /// Binds `addr` (UDP).
    pub async fn bind(addr: SocketAddr) -> Result<Self, IngestError> {
        let io = |source| IngestError::Io {
            what: "binding the srt listener",
            source,
        };
        let socket = tokio::net::UdpSocket::bind(addr).await.map_err(io)?;
        let local_addr = socket.local_addr().map_err(io)?;
        let (listener, incoming) = SrtListener::builder()
            .socket(socket)
            // srt-tokio announces its payload size as the MSS; libsrt callers (ffmpeg) then
            // cap their messages below the usual 1316 bytes (7 TS packets) unless it is raised.
            .set(|options| options.sender.max_payload_size = PacketSize(1456))
            .bind(local_addr)
            .await
            .map_err(io)?;
        Ok(SrtServer {
            listener,
            incoming,
            local_addr,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Serves callers until `shutdown` fires; each one runs on its own task.
    pub async fn serve(mut self, live: LiveIngest, idle_timeout: Duration, shutdown: Shutdown) {
        loop {
            let request = tokio::select! {
                request = self.incoming.incoming().next() => request,
                () = shutdown.triggered() => break,
            };
            let Some(request) = request else { break };
            let live = live.clone();
            let stop = shutdown.clone();
            let local = self.local_addr;
            tokio::spawn(async move {
                tokio::select! {
                    () = handle(request, local, live, idle_timeout) => {}
                    () = stop.triggered() => {}
                }
            });
        }
        self.listener.close().await;
    }
}

async fn handle(
    request: ConnectionRequest,
    local: SocketAddr,
    live: LiveIngest,
    idle_timeout: Duration,
) {
    let peer = request.remote();
    let stream_id = request
        .stream_id()
        .map(ToString::to_string)
        .unwrap_or_default();
    let parsed = parse_srt_stream_id(&stream_id).and_then(|path| {
        let (manifest_id, stream_key) = parse_stream_path(&path)?;
        Ok((path, manifest_id, stream_key))
    });
    let (path, manifest_id, stream_key) = match parsed {
        Ok(parsed) => parsed,
        Err(error) => {
            tracing::warn!(protocol = "srt", %peer, streamid = %redact(&stream_id), %error, "publish refused");
            crate::metrics::publish_refused("srt", &error);
            reject(request, ServerRejectReason::BadRequest).await;
            return;
        }
    };
    let publish_request = PublishRequest {
        protocol: "srt",
        url: format!("srt://{local}?streamid={path}"),
        manifest_id,
        stream_key,
    };
    let mut publish = match live.begin(publish_request, ContainerFormat::MpegTs).await {
        Ok(publish) => publish,
        Err(IngestError::Auth(AuthError::Unavailable(_))) => {
            // retryable: the authority (the store, the webhook) could not be asked
            reject(request, ServerRejectReason::Down).await;
            return;
        }
        Err(IngestError::Auth(_)) => {
            reject(request, ServerRejectReason::Forbidden).await;
            return;
        }
        Err(error) => {
            tracing::warn!(protocol = "srt", %peer, %error, "publish failed to start");
            reject(request, ServerRejectReason::Overload).await;
            return;
        }
    };
    let mut socket = match request.accept(None).await {
        Ok(socket) => socket,
        Err(error) => {
            tracing::warn!(protocol = "srt", %peer, %error, "srt accept failed");
            publish.finish().await;
            return;
        }
    };
    let stop = publish.stop_signal();
    loop {
        let next = tokio::select! {
            next = tokio::time::timeout(idle_timeout, socket.next()) => next,
            () = stop.triggered() => {
                tracing::info!(protocol = "srt", %peer, stream_id = publish.stream_id, "publish stopped by the control plane");
                break;
            }
        };
        match next {
            Ok(Some(Ok((_, bytes)))) => {
                if let Err(error) = publish.send(bytes).await {
                    tracing::warn!(protocol = "srt", stream_id = publish.stream_id, %error, "closing srt publish");
                    break;
                }
            }
            Ok(Some(Err(error))) => {
                tracing::info!(protocol = "srt", %peer, %error, "srt connection closed");
                break;
            }
            Ok(None) => break,
            Err(_) => {
                tracing::info!(protocol = "srt", %peer, "publisher idle, closing");
                break;
            }
        }
    }
    publish.finish().await;
}

async fn reject(request: ConnectionRequest, reason: ServerRejectReason) {
    if let Err(error) = request.reject(RejectReason::Server(reason)).await {
        tracing::debug!(%error, "srt reject not delivered");
    }
}
