//! Safe layer unpack: one OCI layer tar stream becomes one overlayfs lower directory.
//!
//! Each layer of an image is unpacked into its own, initially empty directory; overlayfs
//! stacks those directories later (`lowerdir=top:...:bottom`). The caller decompresses
//! ([`decompress`]) and hashes around the stream; [`apply_layer`] reads the uncompressed tar
//! to its very end (tar padding and trailing blocks included), so the caller's digest covers
//! every byte (anything after the end-of-archive blocks is read but not unpacked, and PAX
//! global headers are ignored). On error the caller deletes the layer directory: `apply_layer` does not roll
//! back what it already wrote.
//!
//! # Safety model
//!
//! Layer content is untrusted. Each entry is checked against these rules before anything of
//! it is written:
//!
//! - **Names.** An entry name is split on `/` and checked component by component: a `..`
//!   component anywhere, a NUL byte, an empty name or a name longer than
//!   [`Limits::max_path_bytes`] rejects the entry. Empty and `.` components are dropped.
//!   A leading `/` is stripped and the name is contained in the layer, as GNU tar and
//!   containerd do: `/etc/passwd` becomes `<layer>/etc/passwd`, never the host's file.
//! - **No symlink is ever followed.** The layer directory is opened once, and every entry is
//!   reached by walking its parent components with `openat(O_PATH | O_DIRECTORY |
//!   O_NOFOLLOW)` from that descriptor: each parent must be a real directory inside the
//!   layer. A parent that is a symlink (planted by an earlier entry) rejects the entry;
//!   missing parents are created as `0755` directories owned by the unpacking user (root).
//!   The final component is created relative to its parent's descriptor, exclusively:
//!   whatever an earlier entry left at that name is removed first (a directory only when the
//!   new entry is not a directory), and regular files are opened with `O_CREAT | O_EXCL |
//!   O_NOFOLLOW`, so content is never written through an existing symlink.
//! - **Symlink targets** are stored as they are: a target may point anywhere, because
//!   nothing follows it during unpack, and inside the container it resolves against the
//!   container's root.
//! - **Hard links** must name an earlier entry of this layer that is not a directory; the
//!   target is resolved with the same walk (so it cannot leave the layer or pass through a
//!   symlink) and linked with `linkat` without following.
//! - **Limits** ([`Limits`]) bound the entry count, each file's size, the uncompressed
//!   layer's size (the stream and the file content it unpacks to), name lengths and the size
//!   of PAX / GNU extension headers (read into memory by the tar parser: they are capped at
//!   1 MiB plus two path lengths per entry). They are checked as the stream is read: a file
//!   whose header declares too much is refused before it is created, and the stream is cut
//!   off one byte past the layer limit, so a decompression bomb costs at most that much
//!   reading and nothing beyond the limits is written.
//! - **Races.** Every operation is relative to a directory descriptor obtained by the
//!   no-follow walk. The few calls without a descriptor form (extended attributes on
//!   symlinks, device nodes and FIFOs; recursive removal of a replaced directory) use the
//!   parent's `/proc/self/fd/N/name` path, which keeps the verified parent and does not follow
//!   the final name (so `/proc` must be mounted). `chmod` of a device node or FIFO, which
//!   Linux cannot do without following, is `fchmodat` relative to the parent, on the node
//!   the entry just created. This relies on the layer directory being private to berth
//!   while it is unpacked: nothing else writes into it concurrently.
//!
//! # Metadata
//!
//! Owner (uid/gid from the header, PAX values included) is set on every entry type, symlinks
//! included; then extended attributes; then the mode, because `chown` clears setuid/setgid
//! bits. Modification times are set after content, and directories' times are set after the
//! whole layer, so later children do not disturb them. Hard links change nothing on the
//! inode they share.
//!
//! Extended attributes come from PAX `SCHILY.xattr.<name>` records (libarchive's encoded
//! `LIBARCHIVE.xattr.*` records are not read):
//! - `trusted.*` is never applied: it is host-privileged, and `trusted.overlay.*` would let a
//!   layer forge overlayfs metadata. Opaque directories come only from `.wh..wh..opq`.
//! - `security.*` (file capabilities, SELinux labels) is best effort: any failure is logged
//!   and skipped, so an unknown `security.selinux` label never fails a pull.
//! - Other namespaces (`user.*`, `system.*` ACLs): a filesystem that does not support them
//!   (`ENOTSUP`) or refuses them on that file type (`EPERM`) is logged and skipped; any
//!   other failure fails the entry.
//!
//! Device nodes (character and block) are created with `mknod`; where the host does not
//! allow it (`EPERM`, e.g. without `CAP_MKNOD`) the entry fails with a clear error rather
//! than being silently dropped. FIFOs are always created.
//!
//! # Overlay whiteout format
//!
//! Layers mark deletions the OCI way; they are converted to overlayfs' own format:
//! - `dir/.wh.name` → a character device `0:0` at `dir/name` (anything an earlier entry of
//!   this layer put there is removed first). `name` must be a plain name: `.wh..`, `.wh...`
//!   and `.wh.` are rejected.
//! - `dir/.wh..wh..opq` → extended attribute `trusted.overlay.opaque=y` on `dir` (created
//!   if needed): lower layers' contents of `dir` are hidden, this layer's are kept.
//! - other `.wh..wh.*` names (aufs metadata such as `.wh..wh.plnk`) are ignored.
//!
//! Whiteouts and opaque directories need root (`CAP_MKNOD`, `CAP_SYS_ADMIN` for `trusted.*`).

mod apply;
mod budget;
mod compression;
mod entry;
mod error;
mod meta;
mod path;
mod whiteout;

#[cfg(test)]
mod tests;

pub use apply::apply_layer;
pub use compression::{decompress, Compression};
pub use error::{EntryProblem, LinkProblem, PathProblem, UnpackError};

/// Bounds on what one layer may contain. berthd takes the first three from its
/// configuration (`[image]` in config/berth.toml, whose defaults are these).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Entries in the layer (after PAX / GNU extension headers are merged into their entry;
    /// whiteouts count).
    pub max_entries: u64,
    /// Bytes of the uncompressed layer: the tar stream as a whole (headers, content,
    /// padding and anything after the end-of-archive blocks), and the regular-file content
    /// it unpacks to (a sparse file's holes included, as they are written out).
    pub max_total_bytes: u64,
    /// Content of one regular file, in bytes.
    pub max_file_bytes: u64,
    /// Length of an entry name, a symlink target or a hard link target, in bytes.
    pub max_path_bytes: usize,
}

impl Limits {
    /// Default of [`max_entries`](Limits::max_entries): ten times the files of the largest
    /// common images (a full TeX Live or a CUDA development image has about 100,000).
    pub const DEFAULT_MAX_ENTRIES: u64 = 1_000_000;
    /// Default of [`max_total_bytes`](Limits::max_total_bytes): 16 GiB, above the largest
    /// layers seen in practice (CUDA and ML framework layers are a few GiB uncompressed),
    /// while one layer cannot fill more of a node's disk than that.
    pub const DEFAULT_MAX_TOTAL_BYTES: u64 = 16 << 30;
    /// Default of [`max_file_bytes`](Limits::max_file_bytes): 8 GiB, above the largest
    /// single files images carry (CUDA libraries of 1-2 GiB, model weight shards of up to
    /// 5 GB as commonly split).
    pub const DEFAULT_MAX_FILE_BYTES: u64 = 8 << 30;
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_entries: Self::DEFAULT_MAX_ENTRIES,
            max_total_bytes: Self::DEFAULT_MAX_TOTAL_BYTES,
            max_file_bytes: Self::DEFAULT_MAX_FILE_BYTES,
            max_path_bytes: 4096,
        }
    }
}

/// What [`apply_layer`] wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LayerStats {
    /// Entries read (whiteouts and ignored entries included).
    pub entries: u64,
    /// Regular-file content written, in bytes.
    pub bytes: u64,
}
