//! Test harness: starts a real `berthd` on a temporary socket, root and state, and hands
//! out CRI clients connected to it.
//!
//! The binary is `$BERTHD` when set, else `target/debug/berthd` of this workspace (built by
//! `cargo build` before the tests run, as `make test` does).

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
    /// A fresh temporary layout, with a config file whose CNI and registry directories lie
    /// inside it (so no host configuration leaks into the test).
    pub fn new() -> Layout {
        let dir = tempfile::Builder::new()
            .prefix("berth-it-")
            .tempdir()
            .unwrap();
        let base = dir.path().to_owned();
        let config = base.join("berth.toml");
        std::fs::write(
            &config,
            format!(
                "[cni]\nconf_dir = \"{}\"\n[registry]\nconfig_path = \"{}\"\n",
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

    /// The standard arguments for this layout.
    pub fn args(&self) -> Vec<String> {
        vec![
            "--config".into(),
            self.config.display().to_string(),
            "--listen".into(),
            self.socket.display().to_string(),
            "--root".into(),
            self.root.display().to_string(),
            "--state".into(),
            self.state.display().to_string(),
            "--log-level".into(),
            "debug".into(),
        ]
    }

    /// Spawns berthd with `args`, stderr to the layout's log file.
    pub fn spawn(&self, args: &[String]) -> Child {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        Command::new(berthd_binary())
            .args(args)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap()
    }

    /// Starts berthd with the standard arguments and waits for its socket.
    pub fn start(self) -> Berthd {
        let child = self.spawn(&self.args());
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

    /// Sends SIGTERM and waits for the daemon to exit.
    pub fn terminate(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("daemon already stopped");
        let pid = nix::unistd::Pid::from_raw(child.id() as i32);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
        wait_timeout(&mut child, Duration::from_secs(20))
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
    let socket = socket.to_owned();
    // The URI is required by tonic but unused: the connector dials the socket.
    Endpoint::try_from("http://berth.invalid")
        .unwrap()
        .connect_with_connector(tower::service_fn(move |_: Uri| {
            let socket = socket.clone();
            async move {
                let stream = tokio::net::UnixStream::connect(socket).await?;
                Ok::<_, std::io::Error>(TokioIo::new(stream))
            }
        }))
        .await
        .unwrap()
}
