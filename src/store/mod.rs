//! The state store: runs, step outcomes (the journal), requests and the audit log.
//!
//! Two implementations share one trait: SQLite (embedded, WAL, under `.dsrctl/`) and
//! PostgreSQL (shared by several workers, with leases). An outcome is durable when the
//! call that records it returns.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::compile::Plan;
use crate::engine::StepOutcome;

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
        }
    }
    /// Whether the run may be resumed.
    pub fn is_unfinished(self) -> bool {
        !matches!(self, RunStatus::Completed)
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

/// Store errors.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database failed.
    #[error("state store: {0}")]
    Database(String),
    /// No such run.
    #[error("no run `{0}` in the state store; `dsrctl runs` lists them")]
    RunNotFound(String),
    /// A run id prefix matches several runs.
    #[error("run id `{0}` is ambiguous; give more characters")]
    Ambiguous(String),
    /// Stored data could not be read back.
    #[error("state store holds unreadable data: {0}")]
    Corrupt(String),
}

/// The journal the engine writes and reports read.
#[async_trait]
pub trait Store: Send + Sync {
    /// Records a new run of a plan and returns its id.
    async fn create_run(&self, plan: &Plan, mode: RunMode) -> Result<String, StoreError>;
    /// The newest unfinished apply run of a request, if any.
    async fn unfinished_run(&self, request_id: &str) -> Result<Option<String>, StoreError>;
    /// A run by id or unique id prefix.
    async fn run(&self, id: &str) -> Result<RunRecord, StoreError>;
    /// Runs, newest first.
    async fn runs(&self, limit: u32) -> Result<Vec<RunRecord>, StoreError>;
    /// Sets a run's status.
    async fn set_run_status(&self, run: &str, status: RunStatus) -> Result<(), StoreError>;
    /// Every journaled step instance of a run.
    async fn outcomes(&self, run: &str) -> Result<Vec<StepOutcome>, StoreError>;
    /// Records a step instance's start or end (insert or replace by instance key). Durable
    /// when it returns.
    async fn record(&self, run: &str, outcome: &StepOutcome) -> Result<(), StoreError>;
}

/// Hex SHA-256 of bytes: digests of inputs, evidence and audit entries.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(bytes))
}
