//! Store-level tests: every table over a real sled database in a temporary directory.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;
use std::thread;

use tempfile::TempDir;

use crate::codec::envelope;
use crate::*;

fn open() -> (TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    (dir, store)
}

/// A 64-character id starting with `prefix`.
fn hex_id(prefix: &str) -> String {
    format!("{prefix:0<64}")
}

fn image_id(prefix: &str) -> String {
    format!("sha256:{}", hex_id(prefix))
}

fn sandbox(id: &str) -> SandboxRecord {
    SandboxRecord {
        id: id.to_owned(),
        name: "web".into(),
        namespace: "default".into(),
        uid: "8f0c3a58-52f1-4bd9-9b1e-6a1f3b6c2d11".into(),
        attempt: 0,
        created_at: 1_700_000_000_000_000_000,
        labels: BTreeMap::from([("app".into(), "web".into())]),
        annotations: BTreeMap::new(),
        runtime_handler: String::new(),
        handler: String::new(),
        netns_path: Some(format!("/run/berth/ns/{id}")),
        ip: Some("10.88.0.4".into()),
        additional_ips: vec!["fd00::4".into()],
        state: SandboxState::Ready,
        log_directory: "/var/log/pods/default_web_8f0c".into(),
        hostname: "web".into(),
        cgroup_parent: "kubepods-besteffort.slice".into(),
        config: vec![0x0a, 0x03, b'w', b'e', b'b'],
        intent: None,
    }
}

fn container(id: &str, sandbox_id: &str) -> ContainerRecord {
    ContainerRecord {
        id: id.to_owned(),
        sandbox_id: sandbox_id.to_owned(),
        handler: String::new(),
        name: "nginx".into(),
        attempt: 0,
        created_at: 1_700_000_000_000_000_001,
        image_ref: image_id("ab"),
        image_name: "nginx:1.27".into(),
        labels: BTreeMap::new(),
        annotations: BTreeMap::from([("io.kubernetes.container.hash".into(), "1".into())]),
        log_path: "/var/log/pods/default_web_8f0c/nginx/0.log".into(),
        bundle_dir: format!("/run/berth/containers/{id}"),
        config: vec![1, 2, 3],
        intent: None,
        started_at: 0,
        exit: None,
    }
}

fn image(id: &str, tags: &[&str]) -> ImageRecord {
    ImageRecord {
        id: id.to_owned(),
        repo_tags: tags.iter().map(|t| t.to_string()).collect(),
        repo_digests: vec![],
        size: 4_300_000,
        manifest_digest: format!("sha256:{}", hex_id("ee")),
        config: serde_json::json!({"architecture": "amd64", "os": "linux"}),
        pinned: false,
        created_at: 1_700_000_000_000_000_002,
        chain_ids: vec![format!("sha256:{}", hex_id("c1"))],
    }
}

const BUSYBOX: &str = "docker.io/library/busybox:latest";
const BUSYBOX_OLD: &str = "docker.io/library/busybox:1.36";

#[test]
fn sandbox_round_trip() {
    let (_dir, store) = open();
    let id = hex_id("a1");
    let table = store.sandboxes();
    table.insert(&sandbox(&id)).unwrap();
    assert_eq!(table.get(&id).unwrap(), sandbox(&id));

    let updated = table
        .update(&id, |mut s| {
            s.transition(SandboxState::NotReady)?;
            s.ip = None;
            Ok::<_, StoreError>(s)
        })
        .unwrap();
    assert_eq!(updated.state, SandboxState::NotReady);
    assert_eq!(table.get(&id).unwrap(), updated);

    let mut replaced = updated.clone();
    replaced.hostname = "other".into();
    table.put(&replaced).unwrap();
    assert_eq!(table.get(&id).unwrap().hostname, "other");

    assert!(table.remove(&id).unwrap());
    assert!(table.get(&id).unwrap_err().is_not_found());
    assert_eq!(table.try_get(&id).unwrap(), None);
}

#[test]
fn sandbox_cannot_become_ready_again() {
    let (_dir, store) = open();
    let id = hex_id("a1");
    let mut record = sandbox(&id);
    record.state = SandboxState::NotReady;
    store.sandboxes().insert(&record).unwrap();
    let err = store
        .sandboxes()
        .update(&id, |mut s| {
            s.transition(SandboxState::Ready)?;
            Ok::<_, StoreError>(s)
        })
        .unwrap_err();
    assert!(matches!(err, StoreError::InvalidTransition { .. }), "{err}");
    assert_eq!(
        store.sandboxes().get(&id).unwrap().state,
        SandboxState::NotReady
    );
}

#[test]
fn container_round_trip() {
    let (_dir, store) = open();
    let (id, sid) = (hex_id("c1"), hex_id("a1"));
    let table = store.containers();
    table.insert(&container(&id, &sid)).unwrap();
    assert_eq!(table.get(&id).unwrap(), container(&id, &sid));
    let updated = table
        .update(&id, |mut c| {
            c.log_path = "/var/log/pods/x/nginx/1.log".into();
            Ok::<_, StoreError>(c)
        })
        .unwrap();
    assert_eq!(table.get(&id).unwrap(), updated);
    assert_eq!(table.list().unwrap(), vec![updated]);
    assert!(table.remove(&id).unwrap());
    assert!(table.is_empty());
}

#[test]
fn image_round_trip() {
    let (_dir, store) = open();
    let id = image_id("ab");
    store.put_image_with_refs(&image(&id, &[BUSYBOX])).unwrap();
    assert_eq!(store.images().get(&id).unwrap(), image(&id, &[BUSYBOX]));
    assert_eq!(store.resolve_ref(BUSYBOX).unwrap(), Some(id.clone()));

    let pinned = store
        .update_image(&id, |mut i| {
            i.pinned = true;
            Ok::<_, StoreError>(i)
        })
        .unwrap();
    assert!(store.images().get(&id).unwrap().pinned);
    assert_eq!(pinned, store.images().get(&id).unwrap());

    assert!(store.remove_image(&id).unwrap());
    assert!(store.images().get(&id).unwrap_err().is_not_found());
}

#[test]
fn removes_are_idempotent() {
    let (_dir, store) = open();
    let id = hex_id("a1");
    store.sandboxes().insert(&sandbox(&id)).unwrap();
    assert!(store.sandboxes().remove(&id).unwrap());
    assert!(!store.sandboxes().remove(&id).unwrap());
    assert!(!store.containers().remove(&id).unwrap());
    assert!(!store.remove_image(&image_id("ab")).unwrap());
    assert_eq!(store.remove_ref(BUSYBOX).unwrap(), None);
}

#[test]
fn insert_twice_is_already_exists() {
    let (_dir, store) = open();
    let id = hex_id("a1");
    store.sandboxes().insert(&sandbox(&id)).unwrap();
    let mut second = sandbox(&id);
    second.name = "other".into();
    let err = store.sandboxes().insert(&second).unwrap_err();
    assert!(err.is_already_exists(), "{err}");
    assert_eq!(store.sandboxes().get(&id).unwrap().name, "web");
}

#[test]
fn update_errors() {
    let (_dir, store) = open();
    let id = hex_id("a1");
    let missing = store
        .sandboxes()
        .update(&id, Ok::<_, StoreError>)
        .unwrap_err();
    assert!(missing.is_not_found());

    store.sandboxes().insert(&sandbox(&id)).unwrap();
    let refused = store
        .sandboxes()
        .update(&id, |mut s| {
            s.name = "changed".into();
            Err::<SandboxRecord, _>(StoreError::NotFound {
                tree: "somewhere",
                key: "x".into(),
            })
        })
        .unwrap_err();
    assert!(refused.is_not_found());
    assert_eq!(store.sandboxes().get(&id).unwrap().name, "web");

    let rekeyed = store
        .sandboxes()
        .update(&id, |mut s| {
            s.id = hex_id("b2");
            Ok::<_, StoreError>(s)
        })
        .unwrap_err();
    assert!(
        matches!(rekeyed, StoreError::KeyChanged { .. }),
        "{rekeyed}"
    );
    assert!(!store.sandboxes().contains(&hex_id("b2")).unwrap());
}

#[test]
fn prefix_lookup() {
    let (_dir, store) = open();
    let table = store.containers();
    let (abc1, abc2, def) = (hex_id("abc1"), hex_id("abc2"), hex_id("def"));
    for id in [&abc1, &abc2, &def] {
        table.insert(&container(id, &hex_id("a1"))).unwrap();
    }
    assert_eq!(table.find_by_prefix("abc1").unwrap().id, abc1);
    assert_eq!(table.find_by_prefix("d").unwrap().id, def);
    assert_eq!(table.find_by_prefix(&abc2).unwrap().id, abc2);
    match table.find_by_prefix("abc").unwrap_err() {
        StoreError::Ambiguous {
            tree,
            prefix,
            matches,
        } => assert_eq!((tree, prefix.as_str(), matches), ("containers", "abc", 2)),
        other => panic!("unexpected {other}"),
    }
    assert!(table.find_by_prefix("abd").unwrap_err().is_not_found());
    assert!(table.find_by_prefix("").unwrap_err().is_not_found());
    assert!(store
        .images()
        .find_by_prefix("sha256:")
        .unwrap_err()
        .is_not_found());
}

#[test]
fn data_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let (sid, cid, iid) = (hex_id("a1"), hex_id("c1"), image_id("ab"));
    {
        let store = Store::open(dir.path()).unwrap();
        store.sandboxes().insert(&sandbox(&sid)).unwrap();
        store.containers().insert(&container(&cid, &sid)).unwrap();
        store.put_image_with_refs(&image(&iid, &[BUSYBOX])).unwrap();
    }
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(store.sandboxes().get(&sid).unwrap(), sandbox(&sid));
    assert_eq!(store.containers().get(&cid).unwrap(), container(&cid, &sid));
    assert_eq!(store.images().get(&iid).unwrap(), image(&iid, &[BUSYBOX]));
    assert_eq!(store.resolve_ref(BUSYBOX).unwrap(), Some(iid));
    assert!(store.size_on_disk().unwrap() > 0);
}

#[test]
fn metadata_dir_is_private() {
    let (dir, store) = open();
    assert_eq!(store.path(), dir.path().join("metadata"));
    let mode = std::fs::metadata(store.path())
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o700);
}

/// An image record as version 1 wrote it: `size` a string, no `pinned`.
fn image_v1_bytes(id: &str) -> Vec<u8> {
    let body = serde_json::json!({
        "id": id,
        "repo_tags": [BUSYBOX],
        "repo_digests": [],
        "size": "4300000",
        "manifest_digest": format!("sha256:{}", hex_id("ee")),
        "config": {"architecture": "amd64", "os": "linux"},
        "created_at": 1_700_000_000_000_000_002_i64,
        "chain_ids": [format!("sha256:{}", hex_id("c1"))],
    });
    envelope(1, &serde_json::to_vec(&body).unwrap())
}

#[test]
fn image_written_by_version_1_reads_as_version_2() {
    let (_dir, store) = open();
    let id = image_id("ab");
    let raw = store.raw_tree(trees::IMAGES);
    raw.insert(&id, image_v1_bytes(&id)).unwrap();
    store
        .raw_tree(trees::IMAGE_REFS)
        .insert(BUSYBOX, id.as_bytes())
        .unwrap();

    let read = store.images().get(&id).unwrap();
    assert_eq!(read, image(&id, &[BUSYBOX]));
    // Reading does not rewrite.
    assert_eq!(&raw.get(&id).unwrap().unwrap()[..3], &[FORMAT_JSON, 0, 1]);

    // The next write stores version 2.
    store
        .update_image(&id, |mut i| {
            i.pinned = true;
            Ok::<_, StoreError>(i)
        })
        .unwrap();
    assert_eq!(&raw.get(&id).unwrap().unwrap()[..3], &[FORMAT_JSON, 0, 2]);
    assert!(store.images().get(&id).unwrap().pinned);
    assert_eq!(store.refs_for(&id).unwrap(), [BUSYBOX]);
}

#[test]
fn newer_record_version_is_unsupported() {
    let (_dir, store) = open();
    let id = hex_id("a1");
    let body = serde_json::to_vec(&sandbox(&id)).unwrap();
    store
        .raw_tree(trees::SANDBOXES)
        .insert(&id, envelope(7, &body))
        .unwrap();
    match store.sandboxes().get(&id).unwrap_err() {
        StoreError::UnsupportedVersion {
            tree,
            key,
            version,
            supported,
        } => assert_eq!(
            (tree, key, version, supported),
            ("sandboxes", id.clone(), 7, 1)
        ),
        other => panic!("unexpected {other}"),
    }
    // Not overwritten by a blind update either.
    let err = store
        .sandboxes()
        .update(&id, Ok::<_, StoreError>)
        .unwrap_err();
    assert!(err.is_unreadable_data());
}

#[test]
fn corrupt_bytes_are_decode_errors() {
    let (_dir, store) = open();
    let (good, bad, short) = (hex_id("a1"), hex_id("b2"), hex_id("c3"));
    store.sandboxes().insert(&sandbox(&good)).unwrap();
    let raw = store.raw_tree(trees::SANDBOXES);
    raw.insert(&bad, &b"\x01\x00\x01{\"id\": 12, garbage"[..])
        .unwrap();
    raw.insert(&short, &b"\x01"[..]).unwrap();

    for key in [&bad, &short] {
        match store.sandboxes().get(key).unwrap_err() {
            StoreError::Decode { tree, key: k, .. } => {
                assert_eq!((tree, &k), ("sandboxes", key));
            }
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!(store.sandboxes().list().unwrap(), vec![sandbox(&good)]);
    let all = store.sandboxes().list_with_errors().unwrap();
    assert_eq!(all.len(), 3);
    assert_eq!(all.iter().filter(|r| r.is_err()).count(), 2);
    // A corrupt record can still be removed.
    assert!(store.sandboxes().remove(&bad).unwrap());
}

#[test]
fn newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Store::open(dir.path()).unwrap();
        store
            .raw_tree(trees::META)
            .insert("schema_version", &(SCHEMA_VERSION + 1).to_be_bytes())
            .unwrap();
        store.flush().unwrap();
    }
    match Store::open(dir.path()).unwrap_err() {
        StoreError::SchemaTooNew {
            found, supported, ..
        } => assert_eq!((found, supported), (SCHEMA_VERSION + 1, SCHEMA_VERSION)),
        other => panic!("unexpected {other}"),
    }
}

#[test]
fn schema_version_is_written_on_create() {
    let (_dir, store) = open();
    let stored = store.raw_tree(trees::META).get("schema_version").unwrap();
    assert_eq!(stored.as_deref(), Some(&SCHEMA_VERSION.to_be_bytes()[..]));
}

#[test]
fn remove_image_takes_its_refs() {
    let (_dir, store) = open();
    let (a, b) = (image_id("aa"), image_id("bb"));
    let digest_ref = format!("docker.io/library/busybox@sha256:{}", hex_id("ee"));
    let mut first = image(&a, &[BUSYBOX, BUSYBOX_OLD]);
    first.repo_digests = vec![digest_ref.clone()];
    store.put_image_with_refs(&first).unwrap();
    store
        .put_image_with_refs(&image(&b, &["docker.io/library/alpine:3"]))
        .unwrap();
    assert_eq!(store.refs_for(&a).unwrap().len(), 3);

    assert!(store.remove_image(&a).unwrap());
    assert!(store.refs_for(&a).unwrap().is_empty());
    for r in [BUSYBOX, BUSYBOX_OLD, digest_ref.as_str()] {
        assert_eq!(store.resolve_ref(r).unwrap(), None, "{r}");
    }
    assert_eq!(
        store.resolve_ref("docker.io/library/alpine:3").unwrap(),
        Some(b)
    );
    assert!(!store.remove_image(&a).unwrap());
}

#[test]
fn remove_image_cleans_dangling_refs() {
    let (_dir, store) = open();
    let id = image_id("aa");
    store
        .raw_tree(trees::IMAGE_REFS)
        .insert(BUSYBOX, id.as_bytes())
        .unwrap();
    assert!(!store.remove_image(&id).unwrap());
    assert_eq!(store.resolve_ref(BUSYBOX).unwrap(), None);
}

#[test]
fn tag_moves_between_images() {
    let (_dir, store) = open();
    let (old, new) = (image_id("aa"), image_id("bb"));
    store
        .put_image_with_refs(&image(&old, &[BUSYBOX, BUSYBOX_OLD]))
        .unwrap();
    store.put_image_with_refs(&image(&new, &[BUSYBOX])).unwrap();
    assert_eq!(store.resolve_ref(BUSYBOX).unwrap(), Some(new.clone()));
    assert_eq!(store.images().get(&old).unwrap().repo_tags, [BUSYBOX_OLD]);
    assert_eq!(store.refs_for(&old).unwrap(), [BUSYBOX_OLD]);

    // Dropping a tag from the record drops it from the index.
    store
        .update_image(&old, |mut i| {
            i.repo_tags.clear();
            Ok::<_, StoreError>(i)
        })
        .unwrap();
    assert_eq!(store.resolve_ref(BUSYBOX_OLD).unwrap(), None);
}

#[test]
fn set_and_remove_ref() {
    let (_dir, store) = open();
    let (a, b) = (image_id("aa"), image_id("bb"));
    store.put_image_with_refs(&image(&a, &[])).unwrap();
    store.put_image_with_refs(&image(&b, &[])).unwrap();

    assert_eq!(store.set_ref(BUSYBOX, &a).unwrap(), None);
    assert_eq!(store.images().get(&a).unwrap().repo_tags, [BUSYBOX]);
    assert_eq!(store.set_ref(BUSYBOX, &a).unwrap(), None);
    assert_eq!(store.images().get(&a).unwrap().repo_tags, [BUSYBOX]);

    let digest_ref = format!("docker.io/library/busybox@sha256:{}", hex_id("ee"));
    store.set_ref(&digest_ref, &a).unwrap();
    assert_eq!(
        store.images().get(&a).unwrap().repo_digests,
        std::slice::from_ref(&digest_ref)
    );

    assert_eq!(store.set_ref(BUSYBOX, &b).unwrap(), Some(a.clone()));
    assert!(store.images().get(&a).unwrap().repo_tags.is_empty());
    assert_eq!(store.images().get(&b).unwrap().repo_tags, [BUSYBOX]);

    let missing = store.set_ref(BUSYBOX, &image_id("cc")).unwrap_err();
    assert!(missing.is_not_found());
    assert_eq!(store.resolve_ref(BUSYBOX).unwrap(), Some(b.clone()));

    assert_eq!(store.remove_ref(BUSYBOX).unwrap(), Some(b.clone()));
    assert!(store.images().get(&b).unwrap().repo_tags.is_empty());
    assert_eq!(store.remove_ref(BUSYBOX).unwrap(), None);
    assert_eq!(store.refs_for(&a).unwrap(), [digest_ref]);
}

#[test]
fn concurrent_updates_are_all_applied() {
    let (_dir, store) = open();
    let id = hex_id("a1");
    store.sandboxes().insert(&sandbox(&id)).unwrap();
    let store = Arc::new(store);
    const THREADS: u32 = 8;
    const ROUNDS: u32 = 50;
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let (store, id) = (store.clone(), id.clone());
            thread::spawn(move || {
                for r in 0..ROUNDS {
                    store
                        .sandboxes()
                        .update(&id, |mut s| {
                            s.attempt += 1;
                            s.annotations.insert(format!("t{t}-r{r}"), String::new());
                            Ok::<_, StoreError>(s)
                        })
                        .unwrap();
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let record = store.sandboxes().get(&id).unwrap();
    assert_eq!(record.attempt, THREADS * ROUNDS);
    assert_eq!(record.annotations.len(), (THREADS * ROUNDS) as usize);
}

#[test]
fn concurrent_image_writes_keep_index_consistent() {
    let (_dir, store) = open();
    let ids: Vec<String> = ["aa", "bb", "cc", "dd"]
        .iter()
        .map(|p| image_id(p))
        .collect();
    for id in &ids {
        store.put_image_with_refs(&image(id, &[])).unwrap();
    }
    let handles: Vec<_> = ids
        .iter()
        .cloned()
        .map(|id| {
            let store = store.clone();
            thread::spawn(move || {
                for i in 0..25 {
                    store
                        .set_ref(&format!("example.com/app:{}", i % 5), &id)
                        .unwrap();
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    // Each reference is listed by exactly the image the index names.
    for i in 0..5 {
        let reference = format!("example.com/app:{i}");
        let owner = store.resolve_ref(&reference).unwrap().unwrap();
        for id in &ids {
            let listed = store
                .images()
                .get(id)
                .unwrap()
                .repo_tags
                .contains(&reference);
            assert_eq!(listed, *id == owner, "{reference} on {id}");
        }
    }
}

#[test]
fn options_without_per_write_flush() {
    let dir = tempfile::tempdir().unwrap();
    let options = StoreOptions::default().with_flush_each_write(false);
    let id = hex_id("a1");
    {
        let store = Store::open_with(dir.path(), &options).unwrap();
        store.sandboxes().insert(&sandbox(&id)).unwrap();
        store.flush().unwrap();
    }
    let store = Store::open_with(dir.path(), &options).unwrap();
    assert!(store.sandboxes().contains(&id).unwrap());
}

#[test]
fn error_messages_name_the_object() {
    let (_dir, store) = open();
    let id = hex_id("a1");
    let err = store.sandboxes().get(&id).unwrap_err();
    assert_eq!(err.to_string(), format!("sandbox {id:?} not found"));
    store
        .raw_tree(trees::CONTAINERS)
        .insert(&id, &b"\x09\x00\x01{}"[..])
        .unwrap();
    let err = store.containers().get(&id).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("corrupt container record {id:?} in tree containers: unknown body format tag 0x09")
    );
}

#[test]
fn run_state_and_intents_round_trip_and_old_records_read_without_them() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let mut c = container(&"c".repeat(64), &"s".repeat(64));
    c.intent = Some(crate::ContainerIntent::Starting);
    c.started_at = 5;
    c.exit = Some(crate::ContainerExit {
        exit_code: 255,
        finished_at: 6,
        reason: "Unknown".into(),
        message: "shim gone".into(),
    });
    store.containers().insert(&c).unwrap();
    assert_eq!(store.containers().get(&c.id).unwrap(), c);
    assert_eq!(c.state(), ContainerState::Exited);
    let mut s = sandbox(&"s".repeat(64));
    s.intent = Some(crate::SandboxIntent::Creating);
    store.sandboxes().insert(&s).unwrap();
    assert_eq!(store.sandboxes().get(&s.id).unwrap(), s);

    // A record written before these fields existed reads with none of them.
    let mut plain = container(&"d".repeat(64), &"s".repeat(64));
    let mut body = serde_json::to_value(&plain).unwrap();
    for field in ["intent", "started_at", "exit"] {
        body.as_object_mut().unwrap().remove(field);
    }
    let decoded: ContainerRecord = serde_json::from_value(body).unwrap();
    plain.started_at = 0;
    assert_eq!(decoded, plain);
    assert_eq!(decoded.state(), ContainerState::Created);
}
