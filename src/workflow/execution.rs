//! Executing a stored run, whichever face asks: under the run's lease (so one process at a
//! time executes it), renewed while it runs, with the request's state brought up to date
//! and an audit entry when something changed.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use serde_json::json;

use super::request_state::{request_state_after, sync_request_state};
use super::{Workflow, WorkflowError};
use crate::engine::{ApplyFilter, Observer, RunResult};
use crate::journal::{Plan, RequestState, RunMode, RunStatus, StepOutcome};

/// How a run is executed.
#[derive(Default)]
pub struct Execution<'a> {
    /// The changes a saved plan allows (`dsrctl apply`); everything when `None`.
    pub filter: Option<&'a ApplyFilter>,
    /// Progress events.
    pub observer: Option<Arc<dyn Observer>>,
    /// Once set, no new step starts (Ctrl-C, SIGTERM). The lease being lost sets it too.
    pub stop: Option<Arc<AtomicBool>>,
    /// The run was just created: its journal is empty, so there is nothing to read first.
    pub fresh: bool,
    /// A person resumes the run: manual tasks recorded failed are issued again. Otherwise
    /// (a worker or a recorded task continuing it) they stay failed and the run ends failed.
    pub reissue_failed_tasks: bool,
    /// A worker draining: a run the stop flag interrupted is left `running` for another
    /// worker, which takes it up as soon as the lease is released (see
    /// [`Store::claim_runs`](crate::store::Store::claim_runs)), instead of `interrupted`,
    /// which waits for a person's `dsrctl resume`.
    pub hand_over: bool,
}

/// What one execution of a run did.
#[derive(Debug, Clone)]
pub struct Executed {
    /// The plan the run executes.
    pub plan: Plan,
    /// The run's end: status and every journaled outcome.
    pub result: RunResult,
    /// The run's status before this execution.
    pub status_before: RunStatus,
    /// Instances whose mutation this execution sent.
    pub mutated: Vec<String>,
}

impl Executed {
    /// Whether the execution changed something: sent a mutation or moved the run's status.
    pub fn moved(&self) -> bool {
        !self.mutated.is_empty() || self.result.status != self.status_before
    }
}

impl Workflow {
    /// Executes (or resumes) an apply run by id or unique prefix. Takes the run's lease
    /// first (refusing when another process holds it) and gives it up at the end.
    pub async fn execute(&self, run: &str, how: Execution<'_>) -> Result<Executed, WorkflowError> {
        let id = self.store.run(run).await?.id;
        self.lease(&id).await?;
        let result = self.execute_leased(&id, how).await;
        let _ = self.store.release(&self.holder, &id).await;
        result
    }

    /// Takes (or renews) the lease on a run in this workflow's name; refused, naming the
    /// holder, when another process holds a live one.
    pub async fn lease(&self, run: &str) -> Result<(), WorkflowError> {
        if self
            .store
            .lease(&self.holder, run, self.lease_ttl, self.clock.now())
            .await?
        {
            return Ok(());
        }
        let holder = self
            .store
            .lease_holder(run)
            .await?
            .unwrap_or_else(|| "another process".to_owned());
        Err(WorkflowError::Leased {
            run: run.to_owned(),
            holder,
        })
    }

    /// Gives up this workflow's lease on a run (no-op when it holds none).
    pub async fn release(&self, run: &str) -> Result<(), WorkflowError> {
        Ok(self.store.release(&self.holder, run).await?)
    }

    async fn execute_leased(
        &self,
        id: &str,
        how: Execution<'_>,
    ) -> Result<Executed, WorkflowError> {
        // Read under the lease: nobody else changes the run meanwhile.
        let record = self.store.run(id).await?;
        if record.mode != RunMode::Apply {
            return Err(WorkflowError::DryRun { run: record.id });
        }
        if record.status.has_ended() {
            return Err(WorkflowError::Ended {
                run: record.id,
                status: record.status,
            });
        }
        let plan = record.plan;
        let request = plan.request.id.clone();
        if record.status != RunStatus::Waiting {
            // A failed or interrupted run is being taken up again. (A waiting run is not
            // marked: a worker looking at an overdue manual task would do so every tick.)
            sync_request_state(
                self.store.as_ref(),
                &request,
                RequestState::Running,
                id,
                &self.holder,
            )
            .await?;
        }
        let before = if how.fresh {
            BTreeSet::new()
        } else {
            sent_instances(&self.store.outcomes(id).await?)
        };
        let outer = how.stop.unwrap_or_default();
        // The run's own flag: set by the caller's (Ctrl-C, SIGTERM) or by the lease being
        // lost, which stops this run only, and is no reason to hand it over.
        let stop = Arc::new(AtomicBool::new(outer.load(Ordering::SeqCst)));
        let lost = Arc::new(AtomicBool::new(false));
        let mut engine = self
            .engine(&plan.request.tenant)
            .await?
            .with_stop_flag(stop.clone())
            .with_failed_tasks_reissued(how.reissue_failed_tasks);
        if let Some(observer) = how.observer {
            engine = engine.with_observer(observer);
        }
        let renewer = self.renew_while_running(id, stop.clone(), lost.clone());
        let relay = relay_stop(outer.clone(), stop);
        let result = engine.execute(id, &plan, RunMode::Apply, how.filter).await;
        renewer.abort();
        relay.abort();
        let hand_over =
            how.hand_over && outer.load(Ordering::SeqCst) && !lost.load(Ordering::SeqCst);
        let result = result?;
        let mutated: Vec<String> = result
            .outcomes
            .iter()
            .filter(|o| o.sent && !before.contains(&o.instance))
            .map(|o| o.instance.clone())
            .collect();
        let mut executed = Executed {
            plan,
            result,
            status_before: record.status,
            mutated,
        };
        if hand_over && executed.result.status == RunStatus::Interrupted {
            // Every step in flight has been journaled: the journal is as a resume needs it.
            self.store.set_run_status(id, RunStatus::Running).await?;
            executed.result.status = RunStatus::Running;
            self.store
                .append_audit(
                    "run.handed_over",
                    id,
                    json!({"request": request, "worker": self.holder,
                           "mutated": executed.mutated}),
                    None,
                )
                .await?;
            return Ok(executed);
        }
        // Nothing changed (e.g. a manual task still open): no audit entry per tick.
        if executed.moved() {
            self.store
                .append_audit(
                    "run.executed",
                    id,
                    json!({"request": request, "status": executed.result.status,
                           "worker": self.holder, "mutated": executed.mutated}),
                    None,
                )
                .await?;
        }
        sync_request_state(
            self.store.as_ref(),
            &request,
            request_state_after(executed.result.status),
            id,
            &self.holder,
        )
        .await?;
        Ok(executed)
    }

    /// Renews the run's lease every third of its lifetime; when the lease is lost, no new
    /// step of the run starts.
    fn renew_while_running(
        &self,
        run: &str,
        stop: Arc<AtomicBool>,
        lost: Arc<AtomicBool>,
    ) -> tokio::task::JoinHandle<()> {
        let store = self.store.clone();
        let holder = self.holder.clone();
        let run = run.to_owned();
        let ttl = self.lease_ttl;
        let clock = self.clock.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(ttl / 3).await;
                match store.renew(&holder, &run, ttl, clock.now()).await {
                    Ok(true) => {}
                    Ok(false) => {
                        tracing::warn!(run, holder, "lease lost; no new steps start");
                        lost.store(true, Ordering::SeqCst);
                        stop.store(true, Ordering::SeqCst);
                        return;
                    }
                    Err(e) => tracing::warn!(run, holder, "renewing the lease failed: {e}"),
                }
            }
        })
    }
}

/// Passes the caller's stop on to the run's own flag (checked as often as a step could start).
fn relay_stop(outer: Arc<AtomicBool>, run: Arc<AtomicBool>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        while !outer.load(Ordering::SeqCst) {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        run.store(true, Ordering::SeqCst);
    })
}

fn sent_instances(outcomes: &[StepOutcome]) -> BTreeSet<String> {
    outcomes
        .iter()
        .filter(|o| o.sent)
        .map(|o| o.instance.clone())
        .collect()
}
