//! Builds the OCI runtime spec (`config.json`) of a container from its CRI
//! `ContainerConfig`, its image config and what its pod provides — pure logic: the only
//! host access is reading device nodes, resolving bind-mount host paths and reading a
//! localhost seccomp profile; everything else about the host comes in [`HostFeatures`].
//!
//! [`build_spec`] is the entry point; [`resolve_user`] and [`stop_signal`] are exposed for
//! `ContainerStatus` and `StopContainer`. Each concern has its module, each module's tests
//! assert the spec fragment it produces; `tests` checks whole specs.

#![deny(unsafe_code)]
#![warn(missing_docs)]

mod args;
mod capabilities;
mod devices;
mod env;
mod error;
mod host;
mod image;
mod mounts;
mod namespaces;
mod resources;
mod seccomp;
mod security;
mod signal;
mod user;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod testutil;

use std::collections::HashMap;
use std::path::Path;

use cri_api::v1;
use oci_spec::runtime::{Linux, Process, Root, Spec, User};

pub use berth_cgroups::{cgroups_path, CgroupDriver, DEFAULT_CGROUPFS_PARENT, DEFAULT_SLICE};
pub use capabilities::DEFAULT_CAPABILITIES;
pub use env::DEFAULT_PATH;
pub use error::{DeviceProblem, EnvProblem, MountProblem, ProfileProblem, SpecError};
pub use host::{HostFeatures, ALL_CAPS, LAST_KNOWN_CAP};
pub use image::ImageView;
pub use seccomp::runtime_default as runtime_default_seccomp;
pub use security::{DEFAULT_MASKED_PATHS, DEFAULT_READONLY_PATHS};
pub use signal::{stop_signal, try_stop_signal, StopSignal};
pub use user::{resolve_user, ResolvedUser, UserDb};

/// The OCI runtime spec version written.
pub const OCI_VERSION: &str = "1.0.2";

/// Annotation: `container` for application containers.
pub const ANNOTATION_CONTAINER_TYPE: &str = "io.kubernetes.cri.container-type";
/// Annotation: the pod sandbox's ID.
pub const ANNOTATION_SANDBOX_ID: &str = "io.kubernetes.cri.sandbox-id";
/// Annotation: the container's name (CRI metadata).
pub const ANNOTATION_CONTAINER_NAME: &str = "io.kubernetes.cri.container-name";
/// Annotation: the image's ID.
pub const ANNOTATION_IMAGE_NAME: &str = "io.kubernetes.cri.image-name";

/// What the pod provides to its containers.
#[derive(Debug, Clone, Copy)]
pub struct SandboxView<'a> {
    /// The pod sandbox's ID.
    pub id: &'a str,
    /// The pod's CRI config.
    pub config: &'a v1::PodSandboxConfig,
    /// The pinned network namespace; `None` for host networking.
    pub netns: Option<&'a Path>,
    /// The pinned IPC namespace; `None` for host IPC.
    pub ipc_ns: Option<&'a Path>,
    /// The pinned UTS namespace; `None` for the host's (host networking).
    pub uts_ns: Option<&'a Path>,
    /// The pod's shared PID namespace (`/proc/<pid>/ns/pid` of its holder) when the pod asked
    /// for NamespaceMode POD; `None` otherwise.
    pub pid_ns: Option<&'a Path>,
    /// The pod's hostname (the host's for host networking): `HOSTNAME` and, with a pod UTS
    /// namespace, the spec's hostname.
    pub hostname: &'a str,
    /// The pod's resolv.conf, bound at /etc/resolv.conf.
    pub resolv_conf: &'a Path,
    /// The pod's hosts file, bound at /etc/hosts.
    pub hosts: &'a Path,
    /// The pod's hostname file, bound at /etc/hostname.
    pub hostname_file: &'a Path,
    /// The pod's /dev/shm directory; `None` with host IPC (the host's /dev/shm is bound), or
    /// for a private tmpfs when the pod has its own IPC namespace but no shm directory.
    pub shm: Option<&'a Path>,
    /// The pod's cgroup parent (`""` for none).
    pub cgroup_parent: &'a str,
    /// The pod's own user namespace, if it has one.
    pub userns: Option<PodUserNamespace<'a>>,
}

/// A pod's user namespace: its pin and ID maps (one range each, starting at 0).
#[derive(Debug, Clone, Copy)]
pub struct PodUserNamespace<'a> {
    /// The pinned user namespace the container joins.
    pub pin: &'a Path,
    /// (host UID of container UID 0, number of UIDs).
    pub uids: (u32, u32),
    /// (host GID of container GID 0, number of GIDs).
    pub gids: (u32, u32),
}

/// Everything a spec is built from.
#[derive(Debug, Clone, Copy)]
pub struct SpecInputs<'a> {
    /// The new container's ID.
    pub container_id: &'a str,
    /// The CRI config.
    pub container: &'a v1::ContainerConfig,
    /// The pod.
    pub sandbox: SandboxView<'a>,
    /// The image.
    pub image: ImageView<'a>,
    /// The mounted root filesystem.
    pub rootfs: &'a Path,
    /// The rootfs's /etc/passwd and /etc/group.
    pub users: &'a UserDb,
    /// How runc is to place the container's cgroup.
    pub cgroup_driver: CgroupDriver,
    /// The host's features (detect once with [`HostFeatures::detect`]).
    pub host: &'a HostFeatures,
}

/// Builds the container's OCI runtime spec.
pub fn build_spec(inputs: &SpecInputs) -> Result<Spec, SpecError> {
    let SpecInputs {
        container,
        sandbox,
        image,
        host,
        ..
    } = *inputs;
    let sc = security::container_context(container);
    let privileged = sc.is_some_and(|s| s.privileged);
    let readonly_rootfs = sc.is_some_and(|s| s.readonly_rootfs);
    let resources_in = container.linux.as_ref().and_then(|l| l.resources.as_ref());
    if !container.cdi_devices.is_empty() {
        return Err(SpecError::Unsupported("CDI devices"));
    }
    security::check_selinux(container, host)?;

    let resolved = resolve_user(container, sandbox.config, &image, inputs.users)?;
    let mut user = User::default();
    user.set_uid(resolved.uid);
    user.set_gid(resolved.gid);
    user.set_additional_gids(Some(resolved.additional_gids));

    let caps = capabilities::capabilities(sc, host.capabilities)?;
    let mut process = Process::default();
    process.set_terminal(Some(container.tty));
    process.set_user(user);
    process.set_args(Some(args::process_args(container, &image)?));
    process.set_env(Some(env::process_env(
        &image.env()?,
        &container.envs,
        sandbox.hostname,
        container.tty,
    )?));
    process.set_cwd(args::working_dir(container, &image)?.into());
    process.set_no_new_privileges(Some(sc.is_some_and(|s| s.no_new_privs)));
    process.set_apparmor_profile(security::apparmor_profile(sc, host)?);
    process.set_oom_score_adj(resources::oom_score_adj(resources_in, host)?);
    process.set_rlimits(None);
    process.set_selinux_label(None);

    let seccomp = if privileged {
        None
    } else {
        let profile = seccomp::select(sc, security::pod_context(sandbox.config))?;
        seccomp::filter(&profile, &capabilities::effective(&caps), host)?
    };
    process.set_capabilities(Some(caps));

    let plan = mounts::mounts(container, &sandbox, privileged, readonly_rootfs)?;
    let devices = devices::devices(container, privileged)?;
    let mut resources = resources::resources(resources_in)?;
    if !host.hugetlb {
        // kubelet asks for a limit of 0 per page size it sees; runc cannot set any.
        resources.set_hugepage_limits(None);
    }
    resources.set_devices(Some(devices.rules));
    let (masked, readonly) = security::masked_and_readonly_paths(sc);

    let mut linux = Linux::default();
    // runc wants the maps even when it joins the user namespace by path; they must be the
    // namespace's own.
    linux.set_uid_mappings(sandbox.userns.map(|u| vec![id_mapping(u.uids)]));
    linux.set_gid_mappings(sandbox.userns.map(|u| vec![id_mapping(u.gids)]));
    linux.set_sysctl(None);
    linux.set_resources(Some(resources));
    linux.set_cgroups_path(Some(
        cgroups_path(
            inputs.cgroup_driver,
            sandbox.cgroup_parent,
            inputs.container_id,
        )?
        .into(),
    ));
    linux.set_namespaces(Some(namespaces::namespaces(container, &sandbox, host)?));
    linux.set_devices(Some(devices.nodes));
    linux.set_seccomp(seccomp);
    linux.set_rootfs_propagation(plan.rootfs_propagation.map(str::to_owned));
    linux.set_masked_paths(Some(masked));
    linux.set_readonly_paths(Some(readonly));
    linux.set_mount_label(None);

    let mut root = Root::default();
    root.set_path(inputs.rootfs.to_owned());
    root.set_readonly(Some(readonly_rootfs));

    let mut spec = Spec::default();
    spec.set_version(OCI_VERSION.to_owned());
    spec.set_root(Some(root));
    spec.set_mounts(Some(plan.mounts));
    spec.set_process(Some(process));
    // A hostname can only be set in the pod's own UTS namespace; with the host's, omit it.
    let hostname = Some(sandbox.hostname).filter(|h| sandbox.uts_ns.is_some() && !h.is_empty());
    spec.set_hostname(hostname.map(str::to_owned));
    spec.set_domainname(None);
    spec.set_hooks(None);
    spec.set_annotations(Some(annotations(inputs)));
    spec.set_linux(Some(linux));
    Ok(spec)
}

/// The CRI annotations plus berth's own.
fn annotations(inputs: &SpecInputs) -> HashMap<String, String> {
    let mut out: HashMap<String, String> = inputs
        .container
        .annotations
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let name = inputs
        .container
        .metadata
        .as_ref()
        .map_or("", |m| m.name.as_str());
    for (key, value) in [
        (ANNOTATION_CONTAINER_TYPE, "container"),
        (ANNOTATION_SANDBOX_ID, inputs.sandbox.id),
        (ANNOTATION_CONTAINER_NAME, name),
        (ANNOTATION_IMAGE_NAME, inputs.image.image_ref),
    ] {
        out.insert(key.to_owned(), value.to_owned());
    }
    out
}

/// The OCI mapping of container ID 0.. to `host`.. (`count` IDs).
fn id_mapping((host, count): (u32, u32)) -> oci_spec::runtime::LinuxIdMapping {
    // Every field is given: the builder cannot fail.
    oci_spec::runtime::LinuxIdMappingBuilder::default()
        .container_id(0u32)
        .host_id(host)
        .size(count)
        .build()
        .unwrap_or_default()
}
