//! The load: workers that build, mutate, contain and send requests, judge the replies and
//! learn IDs from them; the fixtures before and the cleanup after.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use cri_api::v1;
use prost::Message;
use tokio::sync::Semaphore;
use tonic::Code;

use crate::client::{Conn, Reply};
use crate::contain::contain;
use crate::corpus::{self, Corpus};
use crate::mutate::mutate;
use crate::report::{normalize, NewFinding, Origin, Severity, Shared};
use crate::rng::Rng;
use crate::rpcs::{self, Rpc};
use crate::seeds::{self, Ctx};

/// Pods (besides the fixture) kept alive at most; the janitor removes the oldest beyond.
const MAX_PODS: usize = 12;
/// Containers (besides the fixture) kept alive at most.
const MAX_CONTAINERS: usize = 24;
/// A status message longer than this echoes too much input (the issue asks for 256 bytes
/// of quoted input at most).
const LONG_MESSAGE: usize = 1024;
/// Salt of the generator that builds seeds (pool-dependent) apart from the one choosing
/// RPCs and mutations, so that the mutations of an iteration do not depend on the pool.
const SEED_SALT: u64 = 0x5eed_5eed_5eed_5eed;

/// What the workers share.
pub struct Run {
    /// Seeds' context and the pool.
    pub ctx: Ctx,
    /// Counters and findings.
    pub stats: Shared,
    /// The corpus.
    pub corpus: Corpus,
    /// The CRI socket.
    pub socket: PathBuf,
    /// Largest request (bytes).
    pub budget: usize,
    /// Request bytes in flight at most, in KiB.
    pub inflight: Semaphore,
    /// Client limit on response headers.
    pub max_header_list_size: u32,
    /// Where findings' requests are saved.
    pub out: PathBuf,
    /// Set when the daemon is gone: workers stop.
    pub stop: AtomicBool,
}

/// One phase of fuzzing: iterations `0..iterations` (or until `until`) of `seed`.
pub struct Phase {
    /// The run seed.
    pub seed: u64,
    /// Iterations to run (unbounded when `None`).
    pub iterations: Option<u64>,
    /// Only this iteration.
    pub only: Option<u64>,
    /// Stop starting iterations after this.
    pub until: Instant,
}

impl Run {
    /// A connection, retried for a few seconds (the daemon may be busy).
    pub async fn connect(&self) -> Option<Conn> {
        for _ in 0..20 {
            if let Ok(conn) = Conn::connect(&self.socket, self.max_header_list_size).await {
                return Some(conn);
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        None
    }

    /// Sends `bytes` as `rpc`, judges the reply, learns from it. Returns whether the
    /// connection should be replaced.
    pub async fn send(
        &self,
        conn: &Conn,
        rpc: &'static Rpc,
        bytes: Vec<u8>,
        origin: &Origin,
    ) -> bool {
        let contained = contain(rpc.name, bytes, &self.ctx.host_root);
        let bytes = contained.bytes;
        let decodes = rpc.request_decodes(&bytes);
        let kib = u32::try_from(bytes.len() / 1024 + 1).unwrap_or(u32::MAX);
        let permit = self.inflight.acquire_many(kib.min(self.budget_kib())).await;
        let reply = conn.call(rpc, Bytes::from(bytes.clone())).await;
        drop(permit);
        self.stats.with(|s| {
            *s.per_rpc.entry(rpc.name.to_owned()).or_default() += 1;
            s.bytes_sent += bytes.len() as u64;
            s.undecodable += u64::from(!decodes);
            s.rewritten += u64::from(contained.rewritten);
        });
        let input = describe(rpc, &bytes, decodes, contained.rewritten);
        let note = |severity, kind, key: Option<String>, what: &str| {
            self.stats.finding(NewFinding {
                severity,
                kind,
                // One finding for all RPCs: the same decoding layer answers them all.
                rpc: if kind == "undecodable-code" {
                    "any"
                } else {
                    rpc.name
                },
                key,
                what,
                input: input.clone(),
                origin,
                bytes: Some(&bytes),
                out: &self.out,
            })
        };
        let code_name = match &reply {
            Reply::Ok { first, messages } => {
                if rpc.streaming {
                    self.stats.with(|s| s.stream_messages += *messages as u64);
                }
                if !rpc.response_decodes(first) {
                    note(
                        Severity::Note,
                        "reply-undecodable",
                        None,
                        "OK reply does not decode as the response type",
                    );
                }
                if !decodes {
                    note(
                        Severity::Note,
                        "undecodable-accepted",
                        None,
                        "a request that does not decode was answered OK",
                    );
                }
                if let Some(parent) = odd_cgroup_parent(rpc, &bytes) {
                    note(
                        Severity::Note,
                        "cgroup-parent-accepted",
                        Some(String::new()),
                        &format!("RunPodSandbox accepted cgroup_parent {:?} (cgroupfs wants an absolute path of ordinary names)", crate::report::cut(&parent, 200)),
                    );
                }
                let mut pool = self.ctx.pool();
                rpcs::harvest(rpc, &bytes, first, &mut pool);
                "OK".to_owned()
            }
            Reply::Status { code, message } => {
                let code_key = Some(format!("{code:?}"));
                if !decodes && *code != Code::InvalidArgument {
                    note(
                        Severity::Note,
                        "undecodable-code",
                        code_key.clone(),
                        &format!("undecodable {} request answered {code:?} (want InvalidArgument): {message}", rpc.name),
                    );
                }
                if message.len() > LONG_MESSAGE {
                    note(
                        Severity::Note,
                        "long-message",
                        code_key.clone(),
                        &format!("{code:?} with a {}-byte message: {message}", message.len()),
                    );
                }
                if decodes && matches!(code, Code::Internal | Code::Unknown) {
                    note(
                        Severity::Note,
                        "internal",
                        None,
                        &format!("{code:?}: {message}"),
                    );
                }
                if *code != Code::NotFound && pulls_missing_image(rpc, &bytes) {
                    note(
                        Severity::Note,
                        "missing-image-code",
                        code_key,
                        &format!("an image the registry does not have: {code:?} (want NotFound): {message}"),
                    );
                }
                format!("{code:?}")
            }
            Reply::Broken {
                code,
                message,
                detail,
            } => {
                let diagnosis = self.diagnose(rpc, &bytes).await;
                note(
                    Severity::Fail,
                    "not-a-status",
                    Some(format!("{code:?} {}", normalize(detail))),
                    &format!("{code:?} \"{message}\" [{detail}]{diagnosis}"),
                );
                "not-a-status".to_owned()
            }
            Reply::Deadline => {
                note(
                    Severity::Note,
                    "deadline",
                    Some(String::new()),
                    &format!(
                        "no answer within the {} s deadline",
                        rpc.deadline().as_secs()
                    ),
                );
                // Whatever it names is wedged: later requests should not all wait on it.
                if let Some(id) = named_id(&bytes) {
                    self.ctx.pool().quarantine(&id);
                }
                "deadline".to_owned()
            }
            Reply::Hang => {
                note(
                    Severity::Fail,
                    "hang",
                    Some(String::new()),
                    &format!(
                        "no reply {}s past the {}s deadline",
                        30,
                        rpc.deadline().as_secs()
                    ),
                );
                "hang".to_owned()
            }
        };
        self.stats
            .with(|s| *s.per_code.entry(code_name).or_default() += 1);
        matches!(reply, Reply::Broken { .. } | Reply::Hang)
    }

    /// Sends a request that got no status again, on a fresh connection that accepts
    /// response headers up to 16 MiB: tells "the status was too big for this client" from
    /// other failures.
    async fn diagnose(&self, rpc: &'static Rpc, bytes: &[u8]) -> String {
        let Ok(lenient) = Conn::connect(&self.socket, 16 << 20).await else {
            return String::new();
        };
        match lenient.call(rpc, Bytes::copy_from_slice(bytes)).await {
            Reply::Status { code, message } if message.len() + 64 > self.max_header_list_size as usize => format!(
                "; sent again with a 16 MiB header limit: a {code:?} status whose message of {} bytes exceeds this client's {}-byte limit",
                message.len(),
                self.max_header_list_size
            ),
            Reply::Status { code, message } => format!(
                "; sent again: {code:?} \"{}\"",
                crate::report::cut(&message, 200)
            ),
            Reply::Ok { .. } => "; sent again: OK".to_owned(),
            Reply::Broken { detail, .. } => format!("; sent again: no status either ({detail})"),
            Reply::Deadline => "; sent again: no answer within the deadline".to_owned(),
            Reply::Hang => "; sent again: no reply".to_owned(),
        }
    }

    fn budget_kib(&self) -> u32 {
        u32::try_from(self.budget / 1024 + 1).unwrap_or(u32::MAX)
    }

    /// The request of iteration `iter` of `seed`: an RPC, a base (a seed or a corpus file)
    /// and, three times out of four, mutations.
    pub fn request(&self, seed: u64, iter: u64) -> (&'static Rpc, Vec<u8>) {
        let mut rng = Rng::new(seed, iter);
        let mut seed_rng = Rng::new(seed ^ SEED_SALT, iter);
        let rpc = rpcs::choose(&mut rng);
        let from_corpus = rng.chance(1, 5);
        let pick = rng.next_u64() as usize;
        let base = match self.corpus.by_rpc.get(rpc.name) {
            Some(files) if from_corpus => {
                corpus::substitute(&files[pick % files.len()].1, &self.ctx, &mut seed_rng)
            }
            _ => seeds::seed(rpc.name, &self.ctx, &mut seed_rng),
        };
        if rng.chance(1, 4) {
            return (rpc, base);
        }
        let budget = (*rng.pick(&[4usize << 10, 4 << 10, 64 << 10, 64 << 10, 1 << 20, 4 << 20]))
            .min(self.budget);
        let splice = self.ctx.pool().splice_values();
        (rpc, mutate(&mut rng, &base, budget, &splice))
    }

    /// Removes the oldest non-fixture pod or container past the caps.
    async fn janitor(&self, conn: &Conn) -> bool {
        let (pod, container) = {
            let pool = self.ctx.pool();
            let pods: Vec<&str> = pool
                .pods
                .iter()
                .filter(|p| !p.fixture)
                .map(|p| p.id.as_str())
                .collect();
            let containers: Vec<&str> = pool
                .containers
                .iter()
                .filter(|c| !c.fixture)
                .map(|c| c.id.as_str())
                .collect();
            (
                (pods.len() > MAX_PODS).then(|| pods[0].to_owned()),
                (containers.len() > MAX_CONTAINERS).then(|| containers[0].to_owned()),
            )
        };
        let mut reconnect = false;
        if let Some(id) = container {
            let rpc = rpcs::by_name("RemoveContainer").expect("known RPC");
            let bytes = v1::RemoveContainerRequest {
                container_id: id.clone(),
            }
            .encode_to_vec();
            reconnect |= self.send(conn, rpc, bytes, &Origin::Janitor).await;
            // Gone or not, stop counting it.
            self.ctx.pool().remove_container(&id);
        }
        if let Some(id) = pod {
            let rpc = rpcs::by_name("RemovePodSandbox").expect("known RPC");
            let bytes = v1::RemovePodSandboxRequest {
                pod_sandbox_id: id.clone(),
            }
            .encode_to_vec();
            reconnect |= self.send(conn, rpc, bytes, &Origin::Janitor).await;
            self.ctx.pool().remove_pod(&id);
        }
        reconnect
    }

    /// Runs `phase` with `jobs` workers.
    pub async fn fuzz(self: &Arc<Self>, phase: Phase, jobs: usize) -> u64 {
        let next = Arc::new(AtomicU64::new(phase.only.unwrap_or(0)));
        let last = match phase.only {
            Some(only) => only + 1,
            None => phase.iterations.unwrap_or(u64::MAX),
        };
        let mut workers = Vec::new();
        for _ in 0..jobs.max(1) {
            let run = self.clone();
            let next = next.clone();
            let (seed, until) = (phase.seed, phase.until);
            workers.push(tokio::spawn(async move {
                let Some(mut conn) = run.connect().await else {
                    run.stop.store(true, Ordering::Relaxed);
                    return;
                };
                loop {
                    if run.stop.load(Ordering::Relaxed) || Instant::now() > until {
                        break;
                    }
                    let iter = next.fetch_add(1, Ordering::Relaxed);
                    if iter >= last {
                        break;
                    }
                    let mut reconnect = run.janitor(&conn).await;
                    let (rpc, bytes) = run.request(seed, iter);
                    reconnect |= run
                        .send(&conn, rpc, bytes, &Origin::Iteration { seed, iter })
                        .await;
                    if reconnect {
                        match run.connect().await {
                            Some(c) => conn = c,
                            None => {
                                run.stop.store(true, Ordering::Relaxed);
                                break;
                            }
                        }
                    }
                }
            }));
        }
        for worker in workers {
            let _ = worker.await;
        }
        next.load(Ordering::Relaxed).min(last) - phase.only.unwrap_or(0)
    }

    /// Sends every corpus file once, in order.
    pub async fn replay_corpus(&self) -> usize {
        let Some(mut conn) = self.connect().await else {
            return 0;
        };
        let mut sent = 0;
        for (name, files) in &self.corpus.by_rpc {
            let rpc = rpcs::by_name(name).expect("loaded by RPC name");
            for (path, bytes) in files {
                if self.stop.load(Ordering::Relaxed) {
                    return sent;
                }
                let mut rng = Rng::new(0xc0, sent as u64);
                let bytes = corpus::substitute(bytes, &self.ctx, &mut rng);
                if self
                    .send(&conn, rpc, bytes, &Origin::Corpus(path.clone()))
                    .await
                {
                    match self.connect().await {
                        Some(c) => conn = c,
                        None => return sent,
                    }
                }
                sent += 1;
            }
        }
        sent
    }
}

/// The cgroup parent of an accepted RunPodSandbox request when it is not what kubelet
/// sends with the cgroupfs driver: empty, or an absolute path of ordinary names.
fn odd_cgroup_parent(rpc: &Rpc, bytes: &[u8]) -> Option<String> {
    if rpc.name != "RunPodSandbox" {
        return None;
    }
    let parent = v1::RunPodSandboxRequest::decode(bytes)
        .ok()?
        .config?
        .linux?
        .cgroup_parent;
    let ordinary = |part: &str| {
        !part.is_empty()
            && part != "."
            && part != ".."
            && part.len() <= 255
            && part
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    };
    let fine = parent.is_empty()
        || parent
            .strip_prefix('/')
            .is_some_and(|rest| rest.split('/').all(ordinary));
    (!fine).then_some(parent)
}

/// The ID a request names in its field 1 (pod_sandbox_id or container_id in every RPC
/// that names one), if it is a plausible ID.
fn named_id(bytes: &[u8]) -> Option<String> {
    let fields = crate::wire::parse(bytes)?;
    fields.into_iter().find_map(|f| match f.value {
        crate::wire::Value::Bytes(b) if f.number == 1 && !b.is_empty() && b.len() <= 64 => {
            String::from_utf8(b).ok()
        }
        _ => None,
    })
}

/// Whether `bytes` is a PullImage of the registry's repository that does not exist.
fn pulls_missing_image(rpc: &Rpc, bytes: &[u8]) -> bool {
    rpc.name == "PullImage"
        && v1::PullImageRequest::decode(bytes).is_ok_and(|r| {
            let prefix = format!("{}/berth-fuzz/missing:", crate::harness::REGISTRY_ADDR);
            r.auth.is_none()
                && r.image.is_some_and(|i| {
                    i.image.strip_prefix(&prefix).is_some_and(|tag| {
                        tag.len() == 4 && tag.bytes().all(|b| b.is_ascii_hexdigit())
                    })
                })
        })
}

/// The shape of a request, for the report: size, decodability, longest string.
fn describe(rpc: &Rpc, bytes: &[u8], decodes: bool, rewritten: bool) -> String {
    let mut longest = 0;
    let mut controls = false;
    let mut invalid_utf8 = false;
    let mut largest: Option<u64> = None;
    visit(bytes, 0, &mut |value| match value {
        crate::wire::Value::Bytes(s) => {
            longest = longest.max(s.len());
            controls |= s.iter().any(|b| b.is_ascii_control() && *b != b'\t');
            invalid_utf8 |= std::str::from_utf8(s).is_err();
        }
        crate::wire::Value::Varint(v) => largest = Some(largest.unwrap_or(0).max(*v)),
        _ => {}
    });
    let largest = match largest {
        Some(v) if v > u64::from(u32::MAX) => format!(", an integer of {v:#x} ({})", v as i64),
        _ => String::new(),
    };
    format!(
        "{} {} bytes, {}{}; longest string {} bytes{}{}{largest}",
        rpc.name,
        bytes.len(),
        if decodes {
            "decodes"
        } else {
            "does not decode"
        },
        if rewritten {
            ", host paths contained"
        } else {
            ""
        },
        longest,
        if controls { ", control characters" } else { "" },
        if invalid_utf8 { ", invalid UTF-8" } else { "" },
    )
}

/// Calls `f` with every leaf value of a message (strings and integers, at any depth).
fn visit(bytes: &[u8], depth: usize, f: &mut dyn FnMut(&crate::wire::Value)) {
    let Some(fields) = crate::wire::parse(bytes) else {
        return;
    };
    for field in fields {
        match &field.value {
            crate::wire::Value::Bytes(b) => match crate::wire::parse_nested(b) {
                Some(_) if depth < 16 => visit(b, depth + 1, f),
                _ => f(&field.value),
            },
            other => f(other),
        }
    }
}

/// Pulls the busybox image and starts a pod with one running container: real IDs for the
/// first requests, and a check that the environment works at all.
pub async fn fixtures(run: &Run) -> Result<(), String> {
    let conn = run.connect().await.ok_or("cannot connect to berthd")?;
    let mut rng = Rng::new(0xf1c5, 0);
    let call = |name: &'static str, bytes: Vec<u8>| conn.ok(name, bytes, None);
    let image = run.ctx.busybox();
    let pulled = call(
        "PullImage",
        v1::PullImageRequest {
            image: Some(v1::ImageSpec {
                image: image.clone(),
                ..Default::default()
            }),
            ..Default::default()
        }
        .encode_to_vec(),
    )
    .await?;
    let image_ref = v1::PullImageResponse::decode(pulled)
        .map_err(|e| e.to_string())?
        .image_ref;
    let mut config = seeds::pod_config(&run.ctx, &mut rng, "fixture");
    // Its own network namespace and no port mapping: the fixture must come up. Each
    // container is PID 1 of its own PID namespace (SIGTERM does not end `sleep` there).
    config.port_mappings.clear();
    if let Some(ns) = config
        .linux
        .as_mut()
        .and_then(|l| l.security_context.as_mut())
        .and_then(|s| s.namespace_options.as_mut())
    {
        ns.network = v1::NamespaceMode::Pod as i32;
        ns.pid = v1::NamespaceMode::Container as i32;
    }
    let reply = call(
        "RunPodSandbox",
        v1::RunPodSandboxRequest {
            config: Some(config.clone()),
            runtime_handler: String::new(),
        }
        .encode_to_vec(),
    )
    .await?;
    let pod = v1::RunPodSandboxResponse::decode(reply)
        .map_err(|e| e.to_string())?
        .pod_sandbox_id;
    run.ctx.pool().add_pod(pod.clone(), config.clone(), true);
    let mut container = seeds::container_config(&run.ctx, &mut rng);
    container.command = vec!["sleep".into(), "3600".into()];
    container.stdin = false;
    container.tty = false;
    let reply = call(
        "CreateContainer",
        v1::CreateContainerRequest {
            pod_sandbox_id: pod.clone(),
            config: Some(container),
            sandbox_config: Some(config),
        }
        .encode_to_vec(),
    )
    .await?;
    let id = v1::CreateContainerResponse::decode(reply)
        .map_err(|e| e.to_string())?
        .container_id;
    run.ctx.pool().add_container(id.clone(), pod, true);
    call(
        "StartContainer",
        v1::StartContainerRequest {
            container_id: id.clone(),
        }
        .encode_to_vec(),
    )
    .await?;
    let mut pool = run.ctx.pool();
    pool.mark_started(&id);
    pool.add_image(image_ref);
    pool.add_image(image);
    Ok(())
}

/// Probes what containment hides from the fuzzed requests, safely: a container whose log
/// path leaves its pod's log directory (`../`, or absolute), both pointing below the
/// fuzzer's host root. Returns a line per probe; a log written outside is a finding.
pub async fn probe_log_paths(run: &Run) -> Vec<String> {
    let Some(conn) = run.connect().await else {
        return vec!["log-path probe: cannot connect".to_owned()];
    };
    let call = |name: &'static str, bytes: Vec<u8>| conn.ok(name, bytes, None);
    let base = run.ctx.host_root.join("logs").join("probe");
    let log_dir = base.join("pod");
    let mut rng = Rng::new(0x10c, 0);
    let mut config = seeds::pod_config(&run.ctx, &mut rng, "log-probe");
    config.log_directory = log_dir.display().to_string();
    config.port_mappings.clear();
    let request = v1::RunPodSandboxRequest {
        config: Some(config.clone()),
        runtime_handler: String::new(),
    };
    let pod = match call("RunPodSandbox", request.encode_to_vec()).await {
        Ok(reply) => v1::RunPodSandboxResponse::decode(reply)
            .map(|r| r.pod_sandbox_id)
            .unwrap_or_default(),
        Err(e) => return vec![format!("log-path probe: {e}")],
    };
    let mut lines = Vec::new();
    let absolute = base.join("absolute.log");
    for (log_path, lands) in [
        ("../escaped.log".to_owned(), base.join("escaped.log")),
        (absolute.display().to_string(), absolute.clone()),
    ] {
        let mut container = seeds::container_config(&run.ctx, &mut rng);
        container.mounts.clear();
        container.command = vec!["sh".into(), "-c".into(), "echo probe; sleep 3600".into()];
        container.log_path = log_path.clone();
        let request = v1::CreateContainerRequest {
            pod_sandbox_id: pod.clone(),
            config: Some(container),
            sandbox_config: Some(config.clone()),
        };
        let outcome = match call("CreateContainer", request.encode_to_vec()).await {
            Ok(_) => "accepted".to_owned(),
            Err(e) => e,
        };
        let written = lands.exists();
        lines.push(format!(
            "log_path {log_path:?} in log directory {}: {outcome}; file written at {}: {written}",
            log_dir.display(),
            lands.display()
        ));
        if written {
            run.stats.finding(NewFinding {
                severity: Severity::Note,
                kind: "log-path-escape",
                rpc: "CreateContainer",
                key: Some(log_path.starts_with('/').to_string()),
                what: &format!(
                    "log_path {log_path:?} was accepted and the container log written outside the pod's log directory {}, at {}",
                    log_dir.display(),
                    lands.display()
                ),
                input: "CreateContainer with a log_path leaving the log directory".to_owned(),
                origin: &Origin::Harness,
                bytes: Some(&request.encode_to_vec()),
                out: &run.out,
            });
        }
    }
    let remove = v1::RemovePodSandboxRequest {
        pod_sandbox_id: pod,
    };
    let _ = call(
        "StopPodSandbox",
        v1::StopPodSandboxRequest {
            pod_sandbox_id: remove.pod_sandbox_id.clone(),
        }
        .encode_to_vec(),
    )
    .await;
    let _ = call("RemovePodSandbox", remove.encode_to_vec()).await;
    lines
}

/// Deadline of one cleanup call.
const CLEANUP_CALL: Duration = Duration::from_secs(20);
/// Time the whole cleanup may take; what is still there after it is reported.
const CLEANUP_BUDGET: Duration = Duration::from_secs(150);

/// Removes every container, pod and image through the CRI; what could not be removed.
/// An object whose removal got no answer in time is not tried again (it is wedged).
pub async fn remove_everything(run: &Run) -> Vec<String> {
    let mut problems = Vec::new();
    let Some(conn) = run.connect().await else {
        return vec!["cannot connect to berthd for the cleanup".to_owned()];
    };
    let until = Instant::now() + CLEANUP_BUDGET;
    let unary = |name: &'static str, bytes: Vec<u8>| conn.ok(name, bytes, Some(CLEANUP_CALL));
    let mut wedged: std::collections::BTreeSet<String> = Default::default();
    for round in 0..3 {
        let mut left = 0;
        if let Ok(reply) = unary(
            "ListContainers",
            v1::ListContainersRequest::default().encode_to_vec(),
        )
        .await
        {
            let list = v1::ListContainersResponse::decode(reply).unwrap_or_default();
            left += list.containers.len();
            for c in list.containers {
                run.ctx.pool().all_ids.insert(c.id.clone());
                if wedged.contains(&c.id) || Instant::now() > until {
                    continue;
                }
                let req = v1::RemoveContainerRequest {
                    container_id: c.id.clone(),
                };
                if let Err(e) = unary("RemoveContainer", req.encode_to_vec()).await {
                    problems.push(format!("container {}: {e}", c.id));
                    wedged.insert(c.id);
                }
            }
        }
        if let Ok(reply) = unary(
            "ListPodSandbox",
            v1::ListPodSandboxRequest::default().encode_to_vec(),
        )
        .await
        {
            let list = v1::ListPodSandboxResponse::decode(reply).unwrap_or_default();
            left += list.items.len();
            for p in list.items {
                run.ctx.pool().all_ids.insert(p.id.clone());
                if wedged.contains(&p.id) || Instant::now() > until {
                    continue;
                }
                let stop = v1::StopPodSandboxRequest {
                    pod_sandbox_id: p.id.clone(),
                };
                let remove = v1::RemovePodSandboxRequest {
                    pod_sandbox_id: p.id.clone(),
                };
                let result = match unary("StopPodSandbox", stop.encode_to_vec()).await {
                    Ok(_) => unary("RemovePodSandbox", remove.encode_to_vec()).await,
                    Err(e) => Err(e),
                };
                if let Err(e) = result {
                    problems.push(format!("pod {}: {e}", p.id));
                    wedged.insert(p.id);
                }
            }
        }
        if let Ok(reply) = unary(
            "ListImages",
            v1::ListImagesRequest::default().encode_to_vec(),
        )
        .await
        {
            let list = v1::ListImagesResponse::decode(reply).unwrap_or_default();
            left += list.images.len();
            for image in list.images {
                if wedged.contains(&image.id) || Instant::now() > until {
                    continue;
                }
                let req = v1::RemoveImageRequest {
                    image: Some(v1::ImageSpec {
                        image: image.id.clone(),
                        ..Default::default()
                    }),
                };
                if let Err(e) = unary("RemoveImage", req.encode_to_vec()).await {
                    problems.push(format!("image {}: {e}", image.id));
                    wedged.insert(image.id);
                }
            }
        }
        if left == 0 {
            return problems;
        }
        if round == 2 || Instant::now() > until {
            problems.push(format!(
                "{left} containers, pods or images still listed after the cleanup"
            ));
            break;
        }
    }
    problems
}
