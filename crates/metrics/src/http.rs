//! The `/metrics` HTTP server: HTTP/1 only, one request per connection, `GET /metrics` and
//! nothing else.
//!
//! It is bounded so that whoever can reach its address can neither hold berthd's resources
//! nor learn or change more than the counts [`crate::Metrics::encode`] prints:
//!
//! - at most [`MAX_CONNECTIONS`] connections at once; one more is closed as soon as it is
//!   accepted;
//! - a request head of at most [`MAX_HEADER_BYTES`] in at most [`MAX_HEADERS`] fields, read
//!   within [`HEADER_TIMEOUT`] (hyper answers 431 or closes the connection past them);
//! - a request with a body is refused (400) without reading it, any other method gets 405,
//!   any other path 404;
//! - each connection ends after its one response, and in any case after
//!   [`CONNECTION_TIMEOUT`] (a client that does not read its response).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{HeaderValue, ALLOW, CONTENT_LENGTH, CONTENT_TYPE, TRANSFER_ENCODING};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use crate::{Metrics, Sampler};

/// Connections served at once.
pub const MAX_CONNECTIONS: usize = 8;
/// Longest request head (request line and header fields).
pub const MAX_HEADER_BYTES: usize = 8 * 1024;
/// Most header fields in a request.
pub const MAX_HEADERS: usize = 32;
/// How long a client may take to send its request head.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one connection may last in all.
pub const CONNECTION_TIMEOUT: Duration = Duration::from_secs(30);

/// The path metrics are served at.
pub const PATH: &str = "/metrics";

/// A bound metrics listener, not yet serving.
#[derive(Debug)]
pub struct MetricsServer {
    listener: TcpListener,
    limits: Limits,
}

/// The limits of one server (constants above; shorter ones in tests).
#[derive(Debug, Clone, Copy)]
struct Limits {
    connections: usize,
    header_timeout: Duration,
    connection_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            connections: MAX_CONNECTIONS,
            header_timeout: HEADER_TIMEOUT,
            connection_timeout: CONNECTION_TIMEOUT,
        }
    }
}

impl MetricsServer {
    /// Binds `address` (TCP).
    pub async fn bind(address: SocketAddr) -> std::io::Result<MetricsServer> {
        Ok(MetricsServer {
            listener: TcpListener::bind(address).await?,
            limits: Limits::default(),
        })
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves `metrics` and what `sampler` reports until the task is dropped.
    pub async fn serve(self, metrics: Arc<Metrics>, sampler: Arc<dyn Sampler>) {
        let permits = Arc::new(Semaphore::new(self.limits.connections));
        let limits = self.limits;
        loop {
            let (socket, peer) = match self.listener.accept().await {
                Ok(accepted) => accepted,
                Err(err) => {
                    tracing::warn!(error = %err, "metrics server cannot accept");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let Ok(permit) = permits.clone().try_acquire_owned() else {
                tracing::debug!(%peer, "metrics: too many connections; closing one");
                continue;
            };
            let (metrics, sampler) = (metrics.clone(), sampler.clone());
            tokio::spawn(async move {
                let _permit = permit;
                let service = hyper::service::service_fn(move |request: Request<_>| {
                    let response = respond(&request, || metrics.encode(sampler.sample()));
                    async move { Ok::<_, Infallible>(response) }
                });
                let connection = hyper::server::conn::http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(limits.header_timeout)
                    .max_header_size(MAX_HEADER_BYTES)
                    .max_headers(MAX_HEADERS)
                    .keep_alive(false)
                    .serve_connection(TokioIo::new(socket), service);
                match tokio::time::timeout(limits.connection_timeout, connection).await {
                    Ok(Ok(())) => {}
                    Ok(Err(err)) => tracing::debug!(%peer, error = %err, "metrics connection"),
                    Err(_) => tracing::debug!(%peer, "metrics connection timed out"),
                }
            });
        }
    }
}

/// The answer to `request`; `body` encodes the metrics (called for `GET /metrics` only).
fn respond<B>(request: &Request<B>, body: impl FnOnce() -> String) -> Response<Full<Bytes>> {
    if request.uri().path() != PATH {
        return plain(
            StatusCode::NOT_FOUND,
            "not found: metrics are at /metrics\n",
        );
    }
    if request.method() != Method::GET {
        let mut response = plain(
            StatusCode::METHOD_NOT_ALLOWED,
            "method not allowed: only GET\n",
        );
        response
            .headers_mut()
            .insert(ALLOW, HeaderValue::from_static("GET"));
        return response;
    }
    let headers = request.headers();
    let has_body = headers.contains_key(TRANSFER_ENCODING)
        || headers
            .get(CONTENT_LENGTH)
            .is_some_and(|length| length.as_bytes() != b"0");
    if has_body {
        return plain(StatusCode::BAD_REQUEST, "a GET /metrics takes no body\n");
    }
    let mut response = Response::new(Full::new(Bytes::from(body())));
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(crate::CONTENT_TYPE));
    response
}

fn plain(status: StatusCode, text: &'static str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from_static(text.as_bytes())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

#[cfg(test)]
mod tests;
