//! SPDY/3 name/value header blocks: `count(32)` then `len(32) name len(32) value` pairs
//! (several values of one name joined by NUL), zlib-compressed with one context per
//! direction of the connection, primed with the SPDY/3 dictionary.

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};
use thiserror::Error;

/// Largest decompressed header block accepted.
const MAX_BLOCK: usize = 256 * 1024;

/// Words of the SPDY/3 dictionary, each stored with a 4-byte big-endian length prefix.
const DICTIONARY_WORDS: &[&str] = &[
    "options",
    "head",
    "post",
    "put",
    "delete",
    "trace",
    "accept",
    "accept-charset",
    "accept-encoding",
    "accept-language",
    "accept-ranges",
    "age",
    "allow",
    "authorization",
    "cache-control",
    "connection",
    "content-base",
    "content-encoding",
    "content-language",
    "content-length",
    "content-location",
    "content-md5",
    "content-range",
    "content-type",
    "date",
    "etag",
    "expect",
    "expires",
    "from",
    "host",
    "if-match",
    "if-modified-since",
    "if-none-match",
    "if-range",
    "if-unmodified-since",
    "last-modified",
    "location",
    "max-forwards",
    "pragma",
    "proxy-authenticate",
    "proxy-authorization",
    "range",
    "referer",
    "retry-after",
    "server",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "user-agent",
    "vary",
    "via",
    "warning",
    "www-authenticate",
    "method",
    "get",
    "status",
    "200 OK",
    "version",
    "HTTP/1.1",
    "url",
    "public",
    "set-cookie",
    "keep-alive",
    "origin",
];

/// The SPDY/3 dictionary's tail, stored without length prefixes.
const DICTIONARY_TAIL: &str = concat!(
    "100101201202205206300302303304305306307402405406407408409410411412413414415416417",
    "502504505203 Non-Authoritative Information204 No Content301 Moved Permanently",
    "400 Bad Request401 Unauthorized403 Forbidden404 Not Found500 Internal Server Error",
    "501 Not Implemented503 Service UnavailableJan Feb Mar Apr May Jun Jul Aug Sept Oct ",
    "Nov Dec 00:00:00 Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMTchunked,text/html,image/png,",
    "image/jpg,image/gif,application/xml,application/xhtml+xml,text/plain,text/javascript,",
    "publicprivatemax-age=gzip,deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0.",
);

/// The SPDY/3 zlib dictionary (1423 bytes).
pub fn dictionary() -> Vec<u8> {
    let mut dict = Vec::with_capacity(1423);
    for word in DICTIONARY_WORDS {
        dict.extend_from_slice(&(word.len() as u32).to_be_bytes());
        dict.extend_from_slice(word.as_bytes());
    }
    dict.extend_from_slice(DICTIONARY_TAIL.as_bytes());
    dict
}

/// Header name/value pairs in wire order; names are lowercase on the wire.
pub type HeaderList = Vec<(String, String)>;

/// The value of `name` (compared case-insensitively), if present.
pub fn get<'a>(headers: &'a HeaderList, name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// Why a header block cannot be read.
#[derive(Debug, Error)]
pub enum HeaderError {
    /// zlib rejected the data.
    #[error("header block decompression failed: {0}")]
    Inflate(String),
    /// zlib failed to compress.
    #[error("header block compression failed: {0}")]
    Deflate(String),
    /// The block asks for another dictionary.
    #[error("header block uses an unknown zlib dictionary")]
    Dictionary,
    /// The block is larger than allowed.
    #[error("header block exceeds {MAX_BLOCK} bytes")]
    TooLarge,
    /// The decompressed block is not a valid name/value list.
    #[error("malformed header block: {0}")]
    Malformed(&'static str),
}

/// Encodes `headers` as an uncompressed block (names lowercased).
pub fn encode_block(headers: &[(String, String)]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&(headers.len() as u32).to_be_bytes());
    for (name, value) in headers {
        let name = name.to_ascii_lowercase();
        out.extend_from_slice(&(name.len() as u32).to_be_bytes());
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(&(value.len() as u32).to_be_bytes());
        out.extend_from_slice(value.as_bytes());
    }
    out
}

/// Decodes an uncompressed block.
pub fn decode_block(block: &[u8]) -> Result<HeaderList, HeaderError> {
    let mut at = 0usize;
    let take_u32 = |at: &mut usize| -> Result<usize, HeaderError> {
        let bytes = block
            .get(*at..*at + 4)
            .ok_or(HeaderError::Malformed("truncated length"))?;
        *at += 4;
        Ok(u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) as usize)
    };
    let count = take_u32(&mut at)?;
    let mut headers = Vec::new();
    for _ in 0..count {
        let mut pair = [String::new(), String::new()];
        for slot in &mut pair {
            let len = take_u32(&mut at)?;
            let bytes = block
                .get(at..at.saturating_add(len))
                .ok_or(HeaderError::Malformed("truncated string"))?;
            at += len;
            *slot = String::from_utf8(bytes.to_vec())
                .map_err(|_| HeaderError::Malformed("header is not UTF-8"))?;
        }
        let [name, value] = pair;
        if name.is_empty() {
            return Err(HeaderError::Malformed("empty header name"));
        }
        // Several values of one name are NUL-separated.
        for value in value.split('\0') {
            headers.push((name.clone(), value.to_owned()));
        }
    }
    Ok(headers)
}

/// Compresses header blocks for one direction of a connection.
pub struct Deflater {
    zlib: Compress,
}

impl std::fmt::Debug for Deflater {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Deflater")
    }
}

impl Deflater {
    /// A compressor primed with the SPDY/3 dictionary.
    pub fn new() -> Result<Deflater, HeaderError> {
        let mut zlib = Compress::new(Compression::default(), true);
        zlib.set_dictionary(&dictionary())
            .map_err(|e| HeaderError::Deflate(e.to_string()))?;
        Ok(Deflater { zlib })
    }

    /// Encodes and compresses `headers`, ending with a sync flush so the peer can decode the
    /// block on its own.
    pub fn compress(&mut self, headers: &[(String, String)]) -> Result<Vec<u8>, HeaderError> {
        let input = encode_block(headers);
        let mut out = Vec::with_capacity(input.len() + 64);
        let mut consumed = 0usize;
        loop {
            if out.capacity() - out.len() < 64 {
                out.reserve(256);
            }
            let before = self.zlib.total_in();
            self.zlib
                .compress_vec(&input[consumed..], &mut out, FlushCompress::Sync)
                .map_err(|e| HeaderError::Deflate(e.to_string()))?;
            consumed += (self.zlib.total_in() - before) as usize;
            // Done when all input is taken and zlib left spare room (the flush completed).
            if consumed == input.len() && out.len() < out.capacity() {
                return Ok(out);
            }
        }
    }
}

/// Decompresses header blocks for one direction of a connection.
pub struct Inflater {
    zlib: Decompress,
    dictionary: Vec<u8>,
}

impl std::fmt::Debug for Inflater {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Inflater")
    }
}

impl Default for Inflater {
    fn default() -> Self {
        Inflater::new()
    }
}

impl Inflater {
    /// A decompressor that supplies the SPDY/3 dictionary when the stream asks for it.
    pub fn new() -> Inflater {
        Inflater {
            zlib: Decompress::new(true),
            dictionary: dictionary(),
        }
    }

    /// Decompresses and decodes one header block.
    pub fn decompress(&mut self, compressed: &[u8]) -> Result<HeaderList, HeaderError> {
        let mut out: Vec<u8> = Vec::with_capacity(compressed.len() * 4 + 64);
        let mut consumed = 0usize;
        loop {
            if out.capacity() - out.len() < 256 {
                if out.len() >= MAX_BLOCK {
                    return Err(HeaderError::TooLarge);
                }
                out.reserve(out.len().max(1024));
            }
            let before_in = self.zlib.total_in();
            let before_out = self.zlib.total_out();
            let result =
                self.zlib
                    .decompress_vec(&compressed[consumed..], &mut out, FlushDecompress::Sync);
            consumed += (self.zlib.total_in() - before_in) as usize;
            match result {
                Ok(Status::StreamEnd) => break,
                Ok(_) => {}
                Err(err) => match err.needs_dictionary() {
                    Some(_) => {
                        self.zlib
                            .set_dictionary(&self.dictionary)
                            .map_err(|_| HeaderError::Dictionary)?;
                        continue;
                    }
                    None => return Err(HeaderError::Inflate(err.to_string())),
                },
            }
            let progressed = self.zlib.total_out() != before_out;
            if consumed == compressed.len() && (out.len() < out.capacity() || !progressed) {
                break;
            }
        }
        decode_block(&out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> HeaderList {
        list.iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn dictionary_has_the_spdy3_size_and_checksum() {
        let dict = dictionary();
        assert_eq!(dict.len(), 1423);
        assert_eq!(&dict[..11], b"\0\0\0\x07options");
        assert!(dict.ends_with(b",*,enq=0."));
        // Adler-32 of the SPDY/3 dictionary, as zlib streams name it in their header.
        let (mut a, mut b) = (1u32, 0u32);
        for byte in &dict {
            a = (a + u32::from(*byte)) % 65521;
            b = (b + a) % 65521;
        }
        assert_eq!((b << 16) | a, 0xe3c6_a7c2);
    }

    #[test]
    fn blocks_round_trip_through_one_context_per_direction() {
        let mut deflater = Deflater::new().unwrap();
        let mut inflater = Inflater::new();
        let first = pairs(&[("streamtype", "error"), ("port", "80"), ("requestid", "0")]);
        let second = pairs(&[("streamtype", "data"), ("port", "80"), ("requestid", "0")]);
        for block in [&first, &second, &first, &pairs(&[])] {
            let compressed = deflater.compress(block).unwrap();
            assert_eq!(&inflater.decompress(&compressed).unwrap(), block);
        }
    }

    #[test]
    fn names_are_lowercased_and_nul_values_split() {
        let mut deflater = Deflater::new().unwrap();
        let mut inflater = Inflater::new();
        let compressed = deflater
            .compress(&pairs(&[("StreamType", "stdout"), ("x", "a\0b")]))
            .unwrap();
        assert_eq!(
            inflater.decompress(&compressed).unwrap(),
            pairs(&[("streamtype", "stdout"), ("x", "a"), ("x", "b")])
        );
        assert_eq!(
            get(&pairs(&[("streamtype", "stdout")]), "streamType"),
            Some("stdout")
        );
    }

    #[test]
    fn large_blocks_round_trip() {
        let mut deflater = Deflater::new().unwrap();
        let mut inflater = Inflater::new();
        let value: String = (0..20_000)
            .map(|i| char::from(b'a' + (i * 7 % 26) as u8))
            .collect();
        let block = pairs(&[("big", &value)]);
        let compressed = deflater.compress(&block).unwrap();
        assert_eq!(inflater.decompress(&compressed).unwrap(), block);
    }

    #[test]
    fn known_uncompressed_block_decodes() {
        let block = b"\0\0\0\x01\0\0\0\x0astreamtype\0\0\0\x05error";
        assert_eq!(
            decode_block(block).unwrap(),
            pairs(&[("streamtype", "error")])
        );
        assert!(decode_block(b"\0\0\0\x02\0\0\0\x01a").is_err());
        assert!(Inflater::new().decompress(b"not zlib at all").is_err());
    }
}
