//! The gRPC edge of ingest's segmenter link: [`GrpcSink`] sends a publish to a remote
//! segmenter (`livefarm.segmenter.v1.Segmenter/Publish`), converting the domain messages of
//! `livefarm-publish` to and from protobuf here and nowhere else.

use futures_util::StreamExt;
use livefarm_proto::segmenter::v1 as pb;
use livefarm_proto::segmenter::v1::segmenter_client::SegmenterClient;
use livefarm_publish::{
    BoxFuture, Chunk, ContainerFormat, PublishError, PublishStart, PublishSummary, SegmenterSink,
};
use tokio::sync::mpsc;
use tonic::transport::Channel;

use crate::error::IngestError;

/// A remote segmenter (`livefarm.segmenter.v1.Segmenter/Publish`).
#[derive(Debug, Clone)]
pub struct GrpcSink {
    client: SegmenterClient<Channel>,
}

impl GrpcSink {
    /// Connects lazily to `url` (`http://host:port`), so ingest starts before the segmenter.
    pub fn new(url: &str) -> Result<Self, IngestError> {
        let channel = Channel::from_shared(url.to_string())
            .map_err(|e| IngestError::Config(format!("segmenter_url {url:?}: {e}")))?
            .connect_lazy();
        Ok(GrpcSink {
            client: SegmenterClient::new(channel),
        })
    }
}

impl SegmenterSink for GrpcSink {
    fn publish(
        &self,
        start: PublishStart,
        chunks: mpsc::Receiver<Chunk>,
    ) -> BoxFuture<'_, Result<PublishSummary, PublishError>> {
        let mut client = self.client.clone();
        Box::pin(async move {
            let first = pb::PublishChunk {
                kind: Some(pb::publish_chunk::Kind::Start(start_to_proto(start))),
            };
            let data = futures_util::stream::unfold(chunks, |mut chunks| async move {
                let chunk = chunk_to_proto(chunks.recv().await?);
                Some((chunk, chunks))
            });
            let requests = futures_util::stream::iter([first]).chain(data);
            let summary = client
                .publish(requests)
                .await
                .map_err(status_to_error)?
                .into_inner();
            Ok(PublishSummary {
                segments: summary.segments,
                first_seq: summary.first_seq,
                next_seq: summary.next_seq,
                duration_seconds: summary.duration_seconds,
                failed_segments: summary.failed_segments,
                too_long_segments: summary.too_long_segments,
            })
        })
    }
}

fn chunk_to_proto(chunk: Chunk) -> pb::PublishChunk {
    let kind = match chunk {
        Chunk::Data(bytes) => pb::publish_chunk::Kind::Data(bytes),
        Chunk::Keyframe(mark) => pb::publish_chunk::Kind::Keyframe(pb::KeyframeMark {
            timestamp_ms: mark.timestamp_ms,
            trace: mark.trace,
        }),
    };
    pb::PublishChunk { kind: Some(kind) }
}

fn start_to_proto(start: PublishStart) -> pb::PublishStart {
    let format = match start.format {
        ContainerFormat::Probe => pb::ContainerFormat::Unspecified,
        ContainerFormat::Flv => pb::ContainerFormat::Flv,
        ContainerFormat::MpegTs => pb::ContainerFormat::Mpegts,
    };
    // The wire carries the ladder in the JSON profile format that jobs use.
    pb::PublishStart {
        stream_id: start.stream_id,
        publish_session_id: start.session_id,
        format: format as i32,
        profiles_json: livefarm_profiles::to_json_profiles(&start.profiles),
        record: start.record,
        protocol: start.protocol,
    }
}

/// The segmenter's answer, by the codes its server maps its errors to.
fn status_to_error(status: tonic::Status) -> PublishError {
    let message = status.message().to_string();
    match status.code() {
        tonic::Code::InvalidArgument => PublishError::BadStart(message),
        tonic::Code::FailedPrecondition => PublishError::Busy(message),
        tonic::Code::Unavailable => PublishError::Unavailable(message),
        _ => PublishError::Failed(message),
    }
}
