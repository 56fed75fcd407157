//! `ListImages`: every image, or the one a filter names (by ID, tag or repo digest).

use std::sync::Arc;

use cri_api::v1;

use crate::daemon::Daemon;
use crate::error::ServiceError;
use crate::image::convert::to_cri_image;

pub(super) async fn list_images(
    daemon: Arc<Daemon>,
    request: v1::ListImagesRequest,
) -> Result<v1::ListImagesResponse, ServiceError> {
    let wanted = request
        .filter
        .and_then(|filter| filter.image)
        .map(|spec| spec.image)
        .filter(|image| !image.is_empty());
    let records = match wanted {
        Some(name) => daemon.images.status(&name)?.into_iter().collect(),
        None => daemon.images.list()?,
    };
    Ok(v1::ListImagesResponse {
        images: records.iter().map(to_cri_image).collect(),
    })
}
