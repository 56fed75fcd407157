//! A command run in a container under its shim (ExecSync and streaming exec): berthd writes
//! the process JSON and asks the shim to `runc exec` it. The command is the shim's child, its
//! stdio is held by the shim, and berthd only holds the framed connection to the shim, so a
//! restart of berthd ends the client's session but not the command.

use std::time::Duration;

use berth_shim::protocol::{frame, ExecRequest};
use berth_shim::{ShimClient, ShimError};

use crate::container::exec_files::ExecFiles;
use crate::container::paths::ContainerPaths;
use crate::container::shim_stream::{self, FrameReader, FrameWriter};
use crate::daemon::Daemon;
use crate::error::ServiceError;

/// How long runc may take to start the command.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// Which streams the command gets.
#[derive(Debug, Clone, Copy, Default)]
pub struct ExecStreams {
    pub stdin: bool,
    pub stdout: bool,
    pub stderr: bool,
    pub tty: bool,
}

/// A running command and the connection carrying its streams.
pub struct ExecSession {
    pub reader: FrameReader,
    pub writer: FrameWriter,
    /// Removed when the session is dropped (runc has read it by then).
    _files: ExecFiles,
}

impl ExecSession {
    /// Starts `cmd` in container `id` (which must be running). `console` is the initial
    /// terminal size (width, height) of a TTY command.
    pub async fn start(
        daemon: &Daemon,
        id: &str,
        cmd: &[String],
        streams: ExecStreams,
        console: Option<(u16, u16)>,
    ) -> Result<ExecSession, ServiceError> {
        let paths = ContainerPaths::new(daemon, id);
        let files = ExecFiles::prepare(&paths, cmd, streams.tty, console)?;
        let request = ExecRequest {
            exec_id: files.id.clone(),
            process: files.process.clone(),
            tty: streams.tty,
            stdin: streams.stdin,
            stdout: streams.stdout,
            stderr: streams.stderr,
        };
        let client = ShimClient::new(paths.shim());
        let started = tokio::task::spawn_blocking(move || client.exec(request, START_TIMEOUT))
            .await?
            .map_err(|e| match e {
                ShimError::NotRunning { .. } => ServiceError::FailedPrecondition {
                    what: format!("container {id} is not running"),
                },
                ShimError::Rejected { message } => ServiceError::ExecStart {
                    id: id.to_owned(),
                    message,
                },
                other => ServiceError::Shim(other),
            })?;
        let (stream, pid) = started;
        tracing::debug!(container = id, exec = %files.id, pid, cmd = %berth_runtime::quote(&format!("{cmd:?}")), "exec started");
        let (reader, writer) = shim_stream::split(stream, &paths.shim())?;
        Ok(ExecSession {
            reader,
            writer,
            _files: files,
        })
    }
}

/// The exit code an `exit` frame carries.
pub fn exit_code(payload: &[u8]) -> Result<i32, ServiceError> {
    <[u8; 4]>::try_from(payload)
        .map(i32::from_be_bytes)
        .map_err(|_| {
            ServiceError::Shim(ShimError::Protocol {
                message: format!("exit frame of {} bytes", payload.len()),
            })
        })
}

/// The error for a connection that closed before the `exit` frame.
pub fn ended_early(id: &str) -> ServiceError {
    ServiceError::Shim(ShimError::Protocol {
        message: format!("the shim of container {id} closed the exec session without an exit code"),
    })
}

/// A `signal` frame's payload.
pub fn signal_payload(signal: nix::sys::signal::Signal) -> [u8; 1] {
    [signal as i32 as u8]
}

/// A `resize` frame's payload.
pub fn resize_payload(width: u16, height: u16) -> [u8; 4] {
    let (w, h) = (width.to_be_bytes(), height.to_be_bytes());
    [w[0], w[1], h[0], h[1]]
}

/// The frame ids, re-exported for the RPCs.
pub use frame::{EOF, EXIT, RESIZE, SIGNAL, STDERR, STDIN, STDOUT};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads() {
        assert_eq!(exit_code(&7i32.to_be_bytes()).unwrap(), 7);
        assert_eq!(exit_code(&(-1i32).to_be_bytes()).unwrap(), -1);
        assert!(exit_code(b"abc").is_err());
        assert_eq!(resize_payload(80, 24), [0, 80, 0, 24]);
        assert_eq!(resize_payload(300, 2), [1, 44, 0, 2]);
        assert_eq!(signal_payload(nix::sys::signal::Signal::SIGKILL), [9]);
    }
}
