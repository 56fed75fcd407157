use std::time::Instant;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::*;
use crate::{ContainerStates, Sample};

struct Fixed;

impl Sampler for Fixed {
    fn sample(&self) -> Sample {
        Sample {
            containers: ContainerStates {
                running: 2,
                ..Default::default()
            },
            ..Default::default()
        }
    }
}

/// A server on 127.0.0.1 with `limits`, serving in a task; its address.
async fn start(limits: Limits) -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let mut server = MetricsServer::bind("127.0.0.1:0".parse().unwrap())
        .await
        .unwrap();
    server.limits = limits;
    let addr = server.local_addr().unwrap();
    let task = tokio::spawn(server.serve(Arc::new(Metrics::new()), Arc::new(Fixed)));
    (addr, task)
}

/// Sends `request` and reads until the server closes (at most 10 s).
async fn exchange(addr: SocketAddr, request: &[u8]) -> String {
    let mut socket = TcpStream::connect(addr).await.unwrap();
    socket.write_all(request).await.unwrap();
    read_all(&mut socket).await
}

async fn read_all(socket: &mut TcpStream) -> String {
    let mut answer = Vec::new();
    // A reset (the server closing with unread input) ends the answer too.
    let _ = tokio::time::timeout(Duration::from_secs(10), socket.read_to_end(&mut answer))
        .await
        .expect("the server closes the connection");
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test]
async fn get_metrics_and_nothing_else() {
    let (addr, task) = start(Limits::default()).await;

    let ok = exchange(addr, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert!(ok.starts_with("HTTP/1.1 200 OK\r\n"), "{ok}");
    assert!(
        ok.to_ascii_lowercase()
            .contains("content-type: text/plain; version=0.0.4; charset=utf-8\r\n"),
        "{ok}"
    );
    assert!(
        ok.to_ascii_lowercase().contains("connection: close\r\n"),
        "{ok}"
    );
    assert!(
        ok.contains("\nberth_containers{state=\"running\"} 2\n"),
        "{ok}"
    );
    // HTTP/1.0 and a query string are fine.
    let old = exchange(addr, b"GET /metrics?x=1 HTTP/1.0\r\n\r\n").await;
    assert!(old.starts_with("HTTP/1.0 200 OK\r\n"), "{old}");

    let post = exchange(
        addr,
        b"POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
    )
    .await;
    assert!(post.starts_with("HTTP/1.1 405 "), "{post}");
    assert!(
        post.to_ascii_lowercase().contains("allow: get\r\n"),
        "{post}"
    );
    for method in ["HEAD", "PUT", "DELETE", "OPTIONS"] {
        let answer = exchange(
            addr,
            format!("{method} /metrics HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes(),
        )
        .await;
        assert!(answer.starts_with("HTTP/1.1 405 "), "{method}: {answer}");
    }
    for path in ["/", "/metrics/", "/debug/pprof", "/metricsx", "//metrics"] {
        let answer = exchange(
            addr,
            format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes(),
        )
        .await;
        assert!(answer.starts_with("HTTP/1.1 404 "), "{path}: {answer}");
        assert!(!answer.contains("berth_"), "{path}: {answer}");
    }
    let with_body = exchange(
        addr,
        b"GET /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello",
    )
    .await;
    assert!(with_body.starts_with("HTTP/1.1 400 "), "{with_body}");
    let chunked = exchange(
        addr,
        b"GET /metrics HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    )
    .await;
    assert!(chunked.starts_with("HTTP/1.1 400 "), "{chunked}");
    let garbage = exchange(addr, b"NOT HTTP AT ALL\r\n\r\n").await;
    assert!(!garbage.contains("berth_"), "{garbage}");
    task.abort();
}

#[tokio::test]
async fn oversized_request_heads_are_refused() {
    let (addr, task) = start(Limits::default()).await;
    let long = format!(
        "GET /metrics HTTP/1.1\r\nHost: x\r\nX-Long: {}\r\n\r\n",
        "a".repeat(MAX_HEADER_BYTES)
    );
    let answer = exchange(addr, long.as_bytes()).await;
    assert!(answer.starts_with("HTTP/1.1 431 "), "{answer}");
    let many: String = (0..=MAX_HEADERS).map(|n| format!("X-{n}: v\r\n")).collect();
    let answer = exchange(
        addr,
        format!("GET /metrics HTTP/1.1\r\nHost: x\r\n{many}\r\n").as_bytes(),
    )
    .await;
    assert!(!answer.contains(" 200 "), "{answer}");
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 431 "),
        "{answer}"
    );
    task.abort();
}

#[tokio::test]
async fn a_silent_client_is_dropped_after_the_header_timeout() {
    let (addr, task) = start(Limits {
        header_timeout: Duration::from_millis(300),
        ..Limits::default()
    })
    .await;
    let started = Instant::now();
    let mut socket = TcpStream::connect(addr).await.unwrap();
    socket.write_all(b"GET /metr").await.unwrap();
    let answer = read_all(&mut socket).await;
    assert!(!answer.contains(" 200 "), "{answer}");
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(250) && waited < Duration::from_secs(5),
        "{waited:?}"
    );
    task.abort();
}

#[tokio::test]
async fn connections_beyond_the_limit_are_closed_at_once() {
    let (addr, task) = start(Limits {
        connections: 2,
        ..Limits::default()
    })
    .await;
    // Two clients hold the only two connections (sending nothing).
    let mut held = Vec::new();
    for _ in 0..2 {
        held.push(TcpStream::connect(addr).await.unwrap());
    }
    // Let the server accept both before the third arrives.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = Instant::now();
    let refused = exchange(addr, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert_eq!(refused, "", "a third connection is closed unanswered");
    assert!(started.elapsed() < Duration::from_secs(2));
    // Once they are gone, their places are free again.
    drop(held);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let answer = exchange(addr, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").await;
        if answer.starts_with("HTTP/1.1 200 ") {
            break;
        }
        assert!(Instant::now() < deadline, "no place freed: {answer:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    task.abort();
}
