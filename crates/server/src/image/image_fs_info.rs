//! `ImageFsInfo`: bytes and inodes used by image content and snapshots.
//!
//! The figure is measured by walking the image directories under `root` (content store and
//! snapshots), so it is the real usage of berth's image filesystem, not the disk's.

use std::io;
use std::path::Path;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use cri_api::v1;

use crate::daemon::Daemon;
use crate::error::ServiceError;

pub(super) async fn image_fs_info(
    daemon: Arc<Daemon>,
    _request: v1::ImageFsInfoRequest,
) -> Result<v1::ImageFsInfoResponse, ServiceError> {
    let usage = tokio::task::spawn_blocking(move || measure_image_fs(&daemon)).await??;
    Ok(v1::ImageFsInfoResponse {
        image_filesystems: vec![usage],
        container_filesystems: Vec::new(),
    })
}

fn measure_image_fs(daemon: &Daemon) -> Result<v1::FilesystemUsage, ServiceError> {
    let mut total = Usage::default();
    let snapshots = daemon.images.snapshots_dir();
    for dir in [daemon.images.content_dir(), snapshots.clone()] {
        total.add(usage_of(&dir).map_err(|source| ServiceError::Io {
            action: "measure",
            path: dir.clone(),
            source,
        })?);
    }
    Ok(v1::FilesystemUsage {
        timestamp: now_nanos(),
        fs_id: Some(v1::FilesystemIdentifier {
            mountpoint: snapshots.display().to_string(),
        }),
        used_bytes: Some(v1::UInt64Value { value: total.bytes }),
        inodes_used: Some(v1::UInt64Value {
            value: total.inodes,
        }),
    })
}

/// Disk usage of a tree: allocated bytes and distinct inodes.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Usage {
    bytes: u64,
    inodes: u64,
}

impl Usage {
    fn add(&mut self, other: Usage) {
        self.bytes += other.bytes;
        self.inodes += other.inodes;
    }
}

/// Walks `root` without following symlinks, counting each inode once (hard links share
/// one). A missing `root` uses nothing.
fn usage_of(root: &Path) -> io::Result<Usage> {
    use std::collections::HashSet;
    use std::os::unix::fs::MetadataExt;

    let mut usage = Usage::default();
    let mut seen = HashSet::new();
    let mut pending = vec![root.to_owned()];
    while let Some(path) = pending.pop() {
        let meta = match std::fs::symlink_metadata(&path) {
            Ok(meta) => meta,
            // Absent, or removed while walking: it uses nothing.
            Err(err) if err.kind() == io::ErrorKind::NotFound => continue,
            Err(err) => return Err(err),
        };
        if seen.insert((meta.dev(), meta.ino())) {
            usage.inodes += 1;
            // st_blocks counts 512-byte units whatever the filesystem's block size.
            usage.bytes += meta.blocks() * 512;
        }
        if meta.is_dir() {
            for entry in std::fs::read_dir(&path)? {
                pending.push(entry?.path());
            }
        }
    }
    Ok(usage)
}

fn now_nanos() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_tree_uses_nothing() {
        assert_eq!(
            usage_of(Path::new("/nonexistent/berth")).unwrap(),
            Usage::default()
        );
    }

    #[test]
    fn counts_files_dirs_and_hard_links_once() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::fs::write(dir.path().join("sub/a"), vec![7u8; 64 * 1024]).unwrap();
        std::fs::hard_link(dir.path().join("sub/a"), dir.path().join("b")).unwrap();
        std::os::unix::fs::symlink("/etc", dir.path().join("link")).unwrap();
        let usage = usage_of(dir.path()).unwrap();
        // root, sub, a (= b), link
        assert_eq!(usage.inodes, 4);
        assert!(usage.bytes >= 64 * 1024, "{usage:?}");
    }
}
