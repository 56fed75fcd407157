//! `Exec`: validates the request and returns a streaming URL; the command runs under the
//! container's shim (the container's process settings and the given argv, as for ExecSync)
//! when the client connects, its streams relayed between the client and the shim.

use std::sync::Arc;
use std::time::Duration;

use berth_store::ContainerState;
use berth_stream::{BoxFuture, ExecIo, ExecOptions, Runner, StreamRequest};
use cri_api::v1;
use tokio::sync::mpsc;

use crate::container::exec_session::{self, ExecSession, ExecStreams};
use crate::daemon::Daemon;
use crate::error::ServiceError;
use crate::validate;

pub(super) async fn exec(
    daemon: Arc<Daemon>,
    request: v1::ExecRequest,
) -> Result<v1::ExecResponse, ServiceError> {
    validate::command("cmd", &request.cmd)?;
    let options = stream_options(request.stdin, request.stdout, request.stderr, request.tty)?;
    let view = daemon.find_container(&request.container_id)?;
    let state = view.state();
    let record = view.record;
    if state != ContainerState::Running {
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
    })?;
    Ok(v1::ExecResponse { url })
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

/// How long to wait for the client's first terminal size before starting a TTY command.
const FIRST_SIZE_WAIT: Duration = Duration::from_millis(200);

/// Runs one command for a streaming exec session.
struct ExecRunner {
    daemon: Arc<Daemon>,
    container_id: String,
    cmd: Vec<String>,
    tty: bool,
}

impl Runner for ExecRunner {
    fn run(self: Box<Self>, io: ExecIo) -> BoxFuture<Result<i32, String>> {
        Box::pin(async move { self.bridge(io).await.map_err(|e| e.to_string()) })
    }

    fn held_bytes(&self) -> usize {
        let args: usize = self.cmd.iter().map(String::capacity).sum();
        self.container_id.capacity() + self.cmd.capacity() * std::mem::size_of::<String>() + args
    }
}

impl ExecRunner {
    /// Starts the command under the shim and relays its streams until the exit frame.
    async fn bridge(self, io: ExecIo) -> Result<i32, ServiceError> {
        let tty = io.resize.is_some() || self.tty;
        let mut resize = io.resize;
        // A size the client sends right away becomes the terminal's initial size.
        let mut console = None;
        if let Some(events) = resize.as_mut() {
            if let Ok(Some(size)) = tokio::time::timeout(FIRST_SIZE_WAIT, events.recv()).await {
                console = Some((size.width, size.height));
            }
        }
        let streams = ExecStreams {
            stdin: io.stdin.is_some(),
            stdout: io.stdout.is_some(),
            stderr: io.stderr.is_some() && !tty,
            tty,
        };
        let session = ExecSession::start(
            &self.daemon,
            &self.container_id,
            &self.cmd,
            streams,
            console,
        )
        .await?;
        let (mut reader, mut writer) = (session.reader, session.writer);

        // One task writes to the shim: input, its end, and terminal sizes.
        let (to_shim, mut outgoing) = mpsc::channel::<(u8, Vec<u8>)>(16);
        let writer_task = tokio::spawn(async move {
            while let Some((id, payload)) = outgoing.recv().await {
                if !writer.send(id, &payload).await {
                    return;
                }
            }
            // Keep the connection open: the shim takes a closed one for a gone client.
            std::future::pending::<()>().await;
        });
        let mut feeders = Vec::new();
        if let Some(mut input) = io.stdin {
            let to_shim = to_shim.clone();
            feeders.push(tokio::spawn(async move {
                while let Some(chunk) = input.recv().await {
                    if to_shim.send((exec_session::STDIN, chunk)).await.is_err() {
                        return;
                    }
                }
                let _ = to_shim.send((exec_session::EOF, Vec::new())).await;
            }));
        }
        if let Some(mut events) = resize {
            let to_shim = to_shim.clone();
            feeders.push(tokio::spawn(async move {
                while let Some(size) = events.recv().await {
                    let payload = exec_session::resize_payload(size.width, size.height);
                    if to_shim
                        .send((exec_session::RESIZE, payload.to_vec()))
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
            }));
        }
        drop(to_shim);

        let (mut out, mut err) = (io.stdout, io.stderr);
        let mut exit = None;
        while let Some((id, payload)) = reader.next().await? {
            let sink = match id {
                exec_session::STDOUT => &mut out,
                exec_session::STDERR => &mut err,
                exec_session::EXIT => {
                    exit = Some(exec_session::exit_code(&payload)?);
                    break;
                }
                _ => continue,
            };
            if let Some(tx) = sink {
                if tx.send(payload).await.is_err() {
                    // The client stopped reading this stream; the rest is dropped here.
                    *sink = None;
                }
            }
        }
        for task in feeders {
            task.abort();
        }
        writer_task.abort();
        exit.ok_or_else(|| exec_session::ended_early(&self.container_id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic::{Code, Status};

    #[test]
    fn pending_limits_are_resource_exhausted_naming_the_limit() {
        let status = Status::from(ServiceError::from(
            berth_stream::RegisterError::TooManySessions { max: 3 },
        ));
        assert_eq!(status.code(), Code::ResourceExhausted);
        assert!(
            status.message().contains("stream.max_pending_sessions"),
            "{}",
            status.message()
        );
        let status = Status::from(ServiceError::from(
            berth_stream::RegisterError::TooManyBytes {
                held: 10,
                needed: 5,
                max: 12,
            },
        ));
        assert_eq!(status.code(), Code::ResourceExhausted);
        assert!(status.message().contains("stream.max_pending_bytes"));
        let status = Status::from(ServiceError::from(berth_stream::RegisterError::Token(
            std::io::ErrorKind::NotFound.into(),
        )));
        assert_eq!(status.code(), Code::Internal);
    }
}
