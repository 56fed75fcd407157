//! Well-formed layers: every entry type, metadata, replacement and long names.

use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::Path;

use tar::EntryType;

use super::{require_root, Fixture, Layer};
use crate::unpack::LayerStats;

fn mode(path: &Path) -> u32 {
    fs::symlink_metadata(path).unwrap().mode() & 0o7777
}

#[test]
fn unpack_regular_files_dirs_and_modes() {
    let fx = Fixture::new();
    let tar = Layer::new()
        .dir("etc", 0o755)
        .file("etc/hosts", 0o644, b"127.0.0.1 localhost\n")
        .dir("bin", 0o755)
        .file("bin/tool", 0o755, b"#!/bin/sh\n")
        .dir("tmp", 0o1777)
        .dir("private", 0o700)
        .file("empty", 0o600, b"")
        .finish();
    let stats = fx.apply(&tar).unwrap();
    fx.assert_contained();
    assert_eq!(
        stats,
        LayerStats {
            entries: 7,
            bytes: 30
        }
    );
    assert_eq!(
        fs::read(fx.path("etc/hosts")).unwrap(),
        b"127.0.0.1 localhost\n"
    );
    assert_eq!(mode(&fx.path("etc/hosts")), 0o644);
    assert_eq!(mode(&fx.path("bin/tool")), 0o755);
    assert_eq!(mode(&fx.path("tmp")), 0o1777);
    assert_eq!(mode(&fx.path("private")), 0o700);
    assert_eq!(mode(&fx.path("empty")), 0o600);
    assert_eq!(fs::metadata(fx.path("empty")).unwrap().len(), 0);
}

#[test]
fn unpack_keeps_setuid_and_setgid_after_chown() {
    require_root!();
    let fx = Fixture::new();
    let mut layer = Layer::new();
    let mut h = layer.header(EntryType::Regular, b"su", 0o4755);
    h.set_uid(0);
    h.set_gid(0);
    layer.raw(h, b"binary");
    let mut h = layer.header(EntryType::Regular, b"sg", 0o2755);
    h.set_uid(1000);
    h.set_gid(1000);
    layer.raw(h, b"binary");
    fx.apply(&layer.finish()).unwrap();
    let su = fs::metadata(fx.path("su")).unwrap();
    assert_eq!((su.mode() & 0o7777, su.uid(), su.gid()), (0o4755, 0, 0));
    let sg = fs::metadata(fx.path("sg")).unwrap();
    assert_eq!(
        (sg.mode() & 0o7777, sg.uid(), sg.gid()),
        (0o2755, 1000, 1000)
    );
}

#[test]
fn unpack_sets_owners_on_every_type() {
    require_root!();
    let fx = Fixture::new();
    let mut layer = Layer::new();
    for (kind, name, uid) in [
        (EntryType::Directory, "d", 1001),
        (EntryType::Regular, "f", 1000),
        (EntryType::Symlink, "s", 1002),
        (EntryType::Fifo, "p", 1003),
    ] {
        let mut h = layer.header(kind, name.as_bytes(), 0o640);
        if kind == EntryType::Symlink {
            h.set_link_name_literal(b"/nowhere").unwrap();
        }
        h.set_uid(uid);
        h.set_gid(uid + 100);
        layer.raw(h, b"");
    }
    fx.apply(&layer.finish()).unwrap();
    for (name, uid) in [("d", 1001), ("f", 1000), ("s", 1002), ("p", 1003)] {
        let m = fs::symlink_metadata(fx.path(name)).unwrap();
        assert_eq!((m.uid(), m.gid()), (uid, uid + 100), "{name}");
    }
}

#[test]
fn unpack_preserves_modification_times() {
    let fx = Fixture::new();
    let mut layer = Layer::new();
    let mut h = layer.header(EntryType::Directory, b"d", 0o755);
    h.set_mtime(1_500_000_000);
    layer.raw(h, b"");
    let mut h = layer.header(EntryType::Regular, b"d/f", 0o644);
    h.set_mtime(1_400_000_000);
    layer.raw(h, b"content");
    let mut h = layer.header(EntryType::Symlink, b"d/s", 0o777);
    h.set_link_name_literal(b"f").unwrap();
    h.set_mtime(1_300_000_000);
    layer.raw(h, b"");
    layer.pax(&[("mtime", b"1200000000.25")]);
    layer.file("d/precise", 0o644, b"");
    // A child added after the directory's own entry must not disturb its time.
    layer.file("d/later", 0o644, b"");
    fx.apply(&layer.finish()).unwrap();
    let m = |p: &str| fs::symlink_metadata(fx.path(p)).unwrap();
    assert_eq!(m("d").mtime(), 1_500_000_000);
    assert_eq!(m("d/f").mtime(), 1_400_000_000);
    assert_eq!(m("d/s").mtime(), 1_300_000_000);
    assert_eq!(
        (m("d/precise").mtime(), m("d/precise").mtime_nsec()),
        (1_200_000_000, 250_000_000)
    );
}

#[test]
fn unpack_stores_symlink_targets_as_is() {
    let fx = Fixture::new();
    let tar = Layer::new()
        .symlink("abs", "/etc/passwd")
        .symlink("up", "../../../../outside")
        .symlink("rel", "abs")
        .symlink("dangling", "no/such/thing")
        .finish();
    fx.apply(&tar).unwrap();
    fx.assert_contained();
    for (name, target) in [
        ("abs", "/etc/passwd"),
        ("up", "../../../../outside"),
        ("rel", "abs"),
        ("dangling", "no/such/thing"),
    ] {
        assert_eq!(fs::read_link(fx.path(name)).unwrap(), Path::new(target));
    }
}

#[test]
fn unpack_hard_links_share_the_inode() {
    let fx = Fixture::new();
    let tar = Layer::new()
        .dir("bin", 0o755)
        .file("bin/busybox", 0o755, b"multi-call")
        .hard_link("bin/sh", "bin/busybox")
        .hard_link("ls", "/bin/busybox")
        .hard_link("bin/busybox", "bin/busybox")
        .symlink("s", "bin")
        .hard_link("s2", "s")
        .finish();
    fx.apply(&tar).unwrap();
    fx.assert_contained();
    let original = fs::metadata(fx.path("bin/busybox")).unwrap();
    assert_eq!(original.nlink(), 3);
    for name in ["bin/sh", "ls"] {
        assert_eq!(
            fs::metadata(fx.path(name)).unwrap().ino(),
            original.ino(),
            "{name}"
        );
    }
    // A hard link to a symlink links the symlink itself.
    assert_eq!(fs::read_link(fx.path("s2")).unwrap(), Path::new("bin"));
}

#[test]
fn unpack_creates_fifos() {
    let fx = Fixture::new();
    let mut layer = Layer::new();
    let h = layer.header(EntryType::Fifo, b"run/pipe", 0o620);
    fx.apply(&layer.raw(h, b"").finish()).unwrap();
    let m = fs::symlink_metadata(fx.path("run/pipe")).unwrap();
    assert!(m.file_type().is_fifo());
    assert_eq!(m.mode() & 0o7777, 0o620);
}

#[test]
fn unpack_creates_device_nodes() {
    require_root!();
    let fx = Fixture::new();
    let mut layer = Layer::new();
    let mut h = layer.header(EntryType::Char, b"dev/null", 0o666);
    h.set_device_major(1).unwrap();
    h.set_device_minor(3).unwrap();
    layer.raw(h, b"");
    let mut h = layer.header(EntryType::Block, b"dev/loop0", 0o660);
    h.set_device_major(7).unwrap();
    h.set_device_minor(0).unwrap();
    layer.raw(h, b"");
    fx.apply(&layer.finish()).unwrap();
    let null = fs::symlink_metadata(fx.path("dev/null")).unwrap();
    assert!(null.file_type().is_char_device());
    assert_eq!(null.rdev(), nix::sys::stat::makedev(1, 3));
    assert_eq!(null.mode() & 0o7777, 0o666);
    let lp = fs::symlink_metadata(fx.path("dev/loop0")).unwrap();
    assert!(lp.file_type().is_block_device());
    assert_eq!(lp.rdev(), nix::sys::stat::makedev(7, 0));
}

#[test]
fn unpack_applies_xattrs_by_namespace() {
    let fx = Fixture::new();
    let mut layer = Layer::new();
    layer.pax(&[
        ("SCHILY.xattr.user.berth", b"hello"),
        ("SCHILY.xattr.trusted.overlay.opaque", b"y"),
        ("SCHILY.xattr.security.selinux", b"not_a_label:at_all"),
    ]);
    layer.dir("d", 0o755);
    let result = fx.apply(&layer.finish());
    result.unwrap();
    match xattr::get(fx.path("d"), "user.berth") {
        Ok(value) => assert_eq!(value.as_deref(), Some(&b"hello"[..])),
        Err(e) if e.raw_os_error() == Some(nix::libc::ENOTSUP) => {
            berth_testutil::skip("the temporary filesystem has no user xattrs");
            return;
        }
        Err(e) => panic!("{e}"),
    }
    if super::is_root() {
        assert_eq!(
            xattr::get(fx.path("d"), "trusted.overlay.opaque").unwrap(),
            None,
            "layer set a trusted xattr"
        );
    }
}

#[test]
fn unpack_replaces_earlier_entries() {
    let fx = Fixture::new();
    let tar = Layer::new()
        .file("a", 0o644, b"first")
        .file("a", 0o600, b"second")
        .file("f2d", 0o644, b"file")
        .dir("f2d", 0o750)
        .dir("d2f", 0o755)
        .file("d2f/child", 0o644, b"child")
        .dir("d2f/sub", 0o755)
        .file("d2f", 0o644, b"now a file")
        .dir("keep", 0o755)
        .file("keep/child", 0o644, b"kept")
        .dir("keep", 0o711)
        .finish();
    fx.apply(&tar).unwrap();
    assert_eq!(fs::read(fx.path("a")).unwrap(), b"second");
    assert_eq!(mode(&fx.path("a")), 0o600);
    assert!(fx.path("f2d").is_dir());
    assert_eq!(mode(&fx.path("f2d")), 0o750);
    assert_eq!(fs::read(fx.path("d2f")).unwrap(), b"now a file");
    // An entry for an existing directory updates it and keeps its children.
    assert_eq!(mode(&fx.path("keep")), 0o711);
    assert_eq!(fs::read(fx.path("keep/child")).unwrap(), b"kept");
}

#[test]
fn unpack_makes_missing_parents_and_ignores_the_root_entry() {
    let fx = Fixture::new();
    let before = fs::metadata(&fx.layer).unwrap().mode();
    let tar = Layer::new()
        .dir("./", 0o700)
        .file("./p/q/r", 0o644, b"deep")
        .finish();
    let stats = fx.apply(&tar).unwrap();
    assert_eq!(stats.entries, 2);
    assert_eq!(fs::read(fx.path("p/q/r")).unwrap(), b"deep");
    for dir in ["p", "p/q"] {
        let m = fs::metadata(fx.path(dir)).unwrap();
        assert!(m.is_dir());
        assert_eq!(m.permissions().mode() & 0o7777, 0o755, "{dir}");
        assert_eq!(m.uid(), nix::unistd::geteuid().as_raw());
    }
    assert_eq!(
        fs::metadata(&fx.layer).unwrap().mode(),
        before,
        "the layer root was changed"
    );
}

#[test]
fn unpack_reads_long_names() {
    let fx = Fixture::new();
    let long_dir = format!("usr/{}", "long-directory-name/".repeat(8));
    let long_file = format!("{long_dir}file-with-a-long-name.txt");
    let long_target = format!("/{long_file}");
    // GNU long name and long link name, written by the tar crate.
    let mut builder = tar::Builder::new(Vec::new());
    let gnu = |kind| {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(0o644);
        h.set_uid(nix::unistd::geteuid().as_raw().into());
        h.set_gid(nix::unistd::getegid().as_raw().into());
        h.set_mtime(1_600_000_000);
        h.set_size(0);
        h
    };
    let mut h = gnu(EntryType::Regular);
    h.set_size(4);
    builder
        .append_data(&mut h, &long_file, &b"long"[..])
        .unwrap();
    let mut h = gnu(EntryType::Symlink);
    builder
        .append_link(&mut h, format!("{long_dir}link"), &long_target)
        .unwrap();
    builder.finish().unwrap();
    let mut tar = builder.into_inner().unwrap();
    tar.truncate(tar.len() - 1024);
    // A PAX path for the next one.
    let mut layer = Layer::new();
    let pax_name = format!("{long_dir}pax-named");
    layer.pax(&[("path", pax_name.as_bytes())]);
    layer.file("short", 0o644, b"pax");
    tar.extend_from_slice(&layer.finish());

    fx.apply(&tar).unwrap();
    fx.assert_contained();
    assert_eq!(fs::read(fx.path(&long_file)).unwrap(), b"long");
    assert_eq!(
        fs::read_link(fx.path(&format!("{long_dir}link"))).unwrap(),
        Path::new(&long_target)
    );
    assert_eq!(fs::read(fx.path(&pax_name)).unwrap(), b"pax");
    assert!(!fx.path("short").exists());
}
