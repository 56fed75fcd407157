//! The gRPC client of `bench/containers.sh`: talks to a berthd over its CRI socket with the
//! generated client, no crictl in between.
//!
//! ```text
//! podstart start  --socket S [--image I] [--runs N] [--log-dir D]
//!     N times: RunPodSandbox + CreateContainer + StartContainer of a pod with one container
//!     (`sleep 1000000`), timed together; then, outside the clock, StopPodSandbox +
//!     RemovePodSandbox. Prints each run (and its three parts) and p50/p90 (nearest rank).
//! podstart idle   --socket S [--image I] [--count N] [--pods P] [--log-dir D]
//!     P pods (default 1) with N idle containers each (`sleep 1000000`), left running.
//!     Prints `pod <id>` and then `container <id>` per container.
//! podstart list   --socket S [--runs N]
//!     N calls each of ListContainers (no filter), ListContainers filtered by one pod's ID
//!     and ListPodSandbox over one connection, timed from the client (the round trip over
//!     the unix socket bounds the server's time from above). Prints p50/p99/max.
//! podstart remove --socket S [--pod ID]
//!     StopPodSandbox + RemovePodSandbox of that pod, or of every pod the daemon lists
//!     (their containers go with them).
//! ```
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
}

fn usage() -> ! {
    eprintln!(
        "usage: podstart start  --socket S [--image I] [--runs N] [--log-dir D]\n       \
         podstart idle   --socket S [--image I] [--count N] [--pods P] [--log-dir D]\n       \
         podstart list   --socket S [--runs N]\n       \
         podstart remove --socket S [--pod ID]"
    );
    std::process::exit(2)
}

fn parse_args() -> Args {
    let mut argv = std::env::args().skip(1);
    let mode = argv.next().unwrap_or_else(|| usage());
    if !matches!(mode.as_str(), "start" | "idle" | "list" | "remove") {
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
    };
    while let Some(flag) = argv.next() {
        let value = argv.next().unwrap_or_else(|| usage());
        match flag.as_str() {
            "--socket" => args.socket = value.into(),
            "--image" => args.image = value,
            "--runs" => args.runs = value.parse().unwrap_or_else(|_| usage()),
            "--count" => args.count = value.parse().unwrap_or_else(|_| usage()),
            "--pods" => args.pods = value.parse().unwrap_or_else(|_| usage()),
            "--log-dir" => args.log_dir = Some(value.into()),
            "--pod" => args.pod = Some(value),
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

async fn start_runs(args: &Args, rt: &mut RuntimeServiceClient<Channel>) -> Result<(), Error> {
    println!(
        "{:<5} {:>9} {:>9} {:>9} {:>9}  pod",
        "run", "total ms", "runp", "create", "start"
    );
    let mut totals = Vec::with_capacity(args.runs);
    for run in 1..=args.runs {
        let name = format!("podstart-{run}");
        let pod_cfg = pod_config(&name, args.log_dir.as_ref());
        let ctr_cfg = container_config("app", &args.image);

        let begin = Instant::now();
        let pod = rt
            .run_pod_sandbox(v1::RunPodSandboxRequest {
                config: Some(pod_cfg.clone()),
                runtime_handler: String::new(),
            })
            .await?
            .into_inner()
            .pod_sandbox_id;
        let runp = ms(begin);
        let at = Instant::now();
        let created = rt
            .create_container(v1::CreateContainerRequest {
                pod_sandbox_id: pod.clone(),
                config: Some(ctr_cfg),
                sandbox_config: Some(pod_cfg),
            })
            .await;
        let id = match created {
            Ok(r) => r.into_inner().container_id,
            Err(status) => {
                let _ = remove_pod(rt, &pod).await;
                return Err(status.into());
            }
        };
        let create = ms(at);
        let at = Instant::now();
        if let Err(status) = rt
            .start_container(v1::StartContainerRequest {
                container_id: id.clone(),
            })
            .await
        {
            let _ = remove_pod(rt, &pod).await;
            return Err(status.into());
        }
        let start = ms(at);
        let total = ms(begin);
        totals.push(total);
        println!(
            "{run:<5} {total:>9.1} {runp:>9.1} {create:>9.1} {start:>9.1}  {}",
            &pod[..13]
        );
        // Not timed: back to an empty node.
        remove_pod(rt, &pod).await?;
    }
    let mut sorted = totals.clone();
    sorted.sort_by(f64::total_cmp);
    let mean = totals.iter().sum::<f64>() / totals.len() as f64;
    println!(
        "\nRunPodSandbox + CreateContainer + StartContainer over {} runs: p50 {:.1} ms, p90 {:.1} ms (min {:.1}, max {:.1}, mean {:.1})",
        totals.len(),
        percentile(&sorted, 50),
        percentile(&sorted, 90),
        sorted[0],
        sorted[sorted.len() - 1],
        mean
    );
    Ok(())
}

async fn idle(args: &Args, rt: &mut RuntimeServiceClient<Channel>) -> Result<(), Error> {
    for p in 1..=args.pods {
        let name = if args.pods == 1 {
            "idle".to_owned()
        } else {
            format!("idle-{p}")
        };
        let pod_cfg = pod_config(&name, args.log_dir.as_ref());
        let pod = rt
            .run_pod_sandbox(v1::RunPodSandboxRequest {
                config: Some(pod_cfg.clone()),
                runtime_handler: String::new(),
            })
            .await?
            .into_inner()
            .pod_sandbox_id;
        println!("pod {pod}");
        for n in 1..=args.count {
            let id = rt
                .create_container(v1::CreateContainerRequest {
                    pod_sandbox_id: pod.clone(),
                    config: Some(container_config(&format!("idle-{n}"), &args.image)),
                    sandbox_config: Some(pod_cfg.clone()),
                })
                .await?
                .into_inner()
                .container_id;
            rt.start_container(v1::StartContainerRequest {
                container_id: id.clone(),
            })
            .await?;
            println!("container {id}");
        }
    }
    Ok(())
}

/// Times `runs` calls of `call`; prints the percentiles with the number of items listed.
async fn time_list<F, Fut>(label: &str, runs: usize, mut call: F) -> Result<(), Error>
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
    time_list("ListContainers", args.runs, || {
        let mut rt = rt.clone();
        async move {
            let r = rt
                .list_containers(v1::ListContainersRequest { filter: None })
                .await?;
            Ok(r.into_inner().containers.len())
        }
    })
    .await?;
    time_list("ListContainers (one pod's ID)", args.runs, || {
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
    })
    .await?;
    time_list("ListPodSandbox", args.runs, || {
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
        "idle" => {
            pull(channel, &args.image).await?;
            idle(&args, &mut rt).await
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
