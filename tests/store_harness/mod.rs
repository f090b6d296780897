//! Runs one test body against SQLite and against PostgreSQL, each in a fresh place.

use std::collections::HashSet;
use std::panic::{AssertUnwindSafe, resume_unwind};
use std::process::Stdio;
use std::str::FromStr;
use std::sync::Arc;

use dsrctl::journal::RunMode;
use dsrctl::journal::{StepOutcome, StepStatus};
use dsrctl::store::{Store, open};
use futures::FutureExt;
use sqlx::Connection;
use tokio::io::{AsyncBufReadExt, BufReader};

/// Which database a test body runs against.
#[derive(Clone, Copy)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A fresh store location for one test.
pub struct Ctx {
    backend: Backend,
    dir: tempfile::TempDir,
    location: String,
    schema: Option<String>,
}

fn postgres_url() -> String {
    std::env::var("DSRCTL_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

fn with_schema(url: &str, schema: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}schema={schema}")
}

impl Ctx {
    async fn new(backend: Backend, name: &str) -> Ctx {
        let dir = tempfile::tempdir().expect("tempdir");
        match backend {
            Backend::Sqlite => Ctx {
                backend,
                location: dir.path().join("state.db").display().to_string(),
                dir,
                schema: None,
            },
            Backend::Postgres => {
                let nanos = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.subsec_nanos())
                    .unwrap_or(0);
                let short: String = name.chars().take(30).collect();
                let schema = format!("t_{short}_{}_{nanos}", std::process::id());
                Ctx {
                    backend,
                    location: with_schema(&postgres_url(), &schema),
                    dir,
                    schema: Some(schema),
                }
            }
        }
    }

    /// `sqlite` or `postgres`.
    pub fn backend(&self) -> &'static str {
        match self.backend {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }

    /// What `open` is given.
    pub fn location(&self) -> &str {
        &self.location
    }

    /// Opens (again) the store of this test: another handle is another worker.
    pub async fn open(&self) -> Arc<dyn Store> {
        open(&self.location, self.dir.path())
            .await
            .expect("open the store")
    }

    /// Runs raw SQL on the store's database, around the store (for tampering).
    pub async fn exec(&self, sql: &str) {
        match &self.schema {
            None => {
                let url = format!("sqlite://{}", self.location);
                let mut conn = sqlx::SqliteConnection::connect(&url).await.expect("sqlite");
                sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))
                    .execute(&mut conn)
                    .await
                    .expect("raw sql");
            }
            Some(schema) => {
                let options = sqlx::postgres::PgConnectOptions::from_str(&postgres_url())
                    .expect("url")
                    .options([("search_path", schema.as_str())]);
                let mut conn = sqlx::PgConnection::connect_with(&options)
                    .await
                    .expect("pg");
                sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))
                    .execute(&mut conn)
                    .await
                    .expect("raw sql");
            }
        }
    }

    async fn cleanup(&self) {
        if let Some(schema) = &self.schema {
            let mut conn = sqlx::PgConnection::connect(&postgres_url())
                .await
                .expect("pg");
            let sql = format!("DROP SCHEMA IF EXISTS \"{schema}\" CASCADE");
            sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
                .execute(&mut conn)
                .await
                .expect("drop schema");
        }
    }
}

/// Runs `body` in a fresh location of `backend`, then removes the location (also when the
/// body panics).
pub async fn run(backend: Backend, name: &str, body: impl AsyncFnOnce(&Ctx)) {
    let ctx = Ctx::new(backend, name).await;
    let result = AssertUnwindSafe(body(&ctx)).catch_unwind().await;
    ctx.cleanup().await;
    if let Err(panic) = result {
        resume_unwind(panic);
    }
}

/// Declares `NAME::sqlite` and `NAME::postgres` tests running the body `NAME`.
macro_rules! both {
    ($name:ident) => {
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                crate::harness::run(
                    crate::harness::Backend::Sqlite,
                    stringify!($name),
                    super::$name,
                )
                .await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                crate::harness::run(
                    crate::harness::Backend::Postgres,
                    stringify!($name),
                    super::$name,
                )
                .await
            }
        }
    };
}
pub(crate) use both;

const CHILD_ENV: &str = "DSRCTL_STORE_TEST_CHILD";

/// Starts this test binary again as a writer recording outcomes as fast as it can, kills
/// it with SIGKILL once it has acknowledged a few hundred records, and returns the run and
/// the instances whose record had returned before the kill.
pub async fn record_in_child_then_sigkill(location: &str) -> (String, HashSet<String>) {
    let exe = std::env::current_exe().expect("test binary");
    let mut child = tokio::process::Command::new(exe)
        .args([
            "sigkill_child_writer",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, location)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn the child writer");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let mut run = None;
    let mut acked = HashSet::new();
    while let Some(line) = lines.next_line().await.expect("read child") {
        // The test harness prints `test NAME ... ` before the first line of the child.
        if let Some((_, id)) = line.split_once("RUN ") {
            run = Some(id.to_owned());
        } else if let Some(instance) = line.strip_prefix("ACK ") {
            acked.insert(instance.to_owned());
            if acked.len() >= 300 {
                break;
            }
        }
    }
    // SIGKILL: no destructor, no close, nothing flushed by the child after this point.
    child.start_kill().expect("kill");
    let status = child.wait().await.expect("wait");
    assert!(!status.success(), "the child was killed");
    (run.expect("the child created a run"), acked)
}

/// The child writer; returns at once unless started by `record_in_child_then_sigkill`.
pub async fn child_writer() {
    let Ok(location) = std::env::var(CHILD_ENV) else {
        return;
    };
    let base = std::env::temp_dir();
    let store = open(&location, &base).await.expect("open");
    let plan = crate::plan("r-crash");
    let run = store.create_run(&plan, RunMode::Apply).await.expect("run");
    println!("RUN {run}");
    let mut tasks = Vec::new();
    for t in 0..4 {
        let store = Arc::clone(&store);
        let run = run.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0.. {
                let instance = format!("svc/delete#{t}-{i}");
                let o = StepOutcome::new(&instance, "svc/delete", StepStatus::Succeeded);
                store.record(&run, &o).await.expect("record");
                println!("ACK {instance}");
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
}
