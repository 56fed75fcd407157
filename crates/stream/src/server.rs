//! The TCP listener: reads each connection's request head, checks the upgrade, redeems the
//! token and hands the upgraded connection to the protocol.
//!
//! Answers: a request that is not an upgrade to SPDY/3.1 or WebSocket (or names no protocol
//! version) gets 400; an unknown, used or expired token 404; no common protocol version 403. Each
//! connection is its own task, so none of this touches other sessions.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};

use crate::http::{read_head, respond, HEAD_TIMEOUT};
use crate::remotecommand::Protocol;
use crate::spdy::session::Session;
use crate::tokens::{PendingLimits, RegisterError, TokenStore};
use crate::{portforward, remotecommand, trim, websocket, StreamRequest};
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;

/// Where the server listens and how long URLs stay valid.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Listening address.
    pub address: IpAddr,
    /// Listening port; 0 picks a free one.
    pub port: u16,
    /// How long a token stays valid.
    pub token_ttl: Duration,
    /// Caps on the requests pending at once.
    pub pending: PendingLimits,
}

/// Longest time between two sweeps of expired tokens (shorter when the tokens' lifetime is).
const SWEEP_INTERVAL: Duration = Duration::from_secs(1);

/// A bound streaming server, not yet serving.
#[derive(Debug)]
pub struct Server {
    listener: TcpListener,
    handle: Handle,
}

/// What RPCs need: the base URL and the token store. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Handle {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    base_url: String,
    tokens: TokenStore,
}

impl Handle {
    /// `http://<address>:<port>`
    pub fn base_url(&self) -> &str {
        &self.inner.base_url
    }

    /// Stores `request` under a fresh token and returns its URL; refused when the pending
    /// requests are at their limits.
    pub fn register(&self, request: StreamRequest) -> Result<String, RegisterError> {
        let kind = request.kind();
        let token = self.inner.tokens.insert(request)?;
        Ok(format!("{}/{kind}/{token}", self.inner.base_url))
    }
}

impl Server {
    /// Binds the listener.
    pub async fn bind(config: ServerConfig) -> std::io::Result<Server> {
        let listener = TcpListener::bind(SocketAddr::new(config.address, config.port)).await?;
        let local = listener.local_addr()?;
        Ok(Server {
            listener,
            handle: Handle {
                inner: Arc::new(Inner {
                    base_url: format!("http://{local}"),
                    tokens: TokenStore::new(config.token_ttl, config.pending),
                }),
            },
        })
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The handle RPCs register requests with.
    pub fn handle(&self) -> Handle {
        self.handle.clone()
    }

    /// Accepts connections until the task is dropped, and frees expired tokens' requests
    /// as they expire (within [`SWEEP_INTERVAL`]), whether or not new requests come.
    pub async fn serve(self) {
        let tokens = &self.handle.inner.tokens;
        let mut sweep = tokio::time::interval(tokens.ttl().min(SWEEP_INTERVAL));
        sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let accepted = tokio::select! {
                accepted = self.listener.accept() => accepted,
                _ = sweep.tick() => {
                    let swept = tokens.sweep();
                    if swept.sessions > 0 {
                        tracing::debug!(
                            expired = swept.sessions,
                            bytes = swept.bytes,
                            "expired streaming tokens freed"
                        );
                    }
                    if swept.bytes >= trim::TRIM_AFTER_BYTES {
                        tokio::task::spawn_blocking(trim::release_free_memory);
                    }
                    continue;
                }
            };
            match accepted {
                Ok((socket, peer)) => {
                    let handle = self.handle.clone();
                    tokio::spawn(async move {
                        tracing::debug!(%peer, "streaming connection");
                        connection(handle, socket).await;
                    });
                }
                Err(err) => {
                    tracing::warn!(error = %err, "streaming server cannot accept");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }
}

async fn connection(handle: Handle, mut socket: TcpStream) {
    let _ = socket.set_nodelay(true);
    let (head, leftover) = match tokio::time::timeout(HEAD_TIMEOUT, read_head(&mut socket)).await {
        Ok(Ok(parsed)) => parsed,
        Ok(Err(crate::http::HeadError::Malformed(what))) => {
            respond(&mut socket, 400, "Bad Request", &format!("{what}\n")).await;
            return;
        }
        Ok(Err(_)) | Err(_) => return,
    };
    let Some((kind, token)) = route(&head.path) else {
        respond(&mut socket, 404, "Not Found", "not found\n").await;
        return;
    };
    if head.has_token("upgrade", "websocket") {
        websocket_connection(handle, socket, &head, leftover, kind, token).await;
        return;
    }
    if !head.has_token("connection", "upgrade") || !head.has_token("upgrade", "SPDY/3.1") {
        respond(
            &mut socket,
            400,
            "Bad Request",
            "expected an upgrade to SPDY/3.1 (Connection: Upgrade, Upgrade: SPDY/3.1)\n",
        )
        .await;
        return;
    }
    let offered = head.values("x-stream-protocol-version");
    if offered.is_empty() {
        respond(
            &mut socket,
            400,
            "Bad Request",
            "X-Stream-Protocol-Version is required\n",
        )
        .await;
        return;
    }
    let request = match handle.inner.tokens.take(token) {
        Some(request) if request.kind() == kind => request,
        _ => {
            respond(&mut socket, 404, "Not Found", "unknown or expired token\n").await;
            return;
        }
    };
    match request {
        StreamRequest::Exec { options, runner } | StreamRequest::Attach { options, runner } => {
            let Some(protocol) = Protocol::negotiate(&offered) else {
                refuse_protocol(&mut socket, &offered, &Protocol::SPDY.map(Protocol::name)).await;
                return;
            };
            if !upgrade(&mut socket, protocol.name()).await {
                return;
            }
            let (session, incoming) = Session::start(socket, leftover);
            remotecommand::serve(session, incoming, protocol, options, runner).await;
        }
        StreamRequest::PortForward { dialer } => {
            if !offered.iter().any(|p| p == portforward::PROTOCOL) {
                refuse_protocol(&mut socket, &offered, &[portforward::PROTOCOL]).await;
                return;
            }
            if !upgrade(&mut socket, portforward::PROTOCOL).await {
                return;
            }
            let (session, incoming) = Session::start(socket, leftover);
            portforward::serve(session, incoming, dialer).await;
        }
    }
}

/// An exec or attach session over WebSocket (`v5.channel.k8s.io` or `v4.channel.k8s.io`).
async fn websocket_connection(
    handle: Handle,
    mut socket: TcpStream,
    head: &crate::http::RequestHead,
    leftover: Vec<u8>,
    kind: &'static str,
    token: &str,
) {
    let key = head.values("sec-websocket-key");
    let (true, true, [key]) = (
        head.method.eq_ignore_ascii_case("GET"),
        head.has_token("connection", "upgrade"),
        key.as_slice(),
    ) else {
        respond(
            &mut socket,
            400,
            "Bad Request",
            "expected a WebSocket upgrade (GET, Connection: Upgrade, one Sec-WebSocket-Key)\n",
        )
        .await;
        return;
    };
    let offered = head.values("sec-websocket-protocol");
    let request = match handle.inner.tokens.take(token) {
        Some(request) if request.kind() == kind => request,
        _ => {
            respond(&mut socket, 404, "Not Found", "unknown or expired token\n").await;
            return;
        }
    };
    let accept = derive_accept_key(key.as_bytes());
    let switching = |protocol: &str| {
        format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\nSec-WebSocket-Protocol: {protocol}\r\n\r\n"
        )
    };
    match request {
        StreamRequest::Exec { options, runner } | StreamRequest::Attach { options, runner } => {
            let Some(protocol) = websocket::negotiate(&offered) else {
                refuse_protocol(&mut socket, &offered, &websocket::PROTOCOLS).await;
                return;
            };
            if socket
                .write_all(switching(protocol).as_bytes())
                .await
                .is_err()
            {
                return;
            }
            tracing::debug!(protocol, kind, "WebSocket session");
            websocket::serve(socket, leftover, protocol, options, runner).await;
        }
        StreamRequest::PortForward { dialer } => {
            let protocol = websocket::PORTFORWARD_TUNNEL;
            if !offered.iter().any(|p| p == protocol) {
                refuse_protocol(&mut socket, &offered, &[protocol]).await;
                return;
            }
            if socket
                .write_all(switching(protocol).as_bytes())
                .await
                .is_err()
            {
                return;
            }
            tracing::debug!(protocol, kind, "WebSocket session");
            websocket::serve_portforward(socket, leftover, dialer).await;
        }
    }
}

/// `(kind, token)` of `/exec/<token>`, `/attach/<token>` or `/portforward/<token>`.
fn route(path: &str) -> Option<(&'static str, &str)> {
    let rest = path.strip_prefix('/')?;
    let (kind, token) = rest.split_once('/')?;
    let kind = ["exec", "attach", "portforward"]
        .into_iter()
        .find(|k| *k == kind)?;
    if token.is_empty() || token.contains('/') {
        return None;
    }
    Some((kind, token))
}

async fn refuse_protocol(socket: &mut TcpStream, offered: &[String], served: &[&str]) {
    let body = format!(
        "unable to upgrade: no common protocol version: offered {offered:?}, served {served:?}\n"
    );
    respond(socket, 403, "Forbidden", &body).await;
}

async fn upgrade(socket: &mut TcpStream, protocol: &str) -> bool {
    let response = format!(
        "HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\nUpgrade: SPDY/3.1\r\nX-Stream-Protocol-Version: {protocol}\r\n\r\n"
    );
    socket.write_all(response.as_bytes()).await.is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    #[test]
    fn routes() {
        assert_eq!(route("/exec/abc"), Some(("exec", "abc")));
        assert_eq!(route("/portforward/x"), Some(("portforward", "x")));
        assert_eq!(route("/exec/"), None);
        assert_eq!(route("/other/abc"), None);
        assert_eq!(route("/exec/a/b"), None);
    }

    /// A server on a free loopback port, its pending requests capped at `max_sessions` and
    /// 1 MiB.
    async fn local_server(token_ttl: Duration, max_sessions: usize) -> Server {
        Server::bind(ServerConfig {
            address: "127.0.0.1".parse().unwrap(),
            port: 0,
            token_ttl,
            pending: PendingLimits {
                max_sessions,
                max_bytes: 1 << 20,
            },
        })
        .await
        .unwrap()
    }

    #[tokio::test]
    async fn serving_frees_expired_requests_without_new_ones() {
        struct Held(Vec<u8>);
        impl crate::Runner for Held {
            fn run(self: Box<Self>, _io: crate::ExecIo) -> crate::BoxFuture<Result<i32, String>> {
                Box::pin(async { Ok(0) })
            }
            fn held_bytes(&self) -> usize {
                self.0.capacity()
            }
        }
        let server = local_server(Duration::from_millis(100), 2).await;
        let handle = server.handle();
        let serving = tokio::spawn(server.serve());
        let exec = || StreamRequest::Exec {
            options: crate::ExecOptions::default(),
            runner: Box::new(Held(vec![0; 64 << 10])),
        };
        handle.register(exec()).unwrap();
        handle.register(exec()).unwrap();
        let err = handle.register(exec()).unwrap_err();
        assert!(
            matches!(err, RegisterError::TooManySessions { max: 2 }),
            "{err:?}"
        );
        assert_eq!(handle.inner.tokens.usage().0, 2);
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert_eq!(handle.inner.tokens.usage(), (0, 0));
        handle.register(exec()).unwrap();
        serving.abort();
    }

    async fn exchange(addr: SocketAddr, request: &str) -> String {
        let mut socket = TcpStream::connect(addr).await.unwrap();
        socket.write_all(request.as_bytes()).await.unwrap();
        let mut response = String::new();
        socket.read_to_string(&mut response).await.unwrap();
        response
    }

    #[tokio::test]
    async fn bad_requests_get_400_404_403_and_do_not_use_the_token() {
        let server = local_server(Duration::from_secs(60), 100).await;
        let addr = server.local_addr().unwrap();
        let handle = server.handle();
        let serving = tokio::spawn(server.serve());

        struct Nop;
        impl crate::PortDialer for Nop {
            fn dial(&self, _port: u16) -> crate::BoxFuture<std::io::Result<tokio::net::TcpStream>> {
                Box::pin(async { Err(std::io::ErrorKind::ConnectionRefused.into()) })
            }
            fn held_bytes(&self) -> usize {
                0
            }
        }
        let url = handle
            .register(StreamRequest::PortForward {
                dialer: Box::new(Nop),
            })
            .unwrap();
        assert!(url.starts_with(&format!("http://{addr}/portforward/")));
        let path = url.trim_start_matches(handle.base_url());
        let token = path.rsplit('/').next().unwrap();

        let plain = exchange(addr, &format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n")).await;
        assert!(plain.starts_with("HTTP/1.1 400 "), "{plain}");
        let garbage = exchange(addr, "NONSENSE\r\n\r\n").await;
        assert!(garbage.starts_with("HTTP/1.1 400 "), "{garbage}");
        let upgrade = "Connection: Upgrade\r\nUpgrade: SPDY/3.1\r\n";
        let unknown = exchange(
            addr,
            &format!("POST /portforward/nope HTTP/1.1\r\n{upgrade}X-Stream-Protocol-Version: portforward.k8s.io\r\n\r\n"),
        )
        .await;
        assert!(unknown.starts_with("HTTP/1.1 404 "), "{unknown}");
        let wrong_kind = exchange(
            addr,
            &format!("POST /exec/{token} HTTP/1.1\r\n{upgrade}X-Stream-Protocol-Version: v4.channel.k8s.io\r\n\r\n"),
        )
        .await;
        assert!(wrong_kind.starts_with("HTTP/1.1 404 "), "{wrong_kind}");
        // The wrong-kind attempt used the token up.
        assert!(!handle.inner.tokens.contains(token));

        // A WebSocket upgrade without a key is malformed; one with a key is accepted for
        // the SPDY tunnel.
        let ws = "Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n";
        let keyless = exchange(addr, &format!("GET /exec/x HTTP/1.1\r\n{ws}\r\n")).await;
        assert!(keyless.starts_with("HTTP/1.1 400 "), "{keyless}");
        let url = handle
            .register(StreamRequest::PortForward {
                dialer: Box::new(Nop),
            })
            .unwrap();
        let path = url.trim_start_matches(handle.base_url());
        let mut socket = TcpStream::connect(addr).await.unwrap();
        socket
            .write_all(
                format!(
                    "GET {path} HTTP/1.1\r\n{ws}Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Protocol: SPDY/3.1+portforward.k8s.io\r\n\r\n"
                )
                .as_bytes(),
            )
            .await
            .unwrap();
        let mut answer = Vec::new();
        while !answer.ends_with(b"\r\n\r\n") {
            let mut byte = [0u8];
            socket.read_exact(&mut byte).await.unwrap();
            answer.push(byte[0]);
        }
        let answer = String::from_utf8(answer).unwrap();
        assert!(answer.starts_with("HTTP/1.1 101 "), "{answer}");
        // RFC 6455's example key and its answer.
        assert!(
            answer.contains("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"),
            "{answer}"
        );
        assert!(answer.contains("Sec-WebSocket-Protocol: SPDY/3.1+portforward.k8s.io\r\n"));
        serving.abort();
    }
}
