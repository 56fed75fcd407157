//! Helpers of the pod sandbox tests (`tests/it/pods.rs`).
//!
//! - [`TestNet`]: a CNI network of the test's own — bridge `bt<pid%10000><slot, 2 digits>`, subnet
//!   `10.232.<n>.0/24`, host-local `dataDir` inside the daemon's temporary directory, and
//!   portmap — written into the daemon's `cni.conf_dir`; never the built-in `berth0`
//!   (10.88.0.0/16), never `/var/lib/cni`.
//! - [`PodEnv`]: a berthd on such a network. Dropping it (also when a test panics) kills the
//!   daemon by its PID, unmounts whatever is still mounted below its temporary directory
//!   (namespace pins, shm tmpfs: the namespaces, and with them their veths, go away),
//!   deletes the test's bridge, and removes the iptables rules and chains of the test's
//!   network (and the shared `CNI-HOSTPORT-*` chains when they did not exist before).
//! - Host inspections: mounts, links on the bridge, host-local allocations, iptables rules,
//!   cgroups and processes that could be left by a pod.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::{json, Value};

use crate::{Berthd, Layout};

/// Where Debian's CNI plugins are.
pub const SYSTEM_CNI_BIN: &str = "/usr/lib/cni";

/// Shared chains the portmap plugin creates once per host and never removes.
const HOSTPORT_CHAINS: [&str; 3] = [
    "CNI-HOSTPORT-DNAT",
    "CNI-HOSTPORT-MASQ",
    "CNI-HOSTPORT-SETMARK",
];

/// iptables tables the CNI plugins of the test network write to.
const TABLES: [&str; 3] = ["nat", "filter", "mangle"];

/// Whether the tests run as root (pods need it).
pub fn is_root() -> bool {
    nix::unistd::Uid::effective().is_root()
}

/// Runs `program args...`; the output whatever the exit status.
pub fn output(program: &str, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("running {program}: {e}"))
}

/// Runs `program args...` and returns its stdout; panics with both outputs on failure.
pub fn stdout_of(program: &str, args: &[&str]) -> String {
    let out = output(program, args);
    assert!(
        out.status.success(),
        "{program} {} failed ({}):\n{}{}",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Mount points (with their filesystem type) at or below `dir`, from `/proc/self/mountinfo`
/// (berthd runs in the tests' mount namespace).
pub fn mounts_under(dir: &Path) -> Vec<(PathBuf, String)> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let prefix = dir.to_string_lossy().trim_end_matches('/').to_owned();
    text.lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split(' ').collect();
            let mount_point = unescape_mountinfo(fields.get(4)?);
            let dash = fields.iter().position(|f| *f == "-")?;
            let fstype = fields.get(dash + 1)?.to_string();
            (mount_point == prefix || mount_point.starts_with(&format!("{prefix}/")))
                .then(|| (PathBuf::from(mount_point), fstype))
        })
        .collect()
}

fn unescape_mountinfo(field: &str) -> String {
    // Octal escapes of space, tab, newline and backslash.
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && i + 4 <= bytes.len() {
            let digits = std::str::from_utf8(&bytes[i + 1..i + 4]).unwrap_or("x");
            if let Ok(v) = u8::from_str_radix(digits, 8) {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Unmounts (lazily, deepest first) everything mounted at or below `dir`; returns what it
/// unmounted.
pub fn unmount_all_under(dir: &Path) -> Vec<PathBuf> {
    let mut mounts: Vec<PathBuf> = mounts_under(dir).into_iter().map(|(m, _)| m).collect();
    mounts.sort();
    mounts.dedup();
    let mut done = Vec::new();
    for mount in mounts.into_iter().rev() {
        // Stacked mounts: peel until the path is no longer a mount point.
        for _ in 0..16 {
            match nix::mount::umount2(&mount, nix::mount::MntFlags::MNT_DETACH) {
                Ok(()) => done.push(mount.clone()),
                Err(_) => break,
            }
        }
    }
    done
}

/// Entry names of `dir`, sorted; empty when `dir` does not exist.
pub fn dir_entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .filter_map(Result::ok)
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect(),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(err) => panic!("listing {}: {err}", dir.display()),
    };
    names.sort();
    names
}

/// Directories below `/sys/fs/cgroup` whose name contains one of `ids`.
pub fn cgroups_mentioning(ids: &[String]) -> Vec<PathBuf> {
    fn walk(dir: &Path, depth: usize, ids: &[String], found: &mut Vec<PathBuf>) {
        if depth == 0 {
            return;
        }
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.filter_map(Result::ok) {
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            if !kind.is_dir() {
                continue;
            }
            let name = entry.file_name().to_string_lossy().into_owned();
            if ids.iter().any(|id| name.contains(id.as_str())) {
                found.push(entry.path());
            }
            walk(&entry.path(), depth - 1, ids, found);
        }
    }
    let mut found = Vec::new();
    if !ids.is_empty() {
        walk(Path::new("/sys/fs/cgroup"), 8, ids, &mut found);
    }
    found
}

/// The inode of the namespace a pin (or `/proc/<pid>/ns/<kind>`) refers to.
pub fn ns_inode(path: &Path) -> Option<u64> {
    std::fs::metadata(path).ok().map(|m| m.ino())
}

/// PIDs of processes whose network namespace is one of `inodes`.
pub fn processes_in_netns(inodes: &BTreeSet<u64>) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            ns_inode(&PathBuf::from(format!("/proc/{pid}/ns/net")))
                .is_some_and(|ino| inodes.contains(&ino))
        })
        .collect()
}

/// Splits one `iptables-save` line into arguments: whitespace-separated, with double
/// quotes grouping and `\"` / `\\` escapes inside them.
pub fn iptables_args(line: &str) -> Vec<String> {
    let mut args = Vec::new();
    let mut current = String::new();
    let mut in_arg = false;
    let mut quoted = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                quoted = !quoted;
                in_arg = true;
            }
            '\\' if quoted => {
                if let Some(next) = chars.next() {
                    current.push(next);
                }
            }
            c if c.is_whitespace() && !quoted => {
                if in_arg {
                    args.push(std::mem::take(&mut current));
                    in_arg = false;
                }
            }
            c => {
                current.push(c);
                in_arg = true;
            }
        }
    }
    if in_arg {
        args.push(current);
    }
    args
}

/// One table of `iptables-save`: chain declarations and `-A` rules.
struct Table {
    name: &'static str,
    chains: Vec<String>,
    rules: Vec<String>,
}

fn iptables_tables() -> Vec<Table> {
    TABLES
        .iter()
        .map(|&name| {
            let out = output("iptables-save", &["-t", name]);
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            let chains = text
                .lines()
                .filter_map(|l| l.strip_prefix(':'))
                .filter_map(|l| l.split_whitespace().next())
                .map(str::to_owned)
                .collect();
            let rules = text
                .lines()
                .filter(|l| l.starts_with("-A "))
                .map(str::to_owned)
                .collect();
            Table {
                name,
                chains,
                rules,
            }
        })
        .collect()
}

/// Every line of `iptables-save` (all tables) containing `needle`.
pub fn iptables_lines_containing(needle: &str) -> Vec<String> {
    let text = String::from_utf8_lossy(&output("iptables-save", &[]).stdout).into_owned();
    text.lines()
        .filter(|l| l.contains(needle))
        .map(str::to_owned)
        .collect()
}

fn jump_target(rule: &str) -> Option<String> {
    let args = iptables_args(rule);
    let at = args.iter().position(|a| a == "-j" || a == "--jump")?;
    args.get(at + 1).cloned()
}

fn is_pod_chain(chain: &str) -> bool {
    chain.starts_with("CNI-") && !chain.starts_with("CNI-HOSTPORT-")
}

/// A CNI network of the test's own; see the module docs.
pub struct TestNet {
    /// The bridge: `bt<pid%10000, 4 digits><slot>`.
    pub bridge: String,
    /// The CNI network name: `berth-it-<bridge>`.
    pub network: String,
    /// Third octet of the subnet `10.232.<octet>.0/24`.
    pub octet: u8,
    /// host-local's `dataDir` (inside the daemon's temporary directory).
    pub data_dir: PathBuf,
    /// The daemon's `cni.conf_dir`.
    pub conf_dir: PathBuf,
    /// `CNI-*` chains (per table) that existed before the test.
    chains_before: Vec<(&'static str, BTreeSet<String>)>,
    /// Whether portmap's shared chains existed before the test.
    hostport_chains_existed: bool,
}

impl TestNet {
    /// The network of test `slot` (0..=19, one per test of a binary) for a daemon whose
    /// temporary directory is `dir` (its `cni.conf_dir` is `<dir>/net.d`).
    pub fn new(dir: &Path, slot: u8) -> TestNet {
        assert!(slot < 20, "slot {slot} out of range");
        let pid = std::process::id();
        let bridge = format!("bt{:04}{slot:02}", pid % 10000);
        // 20..=219: clear of the benchmarks' 10.232.25x networks.
        let octet = 20 + (pid % 10) as u8 * 20 + slot;
        let tables = iptables_tables();
        let hostport_chains_existed = tables
            .iter()
            .any(|t| t.name == "nat" && t.chains.iter().any(|c| c == HOSTPORT_CHAINS[0]));
        let chains_before = tables
            .into_iter()
            .map(|t| {
                (
                    t.name,
                    t.chains.into_iter().filter(|c| is_pod_chain(c)).collect(),
                )
            })
            .collect();
        let net = TestNet {
            network: format!("berth-it-{bridge}"),
            bridge,
            octet,
            data_dir: dir.join("cni-ipam"),
            conf_dir: dir.join("net.d"),
            chains_before,
            hostport_chains_existed,
        };
        // A bridge of that name left by an earlier, killed run of a process with the same
        // pid%10000 is ours too.
        net.delete_bridge();
        net
    }

    /// `10.232.<octet>.0/24`
    pub fn subnet(&self) -> String {
        format!("10.232.{}.0/24", self.octet)
    }

    /// The bridge's address (`isGateway`): `10.232.<octet>.1`.
    pub fn gateway(&self) -> Ipv4Addr {
        Ipv4Addr::new(10, 232, self.octet, 1)
    }

    /// Whether `ip` is a pod address of the subnet (not network, gateway or broadcast).
    pub fn is_pod_ip(&self, ip: &str) -> bool {
        match ip.parse::<Ipv4Addr>() {
            Ok(addr) => {
                let [a, b, c, d] = addr.octets();
                (a, b, c) == (10, 232, self.octet) && d > 1 && d < 255
            }
            Err(_) => false,
        }
    }

    /// The bridge plugin of this network.
    pub fn bridge_plugin(&self) -> Value {
        json!({
            "type": "bridge",
            "bridge": self.bridge,
            "isGateway": true,
            "ipMasq": true,
            "hairpinMode": true,
            "ipam": {
                "type": "host-local",
                "ranges": [[{ "subnet": self.subnet() }]],
                "routes": [{ "dst": "0.0.0.0/0" }],
                "dataDir": self.data_dir,
            }
        })
    }

    /// The portmap plugin.
    pub fn portmap_plugin() -> Value {
        json!({ "type": "portmap", "capabilities": { "portMappings": true } })
    }

    /// Writes the conflist with `plugins` (replacing an earlier one).
    pub fn write_conflist(&self, plugins: Vec<Value>) {
        std::fs::create_dir_all(&self.conf_dir).unwrap();
        let list = json!({
            "cniVersion": "1.0.0",
            "name": self.network,
            "plugins": plugins,
        });
        let path = self.conf_dir.join("10-berth-it.conflist");
        // Atomically: berthd may read the directory at any moment.
        berth_atomicfile::write(&path, &serde_json::to_vec_pretty(&list).unwrap(), 0o644).unwrap();
    }

    /// Writes the standard conflist: bridge, then portmap.
    pub fn write_standard(&self) {
        self.write_conflist(vec![self.bridge_plugin(), TestNet::portmap_plugin()]);
    }

    /// Whether the bridge exists.
    pub fn bridge_exists(&self) -> bool {
        Path::new("/sys/class/net").join(&self.bridge).exists()
    }

    /// Links enslaved to the bridge (`ip -o link show master <bridge>`), one line each.
    pub fn attached_links(&self) -> Vec<String> {
        if !self.bridge_exists() {
            return Vec::new();
        }
        let out = output("ip", &["-o", "link", "show", "master", &self.bridge]);
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(str::to_owned)
            .collect()
    }

    /// host-local's allocation files (named after the IP) in the network's `dataDir`.
    pub fn ip_allocations(&self) -> Vec<String> {
        dir_entries(&self.data_dir.join(&self.network))
            .into_iter()
            .filter(|name| name.parse::<std::net::IpAddr>().is_ok())
            .collect()
    }

    fn mentions_us(&self, rule: &str) -> bool {
        rule.contains(&self.network) || rule.contains(&format!("10.232.{}.", self.octet))
    }

    /// iptables state of this network: rules naming the network or the subnet, and
    /// per-pod `CNI-*` chains created since [`TestNet::new`] that are empty or hold such
    /// rules. Each as `<table>: <line>`.
    pub fn iptables_leftovers(&self) -> Vec<String> {
        let mut found = Vec::new();
        for table in iptables_tables() {
            for rule in table.rules.iter().filter(|r| self.mentions_us(r)) {
                found.push(format!("{}: {rule}", table.name));
            }
            for chain in self.new_pod_chains(&table) {
                let owned = table
                    .rules
                    .iter()
                    .filter(|r| r.starts_with(&format!("-A {chain} ")))
                    .collect::<Vec<_>>();
                // An empty chain may be one another test's plugin has just created and not
                // filled yet (tests run in parallel): only chains with rules of ours go.
                if owned.iter().any(|r| self.mentions_us(r)) {
                    found.push(format!("{}: chain {chain}", table.name));
                }
            }
        }
        found
    }

    fn new_pod_chains<'t>(&self, table: &'t Table) -> Vec<&'t String> {
        let before = self
            .chains_before
            .iter()
            .find(|(name, _)| *name == table.name)
            .map(|(_, chains)| chains);
        table
            .chains
            .iter()
            .filter(|c| is_pod_chain(c))
            .filter(|c| before.is_none_or(|b| !b.contains(*c)))
            .collect()
    }

    /// Deletes the bridge if it exists.
    pub fn delete_bridge(&self) {
        if self.bridge_exists() {
            let out = output("ip", &["link", "del", &self.bridge]);
            if !out.status.success() {
                eprintln!(
                    "warning: ip link del {}: {}",
                    self.bridge,
                    String::from_utf8_lossy(&out.stderr)
                );
            }
        }
    }

    /// Removes the network's iptables rules and per-pod chains (see
    /// [`TestNet::iptables_leftovers`]), and portmap's shared chains when they did not exist
    /// before and no other pod uses them. Returns what it removed.
    pub fn clean_iptables(&self) -> Vec<String> {
        let mut removed = Vec::new();
        for table in iptables_tables() {
            let mut chains: BTreeSet<String> = BTreeSet::new();
            for rule in table.rules.iter().filter(|r| self.mentions_us(r)) {
                if let Some(target) = jump_target(rule).filter(|t| is_pod_chain(t)) {
                    chains.insert(target);
                }
                if delete_rule(table.name, rule) {
                    removed.push(format!("{}: {rule}", table.name));
                }
            }
            for chain in self.new_pod_chains(&table) {
                let owned: Vec<&String> = table
                    .rules
                    .iter()
                    .filter(|r| r.starts_with(&format!("-A {chain} ")))
                    .collect();
                // An empty chain may be one another test's plugin has just created and not
                // filled yet (tests run in parallel): only chains with rules of ours go.
                if owned.iter().any(|r| self.mentions_us(r)) {
                    chains.insert(chain.clone());
                }
            }
            for chain in chains {
                // Other rules jumping to a chain of ours (none expected) go first.
                for rule in table.rules.iter() {
                    if jump_target(rule).as_deref() == Some(chain.as_str()) {
                        delete_rule(table.name, rule);
                    }
                }
                let _ = output("iptables", &["-t", table.name, "-F", &chain]);
                if output("iptables", &["-t", table.name, "-X", &chain])
                    .status
                    .success()
                {
                    removed.push(format!("{}: chain {chain}", table.name));
                }
            }
        }
        if !self.hostport_chains_existed {
            removed.extend(remove_unused_hostport_chains());
        }
        removed
    }

    /// Everything the network still has on the host that pods left: links on the bridge,
    /// IP allocations, iptables rules and chains.
    pub fn leftovers(&self) -> Vec<String> {
        let mut found = Vec::new();
        for link in self.attached_links() {
            found.push(format!("link on bridge {}: {link}", self.bridge));
        }
        for ip in self.ip_allocations() {
            found.push(format!("host-local allocation {ip}"));
        }
        for rule in self.iptables_leftovers() {
            found.push(format!("iptables {rule}"));
        }
        found
    }

    /// Removes everything of the network: iptables, then the bridge.
    pub fn cleanup(&self) {
        for what in self.clean_iptables() {
            eprintln!("cleanup: removed iptables {what}");
        }
        self.delete_bridge();
    }
}

fn delete_rule(table: &str, rule: &str) -> bool {
    let args = iptables_args(rule);
    if args.first().map(String::as_str) != Some("-A") {
        return false;
    }
    let mut command = vec!["-t".to_owned(), table.to_owned(), "-D".to_owned()];
    command.extend(args.into_iter().skip(1));
    let refs: Vec<&str> = command.iter().map(String::as_str).collect();
    let out = output("iptables", &refs);
    if !out.status.success() {
        eprintln!(
            "warning: iptables {}: {}",
            refs.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    out.status.success()
}

/// Removes portmap's shared chains (and the rules jumping to them) when
/// `CNI-HOSTPORT-DNAT` holds no rule: no pod of anybody maps a host port.
fn remove_unused_hostport_chains() -> Vec<String> {
    let tables = iptables_tables();
    let Some(nat) = tables.iter().find(|t| t.name == "nat") else {
        return Vec::new();
    };
    if !nat.chains.iter().any(|c| c == HOSTPORT_CHAINS[0]) {
        return Vec::new();
    }
    if nat
        .rules
        .iter()
        .any(|r| r.starts_with(&format!("-A {} ", HOSTPORT_CHAINS[0])))
    {
        return Vec::new();
    }
    let mut removed = Vec::new();
    for rule in &nat.rules {
        let target = jump_target(rule);
        let from = rule.split_whitespace().nth(1).unwrap_or_default();
        if target
            .as_deref()
            .is_some_and(|t| HOSTPORT_CHAINS.contains(&t))
            && !HOSTPORT_CHAINS.contains(&from)
            && delete_rule("nat", rule)
        {
            removed.push(format!("nat: {rule}"));
        }
    }
    for chain in HOSTPORT_CHAINS {
        let _ = output("iptables", &["-t", "nat", "-F", chain]);
    }
    for chain in HOSTPORT_CHAINS {
        if output("iptables", &["-t", "nat", "-X", chain])
            .status
            .success()
        {
            removed.push(format!("nat: chain {chain}"));
        }
    }
    removed
}

/// A berthd on a [`TestNet`]; cleans up on drop (see the module docs).
pub struct PodEnv {
    /// The daemon.
    pub daemon: Berthd,
    /// Its network.
    pub net: TestNet,
}

impl PodEnv {
    /// A daemon in a fresh layout with the standard network of `slot`, plugins from
    /// `/usr/lib/cni`.
    pub fn start(slot: u8) -> PodEnv {
        PodEnv::start_in(Layout::new(), slot)
    }

    /// A daemon in `layout`, with the standard network of `slot` written first.
    pub fn start_in(layout: Layout, slot: u8) -> PodEnv {
        let net = TestNet::new(layout.dir.path(), slot);
        net.write_standard();
        // The guard exists before the daemon does: a failed start still cleans up.
        let layout = LayoutGuard(Some(layout));
        let daemon = layout.into_inner().start();
        PodEnv { daemon, net }
    }

    /// `<state>/ns`
    pub fn ns_root(&self) -> PathBuf {
        self.daemon.state.join("ns")
    }

    /// `<state>/sandboxes`
    pub fn sandboxes_root(&self) -> PathBuf {
        self.daemon.state.join("sandboxes")
    }

    /// `<root>/cni-cache` (kept across reboots)
    pub fn cni_cache(&self) -> PathBuf {
        self.daemon.root.join("cni-cache")
    }

    /// The pin of namespace `kind` (`net`, `ipc`, `uts`) of sandbox `id`.
    pub fn pin(&self, id: &str, kind: &str) -> PathBuf {
        self.ns_root().join(id).join(kind)
    }

    /// `<state>/sandboxes/<id>`
    pub fn sandbox_dir(&self, id: &str) -> PathBuf {
        self.sandboxes_root().join(id)
    }

    /// Everything pods left on the host, for sandboxes `ids` (which may be empty): mounts
    /// under the state dir, entries of `<state>/ns`, `<state>/sandboxes` and
    /// `<root>/cni-cache`, the network's leftovers, iptables lines naming an ID, cgroups
    /// named after an ID.
    pub fn leftovers(&self, ids: &[String]) -> Vec<String> {
        let mut found = Vec::new();
        for (mount, fstype) in mounts_under(&self.daemon.state) {
            found.push(format!("mount {} ({fstype})", mount.display()));
        }
        for dir in [self.ns_root(), self.sandboxes_root(), self.cni_cache()] {
            for name in dir_entries(&dir) {
                found.push(format!("{}/{name}", dir.display()));
            }
        }
        found.extend(self.net.leftovers());
        for id in ids {
            for line in iptables_lines_containing(id) {
                found.push(format!("iptables line naming {id}: {line}"));
            }
        }
        for cgroup in cgroups_mentioning(ids) {
            found.push(format!("cgroup {}", cgroup.display()));
        }
        found
    }
}

impl Drop for PodEnv {
    fn drop(&mut self) {
        self.daemon.kill();
        for pid in stop_pod_inits(&self.daemon.state) {
            eprintln!("cleanup: stopped pod PID-namespace init {pid}");
        }
        for mount in unmount_all_under(self.daemon.dir.path()) {
            eprintln!("cleanup: unmounted {}", mount.display());
        }
        self.net.cleanup();
    }
}

/// Stops the `berth-shim pod-init` processes of the sandboxes under `state` that a test left
/// (a pod it could not remove through the daemon): their PIDs are in
/// `<state>/sandboxes/<id>/pid-init`, and each is checked to be a pod-init before SIGTERM.
pub fn stop_pod_inits(state: &Path) -> Vec<u32> {
    let Ok(sandboxes) = std::fs::read_dir(state.join("sandboxes")) else {
        return Vec::new();
    };
    let mut stopped = Vec::new();
    for sandbox in sandboxes.flatten() {
        let Some(pid) = std::fs::read_to_string(sandbox.path().join("pid-init"))
            .ok()
            .and_then(|p| p.trim().parse::<u32>().ok())
        else {
            continue;
        };
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        if comm.trim() == "berth-shim" && String::from_utf8_lossy(&cmdline).contains("pod-init") {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid as i32),
                nix::sys::signal::Signal::SIGTERM,
            );
            stopped.push(pid);
        }
    }
    stopped
}

/// Unmounts what a daemon that failed to start left in a layout (nothing, normally).
struct LayoutGuard(Option<Layout>);

impl LayoutGuard {
    fn into_inner(mut self) -> Layout {
        self.0.take().unwrap()
    }
}

impl Drop for LayoutGuard {
    fn drop(&mut self) {
        if let Some(layout) = &self.0 {
            unmount_all_under(layout.dir.path());
        }
    }
}

/// Runs `program args...` inside the namespaces given as `nsenter` options (e.g.
/// `--net=<pin>`); returns the output.
pub fn nsenter(ns_options: &[String], program: &[&str]) -> Output {
    let mut args: Vec<&str> = ns_options.iter().map(String::as_str).collect();
    args.push("--");
    args.extend_from_slice(program);
    output("nsenter", &args)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iptables_lines_split_like_iptables_restore() {
        let line = r#"-A POSTROUTING -s 10.232.3.2/32 -m comment --comment "name: \"n\" id: \"abc\"" -j CNI-1f2e"#;
        assert_eq!(
            iptables_args(line),
            [
                "-A",
                "POSTROUTING",
                "-s",
                "10.232.3.2/32",
                "-m",
                "comment",
                "--comment",
                r#"name: "n" id: "abc""#,
                "-j",
                "CNI-1f2e"
            ]
        );
        assert_eq!(jump_target(line).as_deref(), Some("CNI-1f2e"));
    }

    #[test]
    fn mountinfo_escapes() {
        assert_eq!(unescape_mountinfo(r"/a\040b"), "/a b");
        assert_eq!(unescape_mountinfo("/plain"), "/plain");
    }
}
