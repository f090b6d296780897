//! `dsrctl purge`: once a request is closed (completed or declined) and its retention has
//! passed, its personal data goes (the subject's identities, corrections and note; captured
//! values, previews and collected records; the spool files), while its evidence stays: the
//! request's kind, dates and state, every step's status, counts, digests and verification
//! result, manual tasks with their evidence, and the audit log, where the purge is recorded.

use std::path::Path;

use chrono::NaiveDate;
use serde_json::{Value, json};

use super::{Workflow, WorkflowError};
use crate::journal::{Plan, RequestRecord, StepOutcome};
use crate::model::{Identity, Request};
use crate::report::Scrubber;

/// What stands in for a purged value.
pub const PURGED: &str = "[purged]";

/// What a purge did to one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Purged {
    /// Request id.
    pub request: String,
    /// Runs whose plan and journal were purged.
    pub runs: usize,
    /// Step outcomes purged.
    pub outcomes: usize,
    /// Spool files of collected records removed.
    pub spool_files: usize,
}

impl Workflow {
    /// Closed requests (completed or declined) whose last change was before `before`, and
    /// not purged yet: what [`Workflow::purge`] would purge.
    pub async fn purgeable(&self, before: NaiveDate) -> Result<Vec<RequestRecord>, WorkflowError> {
        Ok(self
            .store
            .requests()
            .await?
            .into_iter()
            .filter(|r| {
                r.state.is_final() && r.updated_at.date_naive() < before && !is_purged(&r.request)
            })
            .collect())
    }

    /// Purges the personal data of the closed requests of [`Workflow::purgeable`], keeping
    /// their evidence, and records each in the audit log (`request.purged`).
    pub async fn purge(&self, before: NaiveDate) -> Result<Vec<Purged>, WorkflowError> {
        let mut done = Vec::new();
        let runs = self.store.runs(u32::MAX).await?;
        for record in self.purgeable(before).await? {
            let request = &record.request;
            let scrubber = Scrubber::for_request(request);
            let clean = purged_request(request);
            let mut report = Purged {
                request: request.id.clone(),
                runs: 0,
                outcomes: 0,
                spool_files: 0,
            };
            for run in runs.iter().filter(|r| r.request_id == request.id) {
                for outcome in self.store.outcomes(&run.id).await? {
                    let purged = purged_outcome(&outcome, &scrubber);
                    if run.mode == crate::journal::RunMode::Apply {
                        // The purged outcome is audited anew, so the journal still matches
                        // the log (the earlier entry keeps the digest it had).
                        crate::store::record_audited(self.store.as_ref(), &run.id, &purged).await?;
                    } else {
                        self.store.record(&run.id, &purged).await?;
                    }
                    report.outcomes += 1;
                }
                self.store
                    .replace_plan(&run.id, &purged_plan(&run.plan, &clean))
                    .await?;
                report.spool_files += remove_dir(&self.state_dir.join("runs").join(&run.id))
                    .map_err(|e| WorkflowError::Purge(format!("removing spool files: {e}")))?;
                report.runs += 1;
            }
            // The request last: a purge cut short is found again and finished next time.
            self.store.replace_request(&clean).await?;
            self.store
                .append_audit(
                    "request.purged",
                    &request.id,
                    json!({
                        "closed_before": before.to_string(),
                        "runs": report.runs,
                        "outcomes": report.outcomes,
                        "spool_files": report.spool_files,
                    }),
                    None,
                )
                .await?;
            done.push(report);
        }
        Ok(done)
    }
}

/// Whether a request's personal data is already purged.
pub fn is_purged(request: &Request) -> bool {
    request.note.as_deref() == Some(PURGED)
}

fn purged_request(request: &Request) -> Request {
    let mut r = request.clone();
    for identity in r.subject.values_mut() {
        *identity = match identity {
            Identity::One(_) => Identity::One(PURGED.to_owned()),
            Identity::Many(vs) => Identity::Many(vec![PURGED.to_owned(); vs.len()]),
        };
    }
    r.corrections = r.corrections.as_ref().map(|c| {
        c.keys()
            .map(|k| (k.clone(), Value::String(PURGED.to_owned())))
            .collect()
    });
    r.note = Some(PURGED.to_owned());
    r
}

fn purged_plan(plan: &Plan, request: &Request) -> Plan {
    let mut p = plan.clone();
    p.request = request.clone();
    p
}

/// The outcome without personal data: captured values and the previewed before and after
/// go, texts lose the subject's values; status, counts, digests and times stay.
fn purged_outcome(outcome: &StepOutcome, scrubber: &Scrubber) -> StepOutcome {
    let mut o = outcome.clone();
    for v in o.captures.values_mut() {
        *v = Value::String(PURGED.to_owned());
    }
    o.message = scrubber.scrub_opt(o.message.as_deref());
    if let Some(v) = o.verification.as_mut() {
        v.detail = scrubber.scrub(&v.detail);
    }
    if let Some(t) = o.task.as_mut() {
        t.note = scrubber.scrub_opt(t.note.as_deref());
    }
    if let Some(c) = o.change.as_mut() {
        c.before = c.before.as_ref().map(|_| Value::String(PURGED.to_owned()));
        c.after = c.after.as_ref().map(|_| Value::String(PURGED.to_owned()));
        c.reason = scrubber.scrub_opt(c.reason.as_deref());
    }
    o
}

/// Removes a directory and everything under it; the number of files removed.
fn remove_dir(dir: &Path) -> std::io::Result<usize> {
    if !dir.exists() {
        return Ok(0);
    }
    let mut files = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d)? {
            let entry = entry?;
            if entry.file_type()?.is_dir() {
                stack.push(entry.path());
            } else {
                files += 1;
            }
        }
    }
    std::fs::remove_dir_all(dir)?;
    Ok(files)
}
