//! berth's runc client, shared by berthd and berth-shim, so both run runc the same way.
//!
//! [`Runc`] holds runc's global options: `--root`, optionally `--log <file>`, always
//! `--log-format json` (runc's errors then arrive as JSON, in the log file or on stderr) and
//! `--systemd-cgroup` with the systemd cgroup driver (without it runc cannot use a
//! `slice:prefix:name` cgroups path). [`Op`] is one command berth runs; [`Runc::argv`] is its
//! complete argv.
//!
//! Two ways to run one:
//! - [`Runc::command`] gives a `std::process::Command` for callers that spawn without waiting
//!   (the shim's `create` and `exec --detach`, whose stdio and reaping it owns); they build the
//!   error of a failed run with [`Runc::failure`].
//! - [`Runc::run`] runs to completion, blocking, with a timeout (berthd calls it from a
//!   blocking task); [`Runc::state`] parses `runc state`.
//!
//! A failure's message is built by [`error_message`]: every error-level line runc logged, in
//! order, not only its last one (which is often a consequence of an earlier one).

#![deny(unsafe_code)]

mod error;
mod message;
mod run;
mod state;

use std::ffi::OsString;
use std::path::{Path, PathBuf};

pub use error::RuncError;
pub use message::{error_message, MAX_MESSAGE};
pub use state::{parse_state, RuncState, Status};

/// A runc binary with berth's global options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Runc {
    /// The binary (a bare name is looked up in `PATH`).
    pub binary: PathBuf,
    /// `--root`: runc's state directory.
    pub root: PathBuf,
    /// `--log`: the file runc writes its JSON log to; without it runc logs to stderr.
    pub log: Option<PathBuf>,
    /// `--systemd-cgroup`: the systemd cgroup driver is used.
    pub systemd_cgroup: bool,
}

/// One runc command, with what it needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op<'a> {
    /// `create --bundle <bundle> --pid-file <pid_file> [--console-socket <sock>] <id>`.
    Create {
        id: &'a str,
        bundle: &'a Path,
        pid_file: &'a Path,
        console_socket: Option<&'a Path>,
    },
    /// `start <id>`.
    Start { id: &'a str },
    /// `exec --detach --process <process> --pid-file <pid_file> [--console-socket <sock>] <id>`.
    Exec {
        id: &'a str,
        process: &'a Path,
        pid_file: &'a Path,
        console_socket: Option<&'a Path>,
    },
    /// `kill [--all] <id> <signal>`.
    Kill { id: &'a str, signal: i32, all: bool },
    /// `delete --force <id>`.
    Delete { id: &'a str },
    /// `update --resources <file> <id>`.
    Update { id: &'a str, resources: &'a Path },
    /// `state <id>`.
    State { id: &'a str },
}

impl Op<'_> {
    /// runc's subcommand.
    pub fn name(&self) -> &'static str {
        match self {
            Op::Create { .. } => "create",
            Op::Start { .. } => "start",
            Op::Exec { .. } => "exec",
            Op::Kill { .. } => "kill",
            Op::Delete { .. } => "delete",
            Op::Update { .. } => "update",
            Op::State { .. } => "state",
        }
    }

    /// The container the command is about.
    pub fn id(&self) -> &str {
        match self {
            Op::Create { id, .. }
            | Op::Start { id }
            | Op::Exec { id, .. }
            | Op::Kill { id, .. }
            | Op::Delete { id }
            | Op::Update { id, .. }
            | Op::State { id } => id,
        }
    }

    /// The subcommand and its arguments.
    pub fn args(&self) -> Vec<OsString> {
        fn pair(a: &mut Vec<OsString>, flag: &str, value: &Path) {
            a.push(flag.into());
            a.push(value.into());
        }
        let mut a: Vec<OsString> = vec![self.name().into()];
        match *self {
            Op::Create {
                bundle,
                pid_file,
                console_socket,
                ..
            } => {
                pair(&mut a, "--bundle", bundle);
                pair(&mut a, "--pid-file", pid_file);
                if let Some(sock) = console_socket {
                    pair(&mut a, "--console-socket", sock);
                }
            }
            Op::Exec {
                process,
                pid_file,
                console_socket,
                ..
            } => {
                a.push("--detach".into());
                pair(&mut a, "--process", process);
                pair(&mut a, "--pid-file", pid_file);
                if let Some(sock) = console_socket {
                    pair(&mut a, "--console-socket", sock);
                }
            }
            Op::Kill { all: true, .. } => a.push("--all".into()),
            Op::Delete { .. } => a.push("--force".into()),
            Op::Update { resources, .. } => pair(&mut a, "--resources", resources),
            Op::Kill { all: false, .. } | Op::Start { .. } | Op::State { .. } => {}
        }
        a.push(self.id().into());
        if let Op::Kill { signal, .. } = self {
            a.push(signal.to_string().into());
        }
        a
    }
}

impl Runc {
    /// runc at `binary` with state in `root`, logging to stderr, cgroupfs driver.
    pub fn new(binary: impl Into<PathBuf>, root: impl Into<PathBuf>) -> Self {
        Runc {
            binary: binary.into(),
            root: root.into(),
            log: None,
            systemd_cgroup: false,
        }
    }

    /// The same runc logging to `log`.
    pub fn with_log(&self, log: impl Into<PathBuf>) -> Self {
        Runc {
            log: Some(log.into()),
            ..self.clone()
        }
    }

    /// The global options, which runc wants before the subcommand.
    pub fn global_args(&self) -> Vec<OsString> {
        let mut a: Vec<OsString> = vec!["--root".into(), self.root.clone().into()];
        if let Some(log) = &self.log {
            a.push("--log".into());
            a.push(log.clone().into());
        }
        a.push("--log-format".into());
        a.push("json".into());
        if self.systemd_cgroup {
            a.push("--systemd-cgroup".into());
        }
        a
    }

    /// The complete argv of `op`, without the binary.
    pub fn argv(&self, op: &Op<'_>) -> Vec<OsString> {
        let mut a = self.global_args();
        a.extend(op.args());
        a
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strs(v: Vec<OsString>) -> Vec<String> {
        v.into_iter().map(|s| s.into_string().unwrap()).collect()
    }

    fn runc() -> Runc {
        Runc::new("/usr/sbin/runc", "/run/berth/runc")
    }

    #[test]
    fn global_options() {
        assert_eq!(
            strs(runc().global_args()),
            ["--root", "/run/berth/runc", "--log-format", "json"]
        );
        let full = Runc {
            systemd_cgroup: true,
            ..runc().with_log("/s/runc.log")
        };
        assert_eq!(
            strs(full.global_args()),
            [
                "--root",
                "/run/berth/runc",
                "--log",
                "/s/runc.log",
                "--log-format",
                "json",
                "--systemd-cgroup"
            ]
        );
        // Global options come before the subcommand.
        let argv = strs(full.argv(&Op::Start { id: "c1" }));
        assert_eq!(&argv[7..], ["start", "c1"]);
    }

    #[test]
    fn argv_of_every_command() {
        let p = Path::new;
        let cases: Vec<(Op<'_>, &[&str])> = vec![
            (
                Op::Create {
                    id: "c1",
                    bundle: p("/b"),
                    pid_file: p("/s/pid"),
                    console_socket: None,
                },
                &["create", "--bundle", "/b", "--pid-file", "/s/pid", "c1"],
            ),
            (
                Op::Create {
                    id: "c1",
                    bundle: p("/b"),
                    pid_file: p("/s/pid"),
                    console_socket: Some(p("/s/c.sock")),
                },
                &[
                    "create",
                    "--bundle",
                    "/b",
                    "--pid-file",
                    "/s/pid",
                    "--console-socket",
                    "/s/c.sock",
                    "c1",
                ],
            ),
            (Op::Start { id: "c1" }, &["start", "c1"]),
            (
                Op::Exec {
                    id: "c1",
                    process: p("/p.json"),
                    pid_file: p("/s/e.pid"),
                    console_socket: Some(p("/s/e.sock")),
                },
                &[
                    "exec",
                    "--detach",
                    "--process",
                    "/p.json",
                    "--pid-file",
                    "/s/e.pid",
                    "--console-socket",
                    "/s/e.sock",
                    "c1",
                ],
            ),
            (
                Op::Kill {
                    id: "c1",
                    signal: 15,
                    all: false,
                },
                &["kill", "c1", "15"],
            ),
            (
                Op::Kill {
                    id: "c1",
                    signal: 9,
                    all: true,
                },
                &["kill", "--all", "c1", "9"],
            ),
            (Op::Delete { id: "c1" }, &["delete", "--force", "c1"]),
            (
                Op::Update {
                    id: "c1",
                    resources: p("/r.json"),
                },
                &["update", "--resources", "/r.json", "c1"],
            ),
            (Op::State { id: "c1" }, &["state", "c1"]),
        ];
        for (op, want) in cases {
            assert_eq!(strs(op.args()), want, "{op:?}");
            assert_eq!(op.name(), want[0]);
            assert_eq!(op.id(), "c1");
            let argv = strs(runc().argv(&op));
            assert_eq!(
                &argv[..4],
                ["--root", "/run/berth/runc", "--log-format", "json"]
            );
            assert_eq!(&argv[4..], want);
        }
    }
}
