//! Runtime handlers (Kubernetes RuntimeClass): the OCI runtimes configured under
//! `[runtime.handlers.<name>]`, what each supports, and which one a pod or container uses.
//!
//! RunPodSandbox's `runtime_handler` chooses one (empty: the default handler); the sandbox
//! record keeps the resolved name (`SandboxRecord::handler`) and each container record a
//! copy, so every runtime command of a container, from berthd or its shim, and the recovery
//! after a restart use the same binary and root.

use std::path::PathBuf;

use berth_cgroups::CgroupDriver;
use berth_config::Config;

use crate::container::runc::Runc;
use crate::daemon::find_executable;
use crate::error::ServiceError;

/// A configured handler as berthd uses it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeHandler {
    /// Its name (RuntimeClass `handler`).
    pub name: String,
    /// Whether pods that name no handler get it.
    pub default: bool,
    /// The binary as configured: an absolute path or a name looked up in PATH.
    pub path: PathBuf,
    /// Its `--root`.
    pub root: PathBuf,
    /// Whether it gets `--systemd-cgroup`.
    pub systemd_cgroup: bool,
    /// Recursive read-only mounts (`rro`) work: they need mount_setattr(2), Linux 5.12.
    pub recursive_read_only: bool,
    /// Pods can have user namespaces (berth sets them up; the runtime joins them).
    pub user_namespaces: bool,
}

impl RuntimeHandler {
    /// The binary, resolved through PATH; `None` when it is not an executable file.
    pub fn binary(&self) -> Option<PathBuf> {
        find_executable(&self.path)
    }

    /// The runtime client, or FailedPrecondition when the binary is missing.
    pub fn runc(&self) -> Result<Runc, ServiceError> {
        let binary = self
            .binary()
            .ok_or_else(|| ServiceError::FailedPrecondition {
                what: format!(
                    "OCI runtime {} of runtime handler {:?} is not an executable file",
                    self.path.display(),
                    self.name
                ),
            })?;
        Ok(Runc {
            binary,
            root: self.root.clone(),
            systemd_cgroup: self.systemd_cgroup,
        })
    }
}

/// Every configured handler, sorted by name.
#[derive(Debug, Clone)]
pub struct Handlers(Vec<RuntimeHandler>);

impl Handlers {
    /// The handlers of `config`, with the cgroup driver in use and what the host supports.
    pub fn new(config: &Config, driver: CgroupDriver, host: &berth_oci::HostFeatures) -> Self {
        let handlers = config
            .handlers()
            .into_iter()
            .map(|h| {
                let systemd_cgroup = h.systemd_cgroup.unwrap_or(driver == CgroupDriver::Systemd);
                if systemd_cgroup != (driver == CgroupDriver::Systemd) {
                    tracing::warn!(
                        handler = %h.name,
                        systemd_cgroup,
                        cgroup_driver = driver.name(),
                        "runtime handler's systemd_cgroup disagrees with the cgroup driver: its \
                         containers' cgroup paths are made for the driver"
                    );
                }
                RuntimeHandler {
                    name: h.name,
                    default: h.default,
                    path: h.path,
                    root: h.root,
                    systemd_cgroup,
                    recursive_read_only: host.kernel.is_some_and(|version| version >= (5, 12)),
                    user_namespaces: host.user_namespaces,
                }
            })
            .collect();
        Handlers(handlers)
    }

    /// Every handler, sorted by name.
    pub fn all(&self) -> &[RuntimeHandler] {
        &self.0
    }

    /// The default handler (the configuration always has one).
    pub fn default_handler(&self) -> &RuntimeHandler {
        self.0
            .iter()
            .find(|h| h.default)
            .unwrap_or_else(|| unreachable!("berth-config lists the default handler"))
    }

    /// The handler RunPodSandbox's `runtime_handler` names (empty: the default); an unknown
    /// one is InvalidArgument naming the configured handlers.
    pub fn requested(&self, name: &str) -> Result<&RuntimeHandler, ServiceError> {
        if name.is_empty() {
            return Ok(self.default_handler());
        }
        self.0
            .iter()
            .find(|h| h.name == name)
            .ok_or_else(|| ServiceError::Unsupported {
                field: "runtime_handler",
                reason: format!(
                    "runtime handler {:?} is not configured; configured: {} (empty for the \
                     default, {:?})",
                    berth_runtime::quote(name),
                    self.names(),
                    self.default_handler().name
                ),
            })
    }

    /// The handler a record names; one no longer configured is FailedPrecondition. Records
    /// older than handlers name none: runc made them (the handler named `runc`, if it is
    /// configured, else the default).
    pub fn recorded(&self, name: &str) -> Result<&RuntimeHandler, ServiceError> {
        if name.is_empty() {
            let legacy = self
                .0
                .iter()
                .find(|h| h.name == berth_config::LEGACY_HANDLER);
            return Ok(legacy.unwrap_or_else(|| self.default_handler()));
        }
        self.0
            .iter()
            .find(|h| h.name == name)
            .ok_or_else(|| ServiceError::FailedPrecondition {
                what: format!(
                    "runtime handler {name:?} is no longer configured (configured: {}); \
                     configure it again to manage its pods",
                    self.names()
                ),
            })
    }

    /// The configured names, quoted, comma-separated.
    fn names(&self) -> String {
        let names: Vec<String> = self.0.iter().map(|h| format!("{:?}", h.name)).collect();
        names.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn handlers(toml: &str, driver: CgroupDriver) -> Handlers {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        file.write_all(toml.as_bytes()).unwrap();
        let overrides = berth_config::Overrides {
            config_dir: Some("/nonexistent/berth.d".into()),
            ..Default::default()
        };
        let config = Config::load(Some(file.path()), &overrides).unwrap();
        let host = berth_oci::HostFeatures {
            kernel: Some((6, 1)),
            user_namespaces: true,
            ..Default::default()
        };
        Handlers::new(&config, driver, &host)
    }

    #[test]
    fn requested_and_recorded_handlers_resolve_or_are_refused() {
        let h = handlers(
            "[runtime.handlers.crun]\nsystemd_cgroup = false\n",
            CgroupDriver::Systemd,
        );
        assert_eq!(h.all().len(), 2);
        assert_eq!(h.requested("").unwrap().name, "runc");
        assert!(h.requested("").unwrap().systemd_cgroup);
        let crun = h.requested("crun").unwrap();
        assert!(!crun.systemd_cgroup);
        assert!(crun.recursive_read_only && crun.user_namespaces);
        assert_eq!(crun.root, PathBuf::from("/run/berth/runtimes/crun"));

        let err = h.requested("kata\n").unwrap_err();
        assert_eq!(err.code(), tonic::Code::InvalidArgument);
        let message = err.to_string();
        assert!(message.contains(r#""kata\n""#), "{message}");
        assert!(message.contains(r#""crun", "runc""#), "{message}");

        assert_eq!(h.recorded("").unwrap().name, "runc");
        assert_eq!(h.recorded("crun").unwrap().name, "crun");
        let err = h.recorded("gone").unwrap_err();
        assert_eq!(err.code(), tonic::Code::FailedPrecondition);
    }

    #[test]
    fn a_missing_binary_is_a_failed_precondition() {
        let h = handlers(
            "[runtime.handlers.none]\npath = \"/nonexistent/bin/none\"\n\
             [runtime.handlers.sh]\npath = \"sh\"\n",
            CgroupDriver::Cgroupfs,
        );
        let err = h.requested("none").unwrap().runc().unwrap_err();
        assert_eq!(err.code(), tonic::Code::FailedPrecondition);
        assert!(err.to_string().contains("/nonexistent/bin/none"), "{err}");
        let runc = h.requested("sh").unwrap().runc().unwrap();
        assert!(runc.binary.is_absolute());
        assert!(!runc.systemd_cgroup);
    }
}
