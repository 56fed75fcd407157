//! Why an image archive was refused. Digest and size mismatches, oversized documents and
//! unusable image documents are the [`ImageError`](crate::ImageError) variants a pull
//! reports for the same faults; these are the faults only an archive can have.

use crate::digest::Digest;
use crate::reference::ReferenceError;

/// What is wrong with an image archive (or its stream).
#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    /// The archive's bytes could not be read: the sender's stream failed or the tar is
    /// malformed.
    #[error("cannot read the archive: {source}")]
    Read {
        /// The stream's or the tar parser's error.
        source: std::io::Error,
    },
    /// An entry's name could never be a path inside the archive (`..`, absolute, NUL, not
    /// UTF-8, too long).
    #[error("archive entry {name:?}: {problem}")]
    BadName {
        /// The name, cut to 256 bytes.
        name: String,
        /// What is wrong with it.
        problem: &'static str,
    },
    /// A link entry points outside the archive, at nothing, or in a loop.
    #[error("archive entry {name:?} links to {target:?}: {problem}")]
    BadLink {
        /// The link's name.
        name: String,
        /// Its target as written, cut to 256 bytes.
        target: String,
        /// What is wrong with it.
        problem: &'static str,
    },
    /// Two entries have the same name.
    #[error("archive entry {name:?} appears twice")]
    Duplicate {
        /// The name.
        name: String,
    },
    /// An entry of a kind no image archive has (device, FIFO, sparse file).
    #[error("archive entry {name:?} is a {kind}, which no image archive holds")]
    UnsupportedEntry {
        /// The name.
        name: String,
        /// The tar entry type.
        kind: String,
    },
    /// More entries than [`MAX_ENTRIES`](super::MAX_ENTRIES).
    #[error("the archive has more than {limit} entries")]
    TooManyEntries {
        /// The limit.
        limit: u64,
    },
    /// A `blobs/sha256/<name>` entry whose name is no sha256 digest.
    #[error(
        "archive entry {name:?} is under blobs/sha256/ but its name is not 64 lowercase hex digits"
    )]
    BadBlobName {
        /// The name.
        name: String,
    },
    /// More data than tar padding follows the end of the archive.
    #[error("more than {limit} bytes follow the end of the tar archive")]
    TrailingData {
        /// Bytes allowed after the end-of-archive blocks.
        limit: u64,
    },
    /// Neither `index.json` (OCI image layout) nor `manifest.json` (`docker save`).
    #[error("not an image archive: it has neither index.json (OCI image layout) nor manifest.json (docker save)")]
    NotAnImageArchive,
    /// The archive's index or manifest.json lists no image.
    #[error("the archive lists no image")]
    NoImages,
    /// `manifest.json` names a file the archive does not have.
    #[error("{referenced_by} names {name:?}, which is not in the archive")]
    MissingEntry {
        /// The archive path named.
        name: String,
        /// Where it is named, e.g. `manifest.json entry 1 (Layers)`.
        referenced_by: String,
    },
    /// A descriptor names a blob the archive does not have.
    #[error("{referenced_by} names blob {digest}, which is not in the archive")]
    MissingBlob {
        /// The blob's digest.
        digest: Digest,
        /// Where it is named.
        referenced_by: String,
    },
    /// An image name in the archive is no valid reference.
    #[error("{referenced_by}: image name {name:?}: {source}")]
    BadReference {
        /// The name, cut to 256 bytes.
        name: String,
        /// Where it was found.
        referenced_by: String,
        /// Why it does not parse.
        source: ReferenceError,
    },
    /// An image name by digest whose digest is not the one of the manifest it names.
    #[error(
        "{referenced_by}: image name {name:?} names digest {named}, but the entry is {actual}"
    )]
    ReferenceDigestMismatch {
        /// The name.
        name: String,
        /// Where it was found.
        referenced_by: String,
        /// The digest in the name.
        named: String,
        /// The digest of the entry.
        actual: Digest,
    },
    /// An image index inside an image index inside `index.json`.
    #[error("{referenced_by}: image indexes nest deeper than berth reads")]
    NestedTooDeep {
        /// The index entry.
        referenced_by: String,
    },
}
