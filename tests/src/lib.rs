//! Test harness: starts a real `berthd` on a temporary socket, root and state, and hands
//! out CRI clients connected to it.
//!
//! The binary is `$BERTHD` when set, else `target/debug/berthd` of this workspace (built by
//! `cargo build` before the tests run, as `make test` does).
//!
//! [`registry`] has the helpers of the image tests: the shared test registry, extra
//! registries started per test, and remote image facts read with skopeo. [`pods`] has the
//! test CNI networks of the pod tests, [`containers`] the cleanup guard and log parsing of
//! the container tests, [`crictl`] runs crictl against a test daemon, [`berthctl`] runs
//! berthctl against one, [`rpc`] has the CRI calls the tests share, [`websocket`] a
//! WebSocket client for streaming URLs.

pub mod berthctl;
pub mod containers;
pub mod crictl;
pub mod pods;
pub mod registry;
pub mod rpc;
pub mod websocket;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use cri_api::{ImageServiceClient, RuntimeServiceClient};
use hyper_util::rt::TokioIo;
use tempfile::TempDir;
use tonic::transport::{Channel, Endpoint, Uri};

/// How long berthd may take to create its socket.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// Path of the berthd binary under test.
pub fn berthd_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("BERTHD") {
        return PathBuf::from(path);
    }
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace.join("target"));
    let binary = target.join("debug/berthd");
    assert!(
        binary.is_file(),
        "{} is missing: run `cargo build -p berthd` first or set BERTHD",
        binary.display()
    );
    binary
}

/// A running berthd with its own temporary directories; stopped (SIGKILL) and cleaned up on
/// drop if the test did not stop it.
pub struct Berthd {
    child: Option<Child>,
    /// The temporary directory holding everything below.
    pub dir: TempDir,
    /// The CRI socket.
    pub socket: PathBuf,
    /// `--root`
    pub root: PathBuf,
    /// `--state`
    pub state: PathBuf,
    /// The config file passed with `--config`.
    pub config: PathBuf,
    /// berthd's stderr.
    pub log: PathBuf,
}

/// Paths of a daemon's temporary directory, before it is started.
pub struct Layout {
    /// The temporary directory.
    pub dir: TempDir,
    /// Where the socket will be.
    pub socket: PathBuf,
    /// `--root`
    pub root: PathBuf,
    /// `--state`
    pub state: PathBuf,
    /// `--config`
    pub config: PathBuf,
    /// stderr of the daemon.
    pub log: PathBuf,
}

impl Layout {
    /// A fresh temporary layout, with a config file whose CNI and registry directories and
    /// drop-in directory (`<dir>/berth.d`, not created) lie inside it (so no host
    /// configuration leaks into the test).
    pub fn new() -> Layout {
        Layout::with_config("")
    }

    /// Like [`Layout::new`], with `extra_toml` appended to the config file. `[cni]` and
    /// `[registry]` are already there (pointing into the layout), so `extra_toml` may add
    /// other tables only; registry hosts go into [`Layout::certs_dir`].
    pub fn with_config(extra_toml: &str) -> Layout {
        let dir = tempfile::Builder::new()
            .prefix("berth-it-")
            .tempdir()
            .unwrap();
        let base = dir.path().to_owned();
        let config = base.join("berth.toml");
        std::fs::write(
            &config,
            format!(
                "config_dir = \"{}\"\n[cni]\nconf_dir = \"{}\"\n[registry]\nconfig_path = \"{}\"\n{extra_toml}",
                base.join("berth.d").display(),
                base.join("net.d").display(),
                base.join("certs.d").display()
            ),
        )
        .unwrap();
        Layout {
            socket: base.join("berth.sock"),
            root: base.join("root"),
            state: base.join("state"),
            log: base.join("berthd.log"),
            config,
            dir,
        }
    }

    /// Adds `keys` (TOML lines, e.g. `bin_dirs = ["/x", "/y"]`) to the config file's `[cni]`
    /// table, whose `conf_dir` stays `<dir>/net.d`. Call before starting the daemon.
    pub fn add_cni_keys(&self, keys: &str) {
        let text = std::fs::read_to_string(&self.config).unwrap();
        let text = text.replacen("[cni]\n", &format!("[cni]\n{}\n", keys.trim_end()), 1);
        std::fs::write(&self.config, text).unwrap();
    }

    /// The `[registry] config_path` of this layout: `<certs_dir>/<host>/hosts.toml` files.
    pub fn certs_dir(&self) -> PathBuf {
        self.dir.path().join("certs.d")
    }

    /// Writes `<certs_dir>/<host>/hosts.toml`.
    pub fn write_hosts_toml(&self, host: &str, content: &str) {
        let dir = self.certs_dir().join(host);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("hosts.toml"), content).unwrap();
    }

    /// Makes `registry` (`host:port`, plain HTTP) the mirror of registry.k8s.io, k8s.gcr.io,
    /// gcr.io, public.ecr.aws and docker.io, with `tests/images/mirror-hosts.sh`.
    pub fn mirror_to(&self, registry: &str) {
        registry::run_script(
            "mirror-hosts.sh",
            &[self.certs_dir().display().to_string(), registry.to_owned()],
        );
    }

    /// The standard arguments for this layout.
    pub fn args(&self) -> Vec<String> {
        daemon_args(&self.config, &self.socket, &self.root, &self.state)
    }

    /// Spawns berthd with `args`, stderr to the layout's log file.
    pub fn spawn(&self, args: &[String]) -> Child {
        spawn_berthd(&self.log, args, &[])
    }

    /// Starts berthd with the standard arguments and waits for its socket.
    pub fn start(self) -> Berthd {
        self.start_with_env(&[])
    }

    /// Like [`Layout::start`], with `env` added to berthd's environment (not kept for
    /// [`Berthd::restart`]).
    pub fn start_with_env(self, env: &[(&str, &str)]) -> Berthd {
        let child = spawn_berthd(&self.log, &self.args(), env);
        let daemon = Berthd {
            child: Some(child),
            socket: self.socket,
            root: self.root,
            state: self.state,
            config: self.config,
            log: self.log,
            dir: self.dir,
        };
        daemon.wait_for_socket();
        daemon
    }
}

fn daemon_args(config: &Path, socket: &Path, root: &Path, state: &Path) -> Vec<String> {
    vec![
        "--config".into(),
        config.display().to_string(),
        "--listen".into(),
        socket.display().to_string(),
        "--root".into(),
        root.display().to_string(),
        "--state".into(),
        state.display().to_string(),
        "--log-level".into(),
        "debug".into(),
    ]
}

fn spawn_berthd(log: &Path, args: &[String], env: &[(&str, &str)]) -> Child {
    spawn_berthd_failing_at(log, args, env, None)
}

/// Spawns berthd with `env` added to its environment; with `fail_at`, a test build (feature
/// `failpoints`) aborts at that step.
fn spawn_berthd_failing_at(
    log: &Path,
    args: &[String],
    env: &[(&str, &str)],
    fail_at: Option<&str>,
) -> Child {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap();
    let mut command = Command::new(berthd_binary());
    match fail_at {
        Some(step) => command.env("BERTH_FAIL_AT", step),
        None => command.env_remove("BERTH_FAIL_AT"),
    };
    command
        .args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .unwrap()
}

impl Default for Layout {
    fn default() -> Self {
        Layout::new()
    }
}

impl Berthd {
    /// Starts a daemon in a fresh temporary layout.
    pub fn start() -> Berthd {
        Layout::new().start()
    }

    fn wait_for_socket(&self) {
        let deadline = Instant::now() + START_TIMEOUT;
        while Instant::now() < deadline {
            if std::os::unix::net::UnixStream::connect(&self.socket).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!(
            "berthd did not serve {} within {:?}; log:\n{}",
            self.socket.display(),
            START_TIMEOUT,
            self.log_text()
        );
    }

    /// The daemon's PID.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("daemon already stopped").id()
    }

    /// What berthd wrote to stderr so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The last `lines` lines of the daemon's log, without the transport's debug chatter.
    pub fn log_tail(&self, lines: usize) -> String {
        let log = self.log_text();
        let all: Vec<&str> = log
            .lines()
            .filter(|l| {
                !["h2::", "sled::", "tonic::transport", "hyper"]
                    .iter()
                    .any(|n| l.contains(n))
            })
            .collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// A gRPC channel over the daemon's socket.
    pub async fn channel(&self) -> Channel {
        connect(&self.socket).await
    }

    /// A RuntimeService client.
    pub async fn runtime(&self) -> RuntimeServiceClient<Channel> {
        RuntimeServiceClient::new(self.channel().await)
    }

    /// An ImageService client.
    pub async fn images(&self) -> ImageServiceClient<Channel> {
        ImageServiceClient::new(self.channel().await)
    }

    /// The CRI endpoint, as crictl takes it: `unix://<socket>`.
    pub fn endpoint(&self) -> String {
        format!("unix://{}", self.socket.display())
    }

    /// Sends SIGTERM and waits for the daemon to exit.
    pub fn terminate(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("daemon already stopped");
        let pid = nix::unistd::Pid::from_raw(child.id() as i32);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
        wait_timeout(&mut child, Duration::from_secs(20))
    }

    /// Whether the daemon process was started and has not been stopped or reaped yet.
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// Kills the daemon (SIGKILL, by its PID) and reaps it, if it is still running.
    /// Idempotent; [`Berthd::restart`] may follow.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Like [`Berthd::restart`], but the new daemon aborts (as `kill -9` would stop it) when
    /// it reaches failpoint `step`; needs berthd built with the `failpoints` feature.
    pub fn restart_failing_at(&mut self, step: &str) {
        assert!(self.child.is_none(), "kill the daemon before restarting it");
        let args = daemon_args(&self.config, &self.socket, &self.root, &self.state);
        self.child = Some(spawn_berthd_failing_at(&self.log, &args, &[], Some(step)));
        self.wait_for_socket();
    }

    /// Waits up to `timeout` for the daemon to end on its own; whether it did (then it is
    /// reaped and [`Berthd::restart`] may follow).
    pub fn wait_for_exit(&mut self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while let Some(child) = self.child.as_mut() {
            if let Ok(Some(_)) = child.try_wait() {
                self.child = None;
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        true
    }

    /// Starts a new daemon on the same config, socket, root and state (after
    /// [`Berthd::terminate`]) and waits for its socket. Its log is appended to the same file.
    pub fn restart(&mut self) {
        assert!(
            self.child.is_none(),
            "terminate the daemon before restarting it"
        );
        let args = daemon_args(&self.config, &self.socket, &self.root, &self.state);
        self.child = Some(spawn_berthd(&self.log, &args, &[]));
        self.wait_for_socket();
    }
}

impl Drop for Berthd {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Waits for `child` to exit, killing it after `timeout`.
pub fn wait_timeout(child: &mut Child, timeout: Duration) -> ExitStatus {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("process {} did not exit within {timeout:?}", child.id());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A gRPC channel to a Unix socket.
pub async fn connect(socket: &Path) -> Channel {
    connect_endpoint(unix_endpoint(), socket).await.unwrap()
}

/// An endpoint for [`connect_endpoint`], to configure before connecting. Its URI is
/// required by tonic but unused: the connector dials the socket.
pub fn unix_endpoint() -> Endpoint {
    Endpoint::from_static("http://berth.invalid")
}

/// A gRPC channel to a Unix socket, with the settings of `endpoint`.
pub async fn connect_endpoint(
    endpoint: Endpoint,
    socket: &Path,
) -> Result<Channel, tonic::transport::Error> {
    let socket = socket.to_owned();
    endpoint
        .connect_with_connector(tower::service_fn(move |_: Uri| {
            let socket = socket.clone();
            async move {
                let stream = tokio::net::UnixStream::connect(socket).await?;
                Ok::<_, std::io::Error>(TokioIo::new(stream))
            }
        }))
        .await
}
