//! OCI whiteouts become overlayfs whiteouts (root only: mknod and trusted xattrs).

use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

use super::{require_root, Fixture, Layer};

fn assert_whiteout(path: &Path) {
    let m = fs::symlink_metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(
        m.file_type().is_char_device(),
        "{} is not a character device",
        path.display()
    );
    assert_eq!(m.rdev(), 0, "{} is not device 0:0", path.display());
}

#[test]
fn unpack_whiteout_becomes_a_char_device() {
    require_root!();
    let fx = Fixture::new();
    let tar = Layer::new()
        .file(".wh.gone", 0o644, b"")
        .file("etc/.wh.hosts", 0o644, b"")
        .file("etc/.wh..hidden", 0o644, b"")
        .finish();
    let stats = fx.apply(&tar).unwrap();
    assert_eq!(stats.entries, 3);
    assert_whiteout(&fx.path("gone"));
    assert_whiteout(&fx.path("etc/hosts"));
    assert_whiteout(&fx.path("etc/.hidden"));
    assert!(fx.path("etc").is_dir());
    assert!(!fx.path(".wh.gone").exists());
}

#[test]
fn unpack_whiteout_replaces_what_this_layer_put_there() {
    require_root!();
    let fx = Fixture::new();
    let tar = Layer::new()
        .file("f", 0o644, b"file")
        .file(".wh.f", 0o644, b"")
        .dir("d", 0o755)
        .file("d/child", 0o644, b"child")
        .file(".wh.d", 0o644, b"")
        .symlink("s", "../outside")
        .file(".wh.s", 0o644, b"")
        .finish();
    fx.apply(&tar).unwrap();
    fx.assert_contained();
    for name in ["f", "d", "s"] {
        assert_whiteout(&fx.path(name));
    }
}

#[test]
fn unpack_opaque_directory_gets_the_overlay_xattr() {
    require_root!();
    let fx = Fixture::new();
    let tar = Layer::new()
        .dir("kept", 0o755)
        .file("kept/.wh..wh..opq", 0o644, b"")
        .file("kept/new", 0o644, b"new")
        .file("made/.wh..wh..opq", 0o644, b"")
        .file("made/.wh..wh.plnk", 0o644, b"")
        .finish();
    fx.apply(&tar).unwrap();
    for dir in ["kept", "made"] {
        let value = xattr::get(fx.path(dir), "trusted.overlay.opaque").unwrap();
        assert_eq!(value.as_deref(), Some(&b"y"[..]), "{dir}");
    }
    // This layer's own entries of an opaque directory stay; aufs metadata is not unpacked.
    assert_eq!(fs::read(fx.path("kept/new")).unwrap(), b"new");
    let mut made: Vec<_> = fs::read_dir(fx.path("made"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    made.sort();
    assert!(made.is_empty(), "{made:?}");
}
