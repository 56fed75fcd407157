//! OCI whiteouts into overlayfs form: `.wh.<name>` becomes a `0:0` character device named
//! `<name>`, `.wh..wh..opq` becomes `trusted.overlay.opaque=y` on its directory.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;

use nix::errno::Errno;
use nix::sys::stat::{makedev, mknodat, Mode, SFlag};
use xattr::FileExt;

use super::entry::{clear, open_for_xattr, Place};
use super::path::LayerRoot;
use super::{EntryProblem, UnpackError};

const PREFIX: &[u8] = b".wh.";
const META_PREFIX: &[u8] = b".wh..wh.";
const OPAQUE: &[u8] = b".wh..wh..opq";

/// The overlayfs attribute that hides lower layers' contents of a directory.
pub(super) const OPAQUE_XATTR: &str = "trusted.overlay.opaque";

/// What a name means to overlayfs.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Whiteout<'a> {
    /// `.wh.<name>`: `<name>` is deleted.
    Remove(&'a OsStr),
    /// `.wh..wh..opq`: the directory is opaque.
    Opaque,
    /// Other `.wh..wh.*` names: aufs bookkeeping, ignored.
    AufsMeta,
}

/// Classifies the last component of an entry name; `None` for an ordinary name.
pub(super) fn classify(name: &OsStr) -> Result<Option<Whiteout<'_>>, EntryProblem> {
    let bytes = name.as_bytes();
    if bytes == OPAQUE {
        return Ok(Some(Whiteout::Opaque));
    }
    if bytes.starts_with(META_PREFIX) {
        return Ok(Some(Whiteout::AufsMeta));
    }
    let Some(target) = bytes.strip_prefix(PREFIX) else {
        return Ok(None);
    };
    if matches!(target, b"" | b"." | b"..") || target.contains(&b'/') || target.contains(&0) {
        return Err(EntryProblem::BadWhiteout {
            name: String::from_utf8_lossy(target).into_owned(),
        });
    }
    Ok(Some(Whiteout::Remove(OsStr::from_bytes(target))))
}

/// Puts the whiteout device for `place.name` (already the whited-out name).
pub(super) fn remove(root: &mut LayerRoot, place: &Place<'_>) -> Result<(), UnpackError> {
    clear(root, place, false)?;
    match mknodat(
        &place.dir,
        place.name,
        SFlag::S_IFCHR,
        Mode::empty(),
        makedev(0, 0),
    ) {
        Ok(()) => Ok(()),
        Err(Errno::EPERM) => Err(UnpackError::entry(
            place.path,
            EntryProblem::WhiteoutNotPermitted,
        )),
        Err(e) => Err(UnpackError::io(place.path, "create the whiteout device")(
            e.into(),
        )),
    }
}

/// Marks the directory `dir` opaque.
pub(super) fn opaque(dir: &std::os::fd::OwnedFd, path: &str) -> Result<(), UnpackError> {
    let file = open_for_xattr(dir, path)?;
    file.set_xattr(OPAQUE_XATTR, b"y").map_err(UnpackError::io(
        path,
        "mark the directory opaque (trusted.overlay.opaque)",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unpack_whiteout_classify() {
        fn c(s: &'static str) -> Result<Option<Whiteout<'static>>, EntryProblem> {
            classify(OsStr::new(s))
        }
        assert_eq!(c("file"), Ok(None));
        assert_eq!(c(".whx"), Ok(None));
        assert_eq!(
            c(".wh.file"),
            Ok(Some(Whiteout::Remove(OsStr::new("file"))))
        );
        assert_eq!(
            c(".wh..hidden"),
            Ok(Some(Whiteout::Remove(OsStr::new(".hidden"))))
        );
        assert_eq!(c(".wh..wh..opq"), Ok(Some(Whiteout::Opaque)));
        assert_eq!(c(".wh..wh.plnk"), Ok(Some(Whiteout::AufsMeta)));
        for bad in [".wh.", ".wh..", ".wh..."] {
            assert!(
                matches!(c(bad), Err(EntryProblem::BadWhiteout { .. })),
                "{bad}"
            );
        }
    }
}
