//! `CreateContainer`: a container in a ready sandbox from a pulled image.

use std::sync::Arc;

use berth_store::SandboxState;
use cri_api::v1;

use crate::container::create::{create_container as create, ContainerSpec};
use crate::daemon::Daemon;
use crate::error::{FieldProblem, ServiceError};
use crate::ids::new_id;
use crate::names::container_key;

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
    let sandbox = daemon.find_sandbox(&request.pod_sandbox_id)?;
    if sandbox.state != SandboxState::Ready {
        return Err(ServiceError::FailedPrecondition {
            what: format!("pod sandbox {} is not ready", sandbox.id),
        });
    }
    let image_spec = config.image.clone().unwrap_or_default();
    let image = daemon
        .images
        .status(&image_spec.image)?
        .ok_or_else(|| ServiceError::NotFound {
            kind: "image",
            id: image_spec.image.clone(),
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
    let key = container_key(&metadata.name, metadata.attempt, &sandbox.id);
    let reservation = daemon.container_names.reserve(&key, &id, || {
        Ok(daemon
            .store
            .containers()
            .list()?
            .into_iter()
            .find(|c| container_key(&c.name, c.attempt, &c.sandbox_id) == key)
            .map(|c| c.id))
    })?;
    let spec = ContainerSpec {
        id,
        sandbox,
        image,
        image_name,
        config,
    };
    let record = tokio::task::spawn_blocking({
        let daemon = daemon.clone();
        move || create(&daemon, spec)
    })
    .await??;
    drop(reservation);
    daemon.events.emit(
        &daemon,
        v1::ContainerEventType::ContainerCreatedEvent,
        &record.id,
    );
    Ok(v1::CreateContainerResponse {
        container_id: record.id,
    })
}
