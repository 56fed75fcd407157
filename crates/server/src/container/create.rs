//! Creating a container (CreateContainer's host work): rootfs overlay, host paths, OCI spec
//! and bundle. No process, runc container or cgroup: StartContainer spawns the shim, which
//! runs `runc create` (see [`crate::container::start`]). There is no undo here:
//! the runtime core runs the idempotent
//! [`remove_container`](crate::container::lifecycle::remove_container) when a step fails,
//! and at start-up when berthd died in the middle.

use std::path::{Path, PathBuf};

use berth_net::ns::USER_PIN;
use berth_oci::{build_spec, ImageView, PodUserNamespace, SandboxView, SpecInputs, UserDb};
use berth_runtime::Step;
use berth_store::{ContainerRecord, ImageRecord, SandboxRecord};
use cri_api::v1;

use crate::container::paths::ContainerPaths;
use crate::container::rootfs::{mount_rootfs, PodIdmap};
use crate::container::userdb::read_in_root;
use crate::container::volumes::idmap_volumes;
use crate::daemon::Daemon;
use crate::error::ServiceError;
use crate::pod::convert::stored_config;
use crate::pod::create::{ns_dir, sandbox_dir};
use crate::pod::pidns::pid_namespace;
use crate::pod::userns::requested as requested_userns;

/// What CreateContainer asked for beyond the record, checked.
pub struct ContainerSpec {
    /// The image it runs.
    pub image: ImageRecord,
    /// The CRI config.
    pub config: v1::ContainerConfig,
}

/// Prepares the container's host resources (the record names its log path and bundle, set
/// by CreateContainer before the intent is recorded, so an undo finds them); blocking
/// (mounts). `step` is called before each part.
pub fn create_container(
    daemon: &Daemon,
    record: &mut ContainerRecord,
    sandbox: &SandboxRecord,
    spec: &ContainerSpec,
    step: Step<'_>,
) -> Result<(), ServiceError> {
    let ContainerSpec { image, config } = spec;
    let id = record.id.clone();
    let paths = ContainerPaths::new(daemon, &id);
    // An unknown or unusable handler fails here, not at StartContainer.
    daemon.runc(&record.handler)?;
    step("create_container:rootfs");
    for dir in [&paths.state, &paths.layer] {
        std::fs::create_dir_all(dir).map_err(ServiceError::io("create", dir))?;
    }

    let lowers: Vec<PathBuf> = image
        .chain_ids
        .iter()
        .map(|chain| {
            berth_image::Digest::parse(chain)
                .map(|d| daemon.images.snapshot_fs(&d))
                .map_err(|err| ServiceError::Image(err.into()))
        })
        .collect::<Result<_, _>>()?;
    let sandbox_config = stored_config(sandbox);
    let pins = ns_dir(daemon, &sandbox.id);
    let userns_pin = pins.join(USER_PIN);
    // Validated by RunPodSandbox; the pin exists while the pod does.
    let pod_maps = requested_userns(&sandbox_config)?.filter(|_| userns_pin.exists());
    let rootfs = paths.rootfs();
    let idmap = pod_maps.map(|maps| PodIdmap {
        userns: &userns_pin,
        root: maps.host_root(),
    });
    mount_rootfs(&lowers, &paths.upper(), &paths.work(), &rootfs, idmap)
        .map_err(ServiceError::io("mount rootfs at", &rootfs))?;

    step("create_container:bundle");
    for mount in &config.mounts {
        create_missing_host_path(&mount.host_path)?;
    }

    let pod_dir = sandbox_dir(daemon, &sandbox.id);
    let existing = |name: &str| Some(pins.join(name)).filter(|p| p.exists());
    let (net, ipc, uts) = (existing("net"), existing("ipc"), existing("uts"));
    let shm = Some(pod_dir.join("shm")).filter(|p| p.exists());
    let pid_ns = pid_namespace(&pod_dir);
    // In a pod user namespace the spec binds idmapped clones of the volumes; the record
    // keeps the mounts as asked.
    let mut spec_config = config.clone();
    if pod_maps.is_some() {
        idmap_volumes(&mut spec_config, &paths.volumes(), &userns_pin)?;
    }
    let users = UserDb {
        passwd: read_in_root(&rootfs, "/etc/passwd"),
        group: read_in_root(&rootfs, "/etc/group"),
    };
    let oci_spec = build_spec(&SpecInputs {
        container_id: &id,
        container: &spec_config,
        sandbox: SandboxView {
            id: &sandbox.id,
            config: &sandbox_config,
            netns: net.as_deref(),
            ipc_ns: ipc.as_deref(),
            uts_ns: uts.as_deref(),
            pid_ns: pid_ns.as_deref(),
            hostname: &sandbox.hostname,
            resolv_conf: &pod_dir.join("resolv.conf"),
            hosts: &pod_dir.join("hosts"),
            hostname_file: &pod_dir.join("hostname"),
            shm: shm.as_deref(),
            cgroup_parent: &sandbox.cgroup_parent,
            userns: pod_maps.map(|maps| PodUserNamespace {
                pin: &userns_pin,
                uids: (maps.uids.outside, maps.uids.count),
                gids: (maps.gids.outside, maps.gids.count),
            }),
        },
        image: ImageView {
            config: &image.config,
            image_ref: &image.id,
        },
        rootfs: &rootfs,
        users: &users,
        cgroup_driver: daemon.oci_cgroup_driver(),
        host: &daemon.host_features,
    })?;
    let bundle = paths.bundle();
    let config_json = serde_json::to_vec_pretty(&oci_spec).map_err(|err| ServiceError::Io {
        action: "encode",
        path: bundle.join("config.json"),
        source: err.into(),
    })?;
    std::fs::write(bundle.join("config.json"), config_json)
        .map_err(ServiceError::io("write", &bundle.join("config.json")))?;

    tracing::debug!(container = %id, sandbox = %sandbox.id, "container prepared");
    Ok(())
}

/// The container's log file: `<sandbox log_directory>/<log_path>`, or a file in its state
/// directory when kubelet gave none.
pub fn log_path(
    sandbox: &SandboxRecord,
    config: &v1::ContainerConfig,
    paths: &ContainerPaths,
) -> PathBuf {
    if sandbox.log_directory.is_empty() || config.log_path.is_empty() {
        return paths.state.join("container.log");
    }
    Path::new(&sandbox.log_directory).join(&config.log_path)
}

/// Kubelet expects the runtime to create a missing host path of a bind mount as a directory.
fn create_missing_host_path(host_path: &str) -> Result<(), ServiceError> {
    let path = Path::new(host_path);
    if host_path.is_empty() || std::fs::symlink_metadata(path).is_ok() {
        return Ok(());
    }
    std::fs::create_dir_all(path).map_err(ServiceError::io("create host path", path))
}
