//! A container's run state, derived rather than stored: created when its record exists,
//! running once the `started` file exists, exited once the shim wrote its exit file.

use berth_store::ContainerState;

use crate::container::paths::ContainerPaths;

/// What the files say about a container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observed {
    /// Derived state.
    pub state: ContainerState,
    /// Start time (unix nanos), 0 if never started.
    pub started_at: i64,
    /// Exit time (unix nanos), 0 if running.
    pub finished_at: i64,
    /// Exit code, when exited.
    pub exit_code: i32,
    /// `Completed`, `Error` or `OOMKilled` once exited.
    pub reason: &'static str,
}

/// Reads the container's state files.
pub fn observe(paths: &ContainerPaths) -> Observed {
    let started_at = std::fs::read_to_string(paths.started())
        .ok()
        .and_then(|t| t.trim().parse::<i64>().ok())
        .unwrap_or(0);
    match berth_shim::read_exit(&paths.shim()) {
        Ok(Some(exit)) => Observed {
            state: ContainerState::Exited,
            started_at,
            finished_at: exit.exited_at,
            exit_code: exit.exit_code,
            reason: if exit.oom_killed {
                "OOMKilled"
            } else if exit.exit_code == 0 {
                "Completed"
            } else {
                "Error"
            },
        },
        _ => Observed {
            state: if started_at > 0 {
                ContainerState::Running
            } else {
                ContainerState::Created
            },
            started_at,
            finished_at: 0,
            exit_code: 0,
            reason: "",
        },
    }
}

/// Records the start time.
pub fn mark_started(paths: &ContainerPaths, at: i64) -> std::io::Result<()> {
    berth_atomicfile::write(&paths.started(), at.to_string().as_bytes(), 0o644)
}
