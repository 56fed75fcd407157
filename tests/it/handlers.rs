//! Runtime handlers (RuntimeClass) against a real berthd, as root: one daemon with the
//! default handler `runc` and a `crun` handler (Debian's crun, through
//! `tests/runtimes/crun.sh`, which works around crun 1.8's refusal of hybrid cgroup hosts).
//!
//! - Status lists "", "crun" and "runc" with their features; an unknown handler is refused
//!   with InvalidArgument naming the configured ones, and nothing is left of the pod.
//! - A pod under each handler (and one naming none) runs a container; ExecSync works; the
//!   container's state lives under its handler's root (`<state>/runtimes/<name>/<id>`),
//!   which proves which runtime created it; berthd is restarted and recovery finds every
//!   container running through its own handler (exec still works); stop and remove leave
//!   nothing: no pod, container, shim, runtime state, mount or cgroup.
//!
//! Without root, crun or the registry (unless `BERTH_REQUIRE_REGISTRY=1`), each test says so
//! and passes.

use std::time::{Duration, Instant};

use berth_integration::containers::{crun_wrapper, handler_root, shim_processes, Reaper};
use berth_integration::pods::{cgroups_mentioning, dir_entries, is_root, mounts_under, PodEnv};
use berth_integration::registry::{on_path, shared_registry, skip_or_panic};
use berth_integration::rpc::{container, pod, pull, timed, Runtime};
use berth_integration::Layout;
use cri_api::v1;
use tonic::Code;

const BUSYBOX: &str = "registry.k8s.io/e2e-test-images/busybox:1.29-2";
const POD_NAMESPACE: &str = "berth-it-handlers";
/// How long a container may take to reach an expected state, the host to settle.
const TIMEOUT: Duration = Duration::from_secs(30);

/// Root, crun and the shared registry; `None` (after a note) when the test cannot run.
fn can_run(test: &str) -> Option<String> {
    if !is_root() {
        skip_or_panic(test, "pods need root");
        return None;
    }
    if on_path("crun").is_none() {
        skip_or_panic(test, "crun is not installed (scripts/install-deps.sh test)");
        return None;
    }
    shared_registry(test)
}

/// A daemon with a crun handler beside the default runc one, on network `slot`, with
/// busybox pulled. Field order is drop order.
struct Env {
    _reaper: Reaper,
    pod: PodEnv,
}

async fn start_env(registry: &str, slot: u8) -> (Env, Runtime) {
    let layout = Layout::with_config(&format!(
        "[runtime.handlers.crun]\npath = \"{}\"\n",
        crun_wrapper().display()
    ));
    layout.mirror_to(registry);
    let reaper = Reaper::new(&layout.state);
    let pod = PodEnv::start_in(layout, slot);
    pull(&pod.daemon, BUSYBOX).await;
    let rt = pod.daemon.runtime().await;
    (
        Env {
            _reaper: reaper,
            pod,
        },
        rt,
    )
}

fn pod_config(name: &str) -> v1::PodSandboxConfig {
    v1::PodSandboxConfig {
        metadata: Some(v1::PodSandboxMetadata {
            name: name.to_owned(),
            uid: format!("uid-{name}"),
            namespace: POD_NAMESPACE.to_owned(),
            attempt: 1,
        }),
        ..Default::default()
    }
}

async fn run_pod(
    rt: &mut Runtime,
    config: &v1::PodSandboxConfig,
    handler: &str,
) -> Result<String, tonic::Status> {
    timed(
        "RunPodSandbox",
        rt.run_pod_sandbox(v1::RunPodSandboxRequest {
            config: Some(config.clone()),
            runtime_handler: handler.to_owned(),
        }),
    )
    .await
    .map(|r| r.into_inner().pod_sandbox_id)
}

/// Creates and starts a busybox `sleep` container in `pod`.
async fn run_container(rt: &mut Runtime, pod: &str, config: &v1::PodSandboxConfig) -> String {
    let sleeper = v1::ContainerConfig {
        metadata: Some(v1::ContainerMetadata {
            name: "sleeper".into(),
            attempt: 0,
        }),
        image: Some(v1::ImageSpec {
            image: BUSYBOX.into(),
            ..Default::default()
        }),
        command: vec!["sleep".into(), "3600".into()],
        ..Default::default()
    };
    let id = container::try_create(rt, pod, config, sleeper)
        .await
        .unwrap_or_else(|s| panic!("CreateContainer in {pod}: {s:?}"));
    container::start(rt, &id).await;
    id
}

/// ExecSync of `echo <word>` in `id` answers the word.
async fn assert_exec(rt: &mut Runtime, id: &str, word: &str) {
    let reply = container::exec(rt, id, &["echo", word], 0)
        .await
        .unwrap_or_else(|s| panic!("ExecSync in {id}: {s:?}"));
    assert_eq!(reply.exit_code, 0, "{reply:?}");
    assert_eq!(String::from_utf8_lossy(&reply.stdout), format!("{word}\n"));
}

async fn container_state(rt: &mut Runtime, id: &str) -> v1::ContainerState {
    let status = container::try_status(rt, id, false)
        .await
        .unwrap_or_else(|s| panic!("ContainerStatus({id}): {s:?}"))
        .status
        .expect("status");
    v1::ContainerState::try_from(status.state).unwrap()
}

/// Waits until `what` returns an empty list; panics with what is left.
fn wait_gone(what: &str, f: impl Fn() -> Vec<String>) {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let left = f();
        if left.is_empty() {
            return;
        }
        assert!(Instant::now() < deadline, "{what} left: {left:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[tokio::test]
async fn status_lists_every_handler_and_an_unknown_one_is_refused() {
    const TEST: &str = "status_lists_every_handler_and_an_unknown_one_is_refused";
    let Some(registry) = can_run(TEST) else {
        return;
    };
    let (env, mut rt) = start_env(&registry, 0).await;
    let status = rt
        .status(v1::StatusRequest { verbose: true })
        .await
        .unwrap()
        .into_inner();
    let names: Vec<&str> = status
        .runtime_handlers
        .iter()
        .map(|h| h.name.as_str())
        .collect();
    assert_eq!(names, ["", "crun", "runc"]);
    let features: Vec<_> = status
        .runtime_handlers
        .iter()
        .map(|h| h.features.expect("features"))
        .collect();
    assert!(
        features.iter().all(|f| *f == features[0]),
        "every handler supports what the host does: {features:?}"
    );
    let listed: serde_json::Value = serde_json::from_str(&status.info["handlers"]).unwrap();
    assert_eq!(listed[0]["name"], "crun");
    assert_eq!(listed[0]["found"], true);
    assert_eq!(listed[1]["default"], true);

    let err = run_pod(&mut rt, &pod_config("kata"), "kata\u{7}")
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    for word in [r#""kata\u{7}""#, r#""crun", "runc""#, "runtime_handler"] {
        assert!(err.message().contains(word), "{word}: {}", err.message());
    }
    let pods = rt
        .list_pod_sandbox(v1::ListPodSandboxRequest { filter: None })
        .await
        .unwrap()
        .into_inner()
        .items;
    assert!(pods.is_empty(), "{pods:?}");
    drop(env);
}

#[tokio::test]
async fn a_pod_under_each_handler_runs_execs_survives_a_restart_and_is_removed() {
    const TEST: &str = "a_pod_under_each_handler_runs_execs_survives_a_restart_and_is_removed";
    let Some(registry) = can_run(TEST) else {
        return;
    };
    let (mut env, mut rt) = start_env(&registry, 1).await;
    let state = env.pod.daemon.state.clone();
    // (requested handler, the handler it resolves to)
    let cases = [("runc", "runc"), ("crun", "crun"), ("", "runc")];
    let mut running = Vec::new();
    for (n, (requested, handler)) in cases.iter().enumerate() {
        let config = pod_config(&format!("pod-{n}-{handler}"));
        let pod = run_pod(&mut rt, &config, requested)
            .await
            .unwrap_or_else(|s| panic!("RunPodSandbox({requested:?}): {s:?}"));
        let status = pod::status(&mut rt, &pod).await;
        assert_eq!(status.runtime_handler, *requested, "as asked");
        let id = run_container(&mut rt, &pod, &config).await;
        let runtime_state = handler_root(&state, handler).join(&id);
        assert!(
            runtime_state.is_dir(),
            "{handler} keeps the container's state: {} missing",
            runtime_state.display()
        );
        assert_eq!(
            container_state(&mut rt, &id).await,
            v1::ContainerState::ContainerRunning
        );
        assert_exec(&mut rt, &id, handler).await;
        running.push((pod, id, *handler));
    }

    // Recovery reads each container through its own handler.
    let daemon = &mut env.pod.daemon;
    assert!(daemon.terminate().success());
    daemon.restart();
    let mut rt = daemon.runtime().await;
    for (_, id, handler) in &running {
        assert_eq!(
            container_state(&mut rt, id).await,
            v1::ContainerState::ContainerRunning,
            "{handler} container after the restart"
        );
        assert_exec(&mut rt, id, &format!("{handler}-again")).await;
    }

    for (pod, id, handler) in &running {
        pod::stop_and_remove(&mut rt, pod).await;
        assert!(
            !handler_root(&state, handler).join(id).exists(),
            "{handler} state of {id} left"
        );
    }
    let ids: Vec<String> = running
        .iter()
        .flat_map(|(pod, id, _)| [pod.clone(), id.clone()])
        .collect();
    let dir = env.pod.daemon.dir.path().to_owned();
    wait_gone("runtime state", || {
        ["runc", "crun"]
            .iter()
            .flat_map(|h| dir_entries(&handler_root(&state, h)))
            .collect()
    });
    wait_gone("shims", || {
        shim_processes(&state)
            .iter()
            .map(|pid| pid.to_string())
            .collect()
    });
    wait_gone("container mounts", || {
        mounts_under(&dir.join("root"))
            .into_iter()
            .map(|(m, _)| m.display().to_string())
            .collect()
    });
    wait_gone("cgroups", || {
        cgroups_mentioning(&ids)
            .iter()
            .map(|p| p.display().to_string())
            .collect()
    });
    let left = env.pod.leftovers(
        &running
            .iter()
            .map(|(pod, _, _)| pod.clone())
            .collect::<Vec<_>>(),
    );
    assert!(left.is_empty(), "{left:?}");
}
