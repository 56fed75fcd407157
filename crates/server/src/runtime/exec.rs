//! `Exec`: validates the request and returns a streaming URL; the command runs (with `runc
//! exec`, the container's process settings and the given argv, as for ExecSync) when the
//! client connects, its stdio wired to the client's streams.

use std::os::unix::process::ExitStatusExt;
use std::process::Stdio;
use std::sync::Arc;

use berth_store::ContainerState;
use berth_stream::{BoxFuture, ExecIo, ExecOptions, Runner, StreamRequest};
use cri_api::v1;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

use crate::container::exec_files::ExecFiles;
use crate::container::paths::ContainerPaths;
use crate::container::state::observe;
use crate::daemon::Daemon;
use crate::error::{FieldProblem, ServiceError};

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
        tty: options.tty,
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
    tty: bool,
}

impl Runner for ExecRunner {
    fn run(self: Box<Self>, io: ExecIo) -> BoxFuture<Result<i32, String>> {
        Box::pin(async move {
            let result = if io.resize.is_some() || self.tty {
                self.run_tty(io).await
            } else {
                self.run_piped(io).await
            };
            result.map_err(|e| e.to_string())
        })
    }
}

impl ExecRunner {
    /// A TTY exec. runc (in the foreground, without `--detach`) gets the slave side of a pty
    /// berthd opens as its stdio: it creates the container-side terminal itself, copies
    /// between the two and exits with the command's status, so berthd needs to be no
    /// subreaper. Resize events set the size on berthd's pty and SIGWINCH tells runc to
    /// pass it on.
    async fn run_tty(self, io: ExecIo) -> Result<i32, ServiceError> {
        let paths = ContainerPaths::new(&self.daemon, &self.container_id);
        let files = ExecFiles::prepare(&paths, &self.cmd, true)?;
        let pty = nix::pty::openpty(None, None).map_err(|errno| ServiceError::Io {
            action: "open a pty for",
            path: paths.bundle(),
            source: errno.into(),
        })?;
        let master = std::fs::File::from(pty.master);
        let slave = pty.slave;
        let dup_err = |source: std::io::Error| ServiceError::Io {
            action: "duplicate the pty of",
            path: paths.bundle(),
            source,
        };
        let slave_out = slave.try_clone().map_err(dup_err)?;
        let slave_err = slave.try_clone().map_err(dup_err)?;
        let mut resize = io.resize;
        // A size sent before the command starts is applied first; runc reads it at start.
        if let Some(events) = resize.as_mut() {
            if let Ok(Some(size)) =
                tokio::time::timeout(std::time::Duration::from_millis(200), events.recv()).await
            {
                let _ = berth_shim::pty::resize(&master, size.width, size.height);
            }
        }
        let mut child = self
            .daemon
            .runc()?
            .exec_command(&self.container_id, &files.process, &files.pid)
            .stdin(Stdio::from(slave))
            .stdout(Stdio::from(slave_out))
            .stderr(Stdio::from(slave_err))
            .kill_on_drop(true)
            .spawn()
            .map_err(|source| ServiceError::Io {
                action: "run runc exec for",
                path: paths.bundle(),
                source,
            })?;
        let runc_pid = child.id().and_then(|pid| i32::try_from(pid).ok());

        let reader = master.try_clone().map_err(dup_err)?;
        let writer = master.try_clone().map_err(dup_err)?;
        // Blocking pty I/O on plain threads: each ends at EOF/EIO (runc closed the slave) or
        // when its channel closes.
        let stdout = io.stdout;
        let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
        std::thread::spawn(move || {
            use std::io::Read;
            let mut reader = reader;
            let mut buffer = vec![0u8; 32 * 1024];
            loop {
                match reader.read(&mut buffer) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if let Some(sink) = &stdout {
                            // A gone client: keep reading so runc is never blocked.
                            let _ = sink.blocking_send(buffer[..n].to_vec());
                        }
                    }
                }
            }
            let _ = done_tx.send(());
        });
        if let Some(mut input) = io.stdin {
            std::thread::spawn(move || {
                use std::io::Write;
                let mut writer = writer;
                while let Some(chunk) = input.blocking_recv() {
                    if writer.write_all(&chunk).is_err() {
                        return;
                    }
                }
            });
        }
        if let Some(mut events) = resize {
            tokio::spawn(async move {
                while let Some(size) = events.recv().await {
                    if berth_shim::pty::resize(&master, size.width, size.height).is_err() {
                        return;
                    }
                    if let Some(pid) = runc_pid {
                        let _ = nix::sys::signal::kill(
                            nix::unistd::Pid::from_raw(pid),
                            nix::sys::signal::Signal::SIGWINCH,
                        );
                    }
                }
            });
        }
        let status = child.wait().await.map_err(|source| ServiceError::Io {
            action: "wait for runc exec in",
            path: paths.bundle(),
            source,
        })?;
        // runc copied the command's output before it exited; what is left in the pty is
        // read until EIO (something outside could hold the slave: do not wait forever).
        let _ = tokio::time::timeout(std::time::Duration::from_secs(2), done_rx).await;
        Ok(status
            .code()
            .unwrap_or_else(|| 128 + status.signal().unwrap_or(0)))
    }

    async fn run_piped(self, io: ExecIo) -> Result<i32, ServiceError> {
        let paths = ContainerPaths::new(&self.daemon, &self.container_id);
        let files = ExecFiles::prepare(&paths, &self.cmd, false)?;
        let (process_file, pid_file) = (&files.process, &files.pid);

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
            .exec_command(&self.container_id, process_file, pid_file)
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
