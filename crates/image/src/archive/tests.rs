//! Import and export against a real image manager in a temporary root: archives built here
//! in both formats (docker save, classic and docker 25+; OCI image layout), hostile ones,
//! and the export → import round trip. Layers hold files owned by the running user, so the
//! tests need no root.

use std::io::Write as _;
use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use serde_json::json;

use super::*;
use crate::digest::Digest;
use crate::error::ImageError;
use crate::manager::tests::open;
use crate::manager::ImageManager;
use crate::trash::tests::wait_until_empty;

/// A tar archive written entry by entry, names byte for byte.
struct Tar(tar::Builder<Vec<u8>>);

impl Tar {
    fn new() -> Tar {
        Tar(tar::Builder::new(Vec::new()))
    }

    fn header(kind: tar::EntryType, name: &[u8], size: u64) -> tar::Header {
        let mut header = tar::Header::new_gnu();
        header.as_old_mut().name[..name.len()].copy_from_slice(name);
        header.set_entry_type(kind);
        header.set_mode(0o644);
        header.set_size(size);
        header.set_uid(nix::unistd::geteuid().as_raw().into());
        header.set_gid(nix::unistd::getegid().as_raw().into());
        header.set_mtime(1_700_000_000);
        header.set_cksum();
        header
    }

    fn file(mut self, name: &str, data: &[u8]) -> Tar {
        let header = Tar::header(tar::EntryType::Regular, name.as_bytes(), data.len() as u64);
        self.0.append(&header, data).unwrap();
        self
    }

    fn link(mut self, kind: tar::EntryType, name: &str, target: &str) -> Tar {
        let mut header = Tar::header(kind, name.as_bytes(), 0);
        header.as_old_mut().linkname[..target.len()].copy_from_slice(target.as_bytes());
        header.set_cksum();
        self.0.append(&header, std::io::empty()).unwrap();
        self
    }

    fn finish(self) -> Vec<u8> {
        self.0.into_inner().unwrap()
    }
}

/// A layer tar holding `files`.
fn layer(files: &[(&str, &str)]) -> Vec<u8> {
    let mut tar = Tar::new();
    for (name, content) in files {
        tar = tar.file(name, content.as_bytes());
    }
    tar.finish()
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(data).unwrap();
    encoder.finish().unwrap()
}

/// An image config over layer tars `tars` (uncompressed).
fn config(tars: &[&[u8]], marker: &str) -> Vec<u8> {
    let diff_ids: Vec<String> = tars.iter().map(|t| Digest::of(t).to_string()).collect();
    json!({
        "architecture": crate::manifest::host_platform().architecture,
        "os": "linux",
        "config": { "Cmd": ["sh"], "Labels": { "marker": marker } },
        "rootfs": { "type": "layers", "diff_ids": diff_ids },
    })
    .to_string()
    .into_bytes()
}

fn hex(data: &[u8]) -> String {
    Digest::of(data).hex().to_owned()
}

/// Feeds `archive` to `import` in chunks of 1000 bytes (64 KiB past 1 MiB).
async fn import(
    images: &ImageManager,
    archive: Vec<u8>,
    pin: bool,
) -> Result<Vec<berth_store::ImageRecord>, ImageError> {
    let chunk = if archive.len() > 1 << 20 {
        64 << 10
    } else {
        1000
    };
    let chunks: Vec<Result<Bytes, std::io::Error>> = archive
        .chunks(chunk)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    images
        .import(futures_util::stream::iter(chunks), ImportOptions { pin })
        .await
}

/// A classic `docker save` archive of two images sharing their base layer (the second's
/// base is a symlink to the first's, as docker writes it): returns the archive and the two
/// configs.
fn docker_save() -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    let base = layer(&[("etc/os-release", "base\n"), ("bin/sh", "#!shell\n")]);
    let top = layer(&[("etc/berth-test-image", "second\n")]);
    let first = config(&[&base], "first");
    let second = config(&[&base, &top], "second");
    let manifest = json!([
        { "Config": format!("{}.json", hex(&first)), "RepoTags": ["first:1"],
          "Layers": ["aaa/layer.tar"] },
        { "Config": format!("{}.json", hex(&second)),
          "RepoTags": ["example.com/team/second:2", "second:latest"],
          "Layers": ["bbb/layer.tar", "./ccc/layer.tar"] },
    ])
    .to_string();
    let archive = Tar::new()
        .file("aaa/VERSION", b"1.0")
        .file("aaa/layer.tar", &base)
        .link(tar::EntryType::Symlink, "bbb/layer.tar", "../aaa/layer.tar")
        .file("ccc/layer.tar", &top)
        .file(&format!("{}.json", hex(&first)), &first)
        .file(&format!("{}.json", hex(&second)), &second)
        .file("manifest.json", manifest.as_bytes())
        .file("repositories", b"{}")
        .finish();
    (archive, first, second)
}

/// An OCI image layout archive of one image with a gzip layer, its index entry annotated
/// with `annotations`: returns the archive, the config and the manifest.
fn oci_layout(annotations: serde_json::Value) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    let tar = layer(&[("etc/berth-test-image", "oci\n"), ("bin/true", "x")]);
    let compressed = gzip(&tar);
    let config = config(&[&tar], "oci");
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": crate::manifest::OCI_MANIFEST,
        "config": { "mediaType": "application/vnd.oci.image.config.v1+json",
                    "digest": Digest::of(&config).to_string(), "size": config.len() },
        "layers": [{ "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                     "digest": Digest::of(&compressed).to_string(), "size": compressed.len() }],
    })
    .to_string()
    .into_bytes();
    let index = json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": crate::manifest::OCI_MANIFEST,
            "digest": Digest::of(&manifest).to_string(), "size": manifest.len(),
            "annotations": annotations,
        }],
    })
    .to_string();
    let archive = Tar::new()
        .file("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#)
        .file(&format!("blobs/sha256/{}", hex(&compressed)), &compressed)
        .file(&format!("blobs/sha256/{}", hex(&config)), &config)
        .file(&format!("blobs/sha256/{}", hex(&manifest)), &manifest)
        .file("index.json", index.as_bytes())
        .finish();
    (archive, config, manifest)
}

/// Nothing of a refused archive stayed: no image, blob, snapshot or pending file.
fn assert_nothing_left(root: &Path, images: &ImageManager) {
    assert!(images.list().unwrap().is_empty(), "an image was recorded");
    assert_eq!(images.content.list().unwrap(), Vec::<Digest>::new());
    assert_eq!(images.snapshots.list().unwrap(), Vec::<Digest>::new());
    wait_until_empty(&root.join("trash"));
    for dir in ["content/ingest", "snapshots"] {
        let left: Vec<_> = std::fs::read_dir(root.join(dir)).unwrap().collect();
        assert!(left.is_empty(), "{dir}: {left:?}");
    }
}

#[tokio::test]
async fn docker_save_images_are_imported_with_their_tags() {
    let root = tempfile::tempdir().unwrap();
    let images = open(root.path());
    let (archive, first, second) = docker_save();
    let records = import(&images, archive.clone(), false).await.unwrap();
    assert_eq!(records.len(), 2);
    assert_eq!(records[0].id, Digest::of(&first).to_string());
    assert_eq!(records[0].repo_tags, ["docker.io/library/first:1"]);
    assert_eq!(records[1].id, Digest::of(&second).to_string());
    assert_eq!(
        records[1].repo_tags,
        [
            "example.com/team/second:2",
            "docker.io/library/second:latest"
        ]
    );
    assert!(records
        .iter()
        .all(|r| !r.pinned && r.repo_digests.is_empty()));
    assert_eq!(records[1].chain_ids.len(), 2);
    // Found by tag; the shared base layer is one snapshot.
    assert_eq!(images.status("second").unwrap().unwrap().id, records[1].id);
    assert_eq!(images.snapshots.list().unwrap().len(), 2);
    let top = Digest::parse(&records[1].chain_ids[1]).unwrap();
    assert_eq!(
        std::fs::read_to_string(images.snapshot_fs(&top).join("etc/berth-test-image")).unwrap(),
        "second\n"
    );
    // Configs, two layers and the two manifests berth wrote; VERSION and repositories are
    // not kept.
    assert_eq!(images.content.list().unwrap().len(), 6);
    let manifest = images
        .content
        .read(&Digest::parse(&records[1].manifest_digest).unwrap())
        .unwrap();
    let manifest: serde_json::Value = serde_json::from_slice(&manifest).unwrap();
    assert_eq!(
        manifest["layers"][0]["mediaType"],
        "application/vnd.docker.image.rootfs.diff.tar"
    );

    // Again, pinned: the same images and manifests, now pinned.
    let again = import(&images, archive, true).await.unwrap();
    assert_eq!(again[1].manifest_digest, records[1].manifest_digest);
    assert!(again.iter().all(|r| r.pinned));
    assert!(images.status(&records[0].id).unwrap().unwrap().pinned);
    wait_until_empty(&root.path().join("trash"));
}

#[tokio::test]
async fn an_import_waits_for_a_garbage_collection_in_progress() {
    let root = tempfile::tempdir().unwrap();
    let images = std::sync::Arc::new(open(root.path()));
    // What RemoveImage holds while it collects.
    let collecting = images.gc_lock.clone().write_owned().await;
    let importing = {
        let images = images.clone();
        tokio::spawn(async move { import(&images, docker_save().0, false).await })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!importing.is_finished());
    assert!(images.list().unwrap().is_empty());
    assert!(images.snapshots.list().unwrap().is_empty());
    drop(collecting);
    let records = importing.await.unwrap().unwrap();
    assert_eq!(records.len(), 2);
}

#[tokio::test]
async fn docker_25_archives_point_into_blobs() {
    let root = tempfile::tempdir().unwrap();
    let images = open(root.path());
    let tar = layer(&[("hello", "world")]);
    let compressed = gzip(&tar);
    let config = config(&[&tar], "docker25");
    let manifest = json!([{
        "Config": format!("blobs/sha256/{}", hex(&config)),
        "RepoTags": ["registry.example:5000/x/y:z"],
        "Layers": [format!("blobs/sha256/{}", hex(&compressed))],
    }])
    .to_string();
    let archive = Tar::new()
        .file(&format!("blobs/sha256/{}", hex(&compressed)), &compressed)
        .file(&format!("blobs/sha256/{}", hex(&config)), &config)
        .file("manifest.json", manifest.as_bytes())
        .finish();
    let records = import(&images, archive, false).await.unwrap();
    assert_eq!(records[0].repo_tags, ["registry.example:5000/x/y:z"]);
    let manifest = images
        .content
        .read(&Digest::parse(&records[0].manifest_digest).unwrap())
        .unwrap();
    let manifest: serde_json::Value = serde_json::from_slice(&manifest).unwrap();
    assert_eq!(
        manifest["layers"][0]["mediaType"],
        "application/vnd.docker.image.rootfs.diff.tar.gzip"
    );
    assert_eq!(
        manifest["layers"][0]["digest"],
        Digest::of(&compressed).to_string()
    );
}

#[tokio::test]
async fn oci_layouts_are_named_by_their_annotations() {
    let root = tempfile::tempdir().unwrap();
    let images = open(root.path());
    let (archive, config, manifest) = oci_layout(named("docker.io/library/busybox:1.36", "1.36"));
    let records = import(&images, archive, false).await.unwrap();
    assert_eq!(records.len(), 1);
    let record = &records[0];
    assert_eq!(record.id, Digest::of(&config).to_string());
    assert_eq!(record.manifest_digest, Digest::of(&manifest).to_string());
    assert_eq!(record.repo_tags, ["docker.io/library/busybox:1.36"]);
    assert_eq!(
        record.repo_digests,
        [format!(
            "docker.io/library/busybox@{}",
            Digest::of(&manifest)
        )]
    );

    // A whole reference in ref.name names the image too; a bad name refuses the archive.
    let root = tempfile::tempdir().unwrap();
    let images = open(root.path());
    let (archive, _, _) = oci_layout(json!({ ANNOTATION_REF_NAME: "quay.io/org/tool:v2" }));
    let records = import(&images, archive, false).await.unwrap();
    assert_eq!(records[0].repo_tags, ["quay.io/org/tool:v2"]);
    let (archive, _, _) = oci_layout(json!({ ANNOTATION_IMAGE_NAME: "Not A Name" }));
    let err = import(&images, archive, false).await.unwrap_err();
    assert!(
        matches!(err, ImageError::Archive(ArchiveError::BadReference { .. })),
        "{err}"
    );
}

/// Annotations naming an image as containerd and docker do.
fn named(image_name: &str, ref_name: &str) -> serde_json::Value {
    json!({ ANNOTATION_IMAGE_NAME: image_name, ANNOTATION_REF_NAME: ref_name })
}

#[tokio::test]
async fn a_nested_index_gives_this_hosts_manifest() {
    let root = tempfile::tempdir().unwrap();
    let images = open(root.path());
    let (inner, config, manifest) = oci_layout(json!({}));
    let host = crate::manifest::host_platform();
    let nested = json!({
        "schemaVersion": 2,
        "mediaType": crate::manifest::OCI_INDEX,
        "manifests": [
            { "mediaType": crate::manifest::OCI_MANIFEST, "size": 10,
              "digest": format!("sha256:{}", "e".repeat(64)),
              "platform": { "os": "linux", "architecture": "other-arch" } },
            { "mediaType": crate::manifest::OCI_MANIFEST,
              "digest": Digest::of(&manifest).to_string(), "size": manifest.len(),
              "platform": { "os": host.os, "architecture": host.architecture,
                            "variant": host.variant } },
        ],
    })
    .to_string()
    .into_bytes();
    let index = json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": crate::manifest::OCI_INDEX,
            "digest": Digest::of(&nested).to_string(), "size": nested.len(),
            "annotations": { ANNOTATION_IMAGE_NAME: "ghcr.io/a/b:multi" },
        }],
    })
    .to_string();
    // The single-image archive's blobs, with the nested index and a new index.json.
    let archive = with_index(&inner, &[&nested], &index);
    let records = import(&images, archive, false).await.unwrap();
    assert_eq!(records[0].id, Digest::of(&config).to_string());
    assert_eq!(
        records[0].manifest_digest,
        Digest::of(&manifest).to_string()
    );
    assert_eq!(records[0].repo_tags, ["ghcr.io/a/b:multi"]);
    // The repo digest is the index's, as the registry would serve the tag.
    assert_eq!(
        records[0].repo_digests,
        [format!("ghcr.io/a/b@{}", Digest::of(&nested))]
    );
    assert!(images.content.contains(&Digest::of(&nested)));
}

/// `archive` (an OCI layout) with `index` as its index.json and `blobs` added.
fn with_index(archive: &[u8], blobs: &[&[u8]], index: &str) -> Vec<u8> {
    let mut tar = Tar::new();
    for entry in tar::Archive::new(archive).entries().unwrap() {
        let mut entry = entry.unwrap();
        let name = entry.path().unwrap().display().to_string();
        let mut data = Vec::new();
        std::io::Read::read_to_end(&mut entry, &mut data).unwrap();
        if name != "index.json" {
            tar = tar.file(&name, &data);
        }
    }
    for blob in blobs {
        tar = tar.file(&format!("blobs/sha256/{}", hex(blob)), blob);
    }
    tar.file("index.json", index.as_bytes()).finish()
}

#[tokio::test]
async fn an_archive_for_another_platform_says_so() {
    let (inner, _, manifest) = oci_layout(named("a:1", "1"));
    let index = json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": crate::manifest::OCI_MANIFEST,
            "digest": Digest::of(&manifest).to_string(), "size": manifest.len(),
            "platform": { "os": "linux", "architecture": "other-arch" },
        }],
    })
    .to_string();
    let err = refused(with_index(&inner, &[], &index)).await;
    assert!(
        matches!(&err, ImageError::NoMatchingPlatform { available, .. } if available == "linux/other-arch"),
        "{err}"
    );
}

#[tokio::test]
async fn export_then_import_gives_the_same_images() {
    let root = tempfile::tempdir().unwrap();
    let images = open(root.path());
    let (archive, _, _) = docker_save();
    let docker = import(&images, archive, false).await.unwrap();
    let (archive, _, _) = oci_layout(named("docker.io/library/busybox:1.36", "1.36"));
    let oci = import(&images, archive, false).await.unwrap();

    let names = vec![
        "example.com/team/second:2".to_owned(),
        "second:latest".to_owned(),
        oci[0].id.clone(),
        "first:1".to_owned(),
    ];
    let mut exported = Vec::new();
    images
        .export(&names)
        .await
        .unwrap()
        .write_to(&mut exported)
        .unwrap();

    // The layout: oci-layout, blobs, index.json with a named entry per name, manifest.json.
    let mut index = None;
    let mut docker_manifest = None;
    let mut names_in_order = Vec::new();
    for entry in tar::Archive::new(&exported[..]).entries().unwrap() {
        let mut entry = entry.unwrap();
        let name = entry.path().unwrap().display().to_string();
        let mut data = Vec::new();
        std::io::Read::read_to_end(&mut entry, &mut data).unwrap();
        if let Some(hex) = name.strip_prefix("blobs/sha256/") {
            if !hex.is_empty() {
                assert_eq!(Digest::of(&data).hex(), hex);
            }
        }
        match name.as_str() {
            "index.json" => {
                index = Some(serde_json::from_slice::<serde_json::Value>(&data).unwrap())
            }
            "manifest.json" => {
                docker_manifest = Some(serde_json::from_slice::<serde_json::Value>(&data).unwrap())
            }
            _ => {}
        }
        names_in_order.push(name);
    }
    assert_eq!(names_in_order[0], "oci-layout");
    let index = index.expect("index.json");
    let entries = index["manifests"].as_array().unwrap();
    let annotated: Vec<(&str, &str)> = entries
        .iter()
        .map(|e| {
            (
                e["annotations"][ANNOTATION_IMAGE_NAME].as_str().unwrap(),
                e["annotations"][ANNOTATION_REF_NAME].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        annotated,
        [
            ("example.com/team/second:2", "2"),
            ("docker.io/library/second:latest", "latest"),
            ("docker.io/library/busybox:1.36", "1.36"),
            ("docker.io/library/first:1", "1"),
        ]
    );
    let docker_manifest = docker_manifest.expect("manifest.json");
    assert_eq!(docker_manifest.as_array().unwrap().len(), 3);
    assert_eq!(
        docker_manifest[0]["RepoTags"],
        json!([
            "example.com/team/second:2",
            "docker.io/library/second:latest"
        ])
    );

    // Into a fresh root: the same IDs, manifests and tags.
    let other_root = tempfile::tempdir().unwrap();
    let other = open(other_root.path());
    let records = import(&other, exported, false).await.unwrap();
    let ids: Vec<&str> = records.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            docker[1].id.as_str(),
            oci[0].id.as_str(),
            docker[0].id.as_str()
        ]
    );
    assert_eq!(records[0].manifest_digest, docker[1].manifest_digest);
    assert_eq!(records[1].manifest_digest, oci[0].manifest_digest);
    assert_eq!(records[0].repo_tags, docker[1].repo_tags);
    assert_eq!(records[1].repo_tags, oci[0].repo_tags);

    let err = images.export(&["nothere:1".to_owned()]).await.unwrap_err();
    assert!(matches!(err, ImageError::UnknownImage { .. }), "{err}");
}

/// Imports `archive`, expecting it refused; checks nothing stayed and returns the error.
async fn refused(archive: Vec<u8>) -> ImageError {
    let root = tempfile::tempdir().unwrap();
    let images = open(root.path());
    let err = import(&images, archive, false).await.unwrap_err();
    assert_nothing_left(root.path(), &images);
    err
}

#[tokio::test]
async fn a_blob_whose_digest_lies_is_refused() {
    let (archive, _, _) = oci_layout(named("a:1", "1"));
    // Same length, other bytes: the layer blob's content no longer hashes to its name.
    let tar = layer(&[("etc/berth-test-image", "oci\n"), ("bin/true", "x")]);
    let compressed = gzip(&tar);
    let mut forged = compressed.clone();
    let middle = forged.len() / 2;
    forged[middle] ^= 0xff;
    let position = archive
        .windows(compressed.len())
        .position(|w| w == compressed.as_slice())
        .unwrap();
    let mut archive = archive;
    archive[position..position + forged.len()].copy_from_slice(&forged);
    let err = refused(archive).await;
    assert!(
        matches!(&err, ImageError::DigestMismatch { expected, .. } if *expected == Digest::of(&compressed)),
        "{err}"
    );
}

#[tokio::test]
async fn a_manifest_naming_a_missing_blob_is_refused() {
    let (archive, _, _) = oci_layout(named("a:1", "1"));
    let mut tar = Tar::new();
    for entry in tar::Archive::new(&archive[..]).entries().unwrap() {
        let mut entry = entry.unwrap();
        let name = entry.path().unwrap().display().to_string();
        let mut data = Vec::new();
        std::io::Read::read_to_end(&mut entry, &mut data).unwrap();
        if data.starts_with(&[0x1f, 0x8b]) {
            continue; // the layer
        }
        tar = tar.file(&name, &data);
    }
    let err = refused(tar.finish()).await;
    assert!(
        matches!(err, ImageError::Archive(ArchiveError::MissingBlob { .. })),
        "{err}"
    );

    // docker save: a Layers path that is not in the archive.
    let manifest = json!([{ "Config": "c.json", "RepoTags": null, "Layers": ["nope/layer.tar"] }]);
    let archive = Tar::new()
        .file("c.json", &config(&[b"x"], "c"))
        .file("manifest.json", manifest.to_string().as_bytes())
        .finish();
    let err = refused(archive).await;
    assert!(
        matches!(&err, ImageError::Archive(ArchiveError::MissingEntry { name, .. }) if name == "nope/layer.tar"),
        "{err}"
    );
}

#[tokio::test]
async fn oversized_documents_are_refused_from_their_header() {
    let huge = vec![b' '; crate::manifest::MAX_DOCUMENT_SIZE as usize + 1];
    let archive = Tar::new().file("manifest.json", &huge).finish();
    let err = refused(archive).await;
    assert!(matches!(err, ImageError::TooLarge { .. }), "{err}");
    assert!(err.to_string().contains("manifest.json"), "{err}");

    // A config over the limit, named by a docker manifest.
    let mut config = b"{\"rootfs\":{\"diff_ids\":[]}}".to_vec();
    config.resize(crate::manifest::MAX_DOCUMENT_SIZE as usize + 1, b' ');
    let manifest = json!([{ "Config": "c.json", "RepoTags": ["a:1"], "Layers": [] }]);
    let archive = Tar::new()
        .file("c.json", &config)
        .file("manifest.json", manifest.to_string().as_bytes())
        .finish();
    let err = refused(archive).await;
    assert!(matches!(err, ImageError::TooLarge { .. }), "{err}");
}

#[tokio::test]
async fn the_documents_of_one_archive_are_bounded_in_all() {
    // Nine configs just under the limit of one document each: over the archive's bound.
    let mut tar = Tar::new();
    let mut entries = Vec::new();
    for n in 0..9 {
        let mut config = format!("{{\"n\":{n},\"rootfs\":{{\"diff_ids\":[]}}}}").into_bytes();
        config.resize(crate::manifest::MAX_DOCUMENT_SIZE as usize - 1, b' ');
        tar = tar.file(&format!("c{n}.json"), &config);
        entries.push(
            json!({ "Config": format!("c{n}.json"), "RepoTags": [format!("a:{n}")], "Layers": [] }),
        );
    }
    let manifest = serde_json::Value::Array(entries).to_string();
    let err = refused(tar.file("manifest.json", manifest.as_bytes()).finish()).await;
    assert!(
        matches!(&err, ImageError::TooLarge { limit, .. } if *limit == MAX_DOCUMENTS_BYTES),
        "{err}"
    );
}

#[tokio::test]
async fn hostile_names_and_links_are_refused() {
    let (good, _, _) = docker_save();
    for (what, archive) in [
        ("dot-dot", Tar::new().file("../../x", b"boom").finish()),
        ("absolute", Tar::new().file("/etc/x", b"boom").finish()),
        (
            "symlink out",
            Tar::new()
                .link(
                    tar::EntryType::Symlink,
                    "aaa/layer.tar",
                    "../../../etc/passwd",
                )
                .finish(),
        ),
        (
            "hard link out",
            Tar::new()
                .link(tar::EntryType::Link, "aaa/layer.tar", "../x")
                .finish(),
        ),
    ] {
        // The hostile entry first, then a whole valid archive: refused all the same.
        let mut archive = archive;
        archive.truncate(archive.len() - 1024);
        archive.extend_from_slice(&good);
        let err = refused(archive).await;
        assert!(
            matches!(
                err,
                ImageError::Archive(ArchiveError::BadName { .. } | ArchiveError::BadLink { .. })
            ),
            "{what}: {err}"
        );
    }
    // A link loop.
    let manifest = json!([{ "Config": "a", "Layers": [] }]);
    let archive = Tar::new()
        .link(tar::EntryType::Symlink, "a", "b")
        .link(tar::EntryType::Symlink, "b", "a")
        .file("manifest.json", manifest.to_string().as_bytes())
        .finish();
    let err = refused(archive).await;
    assert!(
        matches!(err, ImageError::Archive(ArchiveError::BadLink { .. })),
        "{err}"
    );
}

#[tokio::test]
async fn a_layer_that_is_not_its_diff_id_is_refused() {
    let real = layer(&[("a", "1")]);
    let other = layer(&[("a", "2")]);
    let config = config(&[&real], "x");
    let manifest = json!([{ "Config": "c.json", "RepoTags": ["a:1"], "Layers": ["l.tar"] }]);
    let archive = Tar::new()
        .file("l.tar", &other)
        .file("c.json", &config)
        .file("manifest.json", manifest.to_string().as_bytes())
        .finish();
    let err = refused(archive).await;
    assert!(
        matches!(&err, ImageError::DigestMismatch { what, .. } if what.contains("diff ID")),
        "{err}"
    );
}

#[tokio::test]
async fn what_is_no_image_archive_is_refused() {
    let err = refused(Tar::new().file("hello", b"x").finish()).await;
    assert!(
        matches!(err, ImageError::Archive(ArchiveError::NotAnImageArchive)),
        "{err}"
    );
    let err = refused(b"this is not a tar archive at all, just text".repeat(20)).await;
    assert!(
        matches!(err, ImageError::Archive(ArchiveError::Read { .. })),
        "{err}"
    );
    let err = refused(Tar::new().file("manifest.json", b"[]").finish()).await;
    assert!(
        matches!(err, ImageError::Archive(ArchiveError::NoImages)),
        "{err}"
    );
    let err = refused(
        Tar::new()
            .file("x", b"1")
            .file("x", b"2")
            .file("manifest.json", b"[]")
            .finish(),
    )
    .await;
    assert!(
        matches!(err, ImageError::Archive(ArchiveError::Duplicate { .. })),
        "{err}"
    );
    let device = {
        let mut tar = Tar::new();
        let header = Tar::header(tar::EntryType::Char, b"dev/null", 0);
        tar.0.append(&header, std::io::empty()).unwrap();
        tar.finish()
    };
    let err = refused(device).await;
    assert!(
        matches!(
            err,
            ImageError::Archive(ArchiveError::UnsupportedEntry { .. })
        ),
        "{err}"
    );
    let (mut archive, _, _) = docker_save();
    archive.extend(std::iter::repeat_n(7u8, MAX_TRAILING_BYTES as usize + 2048));
    let err = refused(archive).await;
    assert!(
        matches!(err, ImageError::Archive(ArchiveError::TrailingData { .. })),
        "{err}"
    );
}

#[tokio::test]
async fn a_huge_pax_header_is_refused_before_it_is_read() {
    // A PAX extension header claiming 64 MiB of records.
    let mut tar = Tar::new();
    let mut header = Tar::header(tar::EntryType::XHeader, b"PaxHeader", 64 << 20);
    header.set_cksum();
    let mut archive = std::mem::take(tar.0.get_mut());
    archive.extend_from_slice(header.as_bytes());
    archive.extend(std::iter::repeat_n(b'9', 4 << 20));
    let err = refused(archive).await;
    assert!(matches!(err, ImageError::TooLarge { .. }), "{err}");
}

#[tokio::test]
async fn a_stream_that_fails_fails_the_import() {
    let root = tempfile::tempdir().unwrap();
    let images = open(root.path());
    let (archive, _, _) = docker_save();
    let chunks = vec![
        Ok(Bytes::copy_from_slice(&archive[..5000])),
        Err(std::io::Error::other("client went away")),
    ];
    let err = images
        .import(futures_util::stream::iter(chunks), ImportOptions::default())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("client went away"), "{err}");
    assert_nothing_left(root.path(), &images);
}

#[test]
fn compression_is_recognised_by_its_magic() {
    use crate::unpack::Compression;
    assert_eq!(plan::sniff(&gzip(b"x")[..4]), Compression::Gzip);
    assert_eq!(plan::sniff(&[0x28, 0xb5, 0x2f, 0xfd]), Compression::Zstd);
    assert_eq!(plan::sniff(b"etc/"), Compression::None);
    assert_eq!(plan::sniff(b""), Compression::None);
}
