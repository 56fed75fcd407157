//! `RunPodSandbox`: namespaces, network, files and record of a new pod; nothing is left
//! behind when a step fails.

use std::sync::Arc;

use cri_api::v1;

use crate::daemon::Daemon;
use crate::error::{FieldProblem, ServiceError};
use crate::ids::new_id;
use crate::names::pod_key;
use crate::pod::create::{create_sandbox, SandboxSpec};
use crate::pod::files::dns_is_safe;

/// Longest pod name, namespace or UID accepted (Kubernetes names are at most 253 bytes).
const MAX_NAME_LEN: usize = 253;

pub(super) async fn run_pod_sandbox(
    daemon: Arc<Daemon>,
    request: v1::RunPodSandboxRequest,
) -> Result<v1::RunPodSandboxResponse, ServiceError> {
    let config = request.config.ok_or(ServiceError::InvalidArgument {
        field: "config",
        problem: FieldProblem::Empty,
    })?;
    check_config(&config)?;
    let userns = crate::pod::userns::requested(&config)?;
    if userns.is_some() {
        if !daemon.host_features.user_namespaces {
            return Err(ServiceError::FailedPrecondition {
                what: "this host cannot run pods in user namespaces: they need user \
                       namespaces enabled (user.max_user_namespaces > 0) and Linux 5.19 or \
                       newer (overlayfs over idmapped layers)"
                    .into(),
            });
        }
        crate::pod::userns::check_reachable(&daemon.config.state)?;
    }
    if !request.runtime_handler.is_empty() {
        return Err(ServiceError::Unsupported {
            field: "runtime_handler",
            reason: format!(
                "runtime handler {:?} is not configured; berth has only the default handler \"\"",
                request.runtime_handler
            ),
        });
    }
    let metadata = config.metadata.clone().unwrap_or_default();
    let id = new_id().map_err(|source| ServiceError::Io {
        action: "read random bytes from",
        path: "/dev/urandom".into(),
        source,
    })?;
    let key = pod_key(
        &metadata.name,
        &metadata.namespace,
        &metadata.uid,
        metadata.attempt,
    );
    let reservation = daemon.pod_names.reserve(&key, &id, || {
        Ok(daemon
            .store
            .sandboxes()
            .list()?
            .into_iter()
            .find(|s| pod_key(&s.name, &s.namespace, &s.uid, s.attempt) == key)
            .map(|s| s.id))
    })?;
    let spec = SandboxSpec {
        id,
        config,
        runtime_handler: request.runtime_handler,
        userns,
    };
    let record = tokio::task::spawn_blocking({
        let daemon = daemon.clone();
        move || create_sandbox(&daemon, spec)
    })
    .await??;
    drop(reservation);
    tracing::info!(sandbox = %record.id, pod = %key, ip = ?record.ip, "pod sandbox running");
    Ok(v1::RunPodSandboxResponse {
        pod_sandbox_id: record.id,
    })
}

fn check_config(config: &v1::PodSandboxConfig) -> Result<(), ServiceError> {
    let metadata = config
        .metadata
        .as_ref()
        .ok_or(ServiceError::InvalidArgument {
            field: "config.metadata",
            problem: FieldProblem::Empty,
        })?;
    for (field, value) in [
        ("config.metadata.name", &metadata.name),
        ("config.metadata.namespace", &metadata.namespace),
        ("config.metadata.uid", &metadata.uid),
    ] {
        if value.is_empty() {
            return Err(ServiceError::InvalidArgument {
                field,
                problem: FieldProblem::Empty,
            });
        }
        if value.len() > MAX_NAME_LEN {
            return Err(ServiceError::InvalidArgument {
                field,
                problem: FieldProblem::TooLong {
                    len: value.len(),
                    max: MAX_NAME_LEN,
                },
            });
        }
        if let Some((offset, found)) = value
            .char_indices()
            .find(|(_, c)| c.is_control() || *c == '/')
        {
            return Err(ServiceError::InvalidArgument {
                field,
                problem: FieldProblem::BadCharacter { found, offset },
            });
        }
    }
    if let Some(dns) = &config.dns_config {
        dns_is_safe(dns).map_err(|reason| ServiceError::Unsupported {
            field: "config.dns_config",
            reason,
        })?;
    }
    Ok(())
}
