//! Hostile layers: each is rejected (or, for absolute names, contained) and nothing is
//! written outside the layer directory.

use std::fs;
use std::os::unix::fs::MetadataExt;

use tar::EntryType;

use super::{require_root, Fixture, Layer};
use crate::unpack::{EntryProblem, Limits, LinkProblem, PathProblem, UnpackError};

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
    assert_eq!(err.to_string(), "layer has more than 3 entries");
    assert!(!fx.path("d").exists());
    fx.assert_contained();
}

#[test]
fn unpack_limits_file_and_total_bytes() {
    let fx = Fixture::new();
    let limits = Limits {
        max_file_bytes: 10,
        max_total_bytes: 16,
        ..Limits::default()
    };
    let tar = Layer::new().file("big", 0o644, &[b'x'; 11]).finish();
    let err = fx.apply_with(&tar, &limits).unwrap_err();
    assert_eq!(
        err.to_string(),
        "layer entry \"big\": file is 11 bytes, more than the limit of 10"
    );
    assert!(!fx.path("big").exists(), "an oversized file was written");
    fx.assert_contained();

    let fx = Fixture::new();
    let tar = Layer::new()
        .file("a", 0o644, &[b'x'; 10])
        .file("b", 0o644, &[b'x'; 7])
        .finish();
    let err = fx.apply_with(&tar, &limits).unwrap_err();
    assert!(
        matches!(err, UnpackError::TooManyBytes { max: 16, .. }),
        "{err:?}"
    );
    assert!(!fx.path("b").exists());
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
