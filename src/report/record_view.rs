//! What a report knows beyond the run's own plan and journal: the project's config (task
//! assignees, the controller), the request's lifecycle record (an extension granted) and the
//! audit log (who approved and when, its head, whether it and the journal hold).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::journal::{RequestRecord, StepOutcome};
use crate::model::ProjectConfig;
use crate::store::AuditEntry;

use super::journal_check::journal_mismatches;

/// The record around a run that reports draw on; every part is optional (a report made from
/// the journal alone says what it lacks).
#[derive(Default)]
pub struct ReportContext<'a> {
    /// The project's config.
    pub config: Option<&'a ProjectConfig>,
    /// The request's lifecycle record, when the request was recorded at intake.
    pub request: Option<&'a RequestRecord>,
    /// The audit log, oldest first.
    pub audit: Option<&'a [AuditEntry]>,
    /// The store's audit head (sequence number and hash).
    pub audit_head: Option<(u64, String)>,
    /// Why the audit chain does not hold, when it does not (checked under the audit key).
    pub audit_break: Option<String>,
    /// When the report is made.
    pub generated_at: Option<DateTime<Utc>>,
}

/// Who approved the request, and when.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApprovalView {
    /// The person named by `--approve` or `request approve`.
    pub by: String,
    /// When the approval was recorded.
    pub at: DateTime<Utc>,
    /// Audit entry holding it.
    pub audit_seq: u64,
}

/// The audit log as the report saw it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditView {
    /// Sequence number of the newest entry when the report was made.
    pub head_seq: u64,
    /// Its hash (MAC): a checkpoint (`dsrctl audit checkpoint`) holding a later head proves
    /// this report's entries are still in the log.
    pub head_hash: String,
    /// Whether the chain holds under the audit key and this run's journal matches it.
    pub intact: bool,
    /// What does not hold.
    pub problems: Vec<String>,
}

/// A deadline extension that was granted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExtensionView {
    /// Why it was extended.
    pub reason: String,
    /// The new deadline (days left count to it).
    pub deadline: chrono::NaiveDate,
}

impl ReportContext<'_> {
    /// The newest approval of `request` in the audit log.
    pub fn approval(&self, request: &str) -> Option<ApprovalView> {
        self.audit?
            .iter()
            .rev()
            .filter(|e| {
                e.subject == request && matches!(e.kind.as_str(), "approved" | "request.approved")
            })
            .find_map(|e| {
                Some(ApprovalView {
                    by: e.actor.clone()?,
                    at: e.at,
                    audit_seq: e.seq,
                })
            })
    }

    /// The audit view of run `run` with these outcomes.
    pub fn audit_view(
        &self,
        run: &str,
        outcomes: &[StepOutcome],
        apply: bool,
    ) -> Option<AuditView> {
        let (seq, hash) = self.audit_head.clone()?;
        let mut problems: Vec<String> = self.audit_break.iter().cloned().collect();
        if apply && let Some(entries) = self.audit {
            problems.extend(
                journal_mismatches(run, outcomes, entries)
                    .into_iter()
                    .map(|m| format!("journal does not match the audit log: {m}")),
            );
        }
        Some(AuditView {
            head_seq: seq,
            head_hash: hash,
            intact: problems.is_empty(),
            problems,
        })
    }

    /// The extension granted to the request, if any.
    pub fn extension(&self) -> Option<ExtensionView> {
        let r = self.request.filter(|r| r.extended)?;
        Some(ExtensionView {
            reason: r
                .extension_reason
                .clone()
                .unwrap_or_else(|| "(no reason recorded)".to_owned()),
            deadline: r.deadline,
        })
    }
}
