//! Attaching a pod to the network and detaching it: the CNI ADD/DEL chains (spec 1.0).
//!
//! `setup` runs the `loopback` plugin for `lo`, then each plugin of the network's list
//! with ADD, chaining each result into the next plugin's `prevResult`. Before the first
//! ADD it writes the attachment cache (`<cache_dir>/<id>.json`, see `cache.rs`) with
//! everything ADD uses; after the last ADD it adds the result.
//!
//! Rollback: when an ADD fails, DEL runs for that plugin and every plugin before it, in
//! reverse order, then for `loopback`; if every DEL succeeds the cache file is removed,
//! otherwise it is kept so a later `teardown` retries. The ADD error is returned.
//!
//! `teardown` runs from the cache only (never the current config dir): DEL in reverse
//! chain order with the cached result as `prevResult` (spec >= 0.4.0), then `loopback`.
//! No cache file means nothing is attached: Ok. A failing DEL does not stop the others;
//! the first error is returned and the cache is kept for a retry; on success the cache
//! is removed. When the pod's netns is gone `CNI_NETNS` is empty: plugins still release
//! IPAM allocations, but some (bridge's `ipMasq` rule) need the netns to find what to
//! remove, so tear down *before* unpinning the netns.
//!
//! Both block (they run processes): call them from a blocking thread, one call per
//! sandbox id at a time (the caller's per-sandbox lock).

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use serde_json::Value;

use super::cache::{self, CachedAttachment, CACHE_FORMAT};
use super::conf::load_network;
use super::error::CniError;
use super::invoke::{CniCommand, Invocation, Runner};
use super::plugin_input::{
    del_takes_prev_result, loopback_input, plugin_input, runtime_config, PortMapping,
    LOOPBACK_PLUGIN,
};
use super::pod_cidr::PodCidr;
use super::readiness::find_plugin;
use super::result::result_ips;

/// How long one plugin execution may take by default.
pub const DEFAULT_PLUGIN_TIMEOUT: Duration = Duration::from_secs(60);

/// Longest network interface name (`IFNAMSIZ` - 1).
const IFNAME_MAX: usize = 15;

/// Longest sandbox id accepted (it names the cache file).
const ID_MAX: usize = 255;

/// CNI for berth: where configurations, plugins and the attachment cache live.
#[derive(Debug, Clone)]
pub struct Cni {
    conf_dir: PathBuf,
    bin_dirs: Vec<PathBuf>,
    cache_dir: PathBuf,
    plugin_timeout: Duration,
    /// The node's pod CIDRs, for the built-in network (shared by clones).
    pod_cidrs: Arc<RwLock<Vec<PodCidr>>>,
}

/// A pod to attach.
#[derive(Debug, Clone)]
pub struct Attachment<'a> {
    /// The sandbox id (`CNI_CONTAINERID`, the cache file's name).
    pub id: &'a str,
    /// The pod's network namespace (its pin).
    pub netns: &'a Path,
    /// The pod's interface name, usually `eth0`.
    pub ifname: &'a str,
    /// Pod name (`K8S_POD_NAME`).
    pub pod_name: &'a str,
    /// Pod namespace (`K8S_POD_NAMESPACE`).
    pub pod_namespace: &'a str,
    /// Pod UID (`K8S_POD_UID`).
    pub pod_uid: &'a str,
    /// Host ports to forward (the `portMappings` capability).
    pub port_mappings: Vec<PortMapping>,
}

/// What a pod got from the network.
#[derive(Debug, Clone, PartialEq)]
pub struct NetworkStatus {
    /// The network's name.
    pub network: String,
    /// The pod's interface.
    pub interface: String,
    /// The pod's IPs, primary first: IPv4 before IPv6.
    pub ips: Vec<IpAddr>,
    /// The chain's result as the last plugin printed it.
    pub raw_result: Value,
}

impl Cni {
    /// CNI with configurations from `conf_dir`, plugins from `bin_dirs` and the
    /// attachment cache in `cache_dir` (e.g. `<state>/cni-cache`).
    pub fn new(
        conf_dir: impl Into<PathBuf>,
        bin_dirs: Vec<PathBuf>,
        cache_dir: impl Into<PathBuf>,
    ) -> Cni {
        Cni {
            conf_dir: conf_dir.into(),
            bin_dirs,
            cache_dir: cache_dir.into(),
            plugin_timeout: DEFAULT_PLUGIN_TIMEOUT,
            pod_cidrs: Arc::default(),
        }
    }

    /// Sets the node's pod CIDRs: pods attached from now on to the built-in network get
    /// their addresses from them.
    pub fn set_pod_cidrs(&self, cidrs: Vec<PodCidr>) {
        *self.pod_cidrs.write().unwrap_or_else(|e| e.into_inner()) = cidrs;
    }

    /// The node's pod CIDRs (empty until set).
    pub fn pod_cidrs(&self) -> Vec<PodCidr> {
        self.pod_cidrs
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Sets the time limit of one plugin execution.
    pub fn with_plugin_timeout(mut self, timeout: Duration) -> Cni {
        self.plugin_timeout = timeout;
        self
    }

    /// Attaches the pod: loopback, then the network's chain. On failure nothing is left
    /// attached (see the module docs for the rollback rules).
    pub fn setup(&self, att: &Attachment<'_>) -> Result<NetworkStatus, CniError> {
        validate_id(att.id)?;
        validate_ifname(att.ifname)?;
        for (field, value) in [
            ("pod_name", att.pod_name),
            ("pod_namespace", att.pod_namespace),
            ("pod_uid", att.pod_uid),
        ] {
            validate_arg(field, value)?;
        }
        let (_, network) = load_network(&self.conf_dir, &self.pod_cidrs())?;
        // Missing plugins are found before anything runs (a DEL of them could not run).
        let missing = std::iter::once(LOOPBACK_PLUGIN)
            .chain(network.plugin_types())
            .find(|t| find_plugin(t, &self.bin_dirs).is_none());
        if let Some(missing) = missing {
            return Err(CniError::PluginNotFound {
                network: network.name.clone(),
                plugin: missing.to_owned(),
                bin_dirs: self.runner().cni_path(),
            });
        }
        if cache::read(&self.cache_dir, att.id)?.is_some() {
            return Err(CniError::AlreadyAttached {
                id: att.id.to_owned(),
                cache: cache::path(&self.cache_dir, att.id),
            });
        }
        let mut entry = CachedAttachment {
            format: CACHE_FORMAT,
            id: att.id.to_owned(),
            network,
            ifname: att.ifname.to_owned(),
            netns: att.netns.to_owned(),
            cni_args: format!(
                "IgnoreUnknown=1;K8S_POD_NAMESPACE={};K8S_POD_NAME={};K8S_POD_INFRA_CONTAINER_ID={};K8S_POD_UID={}",
                att.pod_namespace, att.pod_name, att.id, att.pod_uid
            ),
            runtime_config: runtime_config(&att.port_mappings),
            result: None,
        };
        cache::write(&self.cache_dir, &entry)?;

        let runner = self.runner();
        let netns = Some(att.netns);
        if let Err(err) = runner.run(loopback(&entry, CniCommand::Add, netns)) {
            self.roll_back(&entry, 0, None);
            return Err(err);
        }
        let mut prev: Option<Value> = None;
        for (index, plugin) in entry.network.plugins.iter().enumerate() {
            let add = chain_link(&entry, plugin, CniCommand::Add, netns, prev.as_ref());
            match runner.run(add) {
                Ok(result) => prev = result,
                Err(err) => {
                    self.roll_back(&entry, index + 1, prev.as_ref());
                    return Err(err);
                }
            }
        }
        let all = entry.network.plugins.len();
        let status = match prev.as_ref() {
            Some(result) => status_of(&entry, result),
            // Not reached: a loaded list has a plugin and a successful ADD a result.
            None => Err(CniError::ResultInvalid {
                network: entry.network.name.clone(),
                reason: "the chain produced no result",
                value: String::new(),
            }),
        };
        let status = match status {
            Ok(status) => status,
            Err(err) => {
                self.roll_back(&entry, all, prev.as_ref());
                return Err(err);
            }
        };
        entry.result = prev;
        if let Err(err) = cache::write(&self.cache_dir, &entry) {
            self.roll_back(&entry, all, entry.result.as_ref());
            return Err(err);
        }
        Ok(status)
    }

    /// Detaches the sandbox `id` using its cache: DEL in reverse order, then loopback.
    /// `netns` is the pod's netns pin if it still exists; a missing or unmounted pin is
    /// passed as an empty `CNI_NETNS`. Idempotent: without a cache file, Ok.
    pub fn teardown(&self, id: &str, netns: Option<&Path>) -> Result<(), CniError> {
        validate_id(id)?;
        let Some(entry) = cache::read(&self.cache_dir, id)? else {
            return Ok(());
        };
        let netns = netns.filter(|path| crate::ns::is_pinned(path));
        let all = entry.network.plugins.len();
        match self.delete(&entry, all, netns, entry.result.as_ref()) {
            Some(err) => Err(err),
            None => cache::remove(&self.cache_dir, id),
        }
    }

    /// Forgets the sandbox `id` after one more teardown attempt: for a sandbox that will
    /// never exist (its creation failed and its netns is going away), so nothing would retry
    /// a DEL that failed. Returns that last teardown's error, if any; the cache is gone
    /// either way.
    pub fn abandon(&self, id: &str, netns: Option<&Path>) -> Result<(), CniError> {
        let result = self.teardown(id, netns);
        cache::remove(&self.cache_dir, id)?;
        result
    }

    /// The status cached for the sandbox `id` by a completed [`Cni::setup`], e.g. to
    /// answer `PodSandboxStatus` after a restart; `None` when not attached.
    pub fn cached_status(&self, id: &str) -> Result<Option<NetworkStatus>, CniError> {
        validate_id(id)?;
        let Some(entry) = cache::read(&self.cache_dir, id)? else {
            return Ok(None);
        };
        entry
            .result
            .as_ref()
            .map(|result| status_of(&entry, result))
            .transpose()
    }

    fn runner(&self) -> Runner<'_> {
        Runner {
            bin_dirs: &self.bin_dirs,
            timeout: self.plugin_timeout,
        }
    }

    /// Undoes a partial setup: DEL for the first `added` plugins (reverse) and loopback.
    fn roll_back(&self, entry: &CachedAttachment, added: usize, prev: Option<&Value>) {
        match self.delete(entry, added, Some(&entry.netns), prev) {
            None => {
                if let Err(err) = cache::remove(&self.cache_dir, &entry.id) {
                    tracing::warn!(id = %entry.id, error = %err, "CNI rollback: cannot remove the cache");
                }
            }
            Some(err) => {
                tracing::warn!(id = %entry.id, error = %err, "CNI rollback failed; cache kept for teardown");
            }
        }
    }

    /// DEL for the first `count` plugins in reverse order, then loopback; every DEL
    /// runs, the first error is returned.
    fn delete(
        &self,
        entry: &CachedAttachment,
        count: usize,
        netns: Option<&Path>,
        result: Option<&Value>,
    ) -> Option<CniError> {
        let runner = self.runner();
        let prev = result.filter(|_| del_takes_prev_result(&entry.network.cni_version));
        let mut first_err = None;
        let dels = entry.network.plugins[..count]
            .iter()
            .rev()
            .map(|plugin| chain_link(entry, plugin, CniCommand::Del, netns, prev))
            .chain(std::iter::once(loopback(entry, CniCommand::Del, netns)));
        for del in dels {
            if let Err(err) = runner.run(del) {
                tracing::warn!(id = %entry.id, error = %err, "CNI DEL failed");
                first_err.get_or_insert(err);
            }
        }
        first_err
    }
}

fn chain_link<'a>(
    entry: &'a CachedAttachment,
    plugin: &'a Value,
    command: CniCommand,
    netns: Option<&'a Path>,
    prev: Option<&Value>,
) -> Invocation<'a> {
    Invocation {
        network: &entry.network.name,
        plugin: plugin
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or_default(),
        command,
        container_id: &entry.id,
        netns,
        ifname: &entry.ifname,
        args: &entry.cni_args,
        stdin: plugin_input(&entry.network, plugin, prev, &entry.runtime_config),
    }
}

fn loopback<'a>(
    entry: &'a CachedAttachment,
    command: CniCommand,
    netns: Option<&'a Path>,
) -> Invocation<'a> {
    Invocation {
        network: &entry.network.name,
        plugin: LOOPBACK_PLUGIN,
        command,
        container_id: &entry.id,
        netns,
        ifname: "lo",
        args: &entry.cni_args,
        stdin: loopback_input(&entry.network.cni_version),
    }
}

fn status_of(entry: &CachedAttachment, result: &Value) -> Result<NetworkStatus, CniError> {
    Ok(NetworkStatus {
        network: entry.network.name.clone(),
        interface: entry.ifname.clone(),
        ips: result_ips(&entry.network.name, result)?,
        raw_result: result.clone(),
    })
}

fn validate_id(id: &str) -> Result<(), CniError> {
    let refuse = |reason| CniError::InvalidAttachment {
        field: "id",
        value: id.to_owned(),
        reason,
    };
    if id.is_empty() || id.len() > ID_MAX {
        return Err(refuse("must be 1 to 255 bytes"));
    }
    let mut chars = id.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric());
    if !first_ok || !chars.all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c)) {
        return Err(refuse("must be [A-Za-z0-9][A-Za-z0-9_.-]*"));
    }
    Ok(())
}

fn validate_ifname(ifname: &str) -> Result<(), CniError> {
    let bad = ifname.is_empty()
        || ifname.len() > IFNAME_MAX
        || ifname == "."
        || ifname == ".."
        || ifname
            .chars()
            .any(|c| c == '/' || c == ':' || c.is_whitespace() || c.is_control());
    if bad {
        return Err(CniError::InvalidAttachment {
            field: "ifname",
            value: ifname.to_owned(),
            reason: "must be 1 to 15 bytes without `/`, `:` or whitespace",
        });
    }
    Ok(())
}

/// Values inside `CNI_ARGS` cannot hold its separators.
fn validate_arg(field: &'static str, value: &str) -> Result<(), CniError> {
    if value.contains([';', '=', '\0']) {
        return Err(CniError::InvalidAttachment {
            field,
            value: value.to_owned(),
            reason: "must not contain `;`, `=` or NUL",
        });
    }
    Ok(())
}
