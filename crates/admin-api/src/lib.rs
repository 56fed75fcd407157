//! berth's own administration API (`berth.admin.v1`), generated from
//! `proto/berth/admin/v1/admin.proto` by prost and tonic: image import and export, and
//! `Info`. berthd serves it on its CRI socket; `berthctl` is its client.

#![deny(unsafe_code)]

/// Messages and the service of package `berth.admin.v1`.
pub mod v1 {
    #![allow(clippy::all, missing_docs)]
    tonic::include_proto!("berth.admin.v1");
}

pub use v1::admin_client::AdminClient;
pub use v1::admin_server::{Admin, AdminServer};

/// Largest `data` chunk a client should send or the server sends (the gRPC messages stay
/// far below berthd's 16 MiB message limit).
pub const CHUNK_SIZE: usize = 1 << 20;
