//! berth's CRI services: `runtime.v1.RuntimeService` and `runtime.v1.ImageService`.
//!
//! Every RPC passes through [`instrument`](crate::instrument): request validation, a tracing
//! span with the RPC name and the IDs involved, the duration, and the single conversion of
//! [`ServiceError`] into a gRPC status. Each built RPC lives in a file of its own under
//! `runtime/` or `image/`; RPCs not built yet answer `Unimplemented` naming the RPC.
//!
//! `unsafe` is denied crate-wide except in `container::idmap` (three mount syscalls libc does
//! not wrap), documented at its top.

#![deny(unsafe_code)]

mod authority;
mod cgroup;
mod clock;
mod container;
mod cpu_rate;
mod daemon;
mod error;
mod filter;
mod fsusage;
mod handlers;
mod host;
mod ids;
mod image;
mod instrument;
mod message_limit;
mod pod;
mod request;
mod runtime;
mod validate;

pub use authority::AnyAuthority;
pub use cgroup::{CgroupDriver, CgroupMode, SelectedCgroupDriver};
pub use daemon::Daemon;
pub use error::ServiceError;
pub use handlers::{Handlers, RuntimeHandler};
pub use image::CriImageService;
pub use runtime::CriRuntimeService;

use std::sync::Arc;

use cri_api::{ImageServiceServer, RuntimeServiceServer};

pub use host::{Core, LinuxHost};
pub use message_limit::{oversize_status, MAX_MESSAGE_SIZE};

/// Both CRI services over one shared [`Daemon`], ready to add to a tonic router.
pub fn services(
    daemon: Arc<Daemon>,
) -> (
    RuntimeServiceServer<CriRuntimeService>,
    ImageServiceServer<CriImageService>,
) {
    let runtime = RuntimeServiceServer::new(CriRuntimeService::new(daemon.clone()))
        .max_decoding_message_size(MAX_MESSAGE_SIZE)
        .max_encoding_message_size(MAX_MESSAGE_SIZE);
    let image = ImageServiceServer::new(CriImageService::new(daemon))
        .max_decoding_message_size(MAX_MESSAGE_SIZE)
        .max_encoding_message_size(MAX_MESSAGE_SIZE);
    (runtime, image)
}
