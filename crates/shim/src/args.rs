//! The shim's command line, shared by the binary (parse) and [`crate::spawn()`] (format), so the
//! two sides cannot drift apart.
//!
//! ```text
//! berth-shim --id <container-id> --bundle <dir> --runc <path> --runc-root <dir>
//!            --state-dir <dir> --log-path <file> [--stdin] [--stdin-once] [--tty]
//!            [--systemd-cgroup] [--ready-fd <n>]
//! ```

use std::ffi::{OsStr, OsString};
use std::os::fd::RawFd;
use std::path::PathBuf;

/// Parsed `berth-shim` arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShimArgs {
    /// Container ID, passed to runc unchanged.
    pub id: String,
    /// OCI bundle directory (holds `config.json`).
    pub bundle: PathBuf,
    /// runc binary.
    pub runc: PathBuf,
    /// runc's `--root` (state directory of runc itself).
    pub runc_root: PathBuf,
    /// The shim's state dir (see [`crate::paths`]).
    pub state_dir: PathBuf,
    /// CRI log file of the container.
    pub log_path: PathBuf,
    /// Open a stdin pipe for the container and hold its write end.
    pub stdin: bool,
    /// Stdin is closed after the first attach ends (kept for attach; no effect yet).
    pub stdin_once: bool,
    /// Allocate a pty (`terminal: true` in config.json must match).
    pub tty: bool,
    /// The systemd cgroup driver is used: runc gets `--systemd-cgroup` (config.json's
    /// `linux.cgroupsPath` is then `slice:prefix:name`).
    pub systemd_cgroup: bool,
    /// Inherited fd the readiness line is written to.
    pub ready_fd: Option<RawFd>,
}

/// A malformed command line.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ArgsError(String);

impl ShimArgs {
    /// Parses the arguments after the program name.
    pub fn parse<I>(args: I) -> Result<Self, ArgsError>
    where
        I: IntoIterator<Item = OsString>,
    {
        let mut id = None;
        let mut bundle = None;
        let mut runc = None;
        let mut runc_root = None;
        let mut state_dir = None;
        let mut log_path = None;
        let mut ready_fd = None;
        let (mut stdin, mut stdin_once, mut tty, mut systemd_cgroup) = (false, false, false, false);

        let mut it = args.into_iter();
        while let Some(flag) = it.next() {
            let flag = flag
                .into_string()
                .map_err(|f| ArgsError(format!("unexpected argument {f:?}")))?;
            let mut value = |name: &str| {
                it.next()
                    .filter(|v| !v.is_empty())
                    .ok_or_else(|| ArgsError(format!("{name} needs a value")))
            };
            match flag.as_str() {
                "--id" => {
                    id = Some(
                        value("--id")?
                            .into_string()
                            .map_err(|_| ArgsError("--id is not UTF-8".into()))?,
                    )
                }
                "--bundle" => bundle = Some(PathBuf::from(value("--bundle")?)),
                "--runc" => runc = Some(PathBuf::from(value("--runc")?)),
                "--runc-root" => runc_root = Some(PathBuf::from(value("--runc-root")?)),
                "--state-dir" => state_dir = Some(PathBuf::from(value("--state-dir")?)),
                "--log-path" => log_path = Some(PathBuf::from(value("--log-path")?)),
                "--ready-fd" => {
                    let v = value("--ready-fd")?;
                    let fd = v
                        .to_str()
                        .and_then(|s| s.parse::<RawFd>().ok())
                        .filter(|fd| *fd > 2)
                        .ok_or_else(|| ArgsError(format!("bad --ready-fd {v:?}")))?;
                    ready_fd = Some(fd);
                }
                "--stdin" => stdin = true,
                "--stdin-once" => stdin_once = true,
                "--tty" => tty = true,
                "--systemd-cgroup" => systemd_cgroup = true,
                other => return Err(ArgsError(format!("unknown argument {other:?}"))),
            }
        }

        fn req<T>(v: Option<T>, name: &str) -> Result<T, ArgsError> {
            v.ok_or_else(|| ArgsError(format!("missing {name}")))
        }
        let id = req(id, "--id")?;
        if id.contains('/') || id.starts_with('.') {
            return Err(ArgsError(format!("invalid container id {id:?}")));
        }
        Ok(ShimArgs {
            id,
            bundle: req(bundle, "--bundle")?,
            runc: req(runc, "--runc")?,
            runc_root: req(runc_root, "--runc-root")?,
            state_dir: req(state_dir, "--state-dir")?,
            log_path: req(log_path, "--log-path")?,
            stdin,
            stdin_once,
            tty,
            systemd_cgroup,
            ready_fd,
        })
    }

    /// Formats the arguments (without the program name); `parse(to_args())` round-trips.
    pub fn to_args(&self) -> Vec<OsString> {
        let mut v: Vec<OsString> = Vec::with_capacity(16);
        let mut pair = |k: &str, val: &OsStr| {
            v.push(k.into());
            v.push(val.into());
        };
        pair("--id", OsStr::new(&self.id));
        pair("--bundle", self.bundle.as_os_str());
        pair("--runc", self.runc.as_os_str());
        pair("--runc-root", self.runc_root.as_os_str());
        pair("--state-dir", self.state_dir.as_os_str());
        pair("--log-path", self.log_path.as_os_str());
        if let Some(fd) = self.ready_fd {
            pair("--ready-fd", OsStr::new(&fd.to_string()));
        }
        for (on, flag) in [
            (self.stdin, "--stdin"),
            (self.stdin_once, "--stdin-once"),
            (self.tty, "--tty"),
            (self.systemd_cgroup, "--systemd-cgroup"),
        ] {
            if on {
                v.push(flag.into());
            }
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> ShimArgs {
        ShimArgs {
            id: "abc".into(),
            bundle: "/b".into(),
            runc: "/usr/sbin/runc".into(),
            runc_root: "/run/runc".into(),
            state_dir: "/run/s".into(),
            log_path: "/var/log/pods/x/0.log".into(),
            stdin: true,
            stdin_once: false,
            tty: true,
            systemd_cgroup: true,
            ready_fd: Some(3),
        }
    }

    #[test]
    fn round_trip() {
        let a = sample();
        assert_eq!(ShimArgs::parse(a.to_args()).unwrap(), a);
        let b = ShimArgs {
            stdin: false,
            tty: false,
            stdin_once: true,
            systemd_cgroup: false,
            ready_fd: None,
            ..sample()
        };
        assert_eq!(ShimArgs::parse(b.to_args()).unwrap(), b);
    }

    #[test]
    fn rejects_bad_input() {
        let mut a = sample().to_args();
        a.truncate(a.len() - 1);
        a.push("--bogus".into());
        assert!(ShimArgs::parse(a).is_err());
        let no_id: Vec<OsString> = vec!["--bundle".into(), "/b".into()];
        assert!(ShimArgs::parse(no_id)
            .unwrap_err()
            .to_string()
            .contains("--id"));
        let bad_fd = ShimArgs {
            ready_fd: Some(1),
            ..sample()
        };
        assert!(ShimArgs::parse(bad_fd.to_args()).is_err());
        let bad_id = ShimArgs {
            id: "../x".into(),
            ..sample()
        };
        assert!(ShimArgs::parse(bad_id.to_args()).is_err());
        let dangling: Vec<OsString> = vec!["--id".into()];
        assert!(ShimArgs::parse(dangling).is_err());
    }
}
