//! Compiles the CRI proto with `protoc` (Debian's `protobuf-compiler`, installed by
//! `scripts/install-deps.sh`; set `PROTOC` to use another binary).

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let proto_dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../proto");
    let proto = format!("{proto_dir}/runtime/v1/api.proto");
    println!("cargo:rerun-if-changed={proto}");
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        // Undecodable requests are InvalidArgument, not prost's Internal (src/codec.rs).
        .codec_path("crate::codec::CriCodec")
        .compile_protos(&[proto.as_str()], &[proto_dir])?;
    Ok(())
}
