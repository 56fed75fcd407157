//! What a metrics scrape reads from the daemon: containers and pods by state from the runtime
//! core's in-memory registry (counted afresh each time), its shim and OOM counters, the image
//! manager's pull and GC counters, and the streaming server's sessions.

use berth_metrics::{ContainerStates, PodStates, Sample, Sampler, StreamSessions};
use berth_store::{ContainerState, SandboxState};

use crate::daemon::Daemon;

impl Sampler for Daemon {
    fn sample(&self) -> Sample {
        let mut sample = Sample::default();
        if let Some(core) = self.opened_core() {
            let mut containers = ContainerStates::default();
            for state in core.list_containers(|_, state| Some(state)) {
                *match state {
                    ContainerState::Created => &mut containers.created,
                    ContainerState::Running => &mut containers.running,
                    ContainerState::Exited => &mut containers.exited,
                    ContainerState::Unknown => &mut containers.unknown,
                } += 1;
            }
            let mut pods = PodStates::default();
            for state in core.list_sandboxes(|record| Some(record.state)) {
                *match state {
                    SandboxState::Ready => &mut pods.ready,
                    SandboxState::NotReady => &mut pods.not_ready,
                } += 1;
            }
            sample.containers = containers;
            sample.pods = pods;
            sample.shims = core.supervised_shims() as u64;
            sample.oom_kills = core.oom_kills();
        }
        let images = self.images.stats();
        sample.image_pull_bytes = images.pulled_bytes;
        sample.gc_runs = images.gc_runs;
        sample.gc_freed_bytes = images.freed_bytes;
        if let Some(stream) = self.stream.get() {
            sample.stream_sessions = stream
                .sessions()
                .into_iter()
                .map(|c| StreamSessions {
                    kind: c.kind,
                    started: c.started,
                    active: c.active,
                })
                .collect();
        }
        sample
    }
}
