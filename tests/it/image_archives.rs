//! Image archives and `berthctl` against a real berthd: `images import` of a `docker save`
//! archive (assembled here from the test registry's blobs, the way docker lays it out) and
//! of an OCI image layout archive (written by skopeo), then a pod running a container of
//! each; `images export` then re-import with the same image ID, through files and through
//! stdin/stdout, `--pin`; hostile archives refused with nothing left behind; `info`.
//!
//! The archive tests need the shared test registry (`BERTH_TEST_REGISTRY`) and skopeo; the
//! pod test root and the CNI plugins too. Without them a test prints a note and passes,
//! unless `BERTH_REQUIRE_REGISTRY=1`. The hostile-archive and info tests build what they
//! need themselves. Expected digests come from the registry (skopeo) or are computed here
//! (sha256sum), never from berth.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use berth_integration::berthctl::{self, Io};
use berth_integration::containers::Reaper;
use berth_integration::pods::{is_root, PodEnv, SYSTEM_CNI_BIN};
use berth_integration::registry::{
    host_architecture, inspect_image, on_path, run, sha256_digest, shared_registry, skip_or_panic,
    walk, RemoteImage,
};
use berth_integration::rpc::{pod, timed, Runtime};
use berth_integration::{Berthd, Layout};
use cri_api::v1;
use cri_api::ImageServiceClient;
use serde_json::{json, Value};
use tonic::transport::Channel;

type Images = ImageServiceClient<Channel>;

/// critest's default image, served by the shared registry through the registry.k8s.io mirror.
const BUSYBOX: &str = "registry.k8s.io/e2e-test-images/busybox:1.29-2";
const BUSYBOX_LOCAL: &str = "e2e-test-images/busybox:1.29-2";
/// A second image with a layer of its own.
const IMAGE_1: &str = "gcr.io/k8s-staging-cri-tools/test-image-1:latest";
const IMAGE_1_LOCAL: &str = "k8s-staging-cri-tools/test-image-1:latest";
/// berth's limit on manifest.json and the other documents (MAX_DOCUMENT_SIZE).
const MAX_DOCUMENT_SIZE: usize = 8 << 20;

// ---------------------------------------------------------------------------------------------
// Helpers.

/// The shared registry and skopeo; `None` (after a note) when the test cannot run.
fn registry_and_skopeo(test: &str) -> Option<String> {
    let registry = shared_registry(test)?;
    if on_path("skopeo").is_none() {
        skip_or_panic(test, "skopeo is not on PATH");
        return None;
    }
    Some(registry)
}

fn spec(image: &str) -> Option<v1::ImageSpec> {
    Some(v1::ImageSpec {
        image: image.to_owned(),
        ..Default::default()
    })
}

async fn status(images: &mut Images, image: &str) -> Option<v1::Image> {
    images
        .image_status(v1::ImageStatusRequest {
            image: spec(image),
            verbose: false,
        })
        .await
        .unwrap_or_else(|s| panic!("ImageStatus({image}): {s:?}"))
        .into_inner()
        .image
}

async fn list(images: &mut Images) -> Vec<v1::Image> {
    images
        .list_images(v1::ListImagesRequest { filter: None })
        .await
        .unwrap_or_else(|s| panic!("ListImages: {s:?}"))
        .into_inner()
        .images
}

/// The entries of a tar archive: name → content.
fn tar_entries(archive: &Path) -> Vec<(String, Vec<u8>)> {
    let file = std::fs::File::open(archive).unwrap();
    let mut out = Vec::new();
    for entry in tar::Archive::new(file).entries().unwrap() {
        let mut entry = entry.unwrap();
        let name = entry.path().unwrap().display().to_string();
        let mut data = Vec::new();
        std::io::Read::read_to_end(&mut entry, &mut data).unwrap();
        out.push((name, data));
    }
    out
}

/// A tar archive being written, entries named byte for byte (so hostile names can be).
struct TarWriter(tar::Builder<Vec<u8>>);

impl TarWriter {
    fn new() -> TarWriter {
        TarWriter(tar::Builder::new(Vec::new()))
    }

    fn header(kind: tar::EntryType, name: &str, size: usize) -> tar::Header {
        let mut header = tar::Header::new_gnu();
        assert!(name.len() <= 100, "{name}");
        header.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
        header.set_entry_type(kind);
        header.set_mode(0o644);
        header.set_size(size as u64);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mtime(1_700_000_000);
        header.set_cksum();
        header
    }

    fn file(mut self, name: &str, data: &[u8]) -> TarWriter {
        let header = TarWriter::header(tar::EntryType::Regular, name, data.len());
        self.0.append(&header, data).unwrap();
        self
    }

    fn symlink(mut self, name: &str, target: &str) -> TarWriter {
        let mut header = TarWriter::header(tar::EntryType::Symlink, name, 0);
        header.as_old_mut().linkname[..target.len()].copy_from_slice(target.as_bytes());
        header.set_cksum();
        self.0.append(&header, std::io::empty()).unwrap();
        self
    }

    fn write(self, path: &Path) {
        std::fs::write(path, self.0.into_inner().unwrap()).unwrap();
    }
}

/// `gzip -dc` of `data`.
fn gunzip(data: &[u8]) -> Vec<u8> {
    let mut child = Command::new("gzip")
        .arg("-dc")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("gzip");
    let mut stdin = child.stdin.take().unwrap();
    let input = data.to_vec();
    let writer = std::thread::spawn(move || std::io::Write::write_all(&mut stdin, &input));
    let output = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    assert!(output.status.success(), "gzip -dc failed");
    output.stdout
}

fn hex(digest: &str) -> &str {
    digest.strip_prefix("sha256:").unwrap_or(digest)
}

/// A classic `docker save` archive of `local` (repository:tag on `registry`) tagged `tag`,
/// assembled from the registry's blobs (`skopeo copy … dir:`) the way docker writes one:
/// the config as `<hex>.json`; the first layer uncompressed as `<diff id>/layer.tar` with
/// its `VERSION` and `json`; the other layers as the registry serves them (gzip) in
/// `<digest>.tar`, each named in `manifest.json` through a `<n>/layer.tar` symlink, as
/// docker names a layer it already wrote; `manifest.json` and `repositories` last.
fn docker_save_from_registry(
    registry: &str,
    local: &str,
    tag: &str,
    dir: &Path,
) -> (PathBuf, RemoteImage) {
    let reference = format!("{registry}/{local}");
    let remote = inspect_image(&reference, None);
    let blobs = dir.join(format!("{}-dir", hex(&remote.config_digest)));
    skopeo_copy(&reference, &format!("dir:{}", blobs.display()));
    let blob = |digest: &str| std::fs::read(blobs.join(hex(digest))).unwrap();
    let diff_ids: Vec<String> = remote.config["rootfs"]["diff_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_str().unwrap().to_owned())
        .collect();
    let mut tar = TarWriter::new();
    let mut layers = Vec::new();
    for (n, layer) in remote.layers.iter().enumerate() {
        if n == 0 {
            let uncompressed = gunzip(&blob(&layer.digest));
            assert_eq!(sha256_digest(&uncompressed), diff_ids[0]);
            let dir = hex(&diff_ids[0]).to_owned();
            tar = tar
                .file(&format!("{dir}/VERSION"), b"1.0")
                .file(
                    &format!("{dir}/json"),
                    json!({ "id": dir }).to_string().as_bytes(),
                )
                .file(&format!("{dir}/layer.tar"), &uncompressed);
            layers.push(format!("{dir}/layer.tar"));
        } else {
            let name = format!("{}.tar", hex(&layer.digest));
            tar = tar
                .file(&name, &blob(&layer.digest))
                .symlink(&format!("layer{n}/layer.tar"), &format!("../{name}"));
            layers.push(format!("layer{n}/layer.tar"));
        }
    }
    let config_name = format!("{}.json", hex(&remote.config_digest));
    let manifest = json!([{ "Config": config_name, "RepoTags": [tag], "Layers": layers }]);
    let archive = dir.join(format!("{}-docker-save.tar", hex(&remote.config_digest)));
    tar.file(&config_name, &blob(&remote.config_digest))
        .file("manifest.json", manifest.to_string().as_bytes())
        .file("repositories", b"{}")
        .write(&archive);
    std::fs::remove_dir_all(&blobs).unwrap();
    (archive, remote)
}

/// An OCI image layout archive of `local` on `registry`, named `name`, written by skopeo.
fn oci_archive_from_registry(
    registry: &str,
    local: &str,
    name: &str,
    dir: &Path,
) -> (PathBuf, RemoteImage) {
    let reference = format!("{registry}/{local}");
    let remote = inspect_image(&reference, None);
    let archive = dir.join(format!("{}-oci.tar", hex(&remote.config_digest)));
    skopeo_copy(
        &reference,
        &format!("oci-archive:{}:{name}", archive.display()),
    );
    (archive, remote)
}

/// `skopeo copy` of `reference` on the (plain HTTP) test registry to `destination`.
fn skopeo_copy(reference: &str, destination: &str) {
    run(
        "skopeo",
        &[
            "copy",
            "-q",
            "--src-tls-verify=false",
            &format!("docker://{reference}"),
            destination,
        ],
    );
}

/// Imports `archive` with berthctl; returns stdout.
fn import(socket: &Path, archive: &Path, pin: bool) -> String {
    let archive = archive.display().to_string();
    let mut args = vec!["images", "import"];
    if pin {
        args.push("--pin");
    }
    args.push(&archive);
    berthctl::ok(socket, &args)
}

/// `sha256:<hex>` names of the regular files under `<root>/content` (each a blob named by
/// its digest).
fn stored_blobs(root: &Path) -> Vec<String> {
    files_under(&root.join("content"))
        .iter()
        .map(|f| format!("sha256:{}", f.file_name().unwrap().to_string_lossy()))
        .collect()
}

/// Every non-directory below `dir`, not following symlinks.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let (mut files, others) = walk(dir);
    files.extend(others);
    files
}

/// Waits (at most 20 s) until `<root>/trash` is empty: what a refused import discarded is
/// deleted there in the background.
fn wait_for_empty_trash(root: &Path) {
    let trash = root.join("trash");
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::fs::read_dir(&trash).is_ok_and(|mut d| d.next().is_some()) {
        assert!(Instant::now() < deadline, "{} not emptied", trash.display());
        std::thread::sleep(Duration::from_millis(20));
    }
}

// ---------------------------------------------------------------------------------------------
// Import, then pods from the imported images.

/// A pod whose containers each have their own PID namespace.
fn pod_config(dir: &Path, name: &str) -> v1::PodSandboxConfig {
    let log_directory = dir.join("pod-logs").join(name);
    std::fs::create_dir_all(&log_directory).unwrap();
    v1::PodSandboxConfig {
        metadata: Some(v1::PodSandboxMetadata {
            name: name.to_owned(),
            uid: format!("uid-{name}"),
            namespace: "berth-it-image-archives".to_owned(),
            attempt: 1,
        }),
        hostname: name.to_owned(),
        log_directory: log_directory.display().to_string(),
        linux: Some(v1::LinuxPodSandboxConfig {
            security_context: Some(v1::LinuxSandboxSecurityContext {
                namespace_options: Some(v1::NamespaceOption {
                    pid: v1::NamespaceMode::Container as i32,
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Creates and starts a container of `image` in `pod` that sleeps; returns its ID.
async fn start_sleeper(
    rt: &mut Runtime,
    pod: &str,
    pod_config: &v1::PodSandboxConfig,
    name: &str,
    image: &str,
) -> String {
    let config = v1::ContainerConfig {
        metadata: Some(v1::ContainerMetadata {
            name: name.to_owned(),
            attempt: 0,
        }),
        image: spec(image),
        command: vec!["sleep".into(), "3600".into()],
        log_path: format!("{name}.log"),
        ..Default::default()
    };
    let id = timed(
        "CreateContainer",
        rt.create_container(v1::CreateContainerRequest {
            pod_sandbox_id: pod.to_owned(),
            config: Some(config),
            sandbox_config: Some(pod_config.clone()),
        }),
    )
    .await
    .unwrap_or_else(|s| panic!("CreateContainer({name} from {image}): {s:?}"))
    .into_inner()
    .container_id;
    timed(
        "StartContainer",
        rt.start_container(v1::StartContainerRequest {
            container_id: id.clone(),
        }),
    )
    .await
    .unwrap_or_else(|s| panic!("StartContainer({name}): {s:?}"));
    id
}

/// `cat /etc/berth-test-image` in container `id`: the name the test image was built as.
async fn image_marker(rt: &mut Runtime, id: &str) -> String {
    let out = timed(
        "ExecSync",
        rt.exec_sync(v1::ExecSyncRequest {
            container_id: id.to_owned(),
            cmd: vec!["cat".into(), "/etc/berth-test-image".into()],
            timeout: 0,
        }),
    )
    .await
    .unwrap_or_else(|s| panic!("ExecSync in {id}: {s:?}"))
    .into_inner();
    assert_eq!(out.exit_code, 0, "{out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test]
async fn imported_docker_save_and_oci_archives_run_in_a_pod() {
    const TEST: &str = "imported_docker_save_and_oci_archives_run_in_a_pod";
    if !is_root() {
        skip_or_panic(TEST, "pods need root");
        return;
    }
    let Some(registry) = registry_and_skopeo(TEST) else {
        return;
    };
    for plugin in ["bridge", "host-local", "loopback"] {
        let path = Path::new(SYSTEM_CNI_BIN).join(plugin);
        assert!(path.is_file(), "{} missing", path.display());
    }
    let work = tempfile::tempdir().unwrap();
    let (docker_save, busybox) =
        docker_save_from_registry(&registry, BUSYBOX_LOCAL, BUSYBOX, work.path());
    let (oci, image_1) = oci_archive_from_registry(&registry, IMAGE_1_LOCAL, IMAGE_1, work.path());

    // No registry mirror: the images can only come from the archives.
    let layout = Layout::new();
    let reaper = Reaper::new(&layout.state);
    let env = PodEnv::start_in(layout, 0);
    let socket = env.daemon.socket.clone();
    let mut images = env.daemon.images().await;
    assert!(list(&mut images).await.is_empty());

    let out = import(&socket, &docker_save, false);
    assert_eq!(
        out,
        format!("imported {} {BUSYBOX}\n", busybox.config_digest)
    );
    let out = import(&socket, &oci, true);
    assert_eq!(
        out,
        format!("imported {} {IMAGE_1} (pinned)\n", image_1.config_digest)
    );

    // Both visible to the CRI, by tag and ID, with their pin.
    let first = status(&mut images, BUSYBOX)
        .await
        .expect("busybox imported");
    assert_eq!(first.id, busybox.config_digest);
    assert_eq!(first.repo_tags, [BUSYBOX]);
    assert!(!first.pinned);
    let second = status(&mut images, IMAGE_1)
        .await
        .expect("image-1 imported");
    assert_eq!(second.id, image_1.config_digest);
    assert_eq!(second.repo_tags, [IMAGE_1]);
    // An OCI layout entry's name gives the repo digest of its manifest, as a registry would.
    assert_eq!(
        second.repo_digests,
        [format!(
            "gcr.io/k8s-staging-cri-tools/test-image-1@{}",
            image_1.manifest_digest
        )]
    );
    assert!(second.pinned);
    let listed: HashMap<String, bool> = list(&mut images)
        .await
        .into_iter()
        .map(|i| (i.id, i.pinned))
        .collect();
    assert_eq!(
        listed,
        HashMap::from([
            (busybox.config_digest.clone(), false),
            (image_1.config_digest.clone(), true)
        ])
    );
    // The content store holds what the archives carried, verified.
    let blobs = stored_blobs(&env.daemon.root);
    for digest in [
        &busybox.config_digest,
        &image_1.config_digest,
        &image_1.manifest_digest,
    ] {
        assert!(blobs.contains(digest), "{digest} not stored: {blobs:?}");
    }
    for layer in &image_1.layers {
        assert!(blobs.contains(&layer.digest), "{} not stored", layer.digest);
    }

    // One pod, a container from each imported image.
    let mut rt = env.daemon.runtime().await;
    let config = pod_config(env.daemon.dir.path(), "imported");
    let pod_id = pod::run(&mut rt, config.clone()).await;
    let from_docker = start_sleeper(&mut rt, &pod_id, &config, "from-docker", BUSYBOX).await;
    let from_oci = start_sleeper(&mut rt, &pod_id, &config, "from-oci", IMAGE_1).await;
    assert_eq!(image_marker(&mut rt, &from_docker).await, "busybox\n");
    assert_eq!(image_marker(&mut rt, &from_oci).await, "image-1\n");
    let container = timed(
        "ContainerStatus",
        rt.container_status(v1::ContainerStatusRequest {
            container_id: from_oci.clone(),
            verbose: false,
        }),
    )
    .await
    .unwrap()
    .into_inner()
    .status
    .unwrap();
    assert_eq!(container.image_ref, image_1.config_digest);

    pod::stop_and_remove(&mut rt, &pod_id).await;
    let left = timed(
        "ListContainers",
        rt.list_containers(v1::ListContainersRequest { filter: None }),
    )
    .await
    .unwrap()
    .into_inner()
    .containers;
    assert!(left.is_empty(), "{left:?}");
    let leftovers = env.leftovers(&[pod_id]);
    assert!(leftovers.is_empty(), "left on the host: {leftovers:?}");
    drop(reaper);
}

// ---------------------------------------------------------------------------------------------
// Export, re-import.

#[tokio::test]
async fn export_then_import_gives_the_same_image() {
    const TEST: &str = "export_then_import_gives_the_same_image";
    let Some(registry) = registry_and_skopeo(TEST) else {
        return;
    };
    let remote = inspect_image(&format!("{registry}/{BUSYBOX_LOCAL}"), None);
    let layout = Layout::new();
    layout.mirror_to(&registry);
    let daemon = layout.start();
    let socket = daemon.socket.clone();
    let mut images = daemon.images().await;
    timed(
        "PullImage",
        images.pull_image(v1::PullImageRequest {
            image: spec(BUSYBOX),
            auth: None,
            sandbox_config: None,
        }),
    )
    .await
    .unwrap_or_else(|s| panic!("PullImage({BUSYBOX}): {s:?}"));

    // By tag and by ID: two index entries naming the one image.
    let archive = daemon.dir.path().join("busybox.tar");
    let out = berthctl::ok(
        &socket,
        &[
            "images",
            "export",
            BUSYBOX,
            &remote.config_digest,
            "-o",
            archive.to_str().unwrap(),
        ],
    );
    assert_eq!(out, "");
    let entries = tar_entries(&archive);
    let names: Vec<&str> = entries.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names.first(), Some(&"oci-layout"), "{names:?}");
    let mut blobs = Vec::new();
    let mut index = Value::Null;
    let mut docker = Value::Null;
    for (name, data) in &entries {
        match name.as_str() {
            "oci-layout" => assert_eq!(
                serde_json::from_slice::<Value>(data).unwrap(),
                json!({ "imageLayoutVersion": "1.0.0" })
            ),
            "index.json" => index = serde_json::from_slice(data).unwrap(),
            "manifest.json" => docker = serde_json::from_slice(data).unwrap(),
            "blobs/" | "blobs/sha256/" => {}
            other => {
                let hex = other
                    .strip_prefix("blobs/sha256/")
                    .unwrap_or_else(|| panic!("unexpected entry {other}"));
                assert_eq!(sha256_digest(data), format!("sha256:{hex}"), "{other}");
                blobs.push(format!("sha256:{hex}"));
            }
        }
    }
    let mut expected = vec![remote.manifest_digest.clone(), remote.config_digest.clone()];
    expected.extend(remote.layers.iter().map(|l| l.digest.clone()));
    blobs.sort();
    expected.sort();
    assert_eq!(blobs, expected, "the blobs are the registry's, each once");
    let manifests = index["manifests"].as_array().expect("index.json manifests");
    assert_eq!(manifests.len(), 2, "{index}");
    for entry in manifests {
        assert_eq!(entry["digest"], remote.manifest_digest.as_str());
        assert_eq!(entry["annotations"]["io.containerd.image.name"], BUSYBOX);
        assert_eq!(
            entry["annotations"]["org.opencontainers.image.ref.name"],
            "1.29-2"
        );
    }
    let layers: Vec<String> = remote
        .layers
        .iter()
        .map(|l| format!("blobs/sha256/{}", hex(&l.digest)))
        .collect();
    assert_eq!(
        docker,
        json!([{
            "Config": format!("blobs/sha256/{}", hex(&remote.config_digest)),
            "RepoTags": [BUSYBOX],
            "Layers": layers,
        }])
    );
    // A docker-archive reader (skopeo's, as docker load reads manifest.json) takes it,
    // decompressing every layer and checking it against the config's diff IDs.
    let copied = daemon.dir.path().join("copied");
    run(
        "skopeo",
        &[
            "copy",
            "-q",
            &format!("docker-archive:{}", archive.display()),
            &format!("oci:{}:x", copied.display()),
        ],
    );
    std::fs::remove_dir_all(&copied).unwrap();

    // Removed, then imported back: the same image.
    images
        .remove_image(v1::RemoveImageRequest {
            image: spec(BUSYBOX),
        })
        .await
        .unwrap();
    assert!(list(&mut images).await.is_empty());
    let out = import(&socket, &archive, false);
    assert_eq!(
        out,
        format!("imported {} {BUSYBOX}\n", remote.config_digest)
    );
    let image = status(&mut images, BUSYBOX).await.expect("re-imported");
    assert_eq!(image.id, remote.config_digest);
    assert_eq!(image.repo_tags, [BUSYBOX]);
    assert_eq!(
        image.repo_digests,
        [format!(
            "registry.k8s.io/e2e-test-images/busybox@{}",
            remote.manifest_digest
        )]
    );
    assert!(!image.pinned);

    // Through standard output and standard input, into a daemon that never saw a registry,
    // pinned there.
    let streamed = daemon.dir.path().join("streamed.tar");
    let out = berthctl::run(
        &socket,
        &["images", "export", BUSYBOX, "-o", "-"],
        Io::StdoutTo(&streamed),
    );
    berthctl::assert_success(&["images", "export", BUSYBOX, "-o", "-"], &out);
    let blob_names = |entries: &[(String, Vec<u8>)]| {
        let mut names: Vec<String> = entries
            .iter()
            .map(|(n, _)| n.clone())
            .filter(|n| n.starts_with("blobs/sha256/"))
            .collect();
        names.sort();
        names
    };
    assert_eq!(blob_names(&tar_entries(&streamed)), blob_names(&entries));
    let other = Berthd::start();
    let out = berthctl::run(
        &other.socket,
        &["images", "import", "--pin", "-"],
        Io::StdinFrom(&streamed),
    );
    berthctl::assert_success(&["images", "import", "--pin", "-"], &out);
    let mut other_images = other.images().await;
    let image = status(&mut other_images, BUSYBOX)
        .await
        .expect("imported from stdin");
    assert_eq!(image.id, remote.config_digest);
    assert!(image.pinned);
    assert!(list(&mut other_images).await.iter().all(|i| i.pinned));

    // Unknown names: NotFound before anything is written, and no file left.
    let missing = daemon.dir.path().join("missing.tar");
    let err = berthctl::fails(
        &socket,
        &[
            "images",
            "export",
            "nothere:1",
            "-o",
            missing.to_str().unwrap(),
        ],
    );
    assert!(err.contains("nothere") && err.contains("NotFound"), "{err}");
    assert!(!missing.exists());
    let partials: Vec<_> = std::fs::read_dir(daemon.dir.path())
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains("partial"))
        .collect();
    assert!(partials.is_empty(), "{partials:?}");
}

// ---------------------------------------------------------------------------------------------
// Hostile archives.

/// A one-layer image built here: (layer tar, config, manifest, their digests).
struct TinyImage {
    layer: Vec<u8>,
    config: Vec<u8>,
    manifest: Vec<u8>,
}

impl TinyImage {
    fn new() -> TinyImage {
        let mut layer = tar::Builder::new(Vec::new());
        let header = TarWriter::header(tar::EntryType::Regular, "hello", 6);
        layer.append(&header, &b"hello\n"[..]).unwrap();
        let layer = layer.into_inner().unwrap();
        let config = json!({
            "architecture": host_architecture(),
            "os": "linux",
            "config": { "Cmd": ["/hello"] },
            "rootfs": { "type": "layers", "diff_ids": [sha256_digest(&layer)] },
        })
        .to_string()
        .into_bytes();
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": { "mediaType": "application/vnd.oci.image.config.v1+json",
                        "digest": sha256_digest(&config), "size": config.len() },
            "layers": [{ "mediaType": "application/vnd.oci.image.layer.v1.tar",
                         "digest": sha256_digest(&layer), "size": layer.len() }],
        })
        .to_string()
        .into_bytes();
        TinyImage {
            layer,
            config,
            manifest,
        }
    }

    fn digests(&self) -> Vec<String> {
        [&self.layer, &self.config, &self.manifest]
            .iter()
            .map(|d| sha256_digest(d))
            .collect()
    }

    /// An OCI layout archive of the image named `docker.io/library/tiny:1`, with the layer
    /// blob's content `layer` (the real one unless a test forges it).
    fn oci(&self, layer: Option<&[u8]>) -> TarWriter {
        let index = json!({
            "schemaVersion": 2,
            "manifests": [{
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": sha256_digest(&self.manifest), "size": self.manifest.len(),
                "annotations": { "io.containerd.image.name": "docker.io/library/tiny:1" },
            }],
        })
        .to_string();
        let mut tar = TarWriter::new().file("oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#);
        if let Some(layer) = layer {
            tar = tar.file(
                &format!("blobs/sha256/{}", hex(&sha256_digest(&self.layer))),
                layer,
            );
        }
        tar.file(
            &format!("blobs/sha256/{}", hex(&sha256_digest(&self.config))),
            &self.config,
        )
        .file(
            &format!("blobs/sha256/{}", hex(&sha256_digest(&self.manifest))),
            &self.manifest,
        )
        .file("index.json", index.as_bytes())
    }

    /// A `docker save` archive of the image, tagged `tiny:1`, with `manifest.json` padded
    /// with spaces to `manifest_size` bytes when given.
    fn docker_save(&self, manifest_size: Option<usize>) -> TarWriter {
        let mut manifest = json!([{
            "Config": "config.json", "RepoTags": ["tiny:1"], "Layers": ["l/layer.tar"],
        }])
        .to_string()
        .into_bytes();
        if let Some(size) = manifest_size {
            manifest.resize(size, b' ');
        }
        TarWriter::new()
            .file("l/layer.tar", &self.layer)
            .file("config.json", &self.config)
            .file("manifest.json", &manifest)
    }
}

#[tokio::test]
async fn hostile_archives_are_refused_and_leave_nothing() {
    let daemon = Berthd::start();
    let socket = daemon.socket.clone();
    let mut images = daemon.images().await;
    let dir = daemon.dir.path().join("archives");
    std::fs::create_dir_all(&dir).unwrap();
    let tiny = TinyImage::new();
    let mut forged = tiny.layer.clone();
    forged[514] ^= 0xff; // inside the file's content: still a well-formed tar

    let cases: Vec<(&str, TarWriter, &str)> = vec![
        (
            "a blob whose digest lies",
            tiny.oci(Some(&forged)),
            "digest mismatch",
        ),
        (
            "a manifest naming a missing blob",
            tiny.oci(None),
            "which is not in the archive",
        ),
        (
            "an oversized manifest.json",
            tiny.docker_save(Some(MAX_DOCUMENT_SIZE + 1)),
            "manifest.json of the archive: 8388609 bytes is more than the 8388608 accepted",
        ),
        (
            "a path like ../../x",
            TarWriter::new()
                .file("../../x", b"escaped")
                .file("l/layer.tar", &tiny.layer),
            "a '..' component is not allowed",
        ),
        (
            "a symlink out of the archive",
            TarWriter::new().symlink("l/layer.tar", "../../../etc/passwd"),
            "the target leaves the archive",
        ),
    ];
    for (what, archive, message) in cases {
        let path = dir.join("hostile.tar");
        archive.write(&path);
        let err = berthctl::fails(&socket, &["images", "import", path.to_str().unwrap()]);
        assert!(
            err.contains(message) && err.contains("ImportImages"),
            "{what}: {err}"
        );
        assert!(
            list(&mut images).await.is_empty(),
            "{what}: an image is visible"
        );
        assert_eq!(status(&mut images, "tiny:1").await, None, "{what}");
        wait_for_empty_trash(&daemon.root);
        let blobs = stored_blobs(&daemon.root);
        for digest in tiny.digests().iter().chain([&sha256_digest(&forged)]) {
            assert!(!blobs.contains(digest), "{what}: {digest} was stored");
        }
        assert!(blobs.is_empty(), "{what}: blobs left {blobs:?}");
        let snapshots = files_under(&daemon.root.join("snapshots"));
        assert!(snapshots.is_empty(), "{what}: {snapshots:?}");
        // No entry name became a path: nothing named x anywhere the daemon writes or runs.
        let escaped: Vec<PathBuf> = files_under(daemon.dir.path())
            .into_iter()
            .filter(|f| f.file_name().is_some_and(|n| n == "x"))
            .collect();
        assert!(escaped.is_empty(), "{what}: {escaped:?}");
        assert!(!std::env::current_dir().unwrap().join("x").exists());
    }

    // The daemon carries on: the same image, sound, imports (once as an OCI layout, once
    // as docker save), and is the one image.
    let sound = dir.join("sound.tar");
    tiny.oci(Some(&tiny.layer)).write(&sound);
    let out = import(&socket, &sound, false);
    let id = sha256_digest(&tiny.config);
    assert_eq!(out, format!("imported {id} docker.io/library/tiny:1\n"));
    tiny.docker_save(None).write(&sound);
    import(&socket, &sound, false);
    let all = list(&mut images).await;
    assert_eq!(all.len(), 1, "{all:?}");
    assert_eq!(all[0].id, id);
}

// ---------------------------------------------------------------------------------------------
// Info.

#[tokio::test]
async fn info_shows_versions_config_handlers_cgroups_and_storage() {
    let daemon = Berthd::start();
    let socket = daemon.socket.clone();
    let out = berthctl::ok(&socket, &["info", "--json"]);
    let info: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert_eq!(info["berthd"]["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(info["berthd"]["pid"], daemon.pid());
    assert_eq!(info["berthd"]["socket"], socket.display().to_string());
    assert_eq!(info["config"]["root"], daemon.root.display().to_string());
    assert_eq!(info["config"]["state"], daemon.state.display().to_string());
    assert!(
        info["config"]["runtime"]["cgroup_driver"].is_string(),
        "{info}"
    );
    let handlers = info["runtime_handlers"].as_array().expect("handlers");
    assert_eq!(handlers.len(), 1, "{info}");
    assert_eq!(handlers[0]["name"], "runc");
    assert_eq!(handlers[0]["default"], true);
    assert_eq!(
        handlers[0]["root"],
        daemon.state.join("runc").display().to_string()
    );
    if on_path("runc").is_some() {
        let version = info["runc"]["version"].as_str().expect("runc version");
        assert!(
            version.chars().next().is_some_and(|c| c.is_ascii_digit()),
            "{info}"
        );
    } else {
        assert!(info["runc"]["error"].is_string(), "{info}");
    }
    assert!(info["cgroup"]["mode"].is_string(), "{info}");
    assert!(
        ["systemd", "cgroupfs"].contains(&info["cgroup"]["driver"].as_str().unwrap_or("")),
        "{info}"
    );
    for (area, path) in [
        ("root", daemon.root.clone()),
        ("content", daemon.root.join("content")),
        ("snapshots", daemon.root.join("snapshots")),
    ] {
        assert_eq!(info["storage"][area]["path"], path.display().to_string());
        assert!(info["storage"][area]["bytes"].is_u64(), "{info}");
        assert!(info["storage"][area]["inodes"].as_u64() > Some(0), "{info}");
    }

    // The human form: a line per fact, then the configuration as TOML that parses back.
    let text = berthctl::ok(&socket, &["info"]);
    for want in [
        "berthd:",
        "runc:",
        "cgroups:",
        "handlers:   runc (default)",
        "storage:",
    ] {
        assert!(text.contains(want), "{want:?} missing:\n{text}");
    }
    let toml_part = text
        .split("# configuration in effect\n")
        .nth(1)
        .unwrap_or_else(|| panic!("no configuration:\n{text}"));
    assert!(toml_part.contains("[runtime]"), "{toml_part}");
    assert!(
        toml_part.contains(&format!("root = \"{}\"", daemon.root.display())),
        "{toml_part}"
    );

    // No daemon there: a clear error, exit status 1.
    let err = berthctl::fails(&daemon.dir.path().join("none.sock"), &["info"]);
    assert!(err.contains("cannot connect to berthd"), "{err}");
}
