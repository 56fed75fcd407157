//! `Attach`: validates the container and returns a streaming URL. When the client connects,
//! berthd opens an attach connection to the container's berth-shim (which holds the
//! container's stdio) and copies between it and the client's streams; a TTY's resize events
//! go through the shim's `resize` operation.

use std::path::PathBuf;
use std::sync::Arc;

use berth_shim::protocol::frame;
use berth_shim::ShimClient;
use berth_store::ContainerState;
use berth_stream::{BoxFuture, ExecIo, Runner, StreamRequest};
use cri_api::v1;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::container::paths::ContainerPaths;
use crate::container::state::observe;
use crate::daemon::Daemon;
use crate::error::ServiceError;

pub(super) async fn attach(
    daemon: Arc<Daemon>,
    request: v1::AttachRequest,
) -> Result<v1::AttachResponse, ServiceError> {
    let options =
        super::exec::stream_options(request.stdin, request.stdout, request.stderr, request.tty)?;
    let record = daemon.find_container(&request.container_id)?;
    let paths = ContainerPaths::new(&daemon, &record.id);
    if observe(&paths).state != ContainerState::Running {
        return Err(ServiceError::FailedPrecondition {
            what: format!("container {} is not running", record.id),
        });
    }
    let runner = AttachRunner {
        shim_dir: paths.shim(),
        stdin: options.stdin,
        stdout: options.stdout,
        stderr: options.stderr && !options.tty,
    };
    let url = daemon.stream()?.register(StreamRequest::Attach {
        options,
        runner: Box::new(runner),
    });
    Ok(v1::AttachResponse {
        url: url.map_err(super::exec::stream_io)?,
    })
}

/// Bridges one attach session to the shim.
struct AttachRunner {
    shim_dir: PathBuf,
    stdin: bool,
    stdout: bool,
    stderr: bool,
}

impl Runner for AttachRunner {
    fn run(self: Box<Self>, io: ExecIo) -> BoxFuture<Result<i32, String>> {
        Box::pin(async move { self.bridge(io).await.map_err(|e| e.to_string()) })
    }
}

impl AttachRunner {
    /// Runs until the shim closes the connection (the container ended) or the client's
    /// output streams are gone.
    async fn bridge(self, io: ExecIo) -> Result<i32, ServiceError> {
        let client = ShimClient::new(&self.shim_dir);
        let (stdin, stdout, stderr) = (self.stdin, self.stdout, self.stderr);
        let attach_client = client.clone();
        let stream =
            tokio::task::spawn_blocking(move || attach_client.attach(stdin, stdout, stderr))
                .await??;
        let stream = stream
            .set_nonblocking(true)
            .and_then(|()| tokio::net::UnixStream::from_std(stream))
            .map_err(|source| ServiceError::Io {
                action: "attach to the shim at",
                path: self.shim_dir.clone(),
                source,
            })?;
        let (mut from_shim, mut to_shim) = stream.into_split();

        let mut background = Vec::new();
        if let Some(mut input) = io.stdin {
            background.push(tokio::spawn(async move {
                let mut frames = Vec::new();
                while let Some(chunk) = input.recv().await {
                    frames.clear();
                    frame::push(&mut frames, frame::STDIN, &chunk);
                    if to_shim.write_all(&frames).await.is_err() {
                        return;
                    }
                }
                let _ = to_shim.write_all(&frame::header(frame::EOF, 0)).await;
                // Keep the write half open: the shim takes a closed connection for a detach.
                std::future::pending::<()>().await;
            }));
        }
        if let Some(mut events) = io.resize {
            background.push(tokio::spawn(async move {
                while let Some(size) = events.recv().await {
                    let client = client.clone();
                    let _ =
                        tokio::task::spawn_blocking(move || client.resize(size.width, size.height))
                            .await;
                }
            }));
        }

        let (out, err) = (io.stdout, io.stderr);
        let mut buffer = Vec::with_capacity(frame::HEADER + frame::MAX_PAYLOAD);
        let mut chunk = vec![0u8; 16 * 1024];
        loop {
            let n = match from_shim.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            buffer.extend_from_slice(&chunk[..n]);
            loop {
                let (id, end) = match frame::parse(&buffer) {
                    Ok(Some(f)) => f,
                    Ok(None) => break,
                    Err(()) => {
                        return Err(ServiceError::Shim(berth_shim::ShimError::Protocol {
                            message: "oversized attach frame".into(),
                        }))
                    }
                };
                let sink = match id {
                    frame::STDOUT => out.as_ref(),
                    frame::STDERR => err.as_ref(),
                    _ => None,
                };
                if let Some(sink) = sink {
                    let _ = sink.send(buffer[frame::HEADER..end].to_vec()).await;
                }
                buffer.drain(..end);
            }
        }
        for task in background {
            task.abort();
        }
        Ok(0)
    }
}
