//! Compiles Livefarm's .proto files (needs `protoc`: apt package protobuf-compiler): its own
//! services, and go-livepeer's `net` package (the orchestrator protocol, wire-compatible).

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../proto");
    let protos = [
        root.join("livefarm/transcoder/v1/transcoder.proto"),
        root.join("livefarm/segmenter/v1/segmenter.proto"),
        root.join("livefarm/chain/v1/chain.proto"),
        root.join("livepeer/net/lp_rpc.proto"),
        root.join("livepeer/net/redeemer.proto"),
    ];
    for proto in &protos {
        println!("cargo:rerun-if-changed={}", proto.display());
    }
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        // live media chunks stay `Bytes`, so they are never copied between ingest and segmenter
        .bytes(".livefarm.segmenter.v1.PublishChunk.data")
        .compile_protos(&protos, &[root])?;
    Ok(())
}
