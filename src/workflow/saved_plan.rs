//! A plan saved by `dsrctl plan -o`: the compiled plan plus the changes its dry run
//! previewed, sealed. `dsrctl apply` executes exactly those changes, or refuses when the file
//! was edited, or is stale.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{DryRun, Seal};
use crate::engine::ApplyFilter;
use crate::journal::{
    Change, DataKey, Plan, SealError, open_change, open_plan, seal_change, seal_plan,
};

/// Version of the saved plan file (2: sealed).
pub const SAVED_PLAN_FORMAT_VERSION: u32 = 2;

/// A saved plan. It holds the subject's identities (apply needs them) and the previewed
/// records; written by `dsrctl plan -o`, both are sealed with the project's data key (see
/// [`SavedPlan::sealed_at_rest`]), so the file holds no personal data in clear.
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
    /// The seal over everything above (see [`Seal`]); a plan without one is refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seal: Option<Seal>,
}

impl SavedPlan {
    /// The saved form of a complete dry run, sealed under `key`.
    pub fn new(dry: &DryRun, key: &[u8]) -> SavedPlan {
        let mut saved = SavedPlan {
            format_version: SAVED_PLAN_FORMAT_VERSION,
            dry_run: dry.run_id.clone(),
            plan: dry.plan.clone(),
            changes: dry.changes.clone(),
            seal: None,
        };
        saved.seal = Some(Seal::new(key, &saved));
        saved
    }

    /// The saved form of a complete dry run with its personal data (the request's
    /// identities, corrections and note; each change's before, after and reason) sealed under
    /// `data_key`, then sealed against edits under `key`. [`SavedPlan::opened`] reverses it.
    pub fn sealed_at_rest(dry: &DryRun, key: &[u8], data_key: &DataKey) -> SavedPlan {
        let mut saved = SavedPlan {
            format_version: SAVED_PLAN_FORMAT_VERSION,
            dry_run: dry.run_id.clone(),
            plan: seal_plan(data_key, &dry.plan),
            changes: dry
                .changes
                .iter()
                .map(|c| seal_change(data_key, c))
                .collect(),
            seal: None,
        };
        saved.seal = Some(Seal::new(key, &saved));
        saved
    }

    /// The plan with its sealed personal data opened (a plan saved in clear is returned as
    /// it is). Check [`SavedPlan::edits`] first: the seal covers the file's form.
    pub fn opened(&self, data_key: &DataKey) -> Result<SavedPlan, SealError> {
        Ok(SavedPlan {
            format_version: self.format_version,
            dry_run: self.dry_run.clone(),
            plan: open_plan(Some(data_key), &self.plan)?,
            changes: self
                .changes
                .iter()
                .map(|c| open_change(Some(data_key), c))
                .collect::<Result<_, _>>()?,
            seal: self.seal.clone(),
        })
    }

    /// What was edited since the plan was sealed under `key`: one line per part. Empty when
    /// nothing was.
    pub fn edits(&self, key: &[u8]) -> Vec<String> {
        match &self.seal {
            Some(seal) => seal.check(key, self),
            None => vec![
                "the plan has no seal (it was written by an older dsrctl, or the seal was removed)"
                    .to_owned(),
            ],
        }
    }

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
