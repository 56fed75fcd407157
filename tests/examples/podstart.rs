//! The gRPC client of `bench/containers.sh` and `bench/compare.sh`: talks to any CRI
//! runtime (berthd, containerd) over its socket with the generated client, no crictl in
//! between.
//!
//! ```text
//! podstart start  --socket S [--image I] [--runs N] [--log-dir D] [--handler H]
//!     N times: RunPodSandbox + CreateContainer + StartContainer of a pod with one container
//!     (`sleep 1000000`), timed together and each. Then the pod goes, each step timed:
//!     odd runs call StopPodSandbox + RemovePodSandbox with the container still running
//!     ("teardown"); even runs first call StopContainer (timeout 0) and RemoveContainer,
//!     then StopPodSandbox + RemovePodSandbox of the empty pod ("teardown-empty").
//!     Prints each run and p50/p90 (nearest rank).
//! podstart pull   --socket S --image I [--runs N] [--cold]
//!     N timed PullImage calls; with --cold each is preceded (outside the clock) by a
//!     RemoveImage, so every pull fetches and unpacks the whole image again.
//! podstart idle   --socket S [--image I] [--count N] [--pods P] [--first K] [--log-dir D]
//!     P pods (default 1, named idle-K.. from K, default 1) with N idle containers each
//!     (`sleep 1000000`), left running. Prints `pod <id>` and then `container <id>` per
//!     container.
//! podstart fill   --socket S [--image I] --count N [--log-dir D]
//!     Adds idle containers to the ready pods, one pod after the other, until the runtime
//!     lists N containers.
//! podstart list   --socket S [--runs N]
//!     N calls each of ListContainers (no filter), ListContainers filtered by one pod's ID
//!     and ListPodSandbox over one connection, timed from the client (the round trip over
//!     the unix socket bounds the server's time from above). Prints p50/p99/max.
//! podstart remove --socket S [--pod ID]
//!     StopPodSandbox + RemovePodSandbox of that pod, or of every pod the daemon lists
//!     (their containers go with them).
//! ```
//!
//! Every timed mode ends with lines `result <name> <p50> <p90> <p99> <max> <count>`
//! (milliseconds), which the bench scripts read.
//!
//! The image (default `registry.k8s.io/e2e-test-images/busybox:1.29-2`) is pulled once,
//! before anything is timed. Pods use `namespace_options.pid = CONTAINER`, as kubelet does
//! unless a pod shares its process namespace.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Instant;

use cri_api::v1;
use cri_api::{ImageServiceClient, RuntimeServiceClient};
use tonic::transport::Channel;

const DEFAULT_IMAGE: &str = "registry.k8s.io/e2e-test-images/busybox:1.29-2";

type Error = Box<dyn std::error::Error>;

struct Args {
    mode: String,
    socket: PathBuf,
    image: String,
    runs: usize,
    count: usize,
    pods: usize,
    log_dir: Option<PathBuf>,
    pod: Option<String>,
    handler: String,
    first: usize,
    cold: bool,
}

fn usage() -> ! {
    eprintln!(
        "usage: podstart start  --socket S [--image I] [--runs N] [--log-dir D] [--handler H]\n       \
         podstart pull   --socket S --image I [--runs N] [--cold]\n       \
         podstart idle   --socket S [--image I] [--count N] [--pods P] [--first K] [--log-dir D]\n       \
         podstart fill   --socket S [--image I] --count N [--log-dir D]\n       \
         podstart list   --socket S [--runs N]\n       \
         podstart remove --socket S [--pod ID]"
    );
    std::process::exit(2)
}

fn parse_args() -> Args {
    let mut argv = std::env::args().skip(1);
    let mode = argv.next().unwrap_or_else(|| usage());
    if !matches!(
        mode.as_str(),
        "start" | "pull" | "idle" | "fill" | "list" | "remove"
    ) {
        usage();
    }
    let mut args = Args {
        mode,
        socket: PathBuf::new(),
        image: DEFAULT_IMAGE.to_owned(),
        runs: 20,
        count: 20,
        pods: 1,
        log_dir: None,
        pod: None,
        handler: String::new(),
        first: 1,
        cold: false,
    };
    while let Some(flag) = argv.next() {
        if flag == "--cold" {
            args.cold = true;
            continue;
        }
        let value = argv.next().unwrap_or_else(|| usage());
        match flag.as_str() {
            "--socket" => args.socket = value.into(),
            "--image" => args.image = value,
            "--runs" => args.runs = value.parse().unwrap_or_else(|_| usage()),
            "--count" => args.count = value.parse().unwrap_or_else(|_| usage()),
            "--pods" => args.pods = value.parse().unwrap_or_else(|_| usage()),
            "--log-dir" => args.log_dir = Some(value.into()),
            "--pod" => args.pod = Some(value),
            "--handler" => args.handler = value,
            "--first" => args.first = value.parse().unwrap_or_else(|_| usage()),
            _ => usage(),
        }
    }
    if args.socket.as_os_str().is_empty() || args.runs == 0 || args.count == 0 || args.pods == 0 {
        usage();
    }
    args
}

fn pid_container() -> v1::NamespaceOption {
    v1::NamespaceOption {
        pid: v1::NamespaceMode::Container as i32,
        ..Default::default()
    }
}

fn pod_config(name: &str, log_dir: Option<&PathBuf>) -> v1::PodSandboxConfig {
    let log_directory = log_dir
        .map(|d| {
            let dir = d.join(name);
            std::fs::create_dir_all(&dir).expect("create the pod log directory");
            dir.display().to_string()
        })
        .unwrap_or_default();
    v1::PodSandboxConfig {
        metadata: Some(v1::PodSandboxMetadata {
            name: name.to_owned(),
            uid: format!("uid-{name}"),
            namespace: "berth-bench".to_owned(),
            attempt: 0,
        }),
        hostname: name.to_owned(),
        log_directory,
        linux: Some(v1::LinuxPodSandboxConfig {
            security_context: Some(v1::LinuxSandboxSecurityContext {
                namespace_options: Some(pid_container()),
                ..Default::default()
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn container_config(name: &str, image: &str) -> v1::ContainerConfig {
    v1::ContainerConfig {
        metadata: Some(v1::ContainerMetadata {
            name: name.to_owned(),
            attempt: 0,
        }),
        image: Some(v1::ImageSpec {
            image: image.to_owned(),
            ..Default::default()
        }),
        command: vec!["sleep".into(), "1000000".into()],
        log_path: format!("{name}.log"),
        labels: HashMap::from([("bench".to_owned(), "containers".to_owned())]),
        linux: Some(v1::LinuxContainerConfig {
            resources: None,
            security_context: Some(v1::LinuxContainerSecurityContext {
                namespace_options: Some(pid_container()),
                ..Default::default()
            }),
        }),
        ..Default::default()
    }
}

async fn pull(channel: Channel, image: &str) -> Result<(), Error> {
    ImageServiceClient::new(channel)
        .pull_image(v1::PullImageRequest {
            image: Some(v1::ImageSpec {
                image: image.to_owned(),
                ..Default::default()
            }),
            auth: None,
            sandbox_config: None,
        })
        .await?;
    Ok(())
}

async fn remove_pod(rt: &mut RuntimeServiceClient<Channel>, pod: &str) -> Result<(), Error> {
    rt.stop_pod_sandbox(v1::StopPodSandboxRequest {
        pod_sandbox_id: pod.to_owned(),
    })
    .await?;
    rt.remove_pod_sandbox(v1::RemovePodSandboxRequest {
        pod_sandbox_id: pod.to_owned(),
    })
    .await?;
    Ok(())
}

/// Nearest-rank percentile of sorted `values`.
fn percentile(sorted: &[f64], pct: usize) -> f64 {
    let n = sorted.len();
    let rank = (pct * n).div_ceil(100).clamp(1, n);
    sorted[rank - 1]
}

fn ms(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1000.0
}

/// Prints `result <name> <p50> <p90> <p99> <max> <count>` for the bench scripts.
fn result_line(name: &str, values: &[f64]) {
    if values.is_empty() {
        return;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    println!(
        "result {name} {:.3} {:.3} {:.3} {:.3} {}",
        percentile(&sorted, 50),
        percentile(&sorted, 90),
        percentile(&sorted, 99),
        sorted[sorted.len() - 1],
        sorted.len()
    );
}

/// Times one call, in milliseconds.
async fn timed<T, Fut>(call: Fut) -> Result<(T, f64), Error>
where
    Fut: std::future::Future<Output = Result<T, tonic::Status>>,
{
    let at = Instant::now();
    let value = call.await?;
    Ok((value, ms(at)))
}

#[derive(Default)]
struct StartTimes {
    total: Vec<f64>,
    runp: Vec<f64>,
    create: Vec<f64>,
    start: Vec<f64>,
    teardown: Vec<f64>,
    stop_container: Vec<f64>,
    remove_container: Vec<f64>,
    teardown_empty: Vec<f64>,
}

/// RunPodSandbox + CreateContainer + StartContainer of one pod, each timed; the pod is
/// removed again if a step after RunPodSandbox fails.
async fn start_one(
    args: &Args,
    rt: &mut RuntimeServiceClient<Channel>,
    name: &str,
    t: &mut StartTimes,
) -> Result<(String, String), Error> {
    let pod_cfg = pod_config(name, args.log_dir.as_ref());
    let ctr_cfg = container_config("app", &args.image);
    let begin = Instant::now();
    let (pod, runp) = timed(rt.run_pod_sandbox(v1::RunPodSandboxRequest {
        config: Some(pod_cfg.clone()),
        runtime_handler: args.handler.clone(),
    }))
    .await?;
    let pod = pod.into_inner().pod_sandbox_id;
    let created = timed(rt.create_container(v1::CreateContainerRequest {
        pod_sandbox_id: pod.clone(),
        config: Some(ctr_cfg),
        sandbox_config: Some(pod_cfg),
    }))
    .await;
    let (id, create) = match created {
        Ok((r, create)) => (r.into_inner().container_id, create),
        Err(e) => {
            let _ = remove_pod(rt, &pod).await;
            return Err(e);
        }
    };
    let started = timed(rt.start_container(v1::StartContainerRequest {
        container_id: id.clone(),
    }))
    .await;
    let start = match started {
        Ok((_, start)) => start,
        Err(e) => {
            let _ = remove_pod(rt, &pod).await;
            return Err(e);
        }
    };
    t.total.push(ms(begin));
    t.runp.push(runp);
    t.create.push(create);
    t.start.push(start);
    Ok((pod, id))
}

async fn start_runs(args: &Args, rt: &mut RuntimeServiceClient<Channel>) -> Result<(), Error> {
    println!(
        "{:<5} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}  pod",
        "run", "total ms", "runp", "create", "start", "stop ctr", "rm ctr", "teardown"
    );
    let mut t = StartTimes::default();
    for run in 1..=args.runs {
        let (pod, id) = start_one(args, rt, &format!("podstart-{run}"), &mut t).await?;
        let (mut stop_ctr, mut rm_ctr) = (f64::NAN, f64::NAN);
        if run % 2 == 0 {
            // kubelet's order: the containers are stopped (and here removed) first.
            stop_ctr = timed(rt.stop_container(v1::StopContainerRequest {
                container_id: id.clone(),
                timeout: 0,
            }))
            .await?
            .1;
            rm_ctr = timed(rt.remove_container(v1::RemoveContainerRequest {
                container_id: id.clone(),
            }))
            .await?
            .1;
            t.stop_container.push(stop_ctr);
            t.remove_container.push(rm_ctr);
        }
        let at = Instant::now();
        remove_pod(rt, &pod).await?;
        let teardown = ms(at);
        if run % 2 == 0 {
            t.teardown_empty.push(teardown);
        } else {
            t.teardown.push(teardown);
        }
        let n = t.total.len() - 1;
        println!(
            "{run:<5} {:>9.1} {:>9.1} {:>9.1} {:>9.1} {stop_ctr:>9.1} {rm_ctr:>9.1} {teardown:>9.1}  {}",
            t.total[n],
            t.runp[n],
            t.create[n],
            t.start[n],
            &pod[..13.min(pod.len())]
        );
    }
    let mut sorted = t.total.clone();
    sorted.sort_by(f64::total_cmp);
    let mean = t.total.iter().sum::<f64>() / t.total.len() as f64;
    println!(
        "\nRunPodSandbox + CreateContainer + StartContainer over {} runs: p50 {:.1} ms, p90 {:.1} ms (min {:.1}, max {:.1}, mean {:.1})",
        t.total.len(),
        percentile(&sorted, 50),
        percentile(&sorted, 90),
        sorted[0],
        sorted[sorted.len() - 1],
        mean
    );
    result_line("podstart", &t.total);
    result_line("runp", &t.runp);
    result_line("create", &t.create);
    result_line("start", &t.start);
    result_line("teardown", &t.teardown);
    result_line("stop_container", &t.stop_container);
    result_line("remove_container", &t.remove_container);
    result_line("teardown_empty", &t.teardown_empty);
    Ok(())
}

/// Timed PullImage calls; with `--cold` a RemoveImage (not timed) before each.
async fn pull_runs(args: &Args, channel: Channel) -> Result<(), Error> {
    let mut images = ImageServiceClient::new(channel);
    let spec = v1::ImageSpec {
        image: args.image.clone(),
        ..Default::default()
    };
    let mut times = Vec::with_capacity(args.runs);
    for run in 1..=args.runs {
        if args.cold {
            let status = images
                .image_status(v1::ImageStatusRequest {
                    image: Some(spec.clone()),
                    verbose: false,
                })
                .await?
                .into_inner();
            if let Some(image) = status.image {
                images
                    .remove_image(v1::RemoveImageRequest {
                        image: Some(v1::ImageSpec {
                            image: image.id,
                            ..Default::default()
                        }),
                    })
                    .await?;
            }
        }
        let (reply, took) = timed(images.pull_image(v1::PullImageRequest {
            image: Some(spec.clone()),
            auth: None,
            sandbox_config: None,
        }))
        .await?;
        println!("pull {run} {took:.1} ms {}", reply.into_inner().image_ref);
        times.push(took);
    }
    result_line("pull", &times);
    Ok(())
}

async fn idle(args: &Args, rt: &mut RuntimeServiceClient<Channel>) -> Result<(), Error> {
    for p in args.first..args.first + args.pods {
        let name = if args.pods == 1 && args.first == 1 {
            "idle".to_owned()
        } else {
            format!("idle-{p}")
        };
        let pod_cfg = pod_config(&name, args.log_dir.as_ref());
        let pod = rt
            .run_pod_sandbox(v1::RunPodSandboxRequest {
                config: Some(pod_cfg.clone()),
                runtime_handler: args.handler.clone(),
            })
            .await?
            .into_inner()
            .pod_sandbox_id;
        println!("pod {pod}");
        for n in 1..=args.count {
            let id = create_started(rt, &pod, &pod_cfg, &format!("idle-{n}"), &args.image).await?;
            println!("container {id}");
        }
    }
    Ok(())
}

/// CreateContainer + StartContainer of an idle container in `pod`.
async fn create_started(
    rt: &mut RuntimeServiceClient<Channel>,
    pod: &str,
    pod_cfg: &v1::PodSandboxConfig,
    name: &str,
    image: &str,
) -> Result<String, Error> {
    let id = rt
        .create_container(v1::CreateContainerRequest {
            pod_sandbox_id: pod.to_owned(),
            config: Some(container_config(name, image)),
            sandbox_config: Some(pod_cfg.clone()),
        })
        .await?
        .into_inner()
        .container_id;
    rt.start_container(v1::StartContainerRequest {
        container_id: id.clone(),
    })
    .await?;
    Ok(id)
}

/// Adds idle containers to the ready pods, round robin, until `count` containers are listed.
async fn fill(args: &Args, rt: &mut RuntimeServiceClient<Channel>) -> Result<(), Error> {
    let pods: Vec<v1::PodSandbox> = rt
        .list_pod_sandbox(v1::ListPodSandboxRequest { filter: None })
        .await?
        .into_inner()
        .items
        .into_iter()
        .filter(|p| p.state == v1::PodSandboxState::SandboxReady as i32)
        .collect();
    if pods.is_empty() {
        return Err("fill: no ready pod to add containers to".into());
    }
    let mut have = rt
        .list_containers(v1::ListContainersRequest { filter: None })
        .await?
        .into_inner()
        .containers
        .len();
    let mut n = 0;
    while have < args.count {
        let pod = &pods[n % pods.len()];
        let name = pod
            .metadata
            .as_ref()
            .map(|m| m.name.clone())
            .unwrap_or_default();
        let pod_cfg = pod_config(&name, args.log_dir.as_ref());
        create_started(rt, &pod.id, &pod_cfg, &format!("fill-{n}"), &args.image).await?;
        n += 1;
        have += 1;
    }
    println!("containers {have} ({n} added)");
    Ok(())
}

/// Times `runs` calls of `call`; prints the percentiles with the number of items listed.
async fn time_list<F, Fut>(label: &str, key: &str, runs: usize, mut call: F) -> Result<(), Error>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<usize, tonic::Status>>,
{
    let mut times = Vec::with_capacity(runs);
    let mut items = 0;
    for _ in 0..runs {
        let at = Instant::now();
        items = call().await?;
        times.push(ms(at));
    }
    times.sort_by(f64::total_cmp);
    println!(
        "{label:<40} {items:>5} items  p50 {:.3} ms  p99 {:.3} ms  max {:.3} ms  ({runs} calls)",
        percentile(&times, 50),
        percentile(&times, 99),
        times[times.len() - 1]
    );
    result_line(key, &times);
    Ok(())
}

/// What the unfiltered ListContainers reply costs apart from the call: its size, and
/// prost's encoding and decoding of it on one thread (p50 of 200 each), for splitting the
/// round trip into the server's handler, the codec and the transport.
async fn reply_costs(rt: &RuntimeServiceClient<Channel>) -> Result<(), Error> {
    use prost::Message as _;
    let reply = rt
        .clone()
        .list_containers(v1::ListContainersRequest { filter: None })
        .await?
        .into_inner();
    let bytes = reply.encode_to_vec();
    let p50 = |mut f: Box<dyn FnMut()>| {
        let mut times: Vec<f64> = (0..200)
            .map(|_| {
                let at = Instant::now();
                f();
                ms(at)
            })
            .collect();
        times.sort_by(f64::total_cmp);
        percentile(&times, 50)
    };
    let encode = p50(Box::new(|| {
        std::hint::black_box(reply.encode_to_vec());
    }));
    let decode = p50(Box::new(|| {
        let decoded = v1::ListContainersResponse::decode(bytes.as_slice());
        std::hint::black_box(decoded.map(|r| r.containers.len()).unwrap_or(0));
    }));
    println!(
        "ListContainers reply: {} items, {} bytes; prost encode p50 {encode:.3} ms, decode p50 {decode:.3} ms",
        reply.containers.len(),
        bytes.len()
    );
    println!("result list_reply_bytes {} 0 0 0 1", bytes.len());
    println!("result list_encode {encode:.3} 0 0 0 200");
    println!("result list_decode {decode:.3} 0 0 0 200");
    Ok(())
}

async fn list(args: &Args, rt: &RuntimeServiceClient<Channel>) -> Result<(), Error> {
    let pods = rt
        .clone()
        .list_pod_sandbox(v1::ListPodSandboxRequest { filter: None })
        .await?
        .into_inner()
        .items;
    let one_pod = pods.first().map(|p| p.id.clone()).unwrap_or_default();
    time_list("ListContainers", "list_containers", args.runs, || {
        let mut rt = rt.clone();
        async move {
            let r = rt
                .list_containers(v1::ListContainersRequest { filter: None })
                .await?;
            Ok(r.into_inner().containers.len())
        }
    })
    .await?;
    reply_costs(rt).await?;
    time_list(
        "ListContainers (one pod's ID)",
        "list_containers_pod",
        args.runs,
        || {
            let mut rt = rt.clone();
            let filter = v1::ContainerFilter {
                pod_sandbox_id: one_pod.clone(),
                ..Default::default()
            };
            async move {
                let r = rt
                    .list_containers(v1::ListContainersRequest {
                        filter: Some(filter),
                    })
                    .await?;
                Ok(r.into_inner().containers.len())
            }
        },
    )
    .await?;
    time_list("ListPodSandbox", "list_pods", args.runs, || {
        let mut rt = rt.clone();
        async move {
            let r = rt
                .list_pod_sandbox(v1::ListPodSandboxRequest { filter: None })
                .await?;
            Ok(r.into_inner().items.len())
        }
    })
    .await
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    let args = parse_args();
    let channel = berth_integration::connect(&args.socket).await;
    let mut rt = RuntimeServiceClient::new(channel.clone());
    match args.mode.as_str() {
        "start" => {
            pull(channel, &args.image).await?;
            start_runs(&args, &mut rt).await
        }
        "pull" => pull_runs(&args, channel).await,
        "idle" => {
            pull(channel, &args.image).await?;
            idle(&args, &mut rt).await
        }
        "fill" => {
            pull(channel, &args.image).await?;
            fill(&args, &mut rt).await
        }
        "list" => list(&args, &rt).await,
        _ => {
            let pods = match args.pod.clone() {
                Some(pod) => vec![pod],
                None => rt
                    .list_pod_sandbox(v1::ListPodSandboxRequest { filter: None })
                    .await?
                    .into_inner()
                    .items
                    .into_iter()
                    .map(|p| p.id)
                    .collect(),
            };
            for pod in pods {
                remove_pod(&mut rt, &pod).await?;
                println!("removed pod {pod}");
            }
            Ok(())
        }
    }
}
