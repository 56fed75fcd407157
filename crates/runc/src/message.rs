//! The message of a failed runc run.
//!
//! runc logs (with `--log-format json`) one JSON object per line: `{"level":..,"msg":..}`.
//! When it fails, the last error line is frequently a consequence, not the cause: e.g. runc's
//! C init logs `failed to update /proc/self/oom_score_adj: Permission denied` at level
//! `fatal`, and runc itself then ends with `can't get final child's PID from pipe: EOF`. So the
//! message keeps every `error`/`fatal`/`panic` line, in order, each once.

use serde::Deserialize;

/// The longest message built, in bytes.
pub const MAX_MESSAGE: usize = 4096;

/// Between two messages.
const SEP: &str = "; ";
/// Where messages were left out to keep the message short.
const GAP: &str = " [...] ";
/// Where lines were left out because there were too many.
const OMITTED: &str = "[...]";

#[derive(Deserialize)]
struct LogLine {
    #[serde(default)]
    level: String,
    #[serde(default)]
    msg: String,
}

/// The message of a failed run, from the part of runc's log file written during it (`log`;
/// empty without `--log`) and its stderr: every error-level JSON line of either, in that
/// order, deduplicated; else the non-empty lines of stderr that are not JSON. Bounded to
/// [`MAX_MESSAGE`] bytes and [`MAX_LINES`] lines plus the last (the first lines and the last
/// are kept, `[...]` marks what was left out). `None` when runc said nothing useful.
pub fn error_message(log: &str, stderr: &[u8]) -> Option<String> {
    let stderr = String::from_utf8_lossy(stderr);
    let mut errors = Distinct::default();
    let mut plain = Distinct::default();
    for (line, from_stderr) in log
        .lines()
        .map(|l| (l, false))
        .chain(stderr.lines().map(|l| (l, true)))
    {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        match serde_json::from_str::<LogLine>(line) {
            Ok(entry) => {
                if matches!(entry.level.as_str(), "error" | "fatal" | "panic") {
                    errors.push(entry.msg.trim());
                }
            }
            Err(_) if from_stderr => plain.push(line),
            // A torn line in the log file.
            Err(_) => {}
        }
    }
    let lines = if errors.first.is_empty() {
        plain.into_vec()
    } else {
        errors.into_vec()
    };
    (!lines.is_empty()).then(|| join_bounded(&lines, MAX_MESSAGE))
}

/// How many distinct lines are kept from the start (the last one is always kept as well):
/// more would not fit into [`MAX_MESSAGE`] anyway.
const MAX_LINES: usize = 64;

/// Non-empty strings in first-seen order, each once: the first [`MAX_LINES`], and the last.
/// With so few, a linear search is enough (and keeps hashing out of the shim).
#[derive(Default)]
struct Distinct {
    first: Vec<String>,
    last: Option<String>,
    /// Lines between `first` and `last` were left out.
    omitted: bool,
}

impl Distinct {
    fn push(&mut self, s: &str) {
        if s.is_empty() || self.first.iter().any(|seen| seen == s) {
            return;
        }
        if self.first.len() < MAX_LINES {
            self.first.push(s.to_owned());
        } else {
            self.omitted |= self.last.replace(s.to_owned()).is_some();
        }
    }

    fn into_vec(self) -> Vec<String> {
        let mut v = self.first;
        if self.omitted {
            v.push(OMITTED.to_owned());
        }
        v.extend(self.last);
        v
    }
}

/// `parts` joined by [`SEP`], at most `max` bytes: when too long, as many leading parts as fit,
/// [`GAP`], then the last part (itself cut to half of `max`).
fn join_bounded(parts: &[String], max: usize) -> String {
    let joined = parts.join(SEP);
    if joined.len() <= max {
        return joined;
    }
    let Some((last, head)) = parts.split_last() else {
        return String::new();
    };
    if head.is_empty() {
        return cut(last, max).to_owned();
    }
    let last = cut(last, max / 2);
    let budget = max.saturating_sub(last.len() + GAP.len());
    let mut out = String::with_capacity(max);
    for part in head {
        let sep = if out.is_empty() { "" } else { SEP };
        if out.len() + sep.len() + part.len() > budget {
            if out.is_empty() {
                out.push_str(cut(part, budget));
            }
            break;
        }
        out.push_str(sep);
        out.push_str(part);
    }
    out.push_str(GAP);
    out.push_str(last);
    out
}

/// The longest prefix of `s` of at most `max` bytes that ends on a char boundary.
fn cut(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(level: &str, msg: &str) -> String {
        format!(
            "{}\n",
            serde_json::json!({"level": level, "msg": msg, "time": "2026-01-01T00:00:00Z"})
        )
    }

    #[test]
    fn keeps_every_error_in_order_not_only_the_last() {
        let stderr = [
            json("warning", "cgroup v1 is deprecated"),
            json(
                "fatal",
                "nsexec-1[42]: failed to update /proc/self/oom_score_adj: Permission denied",
            ),
            json("info", "not an error"),
            json(
                "error",
                "runc create failed: unable to start container process: can't get final child's PID from pipe: EOF",
            ),
        ]
        .concat();
        assert_eq!(
            error_message("", stderr.as_bytes()).unwrap(),
            "nsexec-1[42]: failed to update /proc/self/oom_score_adj: Permission denied; \
             runc create failed: unable to start container process: can't get final child's PID from pipe: EOF"
        );
    }

    #[test]
    fn log_then_stderr_deduplicated_and_json_wins_over_plain() {
        // With --log, runc repeats its final error as a plain line on stderr.
        let log = [json("error", "first"), "{\"level\":\"err".into()].concat();
        let stderr = format!(
            "{}first\n{}",
            json("error", "second"),
            json("error", "first")
        );
        assert_eq!(
            error_message(&log, stderr.as_bytes()).unwrap(),
            "first; second"
        );
    }

    #[test]
    fn plain_stderr_without_json() {
        assert_eq!(
            error_message("", b"  line one\n\nline two\nline one\n").unwrap(),
            "line one; line two"
        );
        // Only non-error JSON: nothing useful, plain lines are still taken.
        let stderr = format!("{}oops\n", json("warning", "w"));
        assert_eq!(error_message("", stderr.as_bytes()).unwrap(), "oops");
        assert_eq!(error_message("", b""), None);
        assert_eq!(error_message(&json("info", "i"), b"\n \n"), None);
        assert_eq!(error_message(&json("error", ""), b""), None);
        // Plain lines of the log file are not taken (they can be torn JSON).
        assert_eq!(error_message("torn", b""), None);
    }

    #[test]
    fn bounded_keeping_the_first_and_the_last() {
        let mut stderr = String::new();
        for i in 0..500 {
            stderr.push_str(&json(
                "error",
                &format!("error number {i:03} {}", "x".repeat(40)),
            ));
        }
        let m = error_message("", stderr.as_bytes()).unwrap();
        assert!(m.len() <= MAX_MESSAGE, "{}", m.len());
        assert!(m.starts_with("error number 000 "), "{m}");
        assert!(m.contains("error number 001 "), "{m}");
        assert!(m.contains(GAP) || m.contains(OMITTED), "{m}");
        assert!(
            m.ends_with(&format!("error number 499 {}", "x".repeat(40))),
            "{m}"
        );
        assert!(!m.contains("error number 250 "), "{m}");
        // Fewer, longer lines: cut by size, not count.
        let long: String = (0..10)
            .map(|i| json("error", &format!("long {i} {}", "y".repeat(1000))))
            .collect();
        let m = error_message("", long.as_bytes()).unwrap();
        assert!(m.len() <= MAX_MESSAGE, "{}", m.len());
        assert!(m.starts_with("long 0 ") && m.contains(GAP), "{m}");
        assert!(m.ends_with(&format!("long 9 {}", "y".repeat(1000))), "{m}");
        // Many short distinct lines: the count is bounded, the omission marked.
        let many: String = (0..200).map(|i| json("error", &format!("e{i}"))).collect();
        let m = error_message("", many.as_bytes()).unwrap();
        assert!(m.starts_with("e0; e1; "), "{m}");
        assert!(
            m.ends_with(&format!("e{}; {OMITTED}; e199", MAX_LINES - 1)),
            "{m}"
        );
    }

    #[test]
    fn one_huge_message_is_cut_on_a_char_boundary() {
        let huge = "é".repeat(MAX_MESSAGE);
        let m = error_message(&json("error", &huge), b"").unwrap();
        assert!(m.len() <= MAX_MESSAGE && m.len() >= MAX_MESSAGE - 1);
        assert!(m.chars().all(|c| c == 'é'));
        let two = join_bounded(&[huge.clone(), "tail".into()], 100);
        assert!(two.len() <= 100, "{}", two.len());
        assert!(
            two.starts_with('é') && two.ends_with(&format!("{GAP}tail")),
            "{two}"
        );
    }
}
