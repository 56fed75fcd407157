//! Two unpacked layers stacked by a real overlayfs mount: the whiteout and the opaque
//! directory of the upper layer hide the lower layer's entries.

use std::fs;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::mount::{mount, umount2, MntFlags, MsFlags};

use super::{require_root, Layer};
use crate::unpack::{apply_layer, Limits};

/// Unmounts on drop, so a failed assertion does not leave the mount behind.
struct Mounted(PathBuf);

impl Drop for Mounted {
    fn drop(&mut self) {
        if let Err(e) = umount2(&self.0, MntFlags::MNT_DETACH) {
            eprintln!("unmounting {}: {e}", self.0.display());
        }
    }
}

fn unpack(tar: &[u8], dir: &Path) {
    fs::create_dir(dir).unwrap();
    apply_layer(tar, dir, &Limits::default()).unwrap();
}

#[test]
fn unpack_layers_stack_in_overlayfs() {
    require_root!();
    let tmp = tempfile::tempdir().unwrap();
    let (l1, l2, merged) = (
        tmp.path().join("l1"),
        tmp.path().join("l2"),
        tmp.path().join("merged"),
    );
    unpack(
        &Layer::new()
            .file("keep", 0o644, b"from l1")
            .file("gone", 0o644, b"deleted by l2")
            .dir("opq", 0o755)
            .file("opq/old", 0o644, b"hidden by l2")
            .dir("plain", 0o755)
            .file("plain/old", 0o644, b"visible")
            .finish(),
        &l1,
    );
    unpack(
        &Layer::new()
            .file(".wh.gone", 0o644, b"")
            .dir("opq", 0o755)
            .file("opq/.wh..wh..opq", 0o644, b"")
            .file("opq/new", 0o644, b"from l2")
            .file("plain/new", 0o644, b"from l2")
            .finish(),
        &l2,
    );
    fs::create_dir(&merged).unwrap();
    let options = format!("lowerdir={}:{}", l2.display(), l1.display());
    match mount(
        Some("overlay"),
        &merged,
        Some("overlay"),
        MsFlags::MS_RDONLY,
        Some(options.as_str()),
    ) {
        Ok(()) => {}
        Err(e @ (Errno::EPERM | Errno::ENODEV | Errno::EINVAL)) => {
            berth_testutil::skip(format_args!("cannot mount overlayfs here ({e})"));
            return;
        }
        Err(e) => panic!("mount overlay: {e}"),
    }
    let _guard = Mounted(merged.clone());

    let read = |p: &str| fs::read(merged.join(p)).ok();
    assert_eq!(read("keep").as_deref(), Some(&b"from l1"[..]));
    assert!(
        !merged.join("gone").exists(),
        "the whiteout did not hide l1's file"
    );
    assert_eq!(read("opq/new").as_deref(), Some(&b"from l2"[..]));
    assert!(
        !merged.join("opq/old").exists(),
        "the opaque directory did not hide l1's contents"
    );
    assert_eq!(read("plain/old").as_deref(), Some(&b"visible"[..]));
    assert_eq!(read("plain/new").as_deref(), Some(&b"from l2"[..]));
    let mut names: Vec<_> = fs::read_dir(&merged)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    names.sort();
    assert_eq!(names, ["keep", "opq", "plain"]);
}
