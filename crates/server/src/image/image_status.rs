//! `ImageStatus`: one image by ID, tag or repo digest; `image: None` when absent.

use std::collections::HashMap;
use std::sync::Arc;

use cri_api::v1;

use crate::daemon::Daemon;
use crate::error::ServiceError;
use crate::image::convert::to_cri_image;

pub(super) async fn image_status(
    daemon: Arc<Daemon>,
    request: v1::ImageStatusRequest,
) -> Result<v1::ImageStatusResponse, ServiceError> {
    let name = request.image.map(|spec| spec.image).unwrap_or_default();
    let Some(record) = daemon.images.status(&name)? else {
        return Ok(v1::ImageStatusResponse::default());
    };
    let mut info = HashMap::new();
    if request.verbose {
        let verbose = serde_json::json!({
            "id": record.id,
            "manifestDigest": record.manifest_digest,
            "chainIDs": record.chain_ids,
            "imageSpec": record.config,
        });
        info.insert("info".to_owned(), verbose.to_string());
    }
    Ok(v1::ImageStatusResponse {
        image: Some(to_cri_image(&record)),
        info,
    })
}
