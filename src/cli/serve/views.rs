//! What the API answers with: requests, runs, steps and tasks as JSON. Subject values are
//! left out or masked, as `dsrctl requests` and `task list` show them; the export package is
//! where a subject's data goes.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::journal::{RequestRecord, RunRecord, StepOutcome};
use crate::report::Scrubber;
use crate::workflow::OpenTask;

/// A recorded request and where it stands.
#[derive(Debug, Serialize, ToSchema)]
pub struct RequestView {
    /// Request id.
    pub id: String,
    /// `access`, `export`, `rectify`, `restrict` or `delete`.
    pub kind: String,
    /// The tenant whose services hold the data.
    pub tenant: String,
    /// `gdpr` or `ccpa`.
    pub jurisdiction: String,
    /// `received`, `approved`, `declined`, `running`, `waiting`, `completed` or `failed`.
    pub state: String,
    /// Why it is in this state (a decline, a failure), subject values masked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// When it was received.
    pub received: NaiveDate,
    /// The statutory deadline, extension included.
    pub deadline: NaiveDate,
    /// Whether the deadline was extended.
    pub extended: bool,
    /// Why the deadline was extended.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub extension_reason: Option<String>,
    /// Days to the deadline (negative when overdue); absent once the request has ended.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub days_left: Option<i64>,
    /// Whether it is open past its deadline.
    pub overdue: bool,
    /// Why a person must approve it (`POST /v1/requests/{id}/approve`), when one must.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approval_needed: Option<String>,
    /// Its newest run, once it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run: Option<RunSummary>,
}

impl RequestView {
    /// The view of a record on `today`.
    pub fn of(r: &RequestRecord, today: NaiveDate) -> Self {
        let scrubber = Scrubber::for_request(&r.request);
        let open = !r.state.is_final();
        RequestView {
            id: r.request.id.clone(),
            kind: r.request.kind.to_string(),
            tenant: r.request.tenant.clone(),
            jurisdiction: r.request.jurisdiction.as_str().to_owned(),
            state: r.state.as_str().to_owned(),
            reason: r.reason.as_deref().map(|t| scrubber.scrub(t)),
            received: r.received,
            deadline: r.deadline,
            extended: r.extended,
            extension_reason: r.extension_reason.as_deref().map(|t| scrubber.scrub(t)),
            days_left: open.then(|| r.days_left(today)),
            overdue: open && r.days_left(today) < 0,
            approval_needed: None,
            run: None,
        }
    }
}

/// The requests visible to the token, open ones first, nearest deadline first.
#[derive(Debug, Serialize, ToSchema)]
pub struct RequestList {
    /// The requests.
    pub requests: Vec<RequestView>,
}

/// A run in brief.
#[derive(Debug, Serialize, ToSchema)]
pub struct RunSummary {
    /// Run id.
    pub id: String,
    /// The request it fulfils.
    pub request: String,
    /// `dry_run` or `apply`.
    pub mode: String,
    /// `running`, `waiting`, `completed`, `failed`, `interrupted` or `abandoned`.
    pub status: String,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// Its last status change.
    pub updated_at: DateTime<Utc>,
}

impl RunSummary {
    /// The summary of a run.
    pub fn of(run: &RunRecord) -> Self {
        RunSummary {
            id: run.id.clone(),
            request: run.request_id.clone(),
            mode: match run.mode {
                crate::journal::RunMode::DryRun => "dry_run",
                crate::journal::RunMode::Apply => "apply",
            }
            .to_owned(),
            status: run.status.as_str().to_owned(),
            created_at: run.created_at,
            updated_at: run.updated_at,
        }
    }
}

/// The runs of a request, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct RunList {
    /// The runs.
    pub runs: Vec<RunSummary>,
}

/// A run with its steps.
#[derive(Debug, Serialize, ToSchema)]
pub struct RunDetail {
    /// The run.
    #[serde(flatten)]
    pub run: RunSummary,
    /// Each journaled step instance.
    pub steps: Vec<StepView>,
}

/// One journaled step instance.
#[derive(Debug, Serialize, ToSchema)]
pub struct StepView {
    /// Instance key (`service.step`, `#n` for a `for_each` instance).
    pub instance: String,
    /// `pending`, `running`, `succeeded`, `failed`, `waiting`, `skipped`, ...
    pub status: String,
    /// Attempts made.
    pub attempts: u32,
    /// Records found.
    pub found: u64,
    /// Rows or objects changed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub affected: Option<u64>,
    /// What happened, subject values masked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// When it started.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started_at: Option<DateTime<Utc>>,
    /// When it ended.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<DateTime<Utc>>,
    /// When it is due (a waiting step).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub due_at: Option<DateTime<Utc>>,
}

impl RunDetail {
    /// A run with its outcomes.
    pub fn of(run: &RunRecord, outcomes: &[StepOutcome]) -> Self {
        let scrubber = Scrubber::for_request(&run.plan.request);
        RunDetail {
            run: RunSummary::of(run),
            steps: outcomes
                .iter()
                .map(|o| StepView {
                    instance: o.instance.clone(),
                    status: o.status.as_str().to_owned(),
                    attempts: o.attempts,
                    found: o.found,
                    affected: o.affected,
                    message: o.message.as_deref().map(|m| scrubber.scrub(m)),
                    started_at: o.started_at,
                    finished_at: o.finished_at,
                    due_at: o.due_at,
                })
                .collect(),
        }
    }
}

/// A task waiting for a person.
#[derive(Debug, Serialize, ToSchema)]
pub struct TaskView {
    /// The run waiting for it.
    pub run: String,
    /// The request.
    pub request: String,
    /// The step instance to complete (`POST /v1/runs/{run}/tasks/{step}/done`).
    pub step: String,
    /// `manual`, or `unsettled-mutation` (a mutation that may have been sent).
    pub kind: String,
    /// What to do, subject values masked.
    pub instructions: String,
    /// Who it is assigned to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub assignee: Option<String>,
    /// The evidence asked for.
    pub evidence_wanted: Vec<String>,
    /// When it is due.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub due: Option<DateTime<Utc>>,
    /// Since when it waits.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub waiting_since: Option<DateTime<Utc>>,
}

impl TaskView {
    /// The view of an open task.
    pub fn of(t: &OpenTask, project: &crate::load::Project) -> Self {
        let scrubber = Scrubber::for_request(&t.run.plan.request);
        TaskView {
            run: t.run.id.clone(),
            request: t.run.request_id.clone(),
            step: t.outcome.instance.clone(),
            kind: t.kind().to_owned(),
            instructions: scrubber.scrub(t.outcome.message.as_deref().unwrap_or_default()),
            assignee: t.assignee(project),
            evidence_wanted: t.evidence_wanted(),
            due: t.outcome.due_at,
            waiting_since: t.outcome.started_at,
        }
    }
}

/// The open tasks visible to the token, the earliest due first.
#[derive(Debug, Serialize, ToSchema)]
pub struct TaskList {
    /// The tasks.
    pub tasks: Vec<TaskView>,
}

/// A task recorded.
#[derive(Debug, Serialize, ToSchema)]
pub struct TaskRecorded {
    /// The run; a worker continues it at its next tick.
    pub run: String,
    /// The step instance.
    pub step: String,
    /// `succeeded` (done) or `failed`.
    pub status: String,
    /// Who recorded it (`api:TOKEN`).
    pub by: String,
    /// The evidence stored.
    pub evidence: Vec<EvidenceView>,
}

/// An evidence file as stored.
#[derive(Debug, Serialize, ToSchema)]
pub struct EvidenceView {
    /// File name.
    pub name: String,
    /// SHA-256 of its content, hex.
    pub sha256: String,
    /// Its size in bytes.
    pub size: u64,
}

/// A reason for a decision: required to decline or extend, optional to approve.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReasonBody {
    /// Why.
    #[serde(default)]
    pub reason: Option<String>,
}

/// The reason a decline or an extension needs: one that is not blank.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // Only the OpenAPI document reads it; the calls parse a `ReasonBody`.
pub struct RequiredReason {
    /// Why; not blank.
    #[schema(pattern = r"\S")]
    pub reason: String,
}
