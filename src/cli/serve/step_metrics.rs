//! Step latency and retries per connector, as this process's workers journal each step's end:
//! an [`Observer`] of the engine, rendered by `/metrics`.
//!
//! Counted per process, not read back from the store: every step end is journaled by exactly
//! one process, so the sum of the workers' series (`sum by (connector)` in Prometheus) is the
//! fleet's, with nothing counted twice, and a scrape costs no store query however long the
//! journal grows. A worker's counts start at zero when it starts, as Prometheus counters may.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;

use crate::engine::Observer;
use crate::journal::{PlannedStep, StepOutcome};

/// Upper bounds of the latency histogram's buckets, in seconds (`+Inf` follows).
const BUCKETS: [f64; 14] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
];

/// The step series of one connector.
#[derive(Debug, Default, Clone)]
struct Series {
    /// Observations at or below each bucket's bound (cumulative when rendered).
    buckets: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
    retries: u64,
    by_status: BTreeMap<&'static str, u64>,
}

/// Step latencies, retries and ends per connector, observed as steps end.
#[derive(Debug, Default)]
pub struct StepMetrics {
    series: Mutex<BTreeMap<String, Series>>,
}

impl StepMetrics {
    /// Appends the step series in Prometheus text format.
    pub fn render(&self, out: &mut String) {
        let series = self
            .series
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let _ = writeln!(
            out,
            "# HELP dsrctl_step_duration_seconds Time from a step's start to its end (one call with its retries; each element of a for_each), by connector, as this process's workers journaled them."
        );
        let _ = writeln!(out, "# TYPE dsrctl_step_duration_seconds histogram");
        for (connector, s) in &series {
            let label = escape(connector);
            let mut cumulative = 0;
            for (bound, n) in BUCKETS.iter().zip(s.buckets) {
                cumulative += n;
                let _ = writeln!(
                    out,
                    "dsrctl_step_duration_seconds_bucket{{connector=\"{label}\",le=\"{bound}\"}} {cumulative}"
                );
            }
            let _ = writeln!(
                out,
                "dsrctl_step_duration_seconds_bucket{{connector=\"{label}\",le=\"+Inf\"}} {}",
                s.count
            );
            let _ = writeln!(
                out,
                "dsrctl_step_duration_seconds_sum{{connector=\"{label}\"}} {}",
                s.sum
            );
            let _ = writeln!(
                out,
                "dsrctl_step_duration_seconds_count{{connector=\"{label}\"}} {}",
                s.count
            );
        }
        let _ = writeln!(
            out,
            "# HELP dsrctl_step_retries_total Calls sent again after a failed attempt (429, 5xx, connection errors), by connector."
        );
        let _ = writeln!(out, "# TYPE dsrctl_step_retries_total counter");
        for (connector, s) in &series {
            let _ = writeln!(
                out,
                "dsrctl_step_retries_total{{connector=\"{}\"}} {}",
                escape(connector),
                s.retries
            );
        }
        let _ = writeln!(
            out,
            "# HELP dsrctl_steps_total Step ends journaled by this process, by connector and status."
        );
        let _ = writeln!(out, "# TYPE dsrctl_steps_total counter");
        for (connector, s) in &series {
            for (status, n) in &s.by_status {
                let _ = writeln!(
                    out,
                    "dsrctl_steps_total{{connector=\"{}\",status=\"{status}\"}} {n}",
                    escape(connector)
                );
            }
        }
    }
}

impl Observer for StepMetrics {
    fn started(&self, _step: &PlannedStep, _instance: &str) {}

    fn finished(&self, step: &PlannedStep, outcome: &StepOutcome) {
        // A for_each step's own outcome sums its elements, which are counted one by one.
        if step.for_each.is_some() && outcome.instance == outcome.step {
            return;
        }
        let (Some(connector), true) = (&step.connector, outcome.status.is_final()) else {
            return;
        };
        let mut series = self.series.lock().unwrap_or_else(|e| e.into_inner());
        let s = series.entry(connector.clone()).or_default();
        *s.by_status.entry(outcome.status.as_str()).or_default() += 1;
        s.retries += u64::from(outcome.attempts.saturating_sub(1));
        // Steps that never started (blocked, skipped) made no call: no latency.
        if let (Some(start), Some(end)) = (outcome.started_at, outcome.finished_at) {
            let secs = (end - start).num_microseconds().unwrap_or(0).max(0) as f64 / 1e6;
            s.count += 1;
            s.sum += secs;
            if let Some(i) = BUCKETS.iter().position(|b| secs <= *b) {
                s.buckets[i] += 1;
            }
        }
    }
}

/// A label value as the text format wants it.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}
