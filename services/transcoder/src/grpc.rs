//! The gRPC port: `grpc.health.v1` and `livefarm.transcoder.v1.TranscoderAdmin`.

use std::sync::Arc;

use livefarm_proto::transcoder::v1::transcoder_admin_server::{
    TranscoderAdmin, TranscoderAdminServer,
};
use livefarm_proto::transcoder::v1::{
    DrainRequest, DrainResponse, GetWorkerRequest, ListSessionsRequest, ListSessionsResponse,
    Session, WorkerInfo,
};
use tonic::{Request, Response, Status};

use crate::worker::Worker;

/// The admin service over a running worker.
pub(crate) struct AdminService {
    worker: Arc<Worker>,
}

impl AdminService {
    pub(crate) fn server(worker: Arc<Worker>) -> TranscoderAdminServer<Self> {
        TranscoderAdminServer::new(Self { worker })
    }
}

#[tonic::async_trait]
impl TranscoderAdmin for AdminService {
    async fn list_sessions(
        &self,
        _request: Request<ListSessionsRequest>,
    ) -> Result<Response<ListSessionsResponse>, Status> {
        let sessions = self
            .worker
            .sessions()
            .into_iter()
            .map(|s| Session {
                stream_id: s.stream_id,
                segments: s.segments,
                last_seq: s.last_seq,
                in_flight_seq: s.in_flight_seq,
                gpu: s.gpu,
                started_at_ms: s.started_at_ms,
            })
            .collect();
        Ok(Response::new(ListSessionsResponse { sessions }))
    }

    async fn drain(
        &self,
        _request: Request<DrainRequest>,
    ) -> Result<Response<DrainResponse>, Status> {
        let sessions = self.worker.load();
        let started = self.worker.start_drain();
        Ok(Response::new(DrainResponse { sessions, started }))
    }

    async fn get_worker(
        &self,
        _request: Request<GetWorkerRequest>,
    ) -> Result<Response<WorkerInfo>, Status> {
        let worker = &self.worker;
        Ok(Response::new(WorkerInfo {
            worker_id: worker.id.clone(),
            capacity: worker.capacity,
            load: worker.load(),
            accelerator: worker.accelerator.to_owned(),
            gpu_models: worker.gpu_models.clone(),
            draining: worker.is_draining(),
            started_at_ms: worker.started_at_ms,
        }))
    }
}
