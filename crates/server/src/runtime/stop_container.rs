//! `StopContainer`: the stop signal (CRI, else the image's, else SIGTERM), `timeout`
//! seconds, then SIGKILL. Idempotent: an unknown or stopped container is fine.

use std::sync::Arc;
use std::time::Duration;

use cri_api::v1;

use crate::container::convert::stored_config;
use crate::daemon::Daemon;
use crate::error::ServiceError;

pub(super) async fn stop_container(
    daemon: Arc<Daemon>,
    request: v1::StopContainerRequest,
) -> Result<v1::StopContainerResponse, ServiceError> {
    let record = match daemon.find_container(&request.container_id) {
        Ok(view) => view.record,
        Err(ServiceError::NotFound { .. }) => return Ok(v1::StopContainerResponse {}),
        Err(err) => return Err(err),
    };
    let config = stored_config(&record);
    let image = daemon.images.status(&record.image_ref)?;
    let image_config = image.map(|i| i.config).unwrap_or_default();
    let signal = berth_oci::stop_signal(
        &config,
        &berth_oci::ImageView {
            config: &image_config,
            image_ref: &record.image_ref,
        },
    )
    .number();
    let timeout = Duration::from_secs(request.timeout.max(0) as u64);
    daemon
        .core()
        .stop_container(&record.id, signal, timeout)
        .await?;
    Ok(v1::StopContainerResponse {})
}
