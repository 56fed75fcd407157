//! CPU usage as a rate (`usage_nano_cores`): the change of a cumulative counter between two
//! samples of the same object, as kubelet's summary API reports it. The CRI carries only
//! cumulative nanoseconds otherwise, and with PodAndContainerStatsFromCRI kubelet takes the
//! rate from the runtime.

use std::collections::HashMap;
use std::sync::Mutex;

/// Samples older than this are dropped when the table grows (objects gone since).
const STALE_NANOS: i64 = 10 * 60 * 1_000_000_000;

/// Entries kept before stale ones are dropped.
const PRUNE_AT: usize = 4096;

/// The last sample of each object's cumulative CPU time.
#[derive(Debug, Default)]
pub struct CpuRates {
    last: Mutex<HashMap<String, Sample>>,
}

#[derive(Debug, Clone, Copy)]
struct Sample {
    at_nanos: i64,
    cumulative: u64,
}

impl CpuRates {
    /// Records `cumulative` CPU nanoseconds of `key` at `at_nanos` and returns the rate since
    /// the previous sample in nanocores (CPU nanoseconds per second), or None for a first
    /// sample, a sample no later than the previous one, or a counter that went back (a
    /// container of the pod removed, a cgroup recreated): that sample is the new baseline.
    pub fn rate(&self, key: &str, at_nanos: i64, cumulative: u64) -> Option<u64> {
        let mut last = self
            .last
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        let now = Sample {
            at_nanos,
            cumulative,
        };
        let previous = last.insert(key.to_owned(), now);
        if last.len() > PRUNE_AT {
            last.retain(|_, sample| at_nanos - sample.at_nanos < STALE_NANOS);
        }
        let previous = previous?;
        let elapsed = u128::try_from(at_nanos.checked_sub(previous.at_nanos)?).ok()?;
        if elapsed == 0 {
            return None;
        }
        let used = u128::from(cumulative.checked_sub(previous.cumulative)?);
        u64::try_from(used * 1_000_000_000 / elapsed).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: i64 = 1_000_000_000;

    #[test]
    fn the_rate_is_the_change_over_the_time_between_samples() {
        let rates = CpuRates::default();
        assert_eq!(rates.rate("c", 10 * SECOND, 5_000_000_000), None);
        // Half a core for two seconds.
        assert_eq!(
            rates.rate("c", 12 * SECOND, 6_000_000_000),
            Some(500_000_000)
        );
        // Other objects have their own baseline.
        assert_eq!(rates.rate("d", 12 * SECOND, 1), None);
        // Two cores for one second.
        assert_eq!(
            rates.rate("c", 13 * SECOND, 8_000_000_000),
            Some(2_000_000_000)
        );
    }

    #[test]
    fn a_counter_going_back_or_time_standing_still_restarts_the_baseline() {
        let rates = CpuRates::default();
        rates.rate("p", SECOND, 10_000);
        assert_eq!(rates.rate("p", 2 * SECOND, 5_000), None);
        assert_eq!(rates.rate("p", 2 * SECOND, 6_000), None);
        assert_eq!(rates.rate("p", 3 * SECOND, 7_000), Some(1_000));
    }

    #[test]
    fn gone_objects_are_forgotten() {
        let rates = CpuRates::default();
        for i in 0..PRUNE_AT {
            rates.rate(&format!("old{i}"), 0, 1);
        }
        rates.rate("new", STALE_NANOS + 1, 1);
        assert_eq!(rates.last.lock().unwrap().len(), 1);
    }
}
