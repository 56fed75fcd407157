//! berth's streaming server: the URLs that `Exec`, `Attach` and `PortForward` return lead
//! here. Each URL carries a single-use random token ([`tokens`]) standing for the request
//! the RPC validated; the client upgrades the HTTP connection to SPDY/3.1 ([`spdy`]) and
//! speaks the Kubernetes remotecommand ([`remotecommand`]) or portforward ([`portforward`])
//! protocol on it, or to WebSocket ([`websocket`]: channel-prefixed messages for exec and
//! attach, SPDY tunnelled in binary messages for port forwarding).
//!
//! The server knows nothing about containers: an RPC registers a [`StreamRequest`] whose
//! [`Runner`] (exec, attach) or [`PortDialer`] (port forward) does the container side.

#![deny(unsafe_code)]

mod http;
pub mod portforward;
pub mod remotecommand;
mod server;
mod sessions;
pub mod spdy;
pub mod tokens;
mod trim;
pub use trim::{fix_malloc_thresholds, free_heap_bytes, limit_arenas, release_free_memory};
pub mod websocket;

use std::future::Future;
use std::pin::Pin;

use tokio::sync::mpsc;

pub use server::{Handle, Server, ServerConfig};
pub use sessions::SessionCount;
pub use tokens::{PendingLimits, RegisterError};

/// A boxed, sendable future.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// Which standard streams a session carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ExecOptions {
    /// The client sends stdin.
    pub stdin: bool,
    /// The client wants stdout.
    pub stdout: bool,
    /// The client wants stderr (never with `tty`).
    pub stderr: bool,
    /// The process runs on a terminal; the client may send resize events.
    pub tty: bool,
}

/// A terminal size sent on the resize stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
pub struct TerminalSize {
    /// Columns.
    #[serde(rename = "Width")]
    pub width: u16,
    /// Rows.
    #[serde(rename = "Height")]
    pub height: u16,
}

/// The client's side of a session, as a runner sees it. A closed `stdin` channel is EOF;
/// the runner drops `stdout`/`stderr` when the process's output ends.
#[derive(Debug, Default)]
pub struct ExecIo {
    /// Bytes the client sent on stdin.
    pub stdin: Option<mpsc::Receiver<Vec<u8>>>,
    /// Process output for the client's stdout.
    pub stdout: Option<mpsc::Sender<Vec<u8>>>,
    /// Process output for the client's stderr.
    pub stderr: Option<mpsc::Sender<Vec<u8>>>,
    /// Terminal size changes.
    pub resize: Option<mpsc::Receiver<TerminalSize>>,
}

/// Runs the container side of an exec or attach session.
pub trait Runner: Send + 'static {
    /// Runs to completion: `Ok(exit code)`, or `Err(message)` when it could not run.
    fn run(self: Box<Self>, io: ExecIo) -> BoxFuture<Result<i32, String>>;

    /// Heap bytes this runner holds while its URL is pending (an exec's command, the
    /// container ID): what the pending-session byte limit charges for it.
    fn held_bytes(&self) -> usize;
}

/// Opens connections to ports of one pod.
pub trait PortDialer: Send + Sync + 'static {
    /// A connection to `port` on the pod's loopback.
    fn dial(&self, port: u16) -> BoxFuture<std::io::Result<tokio::net::TcpStream>>;

    /// Heap bytes this dialer holds while its URL is pending (see [`Runner::held_bytes`]).
    fn held_bytes(&self) -> usize;
}

/// What a token stands for.
pub enum StreamRequest {
    /// `Exec`.
    Exec {
        /// Streams the RPC asked for.
        options: ExecOptions,
        /// Runs the command.
        runner: Box<dyn Runner>,
    },
    /// `Attach`.
    Attach {
        /// Streams the RPC asked for.
        options: ExecOptions,
        /// Attaches to the container's stdio.
        runner: Box<dyn Runner>,
    },
    /// `PortForward`.
    PortForward {
        /// Connects to the pod's ports.
        dialer: Box<dyn PortDialer>,
    },
}

impl StreamRequest {
    /// The URL path segment of this kind of request.
    pub fn kind(&self) -> &'static str {
        match self {
            StreamRequest::Exec { .. } => "exec",
            StreamRequest::Attach { .. } => "attach",
            StreamRequest::PortForward { .. } => "portforward",
        }
    }

    /// Heap bytes the request holds while it is pending (its runner's or dialer's).
    pub fn held_bytes(&self) -> usize {
        match self {
            StreamRequest::Exec { runner, .. } | StreamRequest::Attach { runner, .. } => {
                runner.held_bytes()
            }
            StreamRequest::PortForward { dialer } => dialer.held_bytes(),
        }
    }
}

impl std::fmt::Debug for StreamRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StreamRequest::Exec { options, .. } => write!(f, "Exec({options:?})"),
            StreamRequest::Attach { options, .. } => write!(f, "Attach({options:?})"),
            StreamRequest::PortForward { .. } => f.write_str("PortForward"),
        }
    }
}
