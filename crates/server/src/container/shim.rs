//! What berthd sees of a container from outside: its shim (by PID, checked to be this
//! container's `berth-shim`), the shim's exit file and runc's state. The runtime core's
//! supervision and start-up recovery read these through the host interface.

use berth_runc::Status;
use berth_runtime::{ExitFile, Probe, RuncView};
use berth_store::ContainerRecord;

use crate::container::paths::ContainerPaths;
use crate::daemon::Daemon;

/// Runs an async runc call to its end from a blocking thread (host calls run on those).
pub fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Handle::current().block_on(future)
}

/// The PID of container `id`'s shim while it runs (checked to be this container's shim).
pub fn shim_pid(daemon: &Daemon, id: &str) -> Option<u32> {
    let paths = ContainerPaths::new(daemon, id);
    berth_shim::live_shim_pid(&paths.shim(), &daemon.shim_binary(), id)
}

/// Everything the host shows of the container.
pub fn probe(daemon: &Daemon, record: &ContainerRecord) -> Probe {
    let id = &record.id;
    let paths = ContainerPaths::new(daemon, id);
    Probe {
        shim_pid: shim_pid(daemon, id),
        exit: exit_file(&paths),
        runc: runc_view(daemon, record),
    }
}

/// What the container's exit file says, once the shim wrote it.
pub fn exit_file(paths: &ContainerPaths) -> Option<ExitFile> {
    berth_shim::read_exit(&paths.shim())
        .ok()
        .flatten()
        .map(|e| ExitFile {
            exit_code: e.exit_code,
            exited_at: e.exited_at,
            oom_killed: e.oom_killed,
        })
}

/// The runtime's view of the container (`runc state`, through its handler).
fn runc_view(daemon: &Daemon, record: &ContainerRecord) -> RuncView {
    let id = &record.id;
    let runc = match daemon.runc(&record.handler) {
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
