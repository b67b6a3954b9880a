//! `livefarm.segmenter.v1.Segmenter`: ingest's publish stream over gRPC. The protobuf messages
//! are converted to and from `livefarm-publish`'s domain types here and nowhere else.

use std::sync::Arc;

use futures_util::StreamExt;
use livefarm_profiles::Profile;
use livefarm_proto::segmenter::v1 as pb;
use livefarm_proto::segmenter::v1::segmenter_server::{Segmenter, SegmenterServer};
use livefarm_publish::{Chunk, ContainerFormat, KeyframeMark, PublishStart, PublishSummary};
use tokio::sync::mpsc;
use tonic::{Request, Response, Status, Streaming};

use crate::error::SegmenterError;
use crate::live::LiveSegmenter;

pub(crate) struct SegmenterService {
    core: Arc<LiveSegmenter>,
}

impl SegmenterService {
    pub(crate) fn server(core: Arc<LiveSegmenter>) -> SegmenterServer<Self> {
        SegmenterServer::new(Self { core })
    }
}

#[tonic::async_trait]
impl Segmenter for SegmenterService {
    async fn publish(
        &self,
        request: Request<Streaming<pb::PublishChunk>>,
    ) -> Result<Response<pb::PublishSummary>, Status> {
        let mut stream = request.into_inner();
        let start = match stream.next().await {
            Some(Ok(pb::PublishChunk {
                kind: Some(pb::publish_chunk::Kind::Start(start)),
            })) => start_from_proto(start)?,
            Some(Err(status)) => return Err(status),
            _ => {
                return Err(SegmenterError::BadStart(
                    "the first message must carry start".to_string(),
                )
                .into())
            }
        };
        let (tx, rx) = mpsc::channel(256);
        let stream_id = start.stream_id.clone();
        // Forward the bytes; a broken client stream ends the publish like a clean close.
        tokio::spawn(async move {
            while let Some(message) = stream.next().await {
                let chunk = match message {
                    Ok(pb::PublishChunk {
                        kind: Some(pb::publish_chunk::Kind::Data(data)),
                    }) => Chunk::Data(data),
                    Ok(pb::PublishChunk {
                        kind: Some(pb::publish_chunk::Kind::Keyframe(mark)),
                    }) => Chunk::Keyframe(KeyframeMark {
                        timestamp_ms: mark.timestamp_ms,
                        trace: mark.trace,
                    }),
                    Ok(_) => continue,
                    Err(status) => {
                        tracing::info!(stream_id, %status, "publish stream broke off");
                        break;
                    }
                };
                if tx.send(chunk).await.is_err() {
                    break;
                }
            }
        });
        let summary = self.core.run_publish(start, rx).await?;
        Ok(Response::new(summary_to_proto(summary)))
    }
}

fn start_from_proto(start: pb::PublishStart) -> Result<PublishStart, SegmenterError> {
    let profiles: Vec<Profile> = serde_json::from_str(&start.profiles_json)
        .map_err(|e| SegmenterError::BadStart(format!("profiles_json: {e}")))?;
    let format = match pb::ContainerFormat::try_from(start.format) {
        Ok(pb::ContainerFormat::Flv) => ContainerFormat::Flv,
        Ok(pb::ContainerFormat::Mpegts) => ContainerFormat::MpegTs,
        _ => ContainerFormat::Probe,
    };
    Ok(PublishStart {
        stream_id: start.stream_id,
        session_id: start.publish_session_id,
        format,
        profiles,
        record: start.record,
        protocol: start.protocol,
    })
}

fn summary_to_proto(summary: PublishSummary) -> pb::PublishSummary {
    pb::PublishSummary {
        segments: summary.segments,
        first_seq: summary.first_seq,
        next_seq: summary.next_seq,
        duration_seconds: summary.duration_seconds,
        failed_segments: summary.failed_segments,
        too_long_segments: summary.too_long_segments,
    }
}
