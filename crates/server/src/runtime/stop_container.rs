//! `StopContainer`: the stop signal (CRI, else the image's, else SIGTERM), `timeout`
//! seconds, then SIGKILL. Idempotent: an unknown or stopped container is fine.

use std::sync::Arc;
use std::time::Duration;

use cri_api::v1;

use crate::container::convert::stored_config;
use crate::container::lifecycle::stop_container as stop;
use crate::daemon::Daemon;
use crate::error::ServiceError;

pub(super) async fn stop_container(
    daemon: Arc<Daemon>,
    request: v1::StopContainerRequest,
) -> Result<v1::StopContainerResponse, ServiceError> {
    let Some(record) = daemon.find_container_or_none(&request.container_id)? else {
        return Ok(v1::StopContainerResponse {});
    };
    let _guard = daemon.container_locks.lock(&record.id).await;
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
    stop(&daemon, &record, signal, timeout).await?;
    Ok(v1::StopContainerResponse {})
}
