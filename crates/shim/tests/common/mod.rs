//! Helpers for the shim's integration tests: a minimal busybox OCI bundle per test, runc
//! wrappers, and cleanup of everything a test created (container, cgroups, shim, temp dir).
//!
//! These tests need root and runc at [`RUNC`]; without them they print a note and pass.

#![allow(dead_code)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use berth_shim::{read_exit, ExitStatus, ShimError, ShimSpawn, Spawned};
use serde_json::{json, Value};

pub const RUNC: &str = "/usr/sbin/runc";
/// Parent cgroup of every test container (`linux.cgroupsPath = /berth-shim-test/<id>`).
pub const CGROUP_PARENT: &str = "berth-shim-test";
use berth_cgroups::CGROUP_ROOT;

/// The binary under test: cargo's build of this package, or `BERTH_SHIM_BINARY` (to measure
/// another build, e.g. the small `shim` profile).
pub fn shim_binary() -> PathBuf {
    std::env::var_os("BERTH_SHIM_BINARY")
        .map(PathBuf::from)
        .unwrap_or_else(|| env!("CARGO_BIN_EXE_berth-shim").into())
}

/// Why the integration tests cannot run here, if they cannot.
pub fn skip_reason() -> Option<String> {
    if !berth_testutil::is_root() {
        return Some("not running as root".into());
    }
    if !Path::new(RUNC).exists() {
        return Some(format!("{RUNC} is missing"));
    }
    if !Path::new("/bin/busybox").exists() {
        return Some("/bin/busybox is missing".into());
    }
    None
}

/// Skips the calling test (with a printed note) when the environment cannot run it.
macro_rules! require_root_and_runc {
    () => {
        if let Some(why) = common::skip_reason() {
            berth_testutil::skip(why);
            return;
        }
    };
}

/// One container under test; everything is removed on drop.
pub struct TestContainer {
    pub id: String,
    dir: tempfile::TempDir,
    pub bundle: PathBuf,
    pub runc_root: PathBuf,
    pub state_dir: PathBuf,
    pub log_path: PathBuf,
    pub shim_pid: Option<u32>,
}

impl TestContainer {
    /// A bundle running `args`, with `edit` applied to config.json last.
    pub fn new(name: &str, args: &[&str], edit: impl FnOnce(&mut Value)) -> Self {
        let id = format!("berth-shim-{name}-{}", std::process::id());
        let dir = tempfile::Builder::new()
            .prefix("berth-shim-it-")
            .tempdir()
            .unwrap();
        let bundle = dir.path().join("bundle");
        build_rootfs(&bundle.join("rootfs"));
        run_ok(Command::new(RUNC).arg("spec").arg("--bundle").arg(&bundle));
        let cfg_path = bundle.join("config.json");
        let mut cfg: Value = serde_json::from_slice(&fs::read(&cfg_path).unwrap()).unwrap();
        cfg["process"]["args"] = json!(args);
        cfg["process"]["terminal"] = json!(false);
        cfg["linux"]["cgroupsPath"] = json!(format!("/{CGROUP_PARENT}/{id}"));
        edit(&mut cfg);
        fs::write(&cfg_path, serde_json::to_vec_pretty(&cfg).unwrap()).unwrap();
        TestContainer {
            bundle,
            runc_root: dir.path().join("runc-root"),
            state_dir: dir.path().join("state"),
            log_path: dir.path().join("logs/pod/0.log"),
            id,
            dir,
            shim_pid: None,
        }
    }

    pub fn spawn_spec(&self) -> ShimSpawn {
        ShimSpawn {
            shim_binary: shim_binary(),
            id: self.id.clone(),
            bundle: self.bundle.clone(),
            runc: RUNC.into(),
            runc_root: self.runc_root.clone(),
            state_dir: self.state_dir.clone(),
            log_path: self.log_path.clone(),
            stdin: false,
            stdin_once: false,
            tty: false,
            systemd_cgroup: false,
        }
    }

    /// Spawns with `spec` and remembers the shim's PID for cleanup.
    pub fn spawn_with(&mut self, spec: &ShimSpawn) -> Result<Spawned, ShimError> {
        let r = berth_shim::spawn(spec, Duration::from_secs(30));
        if let Ok(s) = &r {
            self.shim_pid = Some(s.shim_pid);
        }
        r
    }

    pub fn spawn(&mut self) -> Result<Spawned, ShimError> {
        let spec = self.spawn_spec();
        self.spawn_with(&spec)
    }

    pub fn runc(&self, args: &[&str]) -> Output {
        Command::new(RUNC)
            .arg("--root")
            .arg(&self.runc_root)
            .args(args)
            .output()
            .unwrap()
    }

    pub fn start(&self) {
        let out = self.runc(&["start", &self.id]);
        assert!(out.status.success(), "runc start: {out:?}");
    }

    pub fn client(&self) -> berth_shim::ShimClient {
        berth_shim::ShimClient::new(&self.state_dir)
    }

    /// Waits for the exit file.
    pub fn wait_exit(&self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(st) = read_exit(&self.state_dir).unwrap() {
                return st;
            }
            assert!(
                Instant::now() < deadline,
                "no exit file after {timeout:?}; shim.log:\n{}",
                self.shim_log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits until the shim process is gone (it exits right after the exit file).
    pub fn wait_shim_gone(&self, timeout: Duration) -> bool {
        let Some(pid) = self.shim_pid else {
            return true;
        };
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if !alive(pid) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    pub fn shim_log(&self) -> String {
        fs::read_to_string(self.state_dir.join("shim.log")).unwrap_or_default()
    }

    pub fn records(&self) -> Vec<Record> {
        parse_log(&fs::read_to_string(&self.log_path).unwrap_or_default())
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for TestContainer {
    fn drop(&mut self) {
        // Kills the init if still there; the shim then writes its exit file and exits.
        let _ = self.runc(&["delete", "--force", &self.id]);
        if !self.wait_shim_gone(Duration::from_secs(5)) {
            if let Some(pid) = self.shim_pid {
                kill_shim(pid);
            }
        }
        remove_cgroups(&self.id);
    }
}

/// The exit file, if the shim has written it.
pub fn read_exit_now(c: &TestContainer) -> Option<ExitStatus> {
    read_exit(&c.state_dir).unwrap()
}

/// True if `pid` exists and is not a zombie.
pub fn alive(pid: u32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat_field(&stat, 3).is_some_and(|s| s != "Z"),
        Err(_) => false,
    }
}

/// Field `n` (1-based, as in proc(5)) of a /proc/<pid>/stat line.
pub fn stat_field(stat: &str, n: usize) -> Option<String> {
    // Field 2 (comm) is in parentheses and may contain spaces.
    let close = stat.rfind(')')?;
    if n <= 2 {
        return None;
    }
    stat[close + 2..].split(' ').nth(n - 3).map(str::to_string)
}

/// SIGKILLs a leftover shim, but only if that PID still is a berth-shim.
fn kill_shim(pid: u32) {
    let comm = fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
    if comm.trim() == "berth-shim" {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid as i32),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
}

/// Removes `/<CGROUP_PARENT>/<id>` (runc delete normally did) and the parent if empty, in every
/// hierarchy.
fn remove_cgroups(id: &str) {
    let mut roots = vec![PathBuf::from(CGROUP_ROOT)];
    if let Ok(rd) = fs::read_dir(CGROUP_ROOT) {
        roots.extend(rd.flatten().map(|e| e.path()).filter(|p| p.is_dir()));
    }
    for root in roots {
        let parent = root.join(CGROUP_PARENT);
        let _ = fs::remove_dir(parent.join(id));
        // Fails while another test still has a container there; the last one removes it.
        let _ = fs::remove_dir(&parent);
    }
}

/// busybox (dynamically linked) and its libraries at their host paths, plus a few applets.
fn build_rootfs(rootfs: &Path) {
    let bin = rootfs.join("bin");
    fs::create_dir_all(&bin).unwrap();
    fs::copy("/bin/busybox", bin.join("busybox")).unwrap();
    let ldd = run_ok(Command::new("ldd").arg("/bin/busybox"));
    for lib in String::from_utf8_lossy(&ldd.stdout)
        .split_whitespace()
        .filter(|w| w.starts_with('/'))
    {
        let dst = rootfs.join(lib.trim_start_matches('/'));
        fs::create_dir_all(dst.parent().unwrap()).unwrap();
        fs::copy(lib, &dst).unwrap();
    }
    for applet in ["sh", "echo", "sleep", "cat", "dd", "stty", "true"] {
        std::os::unix::fs::symlink("busybox", bin.join(applet)).unwrap();
    }
    for d in ["proc", "dev", "sys", "tmp"] {
        fs::create_dir_all(rootfs.join(d)).unwrap();
    }
}

fn run_ok(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{cmd:?}: {out:?}");
    out
}

/// One CRI log record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub ts: String,
    pub stream: String,
    pub flag: String,
    pub content: String,
}

pub fn parse_log(text: &str) -> Vec<Record> {
    text.lines()
        .map(|l| {
            let mut p = l.splitn(4, ' ');
            let mut next = || p.next().unwrap_or_default().to_string();
            Record {
                ts: next(),
                stream: next(),
                flag: next(),
                content: next(),
            }
        })
        .collect()
}

/// Checks `YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ` and that its date is today's (per `date -u`).
pub fn assert_timestamp(ts: &str) {
    let b = ts.as_bytes();
    assert_eq!(b.len(), 30, "{ts}");
    for (i, c) in b.iter().enumerate() {
        let want = match i {
            4 | 7 => Some(b'-'),
            10 => Some(b'T'),
            13 | 16 => Some(b':'),
            19 => Some(b'.'),
            29 => Some(b'Z'),
            _ => None,
        };
        match want {
            Some(w) => assert_eq!(*c, w, "{ts}"),
            None => assert!(c.is_ascii_digit(), "{ts}"),
        }
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let day_of = |secs: u64| {
        let out = Command::new("date")
            .args(["-u", "-d", &format!("@{secs}"), "+%Y-%m-%d"])
            .output()
            .unwrap();
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    };
    let (day, _) = ts.split_once('T').unwrap();
    // Written within the last few minutes (either side of a midnight).
    assert!(day == day_of(now) || day == day_of(now - 600), "{ts}");
}
