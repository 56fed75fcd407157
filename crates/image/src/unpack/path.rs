//! Entry names and how they are reached: names are normalised component by component, and
//! directories are opened by a no-follow walk from the layer directory's descriptor.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::{openat, OFlag};
use nix::sys::stat::{fstatat, mkdirat, Mode, SFlag};
use nix::unistd::{getegid, geteuid};

use super::PathProblem;

/// Mode of parent directories the archive does not list.
const IMPLICIT_DIR_MODE: u32 = 0o755;

/// A normalised name inside the layer: no `..`, no empty or `.` components, no leading `/`.
/// No components at all means the layer root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct EntryPath {
    components: Vec<OsString>,
}

impl EntryPath {
    /// Normalises `raw` (an entry name or hard link target). A leading `/` is stripped: the
    /// name is contained in the layer.
    pub(super) fn parse(raw: &[u8], max_len: usize) -> Result<EntryPath, PathProblem> {
        if raw.len() > max_len {
            return Err(PathProblem::TooLong {
                len: raw.len(),
                max: max_len,
            });
        }
        if raw.contains(&0) {
            return Err(PathProblem::Nul);
        }
        if raw.is_empty() {
            return Err(PathProblem::Empty);
        }
        let mut components = Vec::new();
        for part in raw.split(|&b| b == b'/') {
            match part {
                b"" | b"." => {}
                b".." => return Err(PathProblem::DotDot),
                name => components.push(OsString::from_vec(name.to_vec())),
            }
        }
        Ok(EntryPath { components })
    }

    /// The directories above the entry (empty for the root and its children).
    pub(super) fn parent(&self) -> &[OsString] {
        match self.components.split_last() {
            Some((_, parent)) => parent,
            None => &[],
        }
    }

    /// The last component, `None` for the root.
    pub(super) fn name(&self) -> Option<&OsStr> {
        self.components.last().map(OsString::as_os_str)
    }

    /// All components.
    pub(super) fn components(&self) -> &[OsString] {
        &self.components
    }
}

/// Joins components with `/` for messages.
pub(super) fn display(components: &[OsString]) -> String {
    let mut out = Vec::new();
    for (i, c) in components.iter().enumerate() {
        if i > 0 {
            out.push(b'/');
        }
        out.extend_from_slice(c.as_bytes());
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Why a directory could not be reached.
#[derive(Debug)]
pub(super) enum WalkError {
    /// A component is a symlink (its path relative to the layer).
    Symlink(String),
    /// A component is not a directory.
    NotDirectory(String),
    /// A component does not exist (only when not creating).
    Missing(String),
    /// A syscall failed.
    Io(&'static str, io::Error),
}

/// The layer directory, opened once; every entry is reached from its descriptor.
pub(super) struct LayerRoot {
    root: OwnedFd,
    /// The last directory reached, so consecutive entries of one directory walk once.
    /// Dropped whenever anything is removed, because a removed directory would leave it
    /// pointing at an unlinked inode.
    cache: Option<(Vec<OsString>, OwnedFd)>,
}

impl LayerRoot {
    /// Opens `dest` (the caller's directory; it may itself be reached through symlinks).
    pub(super) fn open(dest: &Path) -> io::Result<LayerRoot> {
        let root = openat(
            nix::fcntl::AT_FDCWD,
            dest,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )?;
        Ok(LayerRoot { root, cache: None })
    }

    /// Forgets the cached directory; called before anything is removed.
    pub(super) fn invalidate(&mut self) {
        self.cache = None;
    }

    /// Opens the directory at `components` without following any symlink. With `create`,
    /// missing directories are made (`0755`, owned by the unpacking user); without, a
    /// missing one is [`WalkError::Missing`].
    pub(super) fn dir(
        &mut self,
        components: &[OsString],
        create: bool,
    ) -> Result<OwnedFd, WalkError> {
        let (start, mut current) = match &self.cache {
            Some((cached, fd)) if components.starts_with(cached) => (cached.len(), dup(fd)?),
            _ => (0, dup(&self.root)?),
        };
        for i in start..components.len() {
            current = step(&current, components, i, create)?;
        }
        self.cache = Some((components.to_vec(), dup(&current)?));
        Ok(current)
    }
}

fn dup(fd: &OwnedFd) -> Result<OwnedFd, WalkError> {
    fd.try_clone()
        .map_err(|e| WalkError::Io("duplicate a directory descriptor", e))
}

/// Opens `components[i]` inside `dir`, which is `components[..i]`.
fn step(
    dir: &OwnedFd,
    components: &[OsString],
    i: usize,
    create: bool,
) -> Result<OwnedFd, WalkError> {
    let name = components[i].as_os_str();
    let flags = OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    match openat(dir, name, flags, Mode::empty()) {
        Ok(fd) => Ok(fd),
        Err(Errno::ENOENT) if create => make_dir(dir, name),
        Err(Errno::ENOENT) => Err(WalkError::Missing(display(&components[..=i]))),
        Err(Errno::ENOTDIR | Errno::ELOOP) => {
            let here = display(&components[..=i]);
            match fstatat(dir, name, nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW) {
                Ok(st)
                    if SFlag::from_bits_truncate(st.st_mode) & SFlag::S_IFMT == SFlag::S_IFLNK =>
                {
                    Err(WalkError::Symlink(here))
                }
                Ok(_) => Err(WalkError::NotDirectory(here)),
                Err(e) => Err(WalkError::Io("inspect a parent directory", e.into())),
            }
        }
        Err(e) => Err(WalkError::Io("open a parent directory", e.into())),
    }
}

/// Makes a directory the archive did not list, with an exact mode and owner (umask and a
/// setgid parent would otherwise change them).
fn make_dir(dir: &OwnedFd, name: &OsStr) -> Result<OwnedFd, WalkError> {
    mkdirat(dir, name, Mode::from_bits_truncate(IMPLICIT_DIR_MODE))
        .map_err(|e| WalkError::Io("create a parent directory", e.into()))?;
    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let fd = openat(dir, name, flags, Mode::empty())
        .map_err(|e| WalkError::Io("open a created parent directory", e.into()))?;
    nix::unistd::fchown(&fd, Some(geteuid()), Some(getegid()))
        .map_err(|e| WalkError::Io("chown a created parent directory", e.into()))?;
    nix::sys::stat::fchmod(&fd, Mode::from_bits_truncate(IMPLICIT_DIR_MODE))
        .map_err(|e| WalkError::Io("chmod a created parent directory", e.into()))?;
    Ok(fd)
}

/// `/proc/self/fd/<dir>/<name>`: a path to `name` inside the already verified `dir`, for
/// the few calls that have no descriptor-relative form. The final component is not
/// followed by the `l*` calls it is used with.
pub(super) fn proc_path(dir: &impl AsRawFd, name: &OsStr) -> PathBuf {
    Path::new(&format!("/proc/self/fd/{}", dir.as_raw_fd())).join(name)
}

/// Opens the directory `dir` itself for reading (for `fchown`, `fchmod`, `fsetxattr`,
/// which do not work on `O_PATH` descriptors).
pub(super) fn reopen_dir(dir: &OwnedFd) -> io::Result<File> {
    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC;
    Ok(File::from(openat(dir, ".", flags, Mode::empty())?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(raw: &str) -> Result<Vec<String>, PathProblem> {
        EntryPath::parse(raw.as_bytes(), 64).map(|p| {
            p.components()
                .iter()
                .map(|c| c.to_string_lossy().into_owned())
                .collect()
        })
    }

    #[test]
    fn unpack_path_normalises_components() {
        assert_eq!(parse("a/b/c").unwrap(), ["a", "b", "c"]);
        assert_eq!(parse("./a//b/./c/").unwrap(), ["a", "b", "c"]);
        assert_eq!(parse("/etc/passwd").unwrap(), ["etc", "passwd"]);
        assert_eq!(parse("...").unwrap(), ["..."]);
        assert_eq!(parse(".wh...").unwrap(), [".wh..."]);
        assert!(parse("./").unwrap().is_empty());
        assert!(parse("/").unwrap().is_empty());
    }

    #[test]
    fn unpack_path_rejects_bad_names() {
        assert_eq!(parse("../x"), Err(PathProblem::DotDot));
        assert_eq!(parse("a/../../x"), Err(PathProblem::DotDot));
        assert_eq!(parse("a/.."), Err(PathProblem::DotDot));
        assert_eq!(parse("/../x"), Err(PathProblem::DotDot));
        assert_eq!(parse(""), Err(PathProblem::Empty));
        assert_eq!(parse("a\0b"), Err(PathProblem::Nul));
        assert_eq!(
            parse(&"x".repeat(65)),
            Err(PathProblem::TooLong { len: 65, max: 64 })
        );
    }

    #[test]
    fn unpack_path_display_joins() {
        let p = EntryPath::parse(b"a/b/c", 64).unwrap();
        assert_eq!(display(p.parent()), "a/b");
        assert_eq!(p.name(), Some(OsStr::new("c")));
    }
}
