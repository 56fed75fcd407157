//! What berthd sees of a container from outside: its shim (by PID, checked to be this
//! container's `berth-shim`), the shim's exit file and runc's state. The runtime core's
//! supervision and start-up recovery read these through the host interface.

use std::path::Path;

use berth_runc::Status;
use berth_runtime::{ExitFile, Probe, RuncView};

use crate::container::paths::ContainerPaths;
use crate::daemon::Daemon;

/// `comm` of a shim (the binary's name; the kernel keeps 15 bytes).
const SHIM_COMM: &str = "berth-shim";

/// Runs an async runc call to its end from a blocking thread (host calls run on those).
pub fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Handle::current().block_on(future)
}

/// The PID of container `id`'s shim while it runs: the PID its state directory records,
/// if that process is a `berth-shim` whose arguments name this container.
pub fn shim_pid(daemon: &Daemon, id: &str) -> Option<u32> {
    let paths = ContainerPaths::new(daemon, id);
    let pid: u32 = std::fs::read_to_string(paths.shim().join(berth_shim::paths::SHIM_PID_FILE))
        .ok()?
        .trim()
        .parse()
        .ok()
        .filter(|pid| *pid > 1)?;
    is_shim_of(Path::new(&format!("/proc/{pid}")), id).then_some(pid)
}

/// Whether the process at `proc_dir` is a shim of container `id`.
fn is_shim_of(proc_dir: &Path, id: &str) -> bool {
    let comm = std::fs::read_to_string(proc_dir.join("comm")).unwrap_or_default();
    if comm.trim_end() != SHIM_COMM {
        return false;
    }
    // A zombie has no command line; it is not running any more.
    let cmdline = std::fs::read(proc_dir.join("cmdline")).unwrap_or_default();
    cmdline.split(|b| *b == 0).any(|arg| arg == id.as_bytes())
}

/// Everything the host shows of the container.
pub fn probe(daemon: &Daemon, id: &str) -> Probe {
    let paths = ContainerPaths::new(daemon, id);
    let exit = berth_shim::read_exit(&paths.shim())
        .ok()
        .flatten()
        .map(|e| ExitFile {
            exit_code: e.exit_code,
            exited_at: e.exited_at,
            oom_killed: e.oom_killed,
        });
    Probe {
        shim_pid: shim_pid(daemon, id),
        exit,
        runc: runc_view(daemon, id),
    }
}

/// runc's view of the container (`runc state`).
fn runc_view(daemon: &Daemon, id: &str) -> RuncView {
    let runc = match daemon.runc() {
        Ok(runc) => runc,
        Err(err) => return RuncView::Unknown(err.to_string()),
    };
    match block_on(runc.state(id)) {
        Ok(state) => match state.status {
            Status::Created => RuncView::Created,
            Status::Running | Status::Paused | Status::Pausing => RuncView::Running,
            Status::Stopped => RuncView::Stopped,
        },
        Err(err) if err.is_not_found() => RuncView::Missing,
        Err(err) => RuncView::Unknown(err.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_shim_naming_the_container_counts() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("comm"), "berth-shim\n").unwrap();
        std::fs::write(dir.path().join("cmdline"), b"berth-shim\0--id\0abc\0").unwrap();
        assert!(is_shim_of(dir.path(), "abc"));
        assert!(!is_shim_of(dir.path(), "abd"));
        std::fs::write(dir.path().join("comm"), "sleep\n").unwrap();
        assert!(!is_shim_of(dir.path(), "abc"));
        assert!(!is_shim_of(&dir.path().join("gone"), "abc"));
    }
}
