//! Giving memory back after bursts: glibc's malloc keeps in its arenas what a burst of
//! requests freed (a flood of hostile messages, hundreds of pods listed at once, a pull),
//! so berthd's RSS would stay at the burst's peak. Every [`CHECK_EVERY`], once the resident
//! size has grown by [`GROWTH`] since the last look that asked, the allocator is asked to
//! return its whole free pages (`berth_stream::release_free_memory`, the one call of it):
//! a few milliseconds, and nothing at all while berthd's size holds still.

use std::time::Duration;

/// glibc malloc arenas berthd allows itself: the async workers and the blocking pool share
/// them instead of keeping up to eight per core, each with its own freed fragments.
pub const MALLOC_ARENAS: i32 = 2;

/// How often the resident size is looked at (reading `/proc/self/status`: microseconds).
const CHECK_EVERY: Duration = Duration::from_secs(2);

/// Growth of the resident size since the last trim (or the lowest size since) that asks for
/// the next one. At 50 pods, after the bench's pulls and pod starts, a trim gave back
/// 0.1–1.4 MB of an 18–22 MB daemon (bench/README.md, "daemon memory"); a threshold of
/// 16 MiB never fired there.
const GROWTH: u64 = 1 << 20;

/// Decides when to trim: tracks the resident size the last trim left (or the lowest seen
/// since), so that a daemon that simply holds more (more pods) is not trimmed on every look.
#[derive(Debug)]
struct Baseline(u64);

impl Baseline {
    /// Whether `now` calls for a trim; a lower size becomes the new baseline.
    fn calls_for_trim(&mut self, now: u64) -> bool {
        self.0 = self.0.min(now);
        now >= self.0 + GROWTH
    }

    /// Records the size a trim left.
    fn trimmed_to(&mut self, after: u64) {
        self.0 = after;
    }
}

/// Runs for the life of the daemon.
pub async fn trim_after_bursts() {
    let mut tick = tokio::time::interval(CHECK_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut baseline = Baseline(resident_bytes().unwrap_or(0));
    loop {
        tick.tick().await;
        let Some(now) = resident_bytes() else {
            return;
        };
        if baseline.calls_for_trim(now) {
            let _ = tokio::task::spawn_blocking(berth_stream::release_free_memory).await;
            let after = resident_bytes().unwrap_or(now);
            baseline.trimmed_to(after);
            tracing::debug!(before = now, after, "returned free heap pages");
        }
    }
}

/// The process's resident size, from `VmRSS` in `/proc/self/status` (kB).
fn resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find_map(|l| l.strip_prefix("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().next()?.parse().ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::{Baseline, GROWTH};

    #[test]
    fn growth_since_the_last_trim_calls_for_the_next() {
        let mut baseline = Baseline(20 << 20);
        assert!(!baseline.calls_for_trim((20 << 20) + GROWTH - 1));
        assert!(baseline.calls_for_trim((20 << 20) + GROWTH));
        // The trim freed little: the daemon holds more now, and that is the new baseline.
        baseline.trimmed_to((21 << 20) - 4096);
        assert!(!baseline.calls_for_trim(21 << 20));
        assert!(baseline.calls_for_trim((22 << 20) - 4096));
    }

    #[test]
    fn a_smaller_size_lowers_the_baseline() {
        let mut baseline = Baseline(30 << 20);
        assert!(!baseline.calls_for_trim(18 << 20));
        assert!(baseline.calls_for_trim((18 << 20) + GROWTH));
    }

    #[test]
    fn the_resident_size_is_read() {
        let rss = super::resident_bytes().expect("VmRSS");
        assert!(rss > 1 << 20, "{rss}");
    }
}
