//! Generated gRPC code (messages, clients, servers) of Livefarm's own services, of
//! go-livepeer's `net` package (the orchestrator protocol Livefarm speaks to Livepeer
//! broadcasters), the `grpc.health.v1` service every one of them serves, and
//! [`ServiceError`], the one mapping from service errors to gRPC status codes. With the `pm`
//! feature, `convert` maps the `net` types to and from Livefarm's payment and profile types.

#[cfg(feature = "pm")]
pub mod convert;
mod error;

pub use error::ServiceError;
/// `grpc.health.v1`: served on every service's gRPC port.
pub use tonic_health as health;

/// `livefarm.transcoder.v1`: the transcoder worker's admin service.
pub mod transcoder {
    /// Version 1.
    pub mod v1 {
        #![allow(missing_docs, clippy::all)]
        tonic::include_proto!("livefarm.transcoder.v1");
    }
}

/// `livefarm.segmenter.v1`: ingest streams live container bytes to the segmenter.
pub mod segmenter {
    /// Version 1.
    pub mod v1 {
        #![allow(missing_docs, clippy::all)]
        tonic::include_proto!("livefarm.segmenter.v1");
    }
}

/// `livefarm.chain.v1`: the chain indexer's API (rounds, senders, orchestrators, new blocks).
pub mod chain {
    /// Version 1.
    pub mod v1 {
        #![allow(missing_docs, clippy::all)]
        tonic::include_proto!("livefarm.chain.v1");
    }
}

/// go-livepeer's protocol, compiled from `proto/livepeer/`.
pub mod livepeer {
    /// `package net`: `net.Orchestrator`, `net.Transcoder`, `net.TicketRedeemer` and their
    /// messages, wire-compatible with go-livepeer (field numbers as `net/lp_rpc.proto`).
    pub mod net {
        #![allow(missing_docs, clippy::all)]
        tonic::include_proto!("net");
    }
}
