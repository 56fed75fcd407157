//! The Kubernetes Container Runtime Interface (`runtime.v1`), generated from
//! `proto/runtime/v1/api.proto` by prost and tonic.
//!
//! Both services are exposed with their server traits (implemented by `berth-server`) and
//! their clients (used by the integration tests and tools).

#![deny(unsafe_code)]

pub mod codec;

/// Messages and services of package `runtime.v1`.
pub mod v1 {
    #![allow(clippy::all, missing_docs)]
    tonic::include_proto!("runtime.v1");
}

pub use v1::image_service_client::ImageServiceClient;
pub use v1::image_service_server::{ImageService, ImageServiceServer};
pub use v1::runtime_service_client::RuntimeServiceClient;
pub use v1::runtime_service_server::{RuntimeService, RuntimeServiceServer};
