//! Hostile layers: each is rejected (or, for absolute names, contained) and nothing is
//! written outside the layer directory.

use std::fs;
use std::os::unix::fs::MetadataExt;

use tar::EntryType;

use super::{require_root, Fixture, Layer};
use std::io::Read as _;

use crate::unpack::{apply_layer, EntryProblem, Limits, LinkProblem, PathProblem, UnpackError};

fn entry_error(err: UnpackError) -> (String, EntryProblem) {
    match err {
        UnpackError::Entry { path, problem } => (path, problem),
        other => panic!("expected an entry error, got {other:?}"),
    }
}

#[test]
fn unpack_rejects_dotdot_traversal() {
    for name in ["../escape", "a/../../escape", "a/..", "./../outside/secret"] {
        let fx = Fixture::new();
        let tar = Layer::new().file(name, 0o644, b"pwned").finish();
        let err = fx.reject(&tar);
        assert_eq!(
            err.to_string(),
            format!("layer entry {name:?}: path leaves the layer (\"..\" component)")
        );
        assert_eq!(
            entry_error(err),
            (name.to_owned(), EntryProblem::Path(PathProblem::DotDot))
        );
    }
}

#[test]
fn unpack_rejects_dotdot_in_a_pax_long_name() {
    let fx = Fixture::new();
    let long = format!("{}/../../../escape", "d/".repeat(60));
    let mut layer = Layer::new();
    layer.pax(&[("path", long.as_bytes())]);
    let tar = layer.file("harmless", 0o644, b"pwned").finish();
    let (path, problem) = entry_error(fx.reject(&tar));
    assert_eq!(path, long);
    assert_eq!(problem, EntryProblem::Path(PathProblem::DotDot));
}

#[test]
fn unpack_contains_absolute_names() {
    let fx = Fixture::new();
    let target = fx.outside.join("escape");
    let abs = target.to_str().unwrap().to_owned();
    let tar = Layer::new().file(&abs, 0o644, b"contained").finish();
    fx.apply(&tar).unwrap();
    fx.assert_contained();
    assert!(!target.exists());
    let inside = fx.layer.join(abs.trim_start_matches('/'));
    assert_eq!(fs::read(inside).unwrap(), b"contained");
}

#[test]
fn unpack_rejects_writing_through_a_symlinked_parent() {
    for target in ["<outside>", "../outside", "../..", "/"] {
        let fx = Fixture::new();
        let outside = fx.outside.to_str().unwrap().to_owned();
        let target = if target == "<outside>" {
            outside.as_str()
        } else {
            target
        };
        let unique = format!("berth-unpack-escape-{}", std::process::id());
        let tar = Layer::new()
            .symlink("link", target)
            .file(&format!("link/{unique}"), 0o644, b"pwned")
            .finish();
        let err = fx.reject(&tar);
        assert_eq!(
            err.to_string(),
            format!("layer entry \"link/{unique}\": parent \"link\" is a symlink")
        );
        for dir in [std::path::Path::new("/"), fx.tmp.path().parent().unwrap()] {
            assert!(
                !dir.join(&unique).exists(),
                "escaped into {}",
                dir.display()
            );
        }
    }
}

#[test]
fn unpack_rejects_a_deep_symlinked_parent() {
    let fx = Fixture::new();
    let tar = Layer::new()
        .dir("a", 0o755)
        .dir("a/b", 0o755)
        .symlink("a/b/c", "../../../outside")
        .dir("a/b/c/d", 0o755)
        .finish();
    let (_, problem) = entry_error(fx.reject(&tar));
    assert_eq!(
        problem,
        EntryProblem::SymlinkParent {
            parent: "a/b/c".into()
        }
    );
}

#[test]
fn unpack_replaces_a_symlink_instead_of_writing_through_it() {
    let fx = Fixture::new();
    let tar = Layer::new()
        .symlink("f", "../outside/secret")
        .file("f", 0o644, b"replaced")
        .symlink("d", "../outside")
        .dir("d", 0o755)
        .file("d/inside", 0o644, b"inside")
        .finish();
    fx.apply(&tar).unwrap();
    fx.assert_contained();
    assert!(fs::symlink_metadata(fx.path("f")).unwrap().is_file());
    assert_eq!(fs::read(fx.path("f")).unwrap(), b"replaced");
    assert!(fs::symlink_metadata(fx.path("d")).unwrap().is_dir());
    assert_eq!(fs::read(fx.path("d/inside")).unwrap(), b"inside");
}

#[test]
fn unpack_rejects_a_file_as_parent() {
    let fx = Fixture::new();
    let tar = Layer::new()
        .file("f", 0o644, b"x")
        .file("f/g", 0o644, b"y")
        .finish();
    let (_, problem) = entry_error(fx.reject(&tar));
    assert_eq!(
        problem,
        EntryProblem::ParentNotDirectory { parent: "f".into() }
    );
}

#[test]
fn unpack_rejects_hard_links_out_of_the_layer() {
    let cases: [(&str, LinkProblem); 4] = [
        ("../outside/secret", LinkProblem::LeavesLayer),
        ("a/../../outside/secret", LinkProblem::LeavesLayer),
        ("/etc/passwd", LinkProblem::Missing),
        (
            "link/secret",
            LinkProblem::SymlinkParent {
                parent: "link".into(),
            },
        ),
    ];
    let passwd_links = fs::metadata("/etc/passwd").map(|m| m.nlink()).ok();
    for (target, expected) in cases {
        let fx = Fixture::new();
        let tar = Layer::new()
            .symlink("link", "../outside")
            .hard_link("hl", target)
            .finish();
        let err = fx.reject(&tar);
        if expected == LinkProblem::LeavesLayer {
            assert_eq!(
                err.to_string(),
                format!("layer entry \"hl\": hard link target {target:?} leaves the layer")
            );
        }
        let (path, problem) = entry_error(err);
        assert_eq!(path, "hl");
        assert_eq!(
            problem,
            EntryProblem::HardLink {
                target: target.into(),
                problem: expected
            }
        );
        assert!(!fx.path("hl").exists());
    }
    assert_eq!(
        fs::metadata("/etc/passwd").map(|m| m.nlink()).ok(),
        passwd_links
    );
}

#[test]
fn unpack_rejects_hard_links_to_directories_and_missing_entries() {
    let fx = Fixture::new();
    let tar = Layer::new().dir("d", 0o755).hard_link("hl", "d").finish();
    let (_, problem) = entry_error(fx.reject(&tar));
    assert_eq!(
        problem,
        EntryProblem::HardLink {
            target: "d".into(),
            problem: LinkProblem::Directory
        }
    );

    let fx = Fixture::new();
    let tar = Layer::new()
        .hard_link("hl", "later")
        .file("later", 0o644, b"x")
        .finish();
    let (_, problem) = entry_error(fx.reject(&tar));
    assert_eq!(
        problem,
        EntryProblem::HardLink {
            target: "later".into(),
            problem: LinkProblem::Missing
        }
    );
}

#[test]
fn unpack_rejects_whiteouts_of_dot_and_dotdot() {
    for name in [".wh...", "dir/.wh...", ".wh..", "dir/.wh."] {
        let fx = Fixture::new();
        let tar = Layer::new()
            .dir("dir", 0o755)
            .file("dir/keep", 0o644, b"keep")
            .file(name, 0o644, b"")
            .finish();
        let (path, problem) = entry_error(fx.reject(&tar));
        assert_eq!(path, name);
        assert!(
            matches!(problem, EntryProblem::BadWhiteout { .. }),
            "{name}: {problem:?}"
        );
        assert_eq!(fs::read(fx.path("dir/keep")).unwrap(), b"keep");
    }
}

#[test]
fn unpack_rejects_whiteouts_through_a_symlink() {
    require_root!();
    for name in ["link/.wh.secret", "link/.wh..wh..opq"] {
        let fx = Fixture::new();
        let tar = Layer::new()
            .symlink("link", "../outside")
            .file(name, 0o644, b"")
            .finish();
        let (_, problem) = entry_error(fx.reject(&tar));
        assert_eq!(
            problem,
            EntryProblem::SymlinkParent {
                parent: "link".into()
            }
        );
    }
}

#[test]
fn unpack_rejects_nul_and_empty_names() {
    let fx = Fixture::new();
    let mut layer = Layer::new();
    layer.pax(&[("path", b"a\0b")]);
    let tar = layer.file("x", 0o644, b"").finish();
    let (_, problem) = entry_error(fx.reject(&tar));
    assert_eq!(problem, EntryProblem::Path(PathProblem::Nul));

    let fx = Fixture::new();
    let tar = Layer::new().file("", 0o644, b"").finish();
    let (_, problem) = entry_error(fx.reject(&tar));
    assert_eq!(problem, EntryProblem::Path(PathProblem::Empty));

    let fx = Fixture::new();
    let tar = Layer::new().file("./", 0o644, b"").finish();
    let (_, problem) = entry_error(fx.reject(&tar));
    // A regular file cannot be the layer root.
    assert_eq!(problem, EntryProblem::RootNotDirectory);
}

#[test]
fn unpack_limits_entries() {
    let fx = Fixture::new();
    let limits = Limits {
        max_entries: 3,
        ..Limits::default()
    };
    let tar = Layer::new()
        .file("a", 0o644, b"")
        .file("b", 0o644, b"")
        .file("c", 0o644, b"")
        .finish();
    fx.apply_with(&tar, &limits).unwrap();

    let fx = Fixture::new();
    let tar = Layer::new()
        .file("a", 0o644, b"")
        .file("b", 0o644, b"")
        .file("c", 0o644, b"")
        .file("d", 0o644, b"")
        .finish();
    let err = fx.apply_with(&tar, &limits).unwrap_err();
    assert_eq!(
        err.to_string(),
        "layer entry \"d\": the layer has more than 3 entries (limit image.max_layer_entries)"
    );
    assert!(
        matches!(&err, UnpackError::TooManyEntries { path, max: 3 } if path == "d"),
        "{err:?}"
    );
    assert!(!fx.path("d").exists());
    fx.assert_contained();
}

/// Bytes of a tar holding one regular file of `len` bytes, up to the end of its content.
fn content_end(len: u64) -> u64 {
    512 + len
}

#[test]
fn unpack_limits_file_bytes_before_writing() {
    let fx = Fixture::new();
    let limits = Limits {
        max_file_bytes: 10,
        ..Limits::default()
    };
    fx.apply_with(
        &Layer::new().file("ok", 0o644, &[b'x'; 10]).finish(),
        &limits,
    )
    .unwrap();
    let tar = Layer::new()
        .file("small", 0o644, b"x")
        .file("big", 0o644, &[b'x'; 11])
        .finish();
    let fx = Fixture::new();
    let err = fx.apply_with(&tar, &limits).unwrap_err();
    assert_eq!(
        err.to_string(),
        "layer entry \"big\": file is 11 bytes, more than the limit of 10 (image.max_file_bytes)"
    );
    assert_eq!(
        entry_error(err),
        (
            "big".to_owned(),
            EntryProblem::FileTooLarge { size: 11, max: 10 }
        )
    );
    assert!(fx.path("small").exists());
    assert!(!fx.path("big").exists(), "an oversized file was created");
    fx.assert_contained();
}

#[test]
fn unpack_limits_layer_bytes_by_file_content() {
    // Two files whose content fits the stream limit one by one: the second is refused
    // before it is created, because the stream up to its content's end is over the limit.
    let a = 1000;
    let limits = Limits {
        max_total_bytes: content_end(a) + 512 + 999,
        ..Limits::default()
    };
    let tar = Layer::new()
        .file("a", 0o644, &vec![b'x'; a as usize])
        .file("b", 0o644, &[b'y'; 1000])
        .finish();
    let fx = Fixture::new();
    let err = fx.apply_with(&tar, &limits).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "layer entry \"b\": the layer is more than {} bytes uncompressed (limit image.max_layer_bytes)",
            limits.max_total_bytes
        )
    );
    assert!(
        matches!(&err, UnpackError::TooManyBytes { path: Some(p), .. } if p == "b"),
        "{err:?}"
    );
    assert!(fx.path("a").exists());
    assert!(
        !fx.path("b").exists(),
        "a file over the layer limit was created"
    );
    fx.assert_contained();
}

#[test]
fn unpack_limits_layer_bytes_by_stream() {
    let tar = Layer::new().file("f", 0o644, b"content").finish();
    // A stream of exactly the limit is whole; trailing data after the end-of-archive blocks
    // counts as well.
    let limits = Limits {
        max_total_bytes: tar.len() as u64,
        ..Limits::default()
    };
    Fixture::new().apply_with(&tar, &limits).unwrap();
    let mut padded = tar.clone();
    padded.extend_from_slice(&[0u8; 512]);
    let fx = Fixture::new();
    let err = fx.apply_with(&padded, &limits).unwrap_err();
    assert!(
        matches!(err, UnpackError::TooManyBytes { path: None, .. }),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .starts_with("in headers, padding or after the end of the archive: "),
        "{err}"
    );
    fx.assert_contained();

    // Data carried by an entry that is not a regular file (read and discarded by the
    // parser) counts too.
    let mut layer = Layer::new();
    let h = layer.header(tar::EntryType::Directory, b"d/", 0o755);
    let tar = layer.raw(h, &vec![0u8; 64 << 10]).finish();
    let limits = Limits {
        max_total_bytes: 32 << 10,
        ..Limits::default()
    };
    let fx = Fixture::new();
    let err = fx.apply_with(&tar, &limits).unwrap_err();
    assert!(
        matches!(&err, UnpackError::TooManyBytes { path: Some(p), max } if p == "d/" && *max == 32 << 10),
        "{err:?}"
    );
}

/// Counts what is read from the inner reader.
struct Metered<R> {
    inner: R,
    read: std::rc::Rc<std::cell::Cell<u64>>,
}

impl<R: std::io::Read> std::io::Read for Metered<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read.set(self.read.get() + n as u64);
        Ok(n)
    }
}

#[test]
fn unpack_stops_reading_a_bomb_at_the_limit() {
    // A directory entry declaring 1 TiB of data, then endless zeros: without the limit the
    // unpacker would read all of it.
    let mut h = Layer::new().header(tar::EntryType::Directory, b"d/", 0o755);
    h.set_size(1 << 40);
    h.set_cksum();
    let header = h.as_bytes().to_vec();
    let read = std::rc::Rc::new(std::cell::Cell::new(0));
    let stream = Metered {
        inner: std::io::Cursor::new(header).chain(std::io::repeat(0)),
        read: read.clone(),
    };
    let limits = Limits {
        max_total_bytes: 1 << 20,
        ..Limits::default()
    };
    let fx = Fixture::new();
    let err = apply_layer(stream, &fx.layer, &limits).unwrap_err();
    assert!(
        matches!(&err, UnpackError::TooManyBytes { path: Some(p), .. } if p == "d/"),
        "{err:?}"
    );
    assert_eq!(read.get(), (1 << 20) + 1, "read past the limit");
    fx.assert_contained();
}

#[test]
fn unpack_limits_name_lengths() {
    let limits = Limits {
        max_path_bytes: 16,
        ..Limits::default()
    };
    let fx = Fixture::new();
    let tar = Layer::new().file("0123456789abcdefg", 0o644, b"").finish();
    let (_, problem) = entry_error(fx.apply_with(&tar, &limits).unwrap_err());
    assert_eq!(
        problem,
        EntryProblem::Path(PathProblem::TooLong { len: 17, max: 16 })
    );

    let fx = Fixture::new();
    let tar = Layer::new().symlink("s", "0123456789abcdefg").finish();
    let (_, problem) = entry_error(fx.apply_with(&tar, &limits).unwrap_err());
    assert!(matches!(
        problem,
        EntryProblem::SymlinkTarget {
            problem: PathProblem::TooLong { .. },
            ..
        }
    ));
}

#[test]
fn unpack_limits_extension_headers() {
    // A PAX record far larger than any name or xattr set: the parser would hold it in memory.
    let fx = Fixture::new();
    let mut layer = Layer::new();
    layer.pax(&[("comment", &vec![b'x'; 3 << 20])]);
    let tar = layer.file("f", 0o644, b"").finish();
    let err = fx.apply(&tar).unwrap_err();
    assert!(
        matches!(err, UnpackError::HeadersTooLarge { .. }),
        "{err:?}"
    );

    // The same through a GNU long name.
    let fx = Fixture::new();
    let mut layer = Layer::new();
    let h = layer.header(EntryType::GNULongName, b"././@LongLink", 0o644);
    layer.raw(h, &vec![b'a'; 3 << 20]);
    let tar = layer.file("f", 0o644, b"").finish();
    let err = fx.apply(&tar).unwrap_err();
    assert!(
        matches!(err, UnpackError::HeadersTooLarge { .. }),
        "{err:?}"
    );
}

#[test]
fn unpack_rejects_unsupported_types_and_malformed_archives() {
    let fx = Fixture::new();
    let mut layer = Layer::new();
    let h = layer.header(EntryType::new(b'V'), b"volume", 0o644);
    let tar = layer.raw(h, b"").finish();
    let (_, problem) = entry_error(fx.reject(&tar));
    assert_eq!(problem, EntryProblem::UnsupportedType { kind: 'V' });

    let fx = Fixture::new();
    let mut tar = Layer::new().file("f", 0o644, b"content").finish();
    tar[148] ^= 1; // checksum
    assert!(matches!(fx.reject(&tar), UnpackError::Tar(_)));

    let fx = Fixture::new();
    let tar = Layer::new().file("f", 0o644, &[b'x'; 4096]).finish();
    assert!(
        matches!(
            fx.reject(&tar[..1024]),
            UnpackError::Truncated {
                size: 4096,
                got: 512,
                ..
            }
        ),
        "truncated content"
    );
}

#[test]
fn a_stream_ending_after_a_complete_entry_is_a_complete_layer() {
    // No end-of-archive blocks, and the last entry's content not padded to a block (as
    // `umoci insert` writes layers): Go's archive/tar reads it, and so does berth.
    let full = Layer::new()
        .file("a", 0o644, b"first")
        .file("b", 0o644, b"second!")
        .finish();
    let unpadded = &full[..512 + 512 + 512 + 7];
    let fx = Fixture::new();
    fx.apply(unpadded).unwrap();
    assert_eq!(fs::read(fx.path("b")).unwrap(), b"second!");
    // Padded, still without the end-of-archive blocks.
    let fx = Fixture::new();
    fx.apply(&full[..2048]).unwrap();
    assert_eq!(fs::read(fx.path("a")).unwrap(), b"first");
    // Cut inside the last entry's content: refused.
    let fx = Fixture::new();
    assert!(matches!(
        fx.reject(&full[..512 + 512 + 512 + 3]),
        UnpackError::Truncated {
            size: 7,
            got: 3,
            ..
        }
    ));
    // Cut inside the padding: refused too (the stream did not end at the content's end).
    let fx = Fixture::new();
    assert!(matches!(
        fx.reject(&full[..512 + 512 + 512 + 100]),
        UnpackError::Tar(_)
    ));
}

#[test]
fn unpack_rejects_owner_out_of_range() {
    let fx = Fixture::new();
    let mut layer = Layer::new();
    let mut h = layer.header(EntryType::Regular, b"f", 0o644);
    h.as_old_mut()
        .uid
        .copy_from_slice(&[0x80, 0, 0, 1, 0, 0, 0, 0]); // base-256: 2^32
    let tar = layer.raw(h, b"").finish();
    let (_, problem) = entry_error(fx.reject(&tar));
    assert!(
        matches!(
            problem,
            EntryProblem::OwnerOutOfRange {
                uid: 0x1_0000_0000,
                ..
            }
        ),
        "{problem:?}"
    );
}

#[test]
fn unpack_rejects_devices_without_numbers() {
    // An old (pre-ustar) header has no device number fields.
    let fx = Fixture::new();
    let mut h = tar::Header::new_old();
    h.as_old_mut().name[..4].copy_from_slice(b"null");
    h.set_entry_type(EntryType::Char);
    h.set_mode(0o666);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    h.set_size(0);
    h.set_cksum();
    let mut builder = tar::Builder::new(Vec::new());
    builder.append(&h, &b""[..]).unwrap();
    let tar = builder.into_inner().unwrap();
    let (_, problem) = entry_error(fx.reject(&tar));
    assert_eq!(problem, EntryProblem::MissingDeviceNumbers);
}
