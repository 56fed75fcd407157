//! Prometheus metrics of a real berthd, as root: `[metrics] address` on 127.0.0.1 and a free
//! port, scraped with a plain HTTP GET through a whole pod lifecycle — pull (and a pull of
//! an image the registry does not have), run pod, create and start a container, exec over
//! WebSocket, a container killed for memory, stop, remove, image removal — checking after
//! each step that the counters and gauges it should move moved, that no ID or name appears
//! in the output, and at the end that Prometheus' `promtool check metrics` finds nothing in
//! the scraped text. The endpoint's refusals (other methods and paths) are checked on the
//! live daemon too, and a metrics address already in use stops berthd with an error naming
//! `metrics.address`.
//!
//! Needs root, the shared test registry (`BERTH_TEST_REGISTRY`) and promtool (Debian
//! package `prometheus`); otherwise the test says why and passes, or fails under
//! `BERTH_REQUIRE_REGISTRY=1` / `BERTH_TEST_NO_SKIP=1`.

use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use berth_integration::containers::{shim_processes, Reaper};
use berth_integration::pods::{is_root, mounts_under, PodEnv};
use berth_integration::registry::{shared_registry, skip_or_panic};
use berth_integration::rpc::container::{create, remove, start, stop};
use berth_integration::rpc::{image_spec, pod, timed};
use berth_integration::Layout;
use cri_api::v1;
use tonic::Code;

const TEST: &str = "metrics_follow_a_pod_lifecycle_and_pass_promtool";
const BUSYBOX: &str = "registry.k8s.io/e2e-test-images/busybox:1.29-2";
/// Through the same mirror: the registry answers 404 for it.
const MISSING_IMAGE: &str = "registry.k8s.io/e2e-test-images/berth-no-such-image:1";
/// 15 MiB, critest's OOM limit.
const OOM_LIMIT: i64 = 15 * 1024 * 1024;
/// How long a value may take to reach what a step makes it (exits, session ends, trash).
const SETTLE: Duration = Duration::from_secs(30);

/// One scrape: series (name and labels as printed) → value.
struct Scrape {
    text: String,
    values: BTreeMap<String, f64>,
}

impl Scrape {
    fn get(&self, series: &str) -> f64 {
        self.values.get(series).copied().unwrap_or(0.0)
    }

    fn require(&self, series: &str) -> f64 {
        *self
            .values
            .get(series)
            .unwrap_or_else(|| panic!("no series {series} in\n{}", self.text))
    }
}

/// `method path` over HTTP/1.0 to `addr`: the status code and body.
fn http(addr: SocketAddr, method: &str, path: &str) -> (u16, String) {
    let mut socket = TcpStream::connect(addr).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(socket, "{method} {path} HTTP/1.0\r\n\r\n").unwrap();
    let mut answer = String::new();
    socket.read_to_string(&mut answer).unwrap();
    let (head, body) = answer
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no HTTP answer: {answer:?}"));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no status in {head:?}"));
    (status, body.to_owned())
}

fn scrape(addr: SocketAddr) -> Scrape {
    let (status, text) = http(addr, "GET", "/metrics");
    assert_eq!(status, 200, "{text}");
    let values = text
        .lines()
        .filter(|line| !line.starts_with('#') && !line.is_empty())
        .map(|line| {
            let (series, value) = line
                .rsplit_once(' ')
                .unwrap_or_else(|| panic!("bad sample line {line:?}"));
            let value = value
                .parse()
                .unwrap_or_else(|_| panic!("bad value in {line:?}"));
            (series.to_owned(), value)
        })
        .collect();
    Scrape { text, values }
}

/// Scrapes until `series` satisfies `ok` (at most [`SETTLE`]); the last scrape.
fn wait_for(addr: SocketAddr, series: &str, ok: impl Fn(f64) -> bool) -> Scrape {
    let deadline = Instant::now() + SETTLE;
    loop {
        let scraped = scrape(addr);
        if ok(scraped.get(series)) {
            return scraped;
        }
        assert!(
            Instant::now() < deadline,
            "{series} = {} after {SETTLE:?} in\n{}",
            scraped.get(series),
            scraped.text
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn containers(state: &str) -> String {
    format!("berth_containers{{state=\"{state}\"}}")
}

fn pods(state: &str) -> String {
    format!("berth_pods{{state=\"{state}\"}}")
}

fn rpc_count(rpc: &str) -> String {
    format!("berth_cri_request_duration_seconds_count{{rpc=\"{rpc}\"}}")
}

fn rpc_errors(rpc: &str, code: &str) -> String {
    format!("berth_cri_request_errors_total{{rpc=\"{rpc}\",code=\"{code}\"}}")
}

/// Asserts the containers by state (created, running, exited, unknown).
fn assert_containers(scraped: &Scrape, want: [f64; 4]) {
    let got = ["created", "running", "exited", "unknown"].map(|s| scraped.require(&containers(s)));
    assert_eq!(got, want, "containers by state in\n{}", scraped.text);
}

/// Asserts the pods by state (ready, notready).
fn assert_pods(scraped: &Scrape, want: [f64; 2]) {
    let got = ["ready", "notready"].map(|s| scraped.require(&pods(s)));
    assert_eq!(got, want, "pods by state in\n{}", scraped.text);
}

/// A port on 127.0.0.1 nobody listens on now.
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

fn pod_config(dir: &std::path::Path) -> v1::PodSandboxConfig {
    let log_directory = dir.join("pod-logs");
    std::fs::create_dir_all(&log_directory).unwrap();
    v1::PodSandboxConfig {
        metadata: Some(v1::PodSandboxMetadata {
            name: "metered".into(),
            uid: "uid-metered".into(),
            namespace: "berth-it-metrics".into(),
            attempt: 1,
        }),
        log_directory: log_directory.display().to_string(),
        linux: Some(v1::LinuxPodSandboxConfig::default()),
        ..Default::default()
    }
}

fn container_config(name: &str, command: &[&str]) -> v1::ContainerConfig {
    v1::ContainerConfig {
        metadata: Some(v1::ContainerMetadata {
            name: name.to_owned(),
            attempt: 0,
        }),
        image: Some(image_spec(BUSYBOX)),
        command: command.iter().map(|s| s.to_string()).collect(),
        log_path: format!("{name}.log"),
        linux: Some(v1::LinuxContainerConfig::default()),
        ..Default::default()
    }
}

#[tokio::test]
async fn metrics_follow_a_pod_lifecycle_and_pass_promtool() {
    if !is_root() {
        skip_or_panic(TEST, "pods need root");
        return;
    }
    let Some(registry) = shared_registry(TEST) else {
        return;
    };
    if !berth_testutil::need_program("promtool", "prometheus") {
        return;
    }
    let addr: SocketAddr = ([127, 0, 0, 1], free_port()).into();
    let layout = Layout::with_config(&format!("[metrics]\naddress = \"{addr}\"\n"));
    layout.mirror_to(&registry);
    let reaper = Reaper::new(&layout.state);
    let env = PodEnv::start_in(layout, 0);
    // Declared after `env`, so dropped before it: the reaper ends the containers and shims a
    // failed test left before the pod environment kills the daemon and removes its network.
    let _reaper = reaper;
    let mut rt = env.daemon.runtime().await;
    let mut images = env.daemon.images().await;

    // A fresh daemon: nothing yet, and only GET /metrics answers.
    let fresh = scrape(addr);
    assert_containers(&fresh, [0.0; 4]);
    assert_pods(&fresh, [0.0, 0.0]);
    assert_eq!(fresh.require("berth_shims"), 0.0);
    assert_eq!(fresh.require("berth_image_pull_bytes_total"), 0.0);
    assert_eq!(fresh.require("berth_image_gc_runs_total"), 0.0);
    assert_eq!(
        fresh.require("berth_image_pull_duration_seconds_count"),
        0.0
    );
    for (method, path, status) in [
        ("POST", "/metrics", 405),
        ("DELETE", "/metrics", 405),
        ("GET", "/", 404),
        ("GET", "/debug/pprof/", 404),
    ] {
        let (got, body) = http(addr, method, path);
        assert_eq!(got, status, "{method} {path}: {body}");
        assert!(!body.contains("berth_"), "{method} {path}: {body}");
    }

    // Pulls: one that works, one of an image the registry does not have.
    timed(
        "PullImage",
        images.pull_image(v1::PullImageRequest {
            image: Some(image_spec(BUSYBOX)),
            ..Default::default()
        }),
    )
    .await
    .unwrap_or_else(|s| panic!("PullImage({BUSYBOX}): {s:?}"));
    let missing = timed(
        "PullImage",
        images.pull_image(v1::PullImageRequest {
            image: Some(image_spec(MISSING_IMAGE)),
            ..Default::default()
        }),
    )
    .await
    .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound, "{missing:?}");
    let pulled = scrape(addr);
    assert_eq!(
        pulled.require("berth_image_pull_duration_seconds_count"),
        1.0
    );
    assert_eq!(
        pulled.require("berth_image_pull_failures_total{code=\"NotFound\"}"),
        1.0
    );
    assert_eq!(pulled.require(&rpc_count("PullImage")), 2.0);
    assert_eq!(pulled.require(&rpc_errors("PullImage", "NotFound")), 1.0);
    // busybox: its layers are megabytes compressed.
    let pulled_bytes = pulled.require("berth_image_pull_bytes_total");
    assert!(pulled_bytes > 100_000.0, "{pulled_bytes}");

    // A pod, and a container created then started.
    let pod_cfg = pod_config(env.daemon.dir.path());
    let pod_id = pod::run(&mut rt, pod_cfg.clone()).await;
    let ran = scrape(addr);
    assert_pods(&ran, [1.0, 0.0]);
    assert_eq!(ran.require(&rpc_count("RunPodSandbox")), 1.0);
    let app = create(
        &mut rt,
        &pod_id,
        &pod_cfg,
        container_config("app", &["sleep", "3600"]),
    )
    .await;
    assert_containers(&scrape(addr), [1.0, 0.0, 0.0, 0.0]);
    start(&mut rt, &app).await;
    let started = scrape(addr);
    assert_containers(&started, [0.0, 1.0, 0.0, 0.0]);
    assert_eq!(started.require("berth_shims"), 1.0);

    // Exec over WebSocket: a streaming session starts, and is no longer active once done.
    let url = timed(
        "Exec",
        rt.exec(v1::ExecRequest {
            container_id: app.clone(),
            cmd: vec!["echo".into(), "metered".into()],
            stdout: true,
            stderr: true,
            ..Default::default()
        }),
    )
    .await
    .unwrap_or_else(|s| panic!("Exec: {s:?}"))
    .into_inner()
    .url;
    let channels = tokio::task::spawn_blocking(move || {
        berth_integration::websocket::session(&url, "v5.channel.k8s.io")
    })
    .await
    .unwrap();
    assert_eq!(
        channels.get(&1).map(Vec::as_slice),
        Some(&b"metered\n"[..]),
        "{channels:?}"
    );
    let streamed = wait_for(addr, "berth_stream_sessions_active{kind=\"exec\"}", |v| {
        v == 0.0
    });
    assert_eq!(
        streamed.require("berth_stream_sessions_total{kind=\"exec\"}"),
        1.0
    );
    assert_eq!(
        streamed.require("berth_stream_sessions_total{kind=\"portforward\"}"),
        0.0
    );
    assert_eq!(streamed.require(&rpc_count("Exec")), 1.0);

    // A container over its memory limit: killed by the kernel, counted as an OOM kill.
    let mut hog_cfg = container_config(
        "hog",
        &["sh", "-c", "dd if=/dev/zero of=/dev/null bs=20M count=1"],
    );
    hog_cfg.linux.as_mut().unwrap().resources = Some(v1::LinuxContainerResources {
        memory_limit_in_bytes: OOM_LIMIT,
        memory_swap_limit_in_bytes: OOM_LIMIT,
        ..Default::default()
    });
    let hog = create(&mut rt, &pod_id, &pod_cfg, hog_cfg).await;
    start(&mut rt, &hog).await;
    wait_for(addr, "berth_containers_oom_killed_total", |v| v == 1.0);
    // The hog's shim leaves once it has recorded the exit.
    let oom = wait_for(addr, "berth_shims", |v| v == 1.0);
    assert_containers(&oom, [0.0, 1.0, 1.0, 0.0]);

    // Stop and remove the containers, then the pod.
    stop(&mut rt, &app, 0).await;
    let stopped = wait_for(addr, "berth_shims", |v| v == 0.0);
    assert_containers(&stopped, [0.0, 0.0, 2.0, 0.0]);
    for id in [&app, &hog] {
        remove(&mut rt, id).await;
    }
    assert_containers(&scrape(addr), [0.0; 4]);
    let gone = timed(
        "ContainerStatus",
        rt.container_status(v1::ContainerStatusRequest {
            container_id: app.clone(),
            verbose: false,
        }),
    )
    .await
    .unwrap_err();
    assert_eq!(gone.code(), Code::NotFound);
    pod::stop(&mut rt, &pod_id).await;
    let pod_stopped = scrape(addr);
    assert_pods(&pod_stopped, [0.0, 1.0]);
    pod::remove(&mut rt, &pod_id).await;

    // Removing the image runs a garbage collection; the trash frees its layer.
    timed(
        "RemoveImage",
        images.remove_image(v1::RemoveImageRequest {
            image: Some(image_spec(BUSYBOX)),
        }),
    )
    .await
    .unwrap_or_else(|s| panic!("RemoveImage: {s:?}"));
    let collected = wait_for(addr, "berth_image_gc_freed_bytes_total", |v| {
        v >= pulled_bytes
    });
    assert_eq!(collected.require("berth_image_gc_runs_total"), 1.0);

    let last = scrape(addr);
    assert_containers(&last, [0.0; 4]);
    assert_pods(&last, [0.0, 0.0]);
    assert_eq!(last.require("berth_containers_oom_killed_total"), 1.0);
    assert_eq!(
        last.require(&rpc_errors("ContainerStatus", "NotFound")),
        1.0
    );
    for rpc in [
        "RunPodSandbox",
        "CreateContainer",
        "StartContainer",
        "StopContainer",
        "RemoveContainer",
        "StopPodSandbox",
        "RemovePodSandbox",
        "RemoveImage",
    ] {
        assert!(last.require(&rpc_count(rpc)) >= 1.0, "{rpc}");
    }
    // Only counts: no ID, name or image of what ran.
    for secret in [
        pod_id.as_str(),
        app.as_str(),
        hog.as_str(),
        "metered",
        "busybox",
        "berth-it-metrics",
    ] {
        assert!(!last.text.contains(secret), "{secret} in\n{}", last.text);
    }
    let labels: HashMap<&str, usize> = last
        .values
        .keys()
        .filter_map(|series| series.split_once('{'))
        .flat_map(|(_, labels)| labels.trim_end_matches('}').split(','))
        .filter_map(|pair| pair.split_once('=').map(|(name, _)| name))
        .fold(HashMap::new(), |mut seen, name| {
            *seen.entry(name).or_default() += 1;
            seen
        });
    let mut names: Vec<_> = labels.keys().copied().collect();
    names.sort();
    assert_eq!(names, ["code", "kind", "le", "rpc", "state"], "{labels:?}");

    // What the test's pod and containers used is gone from the host.
    assert_eq!(shim_processes(&env.daemon.state), Vec::<u32>::new());
    assert_eq!(mounts_under(&env.daemon.state), Vec::new());

    if let Err(verdict) = berth_testutil::promtool_check_metrics(&last.text) {
        panic!("{verdict}\non\n{}", last.text);
    }
    eprintln!(
        "{TEST}: promtool check metrics found nothing in {} lines; the scrape:\n{}",
        last.text.lines().count(),
        last.text
    );
}

#[test]
fn a_metrics_address_in_use_stops_berthd_with_an_error_naming_it() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let layout = Layout::with_config(&format!("[metrics]\naddress = \"{addr}\"\n"));
    let mut child = layout.spawn(&layout.args());
    let status = berth_integration::wait_timeout(&mut child, Duration::from_secs(20));
    let log = std::fs::read_to_string(&layout.log).unwrap();
    assert_eq!(status.code(), Some(1), "{log}");
    assert!(
        log.contains(&format!(
            "cannot listen for metrics on {addr} (metrics.address)"
        )),
        "{log}"
    );
    // It stopped before serving: no socket left behind.
    assert!(!layout.socket.exists());
}
