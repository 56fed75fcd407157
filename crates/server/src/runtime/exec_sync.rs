//! `ExecSync`: runs a command in a running container with `runc exec` (the container's
//! process settings with the given argv), collects stdout and stderr (each capped), and
//! kills the process when the timeout passes.

use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use berth_store::ContainerState;
use cri_api::v1;
use tokio::io::AsyncReadExt;

use crate::container::paths::ContainerPaths;
use crate::container::state::observe;
use crate::daemon::Daemon;
use crate::error::{FieldProblem, ServiceError};
use crate::ids::new_id;

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
    let exec_id = new_id().map_err(|source| ServiceError::Io {
        action: "read random bytes from",
        path: "/dev/urandom".into(),
        source,
    })?;
    let exec_dir = paths.state.join("exec");
    std::fs::create_dir_all(&exec_dir).map_err(ServiceError::io("create", &exec_dir))?;
    let process_file = exec_dir.join(format!("{}.json", &exec_id[..16]));
    let pid_file = exec_dir.join(format!("{}.pid", &exec_id[..16]));
    let _cleanup = RemoveOnDrop(vec![process_file.clone(), pid_file.clone()]);

    let spec_text = std::fs::read_to_string(paths.bundle().join("config.json")).map_err(
        ServiceError::io("read", &paths.bundle().join("config.json")),
    )?;
    let spec: serde_json::Value =
        serde_json::from_str(&spec_text).map_err(|err| ServiceError::Io {
            action: "parse",
            path: paths.bundle().join("config.json"),
            source: err.into(),
        })?;
    let mut process = spec.get("process").cloned().unwrap_or_default();
    process["args"] = serde_json::json!(request.cmd);
    process["terminal"] = serde_json::json!(false);
    std::fs::write(&process_file, process.to_string())
        .map_err(ServiceError::io("write", &process_file))?;

    let mut child = daemon
        .runc()?
        .exec_command(&record.id, &process_file, &pid_file)
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
            if let Some(pid) = std::fs::read_to_string(&pid_file)
                .ok()
                .and_then(|p| p.trim().parse::<i32>().ok())
            {
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

/// Removes the exec's temporary files however the call ends.
struct RemoveOnDrop(Vec<std::path::PathBuf>);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        for path in &self.0 {
            let _ = std::fs::remove_file(path);
        }
    }
}
