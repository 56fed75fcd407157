//! The Kubernetes remotecommand protocol over SPDY (exec and attach).
//!
//! The client opens one stream per channel, typed by the `streamType` header: `error`,
//! `stdin`, `stdout`, `stderr` and (v3+, with a TTY) `resize`. When the command ends, the
//! outcome goes on the error stream: from v4 a JSON `metav1.Status`, before that a plain
//! message (nothing on success).

use std::time::Duration;

use serde::Serialize;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::spdy::headers;
use crate::spdy::session::{IncomingStream, Session, StreamReader, StreamWriter};
use crate::{ExecIo, ExecOptions, Runner, TerminalSize};

/// How long the client gets to open every stream it needs.
const STREAM_CREATION_TIMEOUT: Duration = Duration::from_secs(30);

/// A negotiated remotecommand protocol version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Protocol {
    /// `channel.k8s.io`
    V1,
    /// `v2.channel.k8s.io`
    V2,
    /// `v3.channel.k8s.io`: adds the resize stream.
    V3,
    /// `v4.channel.k8s.io`: JSON status on the error stream.
    V4,
}

impl Protocol {
    /// Served over SPDY, best first.
    pub const SPDY: [Protocol; 4] = [Protocol::V4, Protocol::V3, Protocol::V2, Protocol::V1];

    /// The `X-Stream-Protocol-Version` name.
    pub fn name(self) -> &'static str {
        match self {
            Protocol::V1 => "channel.k8s.io",
            Protocol::V2 => "v2.channel.k8s.io",
            Protocol::V3 => "v3.channel.k8s.io",
            Protocol::V4 => "v4.channel.k8s.io",
        }
    }

    /// The best protocol served that the client offers.
    pub fn negotiate(offered: &[String]) -> Option<Protocol> {
        Protocol::SPDY
            .into_iter()
            .find(|p| offered.iter().any(|o| o == p.name()))
    }
}

/// The `metav1.Status` written on the error stream from v4 on.
#[derive(Debug, Serialize)]
struct Status {
    metadata: Metadata,
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    details: Option<Details>,
    #[serde(skip_serializing_if = "Option::is_none")]
    code: Option<u16>,
}

#[derive(Debug, Serialize)]
struct Metadata {}

#[derive(Debug, Serialize)]
struct Details {
    causes: Vec<Cause>,
}

#[derive(Debug, Serialize)]
struct Cause {
    reason: &'static str,
    message: String,
}

/// What goes on the error stream for `outcome` under `protocol` (empty: nothing).
pub fn status_message(protocol: Protocol, outcome: &Result<i32, String>) -> Vec<u8> {
    let status = match outcome {
        Ok(0) => Status {
            metadata: Metadata {},
            status: "Success",
            message: None,
            reason: None,
            details: None,
            code: None,
        },
        Ok(code) => Status {
            metadata: Metadata {},
            status: "Failure",
            message: Some(format!(
                "command terminated with non-zero exit code: exit status {code}"
            )),
            reason: Some("NonZeroExitCode"),
            details: Some(Details {
                causes: vec![Cause {
                    reason: "ExitCode",
                    message: code.to_string(),
                }],
            }),
            code: None,
        },
        Err(message) => Status {
            metadata: Metadata {},
            status: "Failure",
            message: Some(format!("Internal error occurred: {message}")),
            reason: Some("InternalError"),
            details: None,
            code: Some(500),
        },
    };
    if protocol >= Protocol::V4 {
        serde_json::to_vec(&status).unwrap_or_default()
    } else {
        status.message.unwrap_or_default().into_bytes()
    }
}

/// The streams of one session.
#[derive(Debug, Default)]
struct Streams {
    error: Option<StreamWriter>,
    stdin: Option<StreamReader>,
    stdout: Option<StreamWriter>,
    stderr: Option<StreamWriter>,
    resize: Option<StreamReader>,
}

impl Streams {
    fn complete(&self, options: ExecOptions, protocol: Protocol) -> bool {
        self.error.is_some()
            && (!options.stdin || self.stdin.is_some())
            && (!options.stdout || self.stdout.is_some())
            && (!options.stderr || options.tty || self.stderr.is_some())
            && (!options.tty || protocol < Protocol::V3 || self.resize.is_some())
    }

    fn add(&mut self, stream: IncomingStream) {
        let kind = headers::get(&stream.headers, "streamtype").unwrap_or_default();
        match kind {
            "error" => self.error = Some(stream.writer),
            "stdin" => self.stdin = Some(stream.reader),
            "stdout" => self.stdout = Some(stream.writer),
            "stderr" => self.stderr = Some(stream.writer),
            "resize" => self.resize = Some(stream.reader),
            other => tracing::debug!(stream_type = other, "ignoring unknown stream"),
        }
    }
}

/// Serves one exec or attach session: collects the client's streams, runs `runner` with
/// them, reports the outcome on the error stream and closes the connection.
pub async fn serve(
    session: Session,
    mut incoming: mpsc::Receiver<IncomingStream>,
    protocol: Protocol,
    options: ExecOptions,
    runner: Box<dyn Runner>,
) {
    let mut streams = Streams::default();
    let deadline = tokio::time::Instant::now() + STREAM_CREATION_TIMEOUT;
    while !streams.complete(options, protocol) {
        match tokio::time::timeout_at(deadline, incoming.recv()).await {
            Ok(Some(stream)) => streams.add(stream),
            Ok(None) => {
                tracing::debug!("client closed the connection before opening its streams");
                session.close().await;
                return;
            }
            Err(_) => {
                if let Some(error) = &streams.error {
                    let outcome = Err("timed out waiting for the client to create streams".into());
                    let _ = error.write(&status_message(protocol, &outcome)).await;
                    let _ = error.finish().await;
                }
                session.close().await;
                return;
            }
        }
    }
    // Streams opened later are not used.
    let drain = tokio::spawn(async move { while incoming.recv().await.is_some() {} });

    let mut io = ExecIo::default();
    let mut tasks: Vec<JoinHandle<()>> = Vec::new();
    let mut background: Vec<JoinHandle<()>> = Vec::new();
    if let (true, Some(mut reader)) = (options.stdin, streams.stdin.take()) {
        let (tx, rx) = mpsc::channel(16);
        io.stdin = Some(rx);
        background.push(tokio::spawn(async move {
            while let Some(chunk) = reader.recv().await {
                if tx.send(chunk).await.is_err() {
                    break;
                }
            }
        }));
    }
    for (wanted, writer, slot) in [
        (options.stdout, streams.stdout.take(), &mut io.stdout),
        (
            options.stderr && !options.tty,
            streams.stderr.take(),
            &mut io.stderr,
        ),
    ] {
        let Some(writer) = writer else { continue };
        if !wanted {
            let _ = writer.finish().await;
            continue;
        }
        let (tx, mut rx) = mpsc::channel::<Vec<u8>>(16);
        *slot = Some(tx);
        tasks.push(tokio::spawn(async move {
            while let Some(chunk) = rx.recv().await {
                if writer.write(&chunk).await.is_err() {
                    // Keep draining so the runner is never blocked on a dead client.
                    while rx.recv().await.is_some() {}
                    return;
                }
            }
            let _ = writer.finish().await;
        }));
    }
    if let (true, Some(mut reader)) = (options.tty, streams.resize.take()) {
        let (tx, rx) = mpsc::channel(16);
        io.resize = Some(rx);
        background.push(tokio::spawn(async move {
            let mut pending = Vec::new();
            while let Some(chunk) = reader.recv().await {
                pending.extend_from_slice(&chunk);
                for size in drain_sizes(&mut pending) {
                    if tx.send(size).await.is_err() {
                        return;
                    }
                }
            }
        }));
    }

    let outcome = runner.run(io).await;
    for task in tasks {
        let _ = task.await;
    }
    for task in background {
        task.abort();
    }
    if let Some(error) = streams.error.take() {
        let message = status_message(protocol, &outcome);
        if !message.is_empty() {
            let _ = error.write(&message).await;
        }
        let _ = error.finish().await;
    }
    drain.abort();
    session.close().await;
}

/// Removes every complete JSON terminal size from the front of `pending`.
pub(crate) fn drain_sizes(pending: &mut Vec<u8>) -> Vec<TerminalSize> {
    let mut sizes = Vec::new();
    let mut consumed = 0;
    let mut values = serde_json::Deserializer::from_slice(pending).into_iter::<TerminalSize>();
    loop {
        match values.next() {
            Some(Ok(size)) => {
                sizes.push(size);
                consumed = values.byte_offset();
            }
            Some(Err(err)) if err.is_eof() => break,
            Some(Err(_)) => {
                // Not a size: drop everything buffered.
                consumed = pending.len();
                break;
            }
            None => {
                consumed = pending.len();
                break;
            }
        }
    }
    pending.drain(..consumed);
    sizes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v4_status_is_the_kubernetes_json() {
        assert_eq!(
            String::from_utf8(status_message(Protocol::V4, &Ok(0))).unwrap(),
            r#"{"metadata":{},"status":"Success"}"#
        );
        let failure: serde_json::Value =
            serde_json::from_slice(&status_message(Protocol::V4, &Ok(7))).unwrap();
        assert_eq!(failure["status"], "Failure");
        assert_eq!(failure["reason"], "NonZeroExitCode");
        assert_eq!(failure["details"]["causes"][0]["reason"], "ExitCode");
        assert_eq!(failure["details"]["causes"][0]["message"], "7");
        let internal: serde_json::Value =
            serde_json::from_slice(&status_message(Protocol::V4, &Err("boom".into()))).unwrap();
        assert_eq!(internal["status"], "Failure");
        assert_eq!(internal["code"], 500);
    }

    #[test]
    fn older_protocols_get_plain_messages() {
        assert!(status_message(Protocol::V3, &Ok(0)).is_empty());
        assert!(String::from_utf8(status_message(Protocol::V2, &Ok(3)))
            .unwrap()
            .contains("non-zero exit code"));
    }

    #[test]
    fn negotiation_picks_the_best_offered() {
        let offer = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            Protocol::negotiate(&offer(&[
                "v5.channel.k8s.io",
                "v4.channel.k8s.io",
                "v3.channel.k8s.io",
                "v2.channel.k8s.io",
                "channel.k8s.io"
            ])),
            Some(Protocol::V4)
        );
        assert_eq!(
            Protocol::negotiate(&offer(&["v2.channel.k8s.io", "channel.k8s.io"])),
            Some(Protocol::V2)
        );
        assert_eq!(Protocol::negotiate(&offer(&["v5.channel.k8s.io"])), None);
    }

    #[test]
    fn resize_events_split_across_chunks() {
        let mut pending = br#"{"Width":80,"Height":24}{"Width":1"#.to_vec();
        assert_eq!(
            drain_sizes(&mut pending),
            [TerminalSize {
                width: 80,
                height: 24
            }]
        );
        pending.extend_from_slice(br#"00,"Height":50}"#);
        assert_eq!(
            drain_sizes(&mut pending),
            [TerminalSize {
                width: 100,
                height: 50
            }]
        );
        assert!(pending.is_empty());
    }
}
