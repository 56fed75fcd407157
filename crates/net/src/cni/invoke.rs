//! Running one CNI plugin binary as the spec (1.0) says: parameters in `CNI_*`
//! environment variables, the network configuration on stdin, the result (or the spec's
//! error JSON) on stdout. Each run is time-limited; on timeout the plugin's process
//! group (the plugin is made its leader, so its `iptables` children go too) is killed.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use serde::Deserialize;

use super::error::CniError;
use super::readiness::find_plugin;

/// Most bytes kept of a plugin's stdout or stderr; the rest is read and dropped.
const OUTPUT_LIMIT: u64 = 1 << 20;

/// Most characters of stderr quoted in an error when the plugin printed no error JSON.
const STDERR_QUOTE_LIMIT: usize = 2048;

/// The CNI operations berth uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CniCommand {
    /// Attach the container to the network.
    Add,
    /// Detach it and release its resources.
    Del,
}

impl CniCommand {
    fn as_str(self) -> &'static str {
        match self {
            CniCommand::Add => "ADD",
            CniCommand::Del => "DEL",
        }
    }
}

impl std::fmt::Display for CniCommand {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One plugin execution.
pub(crate) struct Invocation<'a> {
    pub network: &'a str,
    /// The plugin's `type`: its binary's file name.
    pub plugin: &'a str,
    pub command: CniCommand,
    pub container_id: &'a str,
    /// `None` passes an empty `CNI_NETNS` (DEL after the namespace is gone).
    pub netns: Option<&'a Path>,
    pub ifname: &'a str,
    pub args: &'a str,
    pub stdin: Vec<u8>,
}

/// Where plugins are found and how long each may run.
pub(crate) struct Runner<'a> {
    pub bin_dirs: &'a [PathBuf],
    pub timeout: Duration,
}

/// The spec's error result.
#[derive(Deserialize)]
struct PluginErrorJson {
    code: u32,
    #[serde(default)]
    msg: String,
    #[serde(default)]
    details: String,
}

impl Runner<'_> {
    /// Runs the plugin; returns its result JSON for ADD, `None` for DEL.
    pub fn run(&self, mut inv: Invocation<'_>) -> Result<Option<serde_json::Value>, CniError> {
        let path =
            find_plugin(inv.plugin, self.bin_dirs).ok_or_else(|| CniError::PluginNotFound {
                network: inv.network.to_owned(),
                plugin: inv.plugin.to_owned(),
                bin_dirs: self.cni_path(),
            })?;
        tracing::debug!(network = inv.network, plugin = inv.plugin, command = %inv.command, id = inv.container_id, "running CNI plugin");
        let spawn_err = |source| CniError::PluginSpawn {
            network: inv.network.to_owned(),
            path: path.clone(),
            source,
        };
        let mut child = spawn(self.command(&path, &inv)).map_err(spawn_err)?;
        let deadline = Instant::now() + self.timeout;
        let output = collect_output(&mut child, std::mem::take(&mut inv.stdin), deadline);
        let Finished {
            status,
            stdout,
            stderr,
        } = match output {
            Ok(Some(done)) => done,
            Ok(None) => {
                return Err(CniError::PluginTimeout {
                    network: inv.network.to_owned(),
                    plugin: inv.plugin.to_owned(),
                    command: inv.command,
                    timeout: self.timeout,
                })
            }
            Err(source) => return Err(spawn_err(source)),
        };
        if !status.success() {
            return Err(plugin_failure(&inv, status, &stdout, &stderr));
        }
        match inv.command {
            CniCommand::Del => Ok(None),
            CniCommand::Add => serde_json::from_slice::<serde_json::Value>(&stdout)
                .map(Some)
                .map_err(|source| CniError::PluginOutput {
                    network: inv.network.to_owned(),
                    plugin: inv.plugin.to_owned(),
                    command: inv.command,
                    source,
                }),
        }
    }

    /// `CNI_PATH`: the plugin directories, `:`-joined.
    pub fn cni_path(&self) -> String {
        let dirs: Vec<String> = self
            .bin_dirs
            .iter()
            .map(|dir| dir.display().to_string())
            .collect();
        dirs.join(":")
    }

    fn command(&self, path: &Path, inv: &Invocation<'_>) -> Command {
        use std::os::unix::process::CommandExt;
        let mut command = Command::new(path);
        // Plugins get berthd's environment (PATH for iptables & co.), minus stale CNI_*.
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("CNI_") {
                command.env_remove(key);
            }
        }
        command
            .env("CNI_COMMAND", inv.command.as_str())
            .env("CNI_CONTAINERID", inv.container_id)
            .env(
                "CNI_NETNS",
                inv.netns.map(Path::as_os_str).unwrap_or_default(),
            )
            .env("CNI_IFNAME", inv.ifname)
            .env("CNI_ARGS", inv.args)
            .env("CNI_PATH", self.cni_path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        command
    }
}

/// Spawns, retrying briefly on `ETXTBSY`: a plugin binary just written (installed or
/// upgraded) can still be open for writing in a child another thread forked.
fn spawn(mut command: Command) -> std::io::Result<Child> {
    const ATTEMPTS: u32 = 5;
    let mut attempt = 1;
    loop {
        match command.spawn() {
            Err(err) if err.raw_os_error() == Some(nix::libc::ETXTBSY) && attempt < ATTEMPTS => {
                std::thread::sleep(Duration::from_millis(10 * u64::from(attempt)));
                attempt += 1;
            }
            other => return other,
        }
    }
}

/// A plugin run that ended in time.
struct Finished {
    status: ExitStatus,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
}

/// Feeds stdin, gathers stdout and stderr and waits for the exit, all until `deadline`.
/// `Ok(None)`: timed out; the process group was killed and the plugin reaped.
fn collect_output(
    child: &mut Child,
    stdin: Vec<u8>,
    deadline: Instant,
) -> std::io::Result<Option<Finished>> {
    let mut input = child.stdin.take();
    std::thread::spawn(move || {
        if let Some(input) = input.as_mut() {
            // A plugin that exits without reading stdin makes this fail: fine.
            let _ = input.write_all(&stdin);
        }
    });
    let (tx, rx) = mpsc::channel::<(bool, Vec<u8>)>();
    for (is_stdout, pipe) in [
        (
            true,
            child
                .stdout
                .take()
                .map(|p| Box::new(p) as Box<dyn Read + Send>),
        ),
        (
            false,
            child
                .stderr
                .take()
                .map(|p| Box::new(p) as Box<dyn Read + Send>),
        ),
    ] {
        let tx = tx.clone();
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut pipe) = pipe {
                let _ = (&mut pipe).take(OUTPUT_LIMIT).read_to_end(&mut buf);
                let _ = std::io::copy(&mut pipe, &mut std::io::sink());
            }
            let _ = tx.send((is_stdout, buf));
        });
    }
    drop(tx);

    let Some(status) = wait_until(child, deadline)? else {
        kill_group(child);
        return Ok(None);
    };
    let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
    for _ in 0..2 {
        let remaining = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(remaining) {
            Ok((true, buf)) => stdout = buf,
            Ok((false, buf)) => stderr = buf,
            // A leftover child of the plugin holds the pipes open past the deadline.
            Err(mpsc::RecvTimeoutError::Timeout) => return Ok(None),
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    Ok(Some(Finished {
        status,
        stdout,
        stderr,
    }))
}

/// Polls for the exit with a short back-off (plugins usually take tens of milliseconds).
fn wait_until(child: &mut Child, deadline: Instant) -> std::io::Result<Option<ExitStatus>> {
    let mut pause = Duration::from_millis(1);
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(Some(status));
        }
        let now = Instant::now();
        if now >= deadline {
            return Ok(None);
        }
        std::thread::sleep(pause.min(deadline - now));
        pause = (pause * 2).min(Duration::from_millis(20));
    }
}

/// Kills the plugin's process group (the plugin is its leader) and reaps the plugin.
fn kill_group(child: &mut Child) {
    // The child is not reaped yet, so its pid (= the group id) cannot have been reused.
    if let Ok(pid) = i32::try_from(child.id()) {
        if let Err(err) = killpg(Pid::from_raw(pid), Signal::SIGKILL) {
            tracing::warn!(pid, error = %err, "cannot kill timed-out CNI plugin");
        }
    }
    let _ = child.wait();
}

fn plugin_failure(
    inv: &Invocation<'_>,
    status: ExitStatus,
    stdout: &[u8],
    stderr: &[u8],
) -> CniError {
    let (code, msg, details) = match serde_json::from_slice::<PluginErrorJson>(stdout) {
        Ok(err) => (Some(err.code), err.msg, err.details),
        Err(_) => {
            let text = if stderr.iter().all(u8::is_ascii_whitespace) {
                stdout
            } else {
                stderr
            };
            let text = String::from_utf8_lossy(text);
            let text: String = text.trim().chars().take(STDERR_QUOTE_LIMIT).collect();
            let msg = if text.is_empty() {
                "no error message".to_owned()
            } else {
                text
            };
            (None, msg, String::new())
        }
    };
    CniError::PluginFailed {
        network: inv.network.to_owned(),
        plugin: inv.plugin.to_owned(),
        command: inv.command,
        status,
        code,
        msg,
        details,
    }
}
