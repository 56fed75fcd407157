//! Any `:authority` is accepted on the CRI socket.
//!
//! A Unix socket has no host name, so clients send what they like as the HTTP/2
//! `:authority`: Go's gRPC sends `localhost`, Python's grpcio the %-encoded socket path
//! (`tmp%2Fpyb%2Fb.sock` for `unix:///tmp/pyb/b.sock`). The HTTP/2 server (h2) refuses an
//! authority that `http::uri::Authority` cannot parse (a `%` outside user info is one) and
//! resets the stream with PROTOCOL_ERROR before any service sees it, with no setting to
//! accept it.
//!
//! [`AnyAuthority`] wraps a connection and reads the client's frames before h2 does. The
//! first header block decides: when its `:authority` parses, the rest of the connection
//! passes through untouched (Go's clients, kubelet and crictl, cost nothing more); when it
//! does not, every header block of the connection is decoded (HPACK, tracking the client's
//! dynamic table) and re-encoded as literals that h2's decoder can take, with the
//! authority replaced by `localhost`. Re-encoding every block, without indexing, keeps h2's
//! dynamic table empty, so the two tables never disagree. Frames are otherwise forwarded
//! as they are; only HEADERS and CONTINUATION frames are rebuilt.

use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tonic::codegen::http::uri::Authority;
use tonic::transport::server::Connected;

/// The client connection preface (RFC 9113 §3.4).
const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Frame header length.
const FRAME_HEADER: usize = 9;

/// Frame types and flags used here.
const HEADERS: u8 = 0x1;
const CONTINUATION: u8 = 0x9;
const END_STREAM: u8 = 0x1;
const END_HEADERS: u8 = 0x4;
const PADDED: u8 = 0x8;
const PRIORITY: u8 = 0x20;

/// Largest frame payload sent to h2: the smallest SETTINGS_MAX_FRAME_SIZE a peer may use,
/// and h2's default.
const MAX_OUT_PAYLOAD: usize = 16_384;

/// Largest frame read before deciding; a larger one (h2 refuses frames over its 16 KiB
/// setting anyway) ends the inspection and the connection passes through.
const MAX_IN_FRAME: usize = 1 << 20;

/// Largest header block assembled (HEADERS plus CONTINUATIONs).
const MAX_BLOCK: usize = 1 << 20;

/// Largest dynamic table a client may ask the decoder for.
const MAX_TABLE: usize = 64 * 1024;

/// What replaces an authority h2 cannot parse.
const REPLACEMENT: &[u8] = b"localhost";

/// How the connection's frames are handled.
enum Mode {
    /// Waiting for the 24-byte preface.
    Preface,
    /// Frames are read until the first header block decides.
    Undecided,
    /// Every header block is re-encoded.
    Rewrite,
    /// Everything passes through untouched.
    Passthrough,
}

/// A header block being assembled from HEADERS and CONTINUATION frames.
struct Block {
    stream_id: u32,
    end_stream: bool,
    priority: Option<[u8; 5]>,
    fragment: Vec<u8>,
    /// The frames as received, forwarded unchanged if the block passes through.
    raw: Vec<u8>,
}

/// A connection whose client-sent header blocks are made acceptable to h2 (see the module
/// documentation). Writes go straight to the inner stream.
pub struct AnyAuthority<S> {
    inner: S,
    mode: Mode,
    /// Bytes read from the client, not yet handled.
    input: Vec<u8>,
    /// Bytes ready for h2, and how many of them it has read.
    output: Vec<u8>,
    output_read: usize,
    decoder: fluke_hpack::Decoder<'static>,
    block: Option<Block>,
    eof: bool,
}

impl<S> AnyAuthority<S> {
    /// Wraps a freshly accepted connection.
    pub fn new(inner: S) -> Self {
        let mut decoder = fluke_hpack::Decoder::new();
        decoder.set_max_allowed_table_size(MAX_TABLE);
        AnyAuthority {
            inner,
            mode: Mode::Preface,
            input: Vec::new(),
            output: Vec::new(),
            output_read: 0,
            decoder,
            block: None,
            eof: false,
        }
    }

    /// Moves what can be handled from `input` to `output`. Returns whether anything moved.
    fn process(&mut self) -> bool {
        let mut progressed = false;
        loop {
            match self.mode {
                Mode::Passthrough => {
                    if !self.input.is_empty() {
                        self.output.append(&mut self.input);
                        progressed = true;
                    }
                    return progressed;
                }
                Mode::Preface => {
                    if self.input.len() < PREFACE.len() {
                        return progressed;
                    }
                    let preface: Vec<u8> = self.input.drain(..PREFACE.len()).collect();
                    // Not HTTP/2: h2 says so itself.
                    self.mode = if preface == PREFACE {
                        Mode::Undecided
                    } else {
                        Mode::Passthrough
                    };
                    self.output.extend_from_slice(&preface);
                    progressed = true;
                }
                Mode::Undecided | Mode::Rewrite => {
                    if self.input.len() < FRAME_HEADER {
                        return progressed;
                    }
                    let len = u32::from_be_bytes([0, self.input[0], self.input[1], self.input[2]])
                        as usize;
                    if len > MAX_IN_FRAME {
                        self.pass_through();
                        continue;
                    }
                    if self.input.len() < FRAME_HEADER + len {
                        return progressed;
                    }
                    let frame: Vec<u8> = self.input.drain(..FRAME_HEADER + len).collect();
                    self.frame(frame);
                    progressed = true;
                }
            }
        }
    }

    /// Stops inspecting: what is held is forwarded as it came.
    fn pass_through(&mut self) {
        if let Some(block) = self.block.take() {
            self.output.extend_from_slice(&block.raw);
        }
        self.mode = Mode::Passthrough;
    }

    /// Handles one complete frame.
    fn frame(&mut self, frame: Vec<u8>) {
        let kind = frame[3];
        let flags = frame[4];
        let stream_id = u32::from_be_bytes([frame[5], frame[6], frame[7], frame[8]]) & 0x7fff_ffff;
        let payload = &frame[FRAME_HEADER..];
        match kind {
            HEADERS if self.block.is_none() => {
                let Some((priority, fragment)) = headers_fragment(flags, payload) else {
                    // Malformed padding or priority: h2 refuses it itself.
                    self.output.extend_from_slice(&frame);
                    return;
                };
                let block = Block {
                    stream_id,
                    end_stream: flags & END_STREAM != 0,
                    priority,
                    fragment: fragment.to_vec(),
                    raw: frame.clone(),
                };
                self.block = Some(block);
                if flags & END_HEADERS != 0 {
                    self.finish_block();
                }
            }
            CONTINUATION
                if self
                    .block
                    .as_ref()
                    .is_some_and(|b| b.stream_id == stream_id) =>
            {
                let block = self.block.as_mut().expect("checked above");
                block.fragment.extend_from_slice(payload);
                block.raw.extend_from_slice(&frame);
                if block.fragment.len() > MAX_BLOCK {
                    // h2 refuses a block this large anyway.
                    self.pass_through();
                    return;
                }
                if flags & END_HEADERS != 0 {
                    self.finish_block();
                }
            }
            _ => {
                // Any other frame, or one out of order (a protocol error h2 reports): as is.
                if let Some(block) = self.block.take() {
                    self.output.extend_from_slice(&block.raw);
                }
                self.output.extend_from_slice(&frame);
            }
        }
    }

    /// A header block is complete: decide, rewrite or forward it.
    fn finish_block(&mut self) {
        let block = self.block.take().expect("a block is being assembled");
        let mut fields = Vec::new();
        let decoded = self.decoder.decode_with_cb(&block.fragment, |name, value| {
            fields.push((name.into_owned(), value.into_owned()));
        });
        if decoded.is_err() {
            // Not valid HPACK: h2 says so (COMPRESSION_ERROR) from the block as sent.
            self.output.extend_from_slice(&block.raw);
            self.mode = Mode::Passthrough;
            return;
        }
        if matches!(self.mode, Mode::Undecided) {
            let unparsable = fields
                .iter()
                .any(|(name, value)| name == b":authority" && !authority_parses(value));
            if !unparsable {
                self.output.extend_from_slice(&block.raw);
                self.mode = Mode::Passthrough;
                return;
            }
            tracing::debug!(
                "client sends an :authority h2 cannot parse; header blocks are rewritten"
            );
            self.mode = Mode::Rewrite;
        }
        for (name, value) in &mut fields {
            if name == b":authority" && !authority_parses(value) {
                *value = REPLACEMENT.to_vec();
            }
        }
        let encoded = encode_literals(&fields);
        write_header_frames(
            &mut self.output,
            block.stream_id,
            block.end_stream,
            block.priority,
            &encoded,
        );
    }
}

/// Whether h2 accepts `value` as `:authority`.
fn authority_parses(value: &[u8]) -> bool {
    Authority::try_from(value).is_ok()
}

/// The priority fields and the header block fragment of a HEADERS payload, padding removed;
/// None if the padding or priority fields do not fit.
fn headers_fragment(flags: u8, payload: &[u8]) -> Option<(Option<[u8; 5]>, &[u8])> {
    let mut rest = payload;
    let mut pad = 0usize;
    if flags & PADDED != 0 {
        let (&len, tail) = rest.split_first()?;
        pad = usize::from(len);
        rest = tail;
    }
    let mut priority = None;
    if flags & PRIORITY != 0 {
        let fields: [u8; 5] = rest.get(..5)?.try_into().ok()?;
        priority = Some(fields);
        rest = &rest[5..];
    }
    let end = rest.len().checked_sub(pad)?;
    Some((priority, &rest[..end]))
}

/// HPACK: every field as a literal without indexing and with a literal name, strings not
/// Huffman-coded (RFC 7541 §6.2.2), so the receiver's dynamic table is never used.
fn encode_literals(fields: &[(Vec<u8>, Vec<u8>)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, value) in fields {
        out.push(0x00);
        encode_string(&mut out, name);
        encode_string(&mut out, value);
    }
    out
}

/// An HPACK string literal, not Huffman-coded: a 7-bit-prefix length, then the bytes.
fn encode_string(out: &mut Vec<u8>, bytes: &[u8]) {
    encode_integer(out, 0x00, 7, bytes.len());
    out.extend_from_slice(bytes);
}

/// An HPACK integer with an `prefix_bits`-bit prefix in a first byte starting with `first`
/// (RFC 7541 §5.1).
fn encode_integer(out: &mut Vec<u8>, first: u8, prefix_bits: u32, value: usize) {
    let max_prefix = (1usize << prefix_bits) - 1;
    if value < max_prefix {
        out.push(first | value as u8);
        return;
    }
    out.push(first | max_prefix as u8);
    let mut rest = value - max_prefix;
    while rest >= 0x80 {
        out.push((rest & 0x7f) as u8 | 0x80);
        rest >>= 7;
    }
    out.push(rest as u8);
}

/// A HEADERS frame followed by as many CONTINUATION frames as `block` needs.
fn write_header_frames(
    out: &mut Vec<u8>,
    stream_id: u32,
    end_stream: bool,
    priority: Option<[u8; 5]>,
    block: &[u8],
) {
    let first_room = MAX_OUT_PAYLOAD - if priority.is_some() { 5 } else { 0 };
    let (first, mut rest) = block.split_at(block.len().min(first_room));
    let mut flags = 0;
    if end_stream {
        flags |= END_STREAM;
    }
    if rest.is_empty() {
        flags |= END_HEADERS;
    }
    let mut payload = Vec::with_capacity(first.len() + 5);
    if let Some(fields) = priority {
        flags |= PRIORITY;
        payload.extend_from_slice(&fields);
    }
    payload.extend_from_slice(first);
    write_frame(out, HEADERS, flags, stream_id, &payload);
    while !rest.is_empty() {
        let (chunk, tail) = rest.split_at(rest.len().min(MAX_OUT_PAYLOAD));
        rest = tail;
        let flags = if rest.is_empty() { END_HEADERS } else { 0 };
        write_frame(out, CONTINUATION, flags, stream_id, chunk);
    }
}

/// One frame: the 9-byte header and the payload.
fn write_frame(out: &mut Vec<u8>, kind: u8, flags: u8, stream_id: u32, payload: &[u8]) {
    let len = payload.len() as u32;
    out.extend_from_slice(&len.to_be_bytes()[1..]);
    out.push(kind);
    out.push(flags);
    out.extend_from_slice(&stream_id.to_be_bytes());
    out.extend_from_slice(payload);
}

impl<S: AsyncRead + Unpin> AsyncRead for AnyAuthority<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        loop {
            if this.output_read < this.output.len() {
                let ready = &this.output[this.output_read..];
                let n = ready.len().min(buf.remaining());
                buf.put_slice(&ready[..n]);
                this.output_read += n;
                if this.output_read == this.output.len() {
                    this.output.clear();
                    this.output_read = 0;
                }
                return Poll::Ready(Ok(()));
            }
            if matches!(this.mode, Mode::Passthrough) && this.input.is_empty() {
                return Pin::new(&mut this.inner).poll_read(cx, buf);
            }
            if this.process() {
                continue;
            }
            if this.eof {
                // A connection ending inside a frame: h2 sees the rest as it came.
                this.pass_through();
                this.process();
                if this.output.is_empty() {
                    return Poll::Ready(Ok(()));
                }
                continue;
            }
            let mut chunk = [0u8; 16 * 1024];
            let mut chunk_buf = ReadBuf::new(&mut chunk);
            ready!(Pin::new(&mut this.inner).poll_read(cx, &mut chunk_buf))?;
            if chunk_buf.filled().is_empty() {
                this.eof = true;
            } else {
                this.input.extend_from_slice(chunk_buf.filled());
            }
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for AnyAuthority<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

impl<S: Connected> Connected for AnyAuthority<S> {
    type ConnectInfo = S::ConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.inner.connect_info()
    }
}

#[cfg(test)]
mod tests;
