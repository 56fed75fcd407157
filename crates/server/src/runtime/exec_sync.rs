//! `ExecSync`: runs a command in a running container with `runc exec` (the container's
//! process settings with the given argv), collects stdout and stderr (each capped), and
//! kills the process when the timeout passes.

use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use berth_store::ContainerState;
use cri_api::v1;
use tokio::io::AsyncReadExt;

use crate::container::exec_files::ExecFiles;
use crate::container::paths::ContainerPaths;
use crate::container::state::observe;
use crate::daemon::Daemon;
use crate::error::{FieldProblem, ServiceError};

/// Most bytes kept of each output stream.
const MAX_OUTPUT: u64 = 16 << 20;

/// How long runc exec gets to reap a killed process before it is killed itself.
const REAP_WAIT: Duration = Duration::from_secs(5);

pub(super) async fn exec_sync(
    daemon: Arc<Daemon>,
    request: v1::ExecSyncRequest,
) -> Result<v1::ExecSyncResponse, ServiceError> {
    if request.cmd.is_empty() {
        return Err(ServiceError::InvalidArgument {
            field: "cmd",
            problem: FieldProblem::Empty,
        });
    }
    let record = daemon.find_container(&request.container_id)?;
    let paths = ContainerPaths::new(&daemon, &record.id);
    if observe(&paths).state != ContainerState::Running {
        return Err(ServiceError::FailedPrecondition {
            what: format!("container {} is not running", record.id),
        });
    }
    let files = ExecFiles::prepare(&paths, &request.cmd, false)?;

    let mut child = daemon
        .runc()?
        .exec_command(&record.id, &files.process, &files.pid)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|source| ServiceError::Io {
            action: "run runc exec for",
            path: paths.bundle(),
            source,
        })?;
    let stdout = child.stdout.take().expect("piped");
    let stderr = child.stderr.take().expect("piped");
    let stdout = tokio::spawn(read_capped(stdout));
    let stderr = tokio::spawn(read_capped(stderr));
    let waited = if request.timeout > 0 {
        tokio::time::timeout(Duration::from_secs(request.timeout as u64), child.wait()).await
    } else {
        Ok(child.wait().await)
    };
    match waited {
        Ok(status) => {
            let status = status.map_err(|source| ServiceError::Io {
                action: "wait for runc exec in",
                path: paths.bundle(),
                source,
            })?;
            use std::os::unix::process::ExitStatusExt;
            let exit_code = status
                .code()
                .unwrap_or_else(|| 128 + status.signal().unwrap_or(0));
            Ok(v1::ExecSyncResponse {
                stdout: stdout.await?,
                stderr: stderr.await?,
                exit_code,
            })
        }
        Err(_) => {
            // Kill the exec'd process and let runc exec reap it: killing runc first would
            // leave the process to the container's init, which may never reap it.
            if let Some(pid) = files.exec_pid() {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
            if tokio::time::timeout(REAP_WAIT, child.wait()).await.is_err() {
                let _ = child.kill().await;
            }
            Err(ServiceError::ExecTimeout {
                id: record.id,
                seconds: request.timeout,
            })
        }
    }
}

/// Reads a stream to its end, keeping at most [`MAX_OUTPUT`] bytes.
async fn read_capped(stream: impl tokio::io::AsyncRead + Unpin) -> Vec<u8> {
    let mut buffer = Vec::new();
    let mut limited = stream.take(MAX_OUTPUT);
    let _ = limited.read_to_end(&mut buffer).await;
    // Drain the rest so the process is not blocked on a full pipe.
    let _ = tokio::io::copy(&mut limited.into_inner(), &mut tokio::io::sink()).await;
    buffer
}
