//! A container's run state in the CRI's terms, from the runtime core's view of it.

use berth_runtime::ContainerView;
use berth_store::ContainerState;

/// What the core knows of a container's run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observed {
    /// Its state.
    pub state: ContainerState,
    /// Start time (unix nanos), 0 if never started.
    pub started_at: i64,
    /// Exit time (unix nanos), 0 if running.
    pub finished_at: i64,
    /// Exit code, when exited.
    pub exit_code: i32,
    /// `Completed`, `Error`, `OOMKilled`, `StartError` or `Unknown` once exited.
    pub reason: String,
    /// Why, when berth concluded the exit or cannot tell the state.
    pub message: String,
}

impl Observed {
    /// The run state of `view`.
    pub fn of(view: &ContainerView) -> Observed {
        let record = &view.record;
        let exit = record.exit.as_ref();
        Observed {
            state: view.state(),
            started_at: record.started_at,
            finished_at: exit.map_or(0, |e| e.finished_at),
            exit_code: exit.map_or(0, |e| e.exit_code),
            reason: exit.map(|e| e.reason.clone()).unwrap_or_default(),
            message: match (exit, &view.unknown) {
                (Some(e), _) => e.message.clone(),
                (None, Some(why)) => why.clone(),
                (None, None) => String::new(),
            },
        }
    }
}
