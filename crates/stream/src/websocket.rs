//! The Kubernetes streaming protocols over WebSocket: remotecommand (exec and attach) and
//! port forwarding tunnelled as SPDY (`SPDY/3.1+portforward.k8s.io`).
//!
//! Subprotocols, as kubelet's own streaming library serves them: `v5.channel.k8s.io`,
//! `v4.channel.k8s.io`, `v3.channel.k8s.io`, `v2.channel.k8s.io`, `channel.k8s.io` — every
//! binary message starts with a channel byte: 0 stdin, 1 stdout, 2 stderr, 3 error (once, at
//! the end: the JSON status from v4 on, the error text before), 4 resize (JSON terminal
//! size) — and `base64.channel.k8s.io`: the same channels in text messages, the channel as
//! an ASCII digit followed by the payload in base64. v5 adds channel 255: a client message
//! `[255, <channel>]` closes that input channel (stdin EOF). The session ends with a
//! WebSocket close.
//!
//! The WebSocket framing itself is `tokio-tungstenite`'s; the handshake answer is written by
//! the server after its own request parsing, and the connection handed over with any bytes
//! read past the request head.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::protocol::{frame::coding::CloseCode, CloseFrame, Role};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use base64::prelude::{Engine as _, BASE64_STANDARD};

use crate::remotecommand::{drain_sizes, status_message, Protocol};
use crate::spdy::session::Session;
use crate::{portforward, ExecIo, ExecOptions, PortDialer, Runner};

/// `v5.channel.k8s.io`: v4 plus the close channel.
pub const V5: &str = "v5.channel.k8s.io";
/// `v4.channel.k8s.io`
pub const V4: &str = "v4.channel.k8s.io";
/// `v3.channel.k8s.io`
pub const V3: &str = "v3.channel.k8s.io";
/// `v2.channel.k8s.io`
pub const V2: &str = "v2.channel.k8s.io";
/// `channel.k8s.io`
pub const V1: &str = "channel.k8s.io";
/// `base64.channel.k8s.io`: the channels in text messages, payloads in base64.
pub const BASE64: &str = "base64.channel.k8s.io";
/// Subprotocols served for exec and attach, best first.
pub const PROTOCOLS: [&str; 6] = [V5, V4, V3, V2, V1, BASE64];

/// How a subprotocol frames and reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Flavor {
    /// Text messages with base64 payloads instead of binary ones.
    base64: bool,
    /// How the outcome is written on the error channel.
    status: Protocol,
    /// Clients may close channels (v5).
    close: bool,
}

impl Flavor {
    fn of(subprotocol: &str) -> Flavor {
        let (base64, status, close) = match subprotocol {
            V5 => (false, Protocol::V4, true),
            V4 => (false, Protocol::V4, false),
            V3 => (false, Protocol::V3, false),
            V2 => (false, Protocol::V2, false),
            BASE64 => (true, Protocol::V1, false),
            _ => (false, Protocol::V1, false),
        };
        Flavor {
            base64,
            status,
            close,
        }
    }

    /// The WebSocket message carrying `data` on `channel`.
    fn message(self, channel: u8, data: &[u8]) -> Message {
        if self.base64 {
            let mut text = String::with_capacity(1 + data.len().div_ceil(3) * 4);
            text.push(char::from(b'0' + channel));
            text.push_str(&BASE64_STANDARD.encode(data));
            Message::Text(text.into())
        } else {
            Message::Binary(frame(channel, data).into())
        }
    }

    /// A client message in the binary form (`[channel, payload..]`); `None` for messages
    /// that carry no channel data (pings, a malformed base64 message: logged).
    fn inbound(self, message: Message) -> Option<Vec<u8>> {
        match message {
            Message::Binary(data) if !self.base64 => Some(data.to_vec()),
            Message::Text(text) if self.base64 => {
                let bytes = text.as_bytes();
                let (&digit, payload) = bytes.split_first()?;
                let channel = digit.checked_sub(b'0').filter(|c| *c <= 9)?;
                match BASE64_STANDARD.decode(payload) {
                    Ok(decoded) => Some(frame(channel, &decoded)),
                    Err(err) => {
                        tracing::debug!(error = %err, "ignoring a base64 message that does not decode");
                        None
                    }
                }
            }
            _ => None,
        }
    }
}

/// Port forwarding: SPDY/3.1 frames tunnelled in binary WebSocket messages.
pub const PORTFORWARD_TUNNEL: &str = "SPDY/3.1+portforward.k8s.io";

/// How long the client gets to answer our close frame.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);

/// Channel numbers.
pub mod channel {
    /// Client → server: the process's stdin.
    pub const STDIN: u8 = 0;
    /// Server → client: the process's stdout.
    pub const STDOUT: u8 = 1;
    /// Server → client: the process's stderr.
    pub const STDERR: u8 = 2;
    /// Server → client: the outcome, a v4 JSON status.
    pub const ERROR: u8 = 3;
    /// Client → server: terminal size changes.
    pub const RESIZE: u8 = 4;
    /// Client → server (v5): `[255, <channel>]` closes that channel.
    pub const CLOSE: u8 = 255;
}

/// The best served subprotocol among `offered`.
pub fn negotiate(offered: &[String]) -> Option<&'static str> {
    PROTOCOLS
        .into_iter()
        .find(|p| offered.iter().any(|o| o == p))
}

/// A message for the client: `channel` followed by `data`.
pub fn frame(channel: u8, data: &[u8]) -> Vec<u8> {
    let mut message = Vec::with_capacity(data.len() + 1);
    message.push(channel);
    message.extend_from_slice(data);
    message
}

/// A message from the client, by channel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inbound<'a> {
    /// Bytes for stdin.
    Stdin(&'a [u8]),
    /// Part of the JSON terminal size stream.
    Resize(&'a [u8]),
    /// The client closes one of its channels (v5).
    Close(u8),
}

/// Why a client message was not understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// A message without its channel byte.
    #[error("empty message")]
    Empty,
    /// A close message that names no channel.
    #[error("close message without a channel")]
    CloseWithoutChannel,
    /// A channel clients do not write to.
    #[error("channel {0} is not an input channel")]
    NotInput(u8),
}

/// Splits a client message into its channel and payload.
pub fn parse(message: &[u8], v5: bool) -> Result<Inbound<'_>, FrameError> {
    let (&channel, data) = message.split_first().ok_or(FrameError::Empty)?;
    match channel {
        channel::STDIN => Ok(Inbound::Stdin(data)),
        channel::RESIZE => Ok(Inbound::Resize(data)),
        channel::CLOSE if v5 => data
            .first()
            .map(|&c| Inbound::Close(c))
            .ok_or(FrameError::CloseWithoutChannel),
        other => Err(FrameError::NotInput(other)),
    }
}

/// Serves one exec or attach session on an upgraded connection: `leftover` are the bytes
/// already read past the request head; `subprotocol` one of [`PROTOCOLS`].
pub async fn serve<S>(
    socket: S,
    leftover: Vec<u8>,
    subprotocol: &'static str,
    options: ExecOptions,
    runner: Box<dyn Runner>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let flavor = Flavor::of(subprotocol);
    let ws = WebSocketStream::from_partially_read(socket, leftover, Role::Server, None).await;
    let (mut sink, mut source) = ws.split();

    // One writer owns the sending half; everything for the client goes through `out`.
    let (out, mut out_rx) = mpsc::channel::<Message>(16);
    let writer = tokio::spawn(async move {
        let mut alive = true;
        while let Some(message) = out_rx.recv().await {
            if alive && sink.send(message).await.is_err() {
                // Keep draining so nobody is blocked on a dead client.
                alive = false;
            }
        }
        if alive {
            let _ = sink
                .send(Message::Close(Some(CloseFrame {
                    code: CloseCode::Normal,
                    reason: "".into(),
                })))
                .await;
            let _ = sink.flush().await;
        }
        sink
    });

    let mut io = ExecIo::default();
    let mut stdin = None;
    if options.stdin {
        let (tx, rx) = mpsc::channel(16);
        io.stdin = Some(rx);
        stdin = Some(tx);
    }
    let mut resize = None;
    if options.tty {
        let (tx, rx) = mpsc::channel(16);
        io.resize = Some(rx);
        resize = Some(tx);
    }
    // The reader feeds stdin and resize; the end of the connection is stdin EOF.
    let reader = tokio::spawn(async move {
        let mut pending = Vec::new();
        while let Some(Ok(message)) = source.next().await {
            if let Message::Close(_) = message {
                break;
            }
            let Some(data) = flavor.inbound(message) else {
                continue;
            };
            match parse(&data, flavor.close) {
                Ok(Inbound::Stdin(bytes)) => {
                    if let Some(tx) = &stdin {
                        if !bytes.is_empty() && tx.send(bytes.to_vec()).await.is_err() {
                            stdin = None;
                        }
                    }
                }
                Ok(Inbound::Resize(bytes)) => {
                    if let Some(tx) = &resize {
                        pending.extend_from_slice(bytes);
                        for size in drain_sizes(&mut pending) {
                            if tx.send(size).await.is_err() {
                                break;
                            }
                        }
                    }
                }
                Ok(Inbound::Close(channel::STDIN)) => stdin = None,
                Ok(Inbound::Close(channel::RESIZE)) => resize = None,
                Ok(Inbound::Close(_)) => {}
                Err(err) => tracing::debug!(error = %err, "ignoring WebSocket message"),
            }
        }
    });

    let mut forwarders: Vec<JoinHandle<()>> = Vec::new();
    for (wanted, channel, slot) in [
        (options.stdout, channel::STDOUT, &mut io.stdout),
        (
            options.stderr && !options.tty,
            channel::STDERR,
            &mut io.stderr,
        ),
    ] {
        if !wanted {
            continue;
        }
        let (tx, mut rx) = mpsc::channel::<Vec<u8>>(16);
        *slot = Some(tx);
        let out = out.clone();
        forwarders.push(tokio::spawn(async move {
            while let Some(chunk) = rx.recv().await {
                if out.send(flavor.message(channel, &chunk)).await.is_err() {
                    while rx.recv().await.is_some() {}
                    return;
                }
            }
        }));
    }

    let outcome = runner.run(io).await;
    for task in forwarders {
        let _ = task.await;
    }
    let status = status_message(flavor.status, &outcome);
    // Before v4 a success writes nothing on the error channel.
    if flavor.status >= Protocol::V4 || !status.is_empty() {
        let _ = out.send(flavor.message(channel::ERROR, &status)).await;
    }
    drop(out);
    let sink = writer.await;
    // Let the client answer the close, then drop the connection.
    let mut reader = reader;
    if tokio::time::timeout(CLOSE_TIMEOUT, &mut reader)
        .await
        .is_err()
    {
        reader.abort();
    }
    drop(sink);
}

/// Serves port forwarding tunnelled through WebSocket: the SPDY session runs on one end of
/// an in-memory pipe whose other end is pumped to and from binary WebSocket messages.
pub async fn serve_portforward<S>(socket: S, leftover: Vec<u8>, dialer: Box<dyn PortDialer>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let ws = WebSocketStream::from_partially_read(socket, leftover, Role::Server, None).await;
    let (near, far) = tokio::io::duplex(TUNNEL_BUFFER);
    let (session, incoming) = Session::start(near, Vec::new());
    let mut pump = tokio::spawn(tunnel(ws, far));
    portforward::serve(session, incoming, dialer).await;
    if tokio::time::timeout(CLOSE_TIMEOUT, &mut pump)
        .await
        .is_err()
    {
        pump.abort();
    }
}

/// Size of the in-memory pipe and of the largest message sent.
const TUNNEL_BUFFER: usize = 64 * 1024;

/// Copies between `ws` and `pipe` until both directions end.
async fn tunnel<S>(ws: WebSocketStream<S>, pipe: tokio::io::DuplexStream)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let (mut sink, mut source) = ws.split();
    let (mut from_session, mut to_session) = tokio::io::split(pipe);
    let up = async move {
        let mut buffer = vec![0u8; TUNNEL_BUFFER];
        loop {
            match from_session.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if sink
                        .send(Message::Binary(buffer[..n].to_vec().into()))
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
            }
        }
        let _ = sink
            .send(Message::Close(Some(CloseFrame {
                code: CloseCode::Normal,
                reason: "".into(),
            })))
            .await;
        let _ = sink.flush().await;
    };
    let down = async move {
        while let Some(Ok(message)) = source.next().await {
            match message {
                Message::Binary(data) if to_session.write_all(&data).await.is_err() => break,
                Message::Close(_) => break,
                _ => {}
            }
        }
        let _ = to_session.shutdown().await;
    };
    tokio::join!(up, down);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_framing() {
        assert_eq!(frame(channel::STDOUT, b"hello"), b"\x01hello");
        assert_eq!(frame(channel::ERROR, b""), [3]);
        assert_eq!(parse(b"\x00abc", true), Ok(Inbound::Stdin(b"abc")));
        assert_eq!(
            parse(b"\x04{\"Width\":80,\"Height\":24}", true),
            Ok(Inbound::Resize(b"{\"Width\":80,\"Height\":24}"))
        );
        assert_eq!(parse(&[255, 0], true), Ok(Inbound::Close(0)));
        assert_eq!(parse(&[255], true), Err(FrameError::CloseWithoutChannel));
        // v4 has no close channel.
        assert_eq!(parse(&[255, 0], false), Err(FrameError::NotInput(255)));
        assert_eq!(parse(b"", true), Err(FrameError::Empty));
        assert_eq!(parse(b"\x01out", true), Err(FrameError::NotInput(1)));
    }

    #[test]
    fn negotiation_prefers_v5() {
        let offer = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(negotiate(&offer(&[V4, V5])), Some(V5));
        assert_eq!(negotiate(&offer(&[V4])), Some(V4));
        assert_eq!(negotiate(&offer(&["v3.channel.k8s.io"])), Some(V3));
        // What Kubernetes' conformance spec "remote command execution over websockets"
        // offers.
        assert_eq!(negotiate(&offer(&["channel.k8s.io"])), Some(V1));
        assert_eq!(negotiate(&offer(&[BASE64, V1])), Some(V1));
        assert_eq!(negotiate(&offer(&[BASE64])), Some(BASE64));
        assert_eq!(negotiate(&offer(&["v6.channel.k8s.io"])), None);
    }

    #[test]
    fn base64_messages_carry_the_channel_as_a_digit() {
        let flavor = Flavor::of(BASE64);
        assert_eq!(
            flavor.message(channel::STDOUT, b"hi"),
            Message::Text("1aGk=".into())
        );
        assert_eq!(
            flavor.inbound(Message::Text("0aGk=".into())),
            Some(b"\x00hi".to_vec())
        );
        assert_eq!(flavor.inbound(Message::Text("0!!".into())), None);
        assert_eq!(flavor.inbound(Message::Binary(vec![0, 1].into())), None);
        let binary = Flavor::of(V1);
        assert_eq!(
            binary.message(channel::STDERR, b"x"),
            Message::Binary(vec![2, b'x'].into())
        );
        assert_eq!(binary.inbound(Message::Text("0aGk=".into())), None);
    }

    /// A runner that echoes stdin to stdout and exits 7.
    struct Echo;
    impl Runner for Echo {
        fn run(self: Box<Self>, mut io: ExecIo) -> crate::BoxFuture<Result<i32, String>> {
            Box::pin(async move {
                let stdout = io.stdout.take().unwrap();
                let mut stdin = io.stdin.take().unwrap();
                while let Some(chunk) = stdin.recv().await {
                    stdout.send(chunk).await.unwrap();
                }
                Ok(7)
            })
        }
        fn held_bytes(&self) -> usize {
            0
        }
    }

    #[tokio::test]
    async fn session_echoes_and_reports_the_exit_code() {
        let (server, client) = tokio::io::duplex(1 << 16);
        let options = ExecOptions {
            stdin: true,
            stdout: true,
            stderr: true,
            tty: false,
        };
        let serving = tokio::spawn(serve(server, Vec::new(), V5, options, Box::new(Echo)));
        let mut ws = WebSocketStream::from_raw_socket(client, Role::Client, None).await;
        ws.send(Message::Binary(frame(channel::STDIN, b"ping").into()))
            .await
            .unwrap();
        ws.send(Message::Binary(vec![channel::CLOSE, channel::STDIN].into()))
            .await
            .unwrap();
        let mut received = Vec::new();
        while let Some(Ok(message)) = ws.next().await {
            if let Message::Binary(data) = message {
                received.push(data.to_vec());
            }
        }
        assert_eq!(received[0], b"\x01ping");
        let last = received.last().unwrap();
        assert_eq!(last[0], channel::ERROR);
        let status: serde_json::Value = serde_json::from_slice(&last[1..]).unwrap();
        assert_eq!(status["details"]["causes"][0]["message"], "7");
        serving.await.unwrap();
    }
}
