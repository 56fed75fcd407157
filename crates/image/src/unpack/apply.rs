//! The unpack loop: reads entries, checks limits and names, dispatches each entry type, sets
//! directory times at the end and reads the stream to its end.

use std::cell::Cell;
use std::ffi::{OsStr, OsString};
use std::io::{self, Read};
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::rc::Rc;

use nix::sys::stat::SFlag;
use nix::sys::time::TimeSpec;
use tar::EntryType;

use super::budget::{Budget, Budgeted};
use super::entry::{self, existing, kind, Node, Place};
use super::meta::{set_time_at, Meta};
use super::path::{display, EntryPath, LayerRoot, WalkError};
use super::whiteout::{self, Whiteout};
use super::{EntryProblem, LayerStats, Limits, LinkProblem, PathProblem, UnpackError};

/// Copy buffer for file content.
const COPY_BUFFER: usize = 256 << 10;

/// Unpacks the uncompressed layer tar `tar` into `dest`, an existing empty directory, and
/// reads `tar` to its end. On error `dest` holds a partial layer: the caller deletes it.
///
/// The limits are enforced as the stream is read: a regular file whose header declares
/// more than allowed is refused before it is created, and the stream itself is never read
/// more than one byte past [`Limits::max_total_bytes`].
///
/// See the [module documentation](super) for the safety model, the metadata and xattr
/// rules and the whiteout format.
pub fn apply_layer<R: Read>(
    tar: R,
    dest: &Path,
    limits: &Limits,
) -> Result<LayerStats, UnpackError> {
    let root = LayerRoot::open(dest).map_err(|source| UnpackError::Dest {
        path: dest.to_owned(),
        source,
    })?;
    let budget = Budget::for_limits(limits);
    let tally = Tally::new(limits.max_total_bytes);
    let mut archive = tar::Archive::new(Counted {
        inner: Budgeted {
            inner: tar,
            budget: budget.clone(),
        },
        tally: tally.clone(),
    });
    let mut unpacker = Unpacker {
        root,
        limits: *limits,
        stats: LayerStats::default(),
        dir_times: Vec::new(),
        buf: vec![0; COPY_BUFFER],
    };
    // The entry whose content is being read, for an error of the stream's size limit.
    let mut current = None;
    let result = unpack_entries(&mut archive, &mut unpacker, &budget, &tally, &mut current)
        .and_then(|()| {
            current = None;
            unpacker.set_dir_times()?;
            // The end-of-archive blocks and any record padding: the caller's digest covers
            // them.
            io::copy(&mut archive.into_inner(), &mut io::sink()).map_err(UnpackError::Tar)?;
            Ok(())
        });
    match result {
        // Whatever stopped the reader (the parser, a file's copy, the drain), the limit did.
        Err(_) if tally.over() => Err(UnpackError::TooManyBytes {
            path: current,
            max: limits.max_total_bytes,
        }),
        Err(err) => Err(err),
        Ok(()) => Ok(unpacker.stats),
    }
}

/// Reads and applies the entries; `current` names the entry whose content is being read
/// (`None` while headers are).
fn unpack_entries<R: Read>(
    archive: &mut tar::Archive<Counted<Budgeted<R>>>,
    unpacker: &mut Unpacker,
    budget: &Budget,
    tally: &Tally,
    current: &mut Option<String>,
) -> Result<(), UnpackError> {
    let mut entries = archive.entries().map_err(UnpackError::Tar)?;
    // Where the content of the last entry ended in the stream.
    let mut last_content_end = 0u64;
    loop {
        // Between two entries the parser reads only headers and extension records (the
        // previous entry's content is drained below), so that is what the budget caps.
        *current = None;
        budget.arm();
        let next = entries.next();
        budget.disarm();
        let mut entry = match next {
            None => return Ok(()),
            Some(Ok(entry)) => entry,
            // A stream that ends cleanly after an entry's complete content, without its
            // padding or the end-of-archive blocks (as `umoci insert` writes layers), is
            // read as Go's archive/tar reads it: the archive ends there.
            Some(Err(_)) if tally.ended_at(last_content_end) => return Ok(()),
            Some(Err(e)) => return Err(budget.error(e)),
        };
        // The content's size as the entry yields it (a sparse file's holes included) and
        // where it ends in the stream at the latest (a sparse file stores less).
        let size = entry.size();
        let content_end = entry.raw_file_position().saturating_add(size);
        let shown = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        *current = Some(shown.clone());
        let written = unpacker.stats.bytes;
        unpacker.apply(&mut entry, content_end)?;
        let rest = io::copy(&mut entry, &mut io::sink()).map_err(UnpackError::Tar)?;
        // Only regular files' content is read by `apply`; the entry yields less than its
        // size only when the stream ended inside it.
        let got = unpacker.stats.bytes - written + rest;
        if got < size {
            return Err(UnpackError::Truncated {
                path: shown,
                size,
                got,
            });
        }
        last_content_end = tally.read();
    }
}

/// How far the archive stream has been read, whether it has ended, and whether it went
/// past its size limit.
#[derive(Debug, Clone)]
struct Tally(Rc<TallyState>);

#[derive(Debug)]
struct TallyState {
    max: u64,
    read: Cell<u64>,
    eof: Cell<bool>,
    over: Cell<bool>,
}

impl Tally {
    fn new(max: u64) -> Tally {
        Tally(Rc::new(TallyState {
            max,
            read: Cell::new(0),
            eof: Cell::new(false),
            over: Cell::new(false),
        }))
    }

    fn read(&self) -> u64 {
        self.0.read.get()
    }

    /// Whether the stream ended exactly at `offset` (nothing after it).
    fn ended_at(&self, offset: u64) -> bool {
        self.0.eof.get() && self.read() == offset
    }

    /// Whether the stream has more bytes than its limit.
    fn over(&self) -> bool {
        self.0.over.get()
    }
}

/// The archive stream, counted and cut off one byte past the limit.
struct Counted<R> {
    inner: R,
    tally: Tally,
}

impl<R: Read> Read for Counted<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let state = &self.tally.0;
        let over = || io::Error::new(io::ErrorKind::InvalidData, "layer larger than its limit");
        if state.over.get() {
            return Err(over());
        }
        // One byte more than the limit allows tells a stream that ends exactly there from
        // one that goes on.
        let room = state.max.saturating_sub(state.read.get()).saturating_add(1);
        let want = buf.len().min(usize::try_from(room).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..want])?;
        state.read.set(state.read.get() + n as u64);
        if n == 0 && !buf.is_empty() {
            state.eof.set(true);
        }
        if state.read.get() > state.max {
            state.over.set(true);
            return Err(over());
        }
        Ok(n)
    }
}

struct Unpacker {
    root: LayerRoot,
    limits: Limits,
    stats: LayerStats,
    /// Directories and their times, set once all their children exist.
    dir_times: Vec<(Vec<OsString>, TimeSpec)>,
    buf: Vec<u8>,
}

impl Unpacker {
    /// Applies one entry whose content ends at `content_end` in the stream.
    fn apply<R: Read>(
        &mut self,
        entry: &mut tar::Entry<'_, R>,
        content_end: u64,
    ) -> Result<(), UnpackError> {
        let raw = entry.path_bytes().into_owned();
        let shown = String::from_utf8_lossy(&raw).into_owned();
        let shown = shown.as_str();
        self.stats.entries += 1;
        if self.stats.entries > self.limits.max_entries {
            return Err(UnpackError::TooManyEntries {
                path: shown.to_owned(),
                max: self.limits.max_entries,
            });
        }
        let header_type = entry.header().entry_type();
        if header_type == EntryType::XGlobalHeader {
            tracing::debug!(entry = shown, "PAX global header ignored");
            return Ok(());
        }
        // Old-style archives mark directories by a trailing slash on a regular entry.
        let old_dir = entry.header().as_old().linkflag[0] == 0 && raw.ends_with(b"/");
        let entry_type = if old_dir {
            EntryType::Directory
        } else {
            header_type
        };

        let path = EntryPath::parse(&raw, self.limits.max_path_bytes)
            .map_err(|p| UnpackError::entry(shown, EntryProblem::Path(p)))?;
        let Some(name) = path.name() else {
            if entry_type == EntryType::Directory {
                return Ok(()); // `./`: the layer directory itself is berth's
            }
            return Err(UnpackError::entry(shown, EntryProblem::RootNotDirectory));
        };
        if let Some(wh) = whiteout::classify(name).map_err(|p| UnpackError::entry(shown, p))? {
            return self.whiteout(&path, wh, shown);
        }
        if matches!(
            entry_type,
            EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse
        ) {
            self.check_size(entry.size(), content_end, shown)?;
        }
        let meta = Meta::read(entry, shown)?;
        let place = Place {
            dir: self.parent(&path, shown)?,
            name,
            path: shown,
        };
        match entry_type {
            EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
                let written = entry::regular(&mut self.root, &place, &meta, entry, &mut self.buf)?;
                self.stats.bytes += written;
            }
            EntryType::Directory => {
                entry::directory(&mut self.root, &place, &meta)?;
                self.dir_times
                    .push((path.components().to_vec(), meta.mtime));
            }
            EntryType::Symlink => {
                let target = self.symlink_target(entry, shown)?;
                entry::symlink(&mut self.root, &place, &target, &meta)?;
            }
            EntryType::Link => self.hard_link(entry, &place)?,
            EntryType::Char | EntryType::Block => {
                let bad = |source| UnpackError::Header {
                    path: shown.to_owned(),
                    source,
                };
                let header = entry.header();
                let (Some(major), Some(minor)) = (
                    header.device_major().map_err(bad)?,
                    header.device_minor().map_err(bad)?,
                ) else {
                    return Err(UnpackError::entry(
                        shown,
                        EntryProblem::MissingDeviceNumbers,
                    ));
                };
                let node = if entry_type == EntryType::Char {
                    Node::Char { major, minor }
                } else {
                    Node::Block { major, minor }
                };
                entry::node(&mut self.root, &place, node, &meta)?;
            }
            EntryType::Fifo => entry::node(&mut self.root, &place, Node::Fifo, &meta)?,
            other => {
                let kind = char::from(other.as_byte());
                return Err(UnpackError::entry(
                    shown,
                    EntryProblem::UnsupportedType { kind },
                ));
            }
        }
        Ok(())
    }

    /// Refuses a regular file, before it is created, when its declared size is over the
    /// file limit or would take the layer over its limit: its content written so far (a
    /// sparse file's holes are written as zeros), or the stream up to the end of its content.
    fn check_size(&self, size: u64, content_end: u64, shown: &str) -> Result<(), UnpackError> {
        if size > self.limits.max_file_bytes {
            let problem = EntryProblem::FileTooLarge {
                size,
                max: self.limits.max_file_bytes,
            };
            return Err(UnpackError::entry(shown, problem));
        }
        let max = self.limits.max_total_bytes;
        if self.stats.bytes.saturating_add(size) > max || content_end > max {
            return Err(UnpackError::TooManyBytes {
                path: Some(shown.to_owned()),
                max,
            });
        }
        Ok(())
    }

    /// The directory an entry goes into, made if missing.
    fn parent(&mut self, path: &EntryPath, shown: &str) -> Result<OwnedFd, UnpackError> {
        self.root.dir(path.parent(), true).map_err(|e| match e {
            WalkError::Symlink(parent) => {
                UnpackError::entry(shown, EntryProblem::SymlinkParent { parent })
            }
            WalkError::NotDirectory(parent) | WalkError::Missing(parent) => {
                UnpackError::entry(shown, EntryProblem::ParentNotDirectory { parent })
            }
            WalkError::Io(op, source) => UnpackError::Io {
                path: shown.to_owned(),
                op,
                source,
            },
        })
    }

    fn whiteout(
        &mut self,
        path: &EntryPath,
        wh: Whiteout<'_>,
        shown: &str,
    ) -> Result<(), UnpackError> {
        match wh {
            Whiteout::AufsMeta => {
                tracing::debug!(entry = shown, "aufs metadata entry ignored");
                Ok(())
            }
            Whiteout::Opaque => {
                let dir = self.parent(path, shown)?;
                whiteout::opaque(&dir, shown)
            }
            Whiteout::Remove(name) => {
                let place = Place {
                    dir: self.parent(path, shown)?,
                    name,
                    path: shown,
                };
                whiteout::remove(&mut self.root, &place)
            }
        }
    }

    fn symlink_target<R: Read>(
        &self,
        entry: &tar::Entry<'_, R>,
        shown: &str,
    ) -> Result<OsString, UnpackError> {
        let target = entry.link_name_bytes().unwrap_or_default();
        let problem = if target.is_empty() {
            Some(PathProblem::Empty)
        } else if target.contains(&0) {
            Some(PathProblem::Nul)
        } else if target.len() > self.limits.max_path_bytes {
            Some(PathProblem::TooLong {
                len: target.len(),
                max: self.limits.max_path_bytes,
            })
        } else {
            None
        };
        if let Some(problem) = problem {
            let target = String::from_utf8_lossy(&target).into_owned();
            return Err(UnpackError::entry(
                shown,
                EntryProblem::SymlinkTarget { target, problem },
            ));
        }
        Ok(OsStr::from_bytes(&target).to_owned())
    }

    fn hard_link<R: Read>(
        &mut self,
        entry: &tar::Entry<'_, R>,
        place: &Place<'_>,
    ) -> Result<(), UnpackError> {
        let raw = entry.link_name_bytes().unwrap_or_default();
        let shown_target = String::from_utf8_lossy(&raw).into_owned();
        let fail = |problem| {
            UnpackError::entry(
                place.path,
                EntryProblem::HardLink {
                    target: shown_target.clone(),
                    problem,
                },
            )
        };
        let target = EntryPath::parse(&raw, self.limits.max_path_bytes).map_err(|p| match p {
            PathProblem::DotDot => fail(LinkProblem::LeavesLayer),
            p => fail(LinkProblem::Invalid(p)),
        })?;
        let Some(target_name) = target.name() else {
            return Err(fail(LinkProblem::Directory));
        };
        let target_dir = self.root.dir(target.parent(), false).map_err(|e| match e {
            WalkError::Symlink(parent) => fail(LinkProblem::SymlinkParent { parent }),
            WalkError::NotDirectory(parent) => fail(LinkProblem::ParentNotDirectory { parent }),
            WalkError::Missing(_) => fail(LinkProblem::Missing),
            WalkError::Io(op, source) => UnpackError::Io {
                path: place.path.to_owned(),
                op,
                source,
            },
        })?;
        let stat = existing(&target_dir, target_name)
            .map_err(UnpackError::io(place.path, "inspect the hard link target"))?
            .ok_or_else(|| fail(LinkProblem::Missing))?;
        if kind(&stat) == SFlag::S_IFDIR {
            return Err(fail(LinkProblem::Directory));
        }
        entry::hard_link(&mut self.root, place, &target_dir, target_name, &stat)
    }

    /// Sets each listed directory's time, now that its children exist. A directory that a
    /// later entry removed or replaced is skipped.
    fn set_dir_times(&mut self) -> Result<(), UnpackError> {
        for (components, mtime) in std::mem::take(&mut self.dir_times) {
            let Some((name, parent)) = components.split_last() else {
                continue;
            };
            let dir = match self.root.dir(parent, false) {
                Ok(dir) => dir,
                Err(WalkError::Io(op, source)) => {
                    return Err(UnpackError::Io {
                        path: display(&components),
                        op,
                        source,
                    });
                }
                Err(_) => continue,
            };
            let shown = display(&components);
            match existing(&dir, name).map_err(UnpackError::io(&shown, "inspect the directory"))? {
                Some(st) if kind(&st) == SFlag::S_IFDIR => {
                    set_time_at(&dir, name, &mtime).map_err(|e| {
                        UnpackError::io(&shown, "set the modification time")(e.into())
                    })?;
                }
                _ => {}
            }
        }
        Ok(())
    }
}
