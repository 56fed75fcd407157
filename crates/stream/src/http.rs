//! The HTTP/1.1 request head that starts every streaming session, and plain responses.

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Largest request head accepted.
const MAX_HEAD: usize = 16 * 1024;
/// How long a client gets to send its request head.
pub const HEAD_TIMEOUT: Duration = Duration::from_secs(10);

/// A parsed request head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHead {
    /// `GET`, `POST`, ...
    pub method: String,
    /// The path without the query.
    pub path: String,
    /// Header lines in order (names as sent).
    pub headers: Vec<(String, String)>,
}

impl RequestHead {
    /// Every value of `name` (case-insensitive), comma-separated lists split.
    pub fn values(&self, name: &str) -> Vec<String> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .flat_map(|(_, v)| v.split(',').map(|s| s.trim().to_owned()))
            .filter(|v| !v.is_empty())
            .collect()
    }

    /// Whether a `name` header lists `token` (case-insensitive).
    pub fn has_token(&self, name: &str, token: &str) -> bool {
        self.values(name)
            .iter()
            .any(|v| v.eq_ignore_ascii_case(token))
    }
}

/// Why no request head could be read.
#[derive(Debug, thiserror::Error)]
pub enum HeadError {
    /// The connection failed or closed early.
    #[error("reading the request: {0}")]
    Io(#[from] std::io::Error),
    /// Not an HTTP/1.1 request head.
    #[error("malformed request: {0}")]
    Malformed(&'static str),
}

/// Reads a request head; returns it and any bytes read past it.
pub async fn read_head<R: AsyncRead + Unpin>(
    io: &mut R,
) -> Result<(RequestHead, Vec<u8>), HeadError> {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 4096];
    let end = loop {
        if let Some(at) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break at;
        }
        if buffer.len() > MAX_HEAD {
            return Err(HeadError::Malformed("request head too large"));
        }
        let n = io.read(&mut chunk).await?;
        if n == 0 {
            return Err(HeadError::Io(std::io::ErrorKind::UnexpectedEof.into()));
        }
        buffer.extend_from_slice(&chunk[..n]);
    };
    let head = parse_head(&buffer[..end])?;
    Ok((head, buffer[end + 4..].to_vec()))
}

fn parse_head(bytes: &[u8]) -> Result<RequestHead, HeadError> {
    let text = std::str::from_utf8(bytes).map_err(|_| HeadError::Malformed("not UTF-8"))?;
    let mut lines = text.split("\r\n");
    let request_line = lines.next().unwrap_or_default();
    let mut parts = request_line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(HeadError::Malformed("bad request line"));
    };
    if !version.starts_with("HTTP/1.") || method.is_empty() || !target.starts_with('/') {
        return Err(HeadError::Malformed("bad request line"));
    }
    let path = target
        .split(['?', '#'])
        .next()
        .unwrap_or_default()
        .to_owned();
    let mut headers = Vec::new();
    for line in lines {
        let (name, value) = line
            .split_once(':')
            .ok_or(HeadError::Malformed("bad header line"))?;
        if name.is_empty() || name.contains(' ') {
            return Err(HeadError::Malformed("bad header name"));
        }
        headers.push((name.to_owned(), value.trim().to_owned()));
    }
    Ok(RequestHead {
        method: method.to_owned(),
        path,
        headers,
    })
}

/// Writes a plain-text response and closes the sending side.
pub async fn respond<W: AsyncWrite + Unpin>(io: &mut W, status: u16, reason: &str, body: &str) {
    let response = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = io.write_all(response.as_bytes()).await;
    let _ = io.shutdown().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn heads_parse_with_leftover() {
        let raw = b"POST /exec/abc?x=1 HTTP/1.1\r\nHost: h\r\nX-Stream-Protocol-Version: v4.channel.k8s.io\r\nX-Stream-Protocol-Version: v3.channel.k8s.io, v2.channel.k8s.io\r\nUpgrade: SPDY/3.1\r\n\r\nEXTRA";
        let (head, rest) = read_head(&mut &raw[..]).await.unwrap();
        assert_eq!(head.method, "POST");
        assert_eq!(head.path, "/exec/abc");
        assert_eq!(
            head.values("x-stream-protocol-version"),
            [
                "v4.channel.k8s.io",
                "v3.channel.k8s.io",
                "v2.channel.k8s.io"
            ]
        );
        assert!(head.has_token("upgrade", "spdy/3.1"));
        assert_eq!(rest, b"EXTRA");
    }

    #[tokio::test]
    async fn malformed_heads_are_rejected() {
        for raw in [
            &b"GARBAGE\r\n\r\n"[..],
            b"GET nopath HTTP/1.1\r\n\r\n",
            b"GET / HTTP/1.1\r\nno colon\r\n\r\n",
            b"GET / SPDY\r\n\r\n",
        ] {
            assert!(matches!(
                read_head(&mut &raw[..]).await,
                Err(HeadError::Malformed(_))
            ));
        }
        assert!(matches!(
            read_head(&mut &b"GET / HTTP/1.1\r\n"[..]).await,
            Err(HeadError::Io(_))
        ));
    }
}
