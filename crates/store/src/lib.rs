//! Metadata store of berthd: typed, versioned records over [sled].
//!
//! The database lives in `<root>/metadata` (mode 0700), opened by [`Store::open`]. It holds
//! what berthd cannot learn again from the host after a restart: which sandboxes, containers
//! and images exist and how they were asked for. Everything else is derived (see below).
//!
//! # Trees and keys
//!
//! | tree         | key                                                   | value                                | version |
//! |--------------|-------------------------------------------------------|--------------------------------------|---------|
//! | `meta`       | `schema_version`                                      | `u16` big-endian, no envelope        | schema 1 ([`SCHEMA_VERSION`]) |
//! | `sandboxes`  | sandbox id, 64 lowercase hex                          | envelope + [`SandboxRecord`] JSON    | 1       |
//! | `containers` | container id, 64 lowercase hex                        | envelope + [`ContainerRecord`] JSON  | 1       |
//! | `images`     | image id `sha256:<64 hex>` (digest of the image config) | envelope + [`ImageRecord`] JSON    | 2       |
//! | `image_refs` | normalised reference: `docker.io/library/busybox:latest` or `docker.io/library/busybox@sha256:<hex>` | image id, UTF-8, no envelope | — |
//!
//! Keys are UTF-8 strings compared bytewise, so all ids sharing a prefix sit next to each
//! other and [`View::find_by_prefix`] is a range scan. References are stored as given; the
//! caller normalises them (full registry host, `library/` for Docker Hub, explicit `:latest`).
//! `image_refs` is an index: every entry mirrors one entry of an image's `repo_tags` or
//! `repo_digests`, and it exists so that resolving a tag is one lookup instead of a scan. The
//! two are only changed together (see *Concurrency* below).
//!
//! # Value encoding
//!
//! ```text
//! byte 0      format tag: 0x01 = JSON body (serde_json); every other value is reserved
//! bytes 1..3  record version, u16 big-endian
//! bytes 3..   body: the record as a JSON object in the shape of that version
//! ```
//!
//! Raw CRI configs (`config` fields) are protobuf bytes stored as one base64 string.
//! Timestamps are `i64` nanoseconds since the Unix epoch.
//!
//! Reading a value checks, in order: length ≥ 3 and the format tag
//! ([`StoreError::Decode`]), the version — 0 or above the version this build writes is
//! [`StoreError::UnsupportedVersion`] naming tree, key and version — then the body, then that
//! the record's id equals its key ([`StoreError::Decode`] again). Nothing in this path panics
//! on bad bytes.
//!
//! # Record versions
//!
//! | record            | current | history |
//! |-------------------|---------|---------|
//! | [`SandboxRecord`]   | 1 | — |
//! | [`ContainerRecord`] | 1 | — |
//! | [`ImageRecord`]     | 2 | v1: `size` was a decimal string, and there was no `pinned` field. Read as v2 with `size` parsed and `pinned = false`. |
//!
//! Older versions are upgraded in memory when read ([`Record::decode_version`]) and written
//! in the current version the next time the record is stored; there is no bulk rewrite. A new
//! field with `#[serde(default)]` needs no version bump (older readers ignore fields they do
//! not know, newer ones fill the default). Renaming a field, changing its type or its meaning
//! does: bump `VERSION`, keep a private struct for the old shape and convert it, as
//! `ImageRecord` does for v1. Downgrading berthd over records it cannot read fails on those
//! records with [`StoreError::UnsupportedVersion`]; the rest keep working.
//!
//! The schema version in `meta` covers the set of trees and their key formats. A new database
//! gets [`SCHEMA_VERSION`]; a database with a newer one is refused at open
//! ([`StoreError::SchemaTooNew`]), since keys may mean something else there.
//!
//! # Stored by the runtime core, derived from it
//!
//! - Container run state: `started_at` and `exit` are written through by berthd's runtime
//!   core when StartContainer runs and when the shim reports the exit (or dies without
//!   reporting it), so the state survives a reboot that wipes the shim's files;
//!   [`ContainerRecord::state`] derives created / running / exited from them.
//! - Operations in progress: `intent` on both records ([`SandboxIntent`], [`ContainerIntent`]),
//!   written before the host is touched and cleared when the operation is complete.
//! - Which containers belong to a sandbox: `ContainerRecord::sandbox_id`; berthd builds its
//!   in-memory registry (IDs, prefixes, names, sandbox → containers) from [`View::list`] at
//!   start and never scans the store again.
//! - Image layers and snapshots: from the content and snapshot stores, keyed by the
//!   `chain_ids` an image record lists.
//!
//! # State machines
//!
//! Sandbox state is stored ([`SandboxState`], checked by [`SandboxState::can_become`] and
//! [`SandboxRecord::transition`]):
//!
//! ```text
//!  RunPodSandbox          StopPodSandbox, or a failed setup/recovery     RemovePodSandbox
//!  (all set up) ──▶ Ready ─────────────────────────────────────▶ NotReady ──────────────▶ (removed)
//! ```
//!
//! Container state comes from the record ([`ContainerState`], with `can_start`, `can_stop`,
//! `can_exec`):
//!
//! ```text
//!  CreateContainer          StartContainer           process exits
//!  ───────────────▶ Created ──────────────▶ Running ───────────────▶ Exited
//!                                              │
//!                                              └─ probe failed ─▶ Unknown
//! ```
//!
//! # Concurrency and durability
//!
//! - Reads take no lock.
//! - [`Table`] writes (sandboxes, containers) hold a lock on their key, so
//!   [`Table::update`]'s closure sees and replaces the latest record, and writers of
//!   different keys never wait for each other.
//! - Image writes ([`Store::put_image_with_refs`], [`Store::update_image`],
//!   [`Store::remove_image`], [`Store::set_ref`], [`Store::remove_ref`]) change `images` and
//!   `image_refs` in one sled transaction, so a crash cannot leave an index entry pointing at
//!   a removed image. They are serialised by one image write lock, because moving a tag
//!   touches two image records and the index; they are rare (pull, tag, remove) and hold the
//!   lock only for in-memory sled work and the flush.
//! - Persist first, then swap: a write returns once sled holds it (and has fsynced it, with
//!   the default [`StoreOptions::flush_each_write`]). Callers change their in-memory copies
//!   only after `Ok`.
//! - Removes are idempotent and report whether there was something to remove.
//!
//! # Corrupt records
//!
//! [`View::get`] returns the decode error for its key. [`View::list`] logs undecodable records
//! at `warn` and skips them, so one bad value does not hide every sandbox from kubelet;
//! [`View::list_with_errors`] returns each entry's own result for recovery code that wants to
//! remove or report them.

#![deny(unsafe_code)]
#![warn(missing_docs)]

mod codec;
mod error;
mod images;
mod locks;
mod record;
mod store;
mod table;

pub use codec::{decode_json, Record, FORMAT_JSON, HEADER_LEN};
pub use error::{DecodeError, StoreError};
pub use record::{
    ContainerExit, ContainerIntent, ContainerRecord, ContainerState, ImageRecord, SandboxIntent,
    SandboxRecord, SandboxState,
};
pub use store::{Store, StoreOptions, METADATA_DIR, SCHEMA_VERSION};
pub use table::{Table, View};

/// Names of the sled trees.
pub mod trees {
    /// Store-wide metadata (`schema_version`).
    pub const META: &str = "meta";
    /// [`crate::SandboxRecord`]s by sandbox id.
    pub const SANDBOXES: &str = "sandboxes";
    /// [`crate::ContainerRecord`]s by container id.
    pub const CONTAINERS: &str = "containers";
    /// [`crate::ImageRecord`]s by image id.
    pub const IMAGES: &str = "images";
    /// Normalised reference → image id.
    pub const IMAGE_REFS: &str = "image_refs";
}

#[cfg(test)]
mod tests;
