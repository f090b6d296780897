//! The Contoso example project against an in-process emulator: a copy of `examples/contoso`
//! and `policies/` in a tempdir, pointed at the emulator's port, CRMs seeded from their
//! `.sql` files, secrets in files (no process-wide environment changes).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use dsrctl::compile::compile;
use dsrctl::connectors::connectors_for_tenant;
use dsrctl::emulator::{Emulator, Fixture};
use dsrctl::engine::{Engine, RunResult};
use dsrctl::journal::{Plan, PlannedAction, RunMode, StepOutcome, StepStatus, TaskRecord};
use dsrctl::load::{Project, load_project, load_request};
use dsrctl::model::Request;
use dsrctl::store::Store;
use serde_json::Value;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};

/// A running emulator and a copy of the example project that talks to it.
pub struct Pack {
    pub emulator: Emulator,
    pub root: tempfile::TempDir,
    pub project: Project,
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let path = entry.path();
        let name = entry.file_name();
        let name_str = name.to_string_lossy();
        if name_str.ends_with(".db") || name_str == ".dsrctl" || name_str == "exports" {
            continue;
        }
        if path.is_dir() {
            copy_dir(&path, &to.join(&name));
        } else {
            std::fs::copy(&path, to.join(&name)).unwrap();
        }
    }
}

async fn seed_sqlite(db: &Path, script: &Path) {
    let opts = SqliteConnectOptions::new()
        .filename(db)
        .create_if_missing(true);
    let pool = SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(opts)
        .await
        .unwrap();
    let sql = std::fs::read_to_string(script).unwrap();
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
}

impl Pack {
    /// Starts the emulator with the demo fixture.
    pub async fn start() -> Pack {
        Pack::with_fixture(Fixture::contoso()).await
    }

    /// Starts the emulator with `fixture` and writes the project next to it.
    pub async fn with_fixture(fixture: Fixture) -> Pack {
        let emulator = dsrctl::emulator::start(fixture, "127.0.0.1:0".parse().unwrap())
            .await
            .unwrap();
        let root = tempfile::tempdir().unwrap();
        copy_dir(&repo().join("policies"), &root.path().join("policies"));
        let dir = root.path().join("contoso");
        copy_dir(&repo().join("examples/contoso"), &dir);
        let config = std::fs::read_to_string(dir.join("dsrctl.yaml"))
            .unwrap()
            .replace("127.0.0.1:8790", &emulator.addr.to_string())
            .replace("../../policies", "../policies")
            .replace("{ env: CONTOSO_CLIENT_SECRET }", "{ file: contoso.secret }")
            .replace("{ env: FABRIKAM_TOKEN }", "{ file: fabrikam.secret }");
        std::fs::write(dir.join("dsrctl.yaml"), config).unwrap();
        std::fs::write(dir.join("contoso.secret"), "demo-secret\n").unwrap();
        std::fs::write(dir.join("fabrikam.secret"), "demo-token\n").unwrap();
        seed_sqlite(&dir.join("crm.db"), &dir.join("crm.sql")).await;
        seed_sqlite(&dir.join("fabrikam-crm.db"), &dir.join("fabrikam-crm.sql")).await;
        let project = load_project(&dir).unwrap_or_else(|d| panic!("{}", d.render_human(false)));
        Pack {
            emulator,
            root,
            project,
        }
    }

    pub fn dir(&self) -> PathBuf {
        self.root.path().join("contoso")
    }

    /// A sample request of the example project, by file name.
    pub fn request(&self, file: &str) -> Request {
        load_request(&self.dir().join("requests").join(file))
            .unwrap_or_else(|d| panic!("{}", d.render_human(false)))
    }

    pub fn plan(&self, file: &str) -> Plan {
        compile(&self.project, &self.request(file), chrono::Utc::now()).unwrap()
    }

    async fn store(&self) -> Arc<dyn Store> {
        dsrctl::workflow::open_store(&self.project, &self.dir().join(".dsrctl"))
            .await
            .unwrap()
    }

    /// Compiles and executes a sample request.
    pub async fn execute(&self, file: &str, mode: RunMode) -> Outcomes {
        let plan = self.plan(file);
        let store = self.store().await;
        let run_id = store.create_run(&plan, mode).await.unwrap();
        store.close().await;
        self.resume(plan, &run_id, mode).await
    }

    async fn resume(&self, plan: Plan, run_id: &str, mode: RunMode) -> Outcomes {
        let store = self.store().await;
        let connectors =
            connectors_for_tenant(&self.project.config, &plan.request.tenant, &self.dir())
                .await
                .unwrap();
        let engine = Engine::new(store.clone(), connectors, self.dir().join(".dsrctl"));
        let result = engine.execute(run_id, &plan, mode, None).await.unwrap();
        store.close().await;
        Outcomes {
            plan,
            result,
            run_dir: self.dir().join(".dsrctl").join("runs").join(run_id),
        }
    }

    /// Records every waiting manual task of the run as done by `by` (what `dsrctl task
    /// done` records), then resumes the run. Returns the resumed run.
    pub async fn complete_tasks(&self, run: Outcomes, by: &str) -> Outcomes {
        let store = self.store().await;
        for s in &run.plan.steps {
            if !matches!(s.action, PlannedAction::Manual(_)) {
                continue;
            }
            let Some(o) = run.result.outcomes.iter().find(|o| o.instance == s.key) else {
                continue;
            };
            if o.status != StepStatus::Waiting {
                continue;
            }
            let mut done = o.clone();
            done.status = StepStatus::Succeeded;
            done.finished_at = Some(chrono::Utc::now());
            done.task = Some(TaskRecord {
                by: by.to_owned(),
                at: chrono::Utc::now(),
                result: "done".to_owned(),
                note: Some("recorded by the test".to_owned()),
                evidence: Vec::new(),
            });
            store.record(&run.result.run_id, &done).await.unwrap();
        }
        store.close().await;
        let run_id = run.result.run_id.clone();
        self.resume(run.plan, &run_id, RunMode::Apply).await
    }

    pub async fn apply(&self, file: &str) -> Outcomes {
        self.execute(file, RunMode::Apply).await
    }

    pub fn snapshot(&self, tenant: &str) -> Value {
        self.emulator.snapshot(tenant)
    }

    /// Rows of a CRM table, as `(email or id, ...)` text for comparison.
    pub async fn crm_emails(&self, db: &str) -> Vec<String> {
        let opts = SqliteConnectOptions::new().filename(self.dir().join(db));
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(opts)
            .await
            .unwrap();
        let rows: Vec<(String, String, Option<String>)> =
            sqlx::query_as("SELECT email, name, city FROM customers ORDER BY id")
                .fetch_all(&pool)
                .await
                .unwrap();
        pool.close().await;
        rows.into_iter()
            .map(|(e, n, c)| format!("{e}|{n}|{}", c.unwrap_or_default()))
            .collect()
    }

    pub async fn crm_order_ids(&self, db: &str) -> Vec<i64> {
        let opts = SqliteConnectOptions::new().filename(self.dir().join(db));
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(opts)
            .await
            .unwrap();
        let rows: Vec<(i64,)> = sqlx::query_as("SELECT id FROM orders ORDER BY id")
            .fetch_all(&pool)
            .await
            .unwrap();
        pool.close().await;
        rows.into_iter().map(|r| r.0).collect()
    }
}

/// What a run did.
pub struct Outcomes {
    pub plan: Plan,
    pub result: RunResult,
    pub run_dir: PathBuf,
}

impl Outcomes {
    /// The step-level outcome of `service/step` (or `service/kind.step`).
    pub fn step(&self, key: &str) -> &StepOutcome {
        self.result
            .outcomes
            .iter()
            .find(|o| o.instance == key)
            .unwrap_or_else(|| panic!("no outcome for `{key}`; have: {}", self.keys()))
    }

    pub fn status(&self, key: &str) -> StepStatus {
        self.step(key).status
    }

    pub fn keys(&self) -> String {
        self.result
            .outcomes
            .iter()
            .map(|o| format!("{}={:?}", o.instance, o.status))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Every planned step has a step-level outcome, or has not started because a step it
    /// needs waits (a manual task, a deferred step); none failed or is left pending
    /// without reason, and each waiting or skipped step says why.
    pub fn all_accounted(&self) {
        for s in &self.plan.steps {
            let Some(o) = self.result.outcomes.iter().find(|o| o.instance == s.key) else {
                assert!(
                    self.waits_behind(&s.key),
                    "{} has no outcome and waits for nothing; {}",
                    s.key,
                    self.keys()
                );
                continue;
            };
            assert!(
                !matches!(
                    o.status,
                    StepStatus::Failed
                        | StepStatus::Pending
                        | StepStatus::Running
                        | StepStatus::Blocked
                ),
                "{} is {:?}: {:?}",
                s.key,
                o.status,
                o.message
            );
            if matches!(o.status, StepStatus::Waiting | StepStatus::Skipped) {
                assert!(
                    o.message.as_deref().is_some_and(|m| !m.is_empty()),
                    "{} is {:?} without a reason",
                    s.key,
                    o.status
                );
            }
        }
    }

    /// Whether a step that has not started needs (transitively) a step that waits.
    pub fn waits_behind(&self, key: &str) -> bool {
        let Some(s) = self.plan.steps.iter().find(|s| s.key == key) else {
            return false;
        };
        s.needs.iter().any(
            |n| match self.result.outcomes.iter().find(|o| &o.instance == n) {
                Some(o) => o.status == StepStatus::Waiting,
                None => self.waits_behind(n),
            },
        )
    }

    /// Records collected into the export package by a step.
    pub fn collected(&self, key: &str) -> Vec<Value> {
        let o = self.step(key);
        let mut files = Vec::new();
        if let Some(rel) = &o.collected {
            files.push(self.run_dir.join(rel));
        }
        for part in self
            .result
            .outcomes
            .iter()
            .filter(|p| p.step == key && p.instance != key)
        {
            if let Some(rel) = &part.collected {
                files.push(self.run_dir.join(rel));
            }
        }
        files
            .iter()
            .filter_map(|f| std::fs::read_to_string(f).ok())
            .flat_map(|t| {
                t.lines()
                    .filter(|l| !l.trim().is_empty())
                    .map(|l| serde_json::from_str::<Value>(l).unwrap())
                    .collect::<Vec<_>>()
            })
            .collect()
    }
}

/// Values of `field` of each object in `list`.
pub fn ids(list: &Value, field: &str) -> Vec<String> {
    let mut out: Vec<String> = list
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|o| o.get(field).and_then(Value::as_str).map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}
