//! One scheduling pass ("tick"): starts approved requests that have no run yet and resumes
//! runs with a due step, each under a lease in the state store, so several workers (on one
//! or several machines sharing a PostgreSQL store) never execute the same run at once.
//!
//! Waiting is a state in the store with a due time, never a sleeping process: a tick does
//! what is due and returns.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::json;

use super::approval::{AUTO_APPROVAL, approval_needed};
use super::limits::LimitReport;
use super::request_state::{request_state_after, sync_request_state};
use super::{Execution, Workflow, WorkflowError};
use crate::connectors::limits::WaitTally;
use crate::engine::{Clock, Observer};
use crate::journal::{RequestRecord, RequestState, RunStatus};
use crate::load::Project;
use crate::store::{Store, StoreError};

/// What one executed run ended with.
#[derive(Debug, Clone, Serialize)]
pub struct TickRun {
    /// Request id.
    pub request: String,
    /// Run id.
    pub run: String,
    /// Whether the run was started by this tick (else resumed).
    pub started: bool,
    /// How the run stands after this tick.
    pub status: RunStatus,
}

/// What a tick did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct TickReport {
    /// Runs executed (started or resumed).
    pub runs: Vec<TickRun>,
    /// Requests or runs that could not be executed, with why.
    pub problems: Vec<String>,
    /// Which limits made work wait during the tick, and which one bound throughput.
    pub limits: LimitReport,
}

impl TickReport {
    /// Whether the tick moved something on (started a request, or ended a resumed run), so
    /// another tick may find more. A resumed run that only waits again (a manual task past
    /// its due date) does not count, so ticking again at once cannot loop on it.
    pub fn moved_on(&self) -> bool {
        self.runs
            .iter()
            .any(|r| r.started || r.status != RunStatus::Waiting)
    }
}

/// One unit of a tick's work.
enum Job {
    /// An approved request without a run.
    Start(RequestRecord),
    /// A claimed (leased) run with a due step.
    Resume(String),
}

/// Runs ticks for one worker: the [`Workflow`] of `serve` and `tick`.
pub struct Scheduler {
    jobs: Jobs,
    batch: u32,
    concurrency: usize,
}

/// What a run's task needs of its scheduler: each run of a tick executes on a task of its
/// own, so the engine work of runs executed at once is spread over the runtime's threads.
#[derive(Clone)]
struct Jobs {
    workflow: Arc<Workflow>,
    stop: Arc<AtomicBool>,
    observer: Option<Arc<dyn Observer>>,
}

impl Scheduler {
    /// A scheduler for `worker` (a name unique among the workers sharing the store).
    pub fn new(
        project: Arc<Project>,
        store: Arc<dyn Store>,
        state_dir: impl Into<std::path::PathBuf>,
        worker: impl Into<String>,
    ) -> Self {
        Scheduler {
            jobs: Jobs {
                workflow: Arc::new(Workflow::new(project, store, state_dir, worker)),
                stop: Arc::new(AtomicBool::new(false)),
                observer: None,
            },
            batch: 8,
            concurrency: 8,
        }
    }

    /// Changes the workflow's settings. A scheduler is configured before it ticks: only then
    /// (and between ticks) does nothing else hold its workflow.
    fn configure(mut self, f: impl FnOnce(Workflow) -> Workflow) -> Self {
        let workflow = Arc::into_inner(self.jobs.workflow)
            .expect("a scheduler is configured before its runs execute");
        self.jobs.workflow = Arc::new(f(workflow));
        self
    }

    /// The clock deciding what is due (and lease times).
    pub fn with_clock(self, clock: Clock) -> Self {
        self.configure(|w| w.with_clock(clock))
    }

    /// How long a lease lasts without renewal; renewed every third of it while a run executes.
    pub fn with_lease_ttl(self, ttl: Duration) -> Self {
        self.configure(|w| w.with_lease_ttl(ttl))
    }

    /// Most requests started plus runs claimed per tick (default 8).
    pub fn with_batch(mut self, n: u32) -> Self {
        self.batch = n.max(1);
        self
    }

    /// Runs executed at once by this worker.
    pub fn with_concurrency(mut self, n: usize) -> Self {
        self.concurrency = n.max(1);
        self
    }

    /// Step instances in flight at once within one run.
    pub fn with_parallelism(self, n: usize) -> Self {
        self.configure(|w| w.with_parallelism(n))
    }

    /// Tells `observer` of every step of the runs this scheduler executes (e.g. the step
    /// metrics of `serve --listen`).
    pub fn with_observer(mut self, observer: Arc<dyn Observer>) -> Self {
        self.jobs.observer = Some(observer);
        self
    }

    /// A flag that, once set, drains the worker: the tick starts and claims nothing new, and
    /// the runs in progress start no new step; each ends when its steps in flight have been
    /// journaled and is handed over (left `running` with its lease released), so another
    /// worker takes it up at once and nothing is sent twice.
    pub fn stop_flag(&self) -> Arc<AtomicBool> {
        self.jobs.stop.clone()
    }

    /// The worker name.
    pub fn worker(&self) -> &str {
        self.jobs.worker()
    }

    fn store(&self) -> &dyn Store {
        self.jobs.store()
    }

    fn workflow(&self) -> &Workflow {
        &self.jobs.workflow
    }

    /// Does everything due once: starts approved requests without a run, then resumes runs
    /// with a due step (or left `running` by a worker whose lease lapsed).
    pub async fn tick(&self) -> Result<TickReport, StoreError> {
        self.tick_queued_since(None).await
    }

    /// [`Scheduler::tick`], counting what it runs as waiting for a run slot since
    /// `queued_since` (the start of an earlier tick of the same command, whose batch it did
    /// not fit in).
    pub async fn tick_queued_since(
        &self,
        queued_since: Option<Instant>,
    ) -> Result<TickReport, StoreError> {
        let now = self.workflow().clock().now();
        let mut report = TickReport::default();

        self.settle_lagging_requests(now).await?;
        let mut due = self.store().due_requests(now).await?;
        // Workers sharing a store start at different places in the queue, so they seldom
        // race for the same request; everything due is still taken in the end.
        if !due.is_empty() {
            let offset = worker_offset(self.worker()) % due.len();
            due.rotate_left(offset);
        }
        due.truncate(self.batch as usize);
        let mut jobs: Vec<Job> = due.into_iter().map(Job::Start).collect();

        if !self.jobs.stop.load(Ordering::SeqCst) {
            // Claim no more than this worker takes on in one tick, so idle workers sharing
            // the store find the rest.
            let room = self
                .batch
                .saturating_sub(u32::try_from(jobs.len()).unwrap_or(u32::MAX));
            if room > 0 {
                let claimed = self
                    .store()
                    .claim_runs(
                        self.worker(),
                        room,
                        self.workflow().lease_ttl(),
                        self.workflow().clock().now(),
                    )
                    .await?;
                jobs.extend(claimed.into_iter().map(Job::Resume));
            }
        }

        // Requests are compiled and started (leased) only when a slot is free, so nothing
        // sits leased in this worker's queue while another worker could run it.
        let before = self.workflow().limit_snapshot().await;
        let queued = queued_since.unwrap_or_else(Instant::now);
        let run_waits = WaitTally::default();
        // Each run on a task of its own, at most `concurrency` at once.
        let mut pending = jobs.into_iter().enumerate();
        let mut running = tokio::task::JoinSet::new();
        let mut results: Vec<Result<Option<TickRun>, String>> = Vec::new();
        loop {
            while running.len() < self.concurrency {
                let Some((n, job)) = pending.next() else {
                    break;
                };
                // A job past the first `concurrency` waited for a run slot until now, as
                // did every job left over from an earlier tick.
                if n >= self.concurrency || queued_since.is_some() {
                    run_waits.add(queued.elapsed());
                }
                let jobs = self.jobs.clone();
                running.spawn(async move { jobs.run_job(job).await });
            }
            match running.join_next().await {
                Some(Ok(result)) => results.push(result),
                Some(Err(e)) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
                Some(Err(e)) => results.push(Err(format!("a run's task ended: {e}"))),
                None => break,
            }
        }
        report.limits = LimitReport::between(
            &before,
            &self.workflow().limit_snapshot().await,
            self.workflow().parallelism(),
            Some((self.concurrency, run_waits.get())),
        );
        for r in results {
            match r {
                Ok(Some(run)) => report.runs.push(run),
                Ok(None) => {}
                Err(p) => report.problems.push(p),
            }
        }
        Ok(report)
    }

    /// Brings requests up to date whose worker died after their run ended.
    async fn settle_lagging_requests(
        &self,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<(), StoreError> {
        for (request, run, status) in self.store().unsettled_requests(now, self.batch).await? {
            sync_request_state(
                self.store(),
                &request,
                request_state_after(status),
                &run,
                self.worker(),
            )
            .await?;
        }
        Ok(())
    }
}

impl Jobs {
    fn worker(&self) -> &str {
        self.workflow.holder()
    }

    fn store(&self) -> &dyn Store {
        self.workflow.store().as_ref()
    }

    /// Starts or resumes one run. `None`: nothing to do (another worker was first, or the
    /// worker is stopping).
    async fn run_job(&self, job: Job) -> Result<Option<TickRun>, String> {
        let (run, started, request) = match job {
            Job::Start(record) => {
                if self.stop.load(Ordering::SeqCst) {
                    return Ok(None);
                }
                let id = record.request.id.clone();
                match self.start(record).await {
                    Ok(Some(run)) => (run, true, id),
                    Ok(None) => return Ok(None),
                    Err(e) => return Err(format!("request {id}: {e}")),
                }
            }
            // Claimed before the stop: give it back untouched.
            Job::Resume(run) if self.stop.load(Ordering::SeqCst) => {
                let _ = self.store().release(self.worker(), &run).await;
                return Ok(None);
            }
            Job::Resume(run) => match self.store().run(&run).await {
                Ok(record) => (run, false, record.request_id),
                Err(e) => {
                    let _ = self.store().release(self.worker(), &run).await;
                    return Err(format!("run {run}: {e}"));
                }
            },
        };
        let how = Execution {
            fresh: started,
            observer: self.observer.clone(),
            stop: Some(self.stop.clone()),
            hand_over: true,
            ..Execution::default()
        };
        match self.workflow.execute(&run, how).await {
            Ok(executed) => Ok(Some(TickRun {
                request,
                run,
                started,
                status: executed.result.status,
            })),
            // Another worker finished it between the claim and now.
            Err(WorkflowError::Ended { .. }) => Ok(None),
            Err(WorkflowError::Leased { .. }) => Err(format!(
                "run {run}: the lease lapsed and another worker took the run over"
            )),
            Err(e) => Err(format!("run {run}: {e}")),
        }
    }

    /// Compiles an approved request and starts its run (leased to this worker). `None`:
    /// another worker started it first.
    async fn start(&self, record: RequestRecord) -> Result<Option<String>, String> {
        let id = record.request.id.clone();
        let plan = match self.workflow.compile(&record.request) {
            Ok(plan) => plan,
            Err(e) => {
                self.fail_request(&id, &e.to_string())
                    .await
                    .map_err(|e| e.to_string())?;
                return Err(e.to_string());
            }
        };
        // The one approval rule, again at the start: intake approved this request by the
        // rule, but the playbooks have changed since and its plan now needs a person.
        if let Some(why) = approval_needed(&plan)
            && record.reason.as_deref() == Some(AUTO_APPROVAL)
        {
            return Err(format!(
                "not started: {why}, and it was only approved by the rule at intake; approve it with `dsrctl request approve {id} --by NAME`"
            ));
        }
        let now = self.workflow.clock().now();
        let Some(run) = self
            .store()
            .start_request(&plan, self.worker(), self.workflow.lease_ttl(), now)
            .await
            .map_err(|e| e.to_string())?
        else {
            return Ok(None);
        };
        self.store()
            .append_audit(
                "request.running",
                &id,
                json!({"run": run, "worker": self.worker()}),
                None,
            )
            .await
            .map_err(|e| e.to_string())?;
        Ok(Some(run))
    }

    /// A request whose plan cannot be compiled fails with the reason (through `running`, as
    /// the lifecycle wants), so a person sees it in `dsrctl requests`.
    async fn fail_request(&self, id: &str, reason: &str) -> Result<(), StoreError> {
        self.store()
            .set_request_state(id, RequestState::Running, None)
            .await?;
        self.store()
            .set_request_state(id, RequestState::Failed, Some(reason.to_owned()))
            .await?;
        self.store()
            .append_audit(
                "request.failed",
                id,
                json!({"reason": reason, "worker": self.worker()}),
                None,
            )
            .await
            .map(|_| ())
    }
}

/// A stable position in the queue for a worker name.
fn worker_offset(worker: &str) -> usize {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    worker.hash(&mut h);
    usize::try_from(h.finish() % 1_000_003).unwrap_or(0)
}
