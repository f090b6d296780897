//! What stops a workflow operation. A step that fails is an outcome of its run, not an error.

use crate::compile::CompileError;
use crate::connectors::ConnectorError;
use crate::engine::EngineError;
use crate::journal::RunStatus;
use crate::store::StoreError;
use crate::workflow::DRP_ID_PREFIX;

/// Why `apply` refuses a saved plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Its inputs changed, or it is too old.
    Stale,
    /// The file was edited after `dsrctl plan -o` wrote it.
    Edited,
    /// The services changed since its dry run.
    Drifted,
}

/// Errors of the workflow.
#[derive(Debug, thiserror::Error)]
pub enum WorkflowError {
    /// The state store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A request id of the kind only the Data Rights Protocol intake gives.
    #[error(
        "request id `{0}`: ids beginning `{DRP_ID_PREFIX}` are those of requests received through the Data Rights Protocol; choose another id"
    )]
    ReservedId(String),
    /// The engine stopped (the journal could not be written).
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// The request does not compile with today's playbooks.
    #[error(transparent)]
    Compile(#[from] CompileError),
    /// A tenant's connectors could not be built.
    #[error("building the connectors of tenant `{tenant}`: {source}")]
    Connectors {
        /// Tenant.
        tenant: String,
        /// Cause.
        source: ConnectorError,
    },
    /// The approval rule asks for a person and none was named.
    #[error("{why}: a person must approve it; nothing was changed (`--approve NAME` records who)")]
    NotApproved {
        /// What in the plan needs the approval.
        why: String,
    },
    /// Another process holds the run's lease.
    #[error(
        "run {run} is being executed by {holder} right now (it holds the run's lease); try again when it ends"
    )]
    Leased {
        /// Run id.
        run: String,
        /// Who holds the lease.
        holder: String,
    },
    /// A dry run was asked to be resumed, repaired or abandoned.
    #[error("run {run} is a dry run; dry runs are not resumed or repaired, plan again")]
    DryRun {
        /// Run id.
        run: String,
    },
    /// The run has ended and cannot be continued or changed.
    #[error("run {run} is {}; {}", status.as_str(), ended_hint(*status))]
    Ended {
        /// Run id.
        run: String,
        /// How it ended.
        status: RunStatus,
    },
    /// A request that was declined is not run.
    #[error("request `{id}` was declined{}; it is not run", reason.as_deref().map(|r| format!(" ({r})")).unwrap_or_default())]
    Declined {
        /// Request id.
        id: String,
        /// Why it was declined.
        reason: Option<String>,
    },
    /// A request whose run has not ended gets no second run.
    #[error(
        "request `{request}` has an unfinished run {run} ({}): resume, replan or abandon it (one request has one live run; `--again` is for a completed request)",
        status.as_str()
    )]
    Unfinished {
        /// Request id.
        request: String,
        /// Its unfinished run.
        run: String,
        /// How the run stands.
        status: RunStatus,
    },
    /// The playbooks no longer have steps the run has partly carried out.
    #[error(
        "run {run} has already acted on {} without finishing, and today's playbooks no longer have {}: keep {} in the playbook for this replan (what finished is kept), settle what a crash left running (`dsrctl task done|fail`), or abandon the run",
        steps.iter().map(|s| format!("`{s}`")).collect::<Vec<_>>().join(", "),
        if steps.len() == 1 { "it" } else { "them" },
        if steps.len() == 1 { "it" } else { "them" }
    )]
    RemovedWhileActing {
        /// Run id.
        run: String,
        /// The steps.
        steps: Vec<String>,
    },
    /// The run changed between showing a replan and putting it in place.
    #[error(
        "run {run} changed while its replan was shown (another process executed or replanned it); replan again"
    )]
    Moved {
        /// Run id.
        run: String,
    },
    /// A request whose run completed is not run again unless asked for.
    #[error(
        "request `{request}` was completed by run {run}; nothing was sent (`dsrctl run REQUEST --again --reason \"...\"` runs it once more)"
    )]
    AlreadyCompleted {
        /// Request id.
        request: String,
        /// The completed run.
        run: String,
    },
    /// A saved plan may not be applied.
    #[error("{}", refusal_headline(*why))]
    Refused {
        /// Why.
        why: Refusal,
        /// Each problem found.
        problems: Vec<String>,
    },
    /// A dry run with failed steps is not saved for `apply`.
    #[error(
        "{failed} step(s) of the dry run could not be previewed, so the plan is incomplete and is not saved"
    )]
    Incomplete {
        /// How many steps failed.
        failed: usize,
    },
    /// The key sealing saved plans could not be read or made.
    #[error("the key that seals saved plans: {0}")]
    PlanKey(String),
    /// The key sealing personal data at rest could not be read or made.
    #[error("the data key that seals personal data at rest: {0}")]
    DataKey(String),
    /// Personal data could not be purged.
    #[error("purging personal data: {0}")]
    Purge(String),
    /// The project's shared object storage failed.
    #[error("shared storage: {0}")]
    Storage(String),
    /// An evidence key (audit or signing) could not be read or made.
    #[error("{0}")]
    Key(String),
    /// A request names a tenant the project does not define.
    #[error("tenant `{tenant}` is not defined in dsrctl.yaml; defined tenants: {}", known.join(", "))]
    UnknownTenant {
        /// The tenant named.
        tenant: String,
        /// The tenants defined.
        known: Vec<String>,
    },
    /// An import file cannot be read at all.
    #[error("{0}")]
    Import(String),
    /// A manual task (or a mutation only a person can settle) cannot be recorded.
    #[error("{0}")]
    Task(String),
}

fn ended_hint(status: RunStatus) -> &'static str {
    match status {
        RunStatus::Completed => {
            "nothing is left to do (`--again --reason \"...\"` runs the request once more)"
        }
        RunStatus::Abandoned => "it was given up; run the request afresh",
        _ => "",
    }
}

fn refusal_headline(why: Refusal) -> &'static str {
    match why {
        Refusal::Stale => {
            "refusing to apply a stale plan; make a new one with `dsrctl plan REQUEST -o FILE`"
        }
        Refusal::Edited => {
            "refusing to apply: the plan file was edited after `dsrctl plan` wrote it; make a new plan"
        }
        Refusal::Drifted => {
            "refusing to apply: the services changed since the plan was made; make a new plan"
        }
    }
}
