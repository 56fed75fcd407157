//! Giving memory back after bursts: glibc's malloc keeps in its arenas what a burst of
//! requests freed (a flood of hostile messages, hundreds of pods listed at once), so
//! berthd's RSS would stay at the burst's peak. Every [`CHECK_EVERY`], while the resident
//! size is more than [`GROWTH`] above the lowest seen, the allocator is asked to return its
//! whole free pages (`berth_stream::release_free_memory`, the one call of it): a few
//! milliseconds, and nothing at all while berthd stays near its floor.

use std::time::Duration;

/// glibc malloc arenas berthd allows itself: the async workers and the blocking pool share
/// them instead of keeping up to eight per core, each with its own freed fragments.
pub const MALLOC_ARENAS: i32 = 2;

/// How often the resident size is looked at.
const CHECK_EVERY: Duration = Duration::from_secs(10);

/// How far above its lowest resident size berthd may sit before free pages are returned.
const GROWTH: u64 = 16 << 20;

/// Runs for the life of the daemon.
pub async fn trim_after_bursts() {
    let mut tick = tokio::time::interval(CHECK_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut floor = resident_bytes().unwrap_or(0);
    loop {
        tick.tick().await;
        let Some(now) = resident_bytes() else {
            return;
        };
        floor = floor.min(now);
        if now > floor + GROWTH {
            let _ = tokio::task::spawn_blocking(berth_stream::release_free_memory).await;
            let after = resident_bytes().unwrap_or(now);
            floor = floor.min(after);
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
    #[test]
    fn the_resident_size_is_read() {
        let rss = super::resident_bytes().expect("VmRSS");
        assert!(rss > 1 << 20, "{rss}");
    }
}
