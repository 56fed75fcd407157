//! Creating a sandbox (RunPodSandbox's host work), step by step. There is no undo here: the
//! runtime core runs the idempotent [`remove_sandbox`](crate::pod::teardown::remove_sandbox)
//! when a step fails, and at start-up when berthd died in the middle.

use std::path::{Path, PathBuf};

use berth_net::cni::{Attachment, PortMapping, Protocol};
use berth_net::ns::{
    create_pinned, create_pinned_in_userns, NamespaceRequest, UserNamespaceRequest,
};
use berth_runtime::Step;
use berth_store::SandboxRecord;
use cri_api::v1;

use crate::daemon::Daemon;
use crate::error::ServiceError;
use crate::pod::files;
use crate::pod::pidns::start_pid_init;
use crate::pod::shm::mount_shm;
use crate::pod::userns::PodIdMaps;

/// Network interface name of the pod's CNI attachment.
pub const POD_IFNAME: &str = "eth0";

/// What RunPodSandbox asked for beyond the record, checked.
pub struct PodSpec {
    /// The CRI config.
    pub config: v1::PodSandboxConfig,
    /// The pod's own user namespace, as RunPodSandbox checked it (`None`: the host's).
    pub userns: Option<PodIdMaps>,
}

/// Namespace modes of a pod from its config: (host network, host IPC, host PID, pod PID).
pub fn namespace_modes(config: &v1::PodSandboxConfig) -> (bool, bool, bool) {
    let options = config
        .linux
        .as_ref()
        .and_then(|l| l.security_context.as_ref())
        .and_then(|s| s.namespace_options.as_ref());
    let node = v1::NamespaceMode::Node as i32;
    match options {
        Some(o) => (o.network == node, o.ipc == node, o.pid == node),
        None => (false, false, false),
    }
}

/// The pod's PID namespace mode (POD when unset, as the CRI's zero value says).
pub fn pid_mode(config: &v1::PodSandboxConfig) -> i32 {
    config
        .linux
        .as_ref()
        .and_then(|l| l.security_context.as_ref())
        .and_then(|s| s.namespace_options.as_ref())
        .map_or(v1::NamespaceMode::Pod as i32, |o| o.pid)
}

/// Directory of a sandbox's files.
pub fn sandbox_dir(daemon: &Daemon, id: &str) -> PathBuf {
    daemon.config.state.join("sandboxes").join(id)
}

/// Directory of a sandbox's namespace pins.
pub fn ns_dir(daemon: &Daemon, id: &str) -> PathBuf {
    daemon.config.state.join("ns").join(id)
}

/// Creates the sandbox's host resources and fills `record` (hostname, netns, IPs).
/// Blocking: runs namespace syscalls and CNI plugins. `step` is called before each part.
pub fn create_sandbox(
    daemon: &Daemon,
    record: &mut SandboxRecord,
    spec: &PodSpec,
    step: Step<'_>,
) -> Result<(), ServiceError> {
    let PodSpec { config, userns } = spec;
    let id = record.id.clone();
    let metadata = config.metadata.clone().unwrap_or_default();
    let (host_network, host_ipc, _host_pid) = namespace_modes(config);
    let shared_pid = pid_mode(config) == v1::NamespaceMode::Pod as i32;

    step("run_pod_sandbox:files");
    let dir = sandbox_dir(daemon, &id);
    std::fs::create_dir_all(&dir).map_err(ServiceError::io("create", &dir))?;

    let hostname = if host_network || config.hostname.is_empty() {
        nix::unistd::gethostname()
            .map(|h| h.to_string_lossy().into_owned())
            .unwrap_or_default()
    } else {
        config.hostname.clone()
    };
    let host_resolv = std::fs::read_to_string(files::HOST_RESOLV_CONF).unwrap_or_default();
    write(
        &dir.join("resolv.conf"),
        &files::resolv_conf(config.dns_config.as_ref(), &host_resolv),
    )?;
    write(&dir.join("hostname"), &format!("{hostname}\n"))?;

    step("run_pod_sandbox:shm");
    if !host_ipc {
        let shm = dir.join("shm");
        mount_shm(&shm).map_err(ServiceError::io("mount shm tmpfs at", &shm))?;
    }

    let sysctls: Vec<(String, String)> = config
        .linux
        .as_ref()
        .map(|l| {
            l.sysctls
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        })
        .unwrap_or_default();
    let ns_dir = ns_dir(daemon, &id);
    let request = NamespaceRequest {
        net: !host_network,
        ipc: !host_ipc,
        uts: !host_network,
        hostname: (!host_network).then(|| hostname.clone()),
        sysctls,
    };
    step("run_pod_sandbox:namespaces");
    let pins = match userns {
        Some(maps) => create_pinned_in_userns(
            &ns_dir,
            &request,
            &UserNamespaceRequest {
                uids: maps.uids,
                gids: maps.gids,
                holder: daemon.shim_binary(),
            },
        )?,
        None => create_pinned(&ns_dir, &request)?,
    };

    // After the pins: in a pod user namespace, the PID namespace is created inside it.
    step("run_pod_sandbox:pid_init");
    if shared_pid {
        start_pid_init(&daemon.shim_binary(), &dir, pins.user.as_deref())?;
    }

    step("run_pod_sandbox:network");

    let (ip, additional_ips) = match &pins.net {
        Some(netns) => {
            let port_mappings = config
                .port_mappings
                .iter()
                .filter(|p| p.host_port > 0)
                .map(port_mapping)
                .collect::<Result<Vec<_>, _>>()?;
            // A failed setup rolls back what it can and keeps its cache for the teardown
            // the core runs next (removal retries it until it succeeds).
            let status = daemon.cni.setup(&Attachment {
                id: &id,
                netns,
                ifname: POD_IFNAME,
                pod_name: &metadata.name,
                pod_namespace: &metadata.namespace,
                pod_uid: &metadata.uid,
                port_mappings,
            })?;
            let mut ips = status.ips.iter().map(ToString::to_string);
            (ips.next(), ips.collect())
        }
        None => (None, Vec::new()),
    };
    write(&dir.join("hosts"), &files::hosts(&hostname, ip.as_deref()))?;
    if let Some(maps) = &userns {
        give_to_pod_root(&dir, maps.host_root())?;
    }

    record.hostname = hostname;
    record.netns_path = pins.net.as_ref().map(|p| p.display().to_string());
    record.ip = ip;
    record.additional_ips = additional_ips;
    Ok(())
}

fn port_mapping(mapping: &v1::PortMapping) -> Result<PortMapping, ServiceError> {
    let port = |field: &'static str, value: i32| {
        u16::try_from(value)
            .ok()
            .filter(|p| *p > 0)
            .ok_or(ServiceError::Unsupported {
                field,
                reason: format!("{value} is not a port number"),
            })
    };
    let protocol = match v1::Protocol::try_from(mapping.protocol) {
        Ok(v1::Protocol::Tcp) => Protocol::Tcp,
        Ok(v1::Protocol::Udp) => Protocol::Udp,
        Ok(v1::Protocol::Sctp) => Protocol::Sctp,
        Err(_) => {
            return Err(ServiceError::Unsupported {
                field: "port_mappings.protocol",
                reason: format!("unknown protocol {}", mapping.protocol),
            })
        }
    };
    Ok(PortMapping {
        host_port: port("port_mappings.host_port", mapping.host_port)?,
        container_port: port("port_mappings.container_port", mapping.container_port)?,
        protocol,
        host_ip: mapping.host_ip.clone(),
    })
}

/// In a pod user namespace, the pod's root owns its /etc files and /dev/shm, as host root
/// owns them in other pods (host root is nobody inside).
fn give_to_pod_root(dir: &Path, (uid, gid): (u32, u32)) -> Result<(), ServiceError> {
    for name in ["hosts", "hostname", "resolv.conf", "shm"] {
        let path = dir.join(name);
        if !path.exists() {
            continue;
        }
        std::os::unix::fs::chown(&path, Some(uid), Some(gid))
            .map_err(ServiceError::io("give to the pod's root user", &path))?;
    }
    Ok(())
}

fn write(path: &std::path::Path, text: &str) -> Result<(), ServiceError> {
    std::fs::write(path, text).map_err(ServiceError::io("write", path))
}
