//! Compiles Livefarm's .proto files (needs `protoc`: apt package protobuf-compiler).

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../proto");
    let transcoder = root.join("livefarm/transcoder/v1/transcoder.proto");
    println!("cargo:rerun-if-changed={}", transcoder.display());
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_protos(&[transcoder], &[root])?;
    Ok(())
}
