//! Giving memory back after bursts: glibc's malloc keeps in its arenas what a burst of
//! requests freed (a flood of hostile messages, hundreds of pods listed at once, a pull),
//! so berthd's RSS would stay at the burst's peak. Every [`CHECK_EVERY`] berthd looks at
//! its resident size and at the bytes malloc holds free (`mallinfo2`), and asks the
//! allocator to return its whole free pages (`berth_stream::release_free_memory`, the one
//! call of it: a few milliseconds) when at least [`GROWTH`] is free and, since the last
//! trim, either figure rose by [`GROWTH`] above its lowest point.
//!
//! Neither figure is enough alone. Freed memory leaves the resident size unchanged: a rule
//! on its growth trimmed in the middle of a 1 GB pull, took that size as the new normal
//! and never trimmed after the pull had freed its buffers (28.7–32.7 MB at 50 pods after
//! compare.sh's pulls). The free bytes do not show trimmed pages used again: a rule on
//! them alone left 23 MB of freed pull buffers resident in one run of three
//! (bench/README.md, "daemon memory").

use std::time::Duration;

/// glibc malloc arenas berthd allows itself: the async workers and the blocking pool share
/// them instead of keeping up to eight per core, each with its own freed fragments.
pub const MALLOC_ARENAS: i32 = 2;

/// Allocations that get a mapping of their own: glibc's default, kept from rising. The
/// pull's large buffers (1 MiB direct-I/O blocks, 256 KiB unpack buffers) are then mapped
/// and unmapped instead of left in the second arena, and a zeroed allocation is not
/// written page by page (at 4 MiB berthd started at 16.3 MB instead of 10.8). It costs
/// 0.6–0.9 CPU-seconds per 1 GB pull (bench/README.md).
pub const MMAP_THRESHOLD: i32 = 128 << 10;

/// Free top of a heap that a free returns at once: glibc's default, kept from rising to
/// 64 MiB. The free top of the second arena is something `malloc_trim` does not return,
/// and the 1 GB pull left 23 and 39 MB of it resident at 50 pods in two runs of six
/// without this.
pub const TRIM_THRESHOLD: i32 = 128 << 10;

/// How often the figures are looked at (`/proc/self/status` and `mallinfo2`: microseconds
/// for berthd's few-megabyte heap).
const CHECK_EVERY: Duration = Duration::from_secs(2);

/// Free bytes needed, and growth of either figure since the last trim, for the next one.
const GROWTH: u64 = 1 << 20;

/// One look: the resident size and the bytes malloc holds free (trimmed pages included).
#[derive(Debug, Clone, Copy)]
struct Sizes {
    resident: u64,
    free: u64,
}

/// Decides when to trim: the lowest of each figure since the last trim (the trim's own
/// outcome first), so that a trim follows every megabyte freed or reused and none runs
/// while berthd holds still, however much it holds.
#[derive(Debug)]
struct Baseline(Sizes);

impl Baseline {
    /// Whether `now` calls for a trim; lower figures become the new baseline.
    fn calls_for_trim(&mut self, now: Sizes) -> bool {
        self.0.resident = self.0.resident.min(now.resident);
        self.0.free = self.0.free.min(now.free);
        now.free >= GROWTH
            && (now.resident >= self.0.resident + GROWTH || now.free >= self.0.free + GROWTH)
    }

    /// Records what a trim left.
    fn trimmed_to(&mut self, after: Sizes) {
        self.0 = after;
    }
}

fn sizes() -> Option<Sizes> {
    Some(Sizes {
        resident: resident_bytes()?,
        free: berth_stream::free_heap_bytes()?,
    })
}

/// Runs for the life of the daemon.
pub async fn trim_after_bursts() {
    let Some(start) = sizes() else {
        return;
    };
    let mut tick = tokio::time::interval(CHECK_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut baseline = Baseline(start);
    loop {
        tick.tick().await;
        let Some(now) = sizes() else {
            return;
        };
        if baseline.calls_for_trim(now) {
            let _ = tokio::task::spawn_blocking(berth_stream::release_free_memory).await;
            let after = sizes().unwrap_or(now);
            baseline.trimmed_to(after);
            tracing::debug!(before = ?now, ?after, "returned free heap pages");
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
    use super::{Baseline, Sizes, GROWTH};

    const MB: u64 = 1 << 20;

    fn at(resident: u64, free: u64) -> Sizes {
        Sizes { resident, free }
    }

    #[test]
    fn a_megabyte_freed_since_the_last_trim_calls_for_the_next() {
        let mut baseline = Baseline(at(20 * MB, MB / 2));
        assert!(!baseline.calls_for_trim(at(20 * MB, MB / 2 + GROWTH - 1)));
        assert!(baseline.calls_for_trim(at(20 * MB, MB / 2 + GROWTH)));
        // Returned pages stay counted as free: no second trim for the same bytes.
        baseline.trimmed_to(at(19 * MB, MB / 2 + GROWTH));
        assert!(!baseline.calls_for_trim(at(19 * MB, MB / 2 + GROWTH)));
    }

    #[test]
    fn trimmed_pages_used_again_call_for_the_next() {
        // A trim in the middle of a pull; the pull reuses the pages, then frees them.
        let mut baseline = Baseline(at(30 * MB, 20 * MB));
        baseline.trimmed_to(at(18 * MB, 20 * MB));
        assert!(!baseline.calls_for_trim(at(18 * MB + GROWTH - 1, 20 * MB)));
        assert!(baseline.calls_for_trim(at(18 * MB + GROWTH, 20 * MB)));
    }

    #[test]
    fn holding_more_without_freeing_calls_for_nothing() {
        // More pods: the resident size grows, but malloc holds almost nothing free.
        let mut baseline = Baseline(at(18 * MB, MB / 4));
        assert!(!baseline.calls_for_trim(at(21 * MB, MB / 2)));
    }

    #[test]
    fn the_resident_size_is_read() {
        let rss = super::resident_bytes().expect("VmRSS");
        assert!(rss > 1 << 20, "{rss}");
    }
}
