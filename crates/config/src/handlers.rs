//! Runtime handlers (`[runtime.handlers.<name>]`): the OCI runtimes a pod can choose with
//! RunPodSandbox's `runtime_handler` (Kubernetes' RuntimeClass `handler`).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::{Config, ConfigError, RuntimeConfig};

/// Longest handler name: RuntimeClass handlers are DNS labels.
const MAX_NAME: usize = 63;

/// `[runtime.handlers.<name>]`: every key optional.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HandlerConfig {
    /// The runtime binary (runc-compatible command line): an absolute path or a name found
    /// in PATH. Unset: `runtime.runc_path` for the default handler when that is set, else
    /// the handler's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<PathBuf>,
    /// The runtime's state directory (its `--root`). Unset: `<state>/runtimes/<name>`
    /// (`<state>/runc` for `runc`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub root: Option<PathBuf>,
    /// Whether the runtime gets `--systemd-cgroup`. Unset: when the systemd cgroup driver
    /// is in use.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub systemd_cgroup: Option<bool>,
}

/// A configured handler with its defaults filled in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handler {
    /// Its name (what RuntimeClass `handler` names).
    pub name: String,
    /// Whether pods that name no handler get this one.
    pub default: bool,
    /// The binary: an absolute path, or a name to look up in PATH.
    pub path: PathBuf,
    /// The runtime's `--root`.
    pub root: PathBuf,
    /// `--systemd-cgroup`: `None` follows the cgroup driver.
    pub systemd_cgroup: Option<bool>,
}

impl Config {
    /// Every handler, sorted by name; the default handler is among them even without a
    /// table of its own.
    pub fn handlers(&self) -> Vec<Handler> {
        let runtime = &self.runtime;
        let mut names: Vec<&String> = runtime.handlers.keys().collect();
        if !runtime.handlers.contains_key(&runtime.default_handler) {
            names.push(&runtime.default_handler);
            names.sort();
        }
        names
            .into_iter()
            .map(|name| {
                let table = runtime.handlers.get(name).cloned().unwrap_or_default();
                let default = *name == runtime.default_handler;
                let path = match table.path {
                    Some(path) => path,
                    None if default && !runtime.runc_path.as_os_str().is_empty() => {
                        runtime.runc_path.clone()
                    }
                    None => PathBuf::from(name),
                };
                Handler {
                    name: name.clone(),
                    default,
                    path,
                    root: table.root.unwrap_or_else(|| self.default_root(name)),
                    systemd_cgroup: table.systemd_cgroup,
                }
            })
            .collect()
    }
}

impl Config {
    /// The `--root` of handler `name` when its table sets none: `<state>/runtimes/<name>`,
    /// except `<state>/runc` for `runc`, where berth kept runc's state before handlers
    /// existed (so containers started by an older berthd are still found after an upgrade).
    fn default_root(&self, name: &str) -> PathBuf {
        if name == LEGACY_HANDLER {
            self.state.join("runc")
        } else {
            self.state.join("runtimes").join(name)
        }
    }
}

/// The handler every container had before handlers existed: records naming no handler were
/// made by it.
pub const LEGACY_HANDLER: &str = "runc";

/// Whether `name` can name a handler: a DNS label (lowercase letters, digits and `-`, not
/// at either end, at most 63 bytes), as RuntimeClass requires; it also names a directory.
pub fn valid_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= MAX_NAME
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
        && bytes.first() != Some(&b'-')
        && bytes.last() != Some(&b'-')
}

/// Checks the handler keys; `bad` builds the error for a dotted key.
pub(crate) fn validate(
    runtime: &RuntimeConfig,
    bad: impl Fn(&str, String) -> ConfigError,
) -> Result<(), ConfigError> {
    let not_a_label = "is not a valid handler name (a DNS label: lowercase letters, digits and \
                       '-', at most 63 bytes)";
    if !valid_name(&runtime.default_handler) {
        return Err(bad(
            "runtime.default_handler",
            format!("{:?} {not_a_label}", runtime.default_handler),
        ));
    }
    for (name, table) in &runtime.handlers {
        let key = |field: &str| format!("runtime.handlers.{name}{field}");
        if !valid_name(name) {
            return Err(bad(&key(""), format!("{name:?} {not_a_label}")));
        }
        if table
            .path
            .as_ref()
            .is_some_and(|path| path.as_os_str().is_empty())
        {
            return Err(bad(&key(".path"), "is empty".into()));
        }
        if let Some(root) = table.root.as_ref().filter(|root| !root.is_absolute()) {
            return Err(bad(
                &key(".root"),
                format!("{} is not an absolute path", root.display()),
            ));
        }
        if *name == runtime.default_handler
            && table.path.is_some()
            && !runtime.runc_path.as_os_str().is_empty()
        {
            return Err(bad(
                &key(".path"),
                format!(
                    "runtime.runc_path ({}) also sets the binary of the default handler; set \
                     one of them",
                    runtime.runc_path.display()
                ),
            ));
        }
    }
    Ok(())
}
