//! Opening the database and handing out the typed tables.

use std::fmt;
use std::fs;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use crate::error::{DecodeError, StoreError};
use crate::record::{ContainerRecord, ImageRecord, SandboxRecord};
use crate::table::{Table, View};
use crate::trees;

/// The schema version this build writes and reads: the set of trees and their key formats.
/// Record bodies are versioned separately, per record.
pub const SCHEMA_VERSION: u16 = 1;

/// Key of the schema version in the `meta` tree.
pub(crate) const SCHEMA_KEY: &str = "schema_version";

/// Name of the database directory under berthd's root directory.
pub const METADATA_DIR: &str = "metadata";

/// Tuning for [`Store::open_with`].
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct StoreOptions {
    /// Upper bound of sled's page cache, in bytes. Default 16 MiB: the metadata is small, and
    /// sled's own default (1 GiB) would let berthd's memory grow for nothing.
    pub cache_capacity: u64,
    /// Flush (fsync) after every write, so a record that a CRI call reported as created
    /// survives a crash of berthd or the host. Default `true`. When `false`, sled flushes in the
    /// background every 500 ms and [`Store::flush`] forces it.
    pub flush_each_write: bool,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            cache_capacity: 16 << 20,
            flush_each_write: true,
        }
    }
}

impl StoreOptions {
    /// Set [`StoreOptions::cache_capacity`].
    pub fn with_cache_capacity(mut self, bytes: u64) -> Self {
        self.cache_capacity = bytes;
        self
    }

    /// Set [`StoreOptions::flush_each_write`].
    pub fn with_flush_each_write(mut self, flush: bool) -> Self {
        self.flush_each_write = flush;
        self
    }
}

/// The metadata store. Cheap to clone; clones share the database and the locks.
#[derive(Clone)]
pub struct Store {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    path: PathBuf,
    db: sled::Db,
    sandboxes: Table<SandboxRecord>,
    containers: Table<ContainerRecord>,
    pub(crate) images: View<ImageRecord>,
    pub(crate) image_refs: sled::Tree,
    /// Serialises all writes to `images` and `image_refs` (see the crate docs).
    image_writes: Mutex<()>,
    pub(crate) flush_each_write: bool,
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.inner.path)
            .finish_non_exhaustive()
    }
}

/// How long opening waits for sled's file lock to be released.
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

impl Store {
    /// Open (or create) the store in `<root>/metadata` with default options.
    pub fn open(root: &Path) -> Result<Store, StoreError> {
        Store::open_with(root, &StoreOptions::default())
    }

    /// Open (or create) the store in `<root>/metadata`.
    ///
    /// Creates the directory with mode 0700 (and resets the mode of an existing one), opens
    /// sled, and checks the schema version: a new database gets [`SCHEMA_VERSION`]; one with a
    /// newer version is refused with [`StoreError::SchemaTooNew`].
    pub fn open_with(root: &Path, options: &StoreOptions) -> Result<Store, StoreError> {
        let path = root.join(METADATA_DIR);
        create_private_dir(&path)?;
        // sled releases its file lock when the last handle goes, which its flusher thread
        // may hold a moment after a store is dropped: a reopen in the same process waits
        // for it briefly. Another live process keeps the lock, and the open then fails.
        let deadline = std::time::Instant::now() + LOCK_WAIT;
        let db = loop {
            match sled::Config::new()
                .path(&path)
                .cache_capacity(options.cache_capacity)
                .open()
            {
                Ok(db) => break db,
                Err(sled::Error::Io(err))
                    if err.to_string().contains("could not acquire lock")
                        && std::time::Instant::now() < deadline =>
                {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                Err(source) => {
                    return Err(StoreError::Open {
                        path: path.clone(),
                        source,
                    })
                }
            }
        };
        check_schema(&db.open_tree(trees::META)?, &path)?;
        let flush = options.flush_each_write;
        let inner = Inner {
            sandboxes: Table::new(db.open_tree(trees::SANDBOXES)?, flush),
            containers: Table::new(db.open_tree(trees::CONTAINERS)?, flush),
            images: View::new(db.open_tree(trees::IMAGES)?),
            image_refs: db.open_tree(trees::IMAGE_REFS)?,
            image_writes: Mutex::new(()),
            flush_each_write: flush,
            path,
            db,
        };
        Ok(Store {
            inner: Arc::new(inner),
        })
    }

    /// The database directory (`<root>/metadata`).
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Pod sandboxes, keyed by sandbox id.
    pub fn sandboxes(&self) -> &Table<SandboxRecord> {
        &self.inner.sandboxes
    }

    /// Containers, keyed by container id.
    pub fn containers(&self) -> &Table<ContainerRecord> {
        &self.inner.containers
    }

    /// Images, keyed by image id. Read-only: image writes go through the `Store` methods
    /// (`put_image_with_refs`, `update_image`, `remove_image`, `set_ref`, `remove_ref`) so the
    /// `image_refs` index stays in step.
    pub fn images(&self) -> &View<ImageRecord> {
        &self.inner.images
    }

    /// Write all buffered changes to disk and fsync. Returns the number of bytes flushed.
    pub fn flush(&self) -> Result<usize, StoreError> {
        Ok(self.inner.db.flush()?)
    }

    /// Bytes the database takes on disk.
    pub fn size_on_disk(&self) -> Result<u64, StoreError> {
        Ok(self.inner.db.size_on_disk()?)
    }

    pub(crate) fn lock_image_writes(&self) -> MutexGuard<'_, ()> {
        // The mutex guards no data, so a panic under it leaves nothing inconsistent.
        self.inner
            .image_writes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn flush_after_write(&self) -> Result<(), StoreError> {
        if self.inner.flush_each_write {
            self.inner.db.flush()?;
        }
        Ok(())
    }

    #[cfg(test)]
    pub(crate) fn raw_tree(&self, name: &str) -> sled::Tree {
        self.inner.db.open_tree(name).unwrap()
    }
}

fn create_private_dir(path: &Path) -> Result<(), StoreError> {
    let fail = |source| StoreError::CreateDir {
        path: path.to_owned(),
        source,
    };
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
        .map_err(fail)?;
    fs::set_permissions(path, fs::Permissions::from_mode(0o700)).map_err(fail)
}

/// Write the schema version into a new database; refuse a newer one.
fn check_schema(meta: &sled::Tree, path: &Path) -> Result<(), StoreError> {
    let corrupt = |source| StoreError::Decode {
        tree: trees::META,
        key: SCHEMA_KEY.to_owned(),
        source,
    };
    let Some(stored) = meta.get(SCHEMA_KEY)? else {
        meta.insert(SCHEMA_KEY, &SCHEMA_VERSION.to_be_bytes())?;
        meta.flush()?;
        return Ok(());
    };
    let bytes: [u8; 2] = stored.as_ref().try_into().map_err(|_| {
        corrupt(DecodeError::BadLength {
            expected: 2,
            found: stored.len(),
        })
    })?;
    let found = u16::from_be_bytes(bytes);
    if found > SCHEMA_VERSION {
        return Err(StoreError::SchemaTooNew {
            path: path.to_owned(),
            found,
            supported: SCHEMA_VERSION,
        });
    }
    if found == 0 {
        return Err(StoreError::UnsupportedVersion {
            tree: trees::META,
            key: SCHEMA_KEY.to_owned(),
            version: found,
            supported: SCHEMA_VERSION,
        });
    }
    // Schema 1 is the first; upgrades from older schemas go here when there are any.
    Ok(())
}
