//! Compiles the admin proto with `protoc` (as crates/cri-api does; set `PROTOC` to use
//! another binary).

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let proto_dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../proto");
    let proto = format!("{proto_dir}/berth/admin/v1/admin.proto");
    println!("cargo:rerun-if-changed={proto}");
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        // The CRI services' codec: an undecodable message is InvalidArgument.
        .codec_path("cri_api::codec::CriCodec")
        .compile_protos(&[proto.as_str()], &[proto_dir])?;
    Ok(())
}
