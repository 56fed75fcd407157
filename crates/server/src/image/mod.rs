//! `runtime.v1.ImageService`: each RPC in a file of its own over the image manager
//! (`berth-image`); `StreamImages` pages the result of `ListImages`.

mod convert;
mod image_fs_info;
mod image_status;
mod list_images;
mod pull_image;
mod remove_image;

use std::sync::Arc;

use cri_api::v1;
use cri_api::ImageService;
use tonic::{Request, Response, Status};

use crate::daemon::Daemon;
use crate::instrument::instrument;
use crate::runtime::list_streams;
use crate::runtime::BoxStream;

/// berth's ImageService.
#[derive(Debug, Clone)]
pub struct CriImageService {
    daemon: Arc<Daemon>,
}

impl CriImageService {
    /// An ImageService over `daemon`.
    pub fn new(daemon: Arc<Daemon>) -> Self {
        CriImageService { daemon }
    }
}

#[tonic::async_trait]
impl ImageService for CriImageService {
    type StreamImagesStream = BoxStream<v1::StreamImagesResponse>;

    async fn list_images(
        &self,
        request: Request<v1::ListImagesRequest>,
    ) -> Result<Response<v1::ListImagesResponse>, Status> {
        let daemon = self.daemon.clone();
        instrument("ListImages", request, |req| {
            list_images::list_images(daemon, req)
        })
        .await
    }

    async fn image_fs_info(
        &self,
        request: Request<v1::ImageFsInfoRequest>,
    ) -> Result<Response<v1::ImageFsInfoResponse>, Status> {
        let daemon = self.daemon.clone();
        instrument("ImageFsInfo", request, |req| {
            image_fs_info::image_fs_info(daemon, req)
        })
        .await
    }

    async fn stream_images(
        &self,
        request: Request<v1::StreamImagesRequest>,
    ) -> Result<Response<Self::StreamImagesStream>, Status> {
        let daemon = self.daemon.clone();
        instrument("StreamImages", request, |req| async move {
            let list =
                list_images::list_images(daemon, v1::ListImagesRequest { filter: req.filter })
                    .await?;
            Ok(list_streams::paged(list.images, list_streams::images))
        })
        .await
    }

    async fn image_status(
        &self,
        request: Request<v1::ImageStatusRequest>,
    ) -> Result<Response<v1::ImageStatusResponse>, Status> {
        let daemon = self.daemon.clone();
        instrument("ImageStatus", request, |req| {
            image_status::image_status(daemon, req)
        })
        .await
    }

    async fn pull_image(
        &self,
        request: Request<v1::PullImageRequest>,
    ) -> Result<Response<v1::PullImageResponse>, Status> {
        let daemon = self.daemon.clone();
        instrument("PullImage", request, |req| {
            pull_image::pull_image(daemon, req)
        })
        .await
    }

    async fn remove_image(
        &self,
        request: Request<v1::RemoveImageRequest>,
    ) -> Result<Response<v1::RemoveImageResponse>, Status> {
        let daemon = self.daemon.clone();
        instrument("RemoveImage", request, |req| {
            remove_image::remove_image(daemon, req)
        })
        .await
    }
}
