//! Reading files of a container's root filesystem (its `/etc/passwd` and `/etc/group`)
//! without following symlinks out of it: an image may ship `/etc/passwd` as a link to
//! `/etc/shadow` or `../../..`; each symlink is resolved against the rootfs, never the host.

use std::path::{Component, Path, PathBuf};

/// Most symlinks followed while resolving one path.
const MAX_LINKS: usize = 40;

/// Resolves `path` inside `root` as the container would see it, following symlinks within
/// `root` only. `None` when it does not exist or loops.
pub fn resolve_in_root(root: &Path, path: &Path) -> Option<PathBuf> {
    let mut pending: Vec<std::ffi::OsString> = path
        .components()
        .rev()
        .filter_map(|c| match c {
            Component::Normal(name) => Some(name.to_owned()),
            Component::ParentDir => Some("..".into()),
            _ => None,
        })
        .collect();
    let mut resolved = PathBuf::new();
    let mut links = 0;
    while let Some(name) = pending.pop() {
        if name == ".." {
            resolved.pop();
            continue;
        }
        let candidate = resolved.join(&name);
        let meta = std::fs::symlink_metadata(root.join(&candidate)).ok()?;
        if meta.file_type().is_symlink() {
            links += 1;
            if links > MAX_LINKS {
                return None;
            }
            let target = std::fs::read_link(root.join(&candidate)).ok()?;
            if target.is_absolute() {
                resolved = PathBuf::new();
            }
            for component in target.components().rev() {
                match component {
                    Component::Normal(n) => pending.push(n.to_owned()),
                    Component::ParentDir => pending.push("..".into()),
                    _ => {}
                }
            }
        } else {
            resolved = candidate;
        }
    }
    Some(root.join(resolved))
}

/// The content of `path` in the container's rootfs, or "" when absent or not a file.
pub fn read_in_root(root: &Path, path: &str) -> String {
    resolve_in_root(root, Path::new(path))
        .filter(|p| p.is_file())
        .and_then(|p| std::fs::read_to_string(p).ok())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::symlink;

    use super::*;

    #[test]
    fn symlinks_resolve_inside_the_root() {
        let root = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret"), "host secret").unwrap();
        std::fs::create_dir_all(root.path().join("etc")).unwrap();
        std::fs::create_dir_all(root.path().join("real")).unwrap();
        std::fs::write(
            root.path().join("real/passwd"),
            "root:x:0:0::/root:/bin/sh\n",
        )
        .unwrap();
        symlink("/real/passwd", root.path().join("etc/passwd")).unwrap();
        assert_eq!(
            read_in_root(root.path(), "/etc/passwd"),
            "root:x:0:0::/root:/bin/sh\n"
        );

        // Escapes stay inside: ../../.. is clamped at the root, absolute targets are rebased.
        let escape = format!("../../../../..{}", outside.path().join("secret").display());
        symlink(&escape, root.path().join("etc/group")).unwrap();
        assert_eq!(read_in_root(root.path(), "/etc/group"), "");
        symlink(
            outside.path().join("secret"),
            root.path().join("etc/shadow"),
        )
        .unwrap();
        assert_eq!(read_in_root(root.path(), "/etc/shadow"), "");

        // Loops end.
        symlink("loop", root.path().join("loop")).unwrap();
        assert_eq!(resolve_in_root(root.path(), Path::new("/loop")), None);
    }
}
