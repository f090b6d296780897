//! The tasks people do: manual steps waiting for them, and mutations that may have been sent
//! (a crash left them `running`, or their answer was lost) that only a person can settle.
//! `dsrctl task` and the HTTP API list and record them here.

use chrono::Utc;
use serde_json::{Value, json};

use super::{Workflow, WorkflowError};
use crate::journal::{
    Evidence, PlannedAction, PlannedStep, RunRecord, RunStatus, StepOutcome, StepStatus, TaskRecord,
};
use crate::load::Project;
use crate::store::Store;

/// One open task of a run.
#[derive(Debug, Clone)]
pub struct OpenTask {
    /// The run waiting for it.
    pub run: RunRecord,
    /// The planned step.
    pub step: PlannedStep,
    /// Its journaled instance.
    pub outcome: StepOutcome,
}

impl OpenTask {
    /// `manual`, or `unsettled-mutation` for a mutation only a person can settle.
    pub fn kind(&self) -> &'static str {
        if self.outcome.status == StepStatus::Running || self.outcome.doubt.is_some() {
            "unsettled-mutation"
        } else {
            "manual"
        }
    }

    /// Who the task is assigned to, by the step, its connector or the tenant.
    pub fn assignee(&self, project: &Project) -> Option<String> {
        match &self.step.action {
            PlannedAction::Manual(m) => project.config.manual_assignee(
                &self.run.plan.request.tenant,
                crate::report::manual_connector(&self.run.plan, &self.step),
                m.assignee.as_deref(),
            ),
            _ => None,
        }
    }

    /// The evidence the step asks for.
    pub fn evidence_wanted(&self) -> Vec<String> {
        match &self.step.action {
            PlannedAction::Manual(m) => m.evidence.clone(),
            PlannedAction::Email(_) if self.kind() == "manual" => {
                vec!["the processor's answer".to_owned()]
            }
            _ => Vec::new(),
        }
    }
}

/// The open tasks of the newest `scan` runs that have not ended, the earliest due first.
pub async fn open_tasks(store: &dyn Store, scan: u32) -> Result<Vec<OpenTask>, WorkflowError> {
    let runs = store.runs(scan).await?;
    let mut tasks = Vec::new();
    for run in runs.into_iter().filter(|r| !r.status.has_ended()) {
        for o in store.outcomes(&run.id).await? {
            let Some(step) = run.plan.steps.iter().find(|s| s.key == o.step) else {
                continue;
            };
            let manual_waiting = o.status == StepStatus::Waiting && step.action.waits_for_person();
            // A mutation still `running` in a run that is not executing: a crash left it,
            // and only a person can say whether it was sent.
            let unsettled = (o.status == StepStatus::Running && run.status != RunStatus::Running)
                || o.awaits_person();
            let aggregate = step.for_each.is_some() && o.instance == o.step;
            if (manual_waiting || unsettled) && !aggregate {
                tasks.push(OpenTask {
                    run: run.clone(),
                    step: step.clone(),
                    outcome: o,
                });
            }
        }
    }
    tasks.sort_by(|a, b| {
        (
            a.outcome.due_at.is_none(),
            a.outcome.due_at,
            &a.run.id,
            &a.outcome.instance,
        )
            .cmp(&(
                b.outcome.due_at.is_none(),
                b.outcome.due_at,
                &b.run.id,
                &b.outcome.instance,
            ))
    });
    Ok(tasks)
}

/// What a person records about a task.
#[derive(Debug, Clone)]
pub struct TaskSettlement {
    /// Who did it.
    pub by: String,
    /// Done (`true`) or failed.
    pub done: bool,
    /// A note.
    pub note: Option<String>,
    /// Evidence files: name and content.
    pub evidence: Vec<(String, Vec<u8>)>,
}

impl Workflow {
    /// Records a task of `run` done or failed, with its evidence (stored sealed, with its
    /// SHA-256), and audits it (`task.done` / `task.failed`) in the name of its doer. The
    /// caller holds the run's lease. Returns the settled instance and its evidence.
    pub async fn settle_task(
        &self,
        run: &RunRecord,
        mut outcome: StepOutcome,
        settlement: &TaskSettlement,
    ) -> Result<(StepOutcome, Vec<Evidence>), WorkflowError> {
        if run.status == RunStatus::Abandoned {
            return Err(WorkflowError::Task(format!(
                "run {} was abandoned; its tasks are not recorded any more (`dsrctl run` the request afresh)",
                run.id
            )));
        }
        let store = self.store();
        let mut evidence = Vec::new();
        for (name, bytes) in &settlement.evidence {
            evidence.push(
                store
                    .put_evidence(&run.id, &outcome.instance, name, bytes)
                    .await?,
            );
        }
        let done = settlement.done;
        let now = Utc::now();
        let was_unsettled = outcome.status == StepStatus::Running || outcome.in_doubt();
        outcome.status = if done {
            StepStatus::Succeeded
        } else {
            StepStatus::Failed
        };
        if was_unsettled && done {
            outcome.sent = true;
        }
        outcome.task = Some(TaskRecord {
            by: settlement.by.clone(),
            at: now,
            result: if done { "done" } else { "failed" }.to_owned(),
            note: settlement.note.clone(),
            evidence: evidence.clone(),
        });
        if !done {
            outcome.message = Some(format!(
                "task failed (recorded by {}){}",
                settlement.by,
                settlement
                    .note
                    .as_deref()
                    .map(|n| format!(": {n}"))
                    .unwrap_or_default()
            ));
        }
        outcome.finished_at = Some(now);
        outcome.due_at = None;
        crate::store::record_audited(store.as_ref(), &run.id, &outcome).await?;
        let files: Vec<Value> = evidence
            .iter()
            .map(|e| json!({"name": e.name, "sha256": e.sha256}))
            .collect();
        store
            .append_audit(
                if done { "task.done" } else { "task.failed" },
                &run.id,
                json!({"step": outcome.instance, "request": run.request_id,
                       "note": settlement.note, "evidence": files,
                       "settled_after_crash": was_unsettled, "holder": self.holder()}),
                Some(&settlement.by),
            )
            .await?;
        Ok((outcome, evidence))
    }

    /// Records a task under the run's lease and leaves the run `running` without a lease,
    /// so the next tick of a worker continues it (how the HTTP API records a task).
    pub async fn settle_task_for_worker(
        &self,
        run: &RunRecord,
        step: &str,
        settlement: &TaskSettlement,
    ) -> Result<(StepOutcome, Vec<Evidence>), WorkflowError> {
        let outcomes = self.store().outcomes(&run.id).await?;
        let target = find_open_instance(run, &outcomes, step)?;
        self.lease(&run.id).await?;
        let result = async {
            let settled = self.settle_task(run, target, settlement).await?;
            self.store()
                .set_run_status(&run.id, RunStatus::Running)
                .await?;
            Ok(settled)
        }
        .await;
        self.release(&run.id).await?;
        result
    }
}

/// The waiting manual instance (or unsettled mutation) `wanted` names: an instance key, a
/// step key, or a step id.
pub fn find_open_instance(
    run: &RunRecord,
    outcomes: &[StepOutcome],
    wanted: &str,
) -> Result<StepOutcome, WorkflowError> {
    let fail = |m: String| Err(WorkflowError::Task(m));
    let steps: Vec<&PlannedStep> = run
        .plan
        .steps
        .iter()
        .filter(|s| s.key == wanted || s.id == wanted)
        .collect();
    let open = |o: &&StepOutcome| {
        let step = run.plan.steps.iter().find(|s| s.key == o.step);
        let manual = step.is_some_and(|s| s.action.waits_for_person());
        (o.status == StepStatus::Waiting && manual)
            || o.status == StepStatus::Running
            || o.awaits_person()
    };
    if let Some(o) = outcomes
        .iter()
        .find(|o| o.instance == wanted && o.instance.contains('#'))
    {
        return if open(&o) {
            Ok(o.clone())
        } else {
            fail(format!(
                "{wanted} is {}, not waiting for a person",
                o.status.as_str()
            ))
        };
    }
    let step = match steps.as_slice() {
        [] => {
            return fail(format!(
                "run {} has no step `{wanted}`; `dsrctl task list` shows the open tasks",
                run.id
            ));
        }
        [one] => *one,
        many => {
            return fail(format!(
                "`{wanted}` names several steps ({}); give the step key",
                many.iter()
                    .map(|s| s.key.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
    };
    let candidates: Vec<&StepOutcome> = outcomes
        .iter()
        .filter(|o| o.step == step.key && (step.for_each.is_none() || o.instance != o.step))
        .filter(open)
        .collect();
    match candidates.as_slice() {
        [one] => Ok((*one).clone()),
        [] => {
            let status = outcomes
                .iter()
                .find(|o| o.instance == step.key)
                .map_or("pending", |o| o.status.as_str());
            fail(format!(
                "step {} of run {} is {status}, not waiting for a person",
                step.key, run.id
            ))
        }
        many => fail(format!(
            "step {} has several open instances; name one: {}",
            step.key,
            many.iter()
                .map(|o| o.instance.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}
