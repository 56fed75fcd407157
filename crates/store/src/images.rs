//! Image writes: the `images` tree and its `image_refs` index change together.
//!
//! Every write here holds the store's image write lock and changes both trees in one sled
//! transaction, so after a crash the index never names an image that is gone, and an image's
//! `repo_tags`/`repo_digests` always equal the index entries pointing at it. A reference names
//! at most one image: giving it to another image takes it off the first one's record.

use sled::transaction::{
    ConflictableTransactionError, TransactionError, TransactionResult, TransactionalTree,
};
use sled::Transactional;

use crate::codec;
use crate::error::{DecodeError, StoreError};
use crate::record::ImageRecord;
use crate::store::Store;
use crate::trees;

type TxResult<T> = Result<T, ConflictableTransactionError<StoreError>>;

impl Store {
    /// Store an image record and point each of its references at it, in one transaction.
    ///
    /// References the image had before but no longer lists are dropped from the index; a
    /// listed reference that named another image is moved and removed from that image's
    /// record.
    pub fn put_image_with_refs(&self, image: &ImageRecord) -> Result<(), StoreError> {
        let _writes = self.lock_image_writes();
        self.write_image(image)
    }

    /// Read-modify-write one image under the image write lock; reference changes made by `f`
    /// are applied to the index in the same transaction. [`StoreError::NotFound`] if absent.
    pub fn update_image<F, E>(&self, id: &str, f: F) -> Result<ImageRecord, E>
    where
        F: FnOnce(ImageRecord) -> Result<ImageRecord, E>,
        E: From<StoreError>,
    {
        let _writes = self.lock_image_writes();
        let updated = f(self.images().get(id)?)?;
        if updated.id != id {
            return Err(StoreError::KeyChanged {
                tree: trees::IMAGES,
                key: id.to_owned(),
                new_key: updated.id,
            }
            .into());
        }
        self.write_image(&updated)?;
        Ok(updated)
    }

    /// Remove an image and every reference to it, in one transaction. Idempotent: returns
    /// whether the record existed (dangling references are cleaned up either way).
    pub fn remove_image(&self, id: &str) -> Result<bool, StoreError> {
        let _writes = self.lock_image_writes();
        let indexed = self.refs_for(id)?;
        let existed = self.transaction(|images, refs| {
            let old = images.remove(id.as_bytes())?;
            let mut stale = indexed.clone();
            if let Some(value) = old.as_deref() {
                stale.extend(references_of(id, value));
            }
            for reference in &stale {
                if ref_target(refs, reference)?.as_deref() == Some(id) {
                    refs.remove(reference.as_bytes())?;
                }
            }
            Ok(old.is_some())
        })?;
        if existed || !indexed.is_empty() {
            self.flush_after_write()?;
        }
        Ok(existed)
    }

    /// Point `reference` at the image `image_id` and add it to that image's record. Returns
    /// the image it named before, if it moved. [`StoreError::NotFound`] if the image is absent.
    pub fn set_ref(&self, reference: &str, image_id: &str) -> Result<Option<String>, StoreError> {
        let _writes = self.lock_image_writes();
        let moved_from = self.transaction(|images, refs| {
            let Some(mut target) = read_image(images, image_id)? else {
                return Err(ConflictableTransactionError::Abort(StoreError::NotFound {
                    tree: trees::IMAGES,
                    key: image_id.to_owned(),
                }));
            };
            let previous = ref_target(refs, reference)?;
            refs.insert(reference.as_bytes(), image_id.as_bytes())?;
            let moved_from = previous.filter(|p| p != image_id);
            if let Some(owner) = &moved_from {
                detach(images, reference, owner)?;
            }
            target.add_reference(reference);
            write_image(images, &target)?;
            Ok(moved_from)
        })?;
        self.flush_after_write()?;
        Ok(moved_from)
    }

    /// The image id `reference` names, if any.
    pub fn resolve_ref(&self, reference: &str) -> Result<Option<String>, StoreError> {
        match self.inner.image_refs.get(reference)? {
            Some(value) => decode_ref(reference.as_bytes(), &value).map(Some),
            None => Ok(None),
        }
    }

    /// Drop `reference` from the index and from its image's record. Idempotent: returns the
    /// image it named, if any.
    pub fn remove_ref(&self, reference: &str) -> Result<Option<String>, StoreError> {
        let _writes = self.lock_image_writes();
        let owner = self.transaction(|images, refs| {
            let owner = match refs.remove(reference.as_bytes())? {
                Some(value) => Some(decode_ref(reference.as_bytes(), &value).map_err(abort)?),
                None => None,
            };
            if let Some(owner) = &owner {
                detach(images, reference, owner)?;
            }
            Ok(owner)
        })?;
        if owner.is_some() {
            self.flush_after_write()?;
        }
        Ok(owner)
    }

    /// Every reference the index points at `image_id`, in key order. Scans the index.
    pub fn refs_for(&self, image_id: &str) -> Result<Vec<String>, StoreError> {
        let mut out = Vec::new();
        for entry in self.inner.image_refs.iter() {
            let (key, value) = entry?;
            if value == image_id.as_bytes() {
                out.push(codec::key_text(&key));
            }
        }
        Ok(out)
    }

    /// Write `image` and sync the index to its references. Caller holds the image write lock.
    fn write_image(&self, image: &ImageRecord) -> Result<(), StoreError> {
        let id = image.id.as_str();
        let value = codec::encode(image)?;
        let wanted: Vec<&str> = image.references().collect();
        let indexed = self.refs_for(id)?;
        self.transaction(|images, refs| {
            let mut previous = indexed.clone();
            if let Some(old) = images.get(id.as_bytes())? {
                previous.extend(references_of(id, &old));
            }
            for reference in &previous {
                if !wanted.contains(&reference.as_str())
                    && ref_target(refs, reference)?.as_deref() == Some(id)
                {
                    refs.remove(reference.as_bytes())?;
                }
            }
            for reference in &wanted {
                let owner = refs.insert(reference.as_bytes(), id.as_bytes())?;
                if let Some(owner) = owner.filter(|o| o != id.as_bytes()) {
                    let owner = decode_ref(reference.as_bytes(), &owner).map_err(abort)?;
                    detach(images, reference, &owner)?;
                }
            }
            images.insert(id.as_bytes(), value.as_slice())?;
            Ok(())
        })?;
        self.flush_after_write()
    }

    /// Run `f` as one sled transaction over `images` and `image_refs`.
    fn transaction<T>(
        &self,
        f: impl Fn(&TransactionalTree, &TransactionalTree) -> TxResult<T>,
    ) -> Result<T, StoreError> {
        let result: TransactionResult<T, StoreError> =
            (&self.inner.images.tree, &self.inner.image_refs)
                .transaction(|(images, refs)| f(images, refs));
        result.map_err(|e| match e {
            TransactionError::Abort(e) => e,
            TransactionError::Storage(e) => StoreError::Sled(e),
        })
    }
}

fn abort(e: StoreError) -> ConflictableTransactionError<StoreError> {
    ConflictableTransactionError::Abort(e)
}

fn read_image(images: &TransactionalTree, id: &str) -> TxResult<Option<ImageRecord>> {
    match images.get(id.as_bytes())? {
        Some(value) => codec::decode(id.as_bytes(), &value)
            .map(Some)
            .map_err(abort),
        None => Ok(None),
    }
}

fn write_image(images: &TransactionalTree, image: &ImageRecord) -> TxResult<()> {
    let value = codec::encode(image).map_err(abort)?;
    images.insert(image.id.as_bytes(), value)?;
    Ok(())
}

/// Take `reference` off the record of `owner`. A missing or unreadable owner record is left
/// alone: the index entry moves regardless, and the bad record is reported when it is read.
fn detach(images: &TransactionalTree, reference: &str, owner: &str) -> TxResult<()> {
    let Some(value) = images.get(owner.as_bytes())? else {
        return Ok(());
    };
    match codec::decode::<ImageRecord>(owner.as_bytes(), &value) {
        Ok(mut record) => {
            if record.remove_reference(reference) {
                write_image(images, &record)?;
            }
        }
        Err(error) => {
            tracing::warn!(image = owner, reference, %error, "reference moved off an unreadable image record");
        }
    }
    Ok(())
}

/// The references listed in a stored image value; none if it cannot be decoded.
fn references_of(id: &str, value: &[u8]) -> Vec<String> {
    match codec::decode::<ImageRecord>(id.as_bytes(), value) {
        Ok(record) => record.references().map(str::to_owned).collect(),
        Err(_) => Vec::new(),
    }
}

/// The image id an index entry points at.
fn ref_target(refs: &TransactionalTree, reference: &str) -> TxResult<Option<String>> {
    match refs.get(reference.as_bytes())? {
        Some(value) => decode_ref(reference.as_bytes(), &value)
            .map(Some)
            .map_err(abort),
        None => Ok(None),
    }
}

fn decode_ref(reference: &[u8], value: &[u8]) -> Result<String, StoreError> {
    String::from_utf8(value.to_vec()).map_err(|_| StoreError::Decode {
        tree: trees::IMAGE_REFS,
        key: codec::key_text(reference),
        source: DecodeError::NotUtf8,
    })
}
