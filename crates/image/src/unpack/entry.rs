//! Creating one entry of each type at a name inside an already verified directory.
//!
//! Every function gets the parent directory's descriptor (reached by the no-follow walk) and
//! the final name. What an earlier entry left at that name is removed first, so nothing is
//! ever written through an existing symlink.

use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::OwnedFd;

use nix::errno::Errno;
use nix::fcntl::{openat, AtFlags, OFlag};
use nix::sys::stat::{fstatat, makedev, mkdirat, mknodat, FileStat, Mode, SFlag};
use nix::unistd::{linkat, symlinkat, unlinkat, UnlinkatFlags};

use super::meta::Meta;
use super::path::{proc_path, reopen_dir, LayerRoot};
use super::{EntryProblem, UnpackError};

/// Where an entry goes: its parent directory and its name in it, plus the entry's name as
/// written in the archive, for errors.
pub(super) struct Place<'a> {
    pub(super) dir: OwnedFd,
    pub(super) name: &'a OsStr,
    pub(super) path: &'a str,
}

impl Place<'_> {
    fn io(&self, op: &'static str) -> impl FnOnce(io::Error) -> UnpackError {
        UnpackError::io(self.path, op)
    }

    fn errno(&self, op: &'static str) -> impl FnOnce(Errno) -> UnpackError {
        let io = self.io(op);
        move |e| io(e.into())
    }
}

/// The file type bits of a stat.
pub(super) fn kind(st: &FileStat) -> SFlag {
    SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT
}

/// What is at `name` in `dir`, without following it.
pub(super) fn existing(dir: &OwnedFd, name: &OsStr) -> io::Result<Option<FileStat>> {
    match fstatat(dir, name, AtFlags::AT_SYMLINK_NOFOLLOW) {
        Ok(st) => Ok(Some(st)),
        Err(Errno::ENOENT) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Removes whatever is at the place; a directory only when `keep_dir` is false. Returns
/// whether a directory was kept.
pub(super) fn clear(
    root: &mut LayerRoot,
    place: &Place<'_>,
    keep_dir: bool,
) -> Result<bool, UnpackError> {
    let Some(st) =
        existing(&place.dir, place.name).map_err(place.io("inspect the existing entry"))?
    else {
        return Ok(false);
    };
    if kind(&st) == SFlag::S_IFDIR {
        if keep_dir {
            return Ok(true);
        }
        root.invalidate();
        // std's remove_dir_all does not follow symlinks inside the tree; the proc path
        // keeps the verified parent.
        std::fs::remove_dir_all(proc_path(&place.dir, place.name))
            .map_err(place.io("remove the existing directory"))?;
    } else {
        unlinkat(&place.dir, place.name, UnlinkatFlags::NoRemoveDir)
            .map_err(place.errno("remove the existing entry"))?;
    }
    Ok(false)
}

/// A regular file: created exclusively, filled from `content`, then given its metadata.
/// Returns the bytes written. `buf` is a reusable copy buffer.
pub(super) fn regular(
    root: &mut LayerRoot,
    place: &Place<'_>,
    meta: &Meta,
    content: &mut dyn Read,
    buf: &mut [u8],
) -> Result<u64, UnpackError> {
    clear(root, place, false)?;
    let flags =
        OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let fd = openat(
        &place.dir,
        place.name,
        flags,
        Mode::from_bits_truncate(0o600),
    )
    .map_err(place.errno("create the file"))?;
    let mut file = File::from(fd);
    let mut written = 0u64;
    loop {
        let n = match content.read(buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(UnpackError::Tar(e)),
        };
        file.write_all(&buf[..n])
            .map_err(place.io("write the file"))?;
        written += n as u64;
    }
    meta.apply_to_file(&file, place.path, true)?;
    Ok(written)
}

/// A directory: an existing one is kept (its metadata updated), anything else replaced. The
/// time is left to the caller, who sets it after the directory's children.
pub(super) fn directory(
    root: &mut LayerRoot,
    place: &Place<'_>,
    meta: &Meta,
) -> Result<(), UnpackError> {
    if !clear(root, place, true)? {
        mkdirat(&place.dir, place.name, Mode::from_bits_truncate(0o700))
            .map_err(place.errno("create the directory"))?;
    }
    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let fd = openat(&place.dir, place.name, flags, Mode::empty())
        .map_err(place.errno("open the directory"))?;
    meta.apply_to_file(&File::from(fd), place.path, false)
}

/// A symlink with `target` stored as is (it is never followed here).
pub(super) fn symlink(
    root: &mut LayerRoot,
    place: &Place<'_>,
    target: &OsStr,
    meta: &Meta,
) -> Result<(), UnpackError> {
    clear(root, place, false)?;
    symlinkat(target, &place.dir, place.name).map_err(place.errno("create the symlink"))?;
    meta.apply_at(&place.dir, place.name, place.path, true)
}

/// A hard link to `target_name` in `target_dir` (already resolved inside the layer). The
/// shared inode keeps the metadata of the entry that created it.
pub(super) fn hard_link(
    root: &mut LayerRoot,
    place: &Place<'_>,
    target_dir: &OwnedFd,
    target_name: &OsStr,
    target: &FileStat,
) -> Result<(), UnpackError> {
    if let Some(st) =
        existing(&place.dir, place.name).map_err(place.io("inspect the existing entry"))?
    {
        if st.st_dev == target.st_dev && st.st_ino == target.st_ino {
            return Ok(()); // already this inode (a link to itself, or a repeated link)
        }
    }
    clear(root, place, false)?;
    linkat(
        target_dir,
        target_name,
        &place.dir,
        place.name,
        AtFlags::empty(),
    )
    .map_err(place.errno("create the hard link"))
}

/// A special file.
#[derive(Debug, Clone, Copy)]
pub(super) enum Node {
    Char { major: u32, minor: u32 },
    Block { major: u32, minor: u32 },
    Fifo,
}

/// A device node or FIFO.
pub(super) fn node(
    root: &mut LayerRoot,
    place: &Place<'_>,
    node: Node,
    meta: &Meta,
) -> Result<(), UnpackError> {
    clear(root, place, false)?;
    let (kind, dev) = match node {
        Node::Char { major, minor } => (SFlag::S_IFCHR, makedev(major.into(), minor.into())),
        Node::Block { major, minor } => (SFlag::S_IFBLK, makedev(major.into(), minor.into())),
        Node::Fifo => (SFlag::S_IFIFO, 0),
    };
    match mknodat(
        &place.dir,
        place.name,
        kind,
        Mode::from_bits_truncate(0o600),
        dev,
    ) {
        Ok(()) => {}
        Err(Errno::EPERM) if kind != SFlag::S_IFIFO => {
            return Err(UnpackError::entry(
                place.path,
                EntryProblem::DeviceNotPermitted,
            ));
        }
        Err(e) => return Err(place.errno("create the special file")(e)),
    }
    meta.apply_at(&place.dir, place.name, place.path, false)
}

/// Opens `dir` itself for `fsetxattr` (the walk hands out `O_PATH` descriptors).
pub(super) fn open_for_xattr(dir: &OwnedFd, path: &str) -> Result<File, UnpackError> {
    reopen_dir(dir).map_err(UnpackError::io(path, "open the directory"))
}
