//! berthd configuration.
//!
//! Three layers, each overriding the one before: the embedded default
//! (`config/berth.toml`, compiled in), an optional TOML file (`--config`), and command-line
//! flags ([`Overrides`]). The file may set any subset of keys; tables merge key by key.
//! Unknown keys and values of the wrong type are errors that name the dotted key and the file.

#![deny(unsafe_code)]

mod error;
mod merge;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use error::ConfigError;

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
    /// runc binary: absolute path or a name found in PATH.
    pub runc_path: PathBuf,
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
}

impl Config {
    /// The embedded default configuration.
    pub fn embedded() -> Result<Config, ConfigError> {
        Self::parse(None, "")
    }

    /// Loads the configuration: the embedded default, then `file` if given, then `overrides`.
    pub fn load(file: Option<&Path>, overrides: &Overrides) -> Result<Config, ConfigError> {
        let mut config = match file {
            None => Self::embedded()?,
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.to_owned(),
                    source,
                })?;
                Self::parse(Some(path), &text)?
            }
        };
        config.apply(overrides);
        config.validate(file)?;
        Ok(config)
    }

    /// Parses `text` (the contents of `file`, if any) over the embedded default.
    fn parse(file: Option<&Path>, text: &str) -> Result<Config, ConfigError> {
        let origin = file.map(Path::to_owned);
        let mut merged: toml::Table =
            toml::from_str(EMBEDDED_DEFAULT).map_err(|source| ConfigError::Syntax {
                origin: None,
                source: Box::new(source),
            })?;
        let overlay: toml::Table = toml::from_str(text).map_err(|source| ConfigError::Syntax {
            origin: origin.clone(),
            source: Box::new(source),
        })?;
        merge::merge_tables(&mut merged, overlay);
        serde_path_to_error::deserialize(toml::Value::Table(merged)).map_err(|err| {
            ConfigError::Invalid {
                origin,
                key: err.path().to_string(),
                reason: without_location(&err.inner().to_string()),
            }
        })
    }

    fn apply(&mut self, overrides: &Overrides) {
        if let Some(root) = &overrides.root {
            self.root = root.clone();
        }
        if let Some(state) = &overrides.state {
            self.state = state.clone();
        }
        if let Some(listen) = &overrides.listen {
            self.listen = listen.clone();
        }
        if let Some(level) = &overrides.log_level {
            self.log_level = level.clone();
        }
    }

    /// Checks what types alone cannot: absolute paths, a socket path that fits, non-empty lists.
    fn validate(&self, file: Option<&Path>) -> Result<(), ConfigError> {
        let bad = |key: &str, reason: String| ConfigError::Value {
            origin: file.map(Path::to_owned),
            key: key.to_owned(),
            reason,
        };
        for (key, path) in [
            ("root", &self.root),
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
        if self.runtime.runc_path.as_os_str().is_empty() {
            return Err(bad("runtime.runc_path", "is empty".into()));
        }
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
