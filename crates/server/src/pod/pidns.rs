//! The shared PID namespace of a pod (PID mode POD): `unshare --pid --fork -- berth-shim
//! pod-init` makes a tiny init process PID 1 of a new namespace; the pod's containers join
//! it through `/proc/<pid>/ns/pid`. Its host PID is kept in the sandbox directory, and it is
//! only ever signalled after checking that the PID still names a `berth-shim`.

use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::error::ServiceError;

/// File in the sandbox directory holding the init's host PID.
const HOLDER_FILE: &str = "pid-init";

/// How long the init may take to appear.
const START_TIMEOUT: Duration = Duration::from_secs(5);

/// `comm` of the init process (the shim binary's name).
const HOLDER_COMM: &str = "berth-shim";

/// Starts the pod's PID namespace init and records its PID in `sandbox_dir`. With `userns`
/// (the pin of the pod's user namespace) the PID namespace is created inside, so that it is
/// owned by the pod's user namespace: `nsenter --user=<pin> -- unshare ...` (nsenter execs
/// unshare in place).
pub fn start_pid_init(
    shim: &Path,
    sandbox_dir: &Path,
    userns: Option<&Path>,
) -> Result<u32, ServiceError> {
    let io = |action, source| ServiceError::Io {
        action,
        path: shim.to_owned(),
        source,
    };
    let mut command = match userns {
        Some(pin) => {
            let mut c = Command::new("nsenter");
            c.arg(format!("--user={}", pin.display()))
                .args(["--", "unshare"]);
            c
        }
        None => Command::new("unshare"),
    };
    let mut unshare = command
        .args(["--pid", "--fork", "--"])
        .arg(shim)
        .arg("pod-init")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        // Its own process group: a signal to berthd's group does not reach it.
        .process_group(0)
        .spawn()
        .map_err(|source| io("start the pod PID namespace init with", source))?;
    let parent = unshare.id();
    let children = PathBuf::from(format!("/proc/{parent}/task/{parent}/children"));
    let deadline = Instant::now() + START_TIMEOUT;
    let found = loop {
        let found = std::fs::read_to_string(&children)
            .ok()
            .and_then(|text| {
                text.split_whitespace()
                    .next()
                    .and_then(|p| p.parse::<u32>().ok())
            })
            .filter(|pid| is_holder(*pid));
        if found.is_some() {
            break found;
        }
        // `unshare` ends at once when the init cannot be executed (no shim at that path).
        if let Ok(Some(status)) = unshare.try_wait() {
            return Err(ServiceError::FailedPrecondition {
                what: format!(
                    "the pod PID namespace init {} pod-init ended at once ({status})",
                    shim.display()
                ),
            });
        }
        if Instant::now() > deadline {
            break None;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    // `unshare` waits for the init; reap it whenever it ends.
    std::thread::spawn(move || {
        let _ = unshare.wait();
    });
    let pid = found.ok_or_else(|| ServiceError::FailedPrecondition {
        what: format!(
            "the pod PID namespace init did not start within {} s",
            START_TIMEOUT.as_secs()
        ),
    })?;
    let file = sandbox_dir.join(HOLDER_FILE);
    std::fs::write(&file, pid.to_string()).map_err(|source| ServiceError::Io {
        action: "write",
        path: file,
        source,
    })?;
    Ok(pid)
}

fn is_holder(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .is_ok_and(|comm| comm.trim() == HOLDER_COMM)
}

fn holder_pid(sandbox_dir: &Path) -> Option<u32> {
    std::fs::read_to_string(sandbox_dir.join(HOLDER_FILE))
        .ok()
        .and_then(|p| p.trim().parse().ok())
        .filter(|pid| is_holder(*pid))
}

/// The pod's PID namespace (`/proc/<init>/ns/pid`), when it has one that is alive.
pub fn pid_namespace(sandbox_dir: &Path) -> Option<PathBuf> {
    holder_pid(sandbox_dir).map(|pid| PathBuf::from(format!("/proc/{pid}/ns/pid")))
}

/// Ends the pod's PID namespace init, if it runs. Idempotent.
pub fn stop_pid_init(sandbox_dir: &Path) {
    if let Some(pid) = holder_pid(sandbox_dir) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_init_that_cannot_be_executed_is_reported_at_once() {
        if !nix::unistd::geteuid().is_root() {
            berth_testutil::skip("needs root (unshare --pid)");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("no-such-shim");
        let started = Instant::now();
        let err = start_pid_init(&missing, dir.path(), None).unwrap_err();
        let message = err.to_string();
        assert!(
            message.contains("ended at once") && message.contains("no-such-shim"),
            "{message}"
        );
        assert!(
            started.elapsed() < START_TIMEOUT,
            "the failure must not wait for the start timeout"
        );
        assert!(!dir.path().join(HOLDER_FILE).exists());
    }
}
