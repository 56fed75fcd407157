//! A typed runc command client: each operation berthd runs itself (start, kill, delete,
//! update) as argv, with runc's JSON log read back for the error message.
//! (`runc create` is run by the shim, which must hold the container's stdio.)

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::process::Command;

/// How long a runc command may take.
const RUNC_TIMEOUT: Duration = Duration::from_secs(60);

/// A runc failure.
#[derive(Debug, thiserror::Error)]
pub enum RuncError {
    /// runc could not be started.
    #[error("cannot run {runc}: {source}")]
    Spawn {
        /// The binary.
        runc: String,
        /// The error.
        source: std::io::Error,
    },
    /// runc exited non-zero.
    #[error("runc {command} {id}: {message}")]
    Failed {
        /// The subcommand.
        command: &'static str,
        /// The container ID.
        id: String,
        /// runc's last error message.
        message: String,
    },
    /// runc did not finish in time.
    #[error("runc {command} {id} did not finish within {seconds} s")]
    Timeout {
        /// The subcommand.
        command: &'static str,
        /// The container ID.
        id: String,
        /// The limit.
        seconds: u64,
    },
}

impl RuncError {
    /// Whether runc said the container does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(self, RuncError::Failed { message, .. } if message.contains("does not exist") || message.contains("not found"))
    }
}

/// What `runc state` says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuncState {
    /// `created`, `running`, `paused` or `stopped`.
    pub status: String,
}

/// runc with berth's state root.
#[derive(Debug, Clone)]
pub struct Runc {
    /// The binary.
    pub binary: PathBuf,
    /// `--root`: runc's state directory.
    pub root: PathBuf,
    /// `--systemd-cgroup` when the systemd driver is used.
    pub systemd_cgroup: bool,
}

impl Runc {
    fn global_args(&self) -> Vec<String> {
        let mut args = vec!["--root".to_owned(), self.root.display().to_string()];
        if self.systemd_cgroup {
            args.push("--systemd-cgroup".into());
        }
        args
    }

    /// argv of `runc <command> <args..>` (without the binary), for tests and logs.
    pub fn argv(&self, command: &str, args: &[String]) -> Vec<String> {
        let mut argv = self.global_args();
        argv.push(command.to_owned());
        argv.extend(args.iter().cloned());
        argv
    }

    async fn run(
        &self,
        command: &'static str,
        id: &str,
        args: Vec<String>,
    ) -> Result<(), RuncError> {
        let argv = self.argv(command, &args);
        let child = Command::new(&self.binary)
            .args(&argv)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|source| RuncError::Spawn {
                runc: self.binary.display().to_string(),
                source,
            })?;
        let output = tokio::time::timeout(RUNC_TIMEOUT, child.wait_with_output())
            .await
            .map_err(|_| RuncError::Timeout {
                command,
                id: id.to_owned(),
                seconds: RUNC_TIMEOUT.as_secs(),
            })?
            .map_err(|source| RuncError::Spawn {
                runc: self.binary.display().to_string(),
                source,
            })?;
        if output.status.success() {
            return Ok(());
        }
        Err(RuncError::Failed {
            command,
            id: id.to_owned(),
            message: error_message(&output.stderr),
        })
    }

    /// `runc start <id>`.
    pub async fn start(&self, id: &str) -> Result<(), RuncError> {
        self.run("start", id, vec![id.to_owned()]).await
    }

    /// `runc kill [--all] <id> <signal>`.
    pub async fn kill(&self, id: &str, signal: i32, all: bool) -> Result<(), RuncError> {
        let mut args = Vec::new();
        if all {
            args.push("--all".to_owned());
        }
        args.push(id.to_owned());
        args.push(signal.to_string());
        self.run("kill", id, args).await
    }

    /// `runc delete --force <id>`.
    pub async fn delete(&self, id: &str) -> Result<(), RuncError> {
        self.run("delete", id, vec!["--force".into(), id.to_owned()])
            .await
    }

    /// `runc state <id>`: runc's status of the container.
    pub async fn state(&self, id: &str) -> Result<RuncState, RuncError> {
        let output = Command::new(&self.binary)
            .args(self.argv("state", &[id.to_owned()]))
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output();
        let output = tokio::time::timeout(RUNC_TIMEOUT, output)
            .await
            .map_err(|_| RuncError::Timeout {
                command: "state",
                id: id.to_owned(),
                seconds: RUNC_TIMEOUT.as_secs(),
            })?
            .map_err(|source| RuncError::Spawn {
                runc: self.binary.display().to_string(),
                source,
            })?;
        if !output.status.success() {
            return Err(RuncError::Failed {
                command: "state",
                id: id.to_owned(),
                message: error_message(&output.stderr),
            });
        }
        let value: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap_or_default();
        Ok(RuncState {
            status: value["status"].as_str().unwrap_or_default().to_owned(),
        })
    }

    /// `runc update --resources <file> <id>`.
    pub async fn update(&self, id: &str, resources: &Path) -> Result<(), RuncError> {
        self.run(
            "update",
            id,
            vec![
                "--resources".into(),
                resources.display().to_string(),
                id.to_owned(),
            ],
        )
        .await
    }
}

/// The message of a failed runc run: the last `"level":"error"` JSON line's `msg`, else the
/// last non-empty line of its stderr.
pub fn error_message(stderr: &[u8]) -> String {
    let text = String::from_utf8_lossy(stderr);
    let mut last_json = None;
    let mut last_line = None;
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if let Ok(value) = serde_json::from_str::<serde_json::Value>(line) {
            if value["level"] == "error" {
                if let Some(msg) = value["msg"].as_str() {
                    last_json = Some(msg.to_owned());
                }
            }
        }
        last_line = Some(line.to_owned());
    }
    last_json
        .or(last_line)
        .unwrap_or_else(|| "failed without a message".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn runc() -> Runc {
        Runc {
            binary: "/bin/false".into(),
            root: "/run/berth/runc".into(),
            systemd_cgroup: false,
        }
    }

    #[test]
    fn argv_carries_root_and_flags() {
        assert_eq!(
            runc().argv("kill", &["--all".into(), "abc".into(), "15".into()]),
            ["--root", "/run/berth/runc", "kill", "--all", "abc", "15"]
        );
        let systemd = Runc {
            systemd_cgroup: true,
            ..runc()
        };
        assert_eq!(systemd.argv("start", &["x".into()])[2], "--systemd-cgroup");
    }

    #[test]
    fn error_message_prefers_runc_json_errors() {
        let stderr = br#"{"level":"warning","msg":"w"}
{"level":"error","msg":"container \"x\" does not exist"}
"#;
        assert_eq!(error_message(stderr), "container \"x\" does not exist");
        assert_eq!(error_message(b"plain failure\n\n"), "plain failure");
        assert_eq!(error_message(b""), "failed without a message");
    }

    #[tokio::test]
    async fn a_failing_runc_is_reported_with_its_message() {
        let err = runc().start("abc").await.unwrap_err();
        assert!(
            matches!(
                err,
                RuncError::Failed {
                    command: "start",
                    ..
                }
            ),
            "{err}"
        );
        let missing = Runc {
            binary: "/nonexistent/runc".into(),
            ..runc()
        };
        assert!(matches!(
            missing.start("abc").await,
            Err(RuncError::Spawn { .. })
        ));
    }
}
