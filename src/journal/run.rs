//! A run as the store keeps it: its mode, where it stands, and the plan it executes.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::Plan;

/// Whether a run previews or applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunMode {
    /// Reads only; mutations become change records.
    DryRun,
    /// Mutations are sent.
    Apply,
}

/// Where a run stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Steps are being executed.
    Running,
    /// Waiting for a manual task or a due time.
    Waiting,
    /// Every step ended well.
    Completed,
    /// A step failed; its dependants are blocked. Resume after fixing.
    Failed,
    /// Stopped by the user (Ctrl-C) before it ended; resumable.
    Interrupted,
    /// Given up by a person (`dsrctl abandon`), with a reason in the audit log; never
    /// continued. The request may then be run afresh.
    Abandoned,
}

impl RunStatus {
    /// Lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Waiting => "waiting",
            RunStatus::Completed => "completed",
            RunStatus::Failed => "failed",
            RunStatus::Interrupted => "interrupted",
            RunStatus::Abandoned => "abandoned",
        }
    }
    /// Whether the run may be resumed.
    pub fn is_unfinished(self) -> bool {
        !self.has_ended()
    }
    /// Whether the run has ended for good: completed, or abandoned.
    pub fn has_ended(self) -> bool {
        matches!(self, RunStatus::Completed | RunStatus::Abandoned)
    }
}

/// A run as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunRecord {
    /// Run id.
    pub id: String,
    /// Request id.
    pub request_id: String,
    /// Mode.
    pub mode: RunMode,
    /// Status.
    pub status: RunStatus,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// Last status change.
    pub updated_at: DateTime<Utc>,
    /// The plan it executes.
    pub plan: Plan,
}
