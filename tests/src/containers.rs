//! Helpers of the container tests (`tests/it/containers.rs`) and the container benchmark
//! (`examples/podstart.rs`).
//!
//! - [`Reaper`]: the guard that ends, on drop (also after a panic), every container and shim a
//!   daemon's state directory still knows of. Containers and their shims outlive berthd by
//!   design, so killing the daemon (what [`crate::pods::PodEnv`] does on drop) is not enough:
//!   the reaper runs `<runtime> delete --force` for each container a runtime handler still
//!   has under `<state>/runtimes/<handler>` (runc, or crun through [`crun_wrapper`]: that
//!   kills the container's processes and removes its cgroup), then
//!   SIGKILLs, by PID and only after checking that `/proc/<pid>/comm` is `berth-shim` and its
//!   command line names the state directory, each shim that is still alive, and the pod PID
//!   namespace inits recorded in `<state>/sandboxes/<id>/pid-init`.
//! - Host inspections: the shim processes of a state directory, whether a recorded process is
//!   still alive.
//! - The CRI log format: [`parse_cri_log`] and an RFC 3339 timestamp parser.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::pods::dir_entries;

/// `comm` of a shim (and of a pod PID namespace init).
pub const SHIM_COMM: &str = "berth-shim";

/// A process seen at some point: its PID and `comm`, to tell it from a later process that
/// got the same PID.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    /// PID.
    pub pid: u32,
    /// `/proc/<pid>/comm` when it was recorded.
    pub comm: String,
}

impl Seen {
    /// Records `pid` as it is now; `None` when it does not run.
    pub fn record(pid: u32) -> Option<Seen> {
        Some(Seen {
            pid,
            comm: comm_of(pid)?,
        })
    }

    /// Whether the process still runs (not a zombie) with the same `comm`.
    pub fn alive(&self) -> bool {
        is_alive(self.pid) && comm_of(self.pid).as_deref() == Some(self.comm.as_str())
    }
}

/// `/proc/<pid>/comm`, trimmed.
pub fn comm_of(pid: u32) -> Option<String> {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .ok()
        .map(|c| c.trim().to_owned())
}

/// `/proc/<pid>/cmdline` with NULs as spaces.
pub fn cmdline_of(pid: u32) -> Option<String> {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .ok()
        .map(|b| String::from_utf8_lossy(&b).replace('\0', " "))
}

/// Whether `pid` exists and is not a zombie.
pub fn is_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the parenthesised comm, which may itself contain ") ".
        Ok(stat) => stat
            .rsplit_once(") ")
            .and_then(|(_, rest)| rest.chars().next())
            .is_some_and(|state| state != 'Z' && state != 'X'),
        Err(_) => false,
    }
}

/// PIDs of the `berth-shim` processes whose command line mentions `dir` (a daemon's state
/// directory or temporary directory): the container shims of that daemon.
pub fn shim_processes(dir: &Path) -> Vec<u32> {
    let needle = dir.display().to_string();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut pids: Vec<u32> = entries
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| comm_of(*pid).as_deref() == Some(SHIM_COMM))
        .filter(|pid| cmdline_of(*pid).is_some_and(|c| c.contains(&needle)))
        .filter(|pid| is_alive(*pid))
        .collect();
    pids.sort_unstable();
    pids
}

/// Reads a PID file; `None` when absent or malformed.
pub fn read_pid(path: &Path) -> Option<u32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// `<state>/containers/<id>/shim/shim.pid`
pub fn shim_pid_file(state: &Path, id: &str) -> PathBuf {
    state
        .join("containers")
        .join(id)
        .join("shim")
        .join("shim.pid")
}

/// `<state>/containers/<id>/shim/pid`: the container init's host PID (written by runc).
pub fn init_pid_file(state: &Path, id: &str) -> PathBuf {
    state.join("containers").join(id).join("shim").join("pid")
}

/// `<state>/containers/<id>/shim/exit`
pub fn exit_file(state: &Path, id: &str) -> PathBuf {
    state.join("containers").join(id).join("shim").join("exit")
}

/// Ends every container and shim of a daemon's state directory on drop; see the module docs.
pub struct Reaper {
    state: PathBuf,
}

/// `tests/runtimes/crun.sh`: crun as the tests run it (see the script).
pub fn crun_wrapper() -> PathBuf {
    crate::registry::repo_root().join("tests/runtimes/crun.sh")
}

/// The binary of the tests' runtime handler `name` (runc and crun from PATH), as berthd's
/// default roots `<state>/runtimes/<name>` name them.
/// The default `--root` of runtime handler `handler` under berthd's `--state`: `<state>/runc`
/// for runc (berth's layout before handlers), `<state>/runtimes/<name>` for the others.
pub fn handler_root(state: &Path, handler: &str) -> PathBuf {
    if handler == "runc" {
        state.join("runc")
    } else {
        state.join("runtimes").join(handler)
    }
}

fn handler_binary(name: &str) -> Option<PathBuf> {
    match name {
        "runc" => Some(PathBuf::from("runc")),
        "crun" => Some(crun_wrapper()),
        _ => None,
    }
}

impl Reaper {
    /// A reaper for the daemon whose `--state` is `state` (handlers with their default
    /// roots, [`handler_root`]).
    pub fn new(state: &Path) -> Reaper {
        Reaper {
            state: state.to_owned(),
        }
    }

    /// Ends what is left now; returns what it did, one line each.
    pub fn reap(&self) -> Vec<String> {
        let mut done = Vec::new();
        let mut handlers = dir_entries(&self.state.join("runtimes"));
        handlers.push("runc".to_owned());
        for handler in handlers {
            let root = handler_root(&self.state, &handler);
            let Some(binary) = handler_binary(&handler) else {
                done.push(format!(
                    "no binary known for handler {handler}: {} left",
                    root.display()
                ));
                continue;
            };
            for id in dir_entries(&root) {
                let out = Command::new(&binary)
                    .arg("--root")
                    .arg(&root)
                    .args(["delete", "--force", &id])
                    .stdin(Stdio::null())
                    .output();
                let what = format!("{handler} delete --force {id}");
                match out {
                    Ok(out) if out.status.success() => done.push(what),
                    Ok(out) => done.push(format!(
                        "{what} failed: {}",
                        String::from_utf8_lossy(&out.stderr).trim()
                    )),
                    Err(err) => done.push(format!("{what}: {err}")),
                }
            }
        }
        // A shim leaves by itself once its container is gone; give it a moment.
        let deadline = Instant::now() + Duration::from_secs(3);
        while !shim_processes(&self.state).is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        for pid in shim_processes(&self.state) {
            if kill_if(pid, SHIM_COMM, Some(&self.state)) {
                done.push(format!("killed shim {pid}"));
            }
        }
        for sandbox in dir_entries(&self.state.join("sandboxes")) {
            let file = self.state.join("sandboxes").join(&sandbox).join("pid-init");
            if let Some(pid) = read_pid(&file) {
                if kill_if(pid, SHIM_COMM, None) {
                    done.push(format!("killed pod PID namespace init {pid} of {sandbox}"));
                }
            }
        }
        done
    }
}

impl Drop for Reaper {
    fn drop(&mut self) {
        for what in self.reap() {
            eprintln!("cleanup: {what}");
        }
    }
}

/// SIGKILLs `pid` if its `comm` is `comm` (and its command line mentions `dir`, when given).
fn kill_if(pid: u32, comm: &str, dir: Option<&Path>) -> bool {
    if !is_alive(pid) || comm_of(pid).as_deref() != Some(comm) {
        return false;
    }
    if let Some(dir) = dir {
        let needle = dir.display().to_string();
        if !cmdline_of(pid).is_some_and(|c| c.contains(&needle)) {
            return false;
        }
    }
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .is_ok()
}

/// One line of a CRI container log: `<RFC3339Nano timestamp> <stdout|stderr> <F|P> <content>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    /// The timestamp, as written.
    pub time: String,
    /// The timestamp in nanoseconds since the epoch.
    pub nanos: i128,
    /// `stdout` or `stderr`.
    pub stream: String,
    /// `F` (full line) or `P` (partial).
    pub tag: String,
    /// The content, without the newline.
    pub content: String,
}

/// Parses a CRI log; panics naming the line when one is malformed. A last line without its
/// newline (being written) is left out.
pub fn parse_cri_log(text: &str) -> Vec<LogLine> {
    let complete = match text.rfind('\n') {
        Some(end) => &text[..end],
        None => return Vec::new(),
    };
    complete
        .split('\n')
        .enumerate()
        .map(|(n, line)| {
            parse_cri_line(line)
                .unwrap_or_else(|| panic!("CRI log line {} is malformed: {line:?}", n + 1))
        })
        .collect()
}

fn parse_cri_line(line: &str) -> Option<LogLine> {
    let mut parts = line.splitn(4, ' ');
    let time = parts.next()?;
    let stream = parts.next()?;
    let tag = parts.next()?;
    let content = parts.next().unwrap_or("");
    if !matches!(stream, "stdout" | "stderr") || !matches!(tag, "F" | "P") {
        return None;
    }
    Some(LogLine {
        time: time.to_owned(),
        nanos: parse_rfc3339_nanos(time)?,
        stream: stream.to_owned(),
        tag: tag.to_owned(),
        content: content.to_owned(),
    })
}

/// Parses an RFC 3339 timestamp as Go's `time.RFC3339Nano` writes it
/// (`2006-01-02T15:04:05.999999999Z07:00`: 0 to 9 fraction digits, `Z` or `±hh:mm`) into
/// nanoseconds since the epoch.
pub fn parse_rfc3339_nanos(text: &str) -> Option<i128> {
    let b = text.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' {
        return None;
    }
    if b[16] != b':' {
        return None;
    }
    let num = |range: std::ops::Range<usize>| -> Option<i64> {
        let s = text.get(range)?;
        s.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| s.parse().ok())?
    };
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 {
        return None;
    }
    if second > 60 {
        return None;
    }
    let mut rest = &text[19..];
    let mut nanos: i128 = 0;
    if let Some(fraction) = rest.strip_prefix('.') {
        let digits = fraction.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 || digits > 9 {
            return None;
        }
        let padded = format!("{:0<9}", &fraction[..digits]);
        nanos = padded.parse().ok()?;
        rest = &fraction[digits..];
    }
    let offset_seconds: i64 = match rest {
        "Z" => 0,
        _ if rest.len() == 6 && (rest.starts_with('+') || rest.starts_with('-')) => {
            let sign = if rest.starts_with('-') { -1 } else { 1 };
            let hours: i64 = rest.get(1..3)?.parse().ok()?;
            let minutes: i64 = rest.get(4..6)?.parse().ok()?;
            if rest.as_bytes()[3] != b':' {
                return None;
            }
            sign * (hours * 3600 + minutes * 60)
        }
        _ => return None,
    };
    let days = days_from_civil(year, month, day);
    let seconds = days * 86_400 + hour * 3600 + minute * 60 + second - offset_seconds;
    Some(i128::from(seconds) * 1_000_000_000 + nanos)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Nanoseconds since the epoch, now.
pub fn now_nanos() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_timestamps_parse() {
        assert_eq!(parse_rfc3339_nanos("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            parse_rfc3339_nanos("2026-11-23T05:40:34.598022789Z"),
            Some(1_795_412_434_598_022_789)
        );
        assert_eq!(
            parse_rfc3339_nanos("2026-11-23T06:40:34.5+01:00"),
            Some(1_795_412_434_500_000_000)
        );
        assert_eq!(parse_rfc3339_nanos("2026-11-23 05:40:34Z"), None);
        assert_eq!(parse_rfc3339_nanos("2026-11-23T05:40:34.Z"), None);
        assert_eq!(parse_rfc3339_nanos("2026-11-23T05:40:34.1234567890Z"), None);
        assert_eq!(parse_rfc3339_nanos("2026-11-23T05:40:34"), None);
    }

    #[test]
    fn cri_log_lines_parse() {
        let text = "2026-11-23T05:40:34.598022789Z stdout F out\n\
                    2026-11-23T05:40:34.598051452Z stderr P par tial\n\
                    2026-11-23T05:40:34.6Z stdout F \n\
                    2026-11-23T05:40:3";
        let lines = parse_cri_log(text);
        assert_eq!(lines.len(), 3);
        assert_eq!(
            (lines[0].stream.as_str(), lines[0].tag.as_str()),
            ("stdout", "F")
        );
        assert_eq!(lines[1].content, "par tial");
        assert_eq!(lines[2].content, "");
    }

    #[test]
    fn process_state_of_self() {
        let me = std::process::id();
        assert!(is_alive(me));
        assert!(Seen::record(me).unwrap().alive());
        assert!(!is_alive(u32::MAX));
    }
}
