//! `RunPodSandbox`: checks the request and hands the new pod to the runtime core, which
//! records its intent, creates it on the host and leaves nothing behind when a step fails.

use std::sync::Arc;

use cri_api::v1;

use berth_store::{SandboxRecord, SandboxState};
use prost::Message as _;

use crate::clock::now_nanos;
use crate::daemon::Daemon;
use crate::error::{FieldProblem, ServiceError};
use crate::ids::new_id;
use crate::pod::create::PodSpec;
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
    check_config(&config, daemon.cgroup_driver.driver())?;
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
    let handler = daemon.handlers.requested(&request.runtime_handler)?;
    // Its containers need the binary; nothing is created for a pod that could have none.
    handler.runc()?;
    let handler = handler.name.clone();
    let metadata = config.metadata.clone().unwrap_or_default();
    let id = new_id().map_err(|source| ServiceError::Io {
        action: "read random bytes from",
        path: "/dev/urandom".into(),
        source,
    })?;
    let record = SandboxRecord {
        id,
        name: metadata.name,
        namespace: metadata.namespace,
        uid: metadata.uid,
        attempt: metadata.attempt,
        created_at: now_nanos(),
        labels: config.labels.clone().into_iter().collect(),
        annotations: config.annotations.clone().into_iter().collect(),
        runtime_handler: request.runtime_handler,
        handler,
        netns_path: None,
        ip: None,
        additional_ips: Vec::new(),
        state: SandboxState::NotReady,
        log_directory: config.log_directory.clone(),
        hostname: String::new(),
        cgroup_parent: config
            .linux
            .as_ref()
            .map(|l| l.cgroup_parent.clone())
            .unwrap_or_default(),
        config: config.encode_to_vec(),
        intent: None,
    };
    let record = daemon
        .core()
        .run_pod(record, PodSpec { config, userns })
        .await?;
    tracing::info!(sandbox = %record.id, pod = %record.name, handler = %record.handler, ip = ?record.ip, "pod sandbox running");
    Ok(v1::RunPodSandboxResponse {
        pod_sandbox_id: record.id,
    })
}

fn check_config(
    config: &v1::PodSandboxConfig,
    driver: berth_cgroups::CgroupDriver,
) -> Result<(), ServiceError> {
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
        // `;` and `=` separate the pairs of CNI_ARGS, which carry all three to the plugins.
        if let Some((offset, found)) = value
            .char_indices()
            .find(|(_, c)| c.is_control() || matches!(c, '/' | ';' | '='))
        {
            return Err(ServiceError::InvalidArgument {
                field,
                problem: FieldProblem::BadCharacter { found, offset },
            });
        }
    }
    let parent = config
        .linux
        .as_ref()
        .map_or("", |l| l.cgroup_parent.as_str());
    berth_cgroups::check_parent(driver, parent).map_err(|err| ServiceError::Unsupported {
        field: "config.linux.cgroup_parent",
        reason: format!("{err} (cgroup driver {})", driver.name()),
    })?;
    if let Some(dns) = &config.dns_config {
        dns_is_safe(dns).map_err(|reason| ServiceError::Unsupported {
            field: "config.dns_config",
            reason,
        })?;
    }
    Ok(())
}
