//! SPDY/3 frame layout: an 8-byte header then the payload.
//!
//! Control frames: `1 | version(15) | type(16) | flags(8) | length(24)`; data frames:
//! `0 | stream id(31) | flags(8) | length(24)`. Header blocks are carried still compressed;
//! the session (de)compresses them in frame order, as the zlib context is per connection.

use thiserror::Error;

/// The only SPDY version spoken.
pub const VERSION: u16 = 3;
/// `FLAG_FIN` on data, SYN_STREAM, SYN_REPLY and HEADERS frames.
pub const FLAG_FIN: u8 = 0x01;
/// `FLAG_UNIDIRECTIONAL` on SYN_STREAM.
pub const FLAG_UNIDIRECTIONAL: u8 = 0x02;
/// Largest payload the 24-bit length field can express.
pub const MAX_PAYLOAD: usize = 0x00ff_ffff;

/// RST_STREAM status codes used by berth.
pub mod rst {
    /// PROTOCOL_ERROR
    pub const PROTOCOL_ERROR: u32 = 1;
    /// REFUSED_STREAM
    pub const REFUSED_STREAM: u32 = 3;
    /// CANCEL
    pub const CANCEL: u32 = 5;
}

const SYN_STREAM: u16 = 1;
const SYN_REPLY: u16 = 2;
const RST_STREAM: u16 = 3;
const SETTINGS: u16 = 4;
const PING: u16 = 6;
const GOAWAY: u16 = 7;
const HEADERS: u16 = 8;
const WINDOW_UPDATE: u16 = 9;

/// One SPDY frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// Opens a stream; `headers` is the compressed name/value block.
    SynStream {
        /// The new stream.
        stream_id: u32,
        /// The stream it is associated with (0: none).
        associated_id: u32,
        /// 0 (highest) to 7.
        priority: u8,
        /// FIN, UNIDIRECTIONAL.
        flags: u8,
        /// Compressed header block.
        headers: Vec<u8>,
    },
    /// Accepts a stream.
    SynReply {
        /// The stream.
        stream_id: u32,
        /// FIN.
        flags: u8,
        /// Compressed header block.
        headers: Vec<u8>,
    },
    /// Aborts a stream.
    RstStream {
        /// The stream.
        stream_id: u32,
        /// Why.
        status: u32,
    },
    /// Connection settings: (flags, id, value) triples.
    Settings {
        /// Frame flags.
        flags: u8,
        /// The entries.
        entries: Vec<(u8, u32, u32)>,
    },
    /// Liveness check; echoed by the receiver.
    Ping {
        /// Opaque ID.
        id: u32,
    },
    /// The sender stops accepting streams.
    GoAway {
        /// Last stream the sender processed.
        last_good_stream_id: u32,
        /// Why.
        status: u32,
    },
    /// More headers for a stream.
    Headers {
        /// The stream.
        stream_id: u32,
        /// FIN.
        flags: u8,
        /// Compressed header block.
        headers: Vec<u8>,
    },
    /// Flow-control credit (stream 0: the whole connection).
    WindowUpdate {
        /// The stream.
        stream_id: u32,
        /// Bytes added to the window.
        delta: u32,
    },
    /// Stream payload.
    Data {
        /// The stream.
        stream_id: u32,
        /// FIN.
        flags: u8,
        /// The bytes.
        data: Vec<u8>,
    },
    /// A control frame type this implementation ignores (NOOP, CREDENTIAL, unknown).
    Ignored {
        /// Its type.
        kind: u16,
    },
}

/// Why bytes are not a valid frame.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum FrameError {
    /// A control frame of another SPDY version.
    #[error("unsupported SPDY version {0}")]
    Version(u16),
    /// A frame shorter than its type's fixed fields.
    #[error("SPDY frame of type {kind} has a {len}-byte payload; at least {min} are needed")]
    Short {
        /// Frame type.
        kind: u16,
        /// Payload length received.
        len: usize,
        /// Fixed part of the type.
        min: usize,
    },
    /// A frame's payload exceeds what may be sent.
    #[error("SPDY frame payload of {0} bytes is too large")]
    TooLarge(usize),
}

impl Frame {
    /// Parses the first frame of `buf`: `Ok(None)` when more bytes are needed, else the frame
    /// and how many bytes it took.
    pub fn parse(buf: &[u8]) -> Result<Option<(Frame, usize)>, FrameError> {
        if buf.len() < 8 {
            return Ok(None);
        }
        let word = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]);
        let flags = buf[4];
        let len = u32::from_be_bytes([0, buf[5], buf[6], buf[7]]) as usize;
        if buf.len() < 8 + len {
            return Ok(None);
        }
        let payload = &buf[8..8 + len];
        let frame = if word & 0x8000_0000 == 0 {
            Frame::Data {
                stream_id: word & 0x7fff_ffff,
                flags,
                data: payload.to_vec(),
            }
        } else {
            let version = ((word >> 16) & 0x7fff) as u16;
            if version != VERSION {
                return Err(FrameError::Version(version));
            }
            parse_control((word & 0xffff) as u16, flags, payload)?
        };
        Ok(Some((frame, 8 + len)))
    }

    /// Appends the frame's wire form to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), FrameError> {
        let mut payload = Vec::new();
        let (kind, flags) = match self {
            Frame::Data {
                stream_id,
                flags,
                data,
            } => {
                if data.len() > MAX_PAYLOAD {
                    return Err(FrameError::TooLarge(data.len()));
                }
                out.extend_from_slice(&(stream_id & 0x7fff_ffff).to_be_bytes());
                out.push(*flags);
                out.extend_from_slice(&(data.len() as u32).to_be_bytes()[1..]);
                out.extend_from_slice(data);
                return Ok(());
            }
            Frame::SynStream {
                stream_id,
                associated_id,
                priority,
                flags,
                headers,
            } => {
                payload.extend_from_slice(&(stream_id & 0x7fff_ffff).to_be_bytes());
                payload.extend_from_slice(&(associated_id & 0x7fff_ffff).to_be_bytes());
                payload.push((priority & 0x07) << 5);
                payload.push(0); // slot
                payload.extend_from_slice(headers);
                (SYN_STREAM, *flags)
            }
            Frame::SynReply {
                stream_id,
                flags,
                headers,
            } => {
                payload.extend_from_slice(&(stream_id & 0x7fff_ffff).to_be_bytes());
                payload.extend_from_slice(headers);
                (SYN_REPLY, *flags)
            }
            Frame::RstStream { stream_id, status } => {
                payload.extend_from_slice(&(stream_id & 0x7fff_ffff).to_be_bytes());
                payload.extend_from_slice(&status.to_be_bytes());
                (RST_STREAM, 0)
            }
            Frame::Settings { flags, entries } => {
                payload.extend_from_slice(&(entries.len() as u32).to_be_bytes());
                for (entry_flags, id, value) in entries {
                    payload.push(*entry_flags);
                    payload.extend_from_slice(&id.to_be_bytes()[1..]);
                    payload.extend_from_slice(&value.to_be_bytes());
                }
                (SETTINGS, *flags)
            }
            Frame::Ping { id } => {
                payload.extend_from_slice(&id.to_be_bytes());
                (PING, 0)
            }
            Frame::GoAway {
                last_good_stream_id,
                status,
            } => {
                payload.extend_from_slice(&(last_good_stream_id & 0x7fff_ffff).to_be_bytes());
                payload.extend_from_slice(&status.to_be_bytes());
                (GOAWAY, 0)
            }
            Frame::Headers {
                stream_id,
                flags,
                headers,
            } => {
                payload.extend_from_slice(&(stream_id & 0x7fff_ffff).to_be_bytes());
                payload.extend_from_slice(headers);
                (HEADERS, *flags)
            }
            Frame::WindowUpdate { stream_id, delta } => {
                payload.extend_from_slice(&(stream_id & 0x7fff_ffff).to_be_bytes());
                payload.extend_from_slice(&(delta & 0x7fff_ffff).to_be_bytes());
                (WINDOW_UPDATE, 0)
            }
            Frame::Ignored { kind } => (*kind, 0),
        };
        if payload.len() > MAX_PAYLOAD {
            return Err(FrameError::TooLarge(payload.len()));
        }
        out.extend_from_slice(&(0x8000 | VERSION).to_be_bytes());
        out.extend_from_slice(&kind.to_be_bytes());
        out.push(flags);
        out.extend_from_slice(&(payload.len() as u32).to_be_bytes()[1..]);
        out.extend_from_slice(&payload);
        Ok(())
    }
}

fn word(bytes: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
}

fn parse_control(kind: u16, flags: u8, payload: &[u8]) -> Result<Frame, FrameError> {
    let need = |min: usize| {
        if payload.len() < min {
            Err(FrameError::Short {
                kind,
                len: payload.len(),
                min,
            })
        } else {
            Ok(())
        }
    };
    Ok(match kind {
        SYN_STREAM => {
            need(10)?;
            Frame::SynStream {
                stream_id: word(payload, 0) & 0x7fff_ffff,
                associated_id: word(payload, 4) & 0x7fff_ffff,
                priority: payload[8] >> 5,
                flags,
                headers: payload[10..].to_vec(),
            }
        }
        SYN_REPLY => {
            need(4)?;
            Frame::SynReply {
                stream_id: word(payload, 0) & 0x7fff_ffff,
                flags,
                headers: payload[4..].to_vec(),
            }
        }
        RST_STREAM => {
            need(8)?;
            Frame::RstStream {
                stream_id: word(payload, 0) & 0x7fff_ffff,
                status: word(payload, 4),
            }
        }
        SETTINGS => {
            need(4)?;
            let count = word(payload, 0) as usize;
            need(4 + count.saturating_mul(8))?;
            let entries = (0..count)
                .map(|i| {
                    let at = 4 + i * 8;
                    let id = word(payload, at) & 0x00ff_ffff;
                    (payload[at], id, word(payload, at + 4))
                })
                .collect();
            Frame::Settings { flags, entries }
        }
        PING => {
            need(4)?;
            Frame::Ping {
                id: word(payload, 0),
            }
        }
        GOAWAY => {
            need(4)?;
            Frame::GoAway {
                last_good_stream_id: word(payload, 0) & 0x7fff_ffff,
                status: if payload.len() >= 8 {
                    word(payload, 4)
                } else {
                    0
                },
            }
        }
        HEADERS => {
            need(4)?;
            Frame::Headers {
                stream_id: word(payload, 0) & 0x7fff_ffff,
                flags,
                headers: payload[4..].to_vec(),
            }
        }
        WINDOW_UPDATE => {
            need(8)?;
            Frame::WindowUpdate {
                stream_id: word(payload, 0) & 0x7fff_ffff,
                delta: word(payload, 4) & 0x7fff_ffff,
            }
        }
        other => Frame::Ignored { kind: other },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(frame: Frame) {
        let mut bytes = Vec::new();
        frame.encode(&mut bytes).unwrap();
        // Every prefix is incomplete.
        for cut in 0..bytes.len() {
            assert_eq!(
                Frame::parse(&bytes[..cut]).unwrap(),
                None,
                "{frame:?} cut {cut}"
            );
        }
        bytes.extend_from_slice(b"next");
        let (parsed, used) = Frame::parse(&bytes).unwrap().unwrap();
        assert_eq!(parsed, frame);
        assert_eq!(used, bytes.len() - 4);
    }

    #[test]
    fn every_frame_type_round_trips() {
        round_trip(Frame::SynStream {
            stream_id: 1,
            associated_id: 0,
            priority: 7,
            flags: FLAG_FIN | FLAG_UNIDIRECTIONAL,
            headers: vec![1, 2, 3],
        });
        round_trip(Frame::SynReply {
            stream_id: 3,
            flags: 0,
            headers: vec![9; 40],
        });
        round_trip(Frame::RstStream {
            stream_id: 5,
            status: rst::CANCEL,
        });
        round_trip(Frame::Settings {
            flags: 1,
            entries: vec![(0, 7, 65536), (1, 4, 100)],
        });
        round_trip(Frame::Ping { id: 0xdead_beef });
        round_trip(Frame::GoAway {
            last_good_stream_id: 9,
            status: 0,
        });
        round_trip(Frame::Headers {
            stream_id: 7,
            flags: FLAG_FIN,
            headers: vec![],
        });
        round_trip(Frame::WindowUpdate {
            stream_id: 0,
            delta: 65536,
        });
        round_trip(Frame::Data {
            stream_id: 0x7fff_ffff,
            flags: FLAG_FIN,
            data: b"hello".to_vec(),
        });
    }

    #[test]
    fn known_bytes_decode() {
        // PING id 1: control bit, version 3, type 6, no flags, length 4.
        let ping = [0x80, 0x03, 0x00, 0x06, 0x00, 0x00, 0x00, 0x04, 0, 0, 0, 1];
        assert_eq!(
            Frame::parse(&ping).unwrap(),
            Some((Frame::Ping { id: 1 }, 12))
        );
        // DATA on stream 1 with FIN, "hi".
        let data = [0, 0, 0, 1, 0x01, 0, 0, 2, b'h', b'i'];
        assert_eq!(
            Frame::parse(&data).unwrap(),
            Some((
                Frame::Data {
                    stream_id: 1,
                    flags: FLAG_FIN,
                    data: b"hi".to_vec()
                },
                10
            ))
        );
    }

    #[test]
    fn bad_frames_are_errors() {
        let v2 = [0x80, 0x02, 0x00, 0x06, 0x00, 0x00, 0x00, 0x04, 0, 0, 0, 1];
        assert_eq!(Frame::parse(&v2), Err(FrameError::Version(2)));
        let short_rst = [0x80, 0x03, 0x00, 0x03, 0x00, 0x00, 0x00, 0x02, 0, 1];
        assert!(matches!(
            Frame::parse(&short_rst),
            Err(FrameError::Short { kind: 3, .. })
        ));
        let unknown = [0x80, 0x03, 0x00, 0x0a, 0x00, 0x00, 0x00, 0x00];
        assert_eq!(
            Frame::parse(&unknown).unwrap(),
            Some((Frame::Ignored { kind: 10 }, 8))
        );
    }
}
