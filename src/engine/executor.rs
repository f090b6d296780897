//! The run loop: starts each step when what it needs has ended, journals every outcome
//! before dependants start, and ends the run as completed, waiting, failed or interrupted.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use futures::stream::FuturesUnordered;
use futures::{FutureExt, StreamExt};
use serde_json::Value;
use tokio::sync::Semaphore;

use super::Clock;
use super::calls::{Calls, Live, ReadOnly};
use super::unit::{self, Unit};
use crate::compile::Renderer;
use crate::connectors::Connector;
use crate::connectors::limits::WaitTally;
use crate::journal::{
    Change, DataKey, Plan, PlannedAction, PlannedStep, RunMode, RunStatus, StepOutcome, StepStatus,
};
use crate::store::{Store, StoreError};

/// Receives progress events (terminal progress bars, logs).
pub trait Observer: Send + Sync {
    /// A step instance started.
    fn started(&self, step: &PlannedStep, instance: &str);
    /// A step instance (or a whole step) ended or started waiting.
    fn finished(&self, step: &PlannedStep, outcome: &StepOutcome);
}

/// Errors that stop a run (step failures do not: they are outcomes).
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The journal could not be written: the run stops rather than act unjournaled.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A spool file could not be written.
    #[error("cannot write collected records to {path}: {source}")]
    Spool {
        /// File.
        path: String,
        /// Cause.
        source: std::io::Error,
    },
}

/// What a saved plan allows `apply` to send: the previewed changes by instance.
#[derive(Debug, Clone, Default)]
pub struct ApplyFilter {
    /// Previewed changes by instance key.
    pub changes: HashMap<String, Change>,
}

/// The end of one execution of a run.
#[derive(Debug, Clone)]
pub struct RunResult {
    /// Run id.
    pub run_id: String,
    /// Final status.
    pub status: RunStatus,
    /// Every journaled outcome.
    pub outcomes: Vec<StepOutcome>,
}

/// Executes plans through connectors (or recorded answers), journaling in a store.
pub struct Engine {
    /// How calls are carried out: live, or replayed (`dsrctl test`).
    pub(super) calls: Arc<dyn Calls>,
    pub(super) store: Arc<dyn Store>,
    pub(super) renderer: Renderer,
    pub(super) parallelism: Arc<Semaphore>,
    /// Waits of calls for a slot of `parallelism`.
    pub(super) parallelism_waits: Arc<WaitTally>,
    pub(super) state_dir: PathBuf,
    /// Seals each spooled record, when set.
    pub(super) data_key: Option<DataKey>,
    /// Where spool files are kept for other workers, when set.
    pub(super) run_files: Option<Arc<dyn super::RunFiles>>,
    pub(super) clock: Clock,
    pub(super) stop: Arc<AtomicBool>,
    pub(super) observer: Option<Arc<dyn Observer>>,
    /// Whether manual tasks a person recorded failed are issued again (a person resuming the
    /// run) or stay failed (a worker continuing it).
    pub(super) reissue_failed_tasks: bool,
}

/// Shared state of one run while it executes.
pub(super) struct RunCtx<'a> {
    pub run_id: String,
    pub plan: &'a Plan,
    pub mode: RunMode,
    /// The engine's calls; in a dry run behind the read-only guard.
    pub calls: &'a dyn Calls,
    pub filter: Option<&'a ApplyFilter>,
    pub outcomes: Mutex<HashMap<String, StepOutcome>>,
    /// Result bodies of steps other steps preview from, by step key.
    pub bodies: Mutex<HashMap<String, (Value, Option<String>)>>,
    /// Per service, what its SQL mutations would fail on (checked once, before its first
    /// mutation is sent): `None` when nothing.
    pub preflight: tokio::sync::Mutex<HashMap<String, Option<String>>>,
    /// Mutations that commit together ([`super::unit`]), and each member's unit by step key.
    pub units: Vec<Unit>,
    pub unit_of: HashMap<String, usize>,
}

impl RunCtx<'_> {
    /// The unit the step's mutations are sent into, if it belongs to one.
    pub(super) fn unit(&self, step: &PlannedStep) -> Option<&Unit> {
        self.unit_of.get(&step.key).map(|&u| &self.units[u])
    }
}

impl Engine {
    /// An engine over these connectors (already bound to the request's tenant).
    pub fn new(
        store: Arc<dyn Store>,
        connectors: HashMap<String, Arc<dyn Connector>>,
        state_dir: impl Into<PathBuf>,
    ) -> Self {
        Engine {
            calls: Arc::new(Live::new(connectors)),
            store,
            renderer: Renderer::new(),
            parallelism: Arc::new(Semaphore::new(10)),
            parallelism_waits: Arc::new(WaitTally::default()),
            state_dir: state_dir.into(),
            data_key: None,
            run_files: None,
            clock: Clock::system(),
            stop: Arc::new(AtomicBool::new(false)),
            observer: None,
            reissue_failed_tasks: false,
        }
    }

    /// Most connector calls in flight at once, across every run this engine executes.
    pub fn with_parallelism(mut self, n: usize) -> Self {
        self.parallelism = Arc::new(Semaphore::new(n.max(1)));
        self
    }

    /// Counts the waits of calls for a slot of the parallelism limit in `tally` (shared by
    /// the engines of one worker, so a summary can say whether that limit bound).
    pub fn with_parallelism_waits(mut self, tally: Arc<WaitTally>) -> Self {
        self.parallelism_waits = tally;
        self
    }

    /// Seals every record spooled for the export package with `key` (personal data at rest).
    pub fn with_data_key(mut self, key: DataKey) -> Self {
        self.data_key = Some(key);
        self
    }

    /// Keeps every spool file in shared storage too, once written and before the step that
    /// wrote it is journaled as done.
    pub fn with_run_files(mut self, files: Arc<dyn super::RunFiles>) -> Self {
        self.run_files = Some(files);
        self
    }

    /// The clock deciding when deferred steps are due.
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// Issues the manual tasks a person recorded failed once more. Without it (a worker
    /// continuing a run) such a task stays failed: the steps that need it are blocked and the
    /// run ends failed, saying why, instead of the task coming back at once.
    pub fn with_failed_tasks_reissued(mut self, reissue: bool) -> Self {
        self.reissue_failed_tasks = reissue;
        self
    }

    /// Whether the journaled outcome `o` of `step` stands in this execution: it ended for
    /// good, or it is a manual task a person recorded failed that is not to be issued again.
    pub(super) fn keeps(&self, step: &PlannedStep, o: &StepOutcome) -> bool {
        o.status.is_settled()
            || (!self.reissue_failed_tasks
                && o.status == StepStatus::Failed
                && matches!(step.action, PlannedAction::Manual(_))
                && o.task.as_ref().is_some_and(|t| t.result == "failed"))
    }

    /// Progress events.
    pub fn with_observer(mut self, observer: Arc<dyn Observer>) -> Self {
        self.observer = Some(observer);
        self
    }

    /// How calls are carried out instead of the connectors, e.g. [`super::Replay`] for
    /// `dsrctl test`.
    pub fn with_calls(mut self, calls: Arc<dyn Calls>) -> Self {
        self.calls = calls;
        self
    }

    /// Shares a stop flag with the caller: once set, no new step starts (Ctrl-C, a lost
    /// lease).
    pub fn with_stop_flag(mut self, stop: Arc<AtomicBool>) -> Self {
        self.stop = stop;
        self
    }

    /// A flag that, once set, stops new steps from starting (Ctrl-C).
    pub fn stop_flag(&self) -> Arc<AtomicBool> {
        self.stop.clone()
    }

    /// Directory of a run's files (spooled records, evidence).
    pub fn run_dir(&self, run_id: &str) -> PathBuf {
        self.state_dir.join("runs").join(run_id)
    }

    /// Executes (or resumes) a run of a plan. Finished steps in the journal are skipped.
    pub async fn execute(
        &self,
        run_id: &str,
        plan: &Plan,
        mode: RunMode,
        filter: Option<&ApplyFilter>,
    ) -> Result<RunResult, EngineError> {
        let journal: HashMap<String, StepOutcome> = self
            .store
            .begin_run(run_id)
            .await?
            .into_iter()
            .map(|o| (o.instance.clone(), o))
            .collect();
        let guard = ReadOnly(self.calls.as_ref());
        let units = match mode {
            RunMode::Apply => {
                let settled: HashSet<&str> = journal
                    .values()
                    .filter(|o| o.status.is_settled())
                    .map(|o| o.step.as_str())
                    .collect();
                unit::form(run_id, plan, self.calls.as_ref(), &settled)
            }
            RunMode::DryRun => Vec::new(),
        };
        let unit_of: HashMap<String, usize> = units
            .iter()
            .enumerate()
            .flat_map(|(u, unit)| {
                unit.members
                    .iter()
                    .map(move |&i| (plan.steps[i].key.clone(), u))
            })
            .collect();
        let ctx = RunCtx {
            run_id: run_id.to_owned(),
            plan,
            mode,
            calls: match mode {
                RunMode::DryRun => &guard,
                RunMode::Apply => self.calls.as_ref(),
            },
            filter,
            outcomes: Mutex::new(journal),
            bodies: Mutex::new(HashMap::new()),
            preflight: tokio::sync::Mutex::new(HashMap::new()),
            units,
            unit_of,
        };

        let mut done: HashMap<&str, StepStatus> = HashMap::new();
        {
            let outcomes = lock(&ctx.outcomes);
            for s in &plan.steps {
                if let Some(o) = outcomes.get(&s.key)
                    && self.keeps(s, o)
                {
                    done.insert(s.key.as_str(), o.status);
                }
            }
        }
        let mut started: HashMap<&str, ()> = done.keys().map(|k| (*k, ())).collect();
        let mut running = FuturesUnordered::new();
        let mut interrupted = false;
        // Each unit's steps and keys, once: a unit of hundreds of steps (a dataset's erasure)
        // is then judged once per pass, not once per member.
        let unit_steps: Vec<(Vec<&PlannedStep>, HashSet<&str>)> = ctx
            .units
            .iter()
            .map(|u| {
                let members: Vec<&PlannedStep> =
                    u.members.iter().map(|&i| &plan.steps[i]).collect();
                let inside = members.iter().map(|m| m.key.as_str()).collect();
                (members, inside)
            })
            .collect();
        loop {
            if self.stop.load(Ordering::SeqCst) {
                interrupted = true;
            }
            if !interrupted {
                let mut judged: HashSet<usize> = HashSet::new();
                for step in &plan.steps {
                    if started.contains_key(step.key.as_str()) {
                        continue;
                    }
                    // A unit starts as one, when what its steps need from outside it has ended.
                    let unit_index = ctx.unit_of.get(&step.key).copied();
                    if let Some(u) = unit_index
                        && !judged.insert(u)
                    {
                        continue;
                    }
                    let unit = ctx.unit(step);
                    let single: (Vec<&PlannedStep>, HashSet<&str>);
                    let (members, inside) = match unit_index {
                        Some(u) => (&unit_steps[u].0, &unit_steps[u].1),
                        None => {
                            single = (vec![step], [step.key.as_str()].into());
                            (&single.0, &single.1)
                        }
                    };
                    let members = members.clone();
                    match readiness(&members, inside, &done) {
                        Readiness::Wait => {}
                        Readiness::Blocked(reason) => {
                            for m in members {
                                let mut o = StepOutcome::new(&m.key, &m.key, StepStatus::Blocked);
                                o.message = Some(reason.clone());
                                o.finished_at = Some(self.clock.now());
                                self.journal(&ctx, m, o).await?;
                                started.insert(m.key.as_str(), ());
                                done.insert(m.key.as_str(), StepStatus::Blocked);
                            }
                        }
                        Readiness::Ready => {
                            for m in &members {
                                started.insert(m.key.as_str(), ());
                            }
                            let ctx = &ctx;
                            running.push(
                                async move {
                                    match unit {
                                        Some(u) => self.run_unit(ctx, u).await,
                                        None => {
                                            let o = self.run_step(ctx, step).await?;
                                            Ok(vec![(step, o)])
                                        }
                                    }
                                }
                                .boxed(),
                            );
                        }
                    }
                }
            }
            let Some(result) = running.next().await else {
                break;
            };
            for (step, outcome) in result? {
                if outcome.status.is_final() {
                    done.insert(step.key.as_str(), outcome.status);
                }
            }
        }

        // A step blocked in an earlier execution by a step taken up again now, which has not
        // ended (it waits), is not blocked any more: pending again, so that the run's status
        // and every view say what is true.
        for step in &plan.steps {
            let stale = !started.contains_key(step.key.as_str())
                && lock(&ctx.outcomes)
                    .get(&step.key)
                    .is_some_and(|o| o.status == StepStatus::Blocked);
            if stale {
                let mut o = StepOutcome::new(&step.key, &step.key, StepStatus::Pending);
                o.message = Some("waits for the steps it needs".to_owned());
                self.journal(&ctx, step, o).await?;
            }
        }

        let outcomes: Vec<StepOutcome> = {
            let map = lock(&ctx.outcomes);
            let mut v: Vec<StepOutcome> = map.values().cloned().collect();
            let order: HashMap<&str, usize> = plan
                .steps
                .iter()
                .enumerate()
                .map(|(i, s)| (s.key.as_str(), i))
                .collect();
            v.sort_by_key(|o| (order.get(o.step.as_str()).copied(), o.instance.clone()));
            v
        };
        let status = run_status(plan, &outcomes, interrupted);
        self.store.set_run_status(run_id, status).await?;
        Ok(RunResult {
            run_id: run_id.to_owned(),
            status,
            outcomes,
        })
    }

    /// Journals an outcome (durable before anyone sees it) and tells the observer.
    pub(super) async fn journal(
        &self,
        ctx: &RunCtx<'_>,
        step: &PlannedStep,
        outcome: StepOutcome,
    ) -> Result<StepOutcome, EngineError> {
        if ctx.mode == RunMode::Apply {
            crate::store::record_audited(self.store.as_ref(), &ctx.run_id, &outcome).await?;
        } else {
            self.store.record(&ctx.run_id, &outcome).await?;
        }
        if let Some(obs) = &self.observer
            && outcome.status != StepStatus::Running
        {
            obs.finished(step, &outcome);
        }
        lock(&ctx.outcomes).insert(outcome.instance.clone(), outcome.clone());
        Ok(outcome)
    }
}

pub(super) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

enum Readiness {
    Ready,
    Wait,
    Blocked(String),
}

/// Whether steps that start together may start: what they need from outside `inside` has
/// ended, and none of it failed.
fn readiness(
    steps: &[&PlannedStep],
    inside: &HashSet<&str>,
    done: &HashMap<&str, StepStatus>,
) -> Readiness {
    let mut ready = true;
    let needs = steps
        .iter()
        .flat_map(|s| &s.needs)
        .filter(|n| !inside.contains(n.as_str()));
    for need in needs {
        match done.get(need.as_str()) {
            None => ready = false,
            Some(StepStatus::Failed) => {
                return Readiness::Blocked(format!("needs `{need}`, which failed"));
            }
            Some(StepStatus::Blocked) => {
                return Readiness::Blocked(format!("needs `{need}`, which is blocked"));
            }
            Some(_) => {}
        }
    }
    if ready {
        Readiness::Ready
    } else {
        Readiness::Wait
    }
}

fn run_status(plan: &Plan, outcomes: &[StepOutcome], interrupted: bool) -> RunStatus {
    let by_key: BTreeMap<&str, StepStatus> = outcomes
        .iter()
        .filter(|o| o.instance == o.step)
        .map(|o| (o.step.as_str(), o.status))
        .collect();
    let statuses: Vec<Option<&StepStatus>> = plan
        .steps
        .iter()
        .map(|s| by_key.get(s.key.as_str()))
        .collect();
    if statuses
        .iter()
        .any(|s| matches!(s, Some(StepStatus::Failed | StepStatus::Blocked)))
    {
        RunStatus::Failed
    } else if statuses.iter().all(|s| s.is_some_and(|s| s.is_final())) {
        RunStatus::Completed
    } else if interrupted {
        RunStatus::Interrupted
    } else {
        RunStatus::Waiting
    }
}
