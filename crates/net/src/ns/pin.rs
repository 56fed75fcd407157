//! Creating and removing pinned namespaces, generic over the OS seam.

use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use nix::errno::Errno;

use super::sys::NsSys;
use super::sysctl::{self, Sysctl};
use super::{NamespaceRequest, NsError, NsKind, PinnedNamespaces};

/// Longest hostname the kernel accepts (`HOST_NAME_MAX`).
const HOSTNAME_MAX: usize = 64;

/// Upper bound on stacked mounts `remove` peels off one pin file.
const MAX_STACKED_PINS: usize = 16;

pub(crate) fn create(
    sys: &impl NsSys,
    dir: &Path,
    req: &NamespaceRequest,
) -> Result<PinnedNamespaces, NsError> {
    let sysctls = sysctl::validate(&req.sysctls, req.net, req.ipc)?;
    if let Some(hostname) = &req.hostname {
        validate_hostname(hostname, req.uts)?;
    }
    let kinds: Vec<NsKind> = NsKind::ALL
        .into_iter()
        .filter(|kind| match kind {
            NsKind::Net => req.net,
            NsKind::Ipc => req.ipc,
            NsKind::Uts => req.uts,
        })
        .collect();
    if kinds.is_empty() {
        return Ok(PinnedNamespaces::default());
    }

    create_dir(dir)?;
    match populate(sys, dir, &kinds, req.hostname.as_deref(), &sysctls) {
        Ok(pinned) => Ok(pinned),
        Err(err) => {
            if let Err(undo) = remove(sys, dir) {
                tracing::warn!(dir = %dir.display(), error = %undo, "undoing namespace creation failed");
            }
            Err(err)
        }
    }
}

/// Creates the pin files, then does the namespace work on a dedicated thread.
fn populate(
    sys: &impl NsSys,
    dir: &Path,
    kinds: &[NsKind],
    hostname: Option<&str>,
    sysctls: &[Sysctl],
) -> Result<PinnedNamespaces, NsError> {
    let mut pinned = PinnedNamespaces::default();
    let mut pins: Vec<(NsKind, PathBuf)> = Vec::with_capacity(kinds.len());
    for &kind in kinds {
        let path = dir.join(kind.name());
        create_pin_file(&path)?;
        match kind {
            NsKind::Net => pinned.net = Some(path.clone()),
            NsKind::Ipc => pinned.ipc = Some(path.clone()),
            NsKind::Uts => pinned.uts = Some(path.clone()),
        }
        pins.push((kind, path));
    }

    std::thread::scope(|scope| {
        std::thread::Builder::new()
            .name("berth-ns-create".into())
            .spawn_scoped(scope, || {
                in_new_namespaces(sys, kinds, hostname, sysctls, &pins)
            })
            .map_err(|source| NsError::Spawn { source })?
            .join()
            .unwrap_or(Err(NsError::WorkerPanicked))
    })?;
    Ok(pinned)
}

/// Runs on the dedicated thread: the thread ends inside the new namespaces and dies, so
/// nothing else ever runs in them except through the pins.
fn in_new_namespaces(
    sys: &impl NsSys,
    kinds: &[NsKind],
    hostname: Option<&str>,
    sysctls: &[Sysctl],
    pins: &[(NsKind, PathBuf)],
) -> Result<(), NsError> {
    sys.unshare(kinds).map_err(|source| NsError::Unshare {
        kinds: kinds.iter().map(|k| k.name()).collect::<Vec<_>>().join(","),
        source,
    })?;
    if let Some(hostname) = hostname {
        sys.set_hostname(hostname)
            .map_err(|source| NsError::SetHostname {
                hostname: hostname.to_owned(),
                source,
            })?;
    }
    sysctl::write_all(sys, sysctls)?;
    for (kind, path) in pins {
        sys.pin(*kind, path).map_err(|source| NsError::Pin {
            kind: *kind,
            path: path.clone(),
            source,
        })?;
    }
    Ok(())
}

/// Creates an empty pin file (mode 0400) that must not exist yet.
pub(crate) fn create_pin_file(path: &Path) -> Result<(), NsError> {
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o400)
        .open(path)
        .map(drop)
        .map_err(|source| NsError::CreatePinFile {
            path: path.to_owned(),
            source,
        })
}

pub(crate) fn remove(sys: &impl NsSys, dir: &Path) -> Result<(), NsError> {
    let names = NsKind::ALL
        .iter()
        .map(|kind| kind.name())
        .chain([super::userns::USER_PIN]);
    for name in names {
        let path = dir.join(name);
        unpin_all(sys, &path)?;
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => return Err(NsError::RemoveFile { path, source }),
        }
    }
    match std::fs::remove_dir(dir) {
        Ok(()) => Ok(()),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(NsError::RemoveDir {
            dir: dir.to_owned(),
            source,
        }),
    }
}

/// Unmounts every mount stacked on `path`; fine when it is not a mount or absent.
fn unpin_all(sys: &impl NsSys, path: &Path) -> Result<(), NsError> {
    for _ in 0..MAX_STACKED_PINS {
        match sys.unpin(path) {
            Ok(()) => continue,
            Err(Errno::EINVAL | Errno::ENOENT) => return Ok(()),
            Err(source) => {
                return Err(NsError::Unpin {
                    path: path.to_owned(),
                    source,
                })
            }
        }
    }
    Err(NsError::Unpin {
        path: path.to_owned(),
        source: Errno::EBUSY,
    })
}

pub(crate) fn create_dir(dir: &Path) -> Result<(), NsError> {
    if let Some(parent) = dir.parent() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(parent)
            .map_err(|source| NsError::CreateDir {
                dir: parent.to_owned(),
                source,
            })?;
    }
    match std::fs::DirBuilder::new().mode(0o700).create(dir) {
        Ok(()) => Ok(()),
        Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => Err(NsError::DirExists {
            dir: dir.to_owned(),
        }),
        Err(source) => Err(NsError::CreateDir {
            dir: dir.to_owned(),
            source,
        }),
    }
}

pub(crate) fn validate_hostname(hostname: &str, new_uts: bool) -> Result<(), NsError> {
    let refuse = |reason| NsError::InvalidHostname {
        hostname: hostname.to_owned(),
        reason,
    };
    if !new_uts {
        return Err(refuse(
            "setting a hostname needs the pod's own UTS namespace",
        ));
    }
    if hostname.is_empty() {
        return Err(refuse("empty"));
    }
    if hostname.len() > HOSTNAME_MAX {
        return Err(refuse("longer than 64 bytes"));
    }
    if hostname.contains('\0') {
        return Err(refuse("contains a NUL byte"));
    }
    Ok(())
}
