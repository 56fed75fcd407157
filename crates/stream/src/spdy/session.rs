//! The server side of a SPDY/3.1 connection: one task reads frames and hands each new
//! stream (with its decompressed headers) to the protocol handler; one task owns the write
//! side and the header compressor, so frames leave in the order they were queued.
//!
//! Flow control: the receive window starts at 64 KiB per stream and per connection, and a
//! WINDOW_UPDATE is sent as the handler consumes data. Outgoing data is not held back by
//! the peer's window: the Kubernetes clients (spdystream) neither advertise nor enforce one.

use std::collections::HashMap;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use super::frame::{rst, Frame, FLAG_FIN};
use super::headers::{Deflater, HeaderList, Inflater};

/// Largest data frame sent.
const MAX_DATA_FRAME: usize = 32 * 1024;
/// Frames queued for the writer before producers wait.
const OUT_QUEUE: usize = 64;
/// Streams queued for the handler before the reader waits.
const INCOMING_QUEUE: usize = 16;
/// How long `close` waits for the peer to close its side.
const CLOSE_WAIT: Duration = Duration::from_secs(5);
/// Largest frame accepted (header + payload); larger frames end the session.
const MAX_FRAME: usize = 1 << 20;

/// Work for the writer task.
enum Out {
    Frame(Frame),
    Reply(u32),
    Close(oneshot::Sender<()>),
}

/// A stream the peer opened.
#[derive(Debug)]
pub struct IncomingStream {
    /// Its ID.
    pub id: u32,
    /// Its SYN_STREAM headers.
    pub headers: HeaderList,
    /// Data the peer sends on it.
    pub reader: StreamReader,
    /// Data berth sends on it.
    pub writer: StreamWriter,
}

/// The receiving half of a stream; ends when the peer sends FIN or RST or the connection ends.
#[derive(Debug)]
pub struct StreamReader {
    id: u32,
    data: mpsc::UnboundedReceiver<Vec<u8>>,
    out: mpsc::Sender<Out>,
}

impl StreamReader {
    /// The next chunk, crediting the peer's window for it; `None` at the end.
    pub async fn recv(&mut self) -> Option<Vec<u8>> {
        let chunk = self.data.recv().await?;
        let delta = chunk.len() as u32;
        if delta > 0 {
            for stream_id in [self.id, 0] {
                let _ = self
                    .out
                    .send(Out::Frame(Frame::WindowUpdate { stream_id, delta }))
                    .await;
            }
        }
        Some(chunk)
    }
}

/// The sending half of a stream.
#[derive(Debug, Clone)]
pub struct StreamWriter {
    id: u32,
    out: mpsc::Sender<Out>,
}

/// The connection is gone.
#[derive(Debug, thiserror::Error)]
#[error("the SPDY connection is closed")]
pub struct Closed;

impl StreamWriter {
    /// Sends `data` as one or more data frames.
    pub async fn write(&self, data: &[u8]) -> Result<(), Closed> {
        for chunk in data.chunks(MAX_DATA_FRAME) {
            self.send(Frame::Data {
                stream_id: self.id,
                flags: 0,
                data: chunk.to_vec(),
            })
            .await?;
        }
        Ok(())
    }

    /// Half-closes the stream (an empty data frame with FIN).
    pub async fn finish(&self) -> Result<(), Closed> {
        self.send(Frame::Data {
            stream_id: self.id,
            flags: FLAG_FIN,
            data: Vec::new(),
        })
        .await
    }

    /// Aborts the stream.
    pub async fn reset(&self, status: u32) -> Result<(), Closed> {
        self.send(Frame::RstStream {
            stream_id: self.id,
            status,
        })
        .await
    }

    async fn send(&self, frame: Frame) -> Result<(), Closed> {
        self.out.send(Out::Frame(frame)).await.map_err(|_| Closed)
    }
}

/// One SPDY connection.
#[derive(Debug)]
pub struct Session {
    out: mpsc::Sender<Out>,
    reader: JoinHandle<()>,
    writer: JoinHandle<()>,
}

impl Session {
    /// Starts serving SPDY on `io`; `leftover` holds bytes already read past the HTTP
    /// request. Returns the session and the streams the peer opens.
    pub fn start<S>(io: S, leftover: Vec<u8>) -> (Session, mpsc::Receiver<IncomingStream>)
    where
        S: AsyncRead + AsyncWrite + Send + 'static,
    {
        let (read_half, write_half) = tokio::io::split(io);
        let (out_tx, out_rx) = mpsc::channel(OUT_QUEUE);
        let (incoming_tx, incoming_rx) = mpsc::channel(INCOMING_QUEUE);
        let writer = tokio::spawn(write_loop(write_half, out_rx));
        let reader = tokio::spawn(read_loop(read_half, leftover, out_tx.clone(), incoming_tx));
        (
            Session {
                out: out_tx,
                reader,
                writer,
            },
            incoming_rx,
        )
    }

    /// Sends GOAWAY, flushes everything queued, closes the sending side and waits (briefly)
    /// for the peer to close its side, so no queued data is lost to a reset.
    pub async fn close(self) {
        let (ack_tx, ack_rx) = oneshot::channel();
        if self.out.send(Out::Close(ack_tx)).await.is_ok() {
            let _ = ack_rx.await;
        }
        drop(self.out);
        let mut reader = self.reader;
        if tokio::time::timeout(CLOSE_WAIT, &mut reader).await.is_err() {
            reader.abort();
        }
        let _ = self.writer.await;
    }
}

async fn write_loop<W: AsyncWrite + Unpin>(mut io: W, mut queue: mpsc::Receiver<Out>) {
    let mut deflater = match Deflater::new() {
        Ok(deflater) => deflater,
        Err(err) => {
            tracing::warn!(error = %err, "cannot start SPDY header compression");
            return;
        }
    };
    let mut last_stream = 0u32;
    while let Some(item) = queue.recv().await {
        let frame = match item {
            Out::Frame(frame) => frame,
            Out::Reply(stream_id) => {
                last_stream = last_stream.max(stream_id);
                match deflater.compress(&[]) {
                    Ok(headers) => Frame::SynReply {
                        stream_id,
                        flags: 0,
                        headers,
                    },
                    Err(err) => {
                        tracing::warn!(error = %err, "cannot compress SPDY headers");
                        return;
                    }
                }
            }
            Out::Close(ack) => {
                let mut bytes = Vec::new();
                let _ = Frame::GoAway {
                    last_good_stream_id: last_stream,
                    status: 0,
                }
                .encode(&mut bytes);
                let _ = io.write_all(&bytes).await;
                let _ = io.flush().await;
                let _ = io.shutdown().await;
                let _ = ack.send(());
                return;
            }
        };
        let mut bytes = Vec::new();
        if frame.encode(&mut bytes).is_err() || io.write_all(&bytes).await.is_err() {
            return;
        }
    }
    let _ = io.shutdown().await;
}

async fn read_loop<R: AsyncRead + Unpin>(
    mut io: R,
    mut buffer: Vec<u8>,
    out: mpsc::Sender<Out>,
    incoming: mpsc::Sender<IncomingStream>,
) {
    let mut inflater = Inflater::new();
    let mut streams: HashMap<u32, mpsc::UnboundedSender<Vec<u8>>> = HashMap::new();
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        loop {
            let (frame, used) = match Frame::parse(&buffer) {
                Ok(Some(parsed)) => parsed,
                Ok(None) if buffer.len() > MAX_FRAME => {
                    tracing::debug!("SPDY frame too large; closing");
                    return;
                }
                Ok(None) => break,
                Err(err) => {
                    tracing::debug!(error = %err, "bad SPDY frame; closing");
                    return;
                }
            };
            buffer.drain(..used);
            match frame {
                Frame::SynStream {
                    stream_id,
                    flags,
                    headers,
                    ..
                } => {
                    let headers = match inflater.decompress(&headers) {
                        Ok(headers) => headers,
                        Err(err) => {
                            // The compression context is now unusable: end the connection.
                            tracing::debug!(error = %err, "bad SPDY header block; closing");
                            return;
                        }
                    };
                    if stream_id == 0 || streams.contains_key(&stream_id) {
                        let _ = out
                            .send(Out::Frame(Frame::RstStream {
                                stream_id,
                                status: rst::PROTOCOL_ERROR,
                            }))
                            .await;
                        continue;
                    }
                    let (data_tx, data_rx) = mpsc::unbounded_channel();
                    if flags & FLAG_FIN == 0 {
                        streams.insert(stream_id, data_tx);
                    }
                    if out.send(Out::Reply(stream_id)).await.is_err() {
                        return;
                    }
                    let stream = IncomingStream {
                        id: stream_id,
                        headers,
                        reader: StreamReader {
                            id: stream_id,
                            data: data_rx,
                            out: out.clone(),
                        },
                        writer: StreamWriter {
                            id: stream_id,
                            out: out.clone(),
                        },
                    };
                    if incoming.send(stream).await.is_err() {
                        // Nobody accepts streams any more.
                        let _ = out
                            .send(Out::Frame(Frame::RstStream {
                                stream_id,
                                status: rst::REFUSED_STREAM,
                            }))
                            .await;
                    }
                }
                Frame::SynReply { headers, .. } | Frame::Headers { headers, .. } => {
                    // Keep the decompression context in step.
                    if inflater.decompress(&headers).is_err() {
                        return;
                    }
                }
                Frame::Data {
                    stream_id,
                    flags,
                    data,
                } => {
                    if let Some(sender) = streams.get(&stream_id) {
                        if !data.is_empty() {
                            let _ = sender.send(data);
                        }
                        if flags & FLAG_FIN != 0 {
                            streams.remove(&stream_id);
                        }
                    }
                }
                Frame::RstStream { stream_id, .. } => {
                    streams.remove(&stream_id);
                }
                Frame::Ping { id } => {
                    // Pings from the client have odd IDs; echo them.
                    if id % 2 == 1 && out.send(Out::Frame(Frame::Ping { id })).await.is_err() {
                        return;
                    }
                }
                Frame::GoAway { .. } => return,
                Frame::Settings { .. } | Frame::WindowUpdate { .. } | Frame::Ignored { .. } => {}
            }
        }
        match io.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buffer.extend_from_slice(&chunk[..n]),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spdy::headers::Deflater;

    /// A minimal client: encodes frames with its own header compressor.
    struct Client {
        deflater: Deflater,
        inflater: Inflater,
    }

    impl Client {
        fn syn(&mut self, id: u32, headers: &[(&str, &str)], flags: u8) -> Vec<u8> {
            let list: HeaderList = headers
                .iter()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect();
            let mut out = Vec::new();
            Frame::SynStream {
                stream_id: id,
                associated_id: 0,
                priority: 0,
                flags,
                headers: self.deflater.compress(&list).unwrap(),
            }
            .encode(&mut out)
            .unwrap();
            out
        }
    }

    async fn read_frame(io: &mut (impl AsyncRead + Unpin), buffer: &mut Vec<u8>) -> Frame {
        loop {
            if let Some((frame, used)) = Frame::parse(buffer).unwrap() {
                buffer.drain(..used);
                return frame;
            }
            let mut chunk = [0u8; 4096];
            let n = io.read(&mut chunk).await.unwrap();
            assert!(n > 0, "unexpected EOF");
            buffer.extend_from_slice(&chunk[..n]);
        }
    }

    #[tokio::test]
    async fn streams_are_replied_data_flows_and_close_sends_goaway() {
        let (client_io, server_io) = tokio::io::duplex(1 << 20);
        let (session, mut incoming) = Session::start(server_io, Vec::new());
        let (mut client_read, mut client_write) = tokio::io::split(client_io);
        let mut client = Client {
            deflater: Deflater::new().unwrap(),
            inflater: Inflater::new(),
        };
        let syn = client.syn(1, &[("streamType", "stdout")], 0);
        client_write.write_all(&syn).await.unwrap();
        let mut data = Vec::new();
        Frame::Data {
            stream_id: 1,
            flags: FLAG_FIN,
            data: b"ping".to_vec(),
        }
        .encode(&mut data)
        .unwrap();
        client_write.write_all(&data).await.unwrap();

        let mut stream = incoming.recv().await.unwrap();
        assert_eq!(stream.id, 1);
        assert_eq!(
            crate::spdy::headers::get(&stream.headers, "streamtype"),
            Some("stdout")
        );
        assert_eq!(stream.reader.recv().await.unwrap(), b"ping");
        assert_eq!(stream.reader.recv().await, None);
        stream.writer.write(b"pong").await.unwrap();
        stream.writer.finish().await.unwrap();

        let mut buffer = Vec::new();
        match read_frame(&mut client_read, &mut buffer).await {
            Frame::SynReply {
                stream_id, headers, ..
            } => {
                assert_eq!(stream_id, 1);
                assert!(client.inflater.decompress(&headers).unwrap().is_empty());
            }
            other => panic!("expected SYN_REPLY, got {other:?}"),
        }
        let mut got = Vec::new();
        loop {
            match read_frame(&mut client_read, &mut buffer).await {
                Frame::WindowUpdate { delta, .. } => assert_eq!(delta, 4),
                Frame::Data {
                    stream_id: 1,
                    flags,
                    data,
                } => {
                    got.extend_from_slice(&data);
                    if flags & FLAG_FIN != 0 {
                        break;
                    }
                }
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(got, b"pong");
        let closing = tokio::spawn(session.close());
        assert!(matches!(
            read_frame(&mut client_read, &mut buffer).await,
            Frame::GoAway {
                last_good_stream_id: 1,
                ..
            }
        ));
        drop(client_write);
        drop(client_read);
        closing.await.unwrap();
    }

    #[tokio::test]
    async fn pings_are_echoed_and_garbage_ends_the_session() {
        let (client_io, server_io) = tokio::io::duplex(1 << 16);
        let (_session, mut incoming) = Session::start(server_io, Vec::new());
        let (mut client_read, mut client_write) = tokio::io::split(client_io);
        let mut ping = Vec::new();
        Frame::Ping { id: 1 }.encode(&mut ping).unwrap();
        client_write.write_all(&ping).await.unwrap();
        let mut buffer = Vec::new();
        assert_eq!(
            read_frame(&mut client_read, &mut buffer).await,
            Frame::Ping { id: 1 }
        );
        client_write
            .write_all(&[0x80, 0x02, 0, 1, 0, 0, 0, 0])
            .await
            .unwrap();
        assert!(incoming.recv().await.is_none());
    }
}
