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

use crate::container::paths::ContainerPaths;
use crate::container::shim_stream;
use crate::daemon::Daemon;
use crate::error::ServiceError;

pub(super) async fn attach(
    daemon: Arc<Daemon>,
    request: v1::AttachRequest,
) -> Result<v1::AttachResponse, ServiceError> {
    let options =
        super::exec::stream_options(request.stdin, request.stdout, request.stderr, request.tty)?;
    let view = daemon.find_container(&request.container_id)?;
    let state = view.state();
    let record = view.record;
    let paths = ContainerPaths::new(&daemon, &record.id);
    if state != ContainerState::Running {
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
    })?;
    Ok(v1::AttachResponse { url })
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

    fn held_bytes(&self) -> usize {
        self.shim_dir.capacity()
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
        let (mut from_shim, mut to_shim) = shim_stream::split(stream, &self.shim_dir)?;

        let mut background = Vec::new();
        if let Some(mut input) = io.stdin {
            background.push(tokio::spawn(async move {
                while let Some(chunk) = input.recv().await {
                    if !to_shim.send(frame::STDIN, &chunk).await {
                        return;
                    }
                }
                let _ = to_shim.send(frame::EOF, &[]).await;
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
        while let Some((id, payload)) = from_shim.next().await? {
            let sink = match id {
                frame::STDOUT => out.as_ref(),
                frame::STDERR => err.as_ref(),
                _ => None,
            };
            if let Some(sink) = sink {
                let _ = sink.send(payload).await;
            }
        }
        for task in background {
            task.abort();
        }
        Ok(0)
    }
}
