//! Where the fuzzed daemon runs and what is checked around it:
//!
//! - [`enter_namespaces`]: the fuzzer's own network (only `lo`, so a pull of any reference
//!   can reach nothing but 127.0.0.0/8), UTS, IPC and mount namespaces, entered before any
//!   thread exists; everything it starts inherits them. `/sys` is remounted so that it
//!   shows this network namespace (the cgroup mounts are carried over).
//! - [`LocalRegistry`]: `tests/images/registry.sh` on 127.0.0.1:5000 of that namespace,
//!   filled by `tests/images/build.sh`.
//! - [`Daemon`]: berthd in a temporary layout of the integration tests (socket, root,
//!   state, config), on a CNI network of its own whose IPAM data lives in that layout, with
//!   the registry as mirror of the upstream registries.
//! - [`Monitor`]: samples berthd's RSS, scans its log for panics (and bounds the log file).
//! - [`Daemon::leftovers`]: what a stopped daemon left (mounts, processes, links, IP
//!   allocations, iptables rules, cgroups).

use std::collections::BTreeSet;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use berth_integration::containers::{shim_processes, Reaper};
use berth_integration::pods::{
    cgroups_mentioning, mounts_under, stop_pod_inits, unmount_all_under, TestNet,
};
use berth_integration::registry::{images_script, repo_root};
use berth_integration::Layout;
use nix::mount::{mount, MsFlags};
use nix::sched::{unshare, CloneFlags};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use tempfile::TempDir;

/// Where the local registry listens, inside the fuzzer's network namespace.
pub const REGISTRY_ADDR: &str = "127.0.0.1:5000";

/// The cgroup hierarchies' root.
const CGROUP_ROOT: &str = "/sys/fs/cgroup";

/// Lifetime of streaming URLs in the fuzzed daemon: pending Exec/Attach/PortForward
/// sessions must be gone before RSS is measured after the load.
pub const TOKEN_TTL_SECONDS: u64 = 15;

/// Past this size the daemon's log is scanned and emptied (it is opened with O_APPEND).
const LOG_CAP: u64 = 64 << 20;

fn run(program: &str, args: &[&str]) -> Result<String, String> {
    let out = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{program}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{program} {} failed ({}): {}{}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Enters new network, UTS, IPC and mount namespaces; see the module docs. Must be called
/// while the process has one thread.
pub fn enter_namespaces() -> Result<(), String> {
    let flags = CloneFlags::CLONE_NEWNET
        | CloneFlags::CLONE_NEWUTS
        | CloneFlags::CLONE_NEWIPC
        | CloneFlags::CLONE_NEWNS;
    unshare(flags).map_err(|e| format!("unshare(net, uts, ipc, mount): {e}"))?;
    let none: Option<&str> = None;
    mount(none, "/", none, MsFlags::MS_REC | MsFlags::MS_PRIVATE, none)
        .map_err(|e| format!("making / private in the new mount namespace: {e}"))?;
    // sysfs shows the network namespace of whoever mounted it: mount a new one, with the
    // cgroup mounts moved over (they are below /sys).
    let keep = std::env::temp_dir().join(format!("berth-fuzz-cgroup-{}", std::process::id()));
    std::fs::create_dir_all(&keep).map_err(|e| format!("{}: {e}", keep.display()))?;
    let moved = (|| {
        mount(
            Some(CGROUP_ROOT),
            &keep,
            none,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            none,
        )?;
        mount(Some("sysfs"), "/sys", Some("sysfs"), MsFlags::empty(), none)?;
        mount(Some(&keep), CGROUP_ROOT, none, MsFlags::MS_MOVE, none)
    })();
    let _ = std::fs::remove_dir(&keep);
    moved.map_err(|e| format!("remounting /sys for the new network namespace: {e}"))?;
    // Mount propagation works inside the namespace (Bidirectional volumes), never out of it.
    mount(none, "/", none, MsFlags::MS_REC | MsFlags::MS_SHARED, none)
        .map_err(|e| format!("making / shared inside the new mount namespace: {e}"))?;
    nix::unistd::sethostname("berth-fuzz").map_err(|e| format!("sethostname: {e}"))?;
    run("ip", &["link", "set", "lo", "up"])?;
    Ok(())
}

/// The local registry; stopped by its PID (registry.sh stop) on drop.
pub struct LocalRegistry {
    dir: TempDir,
    /// `host:port`
    pub addr: String,
    /// Images pushed.
    pub pushed: usize,
}

impl LocalRegistry {
    /// Starts the registry and pushes the test images.
    pub fn start() -> Result<LocalRegistry, String> {
        let dir = tempfile::Builder::new()
            .prefix("berth-fuzz-registry-")
            .tempdir()
            .map_err(|e| e.to_string())?;
        let script = |name: &str| images_script(name).display().to_string();
        run(
            &script("registry.sh"),
            &[
                "--addr",
                REGISTRY_ADDR,
                "start",
                &dir.path().display().to_string(),
            ],
        )?;
        let mut registry = LocalRegistry {
            dir,
            addr: REGISTRY_ADDR.to_owned(),
            pushed: 0,
        };
        let out = run(&script("build.sh"), &[REGISTRY_ADDR])?;
        // "images: N pushed to ..."
        registry.pushed = out
            .lines()
            .find_map(|l| l.strip_prefix("images: "))
            .and_then(|l| l.split_whitespace().next()?.parse().ok())
            .unwrap_or(0);
        Ok(registry)
    }
}

impl Drop for LocalRegistry {
    fn drop(&mut self) {
        let dir = self.dir.path().display().to_string();
        if let Err(err) = run(
            &images_script("registry.sh").display().to_string(),
            &["stop", &dir],
        ) {
            eprintln!("warning: stopping the local registry: {err}");
        }
    }
}

/// The fuzzed berthd.
pub struct Daemon {
    child: Option<Child>,
    /// Its PID.
    pub pid: u32,
    /// The temporary directory holding everything.
    pub dir: TempDir,
    /// The CRI socket.
    pub socket: PathBuf,
    /// `--state`
    pub state: PathBuf,
    /// Its stderr.
    pub log: PathBuf,
    /// Where fuzzed host paths are confined.
    pub host_root: PathBuf,
    /// Its CNI network.
    pub net: TestNet,
    /// Every cgroup directory that existed before it started.
    cgroups_before: BTreeSet<PathBuf>,
}

impl Daemon {
    /// Starts berthd (log level `info`, as in production) with `registry` as mirror.
    pub fn start(registry: &str) -> Result<Daemon, String> {
        let cgroups_before = cgroup_dirs();
        let layout = Layout::with_config(&format!(
            "[stream]\ntoken_ttl_seconds = {TOKEN_TTL_SECONDS}\n"
        ));
        // The layout's directory must be reachable by a pod's unprivileged root.
        let _ = std::fs::set_permissions(
            layout.dir.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o711),
        );
        let net = TestNet::new(layout.dir.path(), 0);
        net.write_standard();
        layout.mirror_to(registry);
        let host_root = layout.dir.path().join("host");
        std::fs::create_dir_all(&host_root).map_err(|e| e.to_string())?;
        let mut args = layout.args();
        if let Some(level) = args.iter().position(|a| a == "--log-level") {
            args[level + 1] = "info".to_owned();
        }
        let child = layout.spawn(&args);
        let pid = child.id();
        let mut daemon = Daemon {
            child: Some(child),
            pid,
            socket: layout.socket,
            state: layout.state,
            log: layout.log,
            host_root,
            net,
            cgroups_before,
            dir: layout.dir,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::os::unix::net::UnixStream::connect(&daemon.socket).is_err() {
            if !daemon.running() || Instant::now() > deadline {
                return Err(format!(
                    "berthd did not serve {}; log:\n{}",
                    daemon.socket.display(),
                    std::fs::read_to_string(&daemon.log).unwrap_or_default()
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(daemon)
    }

    /// Whether berthd still runs.
    pub fn running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// Stops berthd with SIGTERM (by PID) and waits up to 30 s, then SIGKILL. Returns a
    /// problem when it did not exit cleanly.
    pub fn stop(&mut self) -> Option<String> {
        let mut child = self.child.take()?;
        if let Ok(Some(status)) = child.try_wait() {
            return Some(format!("berthd had already exited ({status})"));
        }
        let _ = kill(Pid::from_raw(self.pid as i32), Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match child.try_wait() {
                Ok(Some(status)) if status.success() => return None,
                Ok(Some(status)) => return Some(format!("berthd exited with {status} on SIGTERM")),
                _ if Instant::now() > deadline => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Some("berthd did not exit within 30 s of SIGTERM".to_owned());
                }
                _ => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    }

    /// What the stopped daemon left, removing each thing found; `ids` are all pod and
    /// container IDs seen, `parents` the cgroup parents of accepted pods (the client's to
    /// remove, as kubelet does: removed here and counted, not reported).
    pub fn leftovers(&self, ids: &[String], parents: &BTreeSet<String>) -> (Vec<String>, usize) {
        let mut found = Vec::new();
        for pid in shim_processes(self.dir.path()) {
            found.push(format!("shim process {pid} still running"));
        }
        for (mount, fstype) in mounts_under(self.dir.path()) {
            found.push(format!("mount {} ({fstype})", mount.display()));
        }
        found.extend(self.net.leftovers());
        for link in foreign_links(&self.net.bridge) {
            found.push(format!("link {link}"));
        }
        let mut leaf_cgroups = cgroups_mentioning(ids);
        leaf_cgroups.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
        for cgroup in &leaf_cgroups {
            found.push(format!("cgroup {}", cgroup.display()));
        }
        // Remove everything found, so the host is clean whatever the verdict.
        for what in Reaper::new(&self.state).reap() {
            eprintln!("cleanup: {what}");
        }
        for pid in stop_pod_inits(&self.state) {
            eprintln!("cleanup: stopped pod init {pid}");
        }
        for mount in unmount_all_under(self.dir.path()) {
            eprintln!("cleanup: unmounted {}", mount.display());
        }
        for cgroup in &leaf_cgroups {
            let _ = std::fs::remove_dir(cgroup);
        }
        let parents_removed = self.remove_parent_cgroups(parents, &mut found);
        self.net.cleanup();
        (found, parents_removed)
    }

    /// Removes the cgroup directories created for pods' cgroup parents (and `/berth`,
    /// the default parent), deepest first, when they did not exist before the daemon.
    fn remove_parent_cgroups(&self, parents: &BTreeSet<String>, found: &mut Vec<String>) -> usize {
        let mut candidates: BTreeSet<PathBuf> = BTreeSet::new();
        for parent in parents.iter().map(String::as_str).chain([""]) {
            let Ok(path) =
                berth_cgroups::cgroups_path(berth_cgroups::CgroupDriver::Cgroupfs, parent, "x")
            else {
                continue;
            };
            let rel = PathBuf::from(path.trim_start_matches('/'));
            for ancestor in rel.ancestors().skip(1) {
                if ancestor.as_os_str().is_empty() {
                    break;
                }
                for hierarchy in hierarchies() {
                    candidates.insert(hierarchy.join(ancestor));
                }
            }
        }
        let mut ordered: Vec<PathBuf> = candidates
            .into_iter()
            .filter(|p| p.is_dir() && !self.cgroups_before.contains(p))
            .collect();
        ordered.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
        let mut removed = 0;
        for dir in ordered {
            match std::fs::remove_dir(&dir) {
                Ok(()) => removed += 1,
                Err(err) => found.push(format!("cgroup {} not removable: {err}", dir.display())),
            }
        }
        removed
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        for what in Reaper::new(&self.state).reap() {
            eprintln!("cleanup: {what}");
        }
        stop_pod_inits(&self.state);
        unmount_all_under(self.dir.path());
    }
}

/// The cgroup hierarchies (v1 controllers, the unified one, or the v2 root).
fn hierarchies() -> Vec<PathBuf> {
    let root = Path::new(CGROUP_ROOT);
    if root.join("cgroup.controllers").exists() {
        return vec![root.to_owned()];
    }
    std::fs::read_dir(root)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.is_dir() && !p.is_symlink())
                .collect()
        })
        .unwrap_or_default()
}

/// Every cgroup directory (bounded walk).
fn cgroup_dirs() -> BTreeSet<PathBuf> {
    fn walk(dir: &Path, depth: usize, out: &mut BTreeSet<PathBuf>) {
        if depth == 0 || out.len() > 200_000 {
            return;
        }
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.filter_map(Result::ok) {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                out.insert(entry.path());
                walk(&entry.path(), depth - 1, out);
            }
        }
    }
    let mut out = BTreeSet::new();
    for hierarchy in hierarchies() {
        walk(&hierarchy, 16, &mut out);
    }
    out
}

/// Links of the fuzzer's network namespace other than `lo` and `bridge`.
fn foreign_links(bridge: &str) -> Vec<String> {
    let text = run("ip", &["-o", "link", "show"]).unwrap_or_default();
    text.lines()
        .filter_map(|line| {
            let name = line.split(": ").nth(1)?.split('@').next()?.to_owned();
            (name != "lo" && name != bridge).then(|| line.trim().to_owned())
        })
        .collect()
}

/// What the monitor saw.
#[derive(Debug, Default, Clone)]
pub struct Observed {
    /// Current RSS (KiB).
    pub rss_kib: u64,
    /// Highest RSS seen (KiB).
    pub rss_peak_kib: u64,
    /// Panic lines from the log.
    pub panics: Vec<String>,
    /// Log bytes written in total.
    pub log_bytes: u64,
    /// Longest log line (bytes).
    pub longest_line: u64,
    /// The process was gone at the last sample.
    pub gone: bool,
    /// Killed for exceeding the RSS cap.
    pub killed_for_rss: bool,
}

/// Samples berthd's RSS and scans its log, every 200 ms, on a thread of its own.
pub struct Monitor {
    state: Arc<Mutex<Observed>>,
    stop: Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Monitor {
    /// Starts watching `pid` and `log`; berthd is killed (by PID) past `rss_cap_kib`.
    pub fn start(pid: u32, log: PathBuf, rss_cap_kib: u64) -> Monitor {
        let state = Arc::new(Mutex::new(Observed::default()));
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (s, st) = (state.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            let mut scan = LogScan::default();
            loop {
                let rss = rss_kib(pid);
                let scanned = scan.step(&log);
                {
                    let mut o = s.lock().unwrap_or_else(|e| e.into_inner());
                    match rss {
                        Some(kib) => {
                            o.rss_kib = kib;
                            o.rss_peak_kib = o.rss_peak_kib.max(kib);
                            if kib > rss_cap_kib && !o.killed_for_rss {
                                let _ = kill(Pid::from_raw(pid as i32), Signal::SIGKILL);
                                o.killed_for_rss = true;
                            }
                        }
                        None => o.gone = true,
                    }
                    o.panics.extend(scanned);
                    o.log_bytes = scan.total;
                    o.longest_line = scan.longest;
                }
                if st.load(std::sync::atomic::Ordering::Relaxed) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(200));
            }
        });
        Monitor {
            state,
            stop,
            thread: Some(thread),
        }
    }

    /// The observations, shared with the sampling thread.
    pub fn shared(&self) -> Arc<Mutex<Observed>> {
        self.state.clone()
    }

    /// The latest observations.
    pub fn now(&self) -> Observed {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Stops the thread after a last sample; the final observations.
    pub fn finish(mut self) -> Observed {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        self.now()
    }
}

/// VmRSS of `pid` in KiB; `None` when it is gone (or a zombie).
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
}

/// Incremental scan of the daemon's log.
#[derive(Default)]
struct LogScan {
    offset: u64,
    total: u64,
    current_line: u64,
    longest: u64,
    tail: Vec<u8>,
}

impl LogScan {
    /// Reads what was appended since the last step; panic lines found. Empties the file
    /// once it is past [`LOG_CAP`].
    fn step(&mut self, log: &Path) -> Vec<String> {
        let mut panics = Vec::new();
        let Ok(mut file) = std::fs::OpenOptions::new().read(true).write(true).open(log) else {
            return panics;
        };
        let len = file.metadata().map(|m| m.len()).unwrap_or(0);
        if len < self.offset {
            self.offset = 0;
        }
        if file.seek(SeekFrom::Start(self.offset)).is_err() {
            return panics;
        }
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = match file.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            self.offset += n as u64;
            self.total += n as u64;
            for &b in &buf[..n] {
                if b == b'\n' {
                    self.longest = self.longest.max(self.current_line);
                    self.current_line = 0;
                    let line = String::from_utf8_lossy(&self.tail);
                    if line.contains("panicked") {
                        panics.push(crate::report::cut(&line, 400));
                    }
                    self.tail.clear();
                } else {
                    self.current_line += 1;
                    // Keep only the start of a line: enough to see "panicked".
                    if self.tail.len() < 4096 {
                        self.tail.push(b);
                    }
                }
            }
        }
        if self.offset > LOG_CAP && file.set_len(0).is_ok() {
            self.offset = 0;
        }
        panics
    }
}

/// The repository (for the default corpus directory).
pub fn repository() -> PathBuf {
    repo_root()
}
