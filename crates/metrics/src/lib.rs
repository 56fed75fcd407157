//! berth's Prometheus metrics.
//!
//! Two kinds of values, both encoded in the Prometheus text format (0.0.4), every name
//! prefixed `berth_`:
//!
//! - **Recorded as they happen** in [`Metrics`]: the latency and errors of each CRI RPC (from
//!   the server's one instrumentation wrapper) and the duration and failures of image pulls.
//! - **Read at scrape time** from a [`Sampler`] (berthd's runtime core, image manager and
//!   streaming server) into a [`Sample`]: containers and pods by state, live shims, OOM
//!   kills, bytes pulled, image GC runs and bytes freed, streaming sessions. Counts of objects
//!   come from the in-memory registry each time, so they cannot drift from it.
//!
//! Every label value is one of a fixed set chosen by berth (an RPC name, a gRPC code, a
//! state, a session kind): nothing a CRI client sends ends up in a label, so the series are
//! bounded and the output names no pod, container or image. [`http`] serves the text at
//! `GET /metrics` with small, fixed limits.

#![deny(unsafe_code)]

pub mod http;

use std::time::Duration;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};

/// The prefix of every metric name.
pub const PREFIX: &str = "berth";

/// The `Content-Type` of [`Metrics::encode`]'s output.
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// Upper bounds (seconds) of the CRI RPC latency buckets: from a lookup in the registry
/// (well under a millisecond) to a pod start with slow CNI plugins.
const RPC_BUCKETS: [f64; 16] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    120.0,
];

/// Upper bounds (seconds) of the image pull duration buckets: from an image already present
/// to a multi-gigabyte download.
const PULL_BUCKETS: [f64; 12] = [
    0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0,
];

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RpcLabels {
    rpc: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RpcErrorLabels {
    rpc: &'static str,
    code: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CodeLabels {
    code: &'static str,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

/// The metrics berthd records as things happen; cheap to update from any thread.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    rpc_duration: HistogramFamily<RpcLabels>,
    rpc_errors: Family<RpcErrorLabels, Counter>,
    pull_duration: Histogram,
    pull_failures: Family<CodeLabels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// Every metric at zero.
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix(PREFIX);
        let rpc_duration: HistogramFamily<RpcLabels> =
            Family::new_with_constructor(|| Histogram::new(RPC_BUCKETS));
        registry.register_with_unit(
            "cri_request_duration",
            "Time berthd took to answer a CRI RPC, whatever the outcome (a streaming RPC: until its stream was returned), by RPC",
            Unit::Seconds,
            rpc_duration.clone(),
        );
        let rpc_errors = Family::<RpcErrorLabels, Counter>::default();
        registry.register(
            "cri_request_errors",
            "CRI RPCs answered with an error, by RPC and gRPC status code",
            rpc_errors.clone(),
        );
        let pull_duration = Histogram::new(PULL_BUCKETS);
        registry.register_with_unit(
            "image_pull_duration",
            "Duration of successful image pulls",
            Unit::Seconds,
            pull_duration.clone(),
        );
        let pull_failures = Family::<CodeLabels, Counter>::default();
        registry.register(
            "image_pull_failures",
            "Image pulls that failed, by the gRPC status code PullImage answered",
            pull_failures.clone(),
        );
        Metrics {
            registry,
            rpc_duration,
            rpc_errors,
            pull_duration,
            pull_failures,
        }
    }

    /// Records one CRI RPC named `rpc` that took `elapsed` and failed with gRPC code
    /// `error` (by its name, e.g. `NotFound`), or succeeded (`None`).
    pub fn record_rpc(&self, rpc: &'static str, elapsed: Duration, error: Option<&'static str>) {
        self.rpc_duration
            .get_or_create(&RpcLabels { rpc })
            .observe(elapsed.as_secs_f64());
        if let Some(code) = error {
            self.rpc_errors
                .get_or_create(&RpcErrorLabels { rpc, code })
                .inc();
        }
    }

    /// Records an image pull: its duration when it succeeded, the gRPC code (by name) it
    /// failed with otherwise.
    pub fn record_pull(&self, outcome: Result<Duration, &'static str>) {
        match outcome {
            Ok(elapsed) => self.pull_duration.observe(elapsed.as_secs_f64()),
            Err(code) => {
                self.pull_failures.get_or_create(&CodeLabels { code }).inc();
            }
        }
    }

    /// The Prometheus text exposition of the recorded metrics and of `sample`.
    pub fn encode(&self, sample: Sample) -> String {
        let mut scraped = Registry::with_prefix(PREFIX);
        scraped.register_collector(Box::new(Scraped(sample)));
        let mut text = String::new();
        // Writing into a String cannot fail, and no metric of berth's fails to encode.
        let _ = prometheus_client::encoding::prometheus_text::encode(&mut text, &self.registry);
        let _ = prometheus_client::encoding::prometheus_text::encode(&mut text, &scraped);
        text
    }
}

/// What berthd's state is at one scrape.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sample {
    /// Containers by CRI state.
    pub containers: ContainerStates,
    /// Pod sandboxes by CRI state.
    pub pods: PodStates,
    /// Container shims berthd supervises (one per container whose process has not ended).
    pub shims: u64,
    /// Container exits recorded with reason `OOMKilled` since berthd started.
    pub oom_kills: u64,
    /// Compressed layer bytes image pulls downloaded since berthd started.
    pub image_pull_bytes: u64,
    /// Image garbage collections since berthd started.
    pub gc_runs: u64,
    /// Disk space freed by deleting what garbage collection (and interrupted pulls) left in
    /// the image trash, since berthd started.
    pub gc_freed_bytes: u64,
    /// Streaming sessions by kind.
    pub stream_sessions: Vec<StreamSessions>,
}

/// Containers in each CRI state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ContainerStates {
    /// `CONTAINER_CREATED`
    pub created: u64,
    /// `CONTAINER_RUNNING`
    pub running: u64,
    /// `CONTAINER_EXITED`
    pub exited: u64,
    /// `CONTAINER_UNKNOWN`
    pub unknown: u64,
}

/// Pod sandboxes in each CRI state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PodStates {
    /// `SANDBOX_READY`
    pub ready: u64,
    /// `SANDBOX_NOTREADY`
    pub not_ready: u64,
}

/// Streaming sessions of one kind (`exec`, `attach`, `portforward`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamSessions {
    /// The kind.
    pub kind: &'static str,
    /// Sessions started (a URL redeemed) since berthd started.
    pub started: u64,
    /// Sessions open now.
    pub active: u64,
}

/// Where scrape-time values come from.
pub trait Sampler: Send + Sync + 'static {
    /// The state now.
    fn sample(&self) -> Sample;
}

/// A [`Sample`] as a collector: encoded once, for the scrape that took it.
#[derive(Debug)]
struct Scraped(Sample);

impl Collector for Scraped {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let s = &self.0;
        let c = s.containers;
        labelled(
            &mut encoder,
            "containers",
            "Containers berthd knows, by CRI state.",
            "state",
            &[
                ("created", ConstGauge::new(c.created as i64)),
                ("running", ConstGauge::new(c.running as i64)),
                ("exited", ConstGauge::new(c.exited as i64)),
                ("unknown", ConstGauge::new(c.unknown as i64)),
            ],
        )?;
        labelled(
            &mut encoder,
            "pods",
            "Pod sandboxes berthd knows, by CRI state.",
            "state",
            &[
                ("ready", ConstGauge::new(s.pods.ready as i64)),
                ("notready", ConstGauge::new(s.pods.not_ready as i64)),
            ],
        )?;
        single(
            &mut encoder,
            "shims",
            "Container shims berthd supervises (one per container whose process has not ended).",
            None,
            ConstGauge::new(s.shims as i64),
        )?;
        single(
            &mut encoder,
            "containers_oom_killed",
            "Container exits recorded with reason OOMKilled.",
            None,
            ConstCounter::new(s.oom_kills),
        )?;
        single(
            &mut encoder,
            "image_pull",
            "Compressed layer bytes image pulls downloaded (layers already present are not fetched).",
            Some(&Unit::Bytes),
            ConstCounter::new(s.image_pull_bytes),
        )?;
        single(
            &mut encoder,
            "image_gc_runs",
            "Image garbage collections (each image removal runs one).",
            None,
            ConstCounter::new(s.gc_runs),
        )?;
        single(
            &mut encoder,
            "image_gc_freed",
            "Disk space freed by deleting unreferenced blobs and snapshots (and what interrupted pulls left) from the image trash.",
            Some(&Unit::Bytes),
            ConstCounter::new(s.gc_freed_bytes),
        )?;
        let started: Vec<_> = s
            .stream_sessions
            .iter()
            .map(|k| (k.kind, ConstCounter::new(k.started)))
            .collect();
        labelled(
            &mut encoder,
            "stream_sessions",
            "Streaming sessions started (an Exec, Attach or PortForward URL redeemed), by kind.",
            "kind",
            &started,
        )?;
        let active: Vec<_> = s
            .stream_sessions
            .iter()
            .map(|k| (k.kind, ConstGauge::new(k.active as i64)))
            .collect();
        labelled(
            &mut encoder,
            "stream_sessions_active",
            "Streaming sessions open now, by kind.",
            "kind",
            &active,
        )
    }
}

/// One metric without labels.
fn single<M: EncodeMetric>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    unit: Option<&Unit>,
    metric: M,
) -> Result<(), std::fmt::Error> {
    let metric_encoder = encoder.encode_descriptor(name, help, unit, metric.metric_type())?;
    metric.encode(metric_encoder)
}

/// One metric with a sample per value of `label`.
fn labelled<M: EncodeMetric>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    label: &'static str,
    values: &[(&'static str, M)],
) -> Result<(), std::fmt::Error> {
    let Some((_, first)) = values.first() else {
        return Ok(());
    };
    let mut metric_encoder = encoder.encode_descriptor(name, help, None, first.metric_type())?;
    for (value, metric) in values {
        let labels = [(label, *value)];
        metric.encode(metric_encoder.encode_family(&labels)?)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests;
