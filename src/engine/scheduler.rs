//! One scheduling pass ("tick"): starts approved requests that have no run yet and resumes
//! runs with a due step, each under a lease in the state store, so several workers (on one
//! or several machines sharing a PostgreSQL store) never execute the same run at once.
//!
//! Waiting is a state in the store with a due time, never a sleeping process: a tick does
//! what is due and returns.

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures::StreamExt;
use serde::Serialize;
use serde_json::json;

use super::{Clock, Engine, EngineError};
use crate::compile::compile;
use crate::connectors::{Connector, connectors_for_tenant};
use crate::journal::{Plan, RequestState, RunMode, RunStatus};
use crate::load::Project;
use crate::model::DsrKind;
use crate::store::{Store, StoreError};

/// A tenant's connectors by name.
type Connectors = HashMap<String, Arc<dyn Connector>>;

/// Errors that stop a tick (a run that fails is an outcome, not an error).
#[derive(Debug, thiserror::Error)]
pub enum SchedulerError {
    /// The state store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Whether requests of this kind wait for a person's approval before they start. Kinds that
/// erase or restrict data do; access, export and rectify (the subject's own correction) are
/// approved on intake.
pub fn needs_approval(kind: DsrKind) -> bool {
    matches!(kind, DsrKind::Delete | DsrKind::Restrict)
}

/// The request state that follows a run ending in `status`.
pub fn request_state_after(status: RunStatus) -> RequestState {
    match status {
        RunStatus::Completed => RequestState::Completed,
        RunStatus::Failed => RequestState::Failed,
        RunStatus::Running => RequestState::Running,
        RunStatus::Waiting | RunStatus::Interrupted => RequestState::Waiting,
    }
}

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
    Start(crate::journal::RequestRecord),
    /// A claimed (leased) run with a due step.
    Resume(String),
}

/// Runs ticks for one worker.
pub struct Scheduler {
    project: Arc<Project>,
    store: Arc<dyn Store>,
    state_dir: PathBuf,
    worker: String,
    clock: Clock,
    lease_ttl: Duration,
    batch: u32,
    concurrency: usize,
    parallelism: usize,
    stop: Arc<AtomicBool>,
    connectors: tokio::sync::Mutex<HashMap<String, Connectors>>,
}

impl Scheduler {
    /// A scheduler for `worker` (a name unique among the workers sharing the store).
    pub fn new(
        project: Arc<Project>,
        store: Arc<dyn Store>,
        state_dir: impl Into<PathBuf>,
        worker: impl Into<String>,
    ) -> Self {
        Scheduler {
            project,
            store,
            state_dir: state_dir.into(),
            worker: worker.into(),
            clock: Clock::system(),
            lease_ttl: Duration::from_secs(60),
            batch: 8,
            concurrency: 8,
            parallelism: 10,
            stop: Arc::new(AtomicBool::new(false)),
            connectors: tokio::sync::Mutex::new(HashMap::new()),
        }
    }

    /// The clock deciding what is due (and lease times).
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// How long a lease lasts without renewal; renewed every third of it while a run executes.
    pub fn with_lease_ttl(mut self, ttl: Duration) -> Self {
        self.lease_ttl = ttl.max(Duration::from_millis(300));
        self
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
    pub fn with_parallelism(mut self, n: usize) -> Self {
        self.parallelism = n.max(1);
        self
    }

    /// A flag that, once set, makes the tick start nothing new (runs in progress finish).
    pub fn stop_flag(&self) -> Arc<AtomicBool> {
        self.stop.clone()
    }

    /// The worker name.
    pub fn worker(&self) -> &str {
        &self.worker
    }

    /// Does everything due once: starts approved requests without a run, then resumes runs
    /// with a due step (or left `running` by a worker whose lease lapsed).
    pub async fn tick(&self) -> Result<TickReport, SchedulerError> {
        let now = self.clock.now();
        let mut report = TickReport::default();

        self.settle_lagging_requests(now).await?;
        let mut due = self.store.due_requests(now).await?;
        // Workers sharing a store start at different places in the queue, so they seldom
        // race for the same request; everything due is still taken in the end.
        if !due.is_empty() {
            let offset = worker_offset(&self.worker) % due.len();
            due.rotate_left(offset);
        }
        due.truncate(self.batch as usize);
        let mut jobs: Vec<Job> = due.into_iter().map(Job::Start).collect();

        if !self.stop.load(Ordering::SeqCst) {
            // Claim no more than this worker takes on in one tick, so idle workers sharing
            // the store find the rest.
            let room = self
                .batch
                .saturating_sub(u32::try_from(jobs.len()).unwrap_or(u32::MAX));
            if room > 0 {
                let claimed = self
                    .store
                    .claim_runs(&self.worker, room, self.lease_ttl, self.clock.now())
                    .await?;
                jobs.extend(claimed.into_iter().map(Job::Resume));
            }
        }

        // Requests are compiled and started (leased) only when a slot is free, so nothing
        // sits leased in this worker's queue while another worker could run it.
        let results: Vec<Result<Option<TickRun>, String>> = futures::stream::iter(jobs)
            .map(|job| self.run_job(job))
            .buffer_unordered(self.concurrency)
            .collect()
            .await;
        for r in results {
            match r {
                Ok(Some(run)) => report.runs.push(run),
                Ok(None) => {}
                Err(p) => report.problems.push(p),
            }
        }
        Ok(report)
    }

    /// Starts or resumes one run. `None`: nothing to do (another worker was first, or the
    /// worker is stopping).
    async fn run_job(&self, job: Job) -> Result<Option<TickRun>, String> {
        let (run, plan, started) = match job {
            Job::Start(record) => {
                if self.stop.load(Ordering::SeqCst) {
                    return Ok(None);
                }
                let id = record.request.id.clone();
                let plan = match compile(&self.project, &record.request, self.clock.now()) {
                    Ok(plan) => plan,
                    Err(e) => {
                        self.fail_request(&id, &e.to_string())
                            .await
                            .map_err(|e| e.to_string())?;
                        return Err(format!("request {id}: {e}"));
                    }
                };
                let started = self
                    .store
                    .start_request(&plan, &self.worker, self.lease_ttl, self.clock.now())
                    .await
                    .map_err(|e| format!("request {id}: {e}"))?;
                let Some(run) = started else {
                    return Ok(None);
                };
                self.audit_state(&id, RequestState::Running, Some(&run))
                    .await
                    .map_err(|e| e.to_string())?;
                (run, plan, true)
            }
            Job::Resume(run) => match self.store.run(&run).await {
                Ok(record) => (run, record.plan, false),
                Err(e) => {
                    let _ = self.store.release(&self.worker, &run).await;
                    return Err(format!("run {run}: {e}"));
                }
            },
        };
        let outcome = self.drive(&run, &plan, started).await;
        let _ = self.store.release(&self.worker, &run).await;
        outcome.map(Some).map_err(|e| format!("run {run}: {e}"))
    }

    /// Brings requests up to date whose worker died after their run ended.
    async fn settle_lagging_requests(
        &self,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<(), StoreError> {
        for (request, run, status) in self.store.unsettled_requests(now, self.batch).await? {
            sync_request_state(
                self.store.as_ref(),
                &request,
                request_state_after(status),
                &run,
                &self.worker,
            )
            .await?;
        }
        Ok(())
    }

    /// Executes (or resumes) one leased run, renewing the lease meanwhile, and brings the
    /// request's state up to date.
    async fn drive(&self, run: &str, plan: &Plan, started: bool) -> Result<TickRun, String> {
        let request = plan.request.id.clone();
        if !started {
            // A claimed run that waited in this tick's queue may have outlived its lease and
            // been taken over: renewing first (one atomic statement) makes sure it is still
            // ours. (A run just started was leased a moment ago, by the same transaction.)
            match self
                .store
                .renew(&self.worker, run, self.lease_ttl, self.clock.now())
                .await
            {
                Ok(true) => {}
                Ok(false) => {
                    return Err("the lease lapsed and another worker took the run over".into());
                }
                Err(e) => return Err(e.to_string()),
            }
            self.sync_request(&request, RequestState::Running, run)
                .await
                .map_err(|e| e.to_string())?;
        }
        let connectors = self.connectors(&plan.request.tenant).await?;
        let engine = Engine::new(self.store.clone(), connectors, &self.state_dir)
            .with_clock(self.clock.clone())
            .with_parallelism(self.parallelism);
        let before = if started {
            BTreeSet::new()
        } else {
            sent_instances(&self.store.outcomes(run).await.map_err(|e| e.to_string())?)
        };
        let status_before = if started {
            RunStatus::Running
        } else {
            self.store.run(run).await.map_err(|e| e.to_string())?.status
        };
        let renewer = self.renew_while_running(run, engine.stop_flag());
        let result = engine.execute(run, plan, RunMode::Apply, None).await;
        renewer.abort();
        let result = result.map_err(|e: EngineError| e.to_string())?;
        let mutated: Vec<&str> = result
            .outcomes
            .iter()
            .filter(|o| o.sent && !before.contains(&o.instance))
            .map(|o| o.instance.as_str())
            .collect();
        if mutated.is_empty() && result.status == status_before {
            // Nothing changed (e.g. a manual task still open): no audit entry per tick.
            return Ok(TickRun {
                request,
                run: run.to_owned(),
                started,
                status: result.status,
            });
        }
        self.store
            .append_audit(
                "run.executed",
                run,
                json!({"request": request, "status": result.status, "worker": self.worker, "mutated": mutated}),
                None,
            )
            .await
            .map_err(|e| e.to_string())?;
        self.sync_request(&request, request_state_after(result.status), run)
            .await
            .map_err(|e| e.to_string())?;
        Ok(TickRun {
            request,
            run: run.to_owned(),
            started,
            status: result.status,
        })
    }

    /// Renews the run's lease every third of its lifetime; when the lease is lost, no new
    /// step of the run starts.
    fn renew_while_running(&self, run: &str, stop: Arc<AtomicBool>) -> tokio::task::JoinHandle<()> {
        let store = self.store.clone();
        let worker = self.worker.clone();
        let run = run.to_owned();
        let ttl = self.lease_ttl;
        let clock = self.clock.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(ttl / 3).await;
                match store.renew(&worker, &run, ttl, clock.now()).await {
                    Ok(true) => {}
                    Ok(false) => {
                        tracing::warn!(run, worker, "lease lost; no new steps start");
                        stop.store(true, Ordering::SeqCst);
                        return;
                    }
                    Err(e) => tracing::warn!(run, worker, "renewing the lease failed: {e}"),
                }
            }
        })
    }

    /// The tenant's connectors, built once per scheduler.
    async fn connectors(
        &self,
        tenant: &str,
    ) -> Result<HashMap<String, Arc<dyn Connector>>, String> {
        let mut cache = self.connectors.lock().await;
        if let Some(c) = cache.get(tenant) {
            return Ok(c.clone());
        }
        let built = connectors_for_tenant(&self.project.config, tenant, &self.project.root)
            .await
            .map_err(|e| format!("building the connectors of tenant `{tenant}`: {e}"))?;
        cache.insert(tenant.to_owned(), built.clone());
        Ok(built)
    }

    async fn sync_request(
        &self,
        id: &str,
        state: RequestState,
        run: &str,
    ) -> Result<(), StoreError> {
        sync_request_state(self.store.as_ref(), id, state, run, &self.worker).await
    }

    async fn audit_state(
        &self,
        id: &str,
        state: RequestState,
        run: Option<&str>,
    ) -> Result<(), StoreError> {
        self.store
            .append_audit(
                &format!("request.{}", state.as_str()),
                id,
                json!({"run": run, "worker": self.worker}),
                None,
            )
            .await
            .map(|_| ())
    }

    /// A request whose plan cannot be compiled fails with the reason (through `running`, as
    /// the lifecycle wants), so a person sees it in `dsrctl requests`.
    async fn fail_request(&self, id: &str, reason: &str) -> Result<(), StoreError> {
        self.store
            .set_request_state(id, RequestState::Running, None)
            .await?;
        self.store
            .set_request_state(id, RequestState::Failed, Some(reason.to_owned()))
            .await?;
        self.store
            .append_audit(
                "request.failed",
                id,
                json!({"reason": reason, "worker": self.worker}),
                None,
            )
            .await
            .map(|_| ())
    }
}

/// Moves a request to `state` when it is recorded and not there yet (and the lifecycle
/// allows it), with an audit entry naming the run and the worker. Runs of requests that are
/// not recorded (`dsrctl run FILE`) have nothing to update.
pub async fn sync_request_state(
    store: &dyn Store,
    id: &str,
    state: RequestState,
    run: &str,
    worker: &str,
) -> Result<(), StoreError> {
    let current = match store.request(id).await {
        Ok(r) => r.state,
        Err(StoreError::RequestNotFound(_)) => return Ok(()),
        Err(e) => return Err(e),
    };
    if current == state || !current.can_become(state) {
        return Ok(());
    }
    store.set_request_state(id, state, None).await?;
    store
        .append_audit(
            &format!("request.{}", state.as_str()),
            id,
            json!({"run": run, "worker": worker}),
            None,
        )
        .await
        .map(|_| ())
}

/// A stable position in the queue for a worker name.
fn worker_offset(worker: &str) -> usize {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    worker.hash(&mut h);
    usize::try_from(h.finish() % 1_000_003).unwrap_or(0)
}

fn sent_instances(outcomes: &[crate::journal::StepOutcome]) -> BTreeSet<String> {
    outcomes
        .iter()
        .filter(|o| o.sent)
        .map(|o| o.instance.clone())
        .collect()
}
