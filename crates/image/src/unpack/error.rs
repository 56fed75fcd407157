//! Why a layer could not be unpacked. Entry errors name the entry as written in the archive.

use std::io;
use std::path::PathBuf;

/// A layer that could not be unpacked. The caller deletes the layer directory.
#[derive(Debug, thiserror::Error)]
pub enum UnpackError {
    /// The layer's media type is not a tar layer berth can decompress.
    #[error("unsupported layer media type {0:?}")]
    UnsupportedMediaType(String),
    /// The decompressor could not be set up.
    #[error("cannot start the {codec} decoder: {source}")]
    Decoder {
        /// `zstd`.
        codec: &'static str,
        /// Why.
        source: io::Error,
    },
    /// The layer directory could not be opened.
    #[error("cannot open layer directory {}: {source}", path.display())]
    Dest {
        /// The layer directory.
        path: PathBuf,
        /// Why.
        source: io::Error,
    },
    /// An entry is hostile or invalid.
    #[error("layer entry {path:?}: {problem}")]
    Entry {
        /// The entry name as written in the archive.
        path: String,
        /// What is wrong with it.
        problem: EntryProblem,
    },
    /// An entry's header has a field that does not parse.
    #[error("layer entry {path:?}: invalid header: {source}")]
    Header {
        /// The entry name as written in the archive.
        path: String,
        /// The parse error.
        source: io::Error,
    },
    /// A filesystem operation for an entry failed.
    #[error("layer entry {path:?}: cannot {op}: {source}")]
    Io {
        /// The entry name as written in the archive.
        path: String,
        /// What was being done, e.g. `create the file`.
        op: &'static str,
        /// The I/O error.
        source: io::Error,
    },
    /// The layer has more entries than [`Limits::max_entries`](super::Limits::max_entries).
    #[error("layer entry {path:?}: the layer has more than {max} entries (limit image.max_layer_entries)")]
    TooManyEntries {
        /// The first entry over the limit.
        path: String,
        /// The limit.
        max: u64,
    },
    /// The uncompressed layer, or the files it unpacks to, is larger than
    /// [`Limits::max_total_bytes`](super::Limits::max_total_bytes).
    #[error(
        "{}the layer is more than {max} bytes uncompressed (limit image.max_layer_bytes)",
        at_entry(path)
    )]
    TooManyBytes {
        /// The entry whose content was being read when the limit was reached; `None` when
        /// it was reached in headers, padding or after the end of the archive.
        path: Option<String>,
        /// The limit.
        max: u64,
    },
    /// The extension headers (PAX, GNU long names) before one entry are too large.
    #[error("layer extension headers for one entry take more than {max} bytes")]
    HeadersTooLarge {
        /// The limit.
        max: u64,
    },
    /// The archive is malformed or could not be read (including decompression errors).
    #[error("cannot read layer archive: {0}")]
    Tar(#[source] io::Error),
    /// The archive ends inside an entry's content.
    #[error("layer entry {path:?}: the archive ends inside its content ({got} of {size} bytes)")]
    Truncated {
        /// The entry's path (lossy UTF-8).
        path: String,
        /// The size its header gives.
        size: u64,
        /// What the archive held.
        got: u64,
    },
}

/// `layer entry "<path>": `, or where else the stream was.
fn at_entry(path: &Option<String>) -> String {
    match path {
        Some(path) => format!("layer entry {path:?}: "),
        None => "in headers, padding or after the end of the archive: ".to_owned(),
    }
}

impl UnpackError {
    pub(super) fn entry(path: &str, problem: EntryProblem) -> UnpackError {
        UnpackError::Entry {
            path: path.to_owned(),
            problem,
        }
    }

    pub(super) fn io(path: &str, op: &'static str) -> impl FnOnce(io::Error) -> UnpackError {
        let path = path.to_owned();
        move |source| UnpackError::Io { path, op, source }
    }
}

/// What is wrong with a name (entry name, symlink target or hard link target).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathProblem {
    /// A `..` component.
    #[error("path leaves the layer (\"..\" component)")]
    DotDot,
    /// Nothing but separators, or nothing at all.
    #[error("empty name")]
    Empty,
    /// A NUL byte (possible in PAX records).
    #[error("name contains a NUL byte")]
    Nul,
    /// Longer than [`Limits::max_path_bytes`](super::Limits::max_path_bytes).
    #[error("name is {len} bytes, more than the limit of {max}")]
    TooLong {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
}

/// What is wrong with a hard link's target.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LinkProblem {
    /// It has a `..` component.
    #[error("leaves the layer")]
    LeavesLayer,
    /// It is not a valid name.
    #[error("is invalid: {0}")]
    Invalid(PathProblem),
    /// Nothing of this layer is at that name.
    #[error("is not an earlier entry of this layer")]
    Missing,
    /// It names a directory (or the layer root).
    #[error("is a directory")]
    Directory,
    /// One of its parents is a symlink.
    #[error("goes through symlink {parent:?}")]
    SymlinkParent {
        /// The symlink, relative to the layer.
        parent: String,
    },
    /// One of its parents is not a directory.
    #[error("goes through non-directory {parent:?}")]
    ParentNotDirectory {
        /// The non-directory, relative to the layer.
        parent: String,
    },
}

/// What is wrong with one entry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EntryProblem {
    /// The entry name is invalid or leaves the layer.
    #[error(transparent)]
    Path(PathProblem),
    /// A non-directory entry names the layer root (`/`, `.`).
    #[error("names the layer root but is not a directory")]
    RootNotDirectory,
    /// A parent of the entry is a symlink (an earlier entry of this layer).
    #[error("parent {parent:?} is a symlink")]
    SymlinkParent {
        /// The symlink, relative to the layer.
        parent: String,
    },
    /// A parent of the entry is a file, device or FIFO.
    #[error("parent {parent:?} is not a directory")]
    ParentNotDirectory {
        /// The non-directory, relative to the layer.
        parent: String,
    },
    /// The hard link target is not acceptable.
    #[error("hard link target {target:?} {problem}")]
    HardLink {
        /// The target as written in the archive.
        target: String,
        /// What is wrong with it.
        problem: LinkProblem,
    },
    /// The symlink target is not a valid name.
    #[error("symlink target {target:?}: {problem}")]
    SymlinkTarget {
        /// The target as written in the archive.
        target: String,
        /// What is wrong with it.
        problem: PathProblem,
    },
    /// A whiteout (`.wh.<name>`) whose `<name>` is empty, `.` or `..`.
    #[error("whiteout of {name:?} does not name an entry of its directory")]
    BadWhiteout {
        /// The whited-out name.
        name: String,
    },
    /// A regular file larger than [`Limits::max_file_bytes`](super::Limits::max_file_bytes).
    #[error("file is {size} bytes, more than the limit of {max} (image.max_file_bytes)")]
    FileTooLarge {
        /// Its size.
        size: u64,
        /// The limit.
        max: u64,
    },
    /// `mknod` was refused for a device node.
    #[error("cannot create a device node: the host does not allow it (device nodes only where the host allows)")]
    DeviceNotPermitted,
    /// `mknod` was refused for the whiteout device.
    #[error("cannot create the overlay whiteout (character device 0:0): the host does not allow device nodes")]
    WhiteoutNotPermitted,
    /// A device entry without major/minor numbers (an old-style header).
    #[error("device entry has no major/minor numbers")]
    MissingDeviceNumbers,
    /// A uid or gid that does not fit 32 bits.
    #[error("owner {uid}:{gid} is out of range")]
    OwnerOutOfRange {
        /// The uid from the header.
        uid: u64,
        /// The gid from the header.
        gid: u64,
    },
    /// A tar entry type berth does not unpack (GNU volume headers, multi-volume parts, ...).
    #[error("unsupported entry type {kind:?}")]
    UnsupportedType {
        /// The type flag.
        kind: char,
    },
}
