//! The one error type of the library side.

use std::io;
use std::path::PathBuf;
use std::time::Duration;

/// Errors of [`crate::spawn()`], [`crate::ShimClient`] and [`crate::read_exit`].
#[derive(Debug, thiserror::Error)]
pub enum ShimError {
    /// The shim could not be started, or failed before it ran runc (bad arguments, state dir
    /// not writable, log path not creatable, ...), or died without reporting.
    #[error("starting berth-shim failed: {message}")]
    Spawn { message: String },
    /// `runc create` failed; `message` is runc's own error (last error in its JSON log, or its
    /// stderr).
    #[error("runc: {message}")]
    Runc { message: String },
    /// No answer from the shim in time.
    #[error("timed out after {after:?} waiting for {what}")]
    Timeout { what: &'static str, after: Duration },
    /// The shim answered something that is not the protocol.
    #[error("shim protocol error: {message}")]
    Protocol { message: String },
    /// The shim refused a request (`{"ok":false,"error":..}`), e.g. resize without a tty.
    #[error("shim refused the request: {message}")]
    Rejected { message: String },
    /// No shim is listening: it has exited (the container is gone; see [`crate::read_exit`])
    /// or was never started.
    #[error("no shim running for {}", state_dir.display())]
    NotRunning { state_dir: PathBuf },
    /// An I/O error on a named path.
    #[error("{context} {}: {source}", path.display())]
    Io {
        context: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

impl ShimError {
    pub(crate) fn io(context: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        ShimError::Io {
            context,
            path: path.into(),
            source,
        }
    }
}
