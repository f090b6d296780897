//! Step outcomes: where each step instance stands, what it found, changed and verified,
//! and the manual tasks and evidence recorded against it.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::Change;

/// Where a step instance stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepStatus {
    /// Not started.
    Pending,
    /// Started; its end is not journaled yet (after a crash: maybe sent).
    Running,
    /// Done.
    Succeeded,
    /// Done: the service holds nothing for the subject.
    Absent,
    /// Failed after its retries.
    Failed,
    /// Not run because a step it needs failed or is blocked.
    Blocked,
    /// Not run, with a reason (e.g. an identity was not discovered).
    Skipped,
    /// Waiting for a person (manual task) or a due time (deferred step, poll).
    Waiting,
    /// Dry run: the mutation was previewed, not sent.
    Previewed,
}

impl StepStatus {
    /// Whether the step has ended for good (its dependants may start, or are blocked).
    pub fn is_final(self) -> bool {
        matches!(
            self,
            StepStatus::Succeeded
                | StepStatus::Absent
                | StepStatus::Failed
                | StepStatus::Blocked
                | StepStatus::Skipped
                | StepStatus::Previewed
        )
    }
    /// Whether a resumed run keeps this outcome. Failed and blocked steps run again on
    /// resume; everything else that ended stays as it is.
    pub fn is_settled(self) -> bool {
        self.is_final() && !matches!(self, StepStatus::Failed | StepStatus::Blocked)
    }
    /// Whether dependants may run after it.
    pub fn lets_dependants_run(self) -> bool {
        matches!(
            self,
            StepStatus::Succeeded | StepStatus::Absent | StepStatus::Previewed
        )
    }
    /// Lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            StepStatus::Pending => "pending",
            StepStatus::Running => "running",
            StepStatus::Succeeded => "succeeded",
            StepStatus::Absent => "absent",
            StepStatus::Failed => "failed",
            StepStatus::Blocked => "blocked",
            StepStatus::Skipped => "skipped",
            StepStatus::Waiting => "waiting",
            StepStatus::Previewed => "previewed",
        }
    }
}

/// The journaled result of one step instance (one `for_each` element is one instance:
/// `service/step#3`). Holds what reports and the export package need, so no service is
/// asked twice.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepOutcome {
    /// Instance key: the step key, plus `#<index>` for a `for_each` element.
    pub instance: String,
    /// The planned step's key.
    pub step: String,
    /// Status.
    pub status: StepStatus,
    /// When it started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<DateTime<Utc>>,
    /// When it ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<DateTime<Utc>>,
    /// Attempts made (connector calls, retries included).
    #[serde(default)]
    pub attempts: u32,
    /// Last HTTP status seen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_status: Option<u16>,
    /// Records found by a read.
    #[serde(default)]
    pub found: u64,
    /// Rows/resources changed by a mutation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub affected: Option<u64>,
    /// Captured values by name (may hold subject data: masked in every view).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub captures: BTreeMap<String, Value>,
    /// Error or skip reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Verification of a mutation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verification: Option<Verification>,
    /// The previewed change (dry run).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub change: Option<Change>,
    /// Manual task completion.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task: Option<TaskRecord>,
    /// When a waiting step is due again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub due_at: Option<DateTime<Utc>>,
    /// The mutation was sent and acknowledged (a deferred verification may still be due).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub sent: bool,
    /// Export package collection the records were spooled to (relative path in the run
    /// directory).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub collected: Option<String>,
    /// The mutation may have reached the service without an answer. Kept after it is
    /// settled, so the outcome says how it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub doubt: Option<Doubt>,
}

impl StepOutcome {
    /// A fresh outcome for an instance.
    pub fn new(instance: impl Into<String>, step: impl Into<String>, status: StepStatus) -> Self {
        StepOutcome {
            instance: instance.into(),
            step: step.into(),
            status,
            started_at: None,
            finished_at: None,
            attempts: 0,
            http_status: None,
            found: 0,
            affected: None,
            captures: BTreeMap::new(),
            message: None,
            verification: None,
            change: None,
            task: None,
            due_at: None,
            sent: false,
            collected: None,
            doubt: None,
        }
    }

    /// Whether this mutation may have been sent with nobody knowing whether it was done: a
    /// crash left it `running`, or its call failed in a way the service may have acted on,
    /// and neither its verification nor a person has settled that since. Such a mutation is
    /// not sent again before its verification (or, for an idempotent one, a resend) or a
    /// person decides.
    pub fn in_doubt(&self) -> bool {
        self.status == StepStatus::Running
            || (self.doubt.is_some() && self.task.is_none() && !self.status.is_settled())
    }

    /// Whether the audit log keeps this outcome's digest: every outcome of an apply run that
    /// has ended or waits (a step only starting is not yet an outcome).
    pub fn is_audited(&self) -> bool {
        !matches!(self.status, StepStatus::Running | StepStatus::Pending)
    }

    /// The SHA-256 of the outcome's canonical JSON, as its `step.outcome` audit entry keeps
    /// it: any change to the journaled outcome (its status above all) changes it.
    pub fn digest(&self) -> String {
        let value = serde_json::to_value(self).unwrap_or(Value::Null);
        super::sha256_hex(super::canonical_json(&value).as_bytes())
    }

    /// Whether it waits for a person to say whether it was done (`dsrctl task done|fail`).
    pub fn awaits_person(&self) -> bool {
        self.status == StepStatus::Waiting
            && self.doubt.is_some()
            && self.task.is_none()
            && self.due_at.is_none()
    }
}

/// Why a mutation may have reached the service without an answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Doubt {
    /// When it was sent (for an interruption: when the step started).
    pub at: DateTime<Utc>,
    /// What happened: the failure after the request was written (timeout, reset, lost or
    /// garbled answer), or the interruption.
    pub cause: String,
}

impl Doubt {
    /// "at 2026-11-02 10:00:00 UTC (cause)".
    pub fn describe(&self) -> String {
        format!(
            "at {} ({})",
            self.at.format("%Y-%m-%d %H:%M:%S UTC"),
            self.cause
        )
    }
}

/// Who completed a manual task, when, and the evidence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskRecord {
    /// Person who did it.
    pub by: String,
    /// When it was recorded.
    pub at: DateTime<Utc>,
    /// `done` or `failed`.
    pub result: String,
    /// Free-text note.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// Evidence files with their SHA-256.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub evidence: Vec<Evidence>,
}

/// One evidence file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evidence {
    /// File name as given.
    pub name: String,
    /// SHA-256 of the content.
    pub sha256: String,
    /// Where the store keeps it (relative to the state directory).
    pub stored_at: String,
}

/// How a mutation's effect was checked: by the step's `verify` read or the connector's own check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verification {
    /// Whether the effect is proven.
    pub passed: bool,
    /// What was checked and seen.
    pub detail: String,
}
