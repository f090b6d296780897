//! The journal checked against the audit log: every outcome of an apply run that has ended or
//! waits must match the digest its newest `step.outcome` audit entry keeps, so an outcome
//! edited in the store (a failed step made `succeeded`) is named wherever the run is shown.

use std::collections::HashMap;

use crate::journal::StepOutcome;
use crate::store::{AuditEntry, STEP_OUTCOME};

/// A journaled outcome the audit log does not vouch for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalMismatch {
    /// The step instance.
    pub instance: String,
    /// What does not match.
    pub problem: String,
}

impl std::fmt::Display for JournalMismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.instance, self.problem)
    }
}

/// The outcomes of `run` (an apply run) that differ from what the audit log recorded.
pub fn journal_mismatches(
    run: &str,
    outcomes: &[StepOutcome],
    entries: &[AuditEntry],
) -> Vec<JournalMismatch> {
    // The newest entry per instance wins: an outcome may change (waiting, then succeeded).
    let mut audited: HashMap<&str, (&str, &str, u64)> = HashMap::new();
    for e in entries
        .iter()
        .filter(|e| e.kind == STEP_OUTCOME && e.subject == run)
    {
        let field = |k: &str| e.detail.get(k).and_then(serde_json::Value::as_str);
        if let (Some(instance), Some(status), Some(digest)) =
            (field("instance"), field("status"), field("digest"))
        {
            audited.insert(instance, (status, digest, e.seq));
        }
    }
    outcomes
        .iter()
        .filter(|o| o.is_audited())
        .filter_map(|o| {
            let problem = match audited.get(o.instance.as_str()) {
                None => format!(
                    "journaled as {} but the audit log has no entry for it (added to the journal by hand, or written by a process that died before auditing it)",
                    o.status.as_str()
                ),
                Some((status, digest, seq)) if *digest != o.digest() => {
                    if *status == o.status.as_str() {
                        format!(
                            "journaled outcome differs from the one audit entry {seq} recorded (edited in the store)"
                        )
                    } else {
                        format!(
                            "journaled as {} but audit entry {seq} recorded {status} (edited in the store)",
                            o.status.as_str()
                        )
                    }
                }
                Some(_) => return None,
            };
            Some(JournalMismatch {
                instance: o.instance.clone(),
                problem,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::StepStatus;
    use chrono::Utc;
    use serde_json::json;

    fn entry(seq: u64, outcome: &StepOutcome) -> AuditEntry {
        AuditEntry::chained(
            (seq - 1, "x"),
            Utc::now(),
            STEP_OUTCOME,
            "run-1",
            json!({"instance": outcome.instance, "status": outcome.status.as_str(),
                   "digest": outcome.digest()}),
            None,
            None,
        )
    }

    #[test]
    fn an_outcome_edited_from_failed_to_succeeded_is_named() {
        let failed = StepOutcome::new("crm/drop", "crm/drop", StepStatus::Failed);
        let log = vec![entry(1, &failed)];
        assert!(journal_mismatches("run-1", std::slice::from_ref(&failed), &log).is_empty());
        let mut edited = failed.clone();
        edited.status = StepStatus::Succeeded;
        let found = journal_mismatches("run-1", &[edited], &log);
        assert_eq!(found.len(), 1);
        assert!(found[0].problem.contains("recorded failed"), "{}", found[0]);
        let unknown = StepOutcome::new("crm/other", "crm/other", StepStatus::Succeeded);
        assert_eq!(journal_mismatches("run-1", &[unknown], &log).len(), 1);
        let running = StepOutcome::new("crm/next", "crm/next", StepStatus::Running);
        assert!(journal_mismatches("run-1", &[running], &log).is_empty());
    }
}
