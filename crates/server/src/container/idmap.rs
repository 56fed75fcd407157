//! Idmapped image layers for containers of a pod with its own user namespace.
//!
//! The image's snapshots are owned by host root, who is nobody inside such a pod. Each layer
//! is cloned as a detached mount (`open_tree(OPEN_TREE_CLONE)`) and given the pod's user
//! namespace as its idmapping (`mount_setattr(MOUNT_ATTR_IDMAP)`): through it, files owned by
//! host 0 appear owned by the pod's root. The overlay takes these trees as its lower layers
//! by `/proc/self/fd/<n>`, so the snapshots themselves are never changed and stay shared
//! with every other container. (Idmapping the overlay mount itself is refused by the kernel.)
//! The container's upper directory is new and empty; it is chowned to the pod's root.
//!
//! The container's volumes (CRI mounts) get the same idmapping: [`bind_idmapped`] attaches an
//! idmapped clone of the host path at a path of berth's, which the spec then binds instead.
//!
//! One of the few modules allowed `unsafe`: the three syscalls, which libc has no wrappers
//! for, and taking ownership of the fd `open_tree` returns.

#![allow(unsafe_code)]

use std::ffi::CString;
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::libc;

const OPEN_TREE_CLONE: libc::c_uint = 1;
const AT_RECURSIVE: libc::c_uint = 0x8000;
const MOUNT_ATTR_IDMAP: u64 = 0x0010_0000;
const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 0x0000_0004;

/// `struct mount_attr` of `<linux/mount.h>`.
#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

/// Detached, idmapped clones of layer directories; unmounted when dropped (the overlay
/// mounted on them keeps what it needs).
pub struct IdmappedLayers {
    trees: Vec<OwnedFd>,
}

impl IdmappedLayers {
    /// Idmaps each of `layers` with the user namespace pinned at `userns`.
    pub fn new(layers: &[PathBuf], userns: &Path) -> io::Result<IdmappedLayers> {
        let ns = File::open(userns)?;
        let trees = layers
            .iter()
            .map(|layer| {
                let tree = open_tree(layer).map_err(|e| annotate(e, "open_tree", layer))?;
                set_idmap(&tree, &ns).map_err(|e| annotate(e, "idmap", layer))?;
                Ok(tree)
            })
            .collect::<io::Result<_>>()?;
        Ok(IdmappedLayers { trees })
    }

    /// The paths to give overlayfs, in the order of the layers given to [`Self::new`].
    pub fn paths(&self) -> Vec<PathBuf> {
        self.trees
            .iter()
            .map(|fd| PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd())))
            .collect()
    }
}

/// Attaches at `target` (an existing file or directory) a clone of the mount tree at
/// `source`, idmapped with the user namespace pinned at `userns`. Fails, changing nothing,
/// where the file system cannot be idmapped.
pub fn bind_idmapped(source: &Path, userns: &Path, target: &Path) -> io::Result<()> {
    let ns = File::open(userns)?;
    let tree = open_tree(source).map_err(|e| annotate(e, "open_tree", source))?;
    set_idmap(&tree, &ns).map_err(|e| annotate(e, "idmap", source))?;
    move_mount(&tree, target).map_err(|e| annotate(e, "move_mount to", target))
}

/// Attaches the detached tree `tree` at `target`.
fn move_mount(tree: &OwnedFd, target: &Path) -> io::Result<()> {
    let c_target = c_string(target)?;
    let empty = c"";
    // SAFETY: `tree` is open for the duration of the call; `empty` and `c_target` are valid
    // NUL-terminated strings the kernel only reads.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            tree.as_raw_fd(),
            empty.as_ptr(),
            libc::AT_FDCWD,
            c_target.as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

fn c_string(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains NUL"))
}

fn annotate(e: io::Error, what: &str, layer: &Path) -> io::Error {
    io::Error::new(e.kind(), format!("{what} {}: {e}", layer.display()))
}

/// A detached clone of the mount tree at `path`.
fn open_tree(path: &Path) -> io::Result<OwnedFd> {
    let c_path = c_string(path)?;
    let flags = OPEN_TREE_CLONE | AT_RECURSIVE | libc::O_CLOEXEC as libc::c_uint;
    // SAFETY: `c_path` is a valid NUL-terminated string that outlives the call; the syscall
    // reads only it and returns a new fd or -1.
    let fd = unsafe { libc::syscall(libc::SYS_open_tree, libc::AT_FDCWD, c_path.as_ptr(), flags) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel just installed `fd` for us; nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as libc::c_int) })
}

/// Gives the detached tree `tree` the idmapping of user namespace `ns`.
fn set_idmap(tree: &OwnedFd, ns: &File) -> io::Result<()> {
    let attr = MountAttr {
        attr_set: MOUNT_ATTR_IDMAP,
        attr_clr: 0,
        propagation: 0,
        userns_fd: ns.as_raw_fd() as u64,
    };
    let empty = c"";
    // SAFETY: both fds are open for the duration of the call; `empty` is a valid C string and
    // `attr` a valid, initialised mount_attr whose size is passed; the kernel only reads them.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_mount_setattr,
            tree.as_raw_fd(),
            empty.as_ptr(),
            libc::AT_EMPTY_PATH | AT_RECURSIVE as libc::c_int,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
