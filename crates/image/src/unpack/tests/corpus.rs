//! The hostile-layer corpus (`tests/corpus/layers/`): every case of its `cases.toml` is
//! unpacked (or fed through the pull pipeline, or measured as a manifest) and must be
//! refused with the listed error, or contained with what `after` lists true; in both cases
//! nothing may reach the sentinel next to the layer. A case added to `cases.toml` is run
//! without any change here.

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use bytes::Bytes;
use serde::Deserialize;

use super::Fixture;
use crate::content::ContentStore;
use crate::digest::{Digest, Hasher};
use crate::error::ImageError;
use crate::layer::{store_and_unpack, verify, LayerJob};
use crate::manifest::{check_document_size, MAX_DOCUMENT_SIZE};
use crate::trash::Trash;
use crate::unpack::{
    apply_layer, decompress, Compression, EntryProblem, LinkProblem, PathProblem, UnpackError,
};

/// Files of the corpus directory that are not layers.
const NOT_CASES: [&str; 3] = ["cases.toml", "generate.py", "README.md"];

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/corpus/layers")
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Corpus {
    limits: CorpusLimits,
    case: Vec<Case>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CorpusLimits {
    max_layer_bytes: u64,
    max_layer_entries: u64,
    max_file_bytes: u64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    name: String,
    file: String,
    #[serde(default)]
    kind: Kind,
    what: String,
    outcome: Outcome,
    error: Option<String>,
    #[serde(default)]
    message: Vec<String>,
    #[serde(default)]
    after: After,
    digest: Option<String>,
    diff_id: Option<String>,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Kind {
    #[default]
    Layer,
    Blob,
    Manifest,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Outcome {
    Refused,
    Contained,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct After {
    #[serde(default)]
    files: BTreeMap<String, String>,
    #[serde(default)]
    absent: Vec<String>,
    #[serde(default)]
    symlinks: BTreeMap<String, String>,
    #[serde(default)]
    modes: BTreeMap<String, String>,
    #[serde(default)]
    char_devices: BTreeMap<String, String>,
    #[serde(default)]
    block_devices: BTreeMap<String, String>,
    #[serde(default)]
    fifos: Vec<String>,
    #[serde(default)]
    opaque: Vec<String>,
    #[serde(default)]
    absent_on_host: Vec<String>,
}

fn load() -> Corpus {
    let path = corpus_dir().join("cases.toml");
    let text = fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    toml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn compression_of(file: &str) -> Compression {
    if file.ends_with(".gz") {
        Compression::Gzip
    } else if file.ends_with(".zst") {
        Compression::Zstd
    } else {
        Compression::None
    }
}

fn media_type(c: Compression) -> &'static str {
    match c {
        Compression::None => "application/vnd.oci.image.layer.v1.tar",
        Compression::Gzip => "application/vnd.oci.image.layer.v1.tar+gzip",
        Compression::Zstd => "application/vnd.oci.image.layer.v1.tar+zstd",
    }
}

/// The kind of an unpack error, as `cases.toml` names it.
fn unpack_kind(err: &UnpackError) -> String {
    let name = match err {
        UnpackError::UnsupportedMediaType(_) => "UnsupportedMediaType",
        UnpackError::Decoder { .. } => "Decoder",
        UnpackError::Dest { .. } => "Dest",
        UnpackError::Entry { problem, .. } => return format!("Entry/{}", entry_kind(problem)),
        UnpackError::Header { .. } => "Header",
        UnpackError::Io { .. } => "Io",
        UnpackError::TooManyEntries { .. } => "TooManyEntries",
        UnpackError::TooManyBytes { .. } => "TooManyBytes",
        UnpackError::HeadersTooLarge { .. } => "HeadersTooLarge",
        UnpackError::Tar(_) => "Tar",
        UnpackError::Truncated { .. } => "Truncated",
    };
    name.to_owned()
}

fn path_kind(problem: &PathProblem) -> &'static str {
    match problem {
        PathProblem::DotDot => "DotDot",
        PathProblem::Empty => "Empty",
        PathProblem::Nul => "Nul",
        PathProblem::TooLong { .. } => "TooLong",
    }
}

fn entry_kind(problem: &EntryProblem) -> String {
    let name = match problem {
        EntryProblem::Path(p) => return format!("Path/{}", path_kind(p)),
        EntryProblem::RootNotDirectory => "RootNotDirectory",
        EntryProblem::SymlinkParent { .. } => "SymlinkParent",
        EntryProblem::ParentNotDirectory { .. } => "ParentNotDirectory",
        EntryProblem::HardLink { problem, .. } => {
            let link = match problem {
                LinkProblem::LeavesLayer => "LeavesLayer".to_owned(),
                LinkProblem::Invalid(p) => format!("Invalid/{}", path_kind(p)),
                LinkProblem::Missing => "Missing".to_owned(),
                LinkProblem::Directory => "Directory".to_owned(),
                LinkProblem::SymlinkParent { .. } => "SymlinkParent".to_owned(),
                LinkProblem::ParentNotDirectory { .. } => "ParentNotDirectory".to_owned(),
            };
            return format!("HardLink/{link}");
        }
        EntryProblem::SymlinkTarget { problem, .. } => {
            return format!("SymlinkTarget/{}", path_kind(problem))
        }
        EntryProblem::BadWhiteout { .. } => "BadWhiteout",
        EntryProblem::FileTooLarge { .. } => "FileTooLarge",
        EntryProblem::DeviceNotPermitted => "DeviceNotPermitted",
        EntryProblem::WhiteoutNotPermitted => "WhiteoutNotPermitted",
        EntryProblem::MissingDeviceNumbers => "MissingDeviceNumbers",
        EntryProblem::OwnerOutOfRange { .. } => "OwnerOutOfRange",
        EntryProblem::UnsupportedType { .. } => "UnsupportedType",
    };
    name.to_owned()
}

/// The kind of an image error: `Image/<variant>`, an unpack error's kind inside.
fn image_kind(err: &ImageError) -> String {
    if let ImageError::Unpack { source, .. } = err {
        return format!("Image/Unpack/{}", unpack_kind(source));
    }
    let debug = format!("{err:?}");
    let variant = debug
        .split(|c: char| !c.is_alphanumeric())
        .next()
        .unwrap_or_default();
    format!("Image/{variant}")
}

/// A case's error: its kind and its message.
type Failure = (String, String);

fn run_layer(fx: &Fixture, path: &Path, limits: &super::Limits) -> Result<(), Failure> {
    let file = fs::File::open(path).unwrap();
    let result = decompress(file, compression_of(&path.to_string_lossy()))
        .and_then(|tar| apply_layer(tar, &fx.layer, limits));
    result
        .map(|_| ())
        .map_err(|e| (unpack_kind(&e), e.to_string()))
}

/// The uncompressed digest of a layer file.
fn diff_id_of(path: &Path) -> Digest {
    let mut tar = decompress(
        fs::File::open(path).unwrap(),
        compression_of(&path.to_string_lossy()),
    )
    .unwrap();
    let mut hasher = Hasher::new();
    let mut buf = vec![0; 64 << 10];
    loop {
        let n = tar.read(&mut buf).unwrap();
        if n == 0 {
            return hasher.finish();
        }
        hasher.update(&buf[..n]);
    }
}

/// Feeds the file through the pull pipeline in 4 KiB chunks (as a download arrives), then
/// checks it as a pull does. Nothing may be left in the content store.
fn run_blob(fx: &Fixture, path: &Path, case: &Case, limits: &super::Limits) -> Result<(), Failure> {
    let declared = |value: &Option<String>, actual: &dyn Fn() -> Digest| match value.as_deref() {
        Some("actual") => actual(),
        Some(text) => Digest::parse(text).unwrap(),
        None => panic!("{}: a blob case needs `digest` and `diff_id`", case.name),
    };
    let data = fs::read(path).unwrap();
    let compression = compression_of(&case.file);
    let job = LayerJob {
        digest: declared(&case.digest, &|| Digest::of(&data)),
        size: data.len() as u64,
        media_type: media_type(compression).to_owned(),
        diff_id: declared(&case.diff_id, &|| diff_id_of(path)),
        chain_id: Digest::of(b"corpus"),
    };
    let stores = tempfile::tempdir().unwrap();
    let trash = Trash::open(&stores.path().join("trash")).unwrap();
    let content = ContentStore::open(&stores.path().join("content"), trash).unwrap();
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(16);
    let sender = std::thread::spawn(move || {
        for chunk in data.chunks(4096) {
            if tx.blocking_send(Bytes::copy_from_slice(chunk)).is_err() {
                return;
            }
        }
    });
    let (blob, unpacked) = store_and_unpack(
        rx,
        content.ingest().unwrap(),
        compression,
        &fx.layer,
        limits,
        &job.digest,
    )
    .unwrap();
    sender.join().unwrap();
    let result = verify(&job, &blob, unpacked);
    if result.is_ok() {
        blob.commit("corpus layer", &job.digest, job.size).unwrap();
    } else {
        drop(blob);
        assert!(
            content.list().unwrap().is_empty(),
            "{}: a refused blob was stored",
            case.name
        );
    }
    result.map_err(|e| (image_kind(&e), e.to_string()))
}

/// Decompresses the document (at most one byte past the limit) and measures it.
fn run_manifest(path: &Path) -> Result<(), Failure> {
    let mut document = Vec::new();
    decompress(fs::File::open(path).unwrap(), Compression::Gzip)
        .unwrap()
        .take(MAX_DOCUMENT_SIZE + 1)
        .read_to_end(&mut document)
        .unwrap();
    check_document_size(
        || "manifest of the corpus".to_owned(),
        document.len() as u64,
    )
    .map_err(|e| (image_kind(&e), e.to_string()))
}

fn mode_of(path: &Path) -> std::io::Result<u32> {
    Ok(fs::symlink_metadata(path)?.mode() & 0o7777)
}

fn device(path: &Path, char: bool) -> Result<String, String> {
    let m = fs::symlink_metadata(path).map_err(|e| e.to_string())?;
    let kind = if char {
        m.file_type().is_char_device()
    } else {
        m.file_type().is_block_device()
    };
    if !kind {
        return Err(format!(
            "not a {} device",
            if char { "character" } else { "block" }
        ));
    }
    let rdev = m.rdev();
    Ok(format!(
        "{}:{}",
        nix::sys::stat::major(rdev),
        nix::sys::stat::minor(rdev)
    ))
}

/// What `after` says that is not so.
fn check_after(fx: &Fixture, after: &After) -> Vec<String> {
    let mut wrong = Vec::new();
    let at = |rel: &str| fx.layer.join(rel);
    for (rel, want) in &after.files {
        match fs::read(at(rel)) {
            Ok(got) if got == want.as_bytes() => {}
            Ok(got) => wrong.push(format!("{rel} holds {:?}", String::from_utf8_lossy(&got))),
            Err(e) => wrong.push(format!("{rel}: {e}")),
        }
    }
    for rel in &after.absent {
        if fs::symlink_metadata(at(rel)).is_ok() {
            wrong.push(format!("{rel} exists"));
        }
    }
    for (rel, want) in &after.symlinks {
        match fs::read_link(at(rel)) {
            Ok(got) if got == Path::new(want) => {}
            other => wrong.push(format!("{rel} is not a symlink to {want}: {other:?}")),
        }
    }
    for (rel, want) in &after.modes {
        let want = u32::from_str_radix(want, 8).unwrap();
        match mode_of(&at(rel)) {
            Ok(got) if got == want => {}
            other => wrong.push(format!("{rel}: mode {other:?}, not {want:o}")),
        }
    }
    for (devices, char) in [(&after.char_devices, true), (&after.block_devices, false)] {
        for (rel, want) in devices {
            match device(&at(rel), char) {
                Ok(got) if &got == want => {}
                other => wrong.push(format!("{rel}: device {other:?}, not {want}")),
            }
        }
    }
    for rel in &after.fifos {
        if !fs::symlink_metadata(at(rel)).is_ok_and(|m| m.file_type().is_fifo()) {
            wrong.push(format!("{rel} is not a FIFO"));
        }
    }
    for rel in &after.opaque {
        let value = xattr::get(at(rel), super::super::whiteout::OPAQUE_XATTR);
        if !matches!(value.as_ref().map(|v| v.as_deref()), Ok(Some(b"y"))) {
            wrong.push(format!("{rel:?} is not opaque: {value:?}"));
        }
    }
    for host in &after.absent_on_host {
        if fs::symlink_metadata(host).is_ok() {
            wrong.push(format!("{host} was created on the host"));
        }
    }
    wrong
}

/// Runs one case; what is wrong with its outcome, if anything.
fn run_case(case: &Case, limits: &super::Limits) -> Result<String, String> {
    let path = corpus_dir().join(&case.file);
    let fx = Fixture::new();
    let result = match case.kind {
        Kind::Layer => run_layer(&fx, &path, limits),
        Kind::Blob => run_blob(&fx, &path, case, limits),
        Kind::Manifest => run_manifest(&path),
    };
    let mut wrong = Vec::new();
    let seen = match (&result, case.outcome) {
        (Ok(()), Outcome::Contained) => "contained".to_owned(),
        (Ok(()), Outcome::Refused) => {
            wrong.push("accepted, but must be refused".to_owned());
            "accepted".to_owned()
        }
        (Err((kind, message)), outcome) => {
            if outcome == Outcome::Contained {
                wrong.push(format!("refused, but must be contained: {kind}: {message}"));
            } else if case.error.as_deref() != Some(kind.as_str()) {
                wrong.push(format!(
                    "refused with {kind} ({message}), not {:?}",
                    case.error
                ));
            }
            for part in &case.message {
                if !message.contains(part.as_str()) {
                    wrong.push(format!("message {message:?} does not contain {part:?}"));
                }
            }
            format!("refused: {kind}: {message}")
        }
    };
    wrong.extend(check_after(&fx, &case.after));
    // The sentinel and the layer's surroundings: unchanged, whatever happened.
    if let Err(panic) = std::panic::catch_unwind(|| fx.assert_contained()) {
        let why = panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default();
        wrong.push(format!("not contained: {why}"));
    }
    if wrong.is_empty() {
        Ok(seen)
    } else {
        Err(format!("{seen}; {}", wrong.join("; ")))
    }
}

#[test]
fn corpus_manifest_matches_the_directory() {
    let corpus = load();
    let mut names = std::collections::BTreeSet::new();
    let mut files = std::collections::BTreeSet::new();
    for case in &corpus.case {
        assert!(names.insert(&case.name), "case {} twice", case.name);
        assert!(
            corpus_dir().join(&case.file).is_file(),
            "{}: no file {}",
            case.name,
            case.file
        );
        files.insert(case.file.clone());
        assert!(!case.what.is_empty(), "{}: say what it is", case.name);
        match case.outcome {
            Outcome::Refused => assert!(case.error.is_some(), "{}: which error?", case.name),
            Outcome::Contained => assert!(
                case.error.is_none() && case.message.is_empty(),
                "{}: a contained case has no error",
                case.name
            ),
        }
        assert_eq!(
            case.kind == Kind::Blob,
            case.digest.is_some() && case.diff_id.is_some(),
            "{}: digest and diff_id are for blob cases, and blob cases need both",
            case.name
        );
    }
    for entry in fs::read_dir(corpus_dir()).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        assert!(
            NOT_CASES.contains(&name.as_str()) || files.contains(&name),
            "{name} in the corpus directory belongs to no case of cases.toml"
        );
    }
}

#[test]
fn corpus_every_case_is_refused_or_contained() {
    if !berth_testutil::need_root("root-owned entries, devices and whiteouts in the corpus") {
        return;
    }
    let corpus = load();
    let limits = super::Limits {
        max_entries: corpus.limits.max_layer_entries,
        max_total_bytes: corpus.limits.max_layer_bytes,
        max_file_bytes: corpus.limits.max_file_bytes,
        ..super::Limits::default()
    };
    let mut failures = Vec::new();
    let (mut refused, mut contained) = (0, 0);
    for case in &corpus.case {
        let bytes = fs::metadata(corpus_dir().join(&case.file))
            .map(|m| m.len())
            .unwrap_or(0);
        match run_case(case, &limits) {
            Ok(seen) => {
                match case.outcome {
                    Outcome::Refused => refused += 1,
                    Outcome::Contained => contained += 1,
                }
                eprintln!("ok   {} ({bytes} bytes): {seen}", case.name);
            }
            Err(why) => {
                eprintln!("FAIL {} ({bytes} bytes): {why}", case.name);
                failures.push(format!("{}: {why}", case.name));
            }
        }
    }
    eprintln!(
        "corpus: {} cases, {refused} refused and {contained} contained as expected, {} wrong",
        corpus.case.len(),
        failures.len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
