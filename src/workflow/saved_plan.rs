//! A plan saved by `dsrctl plan -o`: the compiled plan plus the changes its dry run
//! previewed. `dsrctl apply` executes exactly those changes, or refuses when stale.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::engine::ApplyFilter;
use crate::journal::{Change, Plan};

/// Version of the saved plan file.
pub const SAVED_PLAN_FORMAT_VERSION: u32 = 1;

/// A saved plan. It holds the subject's identities (apply needs them): keep it as
/// confidential as the request itself.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SavedPlan {
    /// Version of this file format.
    pub format_version: u32,
    /// The dry run that previewed the changes.
    pub dry_run: String,
    /// The compiled plan.
    pub plan: Plan,
    /// The previewed changes.
    pub changes: Vec<Change>,
}

impl SavedPlan {
    /// The changes `apply` may send, by instance.
    pub fn filter(&self) -> ApplyFilter {
        ApplyFilter {
            changes: self
                .changes
                .iter()
                .map(|c| (c.instance.clone(), c.clone()))
                .collect(),
        }
    }

    /// Differences between the previewed changes and the changes a fresh dry run shows:
    /// a target that changed, appeared or disappeared since the plan was made.
    pub fn drift(&self, fresh: &[Change]) -> Vec<String> {
        let mut problems = Vec::new();
        for c in &self.changes {
            match fresh.iter().find(|f| f.instance == c.instance) {
                None => problems.push(format!(
                    "{}: the change is no longer needed or possible",
                    c.instance
                )),
                Some(f) if f.fingerprint != c.fingerprint || f.action != c.action => {
                    problems.push(format!(
                        "{}: the target changed since the plan was made (its \"before\" differs)",
                        c.instance
                    ))
                }
                Some(_) => {}
            }
        }
        for f in fresh
            .iter()
            .filter(|f| !self.changes.iter().any(|c| c.instance == f.instance))
        {
            problems.push(format!(
                "{}: a new change that the plan did not preview",
                f.instance
            ));
        }
        problems
    }

    /// Why the plan may not be applied any more: input files changed since it was made,
    /// or it is older than `max_age`. Empty when it is fresh.
    pub fn staleness(
        &self,
        inputs_now: &BTreeMap<String, String>,
        now: DateTime<Utc>,
        max_age: std::time::Duration,
    ) -> Vec<String> {
        let mut problems = Vec::new();
        if self.format_version != SAVED_PLAN_FORMAT_VERSION {
            problems.push(format!(
                "the plan file has format version {}, this dsrctl reads {}",
                self.format_version, SAVED_PLAN_FORMAT_VERSION
            ));
        }
        for (path, digest) in &self.plan.inputs {
            match inputs_now.get(path) {
                None => problems.push(format!("{path} was removed since the plan was made")),
                Some(d) if d != digest => {
                    problems.push(format!("{path} changed since the plan was made"));
                }
                Some(_) => {}
            }
        }
        for path in inputs_now
            .keys()
            .filter(|p| !self.plan.inputs.contains_key(*p))
        {
            problems.push(format!("{path} was added since the plan was made"));
        }
        let age = now - self.plan.created_at;
        if age > chrono::Duration::from_std(max_age).unwrap_or(chrono::Duration::MAX) {
            problems.push(format!(
                "the plan is {} old, more than the allowed {} (`plan.max_age` in dsrctl.yaml)",
                humantime::format_duration(std::time::Duration::from_secs(
                    age.num_seconds().max(0) as u64
                )),
                humantime::format_duration(max_age)
            ));
        }
        problems
    }
}
