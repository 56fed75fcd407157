//! The core's rollback, recovery, supervision and serialisation, against [`FakeHost`].

use std::sync::Arc;
use std::time::Duration;

use berth_store::{
    ContainerIntent, ContainerState, SandboxIntent, SandboxRecord, SandboxState, Store,
};

use crate::fake::FakeHost;
use crate::testutil::{container, sandbox};
use crate::{failpoint, EventKind, ExitFile, Host, Runtime, RuntimeError};

struct Fixture {
    _dir: tempfile::TempDir,
    root: std::path::PathBuf,
    host: Arc<FakeHost>,
    rt: Arc<Runtime<FakeHost>>,
}

impl Fixture {
    async fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_owned();
        let host = Arc::new(FakeHost::default());
        let rt = Runtime::open(host.clone(), Store::open(&root).unwrap())
            .await
            .unwrap();
        Fixture {
            _dir: dir,
            root,
            host,
            rt,
        }
    }

    /// A new berthd over the same store and host (after the old one "died").
    async fn restart(&mut self) {
        self.rt.shutdown();
        let placeholder = tempfile::tempdir().unwrap();
        let old = std::mem::replace(
            &mut self.rt,
            Runtime::open(
                Arc::new(FakeHost::default()),
                Store::open(placeholder.path()).unwrap(),
            )
            .await
            .unwrap(),
        );
        drop(old);
        // sled's lock is released once every handle is dropped; an aborted supervisor drops
        // its own at its next poll.
        let store = loop {
            match Store::open(&self.root) {
                Ok(store) => break store,
                Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        };
        self.rt = Runtime::open(self.host.clone(), store).await.unwrap();
    }

    async fn pod(&self, id: &str, name: &str) -> SandboxRecord {
        self.rt.run_pod(sandbox(id, name), ()).await.unwrap()
    }

    async fn running(&self, id: &str, pod: &str) {
        self.rt
            .create_container(container(id, pod, &format!("c-{id}")), ())
            .await
            .unwrap();
        self.rt.start_container(id).await.unwrap();
    }

    fn stored_sandboxes(&self) -> usize {
        self.rt.store.sandboxes().list().unwrap().len()
    }
}

const POD_STEPS: &[&str] = &[
    "run_pod_sandbox:files",
    "run_pod_sandbox:shm",
    "run_pod_sandbox:namespaces",
    "run_pod_sandbox:pid_init",
    "run_pod_sandbox:network",
];

#[tokio::test]
async fn a_pod_that_fails_at_any_step_leaves_nothing() {
    let f = Fixture::new().await;
    for (n, step) in POD_STEPS.iter().enumerate() {
        assert!(failpoint::STEPS.contains(step));
        *f.host.fail.lock().unwrap() = Some((*step).to_owned());
        let err =
            f.rt.run_pod(sandbox(&format!("p{n}"), "web"), ())
                .await
                .unwrap_err();
        assert!(matches!(err, RuntimeError::Host(_)), "{err}");
        assert!(f.host.held().is_empty(), "{step}: {:?}", f.host.held());
        assert_eq!(f.stored_sandboxes(), 0, "{step}");
    }
    // The name is free again.
    *f.host.fail.lock().unwrap() = None;
    f.pod("ok", "web").await;
    assert_eq!(f.rt.sandbox("ok").unwrap().state, SandboxState::Ready);
}

#[tokio::test]
async fn a_failed_undo_is_kept_hidden_and_retried_at_the_next_start() {
    let mut f = Fixture::new().await;
    // What a create whose undo failed leaves: the record with its intent, and resources.
    *f.host.fail.lock().unwrap() = Some("remove_pod".into());
    f.host
        .resources
        .lock()
        .unwrap()
        .insert("pod:qq:files".into());
    let mut record = sandbox("qq", "db");
    record.intent = Some(SandboxIntent::Creating);
    f.rt.store.sandboxes().insert(&record).unwrap();
    f.restart().await;
    // Recovery tried and failed: still held, still stored, never listed.
    assert!(f.host.held().contains("pod:qq:files"));
    assert_eq!(f.stored_sandboxes(), 1);
    assert!(f.rt.list_sandboxes(|s| Some(s.id.clone())).is_empty());
    assert!(matches!(
        f.rt.sandbox("qq"),
        Err(RuntimeError::NotFound { .. })
    ));
    // The next start succeeds.
    *f.host.fail.lock().unwrap() = None;
    f.restart().await;
    assert!(f.host.held().is_empty());
    assert_eq!(f.stored_sandboxes(), 0);
}

#[tokio::test]
async fn interrupted_operations_are_finished_or_undone_at_start_up() {
    let mut f = Fixture::new().await;
    f.pod("pa", "a").await;
    f.running("c1", "pa").await;
    // What a kill -9 in the middle of each operation leaves.
    let store = f.rt.store.clone();
    let mut creating_pod = sandbox("pb", "b");
    creating_pod.intent = Some(SandboxIntent::Creating);
    store.sandboxes().insert(&creating_pod).unwrap();
    f.host
        .resources
        .lock()
        .unwrap()
        .extend(["pod:pb:files".to_owned(), "pod:pb:ns".to_owned()]);
    let mut creating = container("c2", "pa", "two");
    creating.intent = Some(ContainerIntent::Creating);
    store.containers().insert(&creating).unwrap();
    f.host
        .resources
        .lock()
        .unwrap()
        .insert("ctr:c2:rootfs".into());
    let mut removing_pod = sandbox("pc", "c");
    removing_pod.intent = Some(SandboxIntent::Removing);
    store.sandboxes().insert(&removing_pod).unwrap();
    f.host.resources.lock().unwrap().insert("pod:pc:net".into());
    drop(store);

    f.restart().await;
    let held = f.host.held();
    assert!(
        held.iter()
            .all(|r| r.starts_with("pod:pa:") || r.starts_with("ctr:c1:")),
        "{held:?}"
    );
    let ids = f.rt.list_sandboxes(|s| Some(s.id.clone()));
    assert_eq!(ids, ["pa"]);
    let containers = f.rt.list_containers(|c, state| Some((c.id.clone(), state)));
    assert_eq!(containers, [("c1".to_owned(), ContainerState::Running)]);
}

#[tokio::test]
async fn an_interrupted_start_is_settled_from_runc() {
    let mut f = Fixture::new().await;
    f.pod("pa", "a").await;
    for (id, name) in [("c1", "one"), ("c2", "two"), ("c3", "three")] {
        f.rt.create_container(container(id, "pa", name), ())
            .await
            .unwrap();
    }
    // c1: the shim ran runc create and runc start ran, the record was not updated; c2: the
    // shim ran runc create, runc start never ran; c3: berthd died before the shim was spawned.
    let no_step = |_: &'static str| {};
    let c1 = f.rt.container("c1").unwrap().record;
    f.host.start_container(&c1, &no_step).unwrap();
    *f.host.fail.lock().unwrap() = Some("start_container:runc_start".into());
    let c2 = f.rt.container("c2").unwrap().record;
    f.host.start_container(&c2, &no_step).unwrap_err();
    *f.host.fail.lock().unwrap() = None;
    assert!(f.host.held().contains("ctr:c2:shim"));
    for id in ["c1", "c2", "c3"] {
        let mut record = f.rt.container(id).unwrap().record;
        record.intent = Some(ContainerIntent::Starting);
        f.rt.store.containers().put(&record).unwrap();
    }
    f.restart().await;
    assert_eq!(
        f.rt.container("c1").unwrap().state(),
        ContainerState::Running
    );
    // c1's shim is watched; c2's half-started container was ended, so it is created again.
    assert_eq!(f.rt.supervised_shims(), 1);
    assert_eq!(f.host.calls_of("reset_container").len(), 2);
    assert!(
        !f.host.held().contains("ctr:c2:shim"),
        "{:?}",
        f.host.held()
    );
    for id in ["c2", "c3"] {
        let view = f.rt.container(id).unwrap();
        assert_eq!(view.state(), ContainerState::Created, "{id}");
        assert_eq!(view.record.intent, None, "{id}");
        // It can be started now (it could not with the intent left).
        f.rt.start_container(id).await.unwrap();
        assert_eq!(f.rt.container(id).unwrap().state(), ContainerState::Running);
    }
    assert_eq!(f.rt.supervised_shims(), 3);
}

#[tokio::test]
async fn an_interrupted_start_whose_leftovers_cannot_be_ended_is_a_start_error() {
    let mut f = Fixture::new().await;
    f.pod("pa", "a").await;
    f.rt.create_container(container("c1", "pa", "one"), ())
        .await
        .unwrap();
    let mut record = f.rt.container("c1").unwrap().record;
    record.intent = Some(ContainerIntent::Starting);
    f.rt.store.containers().put(&record).unwrap();
    *f.host.fail.lock().unwrap() = Some("reset_container".into());
    f.restart().await;
    let view = f.rt.container("c1").unwrap();
    assert_eq!(view.state(), ContainerState::Exited);
    assert_eq!(view.record.intent, None);
    let exit = view.record.exit.unwrap();
    assert_eq!(
        (exit.exit_code, exit.reason.as_str()),
        (crate::START_ERROR_CODE, crate::START_ERROR)
    );
    *f.host.fail.lock().unwrap() = None;
    f.rt.remove_container("c1").await.unwrap();
    assert!(f.host.held().iter().all(|r| r.starts_with("pod:")));
}

#[tokio::test]
async fn a_created_container_has_no_shim_until_it_is_started() {
    let mut f = Fixture::new().await;
    f.pod("pa", "a").await;
    f.rt.create_container(container("c1", "pa", "one"), ())
        .await
        .unwrap();
    assert_eq!(
        f.host
            .held()
            .iter()
            .filter(|r| r.starts_with("ctr:"))
            .count(),
        2,
        "{:?}",
        f.host.held()
    );
    assert!(!f.host.held().contains("ctr:c1:shim"));
    assert_eq!(f.rt.supervised_shims(), 0);
    // Nothing to stop: it stays created (as with containerd), and nothing is signalled.
    f.rt.stop_container("c1", 15, Duration::from_secs(1))
        .await
        .unwrap();
    assert_eq!(
        f.rt.container("c1").unwrap().state(),
        ContainerState::Created
    );
    assert!(f.host.calls_of("signal").is_empty());
    // A restart finds no shim and expects none: still created, nothing probed.
    f.restart().await;
    let view = f.rt.container("c1").unwrap();
    assert_eq!(view.state(), ContainerState::Created);
    assert_eq!(view.record.exit, None);
    assert!(f.host.calls_of("probe").is_empty());
    assert_eq!(f.rt.supervised_shims(), 0);
    f.rt.start_container("c1").await.unwrap();
    assert!(f.host.held().contains("ctr:c1:shim"));
    assert_eq!(f.rt.supervised_shims(), 1);
    f.rt.remove_container("c1").await.unwrap();
    assert!(f.host.held().iter().all(|r| r.starts_with("pod:")));
}

#[tokio::test]
async fn a_start_that_fails_at_any_step_is_a_start_error_and_leaves_no_shim() {
    let f = Fixture::new().await;
    f.pod("pa", "a").await;
    let steps = [
        "start_container",
        "start_container:shim",
        "start_container:runc_start",
    ];
    for (n, step) in steps.iter().enumerate() {
        assert!(
            step.contains(':') == failpoint::STEPS.contains(step),
            "{step}"
        );
        let id = format!("c{n}");
        f.rt.create_container(container(&id, "pa", &id), ())
            .await
            .unwrap();
        let mut events = f.rt.subscribe();
        *f.host.fail.lock().unwrap() = Some((*step).to_owned());
        let err = f.rt.start_container(&id).await.unwrap_err();
        *f.host.fail.lock().unwrap() = None;
        assert!(matches!(err, RuntimeError::Host(_)), "{step}: {err}");
        let view = f.rt.container(&id).unwrap();
        assert_eq!(view.state(), ContainerState::Exited, "{step}");
        assert_eq!(view.record.intent, None, "{step}");
        let exit = view.record.exit.unwrap();
        assert_eq!(
            (exit.exit_code, exit.reason.as_str()),
            (128, "StartError"),
            "{step}"
        );
        assert_eq!(exit.message, err.to_string(), "{step}");
        assert!(exit.finished_at > 0, "{step}");
        assert_eq!(events.recv().await.unwrap().kind, EventKind::Stopped);
        // Its shim and runc's container are ended; rootfs and bundle stay for removal.
        assert!(!f.host.held().contains(&format!("ctr:{id}:shim")), "{step}");
        assert!(
            f.host.held().contains(&format!("ctr:{id}:bundle")),
            "{step}"
        );
        assert_eq!(f.rt.supervised_shims(), 0, "{step}");
        // It cannot be started again; it can be removed.
        assert!(f.rt.start_container(&id).await.is_err());
        f.rt.remove_container(&id).await.unwrap();
        assert!(
            f.host.held().iter().all(|r| r.starts_with("pod:")),
            "{step}"
        );
    }
}

#[tokio::test]
async fn a_reboot_leaves_not_ready_pods_and_exited_containers_that_remove_cleanly() {
    let mut f = Fixture::new().await;
    f.pod("pa", "a").await;
    f.running("c1", "pa").await;
    f.rt.create_container(container("c2", "pa", "created"), ())
        .await
        .unwrap();
    f.host.reboot();
    f.restart().await;
    let pod = f.rt.sandbox("pa").unwrap();
    assert_eq!(pod.state, SandboxState::NotReady);
    assert_eq!(
        f.host.calls_of("stop_pod").len(),
        1,
        "network released at start-up"
    );
    for id in ["c1", "c2"] {
        let view = f.rt.container(id).unwrap();
        assert_eq!(view.state(), ContainerState::Exited, "{id}");
        let exit = view.record.exit.unwrap();
        assert_eq!((exit.exit_code, exit.reason.as_str()), (255, "Unknown"));
    }
    f.rt.remove_pod("pa").await.unwrap();
    assert!(f.host.held().is_empty(), "{:?}", f.host.held());
    assert_eq!(f.stored_sandboxes(), 0);
}

#[tokio::test]
async fn a_dead_shim_is_noticed_at_once() {
    let f = Fixture::new().await;
    f.pod("pa", "a").await;
    f.running("c1", "pa").await;
    let mut events = f.rt.subscribe();
    f.host.kill_shim("c1", None);
    let event = tokio::time::timeout(Duration::from_secs(2), events.recv())
        .await
        .expect("stopped event within 2 s")
        .unwrap();
    assert_eq!(event.kind, EventKind::Stopped);
    let view = f.rt.container("c1").unwrap();
    assert_eq!(view.state(), ContainerState::Exited);
    assert_eq!(view.record.exit.as_ref().unwrap().exit_code, 255);
    // What was left of the container was killed.
    assert_eq!(f.host.calls_of("signal"), ["signal c1 9 all"]);
    // Stop and remove succeed at once.
    tokio::time::timeout(Duration::from_secs(1), f.rt.stop_pod("pa"))
        .await
        .unwrap()
        .unwrap();
    f.rt.remove_pod("pa").await.unwrap();
    assert!(f.host.held().is_empty());
}

#[tokio::test]
async fn an_exit_recorded_by_the_shim_keeps_its_code() {
    let f = Fixture::new().await;
    f.pod("pa", "a").await;
    f.running("c1", "pa").await;
    f.host.kill_shim(
        "c1",
        Some(ExitFile {
            exit_code: 3,
            exited_at: 42,
            oom_killed: false,
        }),
    );
    for _ in 0..100 {
        if f.rt.container("c1").unwrap().record.exit.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let exit = f.rt.container("c1").unwrap().record.exit.unwrap();
    assert_eq!(
        (exit.exit_code, exit.finished_at, exit.reason.as_str()),
        (3, 42, "Error")
    );
    // The exit file is enough: runc is not asked (a process more on every exit).
    assert_eq!(f.host.calls_of("probe"), Vec::<String>::new());
}

#[tokio::test]
async fn oom_kills_and_supervised_shims_are_counted() {
    let f = Fixture::new().await;
    f.pod("pa", "a").await;
    assert_eq!((f.rt.supervised_shims(), f.rt.oom_kills()), (0, 0));
    f.running("c1", "pa").await;
    f.running("c2", "pa").await;
    f.running("c3", "pa").await;
    assert_eq!(f.rt.supervised_shims(), 3);
    let oom = ExitFile {
        exit_code: 137,
        exited_at: 42,
        oom_killed: true,
    };
    f.host.kill_shim("c1", Some(oom));
    f.host.kill_shim(
        "c2",
        Some(ExitFile {
            oom_killed: false,
            ..oom
        }),
    );
    for _ in 0..100 {
        if f.rt.supervised_shims() == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(f.rt.supervised_shims(), 1);
    assert_eq!(
        f.rt.container("c1").unwrap().record.exit.unwrap().reason,
        "OOMKilled"
    );
    // Only the OOM kill counts, and only once however often its exit is seen.
    assert_eq!(f.rt.oom_kills(), 1);
    let entry = f.rt.registry.container_exact("c1").unwrap();
    f.rt.shim_gone(&entry).await;
    assert_eq!(f.rt.oom_kills(), 1);
}

#[tokio::test]
async fn stop_signals_and_waits_for_the_exit() {
    let f = Fixture::new().await;
    f.pod("pa", "a").await;
    f.running("c1", "pa").await;
    f.rt.stop_container("c1", 15, Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(
        f.rt.container("c1").unwrap().state(),
        ContainerState::Exited
    );
    assert_eq!(f.host.calls_of("signal"), ["signal c1 15"]);
    assert_eq!(f.rt.container("c1").unwrap().record.intent, None);
    // Idempotent.
    f.rt.stop_container("c1", 15, Duration::from_secs(5))
        .await
        .unwrap();
    f.rt.stop_container("unknown", 15, Duration::ZERO)
        .await
        .unwrap();
}

/// `result` of a call given ten seconds, or a panic saying `what` still waited.
fn within<T>(what: &str) -> impl FnOnce(Result<T, tokio::time::error::Elapsed>) -> T + '_ {
    move |result| result.unwrap_or_else(|_| panic!("{what} still waits out the hour"))
}

/// A container whose stop signal is ignored, stopped with an hour of grace in the
/// background: the task, once the signal went out.
async fn stopping_for_an_hour(f: &Fixture, id: &str) -> tokio::task::JoinHandle<()> {
    let rt = f.rt.clone();
    let owned = id.to_owned();
    // Signal 10 (SIGUSR1): the fake's processes die only of 15 and 9.
    let stop = tokio::spawn(async move {
        rt.stop_container(&owned, 10, Duration::from_secs(3600))
            .await
            .unwrap()
    });
    let sent = format!("signal {id} 10");
    for _ in 0..200 {
        if f.host.calls_of("signal").contains(&sent) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        f.host.calls_of("signal").contains(&sent),
        "{:?}",
        f.host.calls_of("signal")
    );
    stop
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pod_record_update_does_not_wait_for_a_container_stop() {
    let f = Fixture::new().await;
    f.pod("pu", "u").await;
    f.running("cu", "pu").await;
    let long = stopping_for_an_hour(&f, "cu").await;
    let updated = within("UpdatePodSandboxResources")(
        tokio::time::timeout(
            Duration::from_secs(10),
            f.rt.update_sandbox_record("pu", |r| r.config = vec![1, 2, 3]),
        )
        .await,
    )
    .unwrap();
    assert_eq!(updated.config, vec![1, 2, 3]);
    // The stop is still waiting; the pod's removal ends it, and the pod is gone for good.
    assert!(!long.is_finished());
    within("RemovePodSandbox")(
        tokio::time::timeout(Duration::from_secs(10), f.rt.remove_pod("pu")).await,
    )
    .unwrap();
    within("the long stop")(tokio::time::timeout(Duration::from_secs(10), long).await).unwrap();
    assert!(f
        .rt
        .update_sandbox_record("pu", |r| r.config = vec![4])
        .await
        .is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_grace_period_is_cut_short_by_later_stops_and_removes() {
    let f = Fixture::new().await;
    f.pod("pa", "a").await;

    // A shorter StopContainer: the first stop kills at the second's deadline.
    f.running("c1", "pa").await;
    let long = stopping_for_an_hour(&f, "c1").await;
    let short = f.rt.stop_container("c1", 10, Duration::from_millis(200));
    within("the short stop")(tokio::time::timeout(Duration::from_secs(10), short).await).unwrap();
    within("the long stop")(tokio::time::timeout(Duration::from_secs(10), long).await).unwrap();
    assert_eq!(
        f.rt.container("c1").unwrap().state(),
        ContainerState::Exited
    );
    assert!(f
        .host
        .calls_of("signal")
        .contains(&"signal c1 9 all".to_owned()));

    // RemoveContainer: kills at once.
    f.running("c2", "pa").await;
    let long = stopping_for_an_hour(&f, "c2").await;
    within("RemoveContainer")(
        tokio::time::timeout(Duration::from_secs(10), f.rt.remove_container("c2")).await,
    )
    .unwrap();
    within("the long stop")(tokio::time::timeout(Duration::from_secs(10), long).await).unwrap();
    assert!(f.rt.container("c2").is_err());

    // StopPodSandbox and RemovePodSandbox: the same.
    f.running("c3", "pa").await;
    let long = stopping_for_an_hour(&f, "c3").await;
    within("StopPodSandbox")(
        tokio::time::timeout(Duration::from_secs(10), f.rt.stop_pod("pa")).await,
    )
    .unwrap();
    within("the long stop")(tokio::time::timeout(Duration::from_secs(10), long).await).unwrap();
    within("RemovePodSandbox")(
        tokio::time::timeout(Duration::from_secs(10), f.rt.remove_pod("pa")).await,
    )
    .unwrap();

    // A timeout no clock can add (i64::MAX seconds, as a client may send) is no panic.
    f.pod("pc", "c").await;
    f.running("c5", "pc").await;
    let rt = f.rt.clone();
    let huge = tokio::spawn(async move {
        rt.stop_container("c5", 10, Duration::from_secs(i64::MAX as u64))
            .await
            .unwrap()
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    within("RemovePodSandbox")(
        tokio::time::timeout(Duration::from_secs(10), f.rt.remove_pod("pc")).await,
    )
    .unwrap();
    within("the huge stop")(tokio::time::timeout(Duration::from_secs(10), huge).await).unwrap();

    // A later stop of its own gets its own grace period again (nothing stale is kept).
    f.pod("pb", "b").await;
    f.running("c4", "pb").await;
    let entry = f.rt.registry.container_exact("c4").unwrap();
    assert_eq!(entry.hurry_deadline(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_removes_of_one_pod_all_succeed() {
    let f = Fixture::new().await;
    f.pod("pa", "a").await;
    f.running("c1", "pa").await;
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let rt = f.rt.clone();
            tokio::spawn(async move { rt.remove_pod("pa").await })
        })
        .collect();
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    assert_eq!(f.host.calls_of("remove_pod").len(), 1);
    assert!(f.host.held().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_container_outlives_a_pod_removed_while_it_is_created() {
    for round in 0..10 {
        let f = Fixture::new().await;
        f.pod("pa", "a").await;
        let rt = f.rt.clone();
        let create = tokio::spawn(async move {
            rt.create_container(container("c1", "pa", "one"), ())
                .await?;
            rt.start_container("c1").await
        });
        if round % 2 == 0 {
            tokio::task::yield_now().await;
        }
        f.rt.remove_pod("pa").await.unwrap();
        let _ = create.await.unwrap();
        assert!(
            f.host.held().is_empty(),
            "round {round}: {:?}",
            f.host.held()
        );
        assert!(f.rt.list_containers(|c, _| Some(c.id.clone())).is_empty());
        assert!(f.rt.store.containers().list().unwrap().is_empty());
    }
}

#[tokio::test]
async fn names_are_held_for_the_whole_operation() {
    let f = Fixture::new().await;
    f.pod("pa", "a").await;
    let err = f.rt.run_pod(sandbox("pb", "a"), ()).await.unwrap_err();
    assert!(
        matches!(err, RuntimeError::NameTaken { ref id, .. } if id == "pa"),
        "{err}"
    );
    f.rt.create_container(container("c1", "pa", "one"), ())
        .await
        .unwrap();
    let err =
        f.rt.create_container(container("c2", "pa", "one"), ())
            .await
            .unwrap_err();
    assert!(matches!(err, RuntimeError::NameTaken { .. }), "{err}");
    // A cancelled create keeps going and keeps its name until it ends.
    let rt = f.rt.clone();
    let cancelled = tokio::spawn(async move {
        rt.create_container(container("c3", "pa", "three"), ())
            .await
    });
    cancelled.abort();
    let _ = cancelled.await;
    for _ in 0..100 {
        if f.rt.container("c3").is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Either it never began (aborted before the first poll) or it finished.
    if let Ok(view) = f.rt.container("c3") {
        assert_eq!(view.state(), ContainerState::Created);
    }
}

#[tokio::test]
async fn containers_cannot_be_created_in_a_stopped_pod() {
    let f = Fixture::new().await;
    f.pod("pa", "a").await;
    f.rt.stop_pod("pa").await.unwrap();
    let err =
        f.rt.create_container(container("c1", "pa", "one"), ())
            .await
            .unwrap_err();
    assert!(matches!(err, RuntimeError::SandboxNotReady { .. }), "{err}");
    assert!(f.host.held().iter().all(|r| r.starts_with("pod:")));
}
