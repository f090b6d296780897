//! Starting a run of a request: one request has one live run.

use super::{Workflow, WorkflowError};
use crate::journal::{Plan, RunMode, RunRecord};
use crate::model::Request;

/// What `run` does with a request, decided by its newest run.
#[derive(Debug, Clone)]
pub enum Decision {
    /// No run yet (or only abandoned ones): plan, approve and start one.
    Start,
    /// An unfinished run (running, waiting, failed, interrupted): continue it.
    Resume(RunRecord),
}

impl Workflow {
    /// Decides what running `request` means now.
    pub async fn decide(&self, request: &Request) -> Result<Decision, WorkflowError> {
        Ok(match self.store.unfinished_run(&request.id).await? {
            Some(run) => Decision::Resume(self.store.run(&run).await?),
            None => Decision::Start,
        })
    }

    /// Records a new apply run of `plan` after the approval rule is satisfied (`approver`
    /// names who approved, when the rule asks for a person). Returns the run id; execute it
    /// with [`Workflow::execute`].
    pub async fn start(
        &self,
        plan: &Plan,
        approver: Option<&str>,
    ) -> Result<String, WorkflowError> {
        self.approve(plan, approver).await?;
        Ok(self.store.create_run(plan, RunMode::Apply).await?)
    }
}
