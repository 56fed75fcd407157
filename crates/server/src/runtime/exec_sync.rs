//! `ExecSync`: runs a command in a running container under its shim (the container's process
//! settings with the given argv), collects stdout and stderr (each capped), and kills the
//! command when the timeout passes.

use std::sync::Arc;
use std::time::Duration;

use berth_store::ContainerState;
use cri_api::v1;
use nix::sys::signal::Signal;

use crate::container::exec_session::{self, ExecSession, ExecStreams};
use crate::daemon::Daemon;
use crate::error::ServiceError;
use crate::validate;

/// Most bytes kept of each output stream.
const MAX_OUTPUT: usize = 16 << 20;

/// How long a killed command gets to be reaped and reported.
const REAP_WAIT: Duration = Duration::from_secs(5);

pub(super) async fn exec_sync(
    daemon: Arc<Daemon>,
    request: v1::ExecSyncRequest,
) -> Result<v1::ExecSyncResponse, ServiceError> {
    validate::command("cmd", &request.cmd)?;
    let view = daemon.find_container(&request.container_id)?;
    let state = view.state();
    let record = view.record;
    if state != ContainerState::Running {
        return Err(ServiceError::FailedPrecondition {
            what: format!("container {} is not running", record.id),
        });
    }
    let streams = ExecStreams {
        stdout: true,
        stderr: true,
        ..ExecStreams::default()
    };
    let mut session = ExecSession::start(&daemon, &record.id, &request.cmd, streams, None).await?;
    let mut output = Output::default();
    let collected = if request.timeout > 0 {
        let limit = Duration::from_secs(request.timeout as u64);
        tokio::time::timeout(limit, output.collect(&mut session)).await
    } else {
        Ok(output.collect(&mut session).await)
    };
    match collected {
        Ok(exit) => Ok(v1::ExecSyncResponse {
            exit_code: exit?.ok_or_else(|| exec_session::ended_early(&record.id))?,
            stdout: output.stdout,
            stderr: output.stderr,
        }),
        Err(_) => {
            // The shim kills the command and reports its end; the output is not needed.
            let kill = exec_session::signal_payload(Signal::SIGKILL);
            if session.writer.send(exec_session::SIGNAL, &kill).await {
                let _ = tokio::time::timeout(REAP_WAIT, output.collect(&mut session)).await;
            }
            Err(ServiceError::ExecTimeout {
                id: record.id,
                seconds: request.timeout,
            })
        }
    }
}

/// What the command wrote, each stream capped at [`MAX_OUTPUT`] bytes.
#[derive(Default)]
struct Output {
    stdout: Vec<u8>,
    stderr: Vec<u8>,
}

impl Output {
    /// Reads frames until the exit code (`Ok(None)` if the connection ended first).
    async fn collect(&mut self, session: &mut ExecSession) -> Result<Option<i32>, ServiceError> {
        while let Some((id, payload)) = session.reader.next().await? {
            let sink = match id {
                exec_session::STDOUT => &mut self.stdout,
                exec_session::STDERR => &mut self.stderr,
                exec_session::EXIT => return exec_session::exit_code(&payload).map(Some),
                _ => continue,
            };
            let room = MAX_OUTPUT.saturating_sub(sink.len());
            sink.extend_from_slice(&payload[..payload.len().min(room)]);
        }
        Ok(None)
    }
}
