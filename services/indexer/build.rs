//! Compiles the indexer's gRPC API (`livefarm.chain.v1`; needs `protoc`: apt package
//! protobuf-compiler).

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("proto");
    let proto = root.join("livefarm/chain/v1/chain.proto");
    println!("cargo:rerun-if-changed={}", proto.display());
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_protos(&[proto], &[root])?;
    Ok(())
}
