//! Running code inside a pinned namespace, on a fresh thread so the caller's thread
//! never changes namespace.

use std::fs::File;
use std::path::Path;

use nix::sched::setns;

use super::sys::LinuxNs;
use super::sysctl::{self, Sysctl};
use super::{NsError, NsKind, PinnedNamespaces};

/// Runs `f` on a new thread that has joined the network namespace pinned at `netns`.
/// Sockets `f` creates stay in that namespace after it returns. Inside, read
/// `/proc/thread-self/net/...`, not `/proc/net/...` (which is the process's view).
/// A panic in `f` is resumed on the caller.
pub fn in_netns<T: Send>(netns: &Path, f: impl FnOnce() -> T + Send) -> Result<T, NsError> {
    in_namespace(netns, NsKind::Net, f)
}

/// Runs `f` on a new thread that has joined the namespace of `kind` pinned at `pin`
/// (or any `/proc/<pid>/ns/<kind>` file). Processes `f` spawns inherit the namespace.
pub fn in_namespace<T: Send>(
    pin: &Path,
    kind: NsKind,
    f: impl FnOnce() -> T + Send,
) -> Result<T, NsError> {
    let file = File::open(pin).map_err(|source| NsError::Open {
        path: pin.to_owned(),
        source,
    })?;
    std::thread::scope(|scope| {
        let handle = std::thread::Builder::new()
            .name(format!("berth-in-{kind}ns"))
            .spawn_scoped(scope, move || {
                // setns checks that `file` is a namespace of this kind.
                setns(&file, kind.clone_flag()).map_err(|source| NsError::Enter {
                    kind,
                    path: pin.to_owned(),
                    source,
                })?;
                Ok(f())
            })
            .map_err(|source| NsError::Spawn { source })?;
        match handle.join() {
            Ok(result) => result,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    })
}

/// Writes sysctls inside already pinned namespaces, for those that need something CNI
/// creates first (`net.ipv4.conf.eth0.*`). Validated like [`super::create_pinned`]'s:
/// `net.*` needs `pins.net`, the IPC ones `pins.ipc`. Nothing to undo: the values live
/// and die with the pod's namespaces.
pub fn apply_sysctls(pins: &PinnedNamespaces, sysctls: &[(String, String)]) -> Result<(), NsError> {
    let sysctls = sysctl::validate(sysctls, pins.net.is_some(), pins.ipc.is_some())?;
    write_sysctls(pins, &sysctls)
}

/// Writes already validated sysctls inside the pinned namespaces.
pub(crate) fn write_sysctls(pins: &PinnedNamespaces, sysctls: &[Sysctl]) -> Result<(), NsError> {
    if sysctls.is_empty() {
        return Ok(());
    }
    let mut targets = Vec::new();
    for kind in [NsKind::Net, NsKind::Ipc] {
        if let Some(pin) = pins.get(kind) {
            let file = File::open(pin).map_err(|source| NsError::Open {
                path: pin.to_owned(),
                source,
            })?;
            targets.push((kind, pin, file));
        }
    }
    std::thread::scope(|scope| {
        std::thread::Builder::new()
            .name("berth-sysctl".into())
            .spawn_scoped(scope, || {
                for (kind, pin, file) in &targets {
                    setns(file, kind.clone_flag()).map_err(|source| NsError::Enter {
                        kind: *kind,
                        path: pin.to_path_buf(),
                        source,
                    })?;
                }
                sysctl::write_all(&LinuxNs, sysctls)
            })
            .map_err(|source| NsError::Spawn { source })?
            .join()
            .unwrap_or(Err(NsError::WorkerPanicked))
    })
}
