//! The real plugins (`/usr/lib/cni`) against namespaces, a bridge and an IPAM data dir
//! each test creates and removes. Root only (skipped by name otherwise, failed under `BERTH_TEST_NO_SKIP=1`). Traffic
//! stays on 127.0.0.0/8 and on the test's own bridge. Serialised: they compare the host's
//! iptables tables before and after, and the bridge plugin flips `ip_forward`, which is
//! restored.

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use serde_json::{json, Value};

use super::{Attachment, Cni, CniError, PortMapping, Protocol};
use crate::ns::{create_pinned, in_netns, remove_pinned, NamespaceRequest};

const SYSTEM_PLUGINS: &str = "/usr/lib/cni";
const GREETING: &[u8] = b"hello from the pod";

/// Everything one test creates, removed on drop in reverse order.
struct Fixture {
    _lock: MutexGuard<'static, ()>,
    tmp: tempfile::TempDir,
    id: String,
    bridge: String,
    octet: u8,
    netns: PathBuf,
    nat_before: Vec<String>,
    filter_before: Vec<String>,
}

fn lock() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// `net.ipv4.ip_forward` as it was before any test here ran.
fn original_ip_forward() -> &'static str {
    static ORIGINAL: OnceLock<String> = OnceLock::new();
    ORIGINAL.get_or_init(|| std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap())
}

fn usable() -> bool {
    if !berth_testutil::need_root("network namespaces and CNI plugins") {
        return false;
    }
    if !Path::new(SYSTEM_PLUGINS).join("bridge").exists() {
        berth_testutil::skip(format_args!("no CNI plugins in {SYSTEM_PLUGINS}"));
        return false;
    }
    if !run_ok("iptables", &["-w", "-t", "nat", "-S"]) {
        berth_testutil::skip("`iptables -t nat` does not work here");
        return false;
    }
    true
}

fn run_ok(program: &str, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .output()
        .is_ok_and(|o| o.status.success())
}

fn output(program: &str, args: &[&str]) -> String {
    let out = Command::new(program).args(args).output().unwrap();
    String::from_utf8(out.stdout).unwrap()
}

fn iptables_rules(table: &str) -> Vec<String> {
    let mut rules: Vec<String> = output("iptables", &["-w", "-t", table, "-S"])
        .lines()
        .map(str::to_owned)
        .collect();
    rules.sort();
    rules
}

impl Fixture {
    /// `index` tells apart tests of one run (0..5): bridge name and subnet.
    fn new(index: u32) -> Fixture {
        let lock = lock();
        original_ip_forward();
        let pid = std::process::id();
        let tmp = tempfile::tempdir().unwrap();
        let netns_dir = tmp.path().join("ns");
        let pinned = create_pinned(
            &netns_dir,
            &NamespaceRequest {
                net: true,
                ..Default::default()
            },
        )
        .unwrap();
        Fixture {
            _lock: lock,
            id: format!("berthtest{pid}x{index}"),
            bridge: format!("bt{}x{index}", pid % 100_000),
            octet: u8::try_from((pid % 50) * 5 + index).unwrap(),
            netns: pinned.net.unwrap(),
            nat_before: iptables_rules("nat"),
            filter_before: iptables_rules("filter"),
            tmp,
        }
    }

    fn dir(&self, name: &str) -> PathBuf {
        let dir = self.tmp.path().join(name);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn subnet(&self) -> String {
        format!("10.231.{}.0/24", self.octet)
    }

    fn bridge_plugin(&self, bridge: &str, subnet: &str) -> Value {
        json!({
            "type": "bridge",
            "bridge": bridge,
            "isGateway": true,
            "ipMasq": true,
            "hairpinMode": true,
            "ipam": {
                "type": "host-local",
                "ranges": [[{"subnet": subnet}]],
                "routes": [{"dst": "0.0.0.0/0"}],
                "dataDir": self.dir("ipam"),
            }
        })
    }

    fn write_network(&self, name: &str, plugins: Vec<Value>) {
        let conf = self.dir("conf");
        for entry in std::fs::read_dir(&conf).unwrap() {
            std::fs::remove_file(entry.unwrap().path()).unwrap();
        }
        let list = json!({"cniVersion": "1.0.0", "name": name, "plugins": plugins});
        std::fs::write(conf.join("10-test.conflist"), list.to_string()).unwrap();
    }

    fn cni(&self, extra_bin: Option<PathBuf>) -> Cni {
        let mut bins: Vec<PathBuf> = extra_bin.into_iter().collect();
        bins.push(SYSTEM_PLUGINS.into());
        Cni::new(self.dir("conf"), bins, self.tmp.path().join("cni-cache"))
    }

    fn attachment(&self, port_mappings: Vec<PortMapping>) -> Attachment<'_> {
        Attachment {
            id: &self.id,
            netns: &self.netns,
            ifname: "eth0",
            pod_name: "pod",
            pod_namespace: "berth-test",
            pod_uid: "uid",
            port_mappings,
        }
    }

    fn cache_file(&self) -> PathBuf {
        self.tmp
            .path()
            .join("cni-cache")
            .join(format!("{}.json", self.id))
    }

    /// Host-side interfaces enslaved to `bridge` (the pod's veth peers).
    fn bridge_ports(&self, bridge: &str) -> String {
        output("ip", &["-o", "link", "show", "master", bridge])
    }

    /// IP allocation files host-local keeps for `network`.
    fn allocations(&self, network: &str) -> Vec<String> {
        let dir = self.tmp.path().join("ipam").join(network);
        let Ok(entries) = std::fs::read_dir(dir) else {
            return Vec::new();
        };
        entries
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|name| name.parse::<IpAddr>().is_ok())
            .collect()
    }

    /// Asserts the host is as before the test: no rule mentions the sandbox, and the
    /// nat/filter tables are unchanged except for portmap's shared chains.
    fn assert_no_iptables_leftovers(&self) {
        let nat = iptables_rules("nat");
        assert!(
            !nat.iter().any(|rule| rule.contains(&self.id)),
            "rules for {} left: {nat:#?}",
            self.id
        );
        let shared = |rule: &&String| rule.contains("CNI-HOSTPORT-");
        let nat_now: Vec<&String> = nat.iter().filter(|r| !shared(r)).collect();
        let nat_then: Vec<&String> = self.nat_before.iter().filter(|r| !shared(r)).collect();
        assert_eq!(nat_now, nat_then, "nat table changed");
        assert_eq!(
            iptables_rules("filter"),
            self.filter_before,
            "filter table changed"
        );
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        // Best effort, also after a panic: detach, unpin, drop the bridges, restore.
        let cni = self.cni(Some(self.tmp.path().join("bin")));
        if let Err(err) = cni.teardown(&self.id, Some(&self.netns)) {
            eprintln!("cleanup: teardown of {} failed: {err}", self.id);
        }
        if let Err(err) = remove_pinned(&self.tmp.path().join("ns")) {
            eprintln!("cleanup: cannot unpin: {err}");
        }
        for bridge in [self.bridge.clone(), format!("{}y", self.bridge)] {
            let _ = Command::new("ip").args(["link", "del", &bridge]).output();
        }
        remove_rules_of(&self.id, &self.nat_before);
        remove_shared_portmap_chains_if_new(&self.nat_before);
        let _ = std::fs::write("/proc/sys/net/ipv4/ip_forward", original_ip_forward());
    }
}

/// Deletes nat rules that name the sandbox `id` (a DEL without netns leaves bridge's
/// masquerade rules) and the per-sandbox `CNI-*` chains they lived in.
fn remove_rules_of(id: &str, nat_before: &[String]) {
    let mut chains = std::collections::BTreeSet::new();
    for rule in iptables_rules("nat") {
        if !(rule.starts_with("-A ") && rule.contains(id)) {
            continue;
        }
        // `-S` output quotes like a shell does.
        let delete = format!("iptables -w -t nat -D {}", &rule[3..]);
        let _ = Command::new("sh").args(["-c", &delete]).output();
        let chain = rule.split(' ').nth(1).unwrap_or_default().to_owned();
        if chain.starts_with("CNI-") && !chain.starts_with("CNI-HOSTPORT-") {
            chains.insert(chain);
        }
    }
    for chain in chains {
        if !nat_before.contains(&format!("-N {chain}")) {
            let _ = Command::new("iptables")
                .args(["-w", "-t", "nat", "-F", &chain])
                .output();
            let _ = Command::new("iptables")
                .args(["-w", "-t", "nat", "-X", &chain])
                .output();
        }
    }
}

/// portmap creates `CNI-HOSTPORT-*` chains (and jumps to them) once and never deletes
/// them. Remove them when this test created them and no other pod uses them.
fn remove_shared_portmap_chains_if_new(nat_before: &[String]) {
    if nat_before.iter().any(|r| r.contains("CNI-HOSTPORT-")) {
        return;
    }
    let nat = iptables_rules("nat");
    if nat.iter().any(|r| r.starts_with("-A CNI-HOSTPORT-DNAT")) {
        return; // someone else's port mappings
    }
    for rule in nat
        .iter()
        .filter(|r| r.starts_with("-A ") && r.contains("-j CNI-HOSTPORT-"))
    {
        let delete = format!("iptables -w -t nat -D {}", &rule[3..]);
        let _ = Command::new("sh").args(["-c", &delete]).output();
    }
    for chain in [
        "CNI-HOSTPORT-DNAT",
        "CNI-HOSTPORT-SETMARK",
        "CNI-HOSTPORT-MASQ",
    ] {
        let _ = Command::new("iptables")
            .args(["-w", "-t", "nat", "-F", chain])
            .output();
        let _ = Command::new("iptables")
            .args(["-w", "-t", "nat", "-X", chain])
            .output();
    }
}

/// Starts a TCP listener inside the netns; it answers one connection with [`GREETING`].
fn serve_in_pod(netns: &Path, addr: SocketAddr) -> SocketAddr {
    let listener = in_netns(netns, move || TcpListener::bind(addr))
        .unwrap()
        .unwrap();
    let local = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        if let Ok((mut conn, _)) = listener.accept() {
            let _ = conn.write_all(GREETING);
        }
    });
    local
}

fn fetch(addr: SocketAddr) -> Vec<u8> {
    let mut conn = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
        .unwrap_or_else(|err| panic!("connect {addr}: {err}"));
    conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut got = Vec::new();
    conn.read_to_end(&mut got).unwrap();
    got
}

fn in_subnet(ip: IpAddr, octet: u8) -> bool {
    matches!(ip, IpAddr::V4(v4) if v4.octets()[..3] == [10, 231, octet])
}

#[test]
fn root_pod_gets_a_reachable_ip_and_teardown_removes_everything() {
    if !usable() {
        return;
    }
    let fx = Fixture::new(0);
    fx.write_network(
        "berthtest0",
        vec![fx.bridge_plugin(&fx.bridge, &fx.subnet())],
    );
    let cni = fx.cni(None);
    let status = cni.setup(&fx.attachment(Vec::new())).unwrap();
    let ip = status.ips[0];
    assert!(in_subnet(ip, fx.octet), "{ip} not in {}", fx.subnet());
    assert_eq!(fx.allocations("berthtest0"), [ip.to_string()]);

    let (eth0, lo) = in_netns(&fx.netns, || {
        let eth0 = Command::new("ip")
            .args(["-4", "-o", "addr", "show", "eth0"])
            .output();
        let lo = Command::new("ip")
            .args(["-o", "link", "show", "lo"])
            .output();
        (eth0.unwrap().stdout, lo.unwrap().stdout)
    })
    .unwrap();
    let eth0 = String::from_utf8(eth0).unwrap();
    assert!(eth0.contains(&format!("inet {ip}/24")), "{eth0}");
    let lo = String::from_utf8(lo).unwrap();
    assert!(lo.contains(",UP"), "loopback plugin brings lo up: {lo}");
    assert_eq!(fx.bridge_ports(&fx.bridge).lines().count(), 1);

    let listening = serve_in_pod(&fx.netns, SocketAddr::new(ip, 0));
    assert_eq!(fetch(listening), GREETING);

    cni.teardown(&fx.id, Some(&fx.netns)).unwrap();
    assert_eq!(fx.bridge_ports(&fx.bridge), "", "veth left on the bridge");
    assert!(fx.allocations("berthtest0").is_empty());
    assert!(!fx.cache_file().exists());
    fx.assert_no_iptables_leftovers();
    cni.teardown(&fx.id, Some(&fx.netns)).unwrap();
}

#[test]
fn root_host_port_on_localhost_reaches_the_pod() {
    if !usable() {
        return;
    }
    let fx = Fixture::new(1);
    fx.write_network(
        "berthtest1",
        vec![
            fx.bridge_plugin(&fx.bridge, &fx.subnet()),
            json!({"type": "portmap", "capabilities": {"portMappings": true}}),
        ],
    );
    let pid = std::process::id();
    let host_port = (0..1000)
        .map(|i| 18000 + u16::try_from((pid + i) % 1000).unwrap())
        .find(|p| TcpListener::bind(("127.0.0.1", *p)).is_ok())
        .unwrap();
    let cni = fx.cni(None);
    let mapping = PortMapping {
        host_port,
        container_port: 8080,
        protocol: Protocol::Tcp,
        host_ip: "127.0.0.1".into(),
    };
    let status = cni.setup(&fx.attachment(vec![mapping])).unwrap();
    let ip = status.ips[0];
    assert!(in_subnet(ip, fx.octet));
    let route_localnet = format!("/proc/sys/net/ipv4/conf/{}/route_localnet", fx.bridge);
    assert_eq!(std::fs::read_to_string(route_localnet).unwrap().trim(), "1");

    serve_in_pod(&fx.netns, SocketAddr::new(ip, 8080));
    assert_eq!(
        fetch(SocketAddr::from(([127, 0, 0, 1], host_port))),
        GREETING
    );
    let nat = iptables_rules("nat");
    assert!(
        nat.iter().any(|r| r.contains(&fx.id) && r.contains("DNAT")),
        "{nat:#?}"
    );

    cni.teardown(&fx.id, Some(&fx.netns)).unwrap();
    assert_eq!(fx.bridge_ports(&fx.bridge), "");
    assert!(fx.allocations("berthtest1").is_empty());
    assert!(!fx.cache_file().exists());
    fx.assert_no_iptables_leftovers();
    let dnat = iptables_rules("nat");
    assert!(!dnat
        .iter()
        .any(|r| r.starts_with("-A CNI-HOSTPORT-DNAT") && r.contains(&fx.id)));
    cni.teardown(&fx.id, None).unwrap();
}

#[test]
fn root_a_broken_second_plugin_leaves_nothing() {
    if !usable() {
        return;
    }
    let fx = Fixture::new(2);
    let bin = fx.dir("bin");
    let broken = bin.join("broken");
    std::fs::write(
        &broken,
        "#!/bin/sh\ncat >/dev/null\n[ \"$CNI_COMMAND\" = DEL ] && exit 0\n\
         echo '{\"cniVersion\":\"1.0.0\",\"code\":100,\"msg\":\"this plugin is broken\"}'\nexit 1\n",
    )
    .unwrap();
    std::fs::set_permissions(&broken, std::fs::Permissions::from_mode(0o755)).unwrap();
    fx.write_network(
        "berthtest2",
        vec![
            fx.bridge_plugin(&fx.bridge, &fx.subnet()),
            json!({"type": "broken"}),
        ],
    );
    let cni = fx.cni(Some(bin));
    let err = cni.setup(&fx.attachment(Vec::new())).unwrap_err();
    assert!(
        matches!(&err, CniError::PluginFailed { plugin, msg, code: Some(100), .. }
            if plugin == "broken" && msg == "this plugin is broken"),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(
        text.contains("broken") && text.contains("this plugin is broken"),
        "{text}"
    );
    assert_eq!(fx.bridge_ports(&fx.bridge), "", "veth left on the bridge");
    assert!(
        fx.allocations("berthtest2").is_empty(),
        "IP allocation left"
    );
    assert!(!fx.cache_file().exists(), "cache left");
    fx.assert_no_iptables_leftovers();
}

#[test]
fn root_teardown_uses_the_cache_after_the_conf_dir_changed() {
    if !usable() {
        return;
    }
    let fx = Fixture::new(3);
    fx.write_network(
        "berthtest3",
        vec![fx.bridge_plugin(&fx.bridge, &fx.subnet())],
    );
    let cni = fx.cni(None);
    cni.setup(&fx.attachment(Vec::new())).unwrap();
    assert_eq!(fx.allocations("berthtest3").len(), 1);

    // Another network now: other name, bridge and subnet.
    let other_subnet = format!("10.231.{}.0/24", fx.octet + 1);
    fx.write_network(
        "berthtest3-new",
        vec![fx.bridge_plugin(&format!("{}y", fx.bridge), &other_subnet)],
    );
    cni.teardown(&fx.id, Some(&fx.netns)).unwrap();
    assert_eq!(fx.bridge_ports(&fx.bridge), "");
    assert!(fx.allocations("berthtest3").is_empty());
    assert!(!fx.cache_file().exists());
    fx.assert_no_iptables_leftovers();
}

#[test]
fn root_teardown_after_the_netns_is_gone_releases_the_ip() {
    if !usable() {
        return;
    }
    let fx = Fixture::new(4);
    fx.write_network(
        "berthtest4",
        vec![fx.bridge_plugin(&fx.bridge, &fx.subnet())],
    );
    let cni = fx.cni(None);
    cni.setup(&fx.attachment(Vec::new())).unwrap();
    remove_pinned(&fx.tmp.path().join("ns")).unwrap();

    cni.teardown(&fx.id, Some(&fx.netns)).unwrap();
    assert_eq!(
        fx.bridge_ports(&fx.bridge),
        "",
        "the veth dies with the netns"
    );
    assert!(fx.allocations("berthtest4").is_empty());
    assert!(!fx.cache_file().exists());
    // bridge (1.1.1) finds its masquerade rules through the pod's interface, so without
    // the netns they stay: the reason to tear down before unpinning. Reported here, and
    // removed by the fixture.
    let leftovers: Vec<String> = iptables_rules("nat")
        .into_iter()
        .filter(|r| r.contains(&fx.id))
        .collect();
    if !leftovers.is_empty() {
        eprintln!(
            "note: bridge left {} nat rule(s) after a DEL without netns",
            leftovers.len()
        );
    }
    remove_rules_of(&fx.id, &fx.nat_before);
    fx.assert_no_iptables_leftovers();
}
