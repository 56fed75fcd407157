//! `runc state <id>`: the container's status and init PID.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::{Op, Runc, RuncError};

/// What `runc state` prints (the fields berth reads).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct RuncState {
    /// The container ID.
    pub id: String,
    /// The init's PID; 0 once it is stopped.
    #[serde(default)]
    pub pid: u32,
    /// Where the container is in its life.
    pub status: Status,
    /// The bundle directory.
    #[serde(default)]
    pub bundle: PathBuf,
}

/// A container's status as runc reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Created, init waiting for `runc start`.
    Created,
    /// The init runs.
    Running,
    /// Being frozen (`runc pause` in progress).
    Pausing,
    /// Frozen.
    Paused,
    /// The init has exited.
    Stopped,
}

/// Parses the output of `runc state <id>`.
pub fn parse_state(id: &str, stdout: &[u8]) -> Result<RuncState, RuncError> {
    serde_json::from_slice(stdout).map_err(|source| RuncError::Output {
        command: "state",
        id: id.to_owned(),
        source,
    })
}

impl Runc {
    /// `runc state <id>`; a container runc does not know is a [`RuncError::Failed`] for which
    /// [`RuncError::is_not_found`] holds.
    pub fn state(&self, id: &str, timeout: Duration) -> Result<RuncState, RuncError> {
        let stdout = self.run(&Op::State { id }, timeout)?;
        parse_state(id, &stdout)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::tests::{fake_runc, forking, recorded_argv};

    const RUNNING: &str = r#"{
  "ociVersion": "1.0.2-dev",
  "id": "c1",
  "pid": 4242,
  "status": "running",
  "bundle": "/run/berth/containers/c1/bundle",
  "rootfs": "/run/berth/containers/c1/bundle/rootfs",
  "created": "2026-01-01T00:00:00.000000000Z",
  "owner": ""
}"#;

    #[test]
    fn parses_every_status() {
        let st = parse_state("c1", RUNNING.as_bytes()).unwrap();
        assert_eq!(
            st,
            RuncState {
                id: "c1".into(),
                pid: 4242,
                status: Status::Running,
                bundle: "/run/berth/containers/c1/bundle".into(),
            }
        );
        for (text, status) in [
            ("created", Status::Created),
            ("pausing", Status::Pausing),
            ("paused", Status::Paused),
            ("stopped", Status::Stopped),
        ] {
            let json = format!(r#"{{"id":"c1","pid":0,"status":"{text}"}}"#);
            assert_eq!(parse_state("c1", json.as_bytes()).unwrap().status, status);
        }
    }

    #[test]
    fn unreadable_output_is_an_output_error() {
        for bad in [&b""[..], b"not json", br#"{"id":"c1","status":"exploded"}"#] {
            assert!(matches!(
                parse_state("c1", bad),
                Err(RuncError::Output {
                    command: "state",
                    ..
                })
            ));
        }
    }

    #[test]
    fn state_through_a_fake_runc() {
        let dir = tempfile::tempdir().unwrap();
        let runc = fake_runc(dir.path());
        std::fs::write(dir.path().join("stdout"), RUNNING).unwrap();
        let st = forking(|| runc.state("c1", Duration::from_secs(10))).unwrap();
        assert_eq!((st.status, st.pid), (Status::Running, 4242));
        assert_eq!(recorded_argv(dir.path())[4..], ["state", "c1"]);

        std::fs::remove_file(dir.path().join("stdout")).unwrap();
        std::fs::write(dir.path().join("code"), "1").unwrap();
        std::fs::write(
            dir.path().join("stderr"),
            "{\"level\":\"error\",\"msg\":\"container does not exist\",\"time\":\"t\"}\n",
        )
        .unwrap();
        let err = forking(|| runc.state("c1", Duration::from_secs(10))).unwrap_err();
        assert!(err.is_not_found(), "{err:?}");
    }
}
