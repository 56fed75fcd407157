//! berth-fuzz: hostile CRI clients against a real berthd (issue #13).
//!
//! The fuzzer enters network, UTS, IPC and mount namespaces of its own, starts a local
//! registry and a berthd there (temporary socket, root, state, config, CNI network), sets up
//! a pod with a running container, then sends requests for all 43 RPCs of `runtime.v1`:
//! valid ones built in code, files of the corpus (`tests/fuzz/corpus/<Rpc>/*.bin`), and
//! wire-level mutations of both, undecodable ones included. It fails (exit 1) on a panic in
//! berthd's log, berthd exiting, a reply that is not a gRPC status from the server, a call
//! that never returns, RSS not back within a bound of its baseline after the load, or
//! anything left behind after removing every pod, container and image and stopping berthd.
//!
//! A run uses a fixed seed and then a random one (both printed); `--seed S --iterations M`
//! replays a seed, `--seed S --only I` one iteration, `--replay-corpus` sends every corpus
//! file once.

#![deny(unsafe_code)]

mod client;
mod contain;
mod corpus;
mod fuzz;
mod h2raw;
mod harness;
mod mutate;
mod pool;
mod report;
mod rng;
mod rpcs;
mod seeds;
mod wire;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;

use crate::corpus::Corpus;
use crate::fuzz::{Phase, Run};
use crate::harness::{Daemon, LocalRegistry, Monitor};
use crate::report::{NewFinding, Origin, Severity, Shared};

/// A log line longer than this means request fields are logged unbounded.
const LONG_LOG_LINE: u64 = 64 << 10;

/// The fixed seed every run starts with.
const FIXED_SEED: u64 = 0x6265_7274_6866_7a31;

/// Command line.
#[derive(Debug, Parser)]
#[command(
    name = "berth-fuzz",
    about = "Structured gRPC fuzzer for berthd (see tests/fuzz/README.md)"
)]
struct Cli {
    /// Run only this seed (decimal or 0x-hex); default: the fixed seed, then a random one.
    #[arg(long, value_parser = parse_u64)]
    seed: Option<u64>,
    /// Iterations per seed (default: until --seconds runs out).
    #[arg(long)]
    iterations: Option<u64>,
    /// Only this iteration of --seed.
    #[arg(long, requires = "seed")]
    only: Option<u64>,
    /// Time budget of the load, in seconds, split between the seeds.
    #[arg(long, default_value_t = 100)]
    seconds: u64,
    /// Concurrent requests.
    #[arg(long, default_value_t = 8)]
    jobs: usize,
    /// Largest request, in bytes.
    #[arg(long, default_value_t = 4 << 20)]
    budget: usize,
    /// Request bytes in flight at most, in MiB.
    #[arg(long, default_value_t = 32)]
    inflight_mib: u32,
    /// Only send every corpus file once (the regression mode).
    #[arg(long)]
    replay_corpus: bool,
    /// The corpus directory.
    #[arg(long)]
    corpus: Option<PathBuf>,
    /// Skip the raw HTTP/2 cases.
    #[arg(long)]
    no_raw: bool,
    /// Run without the local registry (pulls then fail).
    #[arg(long)]
    no_registry: bool,
    /// Limit this client puts on response headers (grpc-core's is 16 KiB).
    #[arg(long, default_value_t = 16 << 10)]
    max_header_list_size: u32,
    /// RSS after the load may exceed the baseline by this much (MiB).
    #[arg(long, default_value_t = 64)]
    rss_slack_mib: u64,
    /// berthd is killed (and the run fails) above this RSS (MiB).
    #[arg(long, default_value_t = 2048)]
    rss_cap_mib: u64,
    /// Write the curated corpus cases into this directory and exit.
    #[arg(long)]
    write_curated: Option<PathBuf>,
    /// Where the requests of findings are saved.
    #[arg(long)]
    out: Option<PathBuf>,
}

fn parse_u64(s: &str) -> Result<u64, String> {
    match s.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => s.parse(),
    }
    .map_err(|e| format!("{s}: {e}"))
}

fn random_seed() -> u64 {
    let mut bytes = [0u8; 8];
    if std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut bytes))
        .is_err()
    {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        return t.as_nanos() as u64 ^ u64::from(std::process::id());
    }
    u64::from_le_bytes(bytes)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(dir) = &cli.write_curated {
        return match corpus::write_curated(dir) {
            Ok(n) => {
                println!("{n} curated cases written under {}", dir.display());
                ExitCode::SUCCESS
            }
            Err(err) => {
                eprintln!("berth-fuzz: {}: {err}", dir.display());
                ExitCode::FAILURE
            }
        };
    }
    if !nix::unistd::Uid::effective().is_root() {
        let required = berth_integration::registry::registry_required();
        eprintln!(
            "berth-fuzz skipped: it needs root (namespaces, pods){}",
            if required {
                ", and BERTH_REQUIRE_REGISTRY=1"
            } else {
                ""
            }
        );
        return if required {
            ExitCode::FAILURE
        } else {
            ExitCode::from(77)
        };
    }
    // berthd runs as in production: no backtraces (symbolizing one for the debug binary
    // keeps its debug info in memory, some 230 MiB of RSS), no log filter but its own.
    std::env::remove_var("RUST_BACKTRACE");
    std::env::remove_var("RUST_LOG");
    // Before any thread exists (unshare of the mount namespace requires it).
    if let Err(err) = harness::enter_namespaces() {
        eprintln!("berth-fuzz: cannot contain itself: {err}");
        return ExitCode::FAILURE;
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(err) => {
            eprintln!("berth-fuzz: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(err) => {
            eprintln!("berth-fuzz: {err}");
            ExitCode::FAILURE
        }
    }
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

/// Sets the returned flag on SIGINT or SIGTERM: the load stops, the CRI cleanup and the RSS
/// settle are skipped, berthd is stopped and everything reaped as after a normal run.
fn on_signal() -> Arc<AtomicBool> {
    let flag = Arc::new(AtomicBool::new(false));
    let set = flag.clone();
    tokio::spawn(async move {
        use tokio::signal::unix::{signal, SignalKind};
        let (Ok(mut term), Ok(mut int)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) else {
            return;
        };
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        eprintln!("berth-fuzz: interrupted; stopping berthd and cleaning up");
        set.store(true, Ordering::Relaxed);
    });
    flag
}

async fn run(cli: Cli) -> Result<bool, String> {
    let started = Instant::now();
    let interrupted = on_signal();
    let out = cli
        .out
        .clone()
        .unwrap_or_else(|| harness::repository().join("target/fuzz-out"));
    let corpus_dir = cli
        .corpus
        .clone()
        .unwrap_or_else(|| harness::repository().join("tests/fuzz/corpus"));
    let corpus = Corpus::load(&corpus_dir)?;

    let registry = if cli.no_registry {
        None
    } else {
        let registry = tokio::task::spawn_blocking(LocalRegistry::start)
            .await
            .map_err(|e| e.to_string())??;
        println!("registry: {} images on {}", registry.pushed, registry.addr);
        Some(registry)
    };
    let registry_addr = harness::REGISTRY_ADDR.to_owned();
    let mut daemon = Daemon::start(&registry_addr)?;
    println!(
        "berthd: PID {}, socket {}, log {}",
        daemon.pid,
        daemon.socket.display(),
        daemon.log.display()
    );
    let monitor = Monitor::start(daemon.pid, daemon.log.clone(), cli.rss_cap_mib << 10);
    let run = Arc::new(Run {
        ctx: seeds::Ctx {
            registry: registry_addr,
            host_root: daemon.host_root.clone(),
            pool: Default::default(),
        },
        stats: Shared::default(),
        corpus,
        socket: daemon.socket.clone(),
        budget: cli.budget,
        inflight: tokio::sync::Semaphore::new((cli.inflight_mib as usize) << 10),
        max_header_list_size: cli.max_header_list_size,
        out: out.clone(),
        stop: Default::default(),
    });

    let harness_finding = |kind: &'static str, what: &str| {
        run.stats.finding(NewFinding {
            severity: Severity::Fail,
            kind,
            rpc: "-",
            key: None,
            what,
            input: String::new(),
            origin: &Origin::Harness,
            bytes: None,
            out: &out,
        })
    };

    if registry.is_some() {
        if let Err(err) = fuzz::fixtures(&run).await {
            return Err(format!(
                "the fixture pod did not come up, the environment is broken: {err}\nberthd log tail:\n{}",
                log_tail(&daemon.log)
            ));
        }
    }
    if registry.is_some() && cli.only.is_none() && !cli.replay_corpus {
        for line in fuzz::probe_log_paths(&run).await {
            println!("probe: {line}");
        }
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss_before = monitor.now().rss_kib;
    println!("RSS baseline: {}", mib(rss_before));

    // Liveness: a panicking task or a dead daemon stops the load early.
    let watcher = {
        let run = run.clone();
        let state = monitor_handle(&monitor);
        let interrupted = interrupted.clone();
        tokio::spawn(async move {
            loop {
                let o = state();
                if o.gone || o.killed_for_rss || interrupted.load(Ordering::Relaxed) {
                    run.stop.store(true, Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        })
    };

    let mut raw_lines = Vec::new();
    if !cli.no_raw && !cli.replay_corpus && cli.only.is_none() {
        raw_lines = h2raw::run(&run.socket, &run.stats, &out).await;
        for line in &raw_lines {
            println!("raw HTTP/2: {line}");
        }
    }

    let load_started = Instant::now();
    let corpus_sent = if cli.only.is_none() {
        run.replay_corpus().await
    } else {
        0
    };
    println!("corpus: {corpus_sent} of {} files sent", run.corpus.len());
    let mut seeds_run = Vec::new();
    if !cli.replay_corpus {
        let seeds = match cli.seed {
            Some(seed) => vec![seed],
            None => vec![FIXED_SEED, random_seed()],
        };
        let share = Duration::from_secs(cli.seconds) / seeds.len() as u32;
        for (i, &seed) in seeds.iter().enumerate() {
            println!(
                "seed {seed:#x} ({}): replay with berth-fuzz --seed {seed:#x}{}",
                if i == 0 && cli.seed.is_none() {
                    "fixed"
                } else if cli.seed.is_none() {
                    "random"
                } else {
                    "given"
                },
                cli.iterations
                    .map(|m| format!(" --iterations {m}"))
                    .unwrap_or_default()
            );
            let phase = Phase {
                seed,
                iterations: cli.iterations,
                only: cli.only,
                until: Instant::now() + share,
            };
            let done = run.fuzz(phase, cli.jobs).await;
            println!("seed {seed:#x}: {done} iterations");
            seeds_run.push((seed, done));
            if run.stop.load(Ordering::Relaxed) {
                break;
            }
        }
    }
    let load_time = load_started.elapsed();
    watcher.abort();

    // RSS after the load: pending streaming sessions expire after the token TTL.
    let slack = cli.rss_slack_mib << 10;
    let bound = rss_before + slack;
    let settle_until = Instant::now() + Duration::from_secs(harness::TOKEN_TTL_SECONDS + 20);
    let mut rss_after = monitor.now().rss_kib;
    let interrupted = interrupted.load(Ordering::Relaxed);
    while !interrupted && daemon.running() && rss_after > bound && Instant::now() < settle_until {
        tokio::time::sleep(Duration::from_secs(1)).await;
        rss_after = monitor.now().rss_kib;
    }

    let alive = daemon.running();
    let observed = monitor.now();
    if !alive {
        harness_finding(
            "daemon-gone",
            &format!(
                "berthd exited during the run{}; log tail:\n{}",
                if observed.killed_for_rss {
                    " (killed: RSS over the cap)"
                } else {
                    ""
                },
                log_tail(&daemon.log)
            ),
        );
    } else if rss_after > bound && !interrupted {
        harness_finding(
            "rss",
            &format!(
                "RSS {} after the load did not return within {} of the {} baseline",
                mib(rss_after),
                mib(slack),
                mib(rss_before)
            ),
        );
    }

    // Cleanup through the CRI, then stop the daemon, then look for what is left.
    let mut cleanup_problems = Vec::new();
    if alive && !interrupted {
        cleanup_problems = fuzz::remove_everything(&run).await;
        for problem in &cleanup_problems {
            harness_finding("cleanup", problem);
        }
    }
    if let Some(problem) = daemon.stop() {
        if alive {
            harness_finding("stop", &problem);
        }
    }
    let observed_final = monitor.finish();
    for panic in &observed_final.panics {
        harness_finding("panic", panic);
    }
    if observed_final.longest_line > LONG_LOG_LINE {
        run.stats.finding(NewFinding {
            severity: Severity::Note,
            kind: "log-line",
            rpc: "-",
            key: None,
            what: &format!(
                "berthd logged a line of {} bytes ({:.1} MiB logged in all): request fields are not bounded",
                observed_final.longest_line,
                observed_final.log_bytes as f64 / 1048576.0
            ),
            input: String::new(),
            origin: &Origin::Harness,
            bytes: None,
            out: &out,
        });
    }
    let (ids, parents) = {
        let pool = run.ctx.pool();
        (
            pool.all_ids.iter().cloned().collect::<Vec<_>>(),
            pool.cgroup_parents.clone(),
        )
    };
    let (left, parents_removed) = tokio::task::spawn_blocking(move || {
        let result = daemon.leftovers(&ids, &parents);
        drop(daemon);
        result
    })
    .await
    .map_err(|e| e.to_string())?;
    for thing in &left {
        harness_finding("leftover", thing);
    }
    drop(registry);

    // The report.
    let stats = run.stats.with(|s| s.clone());
    print_report(Report {
        stats: &stats,
        seeds: &seeds_run,
        corpus_sent,
        raw: raw_lines.len(),
        load_time,
        total_time: started.elapsed(),
        rss_before,
        rss_peak: observed_final.rss_peak_kib.max(observed.rss_peak_kib),
        rss_after,
        bound,
        log_bytes: observed_final.log_bytes,
        longest_line: observed_final.longest_line,
        panics: observed_final.panics.len(),
        leftovers: left.len(),
        parents_removed,
        cleanup_problems: cleanup_problems.len(),
        out: &out,
    });
    if interrupted {
        println!("interrupted: the run is incomplete");
        return Ok(false);
    }
    Ok(!run.stats.failed())
}

/// A closure returning the monitor's latest observations (the monitor stays in `run`).
fn monitor_handle(monitor: &Monitor) -> impl Fn() -> harness::Observed + Send + 'static {
    let snapshot = monitor.shared();
    move || snapshot.lock().unwrap_or_else(|e| e.into_inner()).clone()
}

fn log_tail(log: &std::path::Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..]
        .iter()
        .map(|l| report::cut(l, 300))
        .collect::<Vec<_>>()
        .join("\n")
}

struct Report<'a> {
    stats: &'a report::Stats,
    seeds: &'a [(u64, u64)],
    corpus_sent: usize,
    raw: usize,
    load_time: Duration,
    total_time: Duration,
    rss_before: u64,
    rss_peak: u64,
    rss_after: u64,
    bound: u64,
    log_bytes: u64,
    longest_line: u64,
    panics: usize,
    leftovers: usize,
    parents_removed: usize,
    cleanup_problems: usize,
    out: &'a std::path::Path,
}

fn print_report(r: Report<'_>) {
    let sent: u64 = r.stats.per_rpc.values().sum();
    println!("\n== berth-fuzz summary");
    for (seed, iterations) in r.seeds {
        println!("seed {seed:#x}: {iterations} iterations");
    }
    println!(
        "requests: {sent} ({} corpus, {} raw HTTP/2 cases) in {:.1} s of load ({:.0}/s), {:.1} s in all; {} did not decode, {} had host paths contained, {:.1} MiB sent, {} stream messages received",
        r.corpus_sent,
        r.raw,
        r.load_time.as_secs_f64(),
        sent as f64 / r.load_time.as_secs_f64().max(0.001),
        r.total_time.as_secs_f64(),
        r.stats.undecodable,
        r.stats.rewritten,
        r.stats.bytes_sent as f64 / 1048576.0,
        r.stats.stream_messages
    );
    let counts = |map: &std::collections::BTreeMap<String, u64>| {
        map.iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    println!(
        "per RPC ({}): {}",
        r.stats.per_rpc.len(),
        counts(&r.stats.per_rpc)
    );
    println!("per code: {}", counts(&r.stats.per_code));
    println!(
        "RSS: before {}, peak {}, after {} (bound {})",
        mib(r.rss_before),
        mib(r.rss_peak),
        mib(r.rss_after),
        mib(r.bound)
    );
    println!(
        "berthd log: {:.1} MiB, longest line {} bytes; panics: {}",
        r.log_bytes as f64 / 1048576.0,
        r.longest_line,
        r.panics
    );
    println!(
        "cleanup: {} problems; leftovers: {}; pod cgroup parents removed (the client's): {}",
        r.cleanup_problems, r.leftovers, r.parents_removed
    );
    let mut findings: Vec<&report::Finding> = r.stats.findings.values().collect();
    findings.sort_by(|a, b| (a.severity, a.kind, &a.rpc).cmp(&(b.severity, b.kind, &b.rpc)));
    println!(
        "findings: {} distinct (requests saved under {})",
        findings.len(),
        r.out.display()
    );
    for f in findings {
        println!(
            "  [{}] {} {} x{}: {}\n      input: {}\n      first: {}{}",
            if f.severity == Severity::Fail {
                "FAIL"
            } else {
                "note"
            },
            f.kind,
            f.rpc,
            f.count,
            f.what,
            f.input,
            f.first,
            f.saved
                .as_ref()
                .map(|p| format!("\n      saved: {}", p.display()))
                .unwrap_or_default()
        );
    }
}
