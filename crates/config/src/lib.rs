//! berthd configuration.
//!
//! Layers, each overriding the ones before: the embedded default (`config/berth.toml`,
//! compiled in), an optional TOML file (`--config`), every `*.toml` file of the drop-in
//! directory (`config_dir`, `--config-dir`) in lexical order, and command-line flags
//! ([`Overrides`]). A file may set any subset of keys; tables merge key by key. Unknown keys
//! and values of the wrong type are errors that name the dotted key and the file that set it.

#![deny(unsafe_code)]

mod error;
mod handlers;
mod layers;
mod merge;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use error::{ConfigError, Source};
pub use handlers::{Handler, HandlerConfig, LEGACY_HANDLER};

/// The default configuration, embedded from `config/berth.toml`.
pub const EMBEDDED_DEFAULT: &str = include_str!("../../../config/berth.toml");

/// Longest Unix socket path the kernel accepts in `sockaddr_un.sun_path` (108 bytes with NUL).
const MAX_SOCKET_PATH: usize = 107;

/// The effective daemon configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Persistent data: metadata database, content store, snapshots.
    pub root: PathBuf,
    /// Volatile per-boot state: pinned namespaces, shim sockets, bundles.
    pub state: PathBuf,
    /// Unix socket path of the CRI gRPC server.
    pub listen: PathBuf,
    /// tracing filter directive.
    pub log_level: String,
    /// Drop-in directory: its `*.toml` files are merged, in lexical order, over `--config`.
    pub config_dir: PathBuf,
    /// Registry host configuration.
    pub registry: RegistryConfig,
    /// CNI network configuration.
    pub cni: CniConfig,
    /// OCI runtime settings.
    pub runtime: RuntimeConfig,
    /// Streaming server (Exec, Attach, PortForward).
    pub stream: StreamConfig,
    /// What image layers may contain.
    pub image: ImageConfig,
    /// Prometheus metrics endpoint.
    pub metrics: MetricsConfig,
}

/// `[image]`: limits on one layer, checked as it is unpacked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImageConfig {
    /// Bytes of one uncompressed layer (the tar stream, and the files it unpacks to).
    pub max_layer_bytes: u64,
    /// Entries (files, directories, links, whiteouts, ...) in one layer.
    pub max_layer_entries: u64,
    /// Bytes of one regular file in a layer.
    pub max_file_bytes: u64,
}

/// `[metrics]`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsConfig {
    /// `IP:PORT` serving `GET /metrics`; empty: no metrics endpoint.
    pub address: String,
}

impl MetricsConfig {
    /// The address to serve metrics on, `None` when they are off (validated at load).
    pub fn socket_addr(&self) -> Option<std::net::SocketAddr> {
        self.address.parse().ok()
    }
}

/// `[stream]`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamConfig {
    /// IP address the streaming server listens on.
    pub address: String,
    /// TCP port; 0 picks a free one at startup.
    pub port: u16,
    /// Seconds a streaming URL stays valid before its first (and only) use.
    pub token_ttl_seconds: u64,
    /// Streaming URLs issued and neither used nor expired, at most.
    pub max_pending_sessions: u64,
    /// Bytes those pending sessions may hold together (commands and bookkeeping).
    pub max_pending_bytes: u64,
}

/// `[registry]`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistryConfig {
    /// certs.d-style directory of `<host>/hosts.toml` files.
    pub config_path: PathBuf,
    /// Layers downloaded at once per pull.
    pub max_concurrent_downloads: u32,
    /// Seconds without data before a layer download fails.
    pub pull_progress_timeout_seconds: u64,
}

/// `[cni]`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CniConfig {
    /// Directory of network configurations.
    pub conf_dir: PathBuf,
    /// Plugin binary directories, searched in order.
    pub bin_dirs: Vec<PathBuf>,
}

/// `[runtime]`
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuntimeConfig {
    /// The default handler's binary (absolute path or a name found in PATH) when its
    /// `[runtime.handlers.<name>]` table sets no `path`; empty: unset.
    pub runc_path: PathBuf,
    /// The handler of pods whose RunPodSandbox names none.
    pub default_handler: String,
    /// `[runtime.handlers.<name>]`: the OCI runtimes pods can choose (RuntimeClass handlers).
    #[serde(default)]
    pub handlers: BTreeMap<String, HandlerConfig>,
    /// berth-shim binary; empty means beside berthd.
    pub shim_path: PathBuf,
    /// Which cgroup driver to use.
    pub cgroup_driver: CgroupDriverSetting,
    /// Whether a container's negative `oom_score_adj` is raised to berthd's own.
    pub restrict_oom_score_adj: RestrictOomScoreAdj,
    /// Drop hugepage limits when the host has no hugetlb cgroup controller (kubelet sends
    /// a limit of 0 for every page size it sees); `false` passes them on, and runc fails.
    pub tolerate_missing_hugetlb_controller: bool,
}

/// The `restrict_oom_score_adj` setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RestrictOomScoreAdj {
    /// Restrict when berthd may not lower oom_score_adj (no CAP_SYS_RESOURCE: in a
    /// container, in some VMs).
    Auto,
    /// Always raise a container's value to berthd's own.
    On,
    /// Pass the requested value to runc as it is.
    Off,
}

/// The `cgroup_driver` setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CgroupDriverSetting {
    /// Detect at startup: systemd when it is the init system, cgroupfs otherwise.
    Auto,
    /// Cgroups are systemd slices and scopes.
    Systemd,
    /// Cgroups are directories written directly under /sys/fs/cgroup.
    Cgroupfs,
}

/// Values given on the command line; `None` keeps the configured value.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// `--root`
    pub root: Option<PathBuf>,
    /// `--state`
    pub state: Option<PathBuf>,
    /// `--listen`
    pub listen: Option<PathBuf>,
    /// `--log-level`
    pub log_level: Option<String>,
    /// `--config-dir`
    pub config_dir: Option<PathBuf>,
}

/// A configuration and the files it was merged from.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The effective configuration.
    pub config: Config,
    /// The files merged over the embedded default, in order: `--config`, then the drop-ins.
    pub files: Vec<PathBuf>,
}

impl Config {
    /// The embedded default configuration.
    pub fn embedded() -> Result<Config, ConfigError> {
        Ok(layers::Layers::embedded()?.finish().0)
    }

    /// Loads the configuration: the embedded default, then `file` if given, then the
    /// drop-ins of the drop-in directory, then `overrides`.
    pub fn load(file: Option<&Path>, overrides: &Overrides) -> Result<Config, ConfigError> {
        Self::load_with_files(file, overrides).map(|loaded| loaded.config)
    }

    /// Like [`Config::load`], also naming the files merged.
    pub fn load_with_files(
        file: Option<&Path>,
        overrides: &Overrides,
    ) -> Result<Loaded, ConfigError> {
        let mut layers = layers::Layers::embedded()?;
        if let Some(path) = file {
            layers.add_file(path, false)?;
        }
        let dir = overrides
            .config_dir
            .clone()
            .unwrap_or_else(|| layers.config().config_dir.clone());
        if !dir.is_absolute() {
            let origin = match overrides.config_dir {
                Some(_) => Source::Flags,
                None => layers.origin_of("config_dir"),
            };
            return Err(ConfigError::Value {
                origin,
                key: "config_dir".into(),
                reason: format!("{} is not an absolute path", dir.display()),
            });
        }
        for path in layers::drop_ins(&dir)? {
            layers.add_file(&path, true)?;
        }
        let (mut config, mut origins, files) = layers.finish();
        config.config_dir = dir;
        config.apply(overrides, &mut origins);
        config.validate(&origins)?;
        Ok(Loaded { config, files })
    }

    fn apply(&mut self, overrides: &Overrides, origins: &mut layers::Origins) {
        let mut set = |key: &str, field: &mut PathBuf, value: &Option<PathBuf>| {
            if let Some(value) = value {
                *field = value.clone();
                origins.set(key, Source::Flags);
            }
        };
        set("root", &mut self.root, &overrides.root);
        set("state", &mut self.state, &overrides.state);
        set("listen", &mut self.listen, &overrides.listen);
        set("config_dir", &mut self.config_dir, &overrides.config_dir);
        if let Some(level) = &overrides.log_level {
            self.log_level = level.clone();
            origins.set("log_level", Source::Flags);
        }
    }

    /// Checks what types alone cannot: absolute paths, a socket path that fits, non-empty
    /// lists, handler names. An error names the layer that set the key last.
    fn validate(&self, origins: &layers::Origins) -> Result<(), ConfigError> {
        let bad = |key: &str, reason: String| ConfigError::Value {
            origin: origins.origin_of(key),
            key: key.to_owned(),
            reason,
        };
        for (key, path) in [
            ("root", &self.root),
            ("config_dir", &self.config_dir),
            ("state", &self.state),
            ("listen", &self.listen),
            ("registry.config_path", &self.registry.config_path),
            ("cni.conf_dir", &self.cni.conf_dir),
        ] {
            if !path.is_absolute() {
                return Err(bad(
                    key,
                    format!("{} is not an absolute path", path.display()),
                ));
            }
        }
        let socket_len = self.listen.as_os_str().len();
        if socket_len > MAX_SOCKET_PATH {
            return Err(bad(
                "listen",
                format!("socket path is {socket_len} bytes; the kernel allows at most {MAX_SOCKET_PATH}"),
            ));
        }
        if self.cni.bin_dirs.is_empty() {
            return Err(bad("cni.bin_dirs", "needs at least one directory".into()));
        }
        if let Some(dir) = self.cni.bin_dirs.iter().find(|dir| !dir.is_absolute()) {
            return Err(bad(
                "cni.bin_dirs",
                format!("{} is not an absolute path", dir.display()),
            ));
        }
        if self.registry.max_concurrent_downloads == 0 {
            return Err(bad(
                "registry.max_concurrent_downloads",
                "must be at least 1".into(),
            ));
        }
        if self.registry.pull_progress_timeout_seconds == 0 {
            return Err(bad(
                "registry.pull_progress_timeout_seconds",
                "must be at least 1".into(),
            ));
        }
        handlers::validate(&self.runtime, bad)?;
        if self.log_level.trim().is_empty() {
            return Err(bad("log_level", "is empty".into()));
        }
        if self.stream.address.parse::<std::net::IpAddr>().is_err() {
            return Err(bad(
                "stream.address",
                format!("{:?} is not an IP address", self.stream.address),
            ));
        }
        for (key, value) in [
            ("stream.token_ttl_seconds", self.stream.token_ttl_seconds),
            (
                "stream.max_pending_sessions",
                self.stream.max_pending_sessions,
            ),
            ("stream.max_pending_bytes", self.stream.max_pending_bytes),
            ("image.max_layer_bytes", self.image.max_layer_bytes),
            ("image.max_layer_entries", self.image.max_layer_entries),
            ("image.max_file_bytes", self.image.max_file_bytes),
        ] {
            if value == 0 {
                return Err(bad(key, "must be at least 1".into()));
            }
        }
        if !self.metrics.address.is_empty() {
            match self.metrics.address.parse::<std::net::SocketAddr>() {
                Ok(addr) if addr.port() != 0 => {}
                Ok(_) => return Err(bad("metrics.address", "needs a port other than 0".into())),
                Err(_) => {
                    return Err(bad(
                        "metrics.address",
                        format!(
                            "{:?} is not IP:PORT (or [IPv6]:PORT); empty turns metrics off",
                            self.metrics.address
                        ),
                    ))
                }
            }
        }
        Ok(())
    }

    /// The configuration as JSON, as reported by `Status(verbose)`.
    pub fn to_json(&self) -> serde_json::Value {
        // Every field is a string, path, list or enum: serialisation cannot fail.
        serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
    }
}

/// toml's value deserializer appends "\nin `table`" to its messages; the key is reported
/// separately, so that suffix is dropped.
fn without_location(message: &str) -> String {
    message
        .split("\nin `")
        .next()
        .unwrap_or(message)
        .trim_end()
        .to_owned()
}

#[cfg(test)]
mod tests;
