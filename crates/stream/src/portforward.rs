//! The Kubernetes portforward protocol (`portforward.k8s.io`) over SPDY.
//!
//! For every local connection the client opens two streams carrying the same `port` and
//! `requestID` headers: `streamType: error` then `streamType: data`. berth connects to the
//! port in the pod, copies bytes both ways on the data stream, and reports a failure as
//! text on the error stream. Clients without `requestID` pair streams by ID (data = error
//! + 2). The session lasts until the client closes the connection.

use std::collections::HashMap;
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

use crate::spdy::headers;
use crate::spdy::session::{IncomingStream, Session, StreamReader, StreamWriter};
use crate::PortDialer;

/// The protocol name negotiated through `X-Stream-Protocol-Version`.
pub const PROTOCOL: &str = "portforward.k8s.io";

#[derive(Debug, Default)]
struct Pair {
    port: Option<String>,
    error: Option<StreamWriter>,
    data: Option<(StreamReader, StreamWriter)>,
}

/// Serves one portforward session.
pub async fn serve(
    session: Session,
    mut incoming: mpsc::Receiver<IncomingStream>,
    dialer: Box<dyn PortDialer>,
) {
    let dialer: Arc<dyn PortDialer> = Arc::from(dialer);
    let mut pairs: HashMap<String, Pair> = HashMap::new();
    while let Some(stream) = incoming.recv().await {
        let kind = headers::get(&stream.headers, "streamtype").unwrap_or_default();
        let port = headers::get(&stream.headers, "port").map(str::to_owned);
        let request_id = match headers::get(&stream.headers, "requestid") {
            Some(id) => id.to_owned(),
            None if kind == "data" => stream.id.saturating_sub(2).to_string(),
            None => stream.id.to_string(),
        };
        let pair = pairs.entry(request_id.clone()).or_default();
        if pair.port.is_none() {
            pair.port = port;
        }
        match kind {
            "error" => pair.error = Some(stream.writer),
            "data" => pair.data = Some((stream.reader, stream.writer)),
            other => {
                tracing::debug!(stream_type = other, "ignoring unknown port-forward stream");
                let _ = stream
                    .writer
                    .reset(crate::spdy::frame::rst::PROTOCOL_ERROR)
                    .await;
                continue;
            }
        }
        if pair.error.is_some() && pair.data.is_some() {
            let Some(Pair {
                port,
                error: Some(error),
                data: Some((reader, writer)),
            }) = pairs.remove(&request_id)
            else {
                continue;
            };
            tokio::spawn(forward(dialer.clone(), port, error, reader, writer));
        }
    }
    session.close().await;
}

async fn forward(
    dialer: Arc<dyn PortDialer>,
    port: Option<String>,
    error: StreamWriter,
    mut reader: StreamReader,
    writer: StreamWriter,
) {
    let port_number = match port.as_deref().map(str::parse::<u16>) {
        Some(Ok(port)) if port > 0 => port,
        _ => {
            let text = format!("invalid port {:?}", port.unwrap_or_default());
            fail(&error, &writer, text).await;
            return;
        }
    };
    let connection = match dialer.dial(port_number).await {
        Ok(connection) => connection,
        Err(err) => {
            fail(
                &error,
                &writer,
                format!("error forwarding port {port_number}: {err}"),
            )
            .await;
            return;
        }
    };
    let (mut from_pod, mut to_pod) = connection.into_split();
    let upstream = async {
        while let Some(chunk) = reader.recv().await {
            if to_pod.write_all(&chunk).await.is_err() {
                break;
            }
        }
        let _ = to_pod.shutdown().await;
    };
    let downstream = async {
        let mut buffer = vec![0u8; 32 * 1024];
        loop {
            match from_pod.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if writer.write(&buffer[..n]).await.is_err() {
                        break;
                    }
                }
            }
        }
        let _ = writer.finish().await;
    };
    tokio::join!(upstream, downstream);
    let _ = error.finish().await;
}

async fn fail(error: &StreamWriter, data: &StreamWriter, message: String) {
    tracing::debug!(%message, "port forward failed");
    let _ = error.write(message.as_bytes()).await;
    let _ = error.finish().await;
    let _ = data.finish().await;
}
