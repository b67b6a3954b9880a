//! Where a live publish's container bytes go: a segmenter, over gRPC ([`GrpcSink`]) or in the
//! same process (the segmenter crate implements [`SegmenterSink`] for its core).

use bytes::Bytes;
use futures_util::StreamExt;
use livefarm_proto::segmenter::v1::segmenter_client::SegmenterClient;
use livefarm_proto::segmenter::v1::{publish_chunk, PublishChunk, PublishStart, PublishSummary};
use tokio::sync::mpsc;
use tonic::transport::Channel;

pub use crate::auth::BoxFuture;
use crate::error::IngestError;

/// A segmenter that takes one publish session: `start` first, then the bytes in `chunks` until
/// the sender is dropped (the publisher left). Resolves when the session has been segmented.
pub trait SegmenterSink: Send + Sync {
    fn publish(
        &self,
        start: PublishStart,
        chunks: mpsc::Receiver<Bytes>,
    ) -> BoxFuture<'_, Result<PublishSummary, IngestError>>;
}

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
        chunks: mpsc::Receiver<Bytes>,
    ) -> BoxFuture<'_, Result<PublishSummary, IngestError>> {
        let mut client = self.client.clone();
        Box::pin(async move {
            let first = PublishChunk {
                kind: Some(publish_chunk::Kind::Start(start)),
            };
            let data = futures_util::stream::unfold(chunks, |mut chunks| async move {
                let bytes = chunks.recv().await?;
                let chunk = PublishChunk {
                    kind: Some(publish_chunk::Kind::Data(bytes)),
                };
                Some((chunk, chunks))
            });
            let requests = futures_util::stream::iter([first]).chain(data);
            client
                .publish(requests)
                .await
                .map(tonic::Response::into_inner)
                .map_err(|status| IngestError::Segmenter(status.message().to_string()))
        })
    }
}
