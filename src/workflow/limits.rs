//! Which limit bound throughput: the waits of calls on each connector's own cap and rate
//! limit, on `--parallelism`, and of runs on `--concurrency`, over a tick or a run.
//!
//! The limits nest: a worker runs at most `--concurrency` runs at once; each run makes at
//! most `--parallelism` calls at once; every call to a connector, from whichever run, also
//! takes one of the connector's own places (`concurrency:` of the connector, else
//! `defaults.connector_concurrency`) and waits for its rate limit. The limit that bound is
//! the innermost one that made work wait a noticeable share of the longest wait: raising
//! an outer limit cannot help while an inner one makes calls queue.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

use crate::connectors::limits::{ConnectorWaits, Waited};

/// A reading of every tally a workflow keeps.
#[derive(Debug, Clone, Default)]
pub struct LimitSnapshot {
    /// Waits for a slot of `--parallelism`.
    pub parallelism: Waited,
    /// Each built connector's limits and waits, by `tenant/connector`.
    pub connectors: BTreeMap<String, ConnectorWaits>,
}

/// A kind of limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LimitKind {
    /// A connector's own cap on calls in flight.
    ConnectorConcurrency,
    /// A connector's rate limit.
    RateLimit,
    /// Calls in flight per run (`--parallelism`, `defaults.parallelism`).
    Parallelism,
    /// Runs at once (`tick`/`serve --concurrency`).
    RunConcurrency,
}

/// The waits on one limit.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LimitWait {
    /// Which limit.
    pub limit: LimitKind,
    /// The connector, for a connector's limits (`tenant/name`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connector: Option<String>,
    /// Its value: places, calls per second, calls or runs at once.
    pub value: u64,
    /// Calls (runs, for `run_concurrency`) that waited on it.
    pub waits: u64,
    /// Their waits added up, in seconds.
    pub waited_seconds: f64,
}

/// Which limits made work wait, and which one bound throughput.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct LimitReport {
    /// The limit that bound (`None`: nothing waited; the services' own speed did).
    pub binding: Option<LimitWait>,
    /// Every limit, innermost first.
    pub limits: Vec<LimitWait>,
}

/// A limit binds when its waits are at least this share of the longest wait.
const NOTICEABLE: f64 = 0.1;
/// Waits shorter than this in all are noise (a few calls queued for milliseconds): no limit
/// is said to bind.
const FLOOR_SECONDS: f64 = 0.1;

impl LimitReport {
    /// The waits between two snapshots, with the runs' waits for a run slot (`runs`: the
    /// limit on runs at once, `None` outside a tick) and the parallelism limit.
    pub fn between(
        before: &LimitSnapshot,
        after: &LimitSnapshot,
        parallelism: usize,
        runs: Option<(usize, Waited)>,
    ) -> LimitReport {
        let entry = |limit, connector: Option<&String>, value: u64, w: Waited| LimitWait {
            limit,
            connector: connector.cloned(),
            value,
            waits: w.waits,
            waited_seconds: w.total().as_secs_f64(),
        };
        let mut limits = Vec::new();
        for (name, now) in &after.connectors {
            let then = before.connectors.get(name);
            let since = |w: Waited, f: fn(&ConnectorWaits) -> Waited| match then {
                Some(t) => w.since(f(t)),
                None => w,
            };
            limits.push(entry(
                LimitKind::ConnectorConcurrency,
                Some(name),
                now.concurrency as u64,
                since(now.concurrency_waited, |c| c.concurrency_waited),
            ));
            if let Some(per_second) = now.per_second {
                limits.push(entry(
                    LimitKind::RateLimit,
                    Some(name),
                    u64::from(per_second),
                    since(now.rate_waited, |c| c.rate_waited),
                ));
            }
        }
        limits.push(entry(
            LimitKind::Parallelism,
            None,
            parallelism as u64,
            after.parallelism.since(before.parallelism),
        ));
        if let Some((n, waited)) = runs {
            limits.push(entry(LimitKind::RunConcurrency, None, n as u64, waited));
        }
        let mut report = LimitReport {
            binding: None,
            limits,
        };
        report.bind();
        report
    }

    /// Adds the waits of `other` (a later tick of the same command) to these.
    pub fn merge(&mut self, other: &LimitReport) {
        for l in &other.limits {
            match self
                .limits
                .iter_mut()
                .find(|m| m.limit == l.limit && m.connector == l.connector)
            {
                Some(m) => {
                    m.waits += l.waits;
                    m.waited_seconds += l.waited_seconds;
                    m.value = l.value;
                }
                None => self.limits.push(l.clone()),
            }
        }
        self.limits.sort_by_key(|l| l.limit as u8);
        self.bind();
    }

    fn bind(&mut self) {
        let longest = self
            .limits
            .iter()
            .map(|l| l.waited_seconds)
            .fold(0.0, f64::max);
        self.binding = (longest >= FLOOR_SECONDS)
            .then(|| {
                self.limits
                    .iter()
                    .find(|l| l.waited_seconds >= longest * NOTICEABLE)
                    .cloned()
            })
            .flatten();
    }

    /// One line for people: which limit bound, how long work waited on each, and what
    /// raises the one that bound.
    pub fn describe(&self) -> String {
        let Some(b) = &self.binding else {
            return "limits: no call waited on a limit noticeably (0.1 s in all at most); the services' own speed set the pace"
                .to_owned();
        };
        let waited: Vec<String> = self
            .limits
            .iter()
            .filter(|l| l.waits > 0)
            .map(|l| {
                format!(
                    "{} {} waited {} for {}",
                    l.waits,
                    if l.limit == LimitKind::RunConcurrency {
                        "runs"
                    } else {
                        "calls"
                    },
                    seconds(l.waited_seconds),
                    name(l)
                )
            })
            .collect();
        let advice = match b.limit {
            LimitKind::ConnectorConcurrency => format!(
                "raise `concurrency:` of connector `{}` in dsrctl.yaml if the service allows more calls at once; `--concurrency` and `--parallelism` do not raise a connector's own cap",
                connector_name(b)
            ),
            LimitKind::RateLimit => format!(
                "the rate limit of connector `{}` (`rate_limit.per_second`) is the service's allowance; more runs or calls at once cannot go faster",
                connector_name(b)
            ),
            LimitKind::Parallelism => {
                "raise `--parallelism` (or `defaults.parallelism`) for more calls at once within a run".to_owned()
            }
            LimitKind::RunConcurrency => {
                "raise `--concurrency` for more runs at once".to_owned()
            }
        };
        format!(
            "limits: {} bound throughput ({}); {advice}",
            name(b),
            waited.join(", ")
        )
    }
}

fn connector_name(l: &LimitWait) -> &str {
    let full = l.connector.as_deref().unwrap_or("?");
    full.split_once('/').map_or(full, |(_, n)| n)
}

fn name(l: &LimitWait) -> String {
    match l.limit {
        LimitKind::ConnectorConcurrency => format!(
            "connector `{}`'s cap of {} call(s) in flight",
            connector_name(l),
            l.value
        ),
        LimitKind::RateLimit => format!(
            "connector `{}`'s rate limit of {}/s",
            connector_name(l),
            l.value
        ),
        LimitKind::Parallelism => format!("--parallelism {}", l.value),
        LimitKind::RunConcurrency => format!("--concurrency {} (runs at once)", l.value),
    }
}

fn seconds(s: f64) -> String {
    format!("{:.1?}", Duration::from_secs_f64(s))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn waited(ms: u64) -> Waited {
        Waited {
            waits: u64::from(ms > 0),
            nanos: ms * 1_000_000,
        }
    }

    fn snapshot(cap_ms: u64, rate_ms: u64, par_ms: u64) -> LimitSnapshot {
        LimitSnapshot {
            parallelism: waited(par_ms),
            connectors: [(
                "t1/api".to_owned(),
                ConnectorWaits {
                    concurrency: 4,
                    concurrency_waited: waited(cap_ms),
                    per_second: Some(5),
                    rate_waited: waited(rate_ms),
                },
            )]
            .into(),
        }
    }

    fn binding(after: LimitSnapshot, runs_ms: u64) -> Option<LimitKind> {
        let r = LimitReport::between(
            &LimitSnapshot::default(),
            &after,
            10,
            Some((8, waited(runs_ms))),
        );
        r.binding.map(|b| b.limit)
    }

    #[test]
    fn the_innermost_limit_that_made_work_wait_noticeably_binds() {
        assert_eq!(binding(snapshot(0, 0, 0), 0), None);
        // A few milliseconds of queueing bind nothing.
        assert_eq!(binding(snapshot(5, 0, 0), 0), None);
        assert_eq!(
            binding(snapshot(5_000, 0, 100), 20_000),
            Some(LimitKind::ConnectorConcurrency)
        );
        assert_eq!(
            binding(snapshot(0, 3_000, 0), 0),
            Some(LimitKind::RateLimit)
        );
        // A connector wait far below the others is noise.
        assert_eq!(
            binding(snapshot(10, 0, 4_000), 9_000),
            Some(LimitKind::Parallelism)
        );
        assert_eq!(
            binding(snapshot(0, 0, 0), 9_000),
            Some(LimitKind::RunConcurrency)
        );
    }

    #[test]
    fn waits_are_counted_between_the_snapshots_and_said_with_advice() {
        let before = snapshot(1_000, 0, 0);
        let after = snapshot(3_000, 0, 0);
        let r = LimitReport::between(&before, &after, 10, None);
        let b = r.binding.clone().expect("binding");
        assert_eq!(b.limit, LimitKind::ConnectorConcurrency);
        assert!((b.waited_seconds - 2.0).abs() < 1e-9);
        let line = r.describe();
        assert!(line.contains("connector `api`'s cap of 4"), "{line}");
        assert!(
            line.contains("do not raise a connector's own cap"),
            "{line}"
        );
    }
}
