//! Errors of the metadata store.
//!
//! Every variant names what failed: the tree, the key and, where it matters, the version or
//! path. The `Display` text is complete on its own (it includes the cause), so it can be shown
//! to a CRI client as is; the cause is also kept as [`std::error::Error::source`].

use std::path::PathBuf;

use crate::trees;

/// Everything that can go wrong in the store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The metadata directory could not be created or given mode 0700.
    #[error("failed to prepare metadata directory {path}: {source}")]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },

    /// sled could not open the database (already locked by another berthd, unreadable, ...).
    #[error("failed to open metadata store at {path}: {source}")]
    Open {
        /// The database directory.
        path: PathBuf,
        /// The sled error.
        #[source]
        source: sled::Error,
    },

    /// A read, write or flush in sled failed.
    #[error("metadata store I/O failed: {0}")]
    Sled(#[from] sled::Error),

    /// No record under this key.
    #[error("{} {key:?} not found", noun(tree))]
    NotFound {
        /// The tree that was searched.
        tree: &'static str,
        /// The key (or prefix) that was looked up.
        key: String,
    },

    /// `insert` found a record under this key already.
    #[error("{} {key:?} already exists", noun(tree))]
    AlreadyExists {
        /// The tree.
        tree: &'static str,
        /// The key that is taken.
        key: String,
    },

    /// A prefix lookup matched more than one key.
    #[error(
        "{} id prefix {prefix:?} is ambiguous: it matches {matches} records",
        noun(tree)
    )]
    Ambiguous {
        /// The tree.
        tree: &'static str,
        /// The prefix that was looked up.
        prefix: String,
        /// How many keys start with the prefix.
        matches: usize,
    },

    /// The stored bytes are not a valid record.
    #[error("corrupt {} record {key:?} in tree {tree}: {source}", noun(tree))]
    Decode {
        /// The tree.
        tree: &'static str,
        /// The key of the bad value (lossily decoded if the key itself is not UTF-8).
        key: String,
        /// What is wrong with the bytes.
        #[source]
        source: DecodeError,
    },

    /// The record was written in a version this build cannot read, usually by a newer berthd.
    #[error(
        "{} record {key:?} in tree {tree} has version {version}, which this berthd cannot read \
         (it reads versions up to {supported}); downgrading berthd over a newer store is not supported",
        noun(tree)
    )]
    UnsupportedVersion {
        /// The tree.
        tree: &'static str,
        /// The key.
        key: String,
        /// The version found in the envelope.
        version: u16,
        /// The newest version this build reads.
        supported: u16,
    },

    /// The database was created by a newer berthd with a different layout.
    #[error(
        "metadata store at {path} has schema version {found}, newer than {supported} which this \
         berthd supports; refusing to open it"
    )]
    SchemaTooNew {
        /// The database directory.
        path: PathBuf,
        /// The schema version stored in the `meta` tree.
        found: u16,
        /// The schema version of this build.
        supported: u16,
    },

    /// A record could not be serialised.
    #[error("failed to encode {} record {key:?}: {source}", noun(tree))]
    Encode {
        /// The tree.
        tree: &'static str,
        /// The key.
        key: String,
        /// The serde_json error.
        #[source]
        source: serde_json::Error,
    },

    /// An `update` closure returned a record with a different key.
    #[error("update of {} {key:?} changed its key to {new_key:?}", noun(tree))]
    KeyChanged {
        /// The tree.
        tree: &'static str,
        /// The key that was updated.
        key: String,
        /// The key of the record the closure returned.
        new_key: String,
    },

    /// The record changed underneath an update that held the key's lock: something wrote the
    /// tree without going through this store's handles.
    #[error(
        "{} {key:?} was changed concurrently outside the store's locks",
        noun(tree)
    )]
    Conflict {
        /// The tree.
        tree: &'static str,
        /// The key.
        key: String,
    },

    /// A sandbox state change that the state machine does not allow.
    #[error("sandbox {id:?} cannot go from {from} to {to}")]
    InvalidTransition {
        /// The sandbox id.
        id: String,
        /// The current state.
        from: crate::SandboxState,
        /// The requested state.
        to: crate::SandboxState,
    },
}

/// What one entry of a tree is called in messages.
fn noun(tree: &str) -> &str {
    match tree {
        trees::SANDBOXES => "sandbox",
        trees::CONTAINERS => "container",
        trees::IMAGES => "image",
        trees::IMAGE_REFS => "image reference",
        trees::META => "metadata entry",
        other => other,
    }
}

impl StoreError {
    /// The record (or prefix) does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(self, StoreError::NotFound { .. })
    }

    /// An `insert` hit an existing key.
    pub fn is_already_exists(&self) -> bool {
        matches!(self, StoreError::AlreadyExists { .. })
    }

    /// A prefix lookup matched several records.
    pub fn is_ambiguous(&self) -> bool {
        matches!(self, StoreError::Ambiguous { .. })
    }

    /// Stored data cannot be read by this build: corrupt bytes, an unknown record version or a
    /// newer schema.
    pub fn is_unreadable_data(&self) -> bool {
        matches!(
            self,
            StoreError::Decode { .. }
                | StoreError::UnsupportedVersion { .. }
                | StoreError::SchemaTooNew { .. }
        )
    }
}

/// What is wrong with a stored value. Wrapped in [`StoreError::Decode`], which adds tree and key.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// Fewer bytes than the fixed-size header (or fixed-size value) needs.
    #[error("value is {found} bytes long, expected at least {expected}")]
    Truncated {
        /// Bytes needed.
        expected: usize,
        /// Bytes found.
        found: usize,
    },

    /// A fixed-size value has the wrong length.
    #[error("value is {found} bytes long, expected exactly {expected}")]
    BadLength {
        /// Bytes expected.
        expected: usize,
        /// Bytes found.
        found: usize,
    },

    /// The envelope's first byte is not a known body format.
    #[error("unknown body format tag {0:#04x}")]
    UnknownFormat(u8),

    /// The JSON body does not match the record's shape for its version.
    #[error("invalid JSON body: {0}")]
    Json(#[from] serde_json::Error),

    /// `Record::decode_version` does not know this version.
    #[error("record version {0} is not known")]
    UnknownVersion(u16),

    /// An integer field of an older version did not parse.
    #[error("field `{field}` is not a valid integer: {source}")]
    BadInteger {
        /// The field name in the stored JSON.
        field: &'static str,
        /// The parse error.
        #[source]
        source: std::num::ParseIntError,
    },

    /// The record's own id differs from the key it is stored under.
    #[error("record id {found:?} does not match its key")]
    KeyMismatch {
        /// The id inside the record.
        found: String,
    },

    /// A value that must be UTF-8 text (an index entry) is not.
    #[error("value is not valid UTF-8")]
    NotUtf8,
}
