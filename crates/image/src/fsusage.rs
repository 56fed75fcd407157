//! Disk usage of a directory tree, as ImageFsInfo and container stats report it and as the
//! trash counts what it frees.

use std::io;
use std::path::Path;

/// Disk usage of a tree: allocated bytes and distinct inodes.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Usage {
    /// Allocated bytes.
    pub bytes: u64,
    /// Distinct inodes.
    pub inodes: u64,
}

impl Usage {
    /// Adds `other` to this usage.
    pub fn add(&mut self, other: Usage) {
        self.bytes += other.bytes;
        self.inodes += other.inodes;
    }
}

/// Walks `root` without following symlinks, counting each inode once (hard links share
/// one). A missing `root` uses nothing.
pub fn usage_of(root: &Path) -> io::Result<Usage> {
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
