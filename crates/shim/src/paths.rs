//! Names of the files a shim keeps in its state dir (`--state-dir`).
//!
//! berthd owns the state dir (one per container) and removes it after `RemoveContainer`; the
//! shim creates it if missing (mode 0700) and never removes it.

/// Control socket (unix stream, mode 0600). Exists while the shim runs.
pub const CONTROL_SOCKET: &str = "shim.sock";
/// Exit status, written atomically (temp file + rename) once the container's init has exited.
pub const EXIT_FILE: &str = "exit";
/// The container init's PID, written by `runc create --pid-file`.
pub const INIT_PID_FILE: &str = "pid";
/// The long-lived shim's own PID, written before `runc create` runs.
pub const SHIM_PID_FILE: &str = "shim.pid";
/// The shim's own diagnostics (a few lines per container, append only, capped).
pub const SHIM_LOG: &str = "shim.log";
/// runc's JSON log (`runc --log <..> --log-format json`).
pub const RUNC_LOG: &str = "runc.log";
/// The socket runc sends the pty master to (`--console-socket`), TTY containers only; removed
/// once the master has been received.
pub const CONSOLE_SOCKET: &str = "console.sock";
