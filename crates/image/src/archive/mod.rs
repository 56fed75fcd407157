//! Image archives: importing `docker save` archives and OCI image layout archives, and
//! exporting images as OCI image layout archives that `docker load` reads too.
//!
//! An import is as careful as a pull ([`import`]): the archive is read once as a stream
//! ([`stage`]); no entry name ever becomes a host path ([`names`]: every file goes to a
//! pending blob of the content store, named by a generated name, and is known by its
//! digest); `blobs/sha256/<hex>` entries must hash to their name; documents are bounded by
//! [`MAX_DOCUMENT_SIZE`](crate::manifest::MAX_DOCUMENT_SIZE) and descriptor sizes checked
//! ([`plan`]); layers go through the same safe unpack as a pull's, and their diff IDs must
//! be the config's; the images become visible, with their tags, only when everything is in
//! place, and a refused archive leaves nothing behind.

mod error;
mod export;
mod import;
mod names;
mod plan;
mod stage;

pub use error::ArchiveError;
pub use export::Export;
pub use import::ImportOptions;
pub use names::MAX_NAME_BYTES;
pub use plan::{ANNOTATION_IMAGE_NAME, ANNOTATION_REF_NAME};
pub use stage::{MAX_DOCUMENTS_BYTES, MAX_HEADER_BYTES};

/// Most entries one archive may have (a `docker save` archive has about four per layer).
pub const MAX_ENTRIES: u64 = 100_000;

/// Bytes accepted after the end of the tar archive (its padding to a record).
pub const MAX_TRAILING_BYTES: u64 = 1 << 20;

#[cfg(test)]
mod tests;
