//! ImageService against real registries: PullImage (tag, digest, short names, hosts.toml
//! mirrors, manifest lists, gzip/zstd/uncompressed layers, basic auth, corrupted blobs),
//! ImageStatus, ListImages, RemoveImage, ImageFsInfo, a restart, and crictl.
//!
//! Every test needs the shared test registry (`BERTH_TEST_REGISTRY`, started by
//! `tests/run.sh` with the images of `tests/images/build.sh`); without it a test prints a
//! note and passes, unless `BERTH_REQUIRE_REGISTRY=1`. Tests that need more (auth, corrupted
//! blobs, manifest lists) start their own registry on 127.0.0.1:5001.. and push
//! `tests/images/fixtures.sh` to it. Expected digests are read from the registry with
//! skopeo, never from berth.
//!
//! What the tests assume of berth's layout under `--root` (see `assert_nothing_stored`):
//! - `<root>/content` holds the content store: every regular file below it is a verified blob
//!   whose file name is the 64-hex sha256 of its content (any directory structure, e.g.
//!   `content/blobs/sha256/<hex>`); nothing else survives a finished pull (no temp or ingest
//!   files);
//! - `<root>/snapshots` holds the unpacked layers: after a failed pull, and after every image is
//!   removed, no file, symlink or device is left below it (empty directories may stay);
//! - `ImageFsInfo` measures exactly those two trees.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use berth_integration::registry::{
    base64, host_architecture, inspect_image, inspect_index, on_path, run, run_unchecked,
    sha256_file, shared_registry, skip_or_panic, Registry,
};
use berth_integration::{Berthd, Layout};
use cri_api::v1;
use cri_api::ImageServiceClient;
use tonic::transport::Channel;
use tonic::{Code, Status};

type Images = ImageServiceClient<Channel>;

/// Longest a single pull may take here (local registry, small images).
const PULL_TIMEOUT: Duration = Duration::from_secs(180);
/// What may stay of an empty image store after removals: directory blocks (ext4 never shrinks
/// a directory) and a few empty directories.
const SLACK_BYTES: u64 = 64 * 1024;
const SLACK_INODES: u64 = 16;

/// critest's default image, served by the shared registry through the registry.k8s.io mirror.
const BUSYBOX: &str = "registry.k8s.io/e2e-test-images/busybox:1.29-2";
const BUSYBOX_REPO: &str = "registry.k8s.io/e2e-test-images/busybox";
const BUSYBOX_LOCAL: &str = "e2e-test-images/busybox:1.29-2";

// ---------------------------------------------------------------------------------------------
// Helpers.

fn spec(image: &str) -> Option<v1::ImageSpec> {
    Some(v1::ImageSpec {
        image: image.to_owned(),
        ..Default::default()
    })
}

async fn pull(
    images: &mut Images,
    image: &str,
    auth: Option<v1::AuthConfig>,
) -> Result<String, Status> {
    let request = v1::PullImageRequest {
        image: spec(image),
        auth,
        sandbox_config: None,
    };
    match tokio::time::timeout(PULL_TIMEOUT, images.pull_image(request)).await {
        Ok(result) => result.map(|r| r.into_inner().image_ref),
        Err(_) => panic!("PullImage({image}) did not answer within {PULL_TIMEOUT:?}"),
    }
}

async fn pull_ok(images: &mut Images, image: &str) -> String {
    pull(images, image, None)
        .await
        .unwrap_or_else(|s| panic!("PullImage({image}): {s:?}"))
}

async fn status_with_info(
    images: &mut Images,
    image: &str,
    verbose: bool,
) -> (Option<v1::Image>, HashMap<String, String>) {
    let response = images
        .image_status(v1::ImageStatusRequest {
            image: spec(image),
            verbose,
        })
        .await
        .unwrap_or_else(|s| panic!("ImageStatus({image}): {s:?}"))
        .into_inner();
    (response.image, response.info)
}

async fn status(images: &mut Images, image: &str) -> Option<v1::Image> {
    status_with_info(images, image, false).await.0
}

async fn list(images: &mut Images, filter: Option<&str>) -> Vec<v1::Image> {
    images
        .list_images(v1::ListImagesRequest {
            filter: filter.map(|f| v1::ImageFilter { image: spec(f) }),
        })
        .await
        .unwrap_or_else(|s| panic!("ListImages: {s:?}"))
        .into_inner()
        .images
}

async fn remove(images: &mut Images, image: &str) {
    images
        .remove_image(v1::RemoveImageRequest { image: spec(image) })
        .await
        .unwrap_or_else(|s| panic!("RemoveImage({image}): {s:?}"));
}

/// `(used bytes, inodes used)` of the one image filesystem.
async fn fs_usage(images: &mut Images) -> (u64, u64) {
    let response = images
        .image_fs_info(v1::ImageFsInfoRequest {})
        .await
        .unwrap_or_else(|s| panic!("ImageFsInfo: {s:?}"))
        .into_inner();
    assert_eq!(response.image_filesystems.len(), 1, "{response:?}");
    let fs = &response.image_filesystems[0];
    (
        fs.used_bytes.as_ref().expect("used_bytes").value,
        fs.inodes_used.as_ref().expect("inodes_used").value,
    )
}

/// A daemon that pulls registry.k8s.io, k8s.gcr.io, gcr.io, public.ecr.aws and docker.io
/// images from `registry` (hosts.toml files written by `tests/images/mirror-hosts.sh`).
fn mirrored_daemon(registry: &str) -> Berthd {
    let layout = Layout::new();
    layout.mirror_to(registry);
    layout.start()
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

/// Whether any JSON value in `info` has a key `key` whose value is the string `want`.
fn info_has(info: &HashMap<String, String>, key: &str, want: &str) -> bool {
    fn walk(v: &serde_json::Value, key: &str, want: &str) -> bool {
        match v {
            serde_json::Value::Object(map) => map
                .iter()
                .any(|(k, v)| (k == key && v == want) || walk(v, key, want)),
            serde_json::Value::Array(items) => items.iter().any(|v| walk(v, key, want)),
            _ => false,
        }
    }
    info.values().any(|text| {
        serde_json::from_str::<serde_json::Value>(text).is_ok_and(|v| walk(&v, key, want))
    })
}

fn hex(digest: &str) -> &str {
    digest.strip_prefix("sha256:").unwrap_or(digest)
}

/// Regular files below `dir` (not following symlinks), and every other non-directory entry.
fn walk(dir: &Path) -> (Vec<std::path::PathBuf>, Vec<std::path::PathBuf>) {
    let mut files = Vec::new();
    let mut others = Vec::new();
    let mut pending = vec![dir.to_owned()];
    while let Some(path) = pending.pop() {
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        if meta.is_dir() {
            for entry in std::fs::read_dir(&path).unwrap() {
                pending.push(entry.unwrap().path());
            }
        } else if meta.is_file() {
            files.push(path);
        } else {
            others.push(path);
        }
    }
    (files, others)
}

/// Every regular file under `<root>/content` is a blob named by its own sha256; returns their
/// digests.
fn verified_blobs(root: &Path) -> Vec<String> {
    let (files, others) = walk(&root.join("content"));
    assert!(
        others.is_empty(),
        "non-regular entries in the content store: {others:?}"
    );
    files
        .iter()
        .map(|file| {
            let name = file.file_name().unwrap().to_string_lossy().into_owned();
            assert!(
                name.len() == 64 && name.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()),
                "{} in the content store is not a blob named by its sha256 (temp or ingest file left behind?)",
                file.display()
            );
            let digest = sha256_file(file);
            assert_eq!(
                hex(&digest),
                name,
                "{} does not hold the content its name promises",
                file.display()
            );
            format!("sha256:{name}")
        })
        .collect()
}

/// After a failed pull on an otherwise empty daemon: no image, no blob of `forbidden`, every
/// remaining blob verified, nothing at all in the snapshots, and no temporary file anywhere
/// under `root` (outside the metadata database).
fn assert_nothing_stored(root: &Path, forbidden: &[String]) {
    let blobs = verified_blobs(root);
    for digest in forbidden {
        assert!(
            !blobs.contains(digest),
            "blob {digest} of the failed pull stayed in the content store"
        );
    }
    let (files, others) = walk(&root.join("snapshots"));
    assert!(
        files.is_empty() && others.is_empty(),
        "a failed pull left snapshot content behind: {:?}",
        files.iter().chain(&others).take(20).collect::<Vec<_>>()
    );
    let (files, _) = walk(root);
    let temporary: Vec<_> = files
        .iter()
        .filter(|f| !f.starts_with(root.join("metadata")))
        .filter(|f| {
            let name = f.file_name().unwrap().to_string_lossy().to_lowercase();
            ["tmp", "temp", "partial", "ingest", "download"]
                .iter()
                .any(|marker| name.contains(marker))
        })
        .collect();
    assert!(
        temporary.is_empty(),
        "temporary files left behind: {temporary:?}"
    );
}

fn assert_auth_error(what: &str, result: Result<String, Status>) {
    let status = result.expect_err(what);
    assert!(
        matches!(
            status.code(),
            Code::Unknown | Code::Unauthenticated | Code::PermissionDenied
        ),
        "{what}: unexpected code {status:?}"
    );
    let message = status.message().to_lowercase();
    assert!(
        [
            "unauthorized",
            "not authorized",
            "401",
            "authentication",
            "credentials"
        ]
        .iter()
        .any(|word| message.contains(word)),
        "{what}: the message must say the registry refused the credentials: {status:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// Pull by tag through a mirror; ImageStatus by every kind of reference; ListImages.

#[tokio::test]
async fn pull_by_tag_through_a_hosts_toml_mirror() {
    let Some(registry) = shared_registry("pull_by_tag_through_a_hosts_toml_mirror") else {
        return;
    };
    let remote = inspect_image(&format!("{registry}/{BUSYBOX_LOCAL}"), None);
    let daemon = mirrored_daemon(&registry);
    let mut images = daemon.images().await;
    assert!(list(&mut images, None).await.is_empty());

    let image_ref = pull_ok(&mut images, BUSYBOX).await;
    assert_eq!(image_ref, remote.config_digest, "image_ref is the image ID");

    let image = status(&mut images, BUSYBOX)
        .await
        .expect("ImageStatus by tag");
    let repo_digest = format!("{BUSYBOX_REPO}@{}", remote.manifest_digest);
    assert_eq!(image.id, remote.config_digest);
    assert_eq!(image.repo_tags, [BUSYBOX]);
    assert_eq!(image.repo_digests, std::slice::from_ref(&repo_digest));
    assert!(
        image.size >= remote.layers_size(),
        "size {} < the layers' {}",
        image.size,
        remote.layers_size()
    );
    // The image config has no User.
    assert_eq!(image.uid, None);
    assert_eq!(image.username, "");
    assert!(!image.pinned);

    for reference in [
        image.id.clone(),
        hex(&image.id).to_owned(),
        repo_digest.clone(),
    ] {
        assert_eq!(
            status(&mut images, &reference).await.as_ref(),
            Some(&image),
            "ImageStatus({reference})"
        );
    }
    assert_eq!(list(&mut images, None).await, std::slice::from_ref(&image));
    assert_eq!(
        list(&mut images, Some(BUSYBOX)).await,
        std::slice::from_ref(&image)
    );
    assert_eq!(
        list(&mut images, Some(&repo_digest)).await,
        std::slice::from_ref(&image)
    );
    assert!(list(&mut images, Some("registry.k8s.io/pause:3.9"))
        .await
        .is_empty());
    assert_eq!(status(&mut images, "registry.k8s.io/pause:3.9").await, None);

    // Pulling again changes nothing.
    assert_eq!(pull_ok(&mut images, BUSYBOX).await, remote.config_digest);
    assert_eq!(list(&mut images, None).await, [image]);
}

// ---------------------------------------------------------------------------------------------
// Short names: kubelet passes `busybox`, `busybox:tag`, `library/busybox`...

#[tokio::test]
async fn short_names_are_normalised_to_docker_io_library() {
    let Some(registry) = shared_registry("short_names_are_normalised_to_docker_io_library") else {
        return;
    };
    // docker.io/library/busybox lives at library/busybox on the mirror: copy the benchmark
    // busybox there (same manifest bytes, so both tags share one repo digest).
    for tag in ["berth-test", "latest"] {
        run(
            "skopeo",
            &[
                "--insecure-policy",
                "copy",
                "--quiet",
                "--src-tls-verify=false",
                "--dest-tls-verify=false",
                &format!("docker://{registry}/docker/library/busybox:1.35.0-glibc"),
                &format!("docker://{registry}/library/busybox:{tag}"),
            ],
        );
    }
    let remote = inspect_image(&format!("{registry}/library/busybox:berth-test"), None);
    let daemon = mirrored_daemon(&registry);
    let mut images = daemon.images().await;

    assert_eq!(
        pull_ok(&mut images, "busybox:berth-test").await,
        remote.config_digest
    );
    let image = status(&mut images, "docker.io/library/busybox:berth-test")
        .await
        .expect("the short name is stored under its full name");
    assert_eq!(image.id, remote.config_digest);
    assert_eq!(image.repo_tags, ["docker.io/library/busybox:berth-test"]);
    let repo_digest = format!("docker.io/library/busybox@{}", remote.manifest_digest);
    assert_eq!(image.repo_digests, std::slice::from_ref(&repo_digest));

    // No tag means :latest; the same manifest, so the same image gains a tag.
    assert_eq!(pull_ok(&mut images, "busybox").await, remote.config_digest);
    let image = status(&mut images, "busybox").await.expect("busybox");
    assert_eq!(
        sorted(image.repo_tags.clone()),
        [
            "docker.io/library/busybox:berth-test",
            "docker.io/library/busybox:latest"
        ]
    );
    assert_eq!(image.repo_digests, std::slice::from_ref(&repo_digest));
    for name in [
        "busybox:latest",
        "library/busybox",
        "library/busybox:latest",
        "docker.io/busybox",
        "docker.io/busybox:berth-test",
        "docker.io/library/busybox:latest",
        "busybox:berth-test",
        &repo_digest,
        &format!("busybox@{}", remote.manifest_digest),
    ] {
        assert_eq!(
            status(&mut images, name).await.as_ref(),
            Some(&image),
            "ImageStatus({name})"
        );
    }
    assert_eq!(list(&mut images, None).await.len(), 1);
}

// ---------------------------------------------------------------------------------------------
// Pull by digest, straight from a 127.0.0.1 registry (plain HTTP without any hosts.toml).

#[tokio::test]
async fn pull_by_digest_records_the_digest_and_no_tag() {
    let Some(registry) = shared_registry("pull_by_digest_records_the_digest_and_no_tag") else {
        return;
    };
    let tagged = format!("{registry}/e2e-test-images/nginx:1.14-2");
    let remote = inspect_image(&tagged, None);
    let by_digest = format!(
        "{registry}/e2e-test-images/nginx@{}",
        remote.manifest_digest
    );
    let daemon = Berthd::start();
    let mut images = daemon.images().await;

    assert_eq!(pull_ok(&mut images, &by_digest).await, remote.config_digest);
    let image = status(&mut images, &by_digest)
        .await
        .expect("ImageStatus by digest");
    assert_eq!(image.id, remote.config_digest);
    assert!(image.repo_tags.is_empty(), "{:?}", image.repo_tags);
    assert_eq!(image.repo_digests, std::slice::from_ref(&by_digest));
    assert_eq!(status(&mut images, &image.id).await.as_ref(), Some(&image));
    assert_eq!(
        status(&mut images, &tagged).await,
        None,
        "the tag was never pulled"
    );

    // The same image by tag: it gains the tag, the digest stays once.
    assert_eq!(pull_ok(&mut images, &tagged).await, remote.config_digest);
    let image = status(&mut images, &tagged)
        .await
        .expect("ImageStatus by tag");
    assert_eq!(image.repo_tags, std::slice::from_ref(&tagged));
    assert_eq!(image.repo_digests, std::slice::from_ref(&by_digest));
    assert_eq!(status(&mut images, &by_digest).await.as_ref(), Some(&image));

    // A digest the repository does not have.
    let missing = format!("{registry}/e2e-test-images/nginx@sha256:{}", "0".repeat(64));
    let error = pull(&mut images, &missing, None)
        .await
        .expect_err("unknown digest");
    assert_eq!(error.code(), tonic::Code::NotFound, "{error:?}");
    assert!(
        error.message().contains(&"0".repeat(64))
            || error.message().to_lowercase().contains("not found"),
        "{error:?}"
    );
    // A tag and a repository the registry does not have.
    for missing in [
        format!("{registry}/e2e-test-images/nginx:no-such-tag"),
        format!("{registry}/berth-test/no-such-repository:1"),
    ] {
        let error = pull(&mut images, &missing, None)
            .await
            .expect_err("unknown image");
        assert_eq!(error.code(), tonic::Code::NotFound, "{missing}: {error:?}");
    }
    assert_eq!(list(&mut images, None).await.len(), 1);
}

// ---------------------------------------------------------------------------------------------
// Manifest lists: OCI index and Docker schema2 list, arm64 listed first.

#[tokio::test]
async fn manifest_lists_resolve_to_the_host_platform() {
    if shared_registry("manifest_lists_resolve_to_the_host_platform").is_none() {
        return;
    }
    let registry = Registry::start();
    registry.push_fixtures();
    let arch = host_architecture();
    let other = if arch == "arm64" { "amd64" } else { "arm64" };

    let oci_ref = registry.reference("berth-test/multiarch:latest");
    let oci_index = inspect_index(&oci_ref);
    assert_eq!(
        oci_index.media_type,
        "application/vnd.oci.image.index.v1+json"
    );
    assert_eq!(
        oci_index.entries[0].0, "arm64",
        "fixture: arm64 is listed first"
    );
    let mine = inspect_image(
        &registry.reference(&format!(
            "berth-test/multiarch@{}",
            oci_index.manifest_for(arch)
        )),
        None,
    );
    let theirs = inspect_image(
        &registry.reference(&format!(
            "berth-test/multiarch@{}",
            oci_index.manifest_for(other)
        )),
        None,
    );
    assert_eq!(mine.config["architecture"], arch, "fixture");

    let daemon = Berthd::start();
    let mut images = daemon.images().await;
    assert_eq!(pull_ok(&mut images, &oci_ref).await, mine.config_digest);
    let (image, info) = status_with_info(&mut images, &oci_ref, true).await;
    let image = image.expect("ImageStatus of the index's tag");
    assert_eq!(image.id, mine.config_digest);
    assert_eq!(image.repo_tags, std::slice::from_ref(&oci_ref));
    // The repo digest names what the tag points to: the index.
    let oci_digest_ref = registry.reference(&format!("berth-test/multiarch@{}", oci_index.digest));
    assert_eq!(image.repo_digests, std::slice::from_ref(&oci_digest_ref));
    assert!(
        info_has(&info, "architecture", arch),
        "verbose info must carry the image config (architecture {arch}): {info:?}"
    );
    // Only the host's platform was fetched. (Its config and manifest are in the store, so the
    // layout assumption holds and the absence checks below mean something.)
    let blobs = verified_blobs(&daemon.root);
    assert!(
        blobs.contains(&mine.config_digest) && blobs.contains(&mine.manifest_digest),
        "the content store under {}/content must hold the pulled manifest and config: {blobs:?}",
        daemon.root.display()
    );
    for layer in &theirs.layers {
        assert!(
            !blobs.contains(&layer.digest),
            "the {other} layer was downloaded"
        );
    }
    assert!(
        !blobs.contains(&theirs.config_digest),
        "the {other} config was downloaded"
    );

    // The Docker manifest list holds the same images (same configs), so it is the same image
    // with a second tag and a second repo digest.
    let docker_ref = registry.reference("berth-test/multiarch-docker:latest");
    let docker_list = inspect_index(&docker_ref);
    assert_eq!(
        docker_list.media_type,
        "application/vnd.docker.distribution.manifest.list.v2+json"
    );
    assert_eq!(pull_ok(&mut images, &docker_ref).await, mine.config_digest);
    let image = status(&mut images, &docker_ref)
        .await
        .expect("ImageStatus of the list's tag");
    assert_eq!(
        sorted(image.repo_tags.clone()),
        sorted(vec![oci_ref.clone(), docker_ref.clone()])
    );
    let docker_digest_ref = registry.reference(&format!(
        "berth-test/multiarch-docker@{}",
        docker_list.digest
    ));
    assert_eq!(
        sorted(image.repo_digests.clone()),
        sorted(vec![oci_digest_ref.clone(), docker_digest_ref])
    );

    // By the index's digest: still the host's image.
    assert_eq!(
        pull_ok(&mut images, &oci_digest_ref).await,
        mine.config_digest
    );
    assert_eq!(list(&mut images, None).await.len(), 1);
}

// ---------------------------------------------------------------------------------------------
// Layer compressions: gzip, zstd, none.

#[tokio::test]
async fn gzip_zstd_and_uncompressed_layers() {
    if shared_registry("gzip_zstd_and_uncompressed_layers").is_none() {
        return;
    }
    let registry = Registry::start();
    registry.push_fixtures();
    let daemon = Berthd::start();
    let mut images = daemon.images().await;
    for (name, media_type) in [
        ("small", "application/vnd.oci.image.layer.v1.tar+gzip"),
        ("zstd", "application/vnd.oci.image.layer.v1.tar+zstd"),
        ("uncompressed", "application/vnd.oci.image.layer.v1.tar"),
    ] {
        let reference = registry.reference(&format!("berth-test/{name}:latest"));
        let remote = inspect_image(&reference, None);
        assert_eq!(remote.layers[0].media_type, media_type, "fixture {name}");
        assert_eq!(
            pull_ok(&mut images, &reference).await,
            remote.config_digest,
            "{name}"
        );
        let image = status(&mut images, &reference).await.expect(name);
        assert_eq!(image.repo_tags, std::slice::from_ref(&reference));
        assert!(
            image.size >= remote.layers_size(),
            "{name}: size {}",
            image.size
        );
    }
    assert_eq!(list(&mut images, None).await.len(), 3);
    verified_blobs(&daemon.root);
}

// ---------------------------------------------------------------------------------------------
// Basic auth: AuthConfig username/password and auth.

#[tokio::test]
async fn registry_auth_with_username_password_and_auth() {
    if shared_registry("registry_auth_with_username_password_and_auth").is_none() {
        return;
    }
    let (user, password) = ("berth", "s3cret:pw");
    let registry = Registry::start_with_auth(user, password);
    registry.push_fixtures();
    let reference = registry.reference("berth-test/small:latest");
    let creds = format!("{user}:{password}");
    let remote = inspect_image(&reference, Some(&creds));
    // The fixture really is protected.
    let anonymous = run_unchecked(
        "skopeo",
        &[
            "inspect",
            "--raw",
            "--tls-verify=false",
            &format!("docker://{reference}"),
        ],
    );
    assert!(
        !anonymous.status.success(),
        "the registry must refuse anonymous reads"
    );

    let daemon = Berthd::start();
    let mut images = daemon.images().await;
    assert_auth_error(
        "pull without AuthConfig",
        pull(&mut images, &reference, None).await,
    );
    let wrong = v1::AuthConfig {
        username: user.into(),
        password: "wrong".into(),
        ..Default::default()
    };
    assert_auth_error(
        "pull with a wrong password",
        pull(&mut images, &reference, Some(wrong)).await,
    );
    assert!(list(&mut images, None).await.is_empty());

    let by_password = v1::AuthConfig {
        username: user.into(),
        password: password.into(),
        ..Default::default()
    };
    let image_ref = pull(&mut images, &reference, Some(by_password))
        .await
        .unwrap_or_else(|s| panic!("pull with username/password: {s:?}"));
    assert_eq!(image_ref, remote.config_digest);
    remove(&mut images, &image_ref).await;
    assert_eq!(status(&mut images, &reference).await, None);

    let by_auth = v1::AuthConfig {
        auth: base64(creds.as_bytes()),
        server_address: registry.addr.clone(),
        ..Default::default()
    };
    let image_ref = pull(&mut images, &reference, Some(by_auth))
        .await
        .unwrap_or_else(|s| panic!("pull with auth (base64 user:password): {s:?}"));
    assert_eq!(image_ref, remote.config_digest);
    let image = status(&mut images, &reference)
        .await
        .expect("pulled with auth");
    assert_eq!(image.repo_tags, [reference]);
}

// ---------------------------------------------------------------------------------------------
// Digest mismatch: the registry serves a corrupted layer.

#[tokio::test]
async fn corrupted_blob_is_a_digest_error_and_nothing_is_stored() {
    if shared_registry("corrupted_blob_is_a_digest_error_and_nothing_is_stored").is_none() {
        return;
    }
    let registry = Registry::start();
    registry.push_fixtures();
    let mut cases = Vec::new();
    // Garbage over a whole gzip layer, and 16 flipped bytes inside an uncompressed layer
    // (still a well-formed tar: only the digest check can catch it).
    for (repo_tag, flip) in [
        ("berth-test/corrupt:latest", false),
        ("berth-test/corrupt-tar:latest", true),
    ] {
        let reference = registry.reference(repo_tag);
        let remote = inspect_image(&reference, None);
        let (expected, actual) = registry.corrupt(repo_tag, flip);
        assert_eq!(expected, remote.layers[0].digest);
        let forbidden = vec![
            remote.manifest_digest,
            remote.config_digest,
            expected.clone(),
            actual,
        ];
        cases.push((reference, expected, forbidden));
    }

    let daemon = Berthd::start();
    let mut images = daemon.images().await;
    for (reference, expected, forbidden) in &cases {
        for attempt in 1..=2 {
            let error = pull(&mut images, reference, None)
                .await
                .expect_err("a corrupted layer must fail the pull");
            let message = error.message();
            assert!(
                message.to_lowercase().contains("digest") && message.contains(expected.as_str()),
                "{reference} (attempt {attempt}): the error must name the digest mismatch and {expected}: {error:?}"
            );
            assert!(
                list(&mut images, None).await.is_empty(),
                "{reference}: an image was recorded"
            );
            assert_eq!(status(&mut images, reference).await, None);
            assert_nothing_stored(&daemon.root, forbidden);
        }
    }

    // The daemon carries on: a sound image from the same registry pulls.
    let small = registry.reference("berth-test/small:latest");
    let remote = inspect_image(&small, None);
    assert_eq!(pull_ok(&mut images, &small).await, remote.config_digest);
    let blobs = verified_blobs(&daemon.root);
    assert!(
        blobs.contains(&remote.config_digest),
        "the content store under {}/content must hold the pulled config: {blobs:?}",
        daemon.root.display()
    );
    for (_, _, forbidden) in &cases {
        for digest in forbidden {
            assert!(
                !blobs.contains(digest),
                "{digest} appeared in the content store"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// RemoveImage by tag, ID and repo digest; idempotence; space given back.

#[tokio::test]
async fn remove_image_by_tag_id_and_digest_frees_the_space() {
    let Some(registry) = shared_registry("remove_image_by_tag_id_and_digest_frees_the_space")
    else {
        return;
    };
    let repo = "gcr.io/k8s-staging-cri-tools/test-image-tags";
    let tags: Vec<String> = (1..=3).map(|n| format!("{repo}:{n}")).collect();
    let remote = inspect_image(
        &format!("{registry}/k8s-staging-cri-tools/test-image-tags:1"),
        None,
    );
    let repo_digest = format!("{repo}@{}", remote.manifest_digest);
    let daemon = mirrored_daemon(&registry);
    let mut images = daemon.images().await;
    let empty = fs_usage(&mut images).await;

    // One image, three tags.
    for tag in &tags {
        assert_eq!(pull_ok(&mut images, tag).await, remote.config_digest);
    }
    let image = status(&mut images, &tags[0]).await.expect("pulled");
    assert_eq!(sorted(image.repo_tags.clone()), tags);
    assert_eq!(image.repo_digests, std::slice::from_ref(&repo_digest));
    let full = fs_usage(&mut images).await;
    assert!(
        full.0 >= empty.0 + remote.layers_size() && full.1 > empty.1,
        "ImageFsInfo must count the pulled image: empty {empty:?}, after the pull {full:?}"
    );

    let assert_gone = |usage: (u64, u64), how: &str| {
        assert!(
            usage.0 <= empty.0 + SLACK_BYTES && usage.1 <= empty.1 + SLACK_INODES,
            "after removing by {how}, blobs and snapshots must be collected: empty {empty:?}, \
             after the pull {full:?}, after the removal {usage:?}"
        );
    };

    // By one tag: the image goes with all its tags (containerd's contract, which critest's
    // "removing image by one tag should remove all tags" and crictl rmi's warning rely on).
    remove(&mut images, &tags[0]).await;
    for reference in tags.iter().chain([&image.id, &repo_digest]) {
        assert_eq!(
            status(&mut images, reference).await,
            None,
            "ImageStatus({reference})"
        );
    }
    assert!(list(&mut images, None).await.is_empty());
    assert_gone(fs_usage(&mut images).await, "tag");

    // By ID.
    assert_eq!(pull_ok(&mut images, &tags[1]).await, remote.config_digest);
    remove(&mut images, &image.id).await;
    assert_eq!(status(&mut images, &tags[1]).await, None);
    assert_eq!(status(&mut images, &image.id).await, None);
    assert!(list(&mut images, None).await.is_empty());
    assert_gone(fs_usage(&mut images).await, "ID");

    // By repo digest.
    assert_eq!(pull_ok(&mut images, &tags[2]).await, remote.config_digest);
    remove(&mut images, &repo_digest).await;
    assert_eq!(status(&mut images, &tags[2]).await, None);
    assert_eq!(status(&mut images, &repo_digest).await, None);
    assert!(list(&mut images, None).await.is_empty());
    assert_gone(fs_usage(&mut images).await, "repo digest");

    // Removing what is not there succeeds.
    let unknown = "4a3b2c1d0e9f8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b";
    for reference in [
        tags[0].as_str(),
        image.id.as_str(),
        repo_digest.as_str(),
        unknown,
        &format!("sha256:{unknown}"),
        "registry.k8s.io/never-pulled:1",
    ] {
        remove(&mut images, reference).await;
    }
    verified_blobs(&daemon.root);
}

// ---------------------------------------------------------------------------------------------
// The image index survives a restart.

// Multi-threaded: the client's connection task must be able to answer berthd's GOAWAY while
// this thread blocks in `terminate`, or the graceful shutdown waits for it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn images_survive_a_restart() {
    let Some(registry) = shared_registry("images_survive_a_restart") else {
        return;
    };
    let mut daemon = mirrored_daemon(&registry);
    let image = {
        let mut images = daemon.images().await;
        pull_ok(&mut images, BUSYBOX).await;
        status(&mut images, BUSYBOX).await.expect("pulled")
    };
    let exit = daemon.terminate();
    assert!(
        exit.success(),
        "berthd exited with {exit:?}\n{}",
        daemon.log_text()
    );

    daemon.restart();
    let mut images = daemon.images().await;
    assert_eq!(status(&mut images, BUSYBOX).await.as_ref(), Some(&image));
    assert_eq!(status(&mut images, &image.id).await.as_ref(), Some(&image));
    assert_eq!(list(&mut images, None).await, std::slice::from_ref(&image));
    // Still complete: pulling again is a no-op, removal collects everything.
    assert_eq!(pull_ok(&mut images, BUSYBOX).await, image.id);
    let before = fs_usage(&mut images).await;
    remove(&mut images, BUSYBOX).await;
    let after = fs_usage(&mut images).await;
    assert!(
        after.0 < before.0,
        "removal after a restart must free space: {before:?} -> {after:?}"
    );
    verified_blobs(&daemon.root);
}

// ---------------------------------------------------------------------------------------------
// Uid and username from the image config (critest's "image status get image fields").

#[tokio::test]
async fn image_user_fields_come_from_the_config() {
    let Some(registry) = shared_registry("image_user_fields_come_from_the_config") else {
        return;
    };
    let daemon = mirrored_daemon(&registry);
    let mut images = daemon.images().await;
    let base = "gcr.io/k8s-staging-cri-tools";
    // User 1002 / www-data / 1003:1004 / www-data:1004 (tests/images/README.md).
    for (name, uid, username) in [
        ("test-image-user-uid", Some(1002), ""),
        ("test-image-user-username", None, "www-data"),
        ("test-image-user-uid-group", Some(1003), ""),
        ("test-image-user-username-group", None, "www-data"),
        ("test-image-predefined-group", Some(1000), ""),
    ] {
        let reference = format!("{base}/{name}:latest");
        pull_ok(&mut images, &reference).await;
        let image = status(&mut images, &reference).await.expect(name);
        assert_eq!(image.uid.map(|v| v.value), uid, "{name}: uid");
        assert_eq!(image.username, username, "{name}: username");
    }
    // pause:3.9 runs as 65535:65535.
    pull_ok(&mut images, "registry.k8s.io/pause:3.9").await;
    let pause = status(&mut images, "registry.k8s.io/pause:3.9")
        .await
        .expect("pause");
    assert_eq!(pause.uid.map(|v| v.value), Some(65535));
    assert_eq!(pause.username, "");
}

// ---------------------------------------------------------------------------------------------
// crictl.

/// Runs `crictl --config <file> args...`; returns stdout, panicking with stderr on failure.
fn crictl(crictl: &Path, config: &Path, args: &[&str]) -> String {
    let mut all = vec!["--config", config.to_str().unwrap()];
    all.extend_from_slice(args);
    run(crictl.to_str().unwrap(), &all)
}

fn json_u64(v: &serde_json::Value) -> u64 {
    // protojson writes uint64 as a string.
    v.as_u64()
        .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
        .unwrap_or_else(|| panic!("not a uint64: {v}"))
}

#[test]
fn crictl_pull_images_inspecti_imagefsinfo_rmi() {
    let Some(registry) = shared_registry("crictl_pull_images_inspecti_imagefsinfo_rmi") else {
        return;
    };
    let Some(crictl_bin) = on_path("crictl") else {
        skip_or_panic(
            "crictl_pull_images_inspecti_imagefsinfo_rmi",
            "crictl is not on PATH (tests/run.sh puts the one it builds there)",
        );
        return;
    };
    let remote = inspect_image(&format!("{registry}/{BUSYBOX_LOCAL}"), None);
    let daemon = mirrored_daemon(&registry);
    let config = daemon.dir.path().join("crictl.yaml");
    std::fs::write(
        &config,
        format!(
            "runtime-endpoint: {0}\nimage-endpoint: {0}\ntimeout: 180\ndebug: false\n",
            daemon.endpoint()
        ),
    )
    .unwrap();
    let cli = |args: &[&str]| crictl(&crictl_bin, &config, args);

    let out = cli(&["pull", BUSYBOX]);
    assert_eq!(
        out.trim(),
        format!("Image is up to date for {}", remote.config_digest)
    );

    // Table: IMAGE TAG IMAGE ID SIZE, the ID cut to 13 characters.
    let out = cli(&["images"]);
    let row: Vec<&str> = out
        .lines()
        .find(|line| line.starts_with(BUSYBOX_REPO))
        .unwrap_or_else(|| panic!("crictl images does not list {BUSYBOX}:\n{out}"))
        .split_whitespace()
        .collect();
    assert_eq!(row[0], BUSYBOX_REPO, "{out}");
    assert_eq!(row[1], "1.29-2", "{out}");
    assert_eq!(row[2], &hex(&remote.config_digest)[..13], "{out}");
    let out = cli(&["images", "-q"]);
    assert_eq!(out.trim(), remote.config_digest);
    let json: serde_json::Value = serde_json::from_str(&cli(&["images", "-o", "json"])).unwrap();
    assert_eq!(json["images"][0]["id"], remote.config_digest.as_str());
    assert_eq!(json["images"][0]["repoTags"], serde_json::json!([BUSYBOX]));

    // inspecti: verbose by default, every info value must be valid JSON for crictl to print it.
    let json: serde_json::Value = serde_json::from_str(&cli(&["inspecti", BUSYBOX])).unwrap();
    assert_eq!(
        json["status"]["id"],
        remote.config_digest.as_str(),
        "{json}"
    );
    assert_eq!(
        json["status"]["repoTags"],
        serde_json::json!([BUSYBOX]),
        "{json}"
    );
    assert_eq!(
        json["status"]["repoDigests"],
        serde_json::json!([format!("{BUSYBOX_REPO}@{}", remote.manifest_digest)]),
        "{json}"
    );

    let json: serde_json::Value = serde_json::from_str(&cli(&["imagefsinfo"])).unwrap();
    let fs = &json["status"]["imageFilesystems"][0];
    assert!(
        json_u64(&fs["usedBytes"]["value"]) >= remote.layers_size(),
        "{json}"
    );
    assert!(json_u64(&fs["inodesUsed"]["value"]) > 0, "{json}");

    let out = cli(&["rmi", BUSYBOX]);
    assert_eq!(out.trim(), format!("Deleted: {BUSYBOX}"));
    assert_eq!(cli(&["images", "-q"]).trim(), "");

    // A pull error reaches crictl's exit status.
    let mut args = vec!["--config", config.to_str().unwrap(), "pull"];
    let missing = format!("{registry}/berth-test/no-such-image:1");
    args.push(&missing);
    let output = run_unchecked(crictl_bin.to_str().unwrap(), &args);
    assert!(
        !output.status.success(),
        "pulling a missing image must fail"
    );
}

// ---------------------------------------------------------------------------------------------
// A full disk.

/// Unmounts a tmpfs on drop (after the daemon using it, which is declared later).
struct Tmpfs(std::path::PathBuf);

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = nix::mount::umount2(&self.0, nix::mount::MntFlags::MNT_DETACH);
    }
}

#[tokio::test]
async fn a_full_disk_is_resource_exhausted_naming_the_path() {
    const TEST: &str = "a_full_disk_is_resource_exhausted_naming_the_path";
    let Some(registry) = shared_registry(TEST) else {
        return;
    };
    if !nix::unistd::geteuid().is_root() {
        skip_or_panic(TEST, "needs root (mounts a small tmpfs as berthd's root)");
        return;
    }
    let layout = Layout::new();
    layout.mirror_to(&registry);
    std::fs::create_dir_all(&layout.root).unwrap();
    // Room for the metadata store, not for the image's layers.
    nix::mount::mount(
        Some("tmpfs"),
        &layout.root,
        Some("tmpfs"),
        nix::mount::MsFlags::empty(),
        Some("size=1m"),
    )
    .expect("mount a tmpfs");
    let _tmpfs = Tmpfs(layout.root.clone());
    let daemon = layout.start();
    let mut images = daemon.images().await;
    let status = pull(&mut images, BUSYBOX, None)
        .await
        .expect_err("busybox does not fit in 1 MiB");
    eprintln!("{TEST}: {status:?}");
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    let root = daemon.root.display().to_string();
    assert!(
        status.message().contains(&root),
        "names a path under {root}: {status:?}"
    );
    assert!(
        status.message().contains("No space left on device"),
        "{status:?}"
    );
    assert!(list(&mut images, None).await.is_empty());
}
