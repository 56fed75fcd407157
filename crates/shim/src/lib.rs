//! berth-shim: one small monitor process per container, and the client berthd uses to talk to it.
//!
//! The **binary** (`berth-shim`, see [`server`]) detaches from berthd, becomes a child
//! subreaper, runs `runc create`, holds the container's stdio (pipes or a pty master), writes
//! the container log in the CRI format, reaps the container's init, and writes the exit status
//! atomically to `<state-dir>/exit` before it exits. While the container runs it answers a small
//! newline-delimited JSON protocol on `<state-dir>/shim.sock` ([`protocol`]), through which
//! berthd also attaches to the container and runs exec sessions (`runc exec` as the shim's
//! child). With `pod-init` and `ns-holder` the same binary serves pods ([`podinit`],
//! [`nsholder`]).
//!
//! The **library** side is what berthd links: [`spawn()`] starts a shim and waits for it to report
//! readiness, [`ShimClient`] sends control requests, and [`read_exit`] reads the exit file. All of
//! it is blocking std code (berthd calls it from `spawn_blocking`).
//!
//! Files in the state dir are named in [`paths`].
//!
//! `unsafe` is denied crate-wide. It is allowed only in three narrow modules, each documented
//! at its top: `server::daemon` (the two `fork`s, taking over inherited fds), `server::tty`
//! (receiving the pty master over SCM_RIGHTS, `TIOCSWINSZ`) and `spawn::child_fd` (clearing
//! `FD_CLOEXEC` on the readiness pipe between fork and exec).

#![deny(unsafe_code)]

mod args;
mod client;
mod error;
mod exitfile;
pub mod nsholder;
pub mod paths;
pub mod podinit;
mod process;
pub mod protocol;
pub mod pty;
pub mod server;
mod sockpath;
mod spawn;
mod time;

pub use args::ShimArgs;
pub use client::{ShimClient, ShimState};
pub use error::ShimError;
pub use exitfile::{read_exit, ExitStatus};
pub use process::live_shim_pid;
pub use protocol::Status;
pub use spawn::{spawn, ShimSpawn, Spawned};
