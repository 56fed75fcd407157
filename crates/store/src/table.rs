//! Typed handles over one sled tree: [`View`] reads, [`Table`] also writes.

use std::fmt;
use std::marker::PhantomData;
use std::ops::Deref;
use std::sync::Arc;

use crate::codec::{self, Record};
use crate::error::StoreError;
use crate::locks::KeyLocks;

/// Read access to the records of one tree. Reads take no lock.
pub struct View<R> {
    pub(crate) tree: sled::Tree,
    _record: PhantomData<fn() -> R>,
}

impl<R> fmt::Debug for View<R>
where
    R: Record,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("View").field("tree", &R::TREE).finish()
    }
}

impl<R: Record> View<R> {
    pub(crate) fn new(tree: sled::Tree) -> Self {
        View {
            tree,
            _record: PhantomData,
        }
    }

    /// The record under `key`; [`StoreError::NotFound`] if there is none.
    pub fn get(&self, key: &str) -> Result<R, StoreError> {
        self.try_get(key)?.ok_or_else(|| StoreError::NotFound {
            tree: R::TREE,
            key: key.to_owned(),
        })
    }

    /// The record under `key`, or `None`.
    pub fn try_get(&self, key: &str) -> Result<Option<R>, StoreError> {
        match self.tree.get(key)? {
            Some(value) => codec::decode(key.as_bytes(), &value).map(Some),
            None => Ok(None),
        }
    }

    /// Whether a value is stored under `key` (without decoding it).
    pub fn contains(&self, key: &str) -> Result<bool, StoreError> {
        Ok(self.tree.contains_key(key)?)
    }

    /// Number of stored values. Walks the tree (sled keeps no count).
    pub fn len(&self) -> usize {
        self.tree.len()
    }

    /// Whether the tree is empty.
    pub fn is_empty(&self) -> bool {
        self.tree.is_empty()
    }

    /// All records in key order.
    ///
    /// A value that cannot be decoded (corrupt, or written by a newer berthd) is logged at
    /// `warn` with its key and skipped, so one bad record does not hide all others from the List
    /// RPCs. A storage error fails the whole call. Use [`View::list_with_errors`] to act on the
    /// bad records (recovery does).
    pub fn list(&self) -> Result<Vec<R>, StoreError> {
        let mut records = Vec::new();
        for item in self.list_with_errors()? {
            match item {
                Ok(record) => records.push(record),
                Err(error) => {
                    tracing::warn!(tree = R::TREE, %error, "skipping unreadable record");
                }
            }
        }
        Ok(records)
    }

    /// All entries in key order, each decoded on its own: a bad value is an `Err` naming its
    /// key, next to the good ones. The outer `Err` is a storage error.
    pub fn list_with_errors(&self) -> Result<Vec<Result<R, StoreError>>, StoreError> {
        let mut out = Vec::new();
        for entry in self.tree.iter() {
            let (key, value) = entry?;
            out.push(codec::decode(&key, &value));
        }
        Ok(out)
    }

    /// The one record whose key starts with `prefix`, as crictl expects for truncated ids.
    ///
    /// A key equal to `prefix` wins outright. No match, or an empty prefix, is
    /// [`StoreError::NotFound`]; several matches are [`StoreError::Ambiguous`] with the count.
    pub fn find_by_prefix(&self, prefix: &str) -> Result<R, StoreError> {
        let not_found = || StoreError::NotFound {
            tree: R::TREE,
            key: prefix.to_owned(),
        };
        if prefix.is_empty() {
            return Err(not_found());
        }
        if let Some(exact) = self.try_get(prefix)? {
            return Ok(exact);
        }
        let mut found = None;
        let mut matches = 0usize;
        for key in self.tree.scan_prefix(prefix).keys() {
            let key = key?;
            matches += 1;
            if found.is_none() {
                found = Some(key);
            }
        }
        match (found, matches) {
            (Some(key), 1) => match self.tree.get(&key)? {
                Some(value) => codec::decode(&key, &value),
                // Removed between the scan and the read.
                None => Err(not_found()),
            },
            (None, _) => Err(not_found()),
            (Some(_), matches) => Err(StoreError::Ambiguous {
                tree: R::TREE,
                prefix: prefix.to_owned(),
                matches,
            }),
        }
    }
}

/// Read and write access to the records of one tree.
///
/// Every write to a key (`insert`, `put`, `update`, `remove`) holds that key's lock, so an
/// `update` closure sees and replaces the latest record: read-modify-write is atomic with
/// respect to all other writers through the store. Writes to different keys run in parallel.
/// A method returns only once sled holds the new value (and has flushed it to disk when the
/// store was opened with [`crate::StoreOptions::flush_each_write`]); callers update their
/// in-memory copies after that.
pub struct Table<R> {
    view: View<R>,
    locks: Arc<KeyLocks>,
    flush_each_write: bool,
}

impl<R: Record> fmt::Debug for Table<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Table").field("tree", &R::TREE).finish()
    }
}

impl<R> Deref for Table<R> {
    type Target = View<R>;

    fn deref(&self) -> &View<R> {
        &self.view
    }
}

impl<R: Record> Table<R> {
    pub(crate) fn new(tree: sled::Tree, flush_each_write: bool) -> Self {
        Table {
            view: View::new(tree),
            locks: Arc::new(KeyLocks::default()),
            flush_each_write,
        }
    }

    /// Store a new record; [`StoreError::AlreadyExists`] if its key is taken.
    pub fn insert(&self, record: &R) -> Result<(), StoreError> {
        let key = record.key();
        let value = codec::encode(record)?;
        let _guard = self.locks.lock(key.as_bytes());
        let swapped = self
            .view
            .tree
            .compare_and_swap(key, None::<&[u8]>, Some(value))?;
        if swapped.is_err() {
            return Err(StoreError::AlreadyExists {
                tree: R::TREE,
                key: key.to_owned(),
            });
        }
        self.flush()
    }

    /// Store a record, replacing any record under its key.
    pub fn put(&self, record: &R) -> Result<(), StoreError> {
        let key = record.key();
        let value = codec::encode(record)?;
        let _guard = self.locks.lock(key.as_bytes());
        self.view.tree.insert(key, value)?;
        self.flush()
    }

    /// Read the record under `key`, pass it to `f`, and store what `f` returns, all under the
    /// key's lock. Returns the stored record.
    ///
    /// [`StoreError::NotFound`] if there is no record. If `f` fails, nothing is written and its
    /// error is returned. `f` must keep the key ([`StoreError::KeyChanged`] otherwise).
    pub fn update<F, E>(&self, key: &str, f: F) -> Result<R, E>
    where
        F: FnOnce(R) -> Result<R, E>,
        E: From<StoreError>,
    {
        let _guard = self.locks.lock(key.as_bytes());
        let Some(old) = self.view.tree.get(key).map_err(StoreError::from)? else {
            return Err(StoreError::NotFound {
                tree: R::TREE,
                key: key.to_owned(),
            }
            .into());
        };
        let current = codec::decode(key.as_bytes(), &old)?;
        let updated = f(current)?;
        if updated.key() != key {
            return Err(StoreError::KeyChanged {
                tree: R::TREE,
                key: key.to_owned(),
                new_key: updated.key().to_owned(),
            }
            .into());
        }
        let value = codec::encode(&updated)?;
        // The key lock makes this swap succeed unless the tree was written behind the store's
        // back; the CAS turns that case into an error instead of a lost update.
        let swapped = self
            .view
            .tree
            .compare_and_swap(key, Some(old), Some(value))
            .map_err(StoreError::from)?;
        if swapped.is_err() {
            return Err(StoreError::Conflict {
                tree: R::TREE,
                key: key.to_owned(),
            }
            .into());
        }
        self.flush()?;
        Ok(updated)
    }

    /// Remove the record under `key`. Idempotent: returns whether there was one.
    pub fn remove(&self, key: &str) -> Result<bool, StoreError> {
        let _guard = self.locks.lock(key.as_bytes());
        let existed = self.view.tree.remove(key)?.is_some();
        if existed {
            self.flush()?;
        }
        Ok(existed)
    }

    fn flush(&self) -> Result<(), StoreError> {
        if self.flush_each_write {
            self.view.tree.flush()?;
        }
        Ok(())
    }
}
