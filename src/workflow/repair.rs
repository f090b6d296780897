//! Repairing a run that cannot finish as planned: `replan` recompiles its request with
//! today's playbooks and continues the same run, keeping every finished step's journaled
//! outcome (a finished mutation is never sent again); `abandon` gives the run up, so the
//! request can be run afresh.

use serde_json::json;

use super::plan_diff::{PlanDiff, StepChange, StepDiff};
use super::request_state::sync_with_reason;
use super::{Workflow, WorkflowError};
use crate::journal::{Plan, RequestState, RunMode, RunRecord, RunStatus};

/// A run's request recompiled with today's playbooks, not yet put in place.
#[derive(Debug, Clone)]
pub struct Replan {
    /// The run as it stands.
    pub run: RunRecord,
    /// The new plan.
    pub plan: Plan,
    /// What differs.
    pub diff: PlanDiff,
}

/// A run given up.
#[derive(Debug, Clone)]
pub struct Abandoned {
    /// The run as it stood before.
    pub run: RunRecord,
    /// Mutations it had sent, or may have (in doubt): `(instance, idempotent)`. A fresh run
    /// sends them again.
    pub sent: Vec<(String, bool)>,
}

impl Workflow {
    /// Recompiles a run's request with today's playbooks and compares the plans. Nothing is
    /// changed until [`Workflow::apply_replan`].
    pub async fn replan(&self, run: &str) -> Result<Replan, WorkflowError> {
        let record = self.open_run(run).await?;
        let journal = self.store.outcomes(&record.id).await?;
        let mut plan = self.compile(&record.plan.request)?;
        let diff = PlanDiff::between(&record.plan, &plan, &journal);
        // A step the playbooks no longer have: one that finished stays in the run's plan as
        // its record (reports and the export package read it; being finished, it is not
        // executed again); one the run had started acting on without finishing cannot be
        // dropped silently.
        let mut in_doubt = Vec::new();
        for removed in diff
            .steps
            .iter()
            .filter(|s| s.change == StepChange::Removed)
        {
            let mutates = record.plan.step(&removed.key).is_some_and(|s| s.mutates);
            let acted = mutates
                && journal.iter().filter(|o| o.step == removed.key).any(|o| {
                    o.sent || o.in_doubt() || (o.instance != o.step && o.status.is_settled())
                });
            if removed.done() {
                if let Some(step) = record.plan.step(&removed.key) {
                    plan.steps.push(step.clone());
                }
            } else if acted {
                in_doubt.push(removed.key.clone());
            }
        }
        if !in_doubt.is_empty() {
            return Err(WorkflowError::RemovedWhileActing {
                run: record.id,
                steps: in_doubt,
            });
        }
        Ok(Replan {
            run: record,
            plan,
            diff,
        })
    }

    /// Puts a replan in place after the approval rule is satisfied (when anything left to do
    /// changes), under the run's lease, with an audit entry. Returns who approved. Execute
    /// the run next; its finished steps stay finished.
    pub async fn apply_replan(
        &self,
        replan: &Replan,
        approver: Option<&str>,
    ) -> Result<Option<String>, WorkflowError> {
        let id = &replan.run.id;
        self.lease(id).await?;
        let result = self.apply_replan_leased(replan, approver).await;
        let _ = self.store.release(&self.holder, id).await;
        result
    }

    async fn apply_replan_leased(
        &self,
        replan: &Replan,
        approver: Option<&str>,
    ) -> Result<Option<String>, WorkflowError> {
        // What was compared is still what the run holds.
        let current = self.open_run(&replan.run.id).await?;
        if current.plan != replan.run.plan || current.status != replan.run.status {
            return Err(WorkflowError::Moved { run: current.id });
        }
        let approved = if replan.diff.changes_what_is_left() {
            self.approve(&replan.plan, approver).await?
        } else {
            None
        };
        self.store.replace_plan(&current.id, &replan.plan).await?;
        let list = |pick: &dyn Fn(&StepDiff) -> bool| -> Vec<&str> {
            replan
                .diff
                .steps
                .iter()
                .filter(|s| pick(s))
                .map(|s| s.key.as_str())
                .collect()
        };
        let changed = |s: &StepDiff| matches!(s.change, StepChange::Changed(_));
        self.store
            .append_audit(
                "run.replanned",
                &current.id,
                json!({
                    "request": current.request_id,
                    "status": current.status,
                    "inputs": replan.diff.inputs,
                    "added": list(&|s| s.change == StepChange::Added),
                    "removed": list(&|s| s.change == StepChange::Removed),
                    "changed": list(&|s| changed(s) && !s.done()),
                    "changed_but_done": list(&|s| changed(s) && s.done()),
                    "holder": self.holder,
                }),
                approved.as_deref().or(approver),
            )
            .await?;
        Ok(approved)
    }

    /// Gives a run up for good (status `abandoned`), with the reason in the audit log; its
    /// recorded request becomes `failed` with that reason and may be run afresh. Refused
    /// while another process executes the run.
    pub async fn abandon(
        &self,
        run: &str,
        reason: &str,
        by: &str,
    ) -> Result<Abandoned, WorkflowError> {
        let id = self.open_run(run).await?.id;
        self.lease(&id).await?;
        let result = self.abandon_leased(&id, reason, by).await;
        let _ = self.store.release(&self.holder, &id).await;
        result
    }

    async fn abandon_leased(
        &self,
        id: &str,
        reason: &str,
        by: &str,
    ) -> Result<Abandoned, WorkflowError> {
        let record = self.open_run(id).await?;
        let mut sent: Vec<(String, bool)> = Vec::new();
        for o in self.store.outcomes(id).await? {
            let step = record.plan.step(&o.step);
            // A `for_each` step's own outcome sums up its instances, listed one by one.
            let summary = o.instance == o.step && step.is_some_and(|s| s.for_each.is_some());
            if (o.sent || o.in_doubt()) && !summary {
                sent.push((o.instance, step.is_some_and(|s| s.idempotent)));
            }
        }
        self.store.set_run_status(id, RunStatus::Abandoned).await?;
        self.store
            .append_audit(
                "run.abandoned",
                id,
                json!({"request": record.request_id, "reason": reason,
                       "status": record.status, "sent": sent.iter().map(|(i, _)| i).collect::<Vec<_>>(),
                       "holder": self.holder}),
                Some(by),
            )
            .await?;
        sync_with_reason(
            self.store.as_ref(),
            &record.request_id,
            RequestState::Failed,
            Some(format!("run {id} abandoned: {reason}")),
            id,
            &self.holder,
        )
        .await?;
        Ok(Abandoned { run: record, sent })
    }

    /// An apply run that has not ended, by id or unique prefix.
    async fn open_run(&self, run: &str) -> Result<RunRecord, WorkflowError> {
        let record = self.store.run(run).await?;
        if record.mode != RunMode::Apply {
            return Err(WorkflowError::DryRun { run: record.id });
        }
        if record.status.has_ended() {
            return Err(WorkflowError::Ended {
                run: record.id,
                status: record.status,
            });
        }
        Ok(record)
    }
}
