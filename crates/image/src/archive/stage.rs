//! Reading an archive stream once, front to back: every regular file becomes a pending blob
//! of the content store (hashed while it is written, closed, not yet visible), links are
//! remembered by name, and nothing is interpreted until the stream has ended, because a
//! `docker save` archive names its images in `manifest.json` after the layers it lists.
//!
//! Files with the same content are kept once. A `blobs/sha256/<hex>` entry must hash to
//! its name, or the archive is refused on the spot. Known documents (`manifest.json`,
//! `index.json`, `oci-layout`, `repositories`) larger than
//! [`MAX_DOCUMENT_SIZE`](crate::manifest::MAX_DOCUMENT_SIZE) are refused from their header,
//! before any of their bytes are read. Between two entries the tar parser reads only headers
//! and extension records, and that is capped ([`MAX_HEADER_BYTES`]) so a hostile PAX header
//! cannot make it allocate without bound. The documents read back while the images are
//! planned are bounded in all by [`MAX_DOCUMENTS_BYTES`].

use std::cell::Cell;
use std::collections::HashMap;
use std::io::Read;
use std::rc::Rc;

use tar::EntryType;

use super::error::ArchiveError;
use super::names::{follow, normalise, quoted, symlink_target};
use super::{MAX_ENTRIES, MAX_TRAILING_BYTES};
use crate::content::{ContentStore, Ingest};
use crate::digest::Digest;
use crate::error::ImageError;
use crate::manifest::MAX_DOCUMENT_SIZE;

/// Bytes the tar parser may read between the end of one entry's content and the start of
/// the next one's: the padding, the header blocks and PAX / GNU long-name records.
pub const MAX_HEADER_BYTES: u64 = 2 << 20;

/// Bytes of manifests, indexes and configs one archive may have read into memory (a
/// hundred images take about 1 MiB).
pub const MAX_DOCUMENTS_BYTES: u64 = 64 << 20;

/// Copy buffer for entry content.
const COPY_BUFFER: usize = 256 << 10;

/// Names of the documents of the two archive formats.
const DOCUMENTS: [&str; 4] = ["manifest.json", "index.json", "oci-layout", "repositories"];

/// A file of the archive, written to a pending blob.
#[derive(Debug)]
pub(crate) struct StagedBlob {
    /// The pending blob (closed).
    pub ingest: Ingest,
    /// Its first bytes (up to 4: enough to recognise a compression).
    pub head: Vec<u8>,
}

impl StagedBlob {
    /// Its size.
    pub fn len(&self) -> u64 {
        self.ingest.len()
    }
}

/// What an archive holds, by name and by content.
#[derive(Debug, Default)]
pub(crate) struct StagedArchive {
    /// Regular file name → digest of its content.
    files: HashMap<String, Digest>,
    /// Link name → the name it points to.
    links: HashMap<String, String>,
    /// Content by digest.
    blobs: HashMap<Digest, StagedBlob>,
    /// Bytes of documents read so far (they are held in memory while the images are
    /// planned).
    documents_read: Cell<u64>,
}

impl StagedArchive {
    /// The digest of the file `name` names, following links; `None` when there is no such
    /// file.
    pub fn file(&self, name: &str) -> Result<Option<&Digest>, ArchiveError> {
        let target = follow(name, |n| self.links.get(n).map(String::as_str))?;
        Ok(self.files.get(target))
    }

    /// The blob with content `digest`.
    pub fn blob(&self, digest: &Digest) -> Option<&StagedBlob> {
        self.blobs.get(digest)
    }

    /// Takes the blob `digest` out (to commit it); what is left is discarded on drop.
    pub fn take(&mut self, digest: &Digest) -> Option<StagedBlob> {
        self.blobs.remove(digest)
    }

    /// Whether the archive has a file (or link) `name`.
    pub fn has(&self, name: &str) -> bool {
        self.files.contains_key(name) || self.links.contains_key(name)
    }

    /// The content of the document blob `digest` (`what` names it in errors), at most
    /// [`MAX_DOCUMENT_SIZE`] bytes.
    pub fn read_document(
        &self,
        what: &str,
        digest: &Digest,
    ) -> Result<Option<Vec<u8>>, ImageError> {
        let Some(blob) = self.blobs.get(digest) else {
            return Ok(None);
        };
        if blob.len() > MAX_DOCUMENT_SIZE {
            return Err(ImageError::TooLarge {
                what: what.to_owned(),
                size: blob.len(),
                limit: MAX_DOCUMENT_SIZE,
            });
        }
        let read = self.documents_read.get() + blob.len();
        if read > MAX_DOCUMENTS_BYTES {
            return Err(ImageError::TooLarge {
                what: "the manifests, indexes and configs of the archive".into(),
                size: read,
                limit: MAX_DOCUMENTS_BYTES,
            });
        }
        self.documents_read.set(read);
        let path = blob.ingest.path();
        std::fs::read(path)
            .map(Some)
            .map_err(ImageError::io("read", path))
    }

    fn claim(&self, name: &str) -> Result<(), ArchiveError> {
        if self.has(name) {
            return Err(ArchiveError::Duplicate {
                name: name.to_owned(),
            });
        }
        Ok(())
    }
}

/// Reads the tar archive `input` to its end into pending blobs of `content`.
pub(crate) fn stage(input: impl Read, content: &ContentStore) -> Result<StagedArchive, ImageError> {
    let budget = Budget::default();
    let mut archive = tar::Archive::new(Budgeted {
        inner: input,
        budget: budget.clone(),
    });
    let mut staged = StagedArchive::default();
    let mut buffer = vec![0u8; COPY_BUFFER];
    let mut count = 0u64;
    {
        let mut entries = archive.entries().map_err(read_error)?;
        loop {
            budget.arm();
            let next = entries.next();
            budget.disarm();
            let mut entry = match next {
                None => break,
                Some(entry) => entry.map_err(|err| budget.error(err))?,
            };
            count += 1;
            if count > MAX_ENTRIES {
                return Err(ArchiveError::TooManyEntries { limit: MAX_ENTRIES }.into());
            }
            let raw_name = entry.path_bytes().into_owned();
            let name = normalise(&raw_name)?;
            let kind = entry.header().entry_type();
            match kind {
                EntryType::Directory | EntryType::XGlobalHeader => continue,
                EntryType::Regular | EntryType::Continuous => {
                    if name.is_empty() {
                        return Err(ArchiveError::BadName {
                            name: quoted(&raw_name),
                            problem: "a file needs a name",
                        }
                        .into());
                    }
                    staged.claim(&name)?;
                    let size = entry.size();
                    if DOCUMENTS.contains(&name.as_str()) && size > MAX_DOCUMENT_SIZE {
                        return Err(ImageError::TooLarge {
                            what: format!("{name} of the archive"),
                            size,
                            limit: MAX_DOCUMENT_SIZE,
                        });
                    }
                    let blob = copy_entry(&mut entry, content, &mut buffer)?;
                    let digest = blob.ingest.digest();
                    check_blob_name(&name, &digest)?;
                    staged.files.insert(name, digest.clone());
                    // The same content under another name is kept once.
                    staged.blobs.entry(digest).or_insert(blob);
                }
                EntryType::Symlink | EntryType::Link => {
                    let link = entry.link_name_bytes().map(|l| l.into_owned());
                    let link = link.unwrap_or_default();
                    staged.claim(&name)?;
                    let target = if kind == EntryType::Symlink {
                        symlink_target(&name, &link)?
                    } else {
                        // A hard link names its target from the archive's top.
                        match normalise(&link) {
                            Ok(target) if !target.is_empty() => target,
                            _ => {
                                return Err(ArchiveError::BadLink {
                                    name,
                                    target: quoted(&link),
                                    problem: "a hard link's target must be a file of the archive",
                                }
                                .into())
                            }
                        }
                    };
                    staged.links.insert(name, target);
                }
                other => {
                    return Err(ArchiveError::UnsupportedEntry {
                        name: quoted(&raw_name),
                        kind: format!("{other:?}"),
                    }
                    .into())
                }
            }
        }
    }
    // The zero blocks that pad the archive to its record size follow; more is not an
    // archive this reader understood.
    let mut rest = archive.into_inner();
    let trailing = std::io::copy(
        &mut (&mut rest).take(MAX_TRAILING_BYTES + 1),
        &mut std::io::sink(),
    )
    .map_err(read_error)?;
    if trailing > MAX_TRAILING_BYTES {
        return Err(ArchiveError::TrailingData {
            limit: MAX_TRAILING_BYTES,
        }
        .into());
    }
    Ok(staged)
}

/// Writes the content of `entry` to a new pending blob.
fn copy_entry(
    entry: &mut impl Read,
    content: &ContentStore,
    buffer: &mut [u8],
) -> Result<StagedBlob, ImageError> {
    let mut ingest = content.ingest()?;
    let mut head = Vec::with_capacity(4);
    loop {
        let n = entry.read(buffer).map_err(read_error)?;
        if n == 0 {
            break;
        }
        if head.len() < 4 {
            let wanted = (4 - head.len()).min(n);
            head.extend_from_slice(&buffer[..wanted]);
        }
        ingest.write(&buffer[..n])?;
    }
    ingest.close()?;
    Ok(StagedBlob { ingest, head })
}

/// A `blobs/sha256/<hex>` entry must be named by the digest of its content.
fn check_blob_name(name: &str, digest: &Digest) -> Result<(), ImageError> {
    let Some(hex) = name.strip_prefix("blobs/sha256/") else {
        return Ok(());
    };
    let named = Digest::parse(&format!("sha256:{hex}")).map_err(|_| ArchiveError::BadBlobName {
        name: name.to_owned(),
    })?;
    if &named != digest {
        return Err(ImageError::DigestMismatch {
            what: format!("archive entry {name}"),
            expected: named,
            actual: digest.clone(),
        });
    }
    Ok(())
}

fn read_error(source: std::io::Error) -> ImageError {
    ArchiveError::Read { source }.into()
}

/// Bytes read while armed, shared between the reader and the loop that arms it.
#[derive(Debug, Clone, Default)]
struct Budget {
    /// `Some(bytes read)` while armed.
    used: Rc<Cell<Option<u64>>>,
    /// Set when a read went over [`MAX_HEADER_BYTES`].
    exceeded: Rc<Cell<bool>>,
}

impl Budget {
    fn arm(&self) {
        self.used.set(Some(0));
    }

    fn disarm(&self) {
        self.used.set(None);
    }

    /// The error of a failed `next()`: over the budget, or the parser's.
    fn error(&self, source: std::io::Error) -> ImageError {
        if self.exceeded.get() {
            ImageError::TooLarge {
                what: "the tar headers of one archive entry".into(),
                size: MAX_HEADER_BYTES + 1,
                limit: MAX_HEADER_BYTES,
            }
        } else {
            read_error(source)
        }
    }
}

/// Counts what the parser reads while the budget is armed, and fails past it.
struct Budgeted<R> {
    inner: R,
    budget: Budget,
}

impl<R: Read> Read for Budgeted<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let Some(used) = self.budget.used.get() else {
            return self.inner.read(buf);
        };
        let left = MAX_HEADER_BYTES.saturating_sub(used);
        if left == 0 {
            self.budget.exceeded.set(true);
            return Err(std::io::Error::other("tar headers over the limit"));
        }
        let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..want])?;
        self.budget.used.set(Some(used + n as u64));
        Ok(n)
    }
}
