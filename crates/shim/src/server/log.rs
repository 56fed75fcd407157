//! The CRI container log: one record per line,
//! `<RFC3339Nano> <stdout|stderr> <F|P> <content>\n`.
//!
//! `F` closes a line (its `\n` is not part of the content). `P` is a piece of a line: emitted
//! when a line grows past [`PARTIAL_LIMIT`] bytes, and for what is left at end of stream
//! without a `\n`. kubelet joins `P` records up to the next `F`. Rotation is kubelet's
//! business: it renames the file and asks for a reopen; the shim never truncates.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use crate::time::Timestamp;

/// Longest content of one record; longer lines are split into `P` records.
pub(crate) const PARTIAL_LIMIT: usize = 16 * 1024;

/// Which container stream a record comes from (a TTY is all `Stdout`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    fn tag(self) -> &'static [u8] {
        match self {
            Stream::Stdout => b"stdout",
            Stream::Stderr => b"stderr",
        }
    }
}

/// Appends one record to `out`.
pub(crate) fn write_record(
    out: &mut Vec<u8>,
    ts: Timestamp,
    stream: Stream,
    partial: bool,
    content: &[u8],
) {
    out.reserve(crate::time::RFC3339_NANO_LEN + 11 + content.len());
    ts.write_rfc3339_nano(out);
    out.push(b' ');
    out.extend_from_slice(stream.tag());
    out.extend_from_slice(if partial { b" P " } else { b" F " });
    out.extend_from_slice(content);
    out.push(b'\n');
}

/// Splits one stream's bytes into records, holding an unfinished line between reads.
pub(crate) struct LineBuffer {
    stream: Stream,
    limit: usize,
    /// Start of a line whose `\n` has not arrived yet (at most `limit` bytes).
    pending: Vec<u8>,
}

impl LineBuffer {
    pub(crate) fn new(stream: Stream, limit: usize) -> Self {
        LineBuffer {
            stream,
            limit: limit.max(1),
            pending: Vec::new(),
        }
    }

    /// Consumes `data`, appending finished records to `out`.
    pub(crate) fn feed(
        &mut self,
        mut data: &[u8],
        out: &mut Vec<u8>,
        clock: &mut dyn FnMut() -> Timestamp,
    ) {
        while !data.is_empty() {
            match data.iter().position(|b| *b == b'\n') {
                Some(nl) => {
                    let line = &data[..nl];
                    data = &data[nl + 1..];
                    if self.pending.is_empty() && line.len() <= self.limit {
                        write_record(out, clock(), self.stream, false, line);
                    } else {
                        self.push_partial(line, out, clock);
                        write_record(out, clock(), self.stream, false, &self.pending);
                        self.release();
                    }
                }
                None => {
                    self.push_partial(data, out, clock);
                    data = &[];
                }
            }
        }
    }

    /// End of stream: whatever is held becomes a `P` record.
    pub(crate) fn finish(&mut self, out: &mut Vec<u8>, clock: &mut dyn FnMut() -> Timestamp) {
        if !self.pending.is_empty() {
            write_record(out, clock(), self.stream, true, &self.pending);
            self.release();
        }
    }

    /// Appends to `pending`, emitting `P` records each time it would exceed the limit.
    fn push_partial(
        &mut self,
        mut seg: &[u8],
        out: &mut Vec<u8>,
        clock: &mut dyn FnMut() -> Timestamp,
    ) {
        while self.pending.len() + seg.len() > self.limit {
            let take = self.limit - self.pending.len();
            if self.pending.is_empty() {
                write_record(out, clock(), self.stream, true, &seg[..take]);
            } else {
                self.pending.extend_from_slice(&seg[..take]);
                write_record(out, clock(), self.stream, true, &self.pending);
                self.pending.clear();
            }
            seg = &seg[take..];
        }
        self.pending.extend_from_slice(seg);
    }

    /// Drops the buffer after a long line so an idle shim does not keep it.
    fn release(&mut self) {
        if self.pending.capacity() > 4096 {
            self.pending = Vec::new();
        } else {
            self.pending.clear();
        }
    }
}

/// The log file. Write errors (disk full, file removed) are reported to the caller, which
/// logs them and carries on: the container must never block on its log.
pub(crate) struct CriLog {
    path: PathBuf,
    file: File,
}

impl CriLog {
    /// Creates the parent directories and opens the file for appending (mode 0640 if new).
    pub(crate) fn open(path: &Path) -> io::Result<Self> {
        Ok(CriLog {
            path: path.to_path_buf(),
            file: open_append(path)?,
        })
    }

    /// Closes the file and opens the path again (creating it). The old file stays valid until
    /// the new one is open, so a failed reopen loses nothing.
    pub(crate) fn reopen(&mut self) -> io::Result<()> {
        let new = open_append(&self.path)?;
        let old = std::mem::replace(&mut self.file, new);
        let _ = old.sync_data();
        Ok(())
    }

    /// Writes whole records (one `write` for the common case, so concurrent readers see whole
    /// lines).
    pub(crate) fn write(&mut self, records: &[u8]) -> io::Result<()> {
        self.file.write_all(records)
    }
}

fn open_append(path: &Path) -> io::Result<File> {
    if let Some(parent) = path.parent() {
        if !parent.as_os_str().is_empty() {
            fs::create_dir_all(parent)?;
        }
    }
    OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o640)
        .open(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::parse_rfc3339_nano;

    fn clock() -> impl FnMut() -> Timestamp {
        let mut n = 0u32;
        move || {
            n += 1;
            Timestamp {
                secs: 1_795_410_347,
                nanos: n,
            }
        }
    }

    /// Feeds `chunks` (then EOF) and returns the records as (stream, flag, content).
    fn run(limit: usize, stream: Stream, chunks: &[&[u8]]) -> Vec<(String, String, String)> {
        let mut lb = LineBuffer::new(stream, limit);
        let mut out = Vec::new();
        let mut c = clock();
        for ch in chunks {
            lb.feed(ch, &mut out, &mut c);
        }
        lb.finish(&mut out, &mut c);
        let text = String::from_utf8(out).unwrap();
        assert!(text.is_empty() || text.ends_with('\n'));
        text.lines()
            .map(|l| {
                let mut parts = l.splitn(4, ' ');
                let ts = parts.next().unwrap();
                assert!(parse_rfc3339_nano(ts).is_some(), "{ts}");
                (
                    parts.next().unwrap().to_string(),
                    parts.next().unwrap().to_string(),
                    parts.next().unwrap().to_string(),
                )
            })
            .collect()
    }

    fn rec(s: &str, f: &str, c: &str) -> (String, String, String) {
        (s.into(), f.into(), c.into())
    }

    #[test]
    fn full_lines() {
        assert_eq!(
            run(16, Stream::Stdout, &[b"hello\nworld\n", b"\n"]),
            vec![
                rec("stdout", "F", "hello"),
                rec("stdout", "F", "world"),
                rec("stdout", "F", "")
            ]
        );
        // A line split across reads is still one F record.
        assert_eq!(
            run(16, Stream::Stderr, &[b"he", b"l", b"lo\nx", b"y\n"]),
            vec![rec("stderr", "F", "hello"), rec("stderr", "F", "xy")]
        );
    }

    #[test]
    fn no_newline_at_eof_is_partial() {
        assert_eq!(
            run(16, Stream::Stdout, &[b"a\npartial"]),
            vec![rec("stdout", "F", "a"), rec("stdout", "P", "partial")]
        );
        assert!(run(16, Stream::Stdout, &[]).is_empty());
    }

    #[test]
    fn long_lines_split_at_the_limit() {
        assert_eq!(
            run(4, Stream::Stdout, &[b"abcdefghij\n"]),
            vec![
                rec("stdout", "P", "abcd"),
                rec("stdout", "P", "efgh"),
                rec("stdout", "F", "ij")
            ]
        );
        // Exactly the limit: one F, no empty P.
        assert_eq!(
            run(4, Stream::Stdout, &[b"ab", b"cd", b"\n"]),
            vec![rec("stdout", "F", "abcd")]
        );
        // Limit reached across reads, then EOF.
        assert_eq!(
            run(4, Stream::Stdout, &[b"ab", b"cdef", b"g"]),
            vec![rec("stdout", "P", "abcd"), rec("stdout", "P", "efg")]
        );
        // The real limit, with a line of 40 000 bytes.
        let big = vec![b'x'; 40_000];
        let mut input = big.clone();
        input.push(b'\n');
        let recs = run(PARTIAL_LIMIT, Stream::Stdout, &[&input]);
        let flags: Vec<&str> = recs.iter().map(|r| r.1.as_str()).collect();
        assert_eq!(flags, ["P", "P", "F"]);
        assert_eq!(recs[0].2.len(), PARTIAL_LIMIT);
        let joined: String = recs.iter().map(|r| r.2.as_str()).collect();
        assert_eq!(joined.as_bytes(), &big[..]);
    }

    #[test]
    fn record_format() {
        let mut out = Vec::new();
        write_record(
            &mut out,
            Timestamp {
                secs: 1_795_410_347,
                nanos: 123_456_789,
            },
            Stream::Stderr,
            false,
            b"err",
        );
        assert_eq!(out, b"2026-11-23T05:05:47.123456789Z stderr F err\n");
    }

    #[test]
    fn reopen_creates_a_new_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pods/c/0.log");
        let mut log = CriLog::open(&path).unwrap();
        log.write(b"one\n").unwrap();
        fs::rename(&path, dir.path().join("rotated")).unwrap();
        log.write(b"two\n").unwrap();
        log.reopen().unwrap();
        assert!(path.exists());
        log.write(b"three\n").unwrap();
        assert_eq!(
            fs::read_to_string(dir.path().join("rotated")).unwrap(),
            "one\ntwo\n"
        );
        assert_eq!(fs::read_to_string(&path).unwrap(), "three\n");
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode & !0o640, 0, "{mode:o}");
    }
}
