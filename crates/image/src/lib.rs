//! Images: reference parsing and normalisation, registry host resolution (containerd-style
//! `hosts.toml`), pulling into a verified content store, and safe unpacking of layers into
//! overlay snapshots.
//!
//! On-disk layout under the daemon's root:
//!
//! ```text
//! content/blobs/sha256/<hex>   verified blobs: manifests, indexes, configs, compressed layers
//! content/ingest/<unique>      downloads in progress (removed at startup)
//! snapshots/<chain-id hex>/fs  one unpacked layer each, an overlayfs lower directory
//! snapshots/.tmp-<unique>/     unpacks in progress (moved to the trash at startup)
//! trash/<unique>               removed snapshots and blobs, deleted in the background
//! ```
//!
//! Removal never waits for a deletion: what is removed is renamed into `trash/` (see
//! [`trash`]), and a thread of its own deletes it there.
//!
//! Image records (ID = config digest, tags, repo digests, chain IDs) live in the metadata
//! store (`berth-store`); an image is recorded only after all its content is in place.

#![deny(unsafe_code)]

pub mod archive;
pub mod content;
pub mod digest;
pub mod error;
pub mod fsusage;
pub mod hosts;
pub mod layer;
pub mod manager;
pub mod manifest;
mod pull;
mod record;
pub mod reference;
pub mod registry;
pub mod snapshots;
pub mod trash;
pub mod unpack;

pub use archive::{ArchiveError, ImportOptions};
pub use digest::Digest;
pub use error::ImageError;
pub use manager::{ImageManager, ImageSettings, ImageStats};
pub use registry::{Credentials, CredentialsError};
