//! Starting a run of a request. One request has one live run: a request whose run completed
//! is done (running it once more is asked for explicitly, with a reason), and one whose run
//! has not ended continues that run.

use serde_json::json;

use super::{Workflow, WorkflowError};
use crate::journal::{Plan, RequestState, RunMode, RunRecord, RunStatus};
use crate::model::Request;
use crate::store::StoreError;

/// What running a request means now, decided by its newest run.
#[derive(Debug, Clone)]
pub enum Decision {
    /// Plan, approve and start a run: there is none yet, the last one was abandoned, or the
    /// last one completed and running the request again was asked for.
    Start {
        /// The newest run before this one, if any.
        previous: Option<RunRecord>,
    },
    /// Continue the unfinished run (running, waiting, failed, interrupted).
    Resume(RunRecord),
    /// The request is done: nothing to send. Show this run.
    Completed(RunRecord),
}

/// Running a completed request once more: which run came before, and why.
#[derive(Debug, Clone, Copy)]
pub struct Again<'a> {
    /// The completed run.
    pub previous: &'a str,
    /// Why the request runs again (audited).
    pub reason: &'a str,
    /// Who asks (audited).
    pub by: &'a str,
}

impl Workflow {
    /// Decides what running `request` means now. `again`: the person asked to run a
    /// completed request once more (refused while a run has not ended).
    pub async fn decide(&self, request: &Request, again: bool) -> Result<Decision, WorkflowError> {
        if let Some(record) = self.recorded(&request.id).await?
            && record.state == RequestState::Declined
        {
            return Err(WorkflowError::Declined {
                id: request.id.clone(),
                reason: record.reason,
            });
        }
        Ok(match self.store.latest_run(&request.id).await? {
            None => Decision::Start { previous: None },
            Some(run) if run.status == RunStatus::Abandoned => Decision::Start {
                previous: Some(run),
            },
            Some(run) if run.status == RunStatus::Completed => {
                if again {
                    Decision::Start {
                        previous: Some(run),
                    }
                } else {
                    Decision::Completed(run)
                }
            }
            Some(run) if again => {
                return Err(WorkflowError::Unfinished {
                    request: request.id.clone(),
                    run: run.id,
                    status: run.status,
                });
            }
            Some(run) => Decision::Resume(run),
        })
    }

    /// Records a new apply run of `plan` once the approval rule is satisfied (`approver`
    /// names who approved, when the rule asks for a person), and `again` when a completed
    /// request runs once more. Returns the run id; execute it with [`Workflow::execute`].
    pub async fn start(
        &self,
        plan: &Plan,
        approver: Option<&str>,
        again: Option<Again<'_>>,
    ) -> Result<String, WorkflowError> {
        let id = &plan.request.id;
        self.may_start(id, again.is_some()).await?;
        let approved_by = self.approve(plan, approver).await?;
        if let Some(record) = self.recorded(id).await?
            && record.state == RequestState::Received
        {
            // Recorded at intake and approved here: the request moves on like
            // `dsrctl request approve` would move it.
            self.store
                .set_request_state(id, RequestState::Approved, None)
                .await?;
            self.store
                .append_audit(
                    "request.approved",
                    id,
                    json!({"holder": self.holder}),
                    approved_by.as_deref(),
                )
                .await?;
        }
        let run = match self.store.create_run(plan, RunMode::Apply).await {
            Ok(run) => run,
            // Another process started the request between the check above and here.
            Err(StoreError::LiveRun(_)) => {
                self.may_start(id, false).await?;
                return Err(StoreError::LiveRun(id.clone()).into());
            }
            Err(e) => return Err(e.into()),
        };
        if let Some(again) = again {
            self.store
                .append_audit(
                    "run.again",
                    id,
                    json!({"run": run, "previous": again.previous, "reason": again.reason}),
                    Some(again.by),
                )
                .await?;
        }
        Ok(run)
    }

    /// Refuses a new run of a request that has one not ended (one request, one live run), or
    /// whose run completed unless `again`.
    pub async fn may_start(&self, request: &str, again: bool) -> Result<(), WorkflowError> {
        match self.store.latest_run(request).await? {
            Some(run) if run.status.is_unfinished() => Err(WorkflowError::Unfinished {
                request: request.to_owned(),
                run: run.id,
                status: run.status,
            }),
            Some(run) if run.status == RunStatus::Completed && !again => {
                Err(WorkflowError::AlreadyCompleted {
                    request: request.to_owned(),
                    run: run.id,
                })
            }
            _ => Ok(()),
        }
    }

    /// The request as recorded at intake, if it was.
    async fn recorded(
        &self,
        id: &str,
    ) -> Result<Option<crate::journal::RequestRecord>, WorkflowError> {
        match self.store.request(id).await {
            Ok(r) => Ok(Some(r)),
            Err(StoreError::RequestNotFound(_)) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }
}
