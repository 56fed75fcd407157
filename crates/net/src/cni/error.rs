//! Errors of CNI configuration loading, plugin execution and the attachment cache.

use std::path::PathBuf;
use std::process::ExitStatus;
use std::time::Duration;

use super::invoke::CniCommand;

/// Why pod networking cannot be configured, set up or torn down.
#[derive(Debug, thiserror::Error)]
pub enum CniError {
    /// The configuration directory cannot be listed.
    #[error("cannot read CNI config dir {}: {source}", dir.display())]
    ReadDir {
        /// The directory.
        dir: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A configuration file cannot be read.
    #[error("cannot read CNI config {}: {source}", path.display())]
    ReadFile {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A configuration file is not valid network configuration JSON.
    #[error("invalid CNI config {}: {source}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// The JSON error.
        source: serde_json::Error,
    },
    /// A configuration has no plugins, or a plugin lacks a `type`.
    #[error("invalid CNI config {}: {reason}", origin.display())]
    Shape {
        /// The file, or `<built-in>`.
        origin: PathBuf,
        /// What is missing.
        reason: &'static str,
    },
    /// An attachment field cannot be passed to plugins.
    #[error("invalid CNI {field} {value:?}: {reason}")]
    InvalidAttachment {
        /// Which field (`id`, `ifname`, `pod_name`, ...).
        field: &'static str,
        /// Its value.
        value: String,
        /// Why not.
        reason: &'static str,
    },
    /// The sandbox is attached already (its cache file exists).
    #[error("sandbox {id} is already attached to a network (cache {})", cache.display())]
    AlreadyAttached {
        /// The sandbox id.
        id: String,
        /// The cache file.
        cache: PathBuf,
    },
    /// No executable plugin of that type is in the plugin directories.
    #[error("CNI plugin {plugin:?} of network {network:?} not found in {bin_dirs}")]
    PluginNotFound {
        /// Network name.
        network: String,
        /// Plugin type.
        plugin: String,
        /// The plugin directories, `:`-joined.
        bin_dirs: String,
    },
    /// The plugin could not be started or waited for.
    #[error("cannot run CNI plugin {} of network {network:?}: {source}", path.display())]
    PluginSpawn {
        /// Network name.
        network: String,
        /// The plugin binary.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The plugin did not finish in time and was killed.
    #[error("CNI plugin {plugin:?} of network {network:?} timed out on {command} after {timeout:?} and was killed")]
    PluginTimeout {
        /// Network name.
        network: String,
        /// Plugin type.
        plugin: String,
        /// ADD or DEL.
        command: CniCommand,
        /// The time limit.
        timeout: Duration,
    },
    /// The plugin failed; `code`, `msg` and `details` come from its error JSON when it
    /// printed one (spec 1.0 "Error" result), else `msg` is its stderr.
    #[error(
        "CNI plugin {plugin:?} of network {network:?} failed on {command} ({status}{}): {msg}{}",
        code.map(|c| format!(", code {c}")).unwrap_or_default(),
        if details.is_empty() { String::new() } else { format!(" ({details})") }
    )]
    PluginFailed {
        /// Network name.
        network: String,
        /// Plugin type.
        plugin: String,
        /// ADD or DEL.
        command: CniCommand,
        /// The plugin's exit status.
        status: ExitStatus,
        /// The spec's error code, when given.
        code: Option<u32>,
        /// The error message.
        msg: String,
        /// The error details (may be empty).
        details: String,
    },
    /// The plugin succeeded but its result is not valid JSON.
    #[error("CNI plugin {plugin:?} of network {network:?} printed an invalid {command} result: {source}")]
    PluginOutput {
        /// Network name.
        network: String,
        /// Plugin type.
        plugin: String,
        /// ADD or DEL.
        command: CniCommand,
        /// The JSON error.
        source: serde_json::Error,
    },
    /// The chain's final result does not have the spec's shape.
    #[error("invalid CNI result of network {network:?}: {reason}: {value:?}")]
    ResultInvalid {
        /// Network name.
        network: String,
        /// What is wrong.
        reason: &'static str,
        /// The offending value.
        value: String,
    },
    /// The attachment cache cannot be written.
    #[error("cannot write CNI cache {}: {source}", path.display())]
    CacheWrite {
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The attachment cache cannot be read.
    #[error("cannot read CNI cache {}: {source}", path.display())]
    CacheRead {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The attachment cache is not valid.
    #[error("invalid CNI cache {}: {source}", path.display())]
    CacheParse {
        /// The file.
        path: PathBuf,
        /// The JSON error.
        source: serde_json::Error,
    },
    /// The attachment cache cannot be removed.
    #[error("cannot remove CNI cache {}: {source}", path.display())]
    CacheRemove {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}
