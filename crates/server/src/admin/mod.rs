//! `berth.admin.v1.Admin`: berth's own service on the CRI socket, for `berthctl`. Each RPC
//! in a file of its own, through the same instrumentation and error mapping as the CRI's.
//! Imports and exports go through the image manager, so they are serialised with pulls
//! and garbage collection exactly as pulls are.

mod export_images;
mod import_images;
mod info;

use std::sync::Arc;

use berth_admin_api::v1;
use berth_admin_api::Admin;
use tonic::{Request, Response, Status, Streaming};

use crate::daemon::Daemon;
use crate::error::{FieldProblem, ServiceError};
use crate::instrument::instrument;
use crate::request::{CriRequest, Ids};
use crate::runtime::BoxStream;
use crate::validate;

/// Most names one ExportImages may ask for.
pub const MAX_EXPORT_REFS: usize = 256;

/// berth's Admin service.
#[derive(Debug, Clone)]
pub struct AdminService {
    daemon: Arc<Daemon>,
}

impl AdminService {
    /// The Admin service over `daemon`.
    pub fn new(daemon: Arc<Daemon>) -> Self {
        AdminService { daemon }
    }
}

#[tonic::async_trait]
impl Admin for AdminService {
    type ExportImagesStream = BoxStream<v1::ExportImagesResponse>;

    async fn import_images(
        &self,
        request: Request<Streaming<v1::ImportImagesRequest>>,
    ) -> Result<Response<v1::ImportImagesResponse>, Status> {
        let daemon = self.daemon.clone();
        instrument("ImportImages", request, |stream| {
            import_images::import_images(daemon, stream)
        })
        .await
    }

    async fn export_images(
        &self,
        request: Request<v1::ExportImagesRequest>,
    ) -> Result<Response<Self::ExportImagesStream>, Status> {
        let daemon = self.daemon.clone();
        instrument("ExportImages", request, |req| {
            export_images::export_images(daemon, req)
        })
        .await
    }

    async fn info(
        &self,
        request: Request<v1::InfoRequest>,
    ) -> Result<Response<v1::InfoResponse>, Status> {
        let daemon = self.daemon.clone();
        instrument("Info", request, |_| info::info(daemon)).await
    }
}

/// The archive is checked as it is read.
impl CriRequest for Streaming<v1::ImportImagesRequest> {}

impl CriRequest for v1::InfoRequest {}

impl CriRequest for v1::ExportImagesRequest {
    fn ids(&self) -> Ids<'_> {
        Ids {
            image: self.refs.first().map(String::as_str),
            ..Ids::default()
        }
    }

    fn validate(&self) -> Result<(), ServiceError> {
        if self.refs.is_empty() {
            return Err(ServiceError::InvalidArgument {
                field: "refs",
                problem: FieldProblem::Empty,
            });
        }
        if self.refs.len() > MAX_EXPORT_REFS {
            return Err(ServiceError::Unsupported {
                field: "refs",
                reason: format!(
                    "{} names asked for; at most {MAX_EXPORT_REFS} per export",
                    self.refs.len()
                ),
            });
        }
        self.refs
            .iter()
            .try_for_each(|name| validate::image_ref("refs", name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn export_needs_valid_names() {
        let request = |refs: Vec<String>| v1::ExportImagesRequest { refs };
        let err = request(Vec::new()).validate().unwrap_err();
        assert_eq!(err.to_string(), "invalid refs: must not be empty");
        let err = request(vec!["busybox".into(), "a b".into()])
            .validate()
            .unwrap_err();
        assert_eq!(err.code(), tonic::Code::InvalidArgument);
        let err = request(vec!["x".into(); MAX_EXPORT_REFS + 1])
            .validate()
            .unwrap_err();
        assert_eq!(err.code(), tonic::Code::InvalidArgument);
        assert!(request(vec!["busybox".into(), "sha256:abcd".into()])
            .validate()
            .is_ok());
        assert_eq!(request(vec!["busybox".into()]).ids().image, Some("busybox"));
    }
}
