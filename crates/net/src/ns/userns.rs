//! Pods with a user namespace of their own: the user namespace (with the pod's ID maps) and,
//! owned by it, the pod's network, IPC and UTS namespaces, pinned under `dir` like
//! [`super::create_pinned`]'s plus `dir/user`.
//!
//! The other namespaces must be owned by the pod's user namespace: runc joins the user
//! namespace first and can then join only namespaces that it owns, and sysfs can only be
//! mounted in a container whose network namespace its user namespace owns.
//!
//! berthd cannot create a user namespace itself (the kernel allows that only to a
//! single-threaded process), so a holder process does the `unshare(2)`: `berth-shim
//! ns-holder` (see that module). berthd pins the holder's namespaces, writes its ID maps, and
//! lets it exit; the hostname and sysctls are then set from threads that enter the pins, as
//! host root (which may act in any namespace a child user namespace owns).

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use nix::mount::{mount, MsFlags};

use super::sys::LinuxNs;
use super::sysctl::{self, Sysctl};
use super::{pin, NamespaceRequest, NsError, NsKind, PinnedNamespaces};

/// The pin file of the user namespace, in the pod's namespace directory.
pub const USER_PIN: &str = "user";

/// One contiguous ID mapping (a line of `/proc/<pid>/uid_map`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdMap {
    /// First ID inside the namespace.
    pub inside: u32,
    /// First ID outside (on the host).
    pub outside: u32,
    /// How many IDs.
    pub count: u32,
}

impl IdMap {
    /// The `uid_map`/`gid_map` line.
    pub fn line(&self) -> String {
        format!("{} {} {}\n", self.inside, self.outside, self.count)
    }
}

/// The user namespace to create.
#[derive(Debug, Clone)]
pub struct UserNamespaceRequest {
    pub uids: IdMap,
    pub gids: IdMap,
    /// The `berth-shim` binary (run as `berth-shim ns-holder`).
    pub holder: PathBuf,
}

/// Creates the pod's user namespace and, owned by it, new network, IPC and UTS namespaces
/// (`req` must ask for all three), sets the hostname and sysctls, and pins all four under
/// `dir`. On failure nothing is left behind.
pub fn create_pinned_in_userns(
    dir: &Path,
    req: &NamespaceRequest,
    userns: &UserNamespaceRequest,
) -> Result<PinnedNamespaces, NsError> {
    if !(req.net && req.ipc && req.uts) {
        return Err(NsError::UsernsNeedsPodNamespaces);
    }
    let sysctls = sysctl::validate(&req.sysctls, true, true)?;
    if let Some(hostname) = &req.hostname {
        pin::validate_hostname(hostname, true)?;
    }
    pin::create_dir(dir)?;
    match populate(dir, req, &sysctls, userns) {
        Ok(pinned) => Ok(pinned),
        Err(err) => {
            if let Err(undo) = pin::remove(&LinuxNs, dir) {
                tracing::warn!(dir = %dir.display(), error = %undo, "undoing user namespace creation failed");
            }
            Err(err)
        }
    }
}

fn populate(
    dir: &Path,
    req: &NamespaceRequest,
    sysctls: &[Sysctl],
    userns: &UserNamespaceRequest,
) -> Result<PinnedNamespaces, NsError> {
    let pinned = PinnedNamespaces {
        net: Some(dir.join(NsKind::Net.name())),
        ipc: Some(dir.join(NsKind::Ipc.name())),
        uts: Some(dir.join(NsKind::Uts.name())),
        user: Some(dir.join(USER_PIN)),
    };
    let names = [USER_PIN, "net", "ipc", "uts"];
    for name in names {
        pin::create_pin_file(&dir.join(name))?;
    }

    let holder_err = |source| NsError::Holder {
        program: userns.holder.clone(),
        source,
    };
    let mut holder = Command::new(&userns.holder)
        .arg("ns-holder")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        // Its own process group: a signal to berthd's group does not reach it.
        .process_group(0)
        .spawn()
        .map_err(holder_err)?;
    let pinned_ok = pin_holder(&mut holder, dir, &names, userns);
    // EOF on its stdin lets the holder go; the pins keep the namespaces.
    drop(holder.stdin.take());
    if pinned_ok.is_err() {
        let _ = holder.kill();
    }
    let waited = holder.wait().map_err(holder_err);
    pinned_ok?;
    waited?;

    if let (Some(hostname), Some(uts)) = (&req.hostname, &pinned.uts) {
        super::in_namespace(uts, NsKind::Uts, || nix::unistd::sethostname(hostname))?.map_err(
            |source| NsError::SetHostname {
                hostname: hostname.clone(),
                source,
            },
        )?;
    }
    super::enter::write_sysctls(&pinned, sysctls)?;
    Ok(pinned)
}

/// Waits for the holder's `ready`, pins its namespaces and writes its ID maps.
fn pin_holder(
    holder: &mut Child,
    dir: &Path,
    names: &[&'static str],
    userns: &UserNamespaceRequest,
) -> Result<(), NsError> {
    let mut line = String::new();
    if let Some(out) = holder.stdout.take() {
        BufReader::new(out)
            .read_line(&mut line)
            .map_err(|source| NsError::Holder {
                program: userns.holder.clone(),
                source,
            })?;
    }
    if line.trim_end() != "ready" {
        return Err(NsError::HolderFailed {
            message: match line.trim() {
                "" => "exited without a word".to_owned(),
                said => said.to_owned(),
            },
        });
    }
    let proc_dir = PathBuf::from(format!("/proc/{}", holder.id()));
    for name in names {
        let target = dir.join(name);
        mount(
            Some(&proc_dir.join("ns").join(name)),
            &target,
            None::<&str>,
            MsFlags::MS_BIND,
            None::<&str>,
        )
        .map_err(|source| NsError::PinFrom {
            name,
            path: target,
            source,
        })?;
    }
    // setgroups stays "allow": runc sets the container's groups inside the namespace.
    for (file, map) in [("uid_map", userns.uids), ("gid_map", userns.gids)] {
        let path = proc_dir.join(file);
        std::fs::write(&path, map.line()).map_err(|source| NsError::IdMap { path, source })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn map_lines() {
        let m = IdMap {
            inside: 0,
            outside: 1000,
            count: 100000,
        };
        assert_eq!(m.line(), "0 1000 100000\n");
    }

    /// A request for `holder`, mapping 10 IDs from host 1000.
    fn userns(holder: &Path) -> UserNamespaceRequest {
        let map = IdMap {
            inside: 0,
            outside: 1000,
            count: 10,
        };
        UserNamespaceRequest {
            uids: map,
            gids: map,
            holder: holder.to_owned(),
        }
    }

    #[test]
    fn needs_all_three_pod_namespaces() {
        let dir = tempfile::tempdir().unwrap();
        let req = NamespaceRequest {
            net: true,
            ipc: true,
            uts: false,
            ..Default::default()
        };
        let pod = dir.path().join("pod");
        assert!(matches!(
            create_pinned_in_userns(&pod, &req, &userns(Path::new("/nonexistent"))),
            Err(NsError::UsernsNeedsPodNamespaces)
        ));
        assert!(!pod.exists());
    }

    #[test]
    fn missing_holder_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let req = NamespaceRequest {
            net: true,
            ipc: true,
            uts: true,
            ..Default::default()
        };
        let pod = dir.path().join("pod");
        let holder = dir.path().join("no-such-holder");
        assert!(matches!(
            create_pinned_in_userns(&pod, &req, &userns(&holder)),
            Err(NsError::Holder { .. })
        ));
        assert!(!pod.exists());
    }
}
