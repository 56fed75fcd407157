//! A pod with a user namespace of its own (`userns_options` mode POD), against a real berthd
//! as root, driven with crictl: the container sees the pod's ID map, an image owned by its
//! root and a volume idmapped the same way (the volume keeps its files after removal), the
//! host sees the container's processes and new files under the mapped IDs,
//! exec runs inside the same user namespace, the pod's network namespace belongs to it, and
//! removal leaves nothing. Requests berth refuses (two mappings, a mapping not starting at
//! 0, modes CONTAINER and TARGET) fail with a message that says why.
//!
//! Needs root, the shared test registry and crictl on PATH, and a kernel that can run user
//! namespace pods (berthd advertises it in Status); otherwise it prints a note and passes
//! (or fails when `BERTH_REQUIRE_REGISTRY=1`).

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::{Duration, Instant};

use berth_integration::crictl::{self, crictl, ok};
use berth_integration::pods::mounts_under;
use berth_integration::registry::skip_or_panic;

const BUSYBOX: &str = "registry.k8s.io/e2e-test-images/busybox:1.29-2";
/// Network slot of this test in its binary (see `TestNet`).
const SLOT: u8 = 0;
/// Host ID of the pod's root: far from any real user of the machine.
const HOST_ROOT: u32 = 300_000;
const LENGTH: u32 = 65_536;

fn userns_json(mode: u32, mappings: &str) -> String {
    format!(
        r#"{{"namespace_options":{{"userns_options":{{"mode":{mode},"uids":[{mappings}],"gids":[{mappings}]}}}}}}"#
    )
}

fn mapping(container: u32, host: u32, length: u32) -> String {
    format!(r#"{{"container_id":{container},"host_id":{host},"length":{length}}}"#)
}

fn pod_json(dir: &Path, name: &str, security: &str) -> String {
    format!(
        r#"{{"metadata":{{"name":"{name}","namespace":"berth-it","uid":"uid-{name}"}},"hostname":"{name}","log_directory":"{}","linux":{{"security_context":{security}}}}}"#,
        dir.join("logs").display()
    )
}

fn inode(path: &Path) -> u64 {
    std::fs::metadata(path).unwrap().ino()
}

#[test]
fn pod_user_namespace() {
    let test = "pod_user_namespace";
    let Some(env) = crictl::start_env(test, SLOT) else {
        return;
    };
    let socket = env.daemon.socket.clone();
    let dir = env.daemon.dir.path().to_owned();
    let info = ok(&socket, &["info"]);
    if !info.contains("\"user_namespaces\": true") {
        skip_or_panic(
            test,
            "berthd does not advertise user namespaces on this host",
        );
        return;
    }

    // Refused requests: nothing is created for them.
    let refused = [
        (
            userns_json(
                0,
                &[mapping(0, HOST_ROOT, LENGTH), mapping(0, 500_000, LENGTH)].join(","),
            ),
            "exactly one mapping",
        ),
        (
            userns_json(0, &mapping(1, HOST_ROOT, LENGTH)),
            "must start at container ID 0",
        ),
        (userns_json(1, ""), "mode CONTAINER"),
        (userns_json(3, ""), "mode TARGET"),
    ];
    for (i, (security, want)) in refused.iter().enumerate() {
        let file = dir.join(format!("refused-{i}.json"));
        std::fs::write(&file, pod_json(&dir, &format!("refused-{i}"), security)).unwrap();
        let out = crictl(&socket, &["runp", file.to_str().unwrap()], None);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "runp {security} succeeded");
        assert!(stderr.contains(want), "{stderr} lacks {want:?}");
    }
    // A state directory the pod's unprivileged root could not reach: refused up front.
    use std::os::unix::fs::PermissionsExt;
    let mode = |m| std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(m)).unwrap();
    mode(0o700);
    let file = dir.join("unreachable.json");
    let security = userns_json(0, &mapping(0, HOST_ROOT, LENGTH));
    std::fs::write(&file, pod_json(&dir, "unreachable", &security)).unwrap();
    let out = crictl(&socket, &["runp", file.to_str().unwrap()], None);
    mode(0o755);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("FailedPrecondition") && stderr.contains("not searchable by others"),
        "{stderr}"
    );
    assert_eq!(ok(&socket, &["pods", "-q"]).trim(), "");

    let security = userns_json(0, &mapping(0, HOST_ROOT, LENGTH));
    let pod_file = dir.join("pod.json");
    std::fs::write(&pod_file, pod_json(&dir, "userns", &security)).unwrap();
    // A volume: a host directory of host root's, with a file of host root's in it.
    let volume = dir.join("volume");
    std::fs::create_dir(&volume).unwrap();
    std::fs::write(volume.join("owned"), "host file\n").unwrap();
    let ctr_file = dir.join("ctr.json");
    let script = "cat /proc/self/uid_map /proc/self/gid_map; id -u; stat -c %u /bin/sh; \
                  touch /made-here && echo wrote; stat -c %u /data/owned; \
                  touch /data/from-pod && echo volume-wrote; sleep 600";
    std::fs::write(
        &ctr_file,
        format!(
            r#"{{"metadata":{{"name":"box"}},"image":{{"image":"{BUSYBOX}"}},"command":["sh","-c","{script}"],"log_path":"box.log","mounts":[{{"host_path":"{}","container_path":"/data"}}],"linux":{{"security_context":{security}}}}}"#,
            volume.display()
        ),
    )
    .unwrap();
    ok(&socket, &["pull", BUSYBOX]);
    let pod = crictl::run_pod(&socket, &pod_file);
    let result = std::panic::catch_unwind(|| {
        let ctr = crictl::create_started(&socket, &pod, &ctr_file, &pod_file);

        // Inside: the pod's map, root, an image owned by root, a writable rootfs.
        let deadline = Instant::now() + Duration::from_secs(20);
        let logs = loop {
            let logs = ok(&socket, &["logs", &ctr]);
            if logs.contains("volume-wrote") {
                break logs;
            }
            assert!(Instant::now() < deadline, "container output: {logs:?}");
            std::thread::sleep(Duration::from_millis(100));
        };
        let lines: Vec<Vec<&str>> = logs
            .lines()
            .map(|l| l.split_whitespace().collect())
            .collect();
        let map = vec!["0", "300000", "65536"];
        assert_eq!(
            lines,
            [
                map.clone(),
                map,
                vec!["0"],
                vec!["0"],
                vec!["wrote"],
                vec!["0"],
                vec!["volume-wrote"]
            ],
            "{logs}"
        );

        // Outside: the container's processes run as the mapped root; the pod's namespaces
        // are the pinned ones; its new file is the mapped root's on the host.
        let pid = ok(
            &socket,
            &[
                "inspect",
                "-o",
                "go-template",
                "--template",
                "{{.info.pid}}",
                &ctr,
            ],
        );
        let proc_dir = Path::new("/proc").join(pid.trim());
        let status = std::fs::read_to_string(proc_dir.join("status")).unwrap();
        let uid_line = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
        assert_eq!(
            uid_line.split_whitespace().skip(1).collect::<Vec<_>>(),
            ["300000"; 4],
            "{uid_line}"
        );
        let pins = env.daemon.state.join("ns").join(&pod);
        for kind in ["user", "net", "ipc", "uts"] {
            assert_eq!(
                inode(&proc_dir.join("ns").join(kind)),
                inode(&pins.join(kind)),
                "{kind} namespace of the container is not the pod's pin"
            );
        }
        let made = env
            .daemon
            .root
            .join("containers")
            .join(&ctr)
            .join("upper/made-here");
        let meta = std::fs::metadata(&made).unwrap();
        assert_eq!((meta.uid(), meta.gid()), (HOST_ROOT, HOST_ROOT));
        // Through the idmapped volume the pod's root writes as host root, as root does in
        // other pods.
        let from_pod = std::fs::metadata(volume.join("from-pod")).unwrap();
        assert_eq!((from_pod.uid(), from_pod.gid()), (0, 0));

        // Exec joins the same user namespace.
        let id = ok(
            &socket,
            &["exec", &ctr, "sh", "-c", "id -u; cat /proc/self/uid_map"],
        );
        let words: Vec<&str> = id.split_whitespace().collect();
        assert_eq!(words, ["0", "0", "300000", "65536"], "{id}");
        // The pod network works from inside the user namespace.
        let addr = ok(
            &socket,
            &["exec", &ctr, "ip", "-4", "-o", "addr", "show", "eth0"],
        );
        let ip = addr
            .split_whitespace()
            .nth(3)
            .and_then(|cidr| cidr.split('/').next())
            .unwrap_or_default();
        assert!(env.net.is_pod_ip(ip), "{addr}");
        // The pod's PID namespace init runs as the pod's root too.
        let init = std::fs::read_to_string(
            env.daemon
                .state
                .join("sandboxes")
                .join(&pod)
                .join("pid-init"),
        )
        .unwrap();
        let init_dir = Path::new("/proc").join(init.trim());
        assert_eq!(std::fs::metadata(&init_dir).unwrap().uid(), HOST_ROOT);
        assert_eq!(inode(&init_dir.join("ns/user")), inode(&pins.join("user")));
        init_dir
    });
    let removed = crictl(&socket, &["rmp", "--force", &pod], None);
    let init_dir = match result {
        Ok(dir) => dir,
        Err(panic) => std::panic::resume_unwind(panic),
    };
    assert!(removed.status.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut left = env.leftovers(std::slice::from_ref(&pod));
        left.extend(
            mounts_under(&dir)
                .into_iter()
                .map(|(m, fs)| format!("mount {} ({fs})", m.display())),
        );
        if init_dir.exists() {
            left.push(format!("pod init {}", init_dir.display()));
        }
        for name in ["owned", "from-pod"] {
            if !volume.join(name).exists() {
                left.push(format!("the volume lost {name}"));
            }
        }
        if left.is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "left after rmp: {left:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
    drop(env);
}
