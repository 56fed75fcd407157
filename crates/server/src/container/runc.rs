//! The runc commands berthd runs itself (start, kill, delete, update, state): an async facade
//! over berth-runc's blocking client, which runs on a blocking task. argv, timeouts and error
//! messages are berth-runc's, shared with the shim (which runs `runc create`, as it must hold
//! the container's stdio).

use std::path::{Path, PathBuf};
use std::time::Duration;

use berth_runc::Op;
pub use berth_runc::RuncState;

/// How long a runc command may take.
const RUNC_TIMEOUT: Duration = Duration::from_secs(60);

/// A runc failure.
#[derive(Debug, thiserror::Error)]
pub enum RuncError {
    /// runc could not be run, failed or timed out.
    #[error(transparent)]
    Runc(#[from] berth_runc::RuncError),
    /// The blocking task running runc panicked or was cancelled.
    #[error("runc {command} {id}: the task running it failed: {source}")]
    Task {
        /// The subcommand.
        command: &'static str,
        /// The container ID.
        id: String,
        /// The task's failure.
        source: tokio::task::JoinError,
    },
}

impl RuncError {
    /// Whether runc said the container does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(self, RuncError::Runc(err) if err.is_not_found())
    }
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
    /// The blocking client (runc logs to stderr: berthd runs no command whose log it keeps).
    fn client(&self) -> berth_runc::Runc {
        berth_runc::Runc {
            systemd_cgroup: self.systemd_cgroup,
            ..berth_runc::Runc::new(&self.binary, &self.root)
        }
    }

    /// Runs `f` with the client on a blocking task.
    async fn blocking<T, F>(&self, command: &'static str, id: &str, f: F) -> Result<T, RuncError>
    where
        T: Send + 'static,
        F: FnOnce(&berth_runc::Runc) -> Result<T, berth_runc::RuncError> + Send + 'static,
    {
        let client = self.client();
        tokio::task::spawn_blocking(move || f(&client))
            .await
            .map_err(|source| RuncError::Task {
                command,
                id: id.to_owned(),
                source,
            })?
            .map_err(RuncError::from)
    }

    /// Runs `op` (built from owned copies of its arguments on the blocking task).
    async fn run(
        &self,
        command: &'static str,
        id: &str,
        op: impl FnOnce(&berth_runc::Runc) -> Result<Vec<u8>, berth_runc::RuncError> + Send + 'static,
    ) -> Result<(), RuncError> {
        self.blocking(command, id, op).await.map(drop)
    }

    /// `runc start <id>`.
    pub async fn start(&self, id: &str) -> Result<(), RuncError> {
        let owned = id.to_owned();
        self.run("start", id, move |r| {
            r.run(&Op::Start { id: &owned }, RUNC_TIMEOUT)
        })
        .await
    }

    /// `runc kill [--all] <id> <signal>`.
    pub async fn kill(&self, id: &str, signal: i32, all: bool) -> Result<(), RuncError> {
        let owned = id.to_owned();
        self.run("kill", id, move |r| {
            let op = Op::Kill {
                id: &owned,
                signal,
                all,
            };
            r.run(&op, RUNC_TIMEOUT)
        })
        .await
    }

    /// `runc delete --force <id>`.
    pub async fn delete(&self, id: &str) -> Result<(), RuncError> {
        let owned = id.to_owned();
        self.run("delete", id, move |r| {
            r.run(&Op::Delete { id: &owned }, RUNC_TIMEOUT)
        })
        .await
    }

    /// Whether the runtime keeps state for container `id`: runc and crun hold it in
    /// `<root>/<id>` from `create` until `delete`.
    pub fn has_container(&self, id: &str) -> bool {
        !id.is_empty() && !id.contains('/') && self.root.join(id).is_dir()
    }

    /// `runc update --resources <file> <id>`.
    pub async fn update(&self, id: &str, resources: &Path) -> Result<(), RuncError> {
        let owned = id.to_owned();
        let resources = resources.to_owned();
        self.run("update", id, move |r| {
            let op = Op::Update {
                id: &owned,
                resources: &resources,
            };
            r.run(&op, RUNC_TIMEOUT)
        })
        .await
    }

    /// `runc state <id>`: the container's status and init PID. A container runc does not
    /// know is an error for which [`RuncError::is_not_found`] holds.
    pub async fn state(&self, id: &str) -> Result<RuncState, RuncError> {
        let owned = id.to_owned();
        self.blocking("state", id, move |r| r.state(&owned, RUNC_TIMEOUT))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn runc(binary: &Path, root: &Path) -> Runc {
        Runc {
            binary: binary.into(),
            root: root.into(),
            systemd_cgroup: true,
        }
    }

    /// A fake runc that records its argv in `dir/argv` and answers like runc: `state` prints a
    /// running container, every command on container `gone` fails as runc does for a
    /// container it does not know.
    ///
    /// Other tests of this binary fork concurrently; a fork while this process holds the
    /// script open for writing would make exec of it fail (ETXTBSY). So the script is put in
    /// place by `cp` and made executable by `chmod`: this process never opens it for writing.
    fn fake_runc(dir: &Path) -> PathBuf {
        let text = dir.join("runc.txt");
        let script = dir.join("runc");
        std::fs::write(
            &text,
            format!(
                r#"#!/bin/sh
printf '%s\n' "$@" > '{argv}'
case " $* " in
  *" gone "*) echo '{{"level":"error","msg":"container does not exist","time":"t"}}' >&2; exit 1 ;;
  *" state "*) echo '{{"id":"c1","pid":42,"status":"running","bundle":"/b"}}' ;;
esac
exit 0
"#,
                argv = dir.join("argv").display()
            ),
        )
        .unwrap();
        for cmd in [
            std::process::Command::new("cp")
                .arg(&text)
                .arg(&script)
                .status(),
            std::process::Command::new("chmod")
                .arg("755")
                .arg(&script)
                .status(),
        ] {
            assert!(cmd.unwrap().success());
        }
        script
    }

    fn argv(dir: &Path) -> Vec<String> {
        std::fs::read_to_string(dir.join("argv"))
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    #[tokio::test]
    async fn every_command_through_a_fake_runc() {
        let dir = tempfile::tempdir().unwrap();
        let r = runc(&fake_runc(dir.path()), &dir.path().join("root"));
        let globals = |rest: &[&str]| {
            let mut v = vec![
                "--root".to_owned(),
                dir.path().join("root").display().to_string(),
                "--log-format".into(),
                "json".into(),
                "--systemd-cgroup".into(),
            ];
            v.extend(rest.iter().map(|s| s.to_string()));
            v
        };

        r.start("c1").await.unwrap();
        assert_eq!(argv(dir.path()), globals(&["start", "c1"]));
        r.kill("c1", 15, false).await.unwrap();
        assert_eq!(argv(dir.path()), globals(&["kill", "c1", "15"]));
        r.kill("c1", 9, true).await.unwrap();
        assert_eq!(argv(dir.path()), globals(&["kill", "--all", "c1", "9"]));
        r.delete("c1").await.unwrap();
        assert_eq!(argv(dir.path()), globals(&["delete", "--force", "c1"]));
        r.update("c1", Path::new("/r.json")).await.unwrap();
        assert_eq!(
            argv(dir.path()),
            globals(&["update", "--resources", "/r.json", "c1"])
        );
        let st = r.state("c1").await.unwrap();
        assert_eq!((st.status, st.pid), (berth_runc::Status::Running, 42));
        assert_eq!(argv(dir.path()), globals(&["state", "c1"]));

        let err = r.state("gone").await.unwrap_err();
        assert!(err.is_not_found(), "{err:?}");
        assert_eq!(err.to_string(), "runc state gone: container does not exist");
        assert!(r.kill("gone", 15, false).await.unwrap_err().is_not_found());
    }

    #[tokio::test]
    async fn a_failing_or_missing_runc() {
        let dir = tempfile::tempdir().unwrap();
        let err = runc(Path::new("/bin/false"), dir.path())
            .start("abc")
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                RuncError::Runc(berth_runc::RuncError::Failed {
                    command: "start",
                    ..
                })
            ),
            "{err}"
        );
        assert!(!err.is_not_found());
        let err = runc(Path::new("/nonexistent/runc"), dir.path())
            .start("abc")
            .await
            .unwrap_err();
        assert!(
            matches!(err, RuncError::Runc(berth_runc::RuncError::Spawn { .. })),
            "{err}"
        );
    }
}
