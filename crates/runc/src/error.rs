//! The errors of running runc.

use std::io;
use std::time::Duration;

/// A runc command that could not be run or failed.
#[derive(Debug, thiserror::Error)]
pub enum RuncError {
    /// runc could not be started (or waited for).
    #[error("cannot run {runc}: {source}")]
    Spawn {
        /// The binary.
        runc: String,
        /// The error.
        source: io::Error,
    },
    /// No file could be made to take runc's output.
    #[error("cannot capture the output of runc: {source}")]
    Capture {
        /// The error.
        source: io::Error,
    },
    /// runc exited non-zero.
    #[error("runc {command} {id}: {message}")]
    Failed {
        /// The subcommand.
        command: &'static str,
        /// The container ID.
        id: String,
        /// What runc said (see [`crate::error_message`]).
        message: String,
    },
    /// runc did not finish in time and was killed.
    #[error("runc {command} {id} did not finish within {timeout:?}")]
    Timeout {
        /// The subcommand.
        command: &'static str,
        /// The container ID.
        id: String,
        /// The limit.
        timeout: Duration,
    },
    /// runc succeeded but printed something berth cannot read.
    #[error("runc {command} {id} printed unreadable output: {source}")]
    Output {
        /// The subcommand.
        command: &'static str,
        /// The container ID.
        id: String,
        /// The parse error.
        source: serde_json::Error,
    },
}

impl RuncError {
    /// Whether the runtime said the container does not exist: runc says so in words
    /// ("container does not exist"); crun says it cannot open the container's status file
    /// ("error opening file `<root>/<id>/status`: No such file or directory").
    pub fn is_not_found(&self) -> bool {
        matches!(self, RuncError::Failed { message, id, .. }
            if message.contains("does not exist")
                || message.contains("not found")
                || message.contains(&format!("/{id}/status`: No such file or directory")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failed(message: &str) -> RuncError {
        RuncError::Failed {
            command: "state",
            id: "c1".into(),
            message: message.into(),
        }
    }

    #[test]
    fn not_found_is_recognised_only_in_runc_messages() {
        assert!(failed("container does not exist").is_not_found());
        assert!(failed("container \"c1\" does not exist").is_not_found());
        assert!(!failed("permission denied").is_not_found());
        // crun's words.
        assert!(failed(
            "error opening file `/run/berth/runtimes/crun/c1/status`: No such file or directory"
        )
        .is_not_found());
        assert!(!failed(
            "error opening file `/run/berth/runtimes/crun/c2/status`: No such file or directory"
        )
        .is_not_found());
        assert!(!failed("open `/proc/1/status`: No such file or directory").is_not_found());
        let timeout = RuncError::Timeout {
            command: "state",
            id: "does not exist".into(),
            timeout: Duration::from_secs(1),
        };
        assert!(!timeout.is_not_found());
        assert_eq!(
            failed("boom").to_string(),
            "runc state c1: boom",
            "the message names command and container"
        );
    }
}
