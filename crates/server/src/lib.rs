//! berth's CRI services: `runtime.v1.RuntimeService` and `runtime.v1.ImageService`, and
//! berth's own `berth.admin.v1.Admin` (image import and export, Info; see `admin/`).
//!
//! Every RPC passes through [`instrument`](crate::instrument): request validation, a tracing
//! span with the RPC name and the IDs involved, the duration (logged, and recorded in the
//! metrics by RPC and error code), and the single conversion of [`ServiceError`] into a gRPC
//! status. Each built RPC lives in a file of its own under
//! `runtime/` or `image/`; RPCs not built yet answer `Unimplemented` naming the RPC.
//!
//! `unsafe` is denied crate-wide except in `container::idmap` (three mount syscalls libc does
//! not wrap), documented at its top.

#![deny(unsafe_code)]

mod admin;
mod authority;
mod cgroup;
mod clock;
mod container;
mod cpu_rate;
mod daemon;
mod deadline;
mod error;
mod filter;
mod handlers;
mod host;
mod ids;
mod image;
mod instrument;
mod message_limit;
mod pod;
mod request;
mod runtime;
mod scrape;
mod validate;

pub use admin::AdminService;
pub use authority::AnyAuthority;
pub use cgroup::{CgroupDriver, CgroupMode, SelectedCgroupDriver};
pub use daemon::Daemon;
pub use deadline::Deadline;
pub use error::ServiceError;
pub use handlers::{Handlers, RuntimeHandler};
pub use image::CriImageService;
pub use runtime::CriRuntimeService;

use std::sync::Arc;

use berth_admin_api::AdminServer;
use cri_api::{ImageServiceServer, RuntimeServiceServer};
use tonic::service::interceptor::InterceptedService;

pub use host::{Core, LinuxHost};
pub use instrument::WithMetrics;
pub use message_limit::{oversize_status, MAX_MESSAGE_SIZE};

/// Both CRI services over one shared [`Daemon`], ready to add to a tonic router; each
/// request carries the daemon's metrics to [`instrument`](crate::instrument).
pub fn services(
    daemon: Arc<Daemon>,
) -> (
    InterceptedService<RuntimeServiceServer<CriRuntimeService>, WithMetrics>,
    InterceptedService<ImageServiceServer<CriImageService>, WithMetrics>,
) {
    let metrics = WithMetrics(daemon.metrics.clone());
    let runtime = RuntimeServiceServer::new(CriRuntimeService::new(daemon.clone()))
        .max_decoding_message_size(MAX_MESSAGE_SIZE)
        .max_encoding_message_size(MAX_MESSAGE_SIZE);
    let image = ImageServiceServer::new(CriImageService::new(daemon))
        .max_decoding_message_size(MAX_MESSAGE_SIZE)
        .max_encoding_message_size(MAX_MESSAGE_SIZE);
    (
        InterceptedService::new(runtime, metrics.clone()),
        InterceptedService::new(image, metrics),
    )
}

/// berth's own Admin service (image import and export, Info) over the same [`Daemon`], for
/// the same router as the CRI services.
pub fn admin_service(daemon: Arc<Daemon>) -> AdminServer<AdminService> {
    AdminServer::new(AdminService::new(daemon))
        .max_decoding_message_size(MAX_MESSAGE_SIZE)
        .max_encoding_message_size(MAX_MESSAGE_SIZE)
}
