//! `Exec`: validates the request and returns a streaming URL; the command runs (with `runc
//! exec`, the container's process settings and the given argv, as for ExecSync) when the
//! client connects, its stdio wired to the client's streams.

use std::os::unix::process::ExitStatusExt;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;

use berth_store::ContainerState;
use berth_stream::{BoxFuture, ExecIo, ExecOptions, Runner, StreamRequest};
use cri_api::v1;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

use crate::container::paths::ContainerPaths;
use crate::container::state::observe;
use crate::daemon::Daemon;
use crate::error::{FieldProblem, ServiceError};
use crate::ids::new_id;

pub(super) async fn exec(
    daemon: Arc<Daemon>,
    request: v1::ExecRequest,
) -> Result<v1::ExecResponse, ServiceError> {
    if request.cmd.is_empty() {
        return Err(ServiceError::InvalidArgument {
            field: "cmd",
            problem: FieldProblem::Empty,
        });
    }
    let options = stream_options(request.stdin, request.stdout, request.stderr, request.tty)?;
    if options.tty {
        return Err(ServiceError::Unsupported {
            field: "tty",
            reason: "streaming exec with a TTY is not implemented by berth yet".into(),
        });
    }
    let record = daemon.find_container(&request.container_id)?;
    let paths = ContainerPaths::new(&daemon, &record.id);
    if observe(&paths).state != ContainerState::Running {
        return Err(ServiceError::FailedPrecondition {
            what: format!("container {} is not running", record.id),
        });
    }
    let runner = ExecRunner {
        daemon: daemon.clone(),
        container_id: record.id,
        cmd: request.cmd,
    };
    let url = daemon.stream()?.register(StreamRequest::Exec {
        options,
        runner: Box::new(runner),
    });
    Ok(v1::ExecResponse {
        url: url.map_err(stream_io)?,
    })
}

/// The stream options of an Exec or Attach request, checked as kubelet checks them.
pub(super) fn stream_options(
    stdin: bool,
    stdout: bool,
    stderr: bool,
    tty: bool,
) -> Result<ExecOptions, ServiceError> {
    if !stdin && !stdout && !stderr {
        return Err(ServiceError::Unsupported {
            field: "stdin",
            reason: "one of stdin, stdout, or stderr must be set".into(),
        });
    }
    if tty && stderr {
        return Err(ServiceError::Unsupported {
            field: "stderr",
            reason: "tty and stderr cannot both be true".into(),
        });
    }
    Ok(ExecOptions {
        stdin,
        stdout,
        stderr,
        tty,
    })
}

pub(super) fn stream_io(source: std::io::Error) -> ServiceError {
    ServiceError::Io {
        action: "issue a streaming token from",
        path: "/dev/urandom".into(),
        source,
    }
}

/// Runs one command for a streaming exec session.
struct ExecRunner {
    daemon: Arc<Daemon>,
    container_id: String,
    cmd: Vec<String>,
}

impl Runner for ExecRunner {
    fn run(self: Box<Self>, io: ExecIo) -> BoxFuture<Result<i32, String>> {
        Box::pin(async move { self.run_piped(io).await.map_err(|e| e.to_string()) })
    }
}

impl ExecRunner {
    async fn run_piped(self, io: ExecIo) -> Result<i32, ServiceError> {
        let paths = ContainerPaths::new(&self.daemon, &self.container_id);
        let exec_id = new_id().map_err(|source| ServiceError::Io {
            action: "read random bytes from",
            path: "/dev/urandom".into(),
            source,
        })?;
        let exec_dir = paths.state.join("exec");
        std::fs::create_dir_all(&exec_dir).map_err(io_err("create", &exec_dir))?;
        let process_file = exec_dir.join(format!("{}.json", &exec_id[..16]));
        let pid_file = exec_dir.join(format!("{}.pid", &exec_id[..16]));
        let _cleanup = RemoveOnDrop(vec![process_file.clone(), pid_file.clone()]);

        let config = paths.bundle().join("config.json");
        let spec_text = std::fs::read_to_string(&config).map_err(io_err("read", &config))?;
        let spec: serde_json::Value =
            serde_json::from_str(&spec_text).map_err(|err| ServiceError::Io {
                action: "parse",
                path: config.clone(),
                source: err.into(),
            })?;
        let mut process = spec.get("process").cloned().unwrap_or_default();
        process["args"] = serde_json::json!(self.cmd);
        process["terminal"] = serde_json::json!(false);
        std::fs::write(&process_file, process.to_string())
            .map_err(io_err("write", &process_file))?;

        let piped = |wanted: bool| {
            if wanted {
                Stdio::piped()
            } else {
                Stdio::null()
            }
        };
        let mut child = self
            .daemon
            .runc()?
            .exec_command(&self.container_id, &process_file, &pid_file)
            .stdin(piped(io.stdin.is_some()))
            .stdout(piped(io.stdout.is_some()))
            .stderr(piped(io.stderr.is_some()))
            .kill_on_drop(true)
            .spawn()
            .map_err(|source| ServiceError::Io {
                action: "run runc exec for",
                path: paths.bundle(),
                source,
            })?;
        let mut pumps = Vec::new();
        if let (Some(mut input), Some(mut stdin)) = (io.stdin, child.stdin.take()) {
            // Not joined: the client may keep stdin open after the command ends.
            tokio::spawn(async move {
                while let Some(chunk) = input.recv().await {
                    if stdin.write_all(&chunk).await.is_err() {
                        return;
                    }
                }
                // Dropping `stdin` closes the pipe: EOF for the command.
            });
        }
        if let (Some(sink), Some(stdout)) = (io.stdout, child.stdout.take()) {
            pumps.push(tokio::spawn(pump(stdout, sink)));
        }
        if let (Some(sink), Some(stderr)) = (io.stderr, child.stderr.take()) {
            pumps.push(tokio::spawn(pump(stderr, sink)));
        }
        let status = child.wait().await.map_err(|source| ServiceError::Io {
            action: "wait for runc exec in",
            path: paths.bundle(),
            source,
        })?;
        for task in pumps {
            let _ = task.await;
        }
        Ok(status
            .code()
            .unwrap_or_else(|| 128 + status.signal().unwrap_or(0)))
    }
}

/// Copies a pipe to the client until EOF.
async fn pump(mut from: impl tokio::io::AsyncRead + Unpin, to: mpsc::Sender<Vec<u8>>) {
    let mut buffer = vec![0u8; 32 * 1024];
    loop {
        match from.read(&mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if to.send(buffer[..n].to_vec()).await.is_err() {
                    // The client is gone: keep draining so the command is not blocked.
                    let _ = tokio::io::copy(&mut from, &mut tokio::io::sink()).await;
                    return;
                }
            }
        }
    }
}

/// Removes the exec's temporary files however the call ends.
struct RemoveOnDrop(Vec<PathBuf>);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        for path in &self.0 {
            let _ = std::fs::remove_file(path);
        }
    }
}

fn io_err(
    action: &'static str,
    path: &std::path::Path,
) -> impl FnOnce(std::io::Error) -> ServiceError {
    let path = path.to_owned();
    move |source| ServiceError::Io {
        action,
        path,
        source,
    }
}
