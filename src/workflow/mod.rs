//! The sequence plan → approve → apply → schedule, in one place above the engine: every face
//! (`dsrctl run`, `plan`, `apply`, `resume`, `replan`, `abandon`, `task done`, `tick`,
//! `serve`) goes through a [`Workflow`], so there is one approval rule
//! ([`approval_needed`]), one way a run is started, leased, executed and audited, and one
//! way a request's state follows its run. The engine below only executes plans.

mod approval;
mod data_key;
mod dry_run;
mod error;
mod execution;
mod import;
mod intake;
mod keys;
mod limits;
mod plan_diff;
mod purge;
mod repair;
mod request_state;
mod run_files;
mod saved_plan;
mod scheduler;
mod seal;
mod start;
mod tasks;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::compile::compile;
use crate::connectors::limits::WaitTally;
use crate::connectors::{Connector, connectors_for_tenant};
use crate::engine::{Clock, Engine};
use crate::journal::Plan;
use crate::load::Project;
use crate::model::Request;
use crate::store::Store;

pub use approval::{AUTO_APPROVAL, approval_needed};
pub use data_key::{open_store, project_data_key};
pub use dry_run::{DryRun, previewed};
pub use error::{Refusal, WorkflowError};
pub use execution::{Executed, Execution};
pub use import::{ImportFormat, ImportReport, ImportRow, read_rows};
pub use intake::{DRP_ID_PREFIX, Received, is_duplicate, reject_reserved_id};
pub use keys::{audit_key, audit_key_is_generated, signing_key};
pub use limits::{LimitKind, LimitReport, LimitSnapshot, LimitWait};
pub use plan_diff::{PlanDiff, StepChange, StepDiff};
pub use purge::{PURGED, Purged, is_purged};
pub use repair::{Abandoned, Replan};
pub use request_state::{request_state_after, sync_request_state};
pub use run_files::SharedStorage;
pub use saved_plan::{SAVED_PLAN_FORMAT_VERSION, SavedPlan};
pub use scheduler::{Scheduler, TickReport, TickRun};
pub use seal::Seal;
pub use start::{Again, Decision};
pub use tasks::{OpenTask, TaskSettlement, find_open_instance, open_tasks};

/// A tenant's connectors by name.
type Connectors = HashMap<String, Arc<dyn Connector>>;

/// The workflow of one project and state store, for one actor: a worker, or a person at
/// the command line. Leases on runs are taken in the actor's name (`holder`), so a run is
/// executed by one process at a time whichever face started it.
pub struct Workflow {
    project: Arc<Project>,
    store: Arc<dyn Store>,
    state_dir: PathBuf,
    holder: String,
    clock: Clock,
    parallelism: usize,
    lease_ttl: Duration,
    connectors: tokio::sync::Mutex<HashMap<String, Connectors>>,
    /// Waits of calls for a slot of `parallelism`, in every engine of this workflow.
    parallelism_waits: Arc<WaitTally>,
}

impl Workflow {
    /// The workflow of `project` over `store`, acting as `holder` (unique among the
    /// processes sharing the store: a worker name, or the command line's user and process).
    pub fn new(
        project: Arc<Project>,
        store: Arc<dyn Store>,
        state_dir: impl Into<PathBuf>,
        holder: impl Into<String>,
    ) -> Self {
        let parallelism = usize::try_from(project.config.defaults.parallelism).unwrap_or(10);
        Workflow {
            project,
            store,
            state_dir: state_dir.into(),
            holder: holder.into(),
            clock: Clock::system(),
            parallelism: parallelism.max(1),
            lease_ttl: Duration::from_secs(60),
            connectors: tokio::sync::Mutex::new(HashMap::new()),
            parallelism_waits: Arc::new(WaitTally::default()),
        }
    }

    /// The clock deciding what is due, lease times and plan times.
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// Connector calls in flight at once within one run.
    pub fn with_parallelism(mut self, n: usize) -> Self {
        self.parallelism = n.max(1);
        self
    }

    /// How long a lease lasts without renewal; renewed every third of it while a run
    /// executes.
    pub fn with_lease_ttl(mut self, ttl: Duration) -> Self {
        self.lease_ttl = ttl.max(Duration::from_millis(300));
        self
    }

    /// The project.
    pub fn project(&self) -> &Project {
        &self.project
    }

    /// The state store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// Who this workflow acts as.
    pub fn holder(&self) -> &str {
        &self.holder
    }

    /// The clock.
    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// Connector calls in flight at once within one run.
    pub fn parallelism(&self) -> usize {
        self.parallelism
    }

    /// The waits on every limit so far (connectors built by this workflow only).
    pub async fn limit_snapshot(&self) -> LimitSnapshot {
        let connectors = self.connectors.lock().await;
        LimitSnapshot {
            parallelism: self.parallelism_waits.get(),
            connectors: connectors
                .iter()
                .flat_map(|(tenant, cs)| {
                    cs.iter().filter_map(move |(name, c)| {
                        c.waits().map(|w| (format!("{tenant}/{name}"), w))
                    })
                })
                .collect(),
        }
    }

    /// How long a lease lasts without renewal.
    pub fn lease_ttl(&self) -> Duration {
        self.lease_ttl
    }

    /// The directory of run files and the generated plan key.
    pub fn state_dir(&self) -> &Path {
        &self.state_dir
    }

    /// Compiles a request with today's playbooks, at the workflow's time.
    pub fn compile(&self, request: &Request) -> Result<Plan, WorkflowError> {
        Ok(compile(&self.project, request, self.clock.now())?)
    }

    /// An engine with the connectors of `tenant` only, built once per workflow.
    pub async fn engine(&self, tenant: &str) -> Result<Engine, WorkflowError> {
        let connectors = {
            let mut cache = self.connectors.lock().await;
            match cache.get(tenant) {
                Some(c) => c.clone(),
                None => {
                    let built =
                        connectors_for_tenant(&self.project.config, tenant, &self.project.root)
                            .await
                            .map_err(|source| WorkflowError::Connectors {
                                tenant: tenant.to_owned(),
                                source,
                            })?;
                    cache.insert(tenant.to_owned(), built.clone());
                    built
                }
            }
        };
        let engine = Engine::new(self.store.clone(), connectors, &self.state_dir)
            .with_data_key(self.data_key()?)
            .with_clock(self.clock.clone())
            .with_parallelism(self.parallelism)
            .with_parallelism_waits(self.parallelism_waits.clone());
        Ok(match SharedStorage::for_project(&self.project)? {
            Some(storage) => engine.with_run_files(Arc::new(storage)),
            None => engine,
        })
    }
}
