//! The preview half of the workflow: a dry run of a plan (reads only), and `apply`'s checks
//! of a saved plan before anything is sent.

use super::{Refusal, SavedPlan, Workflow, WorkflowError};
use crate::journal::{Change, Plan, RunMode, StepOutcome, StepStatus};

/// A finished dry run: what it would change, and the steps that failed, whose changes are
/// therefore unknown. A dry run with failures is incomplete, never "no changes".
#[derive(Debug, Clone)]
pub struct DryRun {
    /// The dry run's id in the store.
    pub run_id: String,
    /// The plan it previewed.
    pub plan: Plan,
    /// The changes it previewed.
    pub changes: Vec<Change>,
    /// Steps that failed or were blocked (step-level outcomes).
    pub failures: Vec<StepOutcome>,
}

impl DryRun {
    /// Whether every step could be previewed.
    pub fn complete(&self) -> bool {
        self.failures.is_empty()
    }
}

/// What a dry run's outcomes previewed: the changes, and the steps that failed or were
/// blocked (step-level outcomes), whose changes are therefore unknown.
pub fn previewed(outcomes: Vec<StepOutcome>) -> (Vec<Change>, Vec<StepOutcome>) {
    let changes = outcomes.iter().filter_map(|o| o.change.clone()).collect();
    let failures = outcomes
        .into_iter()
        .filter(|o| {
            o.instance == o.step && matches!(o.status, StepStatus::Failed | StepStatus::Blocked)
        })
        .collect();
    (changes, failures)
}

impl Workflow {
    /// Previews `plan`: a dry run that only reads, journaled as a run of its own.
    pub async fn dry_run(&self, plan: Plan) -> Result<DryRun, WorkflowError> {
        let run_id = self.store.create_run(&plan, RunMode::DryRun).await?;
        let engine = self.engine(&plan.request.tenant).await?;
        let result = engine
            .execute(&run_id, &plan, RunMode::DryRun, None)
            .await?;
        let (changes, failures) = previewed(result.outcomes);
        Ok(DryRun {
            run_id,
            plan,
            changes,
            failures,
        })
    }

    /// The saved form of a complete dry run, sealed with the project's plan key. An
    /// incomplete dry run is not saved: what its failed steps would change is unknown.
    pub fn save(&self, dry: &DryRun) -> Result<SavedPlan, WorkflowError> {
        if !dry.complete() {
            return Err(WorkflowError::Incomplete {
                failed: dry.failures.len(),
            });
        }
        Ok(SavedPlan::sealed_at_rest(
            dry,
            &self.plan_key()?,
            &self.data_key()?,
        ))
    }

    /// Checks that a saved plan may be applied now: nothing in it was edited since it was
    /// written (its seal), its inputs are unchanged and it is not too old, and a fresh dry run
    /// previews exactly the changes it holds. Returns the plan with its personal data opened
    /// (see [`SavedPlan::opened`]), which is what `apply` executes.
    pub async fn check_saved(&self, saved: &SavedPlan) -> Result<SavedPlan, WorkflowError> {
        let edits = saved.edits(&self.plan_key()?);
        if !edits.is_empty() {
            return Err(WorkflowError::Refused {
                why: Refusal::Edited,
                problems: edits,
            });
        }
        let saved = saved
            .opened(&self.data_key()?)
            .map_err(|e| WorkflowError::DataKey(e.to_string()))?;
        let max_age = self.project.config.plan.max_age.get();
        let problems = saved.staleness(&self.project.inputs, self.clock.now(), max_age);
        if !problems.is_empty() {
            return Err(WorkflowError::Refused {
                why: Refusal::Stale,
                problems,
            });
        }
        // Re-read every previewed target (a dry run) and refuse if any changed since.
        let fresh = self.dry_run(saved.plan.clone()).await?;
        let drift = saved.drift(&fresh.changes);
        if !drift.is_empty() {
            return Err(WorkflowError::Refused {
                why: Refusal::Drifted,
                problems: drift,
            });
        }
        Ok(saved)
    }
}
