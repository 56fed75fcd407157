//! Unpack tests: hand-built (often hostile) layer tars unpacked into a layer directory that
//! sits in a temporary directory next to a sentinel directory, so every test can check that
//! nothing was written outside the layer.

mod corpus;
mod entries;
mod hostile;
mod overlay;
mod stream;
mod whiteouts;

use std::fs;
use std::io::Cursor;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use tar::{EntryType, Header};

use super::{apply_layer, LayerStats, Limits, UnpackError};

/// Content of the sentinel file outside the layer.
const SECRET: &[u8] = b"secret outside the layer";

/// Whether the tests run as root (device nodes, owners, trusted xattrs, mounts).
pub(super) fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Skips a test that needs root, saying so.
macro_rules! require_root {
    () => {
        if !berth_testutil::need_root("device nodes, owners or trusted xattrs") {
            return;
        }
    };
}
pub(super) use require_root;

/// Builds a layer tar entry by entry, writing names and link names byte for byte (so `..`,
/// absolute names and other hostile forms can be written).
pub(super) struct Layer {
    builder: tar::Builder<Vec<u8>>,
    uid: u64,
    gid: u64,
}

impl Layer {
    pub(super) fn new() -> Layer {
        Layer {
            builder: tar::Builder::new(Vec::new()),
            uid: nix::unistd::geteuid().as_raw().into(),
            gid: nix::unistd::getegid().as_raw().into(),
        }
    }

    /// A header with the name written raw (at most 100 bytes) and default metadata.
    pub(super) fn header(&self, kind: EntryType, name: &[u8], mode: u32) -> Header {
        let mut h = Header::new_ustar();
        h.as_old_mut().name[..name.len()].copy_from_slice(name);
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_uid(self.uid);
        h.set_gid(self.gid);
        h.set_mtime(1_600_000_000);
        h.set_size(0);
        h
    }

    /// Appends `header` (checksum updated) and `data`.
    pub(super) fn raw(&mut self, mut header: Header, data: &[u8]) -> &mut Layer {
        header.set_size(data.len() as u64);
        header.set_cksum();
        self.builder.append(&header, data).unwrap();
        self
    }

    pub(super) fn file(&mut self, name: &str, mode: u32, data: &[u8]) -> &mut Layer {
        let h = self.header(EntryType::Regular, name.as_bytes(), mode);
        self.raw(h, data)
    }

    pub(super) fn dir(&mut self, name: &str, mode: u32) -> &mut Layer {
        let h = self.header(EntryType::Directory, name.as_bytes(), mode);
        self.raw(h, b"")
    }

    pub(super) fn link(&mut self, kind: EntryType, name: &str, target: &str) -> &mut Layer {
        let mut h = self.header(kind, name.as_bytes(), 0o777);
        h.set_link_name_literal(target.as_bytes()).unwrap();
        self.raw(h, b"")
    }

    pub(super) fn symlink(&mut self, name: &str, target: &str) -> &mut Layer {
        self.link(EntryType::Symlink, name, target)
    }

    pub(super) fn hard_link(&mut self, name: &str, target: &str) -> &mut Layer {
        self.link(EntryType::Link, name, target)
    }

    /// Appends a PAX extension header; it applies to the next entry.
    pub(super) fn pax(&mut self, records: &[(&str, &[u8])]) -> &mut Layer {
        let mut data = Vec::new();
        for (key, value) in records {
            data.extend_from_slice(&pax_record(key, value));
        }
        let h = self.header(EntryType::XHeader, b"PaxHeaders/entry", 0o644);
        self.raw(h, &data)
    }

    /// The archive, with its two end-of-archive blocks.
    pub(super) fn finish(&mut self) -> Vec<u8> {
        self.builder.finish().unwrap();
        std::mem::take(self.builder.get_mut())
    }
}

/// One PAX record: `<length> <key>=<value>\n`, where the length counts itself.
fn pax_record(key: &str, value: &[u8]) -> Vec<u8> {
    let body = key.len() + value.len() + 3; // space, '=', newline
    let mut len = body + 1;
    while len != body + len.to_string().len() {
        len = body + len.to_string().len();
    }
    let mut out = format!("{len} {key}=").into_bytes();
    out.extend_from_slice(value);
    out.push(b'\n');
    out
}

/// A temporary directory holding the layer directory and a sentinel directory with one file.
pub(super) struct Fixture {
    pub(super) tmp: tempfile::TempDir,
    pub(super) layer: PathBuf,
    pub(super) outside: PathBuf,
}

impl Fixture {
    pub(super) fn new() -> Fixture {
        let tmp = tempfile::tempdir().unwrap();
        let layer = tmp.path().join("layer");
        let outside = tmp.path().join("outside");
        fs::create_dir(&layer).unwrap();
        fs::create_dir(&outside).unwrap();
        fs::write(outside.join("secret"), SECRET).unwrap();
        Fixture {
            tmp,
            layer,
            outside,
        }
    }

    pub(super) fn apply(&self, tar: &[u8]) -> Result<LayerStats, UnpackError> {
        self.apply_with(tar, &Limits::default())
    }

    pub(super) fn apply_with(
        &self,
        tar: &[u8],
        limits: &Limits,
    ) -> Result<LayerStats, UnpackError> {
        apply_layer(Cursor::new(tar), &self.layer, limits)
    }

    /// Unpacks `tar`, expecting an error, and checks nothing left the layer.
    pub(super) fn reject(&self, tar: &[u8]) -> UnpackError {
        let err = self.apply(tar).expect_err("hostile layer was accepted");
        self.assert_contained();
        err
    }

    /// The layer's path for `rel`.
    pub(super) fn path(&self, rel: &str) -> PathBuf {
        self.layer.join(rel)
    }

    /// Nothing but `layer` and `outside` in the temporary directory, `outside` holds only the
    /// untouched, unlinked sentinel.
    pub(super) fn assert_contained(&self) {
        let mut top: Vec<_> = names(self.tmp.path());
        top.sort();
        assert_eq!(
            top,
            ["layer", "outside"],
            "something was written next to the layer"
        );
        assert_eq!(
            names(&self.outside),
            ["secret"],
            "something was written into the sentinel directory"
        );
        let secret = self.outside.join("secret");
        let meta = fs::symlink_metadata(&secret).unwrap();
        assert!(meta.is_file(), "the sentinel was replaced");
        assert_eq!(meta.nlink(), 1, "the sentinel was hard-linked");
        assert_eq!(
            fs::read(&secret).unwrap(),
            SECRET,
            "the sentinel was modified"
        );
        assert!(
            xattr::list(&secret).unwrap().next().is_none(),
            "the sentinel got xattrs"
        );
        assert!(
            xattr::list(&self.outside).unwrap().next().is_none(),
            "the sentinel directory got xattrs"
        );
    }
}

fn names(dir: &Path) -> Vec<String> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

#[test]
fn unpack_pax_record_length_counts_itself() {
    assert_eq!(pax_record("path", b"a"), b"9 path=a\n");
    assert_eq!(pax_record("k", &[b'v'; 5]), b"11 k=vvvvv\n".to_vec());
}
