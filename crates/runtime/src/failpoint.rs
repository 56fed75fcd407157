//! Named steps at which a test build of berthd can be made to die, to prove that every
//! multi-step operation is finished or undone at the next start.
//!
//! With the `failpoints` feature, `BERTH_FAIL_AT=<step>` makes [`reach`] abort the process
//! (SIGABRT: no destructor, no undo runs, exactly like `kill -9`) the first time that step is
//! reached. Without the feature `reach` only traces the step. The steps are listed in
//! [`STEPS`]; the integration test `tests/it/crash.rs` runs each of them.

/// Every step name an operation reaches, in the order of the operations.
pub const STEPS: &[&str] = &[
    "run_pod_sandbox:intent_recorded",
    "run_pod_sandbox:files",
    "run_pod_sandbox:shm",
    "run_pod_sandbox:namespaces",
    "run_pod_sandbox:pid_init",
    "run_pod_sandbox:network",
    "run_pod_sandbox:before_commit",
    "create_container:intent_recorded",
    "create_container:rootfs",
    "create_container:bundle",
    "create_container:before_commit",
    "start_container:intent_recorded",
    "start_container:shim",
    "start_container:runc_start",
    "start_container:started",
    "stop_container:intent_recorded",
    "stop_container:signalled",
    "remove_container:intent_recorded",
    "remove_container:host_removed",
    "stop_pod_sandbox:intent_recorded",
    "stop_pod_sandbox:containers_stopped",
    "stop_pod_sandbox:network_released",
    "remove_pod_sandbox:intent_recorded",
    "remove_pod_sandbox:containers_removed",
    "remove_pod_sandbox:network_released",
    "remove_pod_sandbox:namespaces_removed",
];

/// Marks `step` as reached: aborts the process when it is the configured failpoint.
pub fn reach(step: &'static str) {
    tracing::trace!(step, "step reached");
    #[cfg(feature = "failpoints")]
    armed::check(step);
}

#[cfg(feature = "failpoints")]
mod armed {
    use std::sync::OnceLock;

    /// The environment variable naming the step to die at.
    const VAR: &str = "BERTH_FAIL_AT";

    pub(super) fn check(step: &'static str) {
        static TARGET: OnceLock<Option<String>> = OnceLock::new();
        let target = TARGET.get_or_init(|| std::env::var(VAR).ok().filter(|s| !s.is_empty()));
        if target.as_deref() == Some(step) {
            // stderr, unbuffered: the test reads it from berthd's log.
            eprintln!("berthd: failpoint {step} reached: aborting");
            std::process::abort();
        }
    }
}
