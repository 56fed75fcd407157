//! Abuse below gRPC, over the daemon's socket: a garbage preface, huge headers, a message
//! whose length prefix says 4 GiB, a message over 16 MiB, a compressed flag without an
//! encoding, a wrong content type, an unknown path, many idle connections. None may stop
//! the daemon (the monitor checks); each case's outcome is printed, and where the issue
//! names the status the case must get, a different one is a note.

use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

use crate::report::{NewFinding, Origin, Severity, Shared};

const CASE_TIMEOUT: Duration = Duration::from_secs(20);

/// What came back for one request.
#[derive(Debug)]
enum Outcome {
    /// An HTTP response, with the grpc-status (headers or trailers) and grpc-message.
    Response {
        http: u16,
        grpc_status: Option<String>,
        grpc_message: Option<String>,
    },
    /// A stream or connection error.
    Error(String),
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Outcome::Response {
                http,
                grpc_status,
                grpc_message,
            } => write!(
                f,
                "HTTP {http}, grpc-status {}, grpc-message {:?}",
                grpc_status.as_deref().unwrap_or("-"),
                crate::report::cut(grpc_message.as_deref().unwrap_or(""), 200)
            ),
            Outcome::Error(e) => write!(f, "error: {e}"),
        }
    }
}

/// gRPC's length-prefixed framing of `message` with the given prefix values.
fn framed(compressed: bool, declared: u32, message: &[u8]) -> Bytes {
    let mut out = Vec::with_capacity(5 + message.len());
    out.push(u8::from(compressed));
    out.extend_from_slice(&declared.to_be_bytes());
    out.extend_from_slice(message);
    Bytes::from(out)
}

/// One request on a fresh HTTP/2 connection.
async fn request(socket: &Path, path: &str, headers: &[(&str, Bytes)], body: Bytes) -> Outcome {
    let attempt = async {
        let io = UnixStream::connect(socket)
            .await
            .map_err(|e| e.to_string())?;
        let (client, connection) = h2::client::Builder::new()
            .max_header_list_size(1 << 20)
            .handshake::<_, Bytes>(io)
            .await
            .map_err(|e| e.to_string())?;
        let driver = tokio::spawn(async move {
            let _ = connection.await;
        });
        let mut client = client.ready().await.map_err(|e| e.to_string())?;
        let mut builder = http::Request::builder()
            .method("POST")
            .uri(format!("http://berth.invalid{path}"));
        for (name, value) in headers {
            builder = builder.header(*name, value.as_ref());
        }
        let request = builder.body(()).map_err(|e| e.to_string())?;
        let (response, mut send) = client
            .send_request(request, false)
            .map_err(|e| e.to_string())?;
        send.send_data(body, true).map_err(|e| e.to_string())?;
        let response = response.await.map_err(|e| e.to_string())?;
        let (parts, mut recv) = response.into_parts();
        let mut grpc_status = parts
            .headers
            .get("grpc-status")
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
        let mut grpc_message = parts
            .headers
            .get("grpc-message")
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
        while let Some(chunk) = recv.data().await {
            let chunk = chunk.map_err(|e| e.to_string())?;
            let _ = recv.flow_control().release_capacity(chunk.len());
        }
        if let Some(trailers) = recv.trailers().await.map_err(|e| e.to_string())? {
            if let Some(v) = trailers.get("grpc-status") {
                grpc_status = Some(String::from_utf8_lossy(v.as_bytes()).into_owned());
            }
            if let Some(v) = trailers.get("grpc-message") {
                grpc_message = Some(String::from_utf8_lossy(v.as_bytes()).into_owned());
            }
        }
        driver.abort();
        Ok::<_, String>(Outcome::Response {
            http: parts.status.as_u16(),
            grpc_status,
            grpc_message,
        })
    };
    match tokio::time::timeout(CASE_TIMEOUT, attempt).await {
        Ok(Ok(outcome)) => outcome,
        Ok(Err(e)) => Outcome::Error(e),
        Err(_) => Outcome::Error(format!("no answer within {CASE_TIMEOUT:?}")),
    }
}

fn grpc_headers() -> Vec<(&'static str, Bytes)> {
    vec![
        ("content-type", Bytes::from_static(b"application/grpc")),
        ("te", Bytes::from_static(b"trailers")),
    ]
}

const VERSION: &str = "/runtime.v1.RuntimeService/Version";

/// Runs every case; one line per case.
pub async fn run(socket: &Path, stats: &Shared, out: &Path) -> Vec<String> {
    let mut lines = Vec::new();
    let expect = |case: &'static str, outcome: &Outcome, want: &str, lines: &mut Vec<String>| {
        let got = match outcome {
            Outcome::Response {
                grpc_status: Some(s),
                ..
            } => s.clone(),
            _ => String::new(),
        };
        lines.push(format!("{case}: {outcome} (want grpc-status {want})"));
        if got != want {
            stats.finding(NewFinding {
                severity: Severity::Note,
                kind: "raw-h2",
                rpc: case,
                key: Some(String::new()),
                what: &format!("{outcome}; want grpc-status {want}"),
                input: case.to_owned(),
                origin: &Origin::Raw(case),
                bytes: None,
                out,
            });
        }
    };

    // Not HTTP/2 at all.
    let garbage = async {
        let mut io = UnixStream::connect(socket)
            .await
            .map_err(|e| e.to_string())?;
        io.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n\x00\xff\xfe garbage")
            .await
            .map_err(|e| e.to_string())?;
        let mut buf = vec![0u8; 4096];
        let mut got = 0;
        loop {
            match io.read(&mut buf[got..]).await {
                Ok(0) => break,
                Ok(n) => {
                    got += n;
                    if got == buf.len() {
                        break;
                    }
                }
                Err(e) => return Ok::<_, String>(format!("{got} bytes, then {e}")),
            }
        }
        Ok(format!("{got} bytes, then closed"))
    };
    let result = tokio::time::timeout(CASE_TIMEOUT, garbage)
        .await
        .unwrap_or_else(|_| Err("still open after 20 s".to_owned()));
    lines.push(format!("garbage-preface: {}", result.unwrap_or_else(|e| e)));

    // A 1 MiB header value.
    let mut headers = grpc_headers();
    headers.push(("x-berth-fuzz", Bytes::from(vec![b'a'; 1 << 20])));
    let outcome = request(socket, VERSION, &headers, framed(false, 0, b"")).await;
    lines.push(format!("huge-headers (1 MiB): {outcome}"));

    // The length prefix says 4 GiB; 16 bytes follow.
    let outcome = request(
        socket,
        VERSION,
        &grpc_headers(),
        framed(false, u32::MAX, &[0; 16]),
    )
    .await;
    expect("length-prefix-4GiB", &outcome, "8", &mut lines);

    // A whole message over 16 MiB.
    let big = vec![0u8; (16 << 20) + 4096];
    let outcome = request(
        socket,
        VERSION,
        &grpc_headers(),
        framed(false, big.len() as u32, &big),
    )
    .await;
    drop(big);
    expect("message-over-16MiB", &outcome, "8", &mut lines);

    // Compressed flag, no grpc-encoding.
    let outcome = request(
        socket,
        VERSION,
        &grpc_headers(),
        framed(true, 2, b"\x0a\x00"),
    )
    .await;
    lines.push(format!("compressed-without-encoding: {outcome}"));

    // Not gRPC's content type.
    let headers = vec![("content-type", Bytes::from_static(b"text/plain"))];
    let outcome = request(socket, VERSION, &headers, framed(false, 0, b"")).await;
    lines.push(format!("wrong-content-type: {outcome}"));

    // An unknown method.
    let outcome = request(
        socket,
        "/runtime.v1.RuntimeService/NoSuchMethod",
        &grpc_headers(),
        framed(false, 0, b""),
    )
    .await;
    expect("unknown-method", &outcome, "12", &mut lines);

    // Idle connections: handshake, then nothing.
    let mut idle = Vec::new();
    for _ in 0..200 {
        let Ok(io) = UnixStream::connect(socket).await else {
            break;
        };
        match h2::client::handshake(io).await {
            Ok((client, connection)) => {
                let driver = tokio::spawn(async move {
                    let _ = connection.await;
                });
                idle.push((client, driver));
            }
            Err(_) => break,
        }
    }
    let opened = idle.len();
    tokio::time::sleep(Duration::from_secs(2)).await;
    for (client, driver) in idle {
        drop(client);
        driver.abort();
    }
    lines.push(format!(
        "idle-connections: {opened} of 200 opened, held 2 s, closed"
    ));
    lines
}
