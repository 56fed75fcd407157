//! State shared by every RPC: the effective configuration, the metadata store and what was
//! detected about the host at startup.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use berth_config::Config;
use berth_image::{ImageError, ImageManager, ImageSettings};
use berth_net::cni::Cni;
use berth_runtime::ContainerView;
use berth_store::{SandboxRecord, Store};

use crate::cgroup::{CgroupMode, SelectedCgroupDriver, CGROUP_ROOT};
use crate::container::runc::Runc;
use crate::container::trash::ContainerTrash;
use crate::error::ServiceError;
use crate::handlers::{Handlers, RuntimeHandler};
use crate::host::{Core, LinuxHost};

/// The daemon's shared state.
#[derive(Debug)]
pub struct Daemon {
    /// Effective configuration (embedded default, file, flags).
    pub config: Config,
    /// Metadata of sandboxes, containers and images.
    pub store: Store,
    /// Cgroup driver in use.
    pub cgroup_driver: SelectedCgroupDriver,
    /// Cgroup hierarchy layout of the host.
    pub cgroup_mode: CgroupMode,
    /// Images: content store, snapshots, pulls.
    pub images: ImageManager,
    /// Where removed containers' directories wait for their deletion.
    pub container_trash: ContainerTrash,
    /// CNI plugins, with their attachments cached under `<root>/cni-cache` (kept across
    /// reboots, so the IPs of pods that were running are released afterwards).
    pub cni: Cni,
    /// What the host supports, for the OCI spec builder.
    pub host_features: berth_oci::HostFeatures,
    /// The runtime handlers (OCI runtimes) pods can choose.
    pub handlers: Handlers,
    /// The runtime core: every pod and container; set once by [`crate::start`].
    core: std::sync::OnceLock<Arc<Core>>,
    /// The streaming server's handle (Exec, Attach, PortForward URLs); set once at startup.
    pub stream: std::sync::OnceLock<berth_stream::Handle>,
    /// The last CPU sample of each container and pod, for `usage_nano_cores`.
    pub cpu_rates: crate::cpu_rate::CpuRates,
    /// What RPCs and pulls record for the metrics endpoint (recorded whether or not it is
    /// served).
    pub metrics: Arc<berth_metrics::Metrics>,
}

impl Daemon {
    /// Assembles the daemon state: detects the cgroup driver and layout of this host and
    /// opens the image stores (removing what interrupted pulls left).
    pub fn new(config: Config, store: Store) -> Result<Daemon, ImageError> {
        let cgroup_driver = SelectedCgroupDriver::resolve(config.runtime.cgroup_driver);
        let cgroup_mode = CgroupMode::detect(Path::new(CGROUP_ROOT));
        let images = ImageManager::open(
            store.clone(),
            ImageSettings {
                root: config.root.clone(),
                hosts_dir: config.registry.config_path.clone(),
                max_concurrent_downloads: config.registry.max_concurrent_downloads as usize,
                stall_timeout: std::time::Duration::from_secs(
                    config.registry.pull_progress_timeout_seconds,
                ),
                limits: unpack_limits(&config.image),
            },
        )?;
        let container_trash = ContainerTrash::open(&config.root, &config.state)?;
        let cni_cache = config.root.join("cni-cache");
        adopt_old_cni_cache(&config.state.join("cni-cache"), &cni_cache);
        let cni = Cni::new(
            config.cni.conf_dir.clone(),
            config.cni.bin_dirs.clone(),
            cni_cache,
        );
        cni.set_pod_cidrs(crate::runtime::update_runtime_config::saved_pod_cidrs(
            &config.root,
        ));
        let host_features = host_features(&config.runtime);
        let handlers = Handlers::new(&config, cgroup_driver.driver(), &host_features);
        Ok(Daemon {
            config,
            store,
            cgroup_driver,
            cgroup_mode,
            images,
            container_trash,
            cni,
            host_features,
            handlers,
            core: std::sync::OnceLock::new(),
            stream: std::sync::OnceLock::new(),
            cpu_rates: crate::cpu_rate::CpuRates::default(),
            metrics: Arc::default(),
        })
    }
}

impl Daemon {
    /// Opens the runtime core over this daemon's store and reconciles every pod and
    /// container with the host (see `berth_runtime::recovery`). Call once, before serving.
    pub async fn start_core(self: &Arc<Self>) -> Result<(), ServiceError> {
        let core = Core::open(Arc::new(LinuxHost::new(self)), self.store.clone()).await?;
        let _ = self.core.set(core);
        Ok(())
    }

    /// The runtime core.
    ///
    /// # Panics
    /// Before [`start_core`](Self::start_core): the services are only built after it.
    pub fn core(&self) -> &Arc<Core> {
        self.core
            .get()
            .expect("the runtime core is opened before serving")
    }

    /// The runtime core once [`start_core`](Self::start_core) opened it.
    pub(crate) fn opened_core(&self) -> Option<&Arc<Core>> {
        self.core.get()
    }

    /// The sandbox `id` names (a full ID or a unique prefix); NotFound otherwise.
    pub fn find_sandbox(&self, id: &str) -> Result<SandboxRecord, ServiceError> {
        Ok(self.core().sandbox(id)?)
    }

    /// The container `id` names (a full ID or a unique prefix); NotFound otherwise.
    pub fn find_container(&self, id: &str) -> Result<ContainerView, ServiceError> {
        Ok(self.core().container(id)?)
    }

    /// The streaming server, or Unavailable when berthd runs without one.
    pub fn stream(&self) -> Result<&berth_stream::Handle, ServiceError> {
        self.stream.get().ok_or(ServiceError::StreamingUnavailable)
    }

    /// The runtime client of the handler a record names (empty: the default handler), or
    /// FailedPrecondition when that handler is no longer configured or its binary is missing.
    pub fn runc(&self, handler: &str) -> Result<Runc, ServiceError> {
        self.handlers.recorded(handler)?.runc()
    }

    /// The `berth-shim` binary: `runtime.shim_path` if set, else the one beside berthd.
    pub fn shim_binary(&self) -> PathBuf {
        if !self.config.runtime.shim_path.as_os_str().is_empty() {
            return self.config.runtime.shim_path.clone();
        }
        std::env::current_exe()
            .ok()
            .and_then(|exe| exe.parent().map(|dir| dir.join("berth-shim")))
            .unwrap_or_else(|| PathBuf::from("berth-shim"))
    }

    /// The cgroup driver for the spec builder (the same `berth-cgroups` type).
    pub fn oci_cgroup_driver(&self) -> berth_oci::CgroupDriver {
        self.cgroup_driver.driver()
    }

    /// The default handler.
    pub fn default_handler(&self) -> &RuntimeHandler {
        self.handlers.default_handler()
    }
}

/// What the host offers the spec builder, with the configuration's say on hugetlb limits
/// and on `oom_score_adj` below berthd's own (detected once, here).
fn host_features(runtime: &berth_config::RuntimeConfig) -> berth_oci::HostFeatures {
    use berth_config::RestrictOomScoreAdj;
    let mut host = berth_oci::HostFeatures::detect();
    if !host.hugetlb {
        if runtime.tolerate_missing_hugetlb_controller {
            tracing::info!("no hugetlb cgroup controller: hugepage limits are dropped");
        } else {
            host.hugetlb = true;
        }
    }
    let restrict = match runtime.restrict_oom_score_adj {
        RestrictOomScoreAdj::On => true,
        RestrictOomScoreAdj::Off => false,
        RestrictOomScoreAdj::Auto => !berth_oci::HostFeatures::may_lower_oom_score_adj(),
    };
    if restrict {
        host.oom_score_adj_min = berth_oci::HostFeatures::own_oom_score_adj();
        tracing::info!(min = ?host.oom_score_adj_min, "containers' oom_score_adj is raised to berthd's own");
    }
    host
}

/// Moves attachments cached in the state directory by older berthd versions into the
/// cache under `root`, where they survive a reboot.
fn adopt_old_cni_cache(old: &Path, new: &Path) {
    let Ok(entries) = std::fs::read_dir(old) else {
        return;
    };
    if std::fs::create_dir_all(new).is_err() {
        return;
    }
    for entry in entries.flatten() {
        let target = new.join(entry.file_name());
        if !target.exists() {
            if let Err(err) = std::fs::rename(entry.path(), &target) {
                tracing::warn!(from = %entry.path().display(), error = %err, "cannot move a CNI cache entry");
            }
        }
    }
    let _ = std::fs::remove_dir(old);
}

/// Resolves `program` as an executable file: a path containing `/` as it is, a bare name
/// through the PATH environment variable.
pub(crate) fn find_executable(program: &Path) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let is_executable = |path: &Path| {
        std::fs::metadata(path)
            .map(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
            .unwrap_or(false)
    };
    if program.components().count() > 1 || program.is_absolute() {
        return is_executable(program).then(|| program.to_owned());
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(program))
        .find(|candidate| is_executable(candidate))
}

/// The layer unpack limits of `[image]`.
fn unpack_limits(image: &berth_config::ImageConfig) -> berth_image::unpack::Limits {
    berth_image::unpack::Limits {
        max_entries: image.max_layer_entries,
        max_total_bytes: image.max_layer_bytes,
        max_file_bytes: image.max_file_bytes,
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configured_unpack_limits_default_to_the_unpackers_own() {
        let config = Config::embedded().unwrap();
        assert_eq!(
            unpack_limits(&config.image),
            berth_image::unpack::Limits::default()
        );
    }

    #[test]
    fn executables_are_found_by_path_or_name() {
        assert_eq!(
            find_executable(Path::new("/bin/sh")),
            Some(PathBuf::from("/bin/sh"))
        );
        assert!(find_executable(Path::new("sh")).is_some());
        let dir = tempfile::tempdir().unwrap();
        let plain = dir.path().join("data");
        std::fs::write(&plain, "not a program").unwrap();
        assert_eq!(find_executable(&plain), None);
        assert_eq!(find_executable(dir.path()), None);
        assert_eq!(find_executable(Path::new("no-such-program-berth")), None);
    }
}
