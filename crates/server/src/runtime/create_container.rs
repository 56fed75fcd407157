//! `CreateContainer`: a container in a ready sandbox from a pulled image.

use std::sync::Arc;

use berth_store::ContainerRecord;
use cri_api::v1;
use prost::Message as _;

use crate::clock::now_nanos;
use crate::container::create::{log_path, ContainerSpec};
use crate::container::paths::ContainerPaths;
use crate::daemon::Daemon;
use crate::error::{FieldProblem, ServiceError};
use crate::ids::new_id;
use crate::validate;

pub(super) async fn create_container(
    daemon: Arc<Daemon>,
    request: v1::CreateContainerRequest,
) -> Result<v1::CreateContainerResponse, ServiceError> {
    let config = request.config.ok_or(ServiceError::InvalidArgument {
        field: "config",
        problem: FieldProblem::Empty,
    })?;
    let metadata = config
        .metadata
        .clone()
        .ok_or(ServiceError::InvalidArgument {
            field: "config.metadata",
            problem: FieldProblem::Empty,
        })?;
    if metadata.name.is_empty() {
        return Err(ServiceError::InvalidArgument {
            field: "config.metadata.name",
            problem: FieldProblem::Empty,
        });
    }
    validate::relative_path("config.log_path", &config.log_path)?;
    for mount in &config.mounts {
        validate::without_nul("config.mounts.host_path", &mount.host_path)?;
        validate::without_nul("config.mounts.container_path", &mount.container_path)?;
    }
    // The core checks readiness again under the pod's lock.
    let sandbox = daemon.find_sandbox(&request.pod_sandbox_id)?;
    let image_spec = config.image.clone().unwrap_or_default();
    let image = daemon
        .images
        .status(&image_spec.image)?
        .ok_or_else(|| ServiceError::NotFound {
            kind: "image",
            id: berth_runtime::quote(&image_spec.image),
        })?;
    let image_name = if image_spec.user_specified_image.is_empty() {
        image_spec.image.clone()
    } else {
        image_spec.user_specified_image.clone()
    };
    let id = new_id().map_err(|source| ServiceError::Io {
        action: "read random bytes from",
        path: "/dev/urandom".into(),
        source,
    })?;
    let paths = ContainerPaths::new(&daemon, &id);
    let log_path = log_path(&sandbox, &config, &paths);
    let record = ContainerRecord {
        id,
        sandbox_id: sandbox.id.clone(),
        handler: sandbox.handler.clone(),
        name: metadata.name.clone(),
        attempt: metadata.attempt,
        created_at: now_nanos(),
        image_ref: image.id.clone(),
        image_name,
        labels: config.labels.clone().into_iter().collect(),
        annotations: config.annotations.clone().into_iter().collect(),
        log_path: log_path.display().to_string(),
        bundle_dir: paths.bundle().display().to_string(),
        config: config.encode_to_vec(),
        intent: None,
        started_at: 0,
        exit: None,
    };
    let record = daemon
        .core()
        .create_container(record, ContainerSpec { image, config })
        .await?;
    Ok(v1::CreateContainerResponse {
        container_id: record.id,
    })
}
