//! `livefarm.segmenter.v1.Segmenter`: ingest's publish stream over gRPC.

use std::sync::Arc;

use futures_util::StreamExt;
use livefarm_proto::segmenter::v1::segmenter_server::{Segmenter, SegmenterServer};
use livefarm_proto::segmenter::v1::{publish_chunk, PublishChunk, PublishSummary};
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
        request: Request<Streaming<PublishChunk>>,
    ) -> Result<Response<PublishSummary>, Status> {
        let mut stream = request.into_inner();
        let start = match stream.next().await {
            Some(Ok(PublishChunk {
                kind: Some(publish_chunk::Kind::Start(start)),
            })) => start,
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
                match message {
                    Ok(PublishChunk {
                        kind: Some(publish_chunk::Kind::Data(data)),
                    }) => {
                        if tx.send(data).await.is_err() {
                            break;
                        }
                    }
                    Ok(_) => {}
                    Err(status) => {
                        tracing::info!(stream_id, %status, "publish stream broke off");
                        break;
                    }
                }
            }
        });
        let summary = self.core.run_publish(start, rx).await?;
        Ok(Response::new(summary))
    }
}
