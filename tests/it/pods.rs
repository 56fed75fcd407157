//! Pod sandboxes against a real berthd, as root: RunPodSandbox, StopPodSandbox,
//! RemovePodSandbox, PodSandboxStatus and ListPodSandbox, with real namespaces, mounts and
//! CNI plugins (Debian's, from /usr/lib/cni).
//!
//! Every test runs its daemon on a network of its own ([`TestNet`]: bridge
//! `bt<pid%10000><slot, 2 digits>`, subnet `10.232.<n>.0/24`, host-local `dataDir` in the temporary
//! directory, portmap), never on the built-in `berth0`. [`PodEnv`] cleans up on drop, also
//! after a panic: daemon killed by PID, mounts under the temporary directory unmounted,
//! bridge deleted, the network's iptables rules and chains removed.
//!
//! "Nothing left" ([`assert_nothing_left`]) means: ListPodSandbox empty; no mount under
//! `--state` (namespace pins are nsfs bind mounts, `/dev/shm` a tmpfs); `<state>/ns`,
//! `<state>/sandboxes` and `<root>/cni-cache` empty; no link on the test bridge (a veth of
//! a pod); no host-local allocation; no iptables rule naming the network, its subnet or a
//! sandbox ID, no per-pod `CNI-*` chain of the test; no cgroup named after a sandbox ID.
//!
//! Without root every test prints a note and passes.

use std::collections::{BTreeSet, HashMap};
use std::io::Read;
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use berth_integration::pods::{
    iptables_lines_containing, is_root, mounts_under, ns_inode, nsenter, processes_in_netns,
    PodEnv, TestNet, SYSTEM_CNI_BIN,
};
use berth_integration::rpc::pod::{
    remove, run, status, stop, stop_and_remove, try_run, try_status,
};
use berth_integration::rpc::{timed, Runtime};
use berth_integration::Layout;
use cri_api::v1;
use tonic::Code;

/// How long the kernel may take to finish tearing down namespaces and links.
const SETTLE: Duration = Duration::from_secs(10);
/// The pods' Kubernetes namespace.
const POD_NAMESPACE: &str = "berth-it";

// ---------------------------------------------------------------------------------------------
// Helpers.

/// Whether the test can run: root and the tools it uses. Prints a note when not root.
fn can_run(test: &str) -> bool {
    if !is_root() {
        berth_integration::registry::skip_or_panic(test, "pod sandboxes need root");
        return false;
    }
    for plugin in ["bridge", "host-local", "loopback", "portmap"] {
        let path = Path::new(SYSTEM_CNI_BIN).join(plugin);
        assert!(
            path.is_file(),
            "{} missing (scripts/install-deps.sh test installs containernetworking-plugins)",
            path.display()
        );
    }
    true
}

fn metadata(name: &str) -> v1::PodSandboxMetadata {
    v1::PodSandboxMetadata {
        name: name.to_owned(),
        uid: format!("uid-{name}"),
        namespace: POD_NAMESPACE.to_owned(),
        attempt: 1,
    }
}

fn dns(servers: &[&str], searches: &[&str], options: &[&str]) -> v1::DnsConfig {
    let owned = |v: &[&str]| v.iter().map(|s| s.to_string()).collect();
    v1::DnsConfig {
        servers: owned(servers),
        searches: owned(searches),
        options: owned(options),
    }
}

/// A pod with a hostname, DNS settings, labels and annotations.
fn pod_config(name: &str) -> v1::PodSandboxConfig {
    v1::PodSandboxConfig {
        metadata: Some(metadata(name)),
        hostname: format!("{name}-host"),
        dns_config: Some(dns(&["10.10.10.10"], &["berth.test"], &["ndots:2"])),
        labels: HashMap::from([
            ("app".to_owned(), name.to_owned()),
            ("suite".to_owned(), "pods".to_owned()),
        ]),
        annotations: HashMap::from([("berth.test/pod".to_owned(), name.to_owned())]),
        ..Default::default()
    }
}

fn with_namespaces(
    mut config: v1::PodSandboxConfig,
    options: v1::NamespaceOption,
) -> v1::PodSandboxConfig {
    let linux = config.linux.get_or_insert_with(Default::default);
    linux
        .security_context
        .get_or_insert_with(Default::default)
        .namespace_options = Some(options);
    config
}

fn host_port_mapping(host_port: u16, container_port: u16) -> v1::PortMapping {
    v1::PortMapping {
        protocol: v1::Protocol::Tcp as i32,
        container_port: i32::from(container_port),
        host_port: i32::from(host_port),
        host_ip: "127.0.0.1".to_owned(),
    }
}

/// `count` TCP ports free on 127.0.0.1 right now (high, from the kernel's ephemeral range).
fn free_ports(count: usize) -> Vec<u16> {
    let listeners: Vec<std::net::TcpListener> = (0..count)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    listeners
        .iter()
        .map(|l| l.local_addr().unwrap().port())
        .collect()
}

fn ip_of(status: &v1::PodSandboxStatus) -> String {
    status.network.clone().unwrap_or_default().ip
}

async fn list(rt: &mut Runtime, filter: Option<v1::PodSandboxFilter>) -> Vec<v1::PodSandbox> {
    timed(
        "ListPodSandbox",
        rt.list_pod_sandbox(v1::ListPodSandboxRequest { filter }),
    )
    .await
    .unwrap_or_else(|s| panic!("ListPodSandbox: {s:?}"))
    .into_inner()
    .items
}

fn ids_of(items: &[v1::PodSandbox]) -> BTreeSet<String> {
    items.iter().map(|p| p.id.clone()).collect()
}

/// Asserts nothing of any pod is left (see the module docs), giving the kernel up to
/// [`SETTLE`] to finish namespace and link teardown.
async fn assert_nothing_left(env: &PodEnv, rt: &mut Runtime, ids: &[String]) {
    let remaining = list(rt, None).await;
    assert!(
        remaining.is_empty(),
        "ListPodSandbox still lists {:?}",
        ids_of(&remaining)
    );
    let deadline = Instant::now() + SETTLE;
    loop {
        let left = env.leftovers(ids);
        if left.is_empty() {
            return;
        }
        if Instant::now() > deadline {
            panic!(
                "left behind after the pods were removed:\n  {}\nberthd log (tail):\n{}",
                left.join("\n  "),
                env.daemon.log_tail(40)
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The IPv4 addresses of `eth0` inside the pod's network namespace.
fn ips_in_netns(env: &PodEnv, id: &str) -> String {
    let out = nsenter(
        &[format!("--net={}", env.pin(id, "net").display())],
        &["ip", "-o", "-4", "addr", "show", "dev", "eth0"],
    );
    assert!(
        out.status.success(),
        "ip addr in pod {id}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn nsenter_stdout(options: &[String], program: &[&str]) -> String {
    let out = nsenter(options, program);
    assert!(
        out.status.success(),
        "nsenter {options:?} {program:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn host_hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .unwrap()
        .trim()
        .to_owned()
}

/// A process started by a test, killed by its PID (and reaped) on drop.
struct ChildGuard(Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Connects to `addr` (retrying until `timeout`) and returns what the peer sends.
fn read_from(addr: SocketAddr, timeout: Duration) -> String {
    let deadline = Instant::now() + timeout;
    loop {
        match TcpStream::connect_timeout(&addr, Duration::from_secs(2)) {
            Ok(mut stream) => {
                stream
                    .set_read_timeout(Some(Duration::from_secs(5)))
                    .unwrap();
                let mut text = String::new();
                let _ = stream.read_to_string(&mut text);
                if !text.is_empty() || Instant::now() > deadline {
                    return text;
                }
            }
            Err(err) if Instant::now() > deadline => panic!("connect to {addr}: {err}"),
            Err(_) => {}
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

// ---------------------------------------------------------------------------------------------
// 50 pods.

#[tokio::test]
async fn fifty_pods_run_and_leave_nothing_behind() {
    if !can_run("fifty_pods_run_and_leave_nothing_behind") {
        return;
    }
    const PODS: usize = 50;
    const BATCH: usize = 5;
    let env = PodEnv::start(0);
    let mut rt = env.daemon.runtime().await;
    // Every tenth pod forwards a host port on 127.0.0.1.
    let ports = free_ports(PODS / 10);

    let configs: Vec<v1::PodSandboxConfig> = (0..PODS)
        .map(|i| {
            let mut config = pod_config(&format!("pod-{i:02}"));
            if i % 10 == 0 {
                config.port_mappings = vec![host_port_mapping(ports[i / 10], 80)];
            }
            config
        })
        .collect();

    // RunPodSandbox ×50, BATCH at a time.
    let mut ids: Vec<String> = vec![String::new(); PODS];
    for batch in (0..PODS).collect::<Vec<_>>().chunks(BATCH) {
        let mut tasks = tokio::task::JoinSet::new();
        for &i in batch {
            let mut rt = rt.clone();
            let config = configs[i].clone();
            tasks.spawn(async move { (i, try_run(&mut rt, config).await) });
        }
        while let Some(joined) = tasks.join_next().await {
            let (i, result) = joined.unwrap();
            ids[i] = result.unwrap_or_else(|s| {
                panic!(
                    "RunPodSandbox(pod-{i:02}): {s:?}\n{}",
                    env.daemon.log_tail(40)
                )
            });
        }
    }
    assert_eq!(
        ids.iter().collect::<BTreeSet<_>>().len(),
        PODS,
        "IDs must be distinct"
    );

    // Each is READY with a distinct IP of the subnet, configured on eth0 in its netns.
    let mut ips = BTreeSet::new();
    let mut netns_inodes = BTreeSet::new();
    for (i, id) in ids.iter().enumerate() {
        let st = status(&mut rt, id).await;
        assert_eq!(
            st.state,
            v1::PodSandboxState::SandboxReady as i32,
            "pod {i}"
        );
        assert_eq!(st.metadata.as_ref().unwrap().name, format!("pod-{i:02}"));
        let ip = ip_of(&st);
        assert!(
            env.net.is_pod_ip(&ip),
            "pod {i}: IP {ip:?} not in {}",
            env.net.subnet()
        );
        assert!(ips.insert(ip.clone()), "pod {i}: IP {ip} given twice");
        let addrs = ips_in_netns(&env, id);
        assert!(
            addrs.contains(&format!("{ip}/24")),
            "pod {i}: eth0 has {addrs}"
        );
        for kind in ["net", "ipc", "uts"] {
            assert!(env.pin(id, kind).exists(), "pod {i}: no {kind} pin");
        }
        netns_inodes.insert(ns_inode(&env.pin(id, "net")).unwrap());
        let shm = env.sandbox_dir(id).join("shm");
        assert!(
            mounts_under(&shm).iter().any(|(_, fs)| fs == "tmpfs"),
            "pod {i}: no shm tmpfs"
        );
        assert!(env.cni_cache().join(format!("{id}.json")).is_file());
        // The per-pod rule of the bridge plugin names the sandbox: the `grep <id>` check
        // below would see a leftover.
        assert!(
            !iptables_lines_containing(id).is_empty(),
            "pod {i}: no iptables rule names {id}"
        );
        if i % 10 == 0 {
            assert!(
                iptables_lines_containing(id)
                    .iter()
                    .any(|l| l.contains(&format!("--dports {}", ports[i / 10]))),
                "pod {i}: no portmap rule for host port {}",
                ports[i / 10]
            );
        }
    }
    assert_eq!(netns_inodes.len(), PODS, "each pod has its own netns");
    assert_eq!(env.net.ip_allocations().len(), PODS);
    assert_eq!(
        env.net.attached_links().len(),
        PODS,
        "one veth per pod on the bridge"
    );
    let listed = list(
        &mut rt,
        Some(v1::PodSandboxFilter {
            label_selector: HashMap::from([("suite".to_owned(), "pods".to_owned())]),
            ..Default::default()
        }),
    )
    .await;
    assert_eq!(ids_of(&listed), ids.iter().cloned().collect());

    // Stop + Remove all, BATCH at a time.
    for batch in ids.chunks(BATCH) {
        let mut tasks = tokio::task::JoinSet::new();
        for id in batch {
            let mut rt = rt.clone();
            let id = id.clone();
            tasks.spawn(async move { stop_and_remove(&mut rt, &id).await });
        }
        while let Some(joined) = tasks.join_next().await {
            joined.unwrap();
        }
    }
    assert_nothing_left(&env, &mut rt, &ids).await;
    assert_eq!(
        processes_in_netns(&netns_inodes),
        Vec::<u32>::new(),
        "processes still in a pod netns"
    );
}

// ---------------------------------------------------------------------------------------------
// CNI failure injection.

/// A CNI plugin that logs each call to `<bin>/calls.log` and fails ADD with the spec's error
/// JSON; DEL fails too when `fail_del`.
fn write_broken_plugin(bin: &Path, name: &str, fail_del: bool) {
    std::fs::create_dir_all(bin).unwrap();
    let del = if fail_del {
        r#"DEL) printf '%s\n' '{"cniVersion":"1.0.0","code":11,"msg":"injected DEL failure"}'; exit 1 ;;"#
    } else {
        "DEL) exit 0 ;;"
    };
    let script = format!(
        r#"#!/bin/sh
# berth integration test: a broken CNI plugin.
cat >/dev/null
echo "$CNI_COMMAND $CNI_CONTAINERID" >>"{log}"
case "$CNI_COMMAND" in
ADD) printf '%s\n' '{{"cniVersion":"1.0.0","code":7,"msg":"injected failure"}}'; exit 1 ;;
{del}
VERSION) printf '%s\n' '{{"cniVersion":"1.0.0","supportedVersions":["0.4.0","1.0.0"]}}' ;;
esac
exit 0
"#,
        log = bin.join("calls.log").display()
    );
    let path = bin.join(name);
    std::fs::write(&path, script).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// `(command, sandbox id)` of each call the broken plugin logged.
fn broken_plugin_calls(bin: &Path) -> Vec<(String, String)> {
    std::fs::read_to_string(bin.join("calls.log"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let (command, id) = l.split_once(' ')?;
            Some((command.to_owned(), id.to_owned()))
        })
        .collect()
}

/// A daemon whose network chain is bridge → broken plugin → portmap.
fn broken_env(slot: u8, fail_del: bool) -> (PodEnv, std::path::PathBuf) {
    let layout = Layout::new();
    let bin = layout.dir.path().join("bin");
    write_broken_plugin(&bin, BROKEN_PLUGIN, fail_del);
    layout.add_cni_keys(&format!(
        "bin_dirs = [\"{}\", \"{SYSTEM_CNI_BIN}\"]",
        bin.display()
    ));
    let env = PodEnv::start_in(layout, slot);
    env.net.write_conflist(vec![
        env.net.bridge_plugin(),
        serde_json::json!({ "type": BROKEN_PLUGIN }),
        TestNet::portmap_plugin(),
    ]);
    (env, bin)
}

const BROKEN_PLUGIN: &str = "berth-it-broken";

#[tokio::test]
async fn cni_failure_is_reported_and_rolled_back() {
    if !can_run("cni_failure_is_reported_and_rolled_back") {
        return;
    }
    let (env, bin) = broken_env(1, false);
    let mut rt = env.daemon.runtime().await;

    let err = try_run(&mut rt, pod_config("broken"))
        .await
        .expect_err("RunPodSandbox must fail when a plugin of the chain fails");
    eprintln!("RunPodSandbox error: {:?}: {}", err.code(), err.message());
    assert_ne!(err.code(), Code::Ok);
    assert!(
        err.message().contains(BROKEN_PLUGIN),
        "the error must name the plugin: {}",
        err.message()
    );
    assert!(
        err.message().contains("injected failure"),
        "the error must carry the plugin's message: {}",
        err.message()
    );

    // The plugin was asked to ADD, then rolled back with DEL, for one sandbox ID.
    let calls = broken_plugin_calls(&bin);
    let commands: Vec<&str> = calls.iter().map(|(c, _)| c.as_str()).collect();
    assert_eq!(commands, ["ADD", "DEL"], "calls of the broken plugin");
    let failed_id = calls[0].1.clone();
    assert_eq!(calls[1].1, failed_id);

    assert_nothing_left(&env, &mut rt, std::slice::from_ref(&failed_id)).await;

    // A fixed network: the same pod now runs (its name was released).
    env.net.write_standard();
    let id = run(&mut rt, pod_config("broken")).await;
    assert_ne!(id, failed_id);
    let st = status(&mut rt, &id).await;
    assert_eq!(st.state, v1::PodSandboxState::SandboxReady as i32);
    assert!(env.net.is_pod_ip(&ip_of(&st)), "{:?}", ip_of(&st));
    stop_and_remove(&mut rt, &id).await;
    assert_nothing_left(&env, &mut rt, &[failed_id, id]).await;
}

/// A plugin whose DEL fails as well as its ADD: the rollback's DEL of that plugin fails,
/// and still nothing may be left once RunPodSandbox has answered (the runtime core's undo
/// of a pod that never ran abandons its CNI attachment after one more DEL).
#[tokio::test]
async fn cni_failure_with_failing_rollback_leaves_nothing() {
    if !can_run("cni_failure_with_failing_rollback_leaves_nothing") {
        return;
    }
    let (env, bin) = broken_env(2, true);
    let mut rt = env.daemon.runtime().await;

    let err = try_run(&mut rt, pod_config("broken-del"))
        .await
        .expect_err("RunPodSandbox must fail when a plugin of the chain fails");
    assert!(
        err.message().contains(BROKEN_PLUGIN) && err.message().contains("injected failure"),
        "the ADD error must be reported: {}",
        err.message()
    );
    let calls = broken_plugin_calls(&bin);
    let failed_id = calls.first().map(|(_, id)| id.clone()).unwrap_or_default();
    assert_nothing_left(&env, &mut rt, &[failed_id]).await;

    // The name is free again once the network works.
    env.net.write_standard();
    let id = run(&mut rt, pod_config("broken-del")).await;
    stop_and_remove(&mut rt, &id).await;
    assert_nothing_left(&env, &mut rt, &[id]).await;
}

// ---------------------------------------------------------------------------------------------
// Sysctls.

#[tokio::test]
async fn sysctls_apply_in_the_pod_namespaces_and_others_are_refused() {
    if !can_run("sysctls_apply_in_the_pod_namespaces_and_others_are_refused") {
        return;
    }
    let env = PodEnv::start(3);
    let mut rt = env.daemon.runtime().await;
    let host = |path: &str| std::fs::read_to_string(path).unwrap().trim().to_owned();
    let swappiness = host("/proc/sys/vm/swappiness");
    let host_before = [
        host("/proc/sys/kernel/shm_rmid_forced"),
        host("/proc/sys/fs/mqueue/msg_max"),
        host("/proc/sys/net/ipv4/ip_unprivileged_port_start"),
    ];

    let mut config = pod_config("sysctls");
    config.linux = Some(v1::LinuxPodSandboxConfig {
        sysctls: HashMap::from([
            ("kernel.shm_rmid_forced".to_owned(), "1".to_owned()),
            ("fs.mqueue.msg_max".to_owned(), "100".to_owned()),
            (
                "net.ipv4.ip_unprivileged_port_start".to_owned(),
                "81".to_owned(),
            ),
        ]),
        ..Default::default()
    });
    let id = run(&mut rt, config).await;
    let ipc = vec![format!("--ipc={}", env.pin(&id, "ipc").display())];
    let net = vec![format!("--net={}", env.pin(&id, "net").display())];
    assert_eq!(
        nsenter_stdout(&ipc, &["cat", "/proc/sys/kernel/shm_rmid_forced"]),
        "1"
    );
    assert_eq!(
        nsenter_stdout(&ipc, &["cat", "/proc/sys/fs/mqueue/msg_max"]),
        "100"
    );
    assert_eq!(
        nsenter_stdout(
            &net,
            &["cat", "/proc/sys/net/ipv4/ip_unprivileged_port_start"]
        ),
        "81"
    );
    let host_after = [
        host("/proc/sys/kernel/shm_rmid_forced"),
        host("/proc/sys/fs/mqueue/msg_max"),
        host("/proc/sys/net/ipv4/ip_unprivileged_port_start"),
    ];
    assert_eq!(
        host_before, host_after,
        "the host's sysctls must not change"
    );
    stop_and_remove(&mut rt, &id).await;
    assert_nothing_left(&env, &mut rt, std::slice::from_ref(&id)).await;

    // Not namespaced: refused before anything is created.
    let mut config = pod_config("swappiness");
    config.linux = Some(v1::LinuxPodSandboxConfig {
        sysctls: HashMap::from([("vm.swappiness".to_owned(), "10".to_owned())]),
        ..Default::default()
    });
    let err = try_run(&mut rt, config)
        .await
        .expect_err("vm.swappiness must be refused");
    assert_eq!(err.code(), Code::InvalidArgument, "{}", err.message());
    assert!(err.message().contains("vm.swappiness"), "{}", err.message());
    assert_eq!(host("/proc/sys/vm/swappiness"), swappiness);

    // net.* with the host network: refused too.
    let mut config = with_namespaces(
        pod_config("host-net-sysctl"),
        v1::NamespaceOption {
            network: v1::NamespaceMode::Node as i32,
            ..Default::default()
        },
    );
    config
        .linux
        .as_mut()
        .unwrap()
        .sysctls
        .insert("net.ipv4.ip_forward".to_owned(), "1".to_owned());
    let err = try_run(&mut rt, config)
        .await
        .expect_err("net.* on the host network");
    assert_eq!(err.code(), Code::InvalidArgument, "{}", err.message());
    assert_nothing_left(&env, &mut rt, &[id]).await;

    // The refused pods' names were not kept.
    let id = run(&mut rt, pod_config("swappiness")).await;
    stop_and_remove(&mut rt, &id).await;
    assert_nothing_left(&env, &mut rt, &[id]).await;
}

// ---------------------------------------------------------------------------------------------
// DNS, hostname, host network.

#[tokio::test]
async fn dns_hostname_and_host_network() {
    if !can_run("dns_hostname_and_host_network") {
        return;
    }
    let env = PodEnv::start(4);
    let mut rt = env.daemon.runtime().await;
    let mut ids = Vec::new();

    // DNS config and hostname.
    let mut config = pod_config("dns");
    config.hostname = "dns-pod-host".to_owned();
    config.dns_config = Some(dns(
        &["10.10.10.10", "10.10.10.11"],
        &["a.berth.test", "b.berth.test"],
        &["ndots:5", "timeout:1"],
    ));
    let id = run(&mut rt, config).await;
    ids.push(id.clone());
    let dir = env.sandbox_dir(&id);
    assert_eq!(
        std::fs::read_to_string(dir.join("resolv.conf")).unwrap(),
        "search a.berth.test b.berth.test\nnameserver 10.10.10.10\nnameserver 10.10.10.11\noptions ndots:5 timeout:1\n"
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("hostname")).unwrap(),
        "dns-pod-host\n"
    );
    let uts = vec![format!("--uts={}", env.pin(&id, "uts").display())];
    assert_eq!(nsenter_stdout(&uts, &["hostname"]), "dns-pod-host");
    assert_eq!(
        host_hostname(),
        nsenter_stdout(&[], &["hostname"]),
        "host unchanged"
    );
    let ip = ip_of(&status(&mut rt, &id).await);
    let hosts = std::fs::read_to_string(dir.join("hosts")).unwrap();
    assert!(hosts.contains(&format!("{ip}\tdns-pod-host\n")), "{hosts}");
    assert!(hosts.starts_with("127.0.0.1\tlocalhost\n"), "{hosts}");

    // No DNS config: the host's resolv.conf.
    let mut config = pod_config("host-dns");
    config.dns_config = None;
    let id = run(&mut rt, config).await;
    ids.push(id.clone());
    assert_eq!(
        std::fs::read_to_string(env.sandbox_dir(&id).join("resolv.conf")).unwrap(),
        std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default()
    );

    // Host network: no network or UTS namespace, no IP, the host's hostname.
    let config = with_namespaces(
        pod_config("host-network"),
        v1::NamespaceOption {
            network: v1::NamespaceMode::Node as i32,
            ..Default::default()
        },
    );
    let links_before = env.net.attached_links().len();
    let id = run(&mut rt, config).await;
    ids.push(id.clone());
    assert!(
        !env.pin(&id, "net").exists(),
        "host-network pod has a netns pin"
    );
    assert!(
        !env.pin(&id, "uts").exists(),
        "host-network pod has a UTS pin"
    );
    assert!(
        env.pin(&id, "ipc").exists(),
        "host-network pod keeps its own IPC"
    );
    let st = status(&mut rt, &id).await;
    assert_eq!(st.state, v1::PodSandboxState::SandboxReady as i32);
    assert_eq!(ip_of(&st), "", "host-network pod has no pod IP");
    assert_eq!(
        st.linux
            .and_then(|l| l.namespaces)
            .and_then(|n| n.options)
            .map(|o| o.network),
        Some(v1::NamespaceMode::Node as i32)
    );
    assert_eq!(
        std::fs::read_to_string(env.sandbox_dir(&id).join("hostname")).unwrap(),
        format!("{}\n", host_hostname())
    );
    assert!(
        !env.cni_cache().join(format!("{id}.json")).exists(),
        "host-network pod attached to CNI"
    );
    assert_eq!(
        env.net.attached_links().len(),
        links_before,
        "no veth for it"
    );

    for id in &ids {
        stop_and_remove(&mut rt, id).await;
    }
    assert_nothing_left(&env, &mut rt, &ids).await;
}

// ---------------------------------------------------------------------------------------------
// Status, list, idempotence, names.

#[tokio::test]
async fn status_list_filters_and_idempotence() {
    if !can_run("status_list_filters_and_idempotence") {
        return;
    }
    let env = PodEnv::start(5);
    let mut rt = env.daemon.runtime().await;
    let start_ns = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i64;

    let mut config_a = pod_config("alpha");
    config_a.labels.insert("tier".to_owned(), "web".to_owned());
    config_a
        .annotations
        .insert("berth.test/note".to_owned(), "first pod".to_owned());
    let mut config_b = pod_config("beta");
    config_b.labels.insert("tier".to_owned(), "web".to_owned());
    let a = run(&mut rt, config_a.clone()).await;
    let b = run(&mut rt, config_b.clone()).await;
    assert_eq!(a.len(), 64, "{a}");
    assert!(a.chars().all(|c| c.is_ascii_hexdigit()), "{a}");

    // PodSandboxStatus echoes the config.
    let st = status(&mut rt, &a).await;
    assert_eq!(st.id, a);
    assert_eq!(st.metadata, config_a.metadata);
    assert_eq!(st.labels, config_a.labels);
    assert_eq!(st.annotations, config_a.annotations);
    assert_eq!(st.state, v1::PodSandboxState::SandboxReady as i32);
    let now_ns = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i64;
    assert!(
        st.created_at >= start_ns && st.created_at <= now_ns,
        "created_at {} not in [{start_ns}, {now_ns}]",
        st.created_at
    );
    let ip_a = ip_of(&st);
    assert!(env.net.is_pod_ip(&ip_a), "{ip_a:?}");
    // A unique prefix names the sandbox too.
    assert_eq!(status(&mut rt, &a[..12]).await.id, a);
    let verbose = try_status(&mut rt, &a, true).await.unwrap();
    let info: serde_json::Value =
        serde_json::from_str(verbose.info.get("info").expect("verbose info")).unwrap();
    assert_eq!(
        info["netns"].as_str(),
        Some(env.pin(&a, "net").to_str().unwrap()),
        "{info}"
    );

    // Pod stats and metrics, unary and streamed (one page here), agree on the pods.
    let stats_ids = |stats: Vec<v1::PodSandboxStats>| -> BTreeSet<String> {
        stats
            .into_iter()
            .filter_map(|s| s.attributes.map(|a| a.id))
            .collect()
    };
    let filter_a = v1::PodSandboxStatsFilter {
        id: a.clone(),
        ..Default::default()
    };
    let listed = rt
        .list_pod_sandbox_stats(v1::ListPodSandboxStatsRequest { filter: None })
        .await
        .unwrap()
        .into_inner()
        .stats;
    assert_eq!(stats_ids(listed), BTreeSet::from([a.clone(), b.clone()]));
    let mut pages = rt
        .stream_pod_sandbox_stats(v1::StreamPodSandboxStatsRequest {
            filter: Some(filter_a),
        })
        .await
        .unwrap()
        .into_inner();
    let mut streamed = Vec::new();
    while let Some(page) = pages.message().await.unwrap() {
        streamed.extend(page.pod_sandbox_stats);
    }
    assert_eq!(stats_ids(streamed), BTreeSet::from([a.clone()]));
    let mut pages = rt
        .stream_pod_sandbox_metrics(v1::StreamPodSandboxMetricsRequest {})
        .await
        .unwrap()
        .into_inner();
    let mut metric_pods = BTreeSet::new();
    while let Some(page) = pages.message().await.unwrap() {
        for m in page.pod_sandbox_metrics {
            assert!(
                !m.metrics.is_empty(),
                "no metrics for pod {}",
                m.pod_sandbox_id
            );
            metric_pods.insert(m.pod_sandbox_id);
        }
    }
    assert_eq!(metric_pods, BTreeSet::from([a.clone(), b.clone()]));

    // ListPodSandbox and its filters.
    let all = list(&mut rt, None).await;
    assert_eq!(ids_of(&all), BTreeSet::from([a.clone(), b.clone()]));
    let listed_a = all.iter().find(|p| p.id == a).unwrap();
    assert_eq!(listed_a.metadata, config_a.metadata);
    assert_eq!(listed_a.labels, config_a.labels);
    assert_eq!(listed_a.annotations, config_a.annotations);
    assert_eq!(listed_a.created_at, st.created_at);
    let filter = |id: &str, state: Option<v1::PodSandboxState>, labels: &[(&str, &str)]| {
        Some(v1::PodSandboxFilter {
            id: id.to_owned(),
            state: state.map(|s| v1::PodSandboxStateValue { state: s as i32 }),
            label_selector: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        })
    };
    let ready = Some(v1::PodSandboxState::SandboxReady);
    let not_ready = Some(v1::PodSandboxState::SandboxNotready);
    let only = |id: &str| BTreeSet::from([id.to_owned()]);
    let both = BTreeSet::from([a.clone(), b.clone()]);
    let prefix_a = &a[..12];
    assert_eq!(
        ids_of(&list(&mut rt, filter(prefix_a, None, &[])).await),
        only(&a)
    );
    assert_eq!(
        ids_of(&list(&mut rt, filter(&a, None, &[])).await),
        only(&a)
    );
    assert_eq!(
        ids_of(&list(&mut rt, filter(&"f".repeat(64), None, &[])).await),
        BTreeSet::new()
    );
    assert_eq!(ids_of(&list(&mut rt, filter("", ready, &[])).await), both);
    assert_eq!(
        ids_of(&list(&mut rt, filter("", not_ready, &[])).await),
        BTreeSet::new()
    );
    assert_eq!(
        ids_of(&list(&mut rt, filter("", None, &[("tier", "web")])).await),
        both
    );
    assert_eq!(
        ids_of(&list(&mut rt, filter("", None, &[("app", "alpha")])).await),
        only(&a)
    );
    assert_eq!(
        ids_of(
            &list(
                &mut rt,
                filter("", None, &[("app", "alpha"), ("tier", "web")])
            )
            .await
        ),
        only(&a)
    );
    assert_eq!(
        ids_of(
            &list(
                &mut rt,
                filter("", None, &[("app", "alpha"), ("tier", "db")])
            )
            .await
        ),
        BTreeSet::new()
    );
    assert_eq!(
        ids_of(&list(&mut rt, filter("", None, &[("app", "gamma")])).await),
        BTreeSet::new()
    );

    // A second sandbox for the same pod metadata: AlreadyExists while the first exists.
    let err = try_run(&mut rt, config_a.clone())
        .await
        .expect_err("duplicate pod");
    assert_eq!(err.code(), Code::AlreadyExists, "{}", err.message());
    assert!(
        err.message().contains(&a),
        "the error names the holder: {}",
        err.message()
    );
    // Two at once for a new pod: exactly one wins.
    let config_c = pod_config("gamma");
    let (mut rt1, mut rt2) = (rt.clone(), rt.clone());
    let (first, second) = tokio::join!(
        try_run(&mut rt1, config_c.clone()),
        try_run(&mut rt2, config_c.clone())
    );
    let (won, lost) = match (first, second) {
        (Ok(id), Err(err)) | (Err(err), Ok(id)) => (id, err),
        other => panic!("concurrent duplicates: {other:?}"),
    };
    assert_eq!(lost.code(), Code::AlreadyExists, "{}", lost.message());
    let c = won;

    // Stop: NOTREADY; twice is fine.
    stop(&mut rt, &a).await;
    stop(&mut rt, &a).await;
    let st = status(&mut rt, &a).await;
    assert_eq!(st.state, v1::PodSandboxState::SandboxNotready as i32);
    assert_eq!(st.metadata, config_a.metadata);
    assert!(
        !env.cni_cache().join(format!("{a}.json")).exists(),
        "network released on stop"
    );
    assert!(
        !env.net.ip_allocations().contains(&ip_a),
        "IP {ip_a} still allocated after stop"
    );
    assert_eq!(
        ids_of(&list(&mut rt, filter("", not_ready, &[])).await),
        only(&a)
    );
    assert_eq!(
        ids_of(&list(&mut rt, filter("", ready, &[])).await),
        BTreeSet::from([b.clone(), c.clone()])
    );
    assert_eq!(
        ids_of(&list(&mut rt, filter(prefix_a, ready, &[])).await),
        BTreeSet::new()
    );
    assert_eq!(
        ids_of(&list(&mut rt, filter("", not_ready, &[("tier", "web")])).await),
        only(&a)
    );
    // A stopped sandbox still holds its name.
    let err = try_run(&mut rt, config_a.clone())
        .await
        .expect_err("duplicate of stopped pod");
    assert_eq!(err.code(), Code::AlreadyExists, "{}", err.message());

    // Remove: gone; twice is fine; then the name is free.
    remove(&mut rt, &a).await;
    remove(&mut rt, &a).await;
    let err = try_status(&mut rt, &a, false)
        .await
        .expect_err("removed pod has no status");
    assert_eq!(err.code(), Code::NotFound, "{}", err.message());
    assert_eq!(
        ids_of(&list(&mut rt, filter(&a, None, &[])).await),
        BTreeSet::new()
    );
    let a2 = run(&mut rt, config_a.clone()).await;
    assert_ne!(a2, a);

    // Unknown IDs: Stop and Remove succeed, Status is NotFound.
    let unknown = "0123456789abcdef".repeat(4);
    stop(&mut rt, &unknown).await;
    remove(&mut rt, &unknown).await;
    let err = try_status(&mut rt, &unknown, false)
        .await
        .expect_err("unknown pod has no status");
    assert_eq!(err.code(), Code::NotFound, "{}", err.message());

    // Remove without Stop tears the network down too.
    for id in [&a2, &b, &c] {
        remove(&mut rt, id).await;
    }
    assert_nothing_left(&env, &mut rt, &[a, a2, b, c]).await;
}

// ---------------------------------------------------------------------------------------------
// Restart.

#[tokio::test]
async fn pod_survives_a_daemon_restart_and_is_removed_by_the_new_daemon() {
    if !can_run("pod_survives_a_daemon_restart_and_is_removed_by_the_new_daemon") {
        return;
    }
    let mut env = PodEnv::start(6);
    let mut rt = env.daemon.runtime().await;
    let mut config = pod_config("survivor");
    let [port] = free_ports(1)[..] else {
        unreachable!()
    };
    config.port_mappings = vec![host_port_mapping(port, 80)];
    let id = run(&mut rt, config).await;
    let ip = ip_of(&status(&mut rt, &id).await);
    assert!(env.net.is_pod_ip(&ip), "{ip:?}");
    drop(rt);

    let exit = env.daemon.terminate();
    assert!(
        exit.success(),
        "berthd exit {exit:?}\n{}",
        env.daemon.log_tail(20)
    );
    // The pod outlives the daemon: pins, address, allocation.
    assert!(ips_in_netns(&env, &id).contains(&format!("{ip}/24")));
    assert_eq!(env.net.ip_allocations(), vec![ip.clone()]);

    env.daemon.restart();
    let mut rt = env.daemon.runtime().await;
    let listed = list(&mut rt, None).await;
    assert_eq!(ids_of(&listed), BTreeSet::from([id.clone()]));
    assert_eq!(listed[0].state, v1::PodSandboxState::SandboxReady as i32);
    let st = status(&mut rt, &id).await;
    assert_eq!(st.state, v1::PodSandboxState::SandboxReady as i32);
    assert_eq!(ip_of(&st), ip);

    stop_and_remove(&mut rt, &id).await;
    assert_nothing_left(&env, &mut rt, &[id]).await;
}

// ---------------------------------------------------------------------------------------------
// Reachability.

#[tokio::test]
async fn pod_ip_and_host_port_are_reachable_from_the_host() {
    if !can_run("pod_ip_and_host_port_are_reachable_from_the_host") {
        return;
    }
    let env = PodEnv::start(7);
    let mut rt = env.daemon.runtime().await;
    let [host_port] = free_ports(1)[..] else {
        unreachable!()
    };
    let mut config = pod_config("web");
    config.port_mappings = vec![host_port_mapping(host_port, 8080)];
    let id = run(&mut rt, config).await;
    let ip = ip_of(&status(&mut rt, &id).await);
    assert!(env.net.is_pod_ip(&ip), "{ip:?}");

    // A TCP server in the pod's netns that answers "hi" to every connection.
    let server = ChildGuard(
        Command::new("nsenter")
            .arg(format!("--net={}", env.pin(&id, "net").display()))
            .args([
                "--", "busybox", "nc", "-ll", "-p", "8080", "-e", "echo", "hi",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nsenter busybox nc"),
    );
    let pod_addr: SocketAddr = format!("{ip}:8080").parse().unwrap();
    assert_eq!(
        read_from(pod_addr, Duration::from_secs(10)),
        "hi\n",
        "via the pod IP"
    );
    let host_addr: SocketAddr = format!("127.0.0.1:{host_port}").parse().unwrap();
    assert_eq!(
        read_from(host_addr, Duration::from_secs(10)),
        "hi\n",
        "via host port 127.0.0.1:{host_port}"
    );
    drop(server);

    stop_and_remove(&mut rt, &id).await;
    assert_nothing_left(&env, &mut rt, &[id]).await;
    // The host port no longer leads anywhere.
    assert!(iptables_lines_containing(&format!("--dports {host_port}")).is_empty());
}

// ---------------------------------------------------------------------------------------------
// The built-in network on kubelet's pod CIDR.

#[tokio::test]
async fn built_in_network_uses_the_pod_cidr_from_update_runtime_config() {
    if !can_run("built_in_network_uses_the_pod_cidr_from_update_runtime_config") {
        return;
    }
    // No configuration file: the built-in network, on a bridge of the pod CIDR's own.
    const CIDR: &str = "10.233.251.0/24";
    let daemon = Layout::new().start();
    let mut rt = daemon.runtime().await;
    rt.update_runtime_config(v1::UpdateRuntimeConfigRequest {
        runtime_config: Some(v1::RuntimeConfig {
            network_config: Some(v1::NetworkConfig {
                pod_cidr: CIDR.into(),
            }),
        }),
    })
    .await
    .unwrap();
    let bridges_before = bridges();
    let result = try_run(&mut rt, pod_config("cidr")).await;
    // The bridge the pod was attached to, from the network config berth used (its cache).
    let bridge = result.as_ref().ok().and_then(|id| {
        let cache = daemon.root.join("cni-cache").join(format!("{id}.json"));
        let cached: serde_json::Value = serde_json::from_slice(&std::fs::read(cache).ok()?).ok()?;
        cached["network"]["plugins"][0]["bridge"]
            .as_str()
            .map(str::to_owned)
    });
    let ip = match &result {
        Ok(id) => Some(ip_of(&status(&mut rt, id).await)),
        Err(_) => None,
    };
    // Cleanup first: the pod, then the bridge if this test made it (other tests run their
    // own bridges meanwhile: only this one is touched).
    if let Ok(id) = &result {
        stop_and_remove(&mut rt, id).await;
        assert!(
            iptables_lines_containing(id).is_empty(),
            "iptables rules of the pod left"
        );
    }
    let made = bridge
        .as_ref()
        .filter(|b| b.starts_with("berth-") && !bridges_before.contains(b));
    if let Some(bridge) = made {
        let _ = Command::new("ip").args(["link", "del", bridge]).status();
    }
    let id = result.unwrap_or_else(|s| panic!("RunPodSandbox on the built-in network: {s:?}"));
    let ip = ip.unwrap();
    assert!(
        ip.starts_with("10.233.251."),
        "pod {id}: IP {ip} is not in {CIDR}"
    );
    assert!(
        bridge.as_deref().is_some_and(|b| b.starts_with("berth-")),
        "pod attached to bridge {bridge:?}"
    );
}

/// The host's bridges.
fn bridges() -> Vec<String> {
    let out = Command::new("ip")
        .args(["-o", "link", "show", "type", "bridge"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split(": ").nth(1))
        .map(|name| name.split('@').next().unwrap_or(name).to_owned())
        .collect()
}
