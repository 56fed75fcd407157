//! Entry metadata: owner, mode, modification time and extended attributes, read from the
//! header (PAX records included) and applied in the order that keeps them all: owner, then
//! xattrs, then mode (chown clears setuid/setgid), then times.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;

use nix::errno::Errno;
use nix::fcntl::AtFlags;
use nix::sys::stat::{fchmodat, utimensat, FchmodatFlags, Mode, UtimensatFlags};
use nix::sys::time::TimeSpec;
use nix::unistd::{fchownat, Gid, Uid};
use xattr::FileExt;

use super::path::proc_path;
use super::{EntryProblem, UnpackError};

const XATTR_PREFIX: &[u8] = b"SCHILY.xattr.";

/// Permission bits a mode may carry (setuid, setgid, sticky and rwx).
const MODE_BITS: u32 = 0o7777;

/// Metadata of one entry.
#[derive(Debug, Clone)]
pub(super) struct Meta {
    pub(super) uid: u32,
    pub(super) gid: u32,
    pub(super) mode: u32,
    pub(super) mtime: TimeSpec,
    pub(super) xattrs: Vec<(OsString, Vec<u8>)>,
}

impl Meta {
    /// Reads the metadata of `entry`; `path` names it in errors.
    pub(super) fn read<R: Read>(
        entry: &mut tar::Entry<'_, R>,
        path: &str,
    ) -> Result<Meta, UnpackError> {
        let bad = |source| UnpackError::Header {
            path: path.to_owned(),
            source,
        };
        let header = entry.header();
        let (uid, gid) = (header.uid().map_err(bad)?, header.gid().map_err(bad)?);
        let (Ok(uid32), Ok(gid32)) = (u32::try_from(uid), u32::try_from(gid)) else {
            return Err(UnpackError::entry(
                path,
                EntryProblem::OwnerOutOfRange { uid, gid },
            ));
        };
        let mode = header.mode().map_err(bad)? & MODE_BITS;
        let header_mtime = header.mtime().map_err(bad)?;
        let mut mtime = TimeSpec::new(i64::try_from(header_mtime).unwrap_or(i64::MAX), 0);
        let mut xattrs = Vec::new();
        if let Some(records) = entry.pax_extensions().map_err(bad)? {
            for record in records {
                let record = record.map_err(bad)?;
                let key = record.key_bytes();
                if key == b"mtime" {
                    if let Some(t) = parse_pax_time(record.value_bytes()) {
                        mtime = t;
                    }
                } else if let Some(name) = key.strip_prefix(XATTR_PREFIX) {
                    xattrs.push((
                        OsStr::from_bytes(name).to_owned(),
                        record.value_bytes().to_vec(),
                    ));
                }
            }
        }
        Ok(Meta {
            uid: uid32,
            gid: gid32,
            mode,
            mtime,
            xattrs,
        })
    }

    fn mode(&self) -> Mode {
        Mode::from_bits_truncate(self.mode)
    }

    /// Owner, xattrs, mode and time of an open regular file or directory.
    pub(super) fn apply_to_file(
        &self,
        file: &File,
        path: &str,
        set_time: bool,
    ) -> Result<(), UnpackError> {
        std::os::unix::fs::fchown(file, Some(self.uid), Some(self.gid))
            .map_err(UnpackError::io(path, "set the owner"))?;
        apply_xattrs(&self.xattrs, path, |name, value| {
            file.set_xattr(name, value)
        })?;
        nix::sys::stat::fchmod(file, self.mode())
            .map_err(|e| UnpackError::io(path, "set the mode")(e.into()))?;
        if set_time {
            nix::sys::stat::futimens(file, &self.mtime, &self.mtime)
                .map_err(|e| UnpackError::io(path, "set the modification time")(e.into()))?;
        }
        Ok(())
    }

    /// Owner, xattrs, mode (unless `symlink`: Linux symlinks have no mode) and time of the
    /// entry `name` in `dir`, without following it.
    pub(super) fn apply_at(
        &self,
        dir: &OwnedFd,
        name: &OsStr,
        path: &str,
        symlink: bool,
    ) -> Result<(), UnpackError> {
        let io = |op| move |e: Errno| UnpackError::io(path, op)(e.into());
        fchownat(
            dir,
            name,
            Some(Uid::from_raw(self.uid)),
            Some(Gid::from_raw(self.gid)),
            AtFlags::AT_SYMLINK_NOFOLLOW,
        )
        .map_err(io("set the owner"))?;
        if !self.xattrs.is_empty() {
            let target = proc_path(dir, name);
            apply_xattrs(&self.xattrs, path, |key, value| {
                xattr::set(&target, key, value)
            })?;
        }
        if !symlink {
            // The node was just created by this entry and is not a symlink; Linux has no
            // no-follow chmod before fchmodat2.
            fchmodat(dir, name, self.mode(), FchmodatFlags::FollowSymlink)
                .map_err(io("set the mode"))?;
        }
        utimensat(
            dir,
            name,
            &self.mtime,
            &self.mtime,
            UtimensatFlags::NoFollowSymlink,
        )
        .map_err(io("set the modification time"))
    }
}

/// Sets a directory's time at the end of the layer, by name in its parent.
pub(super) fn set_time_at(dir: &OwnedFd, name: &OsStr, mtime: &TimeSpec) -> nix::Result<()> {
    utimensat(dir, name, mtime, mtime, UtimensatFlags::NoFollowSymlink)
}

/// What to do with one layer xattr.
#[derive(Debug, PartialEq, Eq)]
enum XattrPolicy {
    /// Never applied (`trusted.*`).
    Never,
    /// Applied; any failure is logged and skipped (`security.*`).
    BestEffort,
    /// Applied; unsupported or refused ones are skipped, other failures fail the entry.
    Apply,
}

fn policy(name: &OsStr) -> XattrPolicy {
    let name = name.as_bytes();
    if name.starts_with(b"trusted.") {
        XattrPolicy::Never
    } else if name.starts_with(b"security.") {
        XattrPolicy::BestEffort
    } else {
        XattrPolicy::Apply
    }
}

fn apply_xattrs(
    xattrs: &[(OsString, Vec<u8>)],
    path: &str,
    mut set: impl FnMut(&OsStr, &[u8]) -> io::Result<()>,
) -> Result<(), UnpackError> {
    for (name, value) in xattrs {
        let policy = policy(name);
        if policy == XattrPolicy::Never {
            tracing::debug!(entry = path, xattr = ?name, "layer xattr in the trusted namespace ignored");
            continue;
        }
        let Err(e) = set(name, value) else { continue };
        let unsupported = matches!(
            Errno::from_raw(e.raw_os_error().unwrap_or(0)),
            Errno::ENOTSUP | Errno::EPERM
        );
        if policy == XattrPolicy::BestEffort || unsupported {
            tracing::warn!(entry = path, xattr = ?name, error = %e, "layer xattr not applied");
            continue;
        }
        return Err(UnpackError::io(path, "set an extended attribute")(e));
    }
    Ok(())
}

/// Parses a PAX time (`1700000000` or `1700000000.123456789`, maybe negative).
fn parse_pax_time(value: &[u8]) -> Option<TimeSpec> {
    let text = std::str::from_utf8(value).ok()?;
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (secs, frac) = digits.split_once('.').unwrap_or((digits, ""));
    if secs.is_empty()
        || !secs.bytes().all(|b| b.is_ascii_digit())
        || !frac.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let secs: i64 = secs.parse().ok()?;
    let mut nanos: i64 = 0;
    for (i, d) in frac.bytes().take(9).enumerate() {
        nanos += i64::from(d - b'0') * 10_i64.pow(8 - i as u32);
    }
    if !negative {
        return Some(TimeSpec::new(secs, nanos));
    }
    // -1.25 is 1.25 s before the epoch: seconds -2, nanoseconds 750_000_000.
    if nanos == 0 {
        Some(TimeSpec::new(-secs, 0))
    } else {
        Some(TimeSpec::new(-secs - 1, 1_000_000_000 - nanos))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unpack_meta_pax_time() {
        assert_eq!(
            parse_pax_time(b"1700000000"),
            Some(TimeSpec::new(1_700_000_000, 0))
        );
        assert_eq!(
            parse_pax_time(b"1700000000.5"),
            Some(TimeSpec::new(1_700_000_000, 500_000_000))
        );
        assert_eq!(
            parse_pax_time(b"1.1234567891"),
            Some(TimeSpec::new(1, 123_456_789))
        );
        assert_eq!(
            parse_pax_time(b"-1.25"),
            Some(TimeSpec::new(-2, 750_000_000))
        );
        assert_eq!(parse_pax_time(b"x"), None);
        assert_eq!(parse_pax_time(b".5"), None);
    }

    #[test]
    fn unpack_meta_apply_at_sets_everything_without_a_descriptor() {
        use std::os::unix::fs::MetadataExt;

        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("f"), b"x").unwrap();
        let dir = nix::fcntl::openat(
            nix::fcntl::AT_FDCWD,
            tmp.path(),
            nix::fcntl::OFlag::O_PATH | nix::fcntl::OFlag::O_DIRECTORY,
            Mode::empty(),
        )
        .unwrap();
        let meta = Meta {
            uid: nix::unistd::geteuid().as_raw(),
            gid: nix::unistd::getegid().as_raw(),
            mode: 0o640,
            mtime: TimeSpec::new(1_234_567_890, 5),
            xattrs: vec![
                ("user.berth".into(), b"v".to_vec()),
                ("trusted.berth".into(), b"v".to_vec()),
            ],
        };
        meta.apply_at(&dir, OsStr::new("f"), "f", false).unwrap();
        let path = tmp.path().join("f");
        let m = std::fs::metadata(&path).unwrap();
        assert_eq!(m.mode() & 0o7777, 0o640);
        assert_eq!((m.mtime(), m.mtime_nsec()), (1_234_567_890, 5));
        match xattr::get(&path, "user.berth") {
            Ok(v) => assert_eq!(v.as_deref(), Some(&b"v"[..])),
            Err(e) if e.raw_os_error() == Some(nix::libc::ENOTSUP) => {
                berth_testutil::skip("the temporary filesystem has no user xattrs");
                return;
            }
            Err(e) => panic!("{e}"),
        }
        if nix::unistd::geteuid().is_root() {
            assert_eq!(xattr::get(&path, "trusted.berth").unwrap(), None);
        }
    }

    #[test]
    fn unpack_meta_xattr_policy() {
        assert_eq!(
            policy(OsStr::new("trusted.overlay.opaque")),
            XattrPolicy::Never
        );
        assert_eq!(
            policy(OsStr::new("security.selinux")),
            XattrPolicy::BestEffort
        );
        assert_eq!(
            policy(OsStr::new("security.capability")),
            XattrPolicy::BestEffort
        );
        assert_eq!(policy(OsStr::new("user.foo")), XattrPolicy::Apply);
    }
}
