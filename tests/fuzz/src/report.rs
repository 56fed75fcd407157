//! Counters and findings of a run, and the summary printed at its end.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// Where a request came from, so that it can be sent again.
#[derive(Debug, Clone)]
pub enum Origin {
    /// Iteration `iter` of run seed `seed`.
    Iteration {
        /// The run seed.
        seed: u64,
        /// The iteration.
        iter: u64,
    },
    /// A corpus file.
    Corpus(PathBuf),
    /// The janitor's cleanup of objects beyond the live caps.
    Janitor,
    /// A raw HTTP/2 case.
    Raw(&'static str),
    /// The harness itself (fixtures, final cleanup, daemon checks).
    Harness,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Iteration { seed, iter } => write!(
                f,
                "seed {seed:#x} iteration {iter} (replay: berth-fuzz --seed {seed:#x} --only {iter})"
            ),
            Origin::Corpus(path) => write!(f, "corpus file {}", path.display()),
            Origin::Janitor => write!(f, "janitor"),
            Origin::Raw(case) => write!(f, "raw HTTP/2 case {case}"),
            Origin::Harness => write!(f, "harness"),
        }
    }
}

/// Whether a finding fails the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// Fails the run: a panic, the daemon gone, a reply that is not a gRPC status, a hang,
    /// RSS not returning, something left behind.
    Fail,
    /// Reported only: a status code or message the issue asks to change.
    Note,
}

/// One distinct finding, with how often it was seen and the first request that showed it.
#[derive(Debug, Clone)]
pub struct Finding {
    /// Fail or note.
    pub severity: Severity,
    /// A short name of the kind (`not-a-status`, `panic`, ...).
    pub kind: &'static str,
    /// The RPC, or `-`.
    pub rpc: String,
    /// What came back (cut).
    pub what: String,
    /// The request's shape (size, whether it decodes, what was hostile in it).
    pub input: String,
    /// The first request that showed it.
    pub first: Origin,
    /// Where its bytes were saved.
    pub saved: Option<PathBuf>,
    /// Times seen.
    pub count: u64,
}

/// Everything counted during a run.
#[derive(Debug, Default, Clone)]
pub struct Stats {
    /// Requests sent, per RPC.
    pub per_rpc: BTreeMap<String, u64>,
    /// Replies, per gRPC code name (`OK`, `InvalidArgument`, ..., `not-a-status`, `hang`).
    pub per_code: BTreeMap<String, u64>,
    /// Requests that did not decode as their RPC's request type.
    pub undecodable: u64,
    /// Requests containment had to change.
    pub rewritten: u64,
    /// Messages received on server streams.
    pub stream_messages: u64,
    /// Request bytes sent.
    pub bytes_sent: u64,
    /// Distinct findings by key.
    pub findings: BTreeMap<String, Finding>,
}

/// A finding to record: see [`Shared::finding`].
pub struct NewFinding<'a> {
    /// Fail or note.
    pub severity: Severity,
    /// Its kind.
    pub kind: &'static str,
    /// The RPC, or `-`.
    pub rpc: &'a str,
    /// What makes two findings of this kind and RPC the same one; `None`: `what`, blurred.
    pub key: Option<String>,
    /// What came back.
    pub what: &'a str,
    /// The request's shape.
    pub input: String,
    /// Where the request came from.
    pub origin: &'a Origin,
    /// The request, to save.
    pub bytes: Option<&'a [u8]>,
    /// Where to save it.
    pub out: &'a Path,
}

/// [`Stats`] shared by the workers.
#[derive(Debug, Default)]
pub struct Shared(Mutex<Stats>);

impl Shared {
    /// Runs `f` with the stats locked.
    pub fn with<T>(&self, f: impl FnOnce(&mut Stats) -> T) -> T {
        f(&mut self.0.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Records a finding. Findings with the same kind, RPC and `key` are one (by default
    /// the key is `what` with IDs, numbers and quoted input blurred); the first occurrence
    /// keeps the origin and saves the request bytes (when given) under `out/<kind>/`.
    pub fn finding(&self, new: NewFinding<'_>) {
        let NewFinding {
            severity,
            kind,
            rpc,
            key,
            what,
            input,
            origin,
            bytes,
            out,
        } = new;
        let key = format!("{kind} {rpc} {}", key.unwrap_or_else(|| normalize(what)));
        self.with(|stats| {
            if let Some(f) = stats.findings.get_mut(&key) {
                f.count += 1;
                return;
            }
            let saved = bytes.and_then(|b| save(out, kind, rpc, origin, b));
            if severity == Severity::Fail {
                eprintln!("FAIL: {kind} in {rpc} from {origin}: {}", cut(what, 300));
            }
            stats.findings.insert(
                key,
                Finding {
                    severity,
                    kind,
                    rpc: rpc.to_owned(),
                    what: cut(what, 600),
                    input,
                    first: origin.clone(),
                    saved,
                    count: 1,
                },
            );
        });
    }

    /// Whether a finding that fails the run was recorded.
    pub fn failed(&self) -> bool {
        self.with(|s| s.findings.values().any(|f| f.severity == Severity::Fail))
    }
}

fn save(out: &Path, kind: &str, rpc: &str, origin: &Origin, bytes: &[u8]) -> Option<PathBuf> {
    let name = match origin {
        Origin::Iteration { seed, iter } => format!("{rpc}-{seed:x}-{iter}.bin"),
        Origin::Corpus(path) => format!("{rpc}-corpus-{}", path.file_name()?.to_string_lossy()),
        _ => format!("{rpc}-{}.bin", std::process::id()),
    };
    let dir = out.join(kind);
    std::fs::create_dir_all(&dir).ok()?;
    let path = dir.join(name);
    std::fs::write(&path, bytes).ok()?;
    Some(path)
}

/// `text` cut to `max` bytes (on a character boundary) with the full length noted.
pub fn cut(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} bytes)", &text[..end], text.len())
}

/// A message with IDs, numbers and echoed input blurred, so that one bug is one finding.
pub fn normalize(text: &str) -> String {
    let mut out = String::new();
    let mut last_hash = false;
    for c in text.chars().take(160) {
        if c.is_ascii_hexdigit() || c.is_ascii_digit() {
            if !last_hash {
                out.push('#');
            }
            last_hash = true;
        } else {
            last_hash = false;
            out.push(c);
        }
    }
    // Quoted input differs per request: keep only the text around it.
    match (out.find('"'), out.rfind('"')) {
        (Some(a), Some(b)) if b > a => format!("{}\"…\"{}", &out[..a], &out[b + 1..]),
        _ => out,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_differing_in_ids_and_input_are_one_finding() {
        assert_eq!(
            normalize("pod 1f2e3d not found"),
            normalize("pod 99aa00 not found")
        );
        assert_eq!(
            normalize("invalid name \"aaaa\" (too long)"),
            normalize("invalid name \"\\n\" (too long)")
        );
        assert_ne!(
            normalize("pod x not found"),
            normalize("container x not found")
        );
    }

    #[test]
    fn cut_keeps_char_boundaries_and_says_the_length() {
        assert_eq!(cut("abc", 5), "abc");
        let long = "ü".repeat(10);
        let c = cut(&long, 3);
        assert!(c.starts_with('ü') && c.ends_with("(20 bytes)"), "{c}");
    }
}
