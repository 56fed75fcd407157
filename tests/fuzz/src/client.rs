//! A gRPC client that sends raw request bytes (so undecodable requests go out too) and tells
//! a status the server sent from everything else. tonic turns transport failures (a reset
//! stream, an h2 protocol error, response headers over the peer's limit, a connection
//! closed) into a `Status` as well; the difference is only visible on the wire, so every
//! call goes through a layer that records whether the response carried `grpc-status` (in
//! its headers or trailers) and whether the connection or stream failed.

use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes};
use http::uri::PathAndQuery;
use http_body::Frame;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::transport::Channel;
use tonic::{Code, Status};
use tower::Service;

use crate::rpcs::Rpc;

/// How long a server stream is read before the client cancels it (a normal end for
/// streams that never end, like GetContainerEvents).
const STREAM_READ: Duration = Duration::from_secs(2);

/// How long past its deadline a call may take before it counts as a hang.
const HANG_GRACE: Duration = Duration::from_secs(30);

/// Largest reply accepted (berthd's own limit is 16 MiB).
const MAX_REPLY: usize = 64 << 20;

/// A codec that passes bytes through in both directions.
#[derive(Debug, Clone, Copy, Default)]
pub struct RawCodec;

impl Codec for RawCodec {
    type Encode = Bytes;
    type Decode = Bytes;
    type Encoder = RawCodec;
    type Decoder = RawCodec;

    fn encoder(&mut self) -> Self::Encoder {
        RawCodec
    }

    fn decoder(&mut self) -> Self::Decoder {
        RawCodec
    }
}

impl Encoder for RawCodec {
    type Item = Bytes;
    type Error = Status;

    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put(item);
        Ok(())
    }
}

impl Decoder for RawCodec {
    type Item = Bytes;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Bytes>, Status> {
        Ok(Some(src.copy_to_bytes(src.remaining())))
    }
}

/// What the wire showed of one call.
#[derive(Debug, Default)]
struct Seen {
    /// The HTTP status of the response.
    http_status: Option<u16>,
    /// `grpc-status` from the response headers (trailers-only) or trailers.
    grpc_status: Option<String>,
    /// The connection or stream failed: the error and its sources.
    transport: Option<String>,
    /// The deadline passed before a response (tonic's client enforces it too).
    deadline: bool,
}

type Shared = Arc<Mutex<Seen>>;

fn note(seen: &Shared, f: impl FnOnce(&mut Seen)) {
    f(&mut seen.lock().unwrap_or_else(|e| e.into_inner()));
}

/// An error with its chain of sources, on one line.
pub fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

/// Whether `err` is (or was caused by) the client's deadline expiring.
fn is_timeout(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut source = Some(err);
    while let Some(e) = source {
        if e.is::<tonic::TimeoutExpired>() {
            return true;
        }
        source = e.source();
    }
    false
}

/// The channel with the observation layer of one call.
#[derive(Clone)]
struct Observed {
    inner: Channel,
    seen: Shared,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl Service<http::Request<tonic::body::Body>> for Observed {
    type Response = http::Response<ObservedBody>;
    type Error = tonic::transport::Error;
    type Future = BoxFuture<Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<tonic::body::Body>) -> Self::Future {
        let future = self.inner.call(request);
        let seen = self.seen.clone();
        Box::pin(async move {
            match future.await {
                Ok(response) => {
                    note(&seen, |s| {
                        s.http_status = Some(response.status().as_u16());
                        if let Some(v) = response.headers().get("grpc-status") {
                            s.grpc_status = Some(String::from_utf8_lossy(v.as_bytes()).into());
                        }
                    });
                    Ok(response.map(|body| ObservedBody { inner: body, seen }))
                }
                Err(err) => {
                    let expired = is_timeout(&err);
                    note(&seen, |s| {
                        s.transport = Some(error_chain(&err));
                        s.deadline = expired;
                    });
                    Err(err)
                }
            }
        })
    }
}

/// A response body that records trailers and errors.
struct ObservedBody {
    inner: tonic::body::Body,
    seen: Shared,
}

impl http_body::Body for ObservedBody {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(v) = frame.trailers_ref().and_then(|t| t.get("grpc-status")) {
                    let v = String::from_utf8_lossy(v.as_bytes()).into_owned();
                    note(&self.seen, |s| s.grpc_status = Some(v));
                }
            }
            Poll::Ready(Some(Err(status))) => {
                let text = format!("{}: {}", status.message(), error_chain(status));
                note(&self.seen, |s| s.transport = Some(text));
            }
            _ => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// How a call ended.
#[derive(Debug)]
pub enum Reply {
    /// OK, with the first reply message (for streams: the messages read in time).
    Ok {
        /// The first message.
        first: Bytes,
        /// How many messages arrived.
        messages: usize,
    },
    /// A status the server sent.
    Status {
        /// The code.
        code: Code,
        /// The message.
        message: String,
    },
    /// Not a status from the server: a transport failure or a protocol violation.
    Broken {
        /// The code tonic made up for it.
        code: Code,
        /// What tonic said.
        message: String,
        /// What the wire showed.
        detail: String,
    },
    /// No answer within the deadline sent with the request (the client gave up).
    Deadline,
    /// No answer long after the deadline.
    Hang,
}

/// One HTTP/2 connection to the daemon.
#[derive(Clone)]
pub struct Conn {
    channel: Channel,
}

impl Conn {
    /// Connects to the CRI socket. `max_header_list_size` is the limit this client puts on
    /// response headers (grpc-core clients allow 16 KiB).
    pub async fn connect(socket: &Path, max_header_list_size: u32) -> Result<Conn, String> {
        let endpoint = berth_integration::unix_endpoint()
            .http2_max_header_list_size(max_header_list_size)
            .connect_timeout(Duration::from_secs(10));
        let channel = berth_integration::connect_endpoint(endpoint, socket)
            .await
            .map_err(|e| error_chain(&e))?;
        Ok(Conn { channel })
    }

    /// Sends `bytes` as a request of RPC `name` (with the RPC's deadline, or `deadline`):
    /// the reply message, or what went wrong, as one readable line.
    pub async fn ok(
        &self,
        name: &'static str,
        bytes: Vec<u8>,
        deadline: Option<Duration>,
    ) -> Result<Bytes, String> {
        let rpc = crate::rpcs::by_name(name).expect("an RPC of the table");
        let deadline = deadline.unwrap_or_else(|| rpc.deadline());
        match self.call_within(rpc, Bytes::from(bytes), deadline).await {
            Reply::Ok { first, .. } => Ok(first),
            Reply::Status { code, message } => Err(format!(
                "{name}: {code:?}: {}",
                crate::report::cut(&message, 300)
            )),
            Reply::Deadline => Err(format!("{name}: no answer within {} s", deadline.as_secs())),
            other => Err(format!("{name}: {other:?}")),
        }
    }

    /// Sends `body` as a request of `rpc`, with the RPC's deadline.
    pub async fn call(&self, rpc: &Rpc, body: Bytes) -> Reply {
        self.call_within(rpc, body, rpc.deadline()).await
    }

    /// Sends `body` as a request of `rpc` with `deadline`.
    pub async fn call_within(&self, rpc: &Rpc, body: Bytes, deadline: Duration) -> Reply {
        let seen: Shared = Arc::default();
        let call = self.call_inner(rpc, body, seen.clone(), deadline);
        match tokio::time::timeout(deadline + HANG_GRACE, call).await {
            Ok(Ok((first, messages))) => Reply::Ok { first, messages },
            Ok(Err(status)) => classify(status, &seen),
            Err(_) => Reply::Hang,
        }
    }

    async fn call_inner(
        &self,
        rpc: &Rpc,
        body: Bytes,
        seen: Shared,
        deadline: Duration,
    ) -> Result<(Bytes, usize), Status> {
        let service = Observed {
            inner: self.channel.clone(),
            seen,
        };
        let mut grpc = tonic::client::Grpc::new(service).max_decoding_message_size(MAX_REPLY);
        grpc.ready()
            .await
            .map_err(|e| Status::unavailable(format!("not ready: {}", error_chain(&e))))?;
        let mut request = tonic::Request::new(body);
        request.set_timeout(deadline);
        let path =
            PathAndQuery::from_str(&rpc.path()).map_err(|e| Status::internal(e.to_string()))?;
        if !rpc.streaming {
            let response = grpc.unary(request, path, RawCodec).await?;
            return Ok((response.into_inner(), 1));
        }
        let mut stream = grpc
            .server_streaming(request, path, RawCodec)
            .await?
            .into_inner();
        let mut first = Bytes::new();
        let mut messages = 0;
        let read = async {
            while let Some(message) = stream.message().await? {
                if messages == 0 {
                    first = message;
                }
                messages += 1;
            }
            Ok::<(), Status>(())
        };
        match tokio::time::timeout(STREAM_READ, read).await {
            // Ended with a status, or still open after STREAM_READ: both are fine.
            Ok(Ok(())) | Err(_) => Ok((first, messages)),
            Ok(Err(status)) => Err(status),
        }
    }
}

/// A failed call: a server status, or something else.
fn classify(status: Status, seen: &Shared) -> Reply {
    let seen = seen.lock().unwrap_or_else(|e| e.into_inner());
    if seen.deadline {
        return Reply::Deadline;
    }
    let broken = |detail: String| Reply::Broken {
        code: status.code(),
        message: status.message().to_owned(),
        detail,
    };
    if let Some(transport) = &seen.transport {
        return broken(transport.clone());
    }
    match seen.grpc_status.as_deref() {
        // OK on the wire but an error here: no reply message, or one tonic could not read.
        Some("0") => broken("grpc-status 0 without a usable reply".to_owned()),
        Some(_) => Reply::Status {
            code: status.code(),
            message: status.message().to_owned(),
        },
        None => broken(match seen.http_status {
            Some(code) => format!("HTTP {code} without grpc-status: {}", error_chain(&status)),
            None => format!("no response: {}", error_chain(&status)),
        }),
    }
}
