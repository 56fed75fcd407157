//! Streaming sessions held by clients, against a real berthd (root, the shared test registry
//! and crictl, as tests/run.sh arranges; otherwise the test prints a note and passes, or
//! fails when `BERTH_REQUIRE_REGISTRY=1`).
//!
//! A client floods Exec with 64 KiB commands and never connects to the URLs: past
//! `stream.max_pending_bytes` (the default, 64 MiB) berthd answers RESOURCE_EXHAUSTED naming
//! the limit, then small requests fill `stream.max_pending_sessions` (the default, 1024) and
//! are refused naming that; a single command over 2 MiB is INVALID_ARGUMENT on `cmd`. After
//! the URLs expire (a 10 s `token_ttl_seconds` here) a normal exec works again and berthd's
//! RSS is back within [`RSS_SLACK`] of its baseline; twice over, so nothing accumulates.
//! The RSS figures are printed.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use berth_integration::crictl::{self, crictl, ok};
use berth_integration::Layout;
use cri_api::v1::ExecRequest;
use cri_api::RuntimeServiceClient;
use tonic::Code;

const BUSYBOX: &str = "registry.k8s.io/e2e-test-images/busybox:1.29-2";
/// Network slot of this test in its binary (see `TestNet`).
const SLOT: u8 = 0;
/// How long an issued URL stays valid in this test's berthd.
const TTL: Duration = Duration::from_secs(10);
/// Exec requests in the flood, and the size of each one's command.
const FLOOD: usize = 2000;
const COMMAND_BYTES: usize = 64 << 10;
/// The defaults of config/berth.toml this test runs under.
const MAX_PENDING_BYTES: u64 = 64 << 20;
const MAX_PENDING_SESSIONS: usize = 1024;
/// How far above its baseline berthd's RSS may stay once the URLs expired: the flood
/// passed 128 MiB of commands through it and held 64 MiB at the peak.
const RSS_SLACK: u64 = 8 << 20;

/// VmRSS of `pid`, in bytes.
fn rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kib: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/<pid>/status");
    kib << 10
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / f64::from(1 << 20))
}

/// Samples the RSS of `pid` every 20 ms until dropped; the highest value seen.
struct PeakSampler {
    stop: Arc<AtomicBool>,
    peak: Arc<AtomicU64>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl PeakSampler {
    fn start(pid: u32) -> PeakSampler {
        let stop = Arc::new(AtomicBool::new(false));
        let peak = Arc::new(AtomicU64::new(rss(pid)));
        let thread = {
            let (stop, peak) = (stop.clone(), peak.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    peak.fetch_max(rss(pid), Ordering::Relaxed);
                    std::thread::sleep(Duration::from_millis(20));
                }
            })
        };
        PeakSampler {
            stop,
            peak,
            thread: Some(thread),
        }
    }

    fn finish(mut self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            thread.join().unwrap();
        }
        self.peak.load(Ordering::Relaxed)
    }
}

impl Drop for PeakSampler {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Outcomes of a batch of Exec requests.
#[derive(Debug, Default)]
struct Outcomes {
    issued: usize,
    refused: Vec<String>,
}

/// Sends `count` Exec requests for `cmd` to `ctr` on 32 concurrent streams of one
/// connection; every answer must be a URL or RESOURCE_EXHAUSTED.
async fn flood(socket: &Path, ctr: &str, cmd: Vec<String>, count: usize) -> Outcomes {
    let client = RuntimeServiceClient::new(berth_integration::connect(socket).await);
    let next = Arc::new(AtomicU64::new(0));
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..32 {
        let (mut client, next, cmd, ctr) =
            (client.clone(), next.clone(), cmd.clone(), ctr.to_owned());
        workers.spawn(async move {
            let mut out = Outcomes::default();
            while next.fetch_add(1, Ordering::Relaxed) < count as u64 {
                let request = ExecRequest {
                    container_id: ctr.clone(),
                    cmd: cmd.clone(),
                    stdout: true,
                    ..Default::default()
                };
                match client.exec(request).await {
                    Ok(response) => {
                        assert!(response.into_inner().url.starts_with("http://"));
                        out.issued += 1;
                    }
                    Err(status) if status.code() == Code::ResourceExhausted => {
                        out.refused.push(status.message().to_owned());
                    }
                    Err(status) => panic!("Exec answered {status:?}"),
                }
            }
            out
        });
    }
    let mut total = Outcomes::default();
    while let Some(out) = workers.join_next().await {
        let out = out.unwrap();
        total.issued += out.issued;
        total.refused.extend(out.refused);
    }
    total
}

/// Floods Exec until both caps refuse, waits for the URLs to expire, checks that exec works
/// again; returns berthd's RSS then (once within the bound, or after 10 s).
fn flood_round(
    runtime: &tokio::runtime::Runtime,
    socket: &Path,
    ctr: &str,
    pid: u32,
    baseline: u64,
    round: u32,
) -> u64 {
    let started = Instant::now();
    let big = vec!["echo".to_owned(), "x".repeat(COMMAND_BYTES)];
    let bytes = runtime.block_on(flood(socket, ctr, big, FLOOD));
    // Small commands fill the remaining session slots.
    let small = vec!["true".to_owned()];
    let count = runtime.block_on(flood(socket, ctr, small, MAX_PENDING_SESSIONS));
    let flood_time = started.elapsed();
    assert!(
        flood_time < TTL,
        "the flood took {flood_time:?}, longer than the URLs live: the caps were not tested"
    );
    eprintln!(
        "flood {round}: {FLOOD} Exec requests with {} KiB commands: {} URLs issued, {} refused; \
         then {MAX_PENDING_SESSIONS} small ones: {} issued, {} refused ({flood_time:.1?})",
        COMMAND_BYTES >> 10,
        bytes.issued,
        bytes.refused.len(),
        count.issued,
        count.refused.len(),
    );
    eprintln!("refused: {}", bytes.refused[0]);
    eprintln!("refused: {}", count.refused[0]);
    assert!(bytes.issued > 0 && !bytes.refused.is_empty(), "{bytes:?}");
    assert!(
        (bytes.issued * COMMAND_BYTES) as u64 <= MAX_PENDING_BYTES,
        "{} URLs of {COMMAND_BYTES} bytes each were issued",
        bytes.issued
    );
    assert!(bytes
        .refused
        .iter()
        .all(|m| m.contains("stream.max_pending_bytes")));
    assert_eq!(
        bytes.issued + count.issued,
        MAX_PENDING_SESSIONS,
        "pending sessions beyond the count limit"
    );
    assert!(count
        .refused
        .iter()
        .all(|m| m.contains("stream.max_pending_sessions")));

    // Once the last URL expired (and the next sweep, within a second, freed it), exec works
    // again and the memory is given back.
    std::thread::sleep(TTL + Duration::from_secs(2));
    let again = crictl(socket, &["exec", ctr, "echo", "again"], None);
    assert!(
        again.status.success(),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&again.stdout), "again\n");
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut after = rss(pid);
    while after > baseline + RSS_SLACK && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
        after = rss(pid);
    }
    after
}

#[test]
fn pending_exec_sessions_are_capped_and_their_memory_returns() {
    let test = "pending_exec_sessions_are_capped_and_their_memory_returns";
    let Some(env) = crictl::start_env_in(test, SLOT, || {
        Layout::with_config(&format!(
            "[stream]\ntoken_ttl_seconds = {}\n",
            TTL.as_secs()
        ))
    }) else {
        return;
    };
    let socket = env.daemon.socket.clone();
    let dir = env.daemon.dir.path().to_owned();
    let pid = env.daemon.pid();

    let (pod_json, ctr_json) = crictl::top_pod_configs(&dir, "limits", BUSYBOX);
    ok(&socket, &["pull", BUSYBOX]);
    let pod = crictl::run_pod(&socket, &pod_json);
    let result = std::panic::catch_unwind(|| {
        let ctr = crictl::create_started(&socket, &pod, &ctr_json, &pod_json);
        let hello = crictl(&socket, &["exec", &ctr, "echo", "hello"], None);
        assert_eq!(String::from_utf8_lossy(&hello.stdout), "hello\n");
        let baseline = rss(pid);
        let runtime = tokio::runtime::Runtime::new().unwrap();

        // One command larger than any pending session may hold: refused on its own.
        let huge = runtime.block_on(async {
            RuntimeServiceClient::new(berth_integration::connect(&socket).await)
                .exec(ExecRequest {
                    container_id: ctr.clone(),
                    cmd: vec!["echo".into(), "x".repeat(3 << 20)],
                    stdout: true,
                    ..Default::default()
                })
                .await
                .unwrap_err()
        });
        assert_eq!(huge.code(), Code::InvalidArgument, "{huge:?}");
        assert!(huge.message().starts_with("invalid cmd: "), "{huge:?}");

        // Two floods, one after the other: the second shows nothing accumulates.
        let mut afters = Vec::new();
        let sampler = PeakSampler::start(pid);
        for round in 1..=2 {
            afters.push(flood_round(&runtime, &socket, &ctr, pid, baseline, round));
        }
        let peak = sampler.finish();
        eprintln!(
            "berthd RSS: baseline {}, peak {}, after the first flood {}, after the second {} \
             (bound: baseline + {})",
            mib(baseline),
            mib(peak),
            mib(afters[0]),
            mib(afters[1]),
            mib(RSS_SLACK)
        );
        for after in afters {
            assert!(
                after <= baseline + RSS_SLACK,
                "RSS stayed at {} after the URLs expired (baseline {})",
                mib(after),
                mib(baseline)
            );
        }
    });
    let removed = crictl(&socket, &["rmp", "--force", &pod], None);
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
    assert!(removed.status.success());
    drop(env);
}
