//! How long calls waited on a limit: a connector's own cap on calls in flight and its rate
//! limit here, the engine's `--parallelism` above. Added up as the calls wait, read by the
//! run summary to say which limit bound throughput.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::Serialize;

/// Waits on one limit, added up (shared by every call that waits on it).
#[derive(Debug, Default)]
pub struct WaitTally {
    nanos: AtomicU64,
    waits: AtomicU64,
}

impl WaitTally {
    /// Counts one wait of `d`.
    pub fn add(&self, d: Duration) {
        let nanos = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        self.nanos.fetch_add(nanos, Ordering::Relaxed);
        self.waits.fetch_add(1, Ordering::Relaxed);
    }

    /// The waits so far.
    pub fn get(&self) -> Waited {
        Waited {
            waits: self.waits.load(Ordering::Relaxed),
            nanos: self.nanos.load(Ordering::Relaxed),
        }
    }
}

/// Calls that waited on a limit, and their time waiting in all.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Waited {
    /// Calls (or runs) that had to wait.
    pub waits: u64,
    /// Their waits added up, in nanoseconds.
    pub nanos: u64,
}

impl Waited {
    /// The waits since `earlier` (a reading of the same tally).
    pub fn since(self, earlier: Waited) -> Waited {
        Waited {
            waits: self.waits.saturating_sub(earlier.waits),
            nanos: self.nanos.saturating_sub(earlier.nanos),
        }
    }

    /// The time waiting in all.
    pub fn total(self) -> Duration {
        Duration::from_nanos(self.nanos)
    }
}

/// A connector's own limits and the waits on them so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectorWaits {
    /// Its cap on calls in flight (`concurrency`, else `defaults.connector_concurrency`).
    pub concurrency: usize,
    /// Waits for a free place under the cap.
    pub concurrency_waited: Waited,
    /// Its rate limit, calls per second (`rate_limit.per_second`), if any.
    pub per_second: Option<u32>,
    /// Waits for the rate limit.
    pub rate_waited: Waited,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_add_up_and_subtract() {
        let t = WaitTally::default();
        t.add(Duration::from_millis(5));
        let first = t.get();
        t.add(Duration::from_millis(7));
        t.add(Duration::from_millis(1));
        let d = t.get().since(first);
        assert_eq!(d.waits, 2);
        assert_eq!(d.total(), Duration::from_millis(8));
    }
}
