//! The scheduler end to end.
//!
//! 1. One `Scheduler::tick` (what `dsrctl tick` does) over 10,000 queued requests of which
//!    500 are due (approved, no run yet): it finds, compiles, starts and executes them (each
//!    run ends waiting 30 days on a deferred step), on SQLite and on PostgreSQL.
//! 2. Throughput of one `dsrctl serve` worker process against four, sharing a PostgreSQL
//!    store, completing deletion requests against a server with a fixed latency.
//!
//! `cargo bench --bench lifecycle` (PostgreSQL from `DSRCTL_TEST_POSTGRES_URL`, default
//! `postgres://postgres@127.0.0.1:5432/test`; `DSRCTL_BENCH_SKIP_POSTGRES=1` skips it;
//! `DSRCTL_BENCH_TICK_ONLY=1` stops after the ticks).

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Request as HttpRequest, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use dsrctl::journal::{PLAN_FORMAT_VERSION, Plan, RequestState, StepOutcome, StepStatus};
use dsrctl::model::{DsrKind, Identity, Jurisdiction, Request};
use dsrctl::store::{Store, open};
use dsrctl::workflow::Scheduler;
use sqlx::Connection;

const QUEUED: usize = 10_000;
const DUE: usize = 500;
const THROUGHPUT_REQUESTS: usize = 160;
const LATENCY: Duration = Duration::from_millis(100);

const PLAYBOOK: &str = r#"
service: things
connector: api
needs_identities: [uid]
dsr:
  access: { unsupported: "bench" }
  export: { unsupported: "bench" }
  rectify: { unsupported: "bench" }
  restrict: { unsupported: "bench" }
  delete:
    - id: list
      http: { method: GET, path: "/{{seg subject.uid}}/items", query: { n: "2" } }
      capture: { ids: /value }
    - id: drop
      needs: [list]
      for_each: list.ids
      http: { method: DELETE, path: "/{{seg subject.uid}}/items/{{seg item.id}}" }
      absent_on: [404]
      preview: item
      verify:
        http: { method: GET, path: "/{{seg subject.uid}}/items/{{seg item.id}}" }
        expect_status: [404]
"#;

const WAIT_PLAYBOOK: &str = r#"
service: things
connector: api
needs_identities: [uid]
dsr:
  access: { unsupported: "bench" }
  export: { unsupported: "bench" }
  rectify: { unsupported: "bench" }
  restrict: { unsupported: "bench" }
  delete:
    - id: purge-period
      wait: { duration: 30d, reason: recycle bin }
"#;

fn write_project(dir: &Path, base_url: &str, playbook: &str, state: Option<&str>) {
    std::fs::create_dir_all(dir.join("policies")).expect("dir");
    let state = state
        .map(|s| format!("state: \"{s}\"\n"))
        .unwrap_or_default();
    std::fs::write(
        dir.join("dsrctl.yaml"),
        format!(
            "{state}tenants:\n  t1:\n    connectors:\n      api:\n        kind: http\n        base_url: {base_url}\n        timeout: 10s\n"
        ),
    )
    .expect("config");
    std::fs::write(dir.join("policies/things.yaml"), playbook).expect("playbook");
}

fn request(i: usize, received: chrono::NaiveDate) -> Request {
    Request {
        id: format!("r-{i:05}"),
        kind: DsrKind::Delete,
        tenant: "t1".into(),
        jurisdiction: Jurisdiction::Gdpr,
        received,
        subject: BTreeMap::from([("uid".to_owned(), Identity::One(format!("u{i}")))]),
        corrections: None,
        note: None,
        name: None,
        language: None,
    }
}

/// 9,500 requests whose runs wait 30 days, and 500 approved requests without a run,
/// inserted around the store in one transaction.
async fn fill<DB: sqlx::Database>(conn: &mut DB::Connection, json: &str, now: DateTime<Utc>)
where
    for<'c> &'c mut DB::Connection: sqlx::Executor<'c, Database = DB>,
    for<'q> <DB as sqlx::Database>::Arguments: sqlx::IntoArguments<DB>,
    for<'q> String: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> i64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    let stamp = now.timestamp_millis();
    let later = (now + chrono::Duration::days(30)).timestamp_millis();
    let mut tx = conn.begin().await.expect("begin");
    let q = |sql: String| sqlx::query::<DB>(sqlx::AssertSqlSafe(sql));
    for i in 0..QUEUED {
        let req = request(i, now.date_naive());
        let due = i % (QUEUED / DUE) == 0;
        let state = if due { "approved" } else { "waiting" };
        q(format!(
            "INSERT INTO requests (id, body, state, received, deadline, created_at, updated_at) \
             VALUES ($1, $2{json}, '{state}', $3, '2099-01-01', $4, $4)"
        ))
        .bind(req.id.clone())
        .bind(serde_json::to_string(&req).expect("json"))
        .bind(now.date_naive().to_string())
        .bind(stamp)
        .execute(&mut *tx)
        .await
        .expect("request");
        if due {
            continue;
        }
        let run = format!("run{i:05}");
        let plan = Plan {
            format_version: PLAN_FORMAT_VERSION,
            created_at: now,
            request: req.clone(),
            inputs: BTreeMap::new(),
            services: Vec::new(),
            steps: Vec::new(),
        };
        let mut outcome = StepOutcome::new(
            "things/purge-period",
            "things/purge-period",
            StepStatus::Waiting,
        );
        outcome.due_at = Some(now + chrono::Duration::days(30));
        q(format!(
            "INSERT INTO runs (id, request_id, mode, status, created_at, updated_at, plan) \
             VALUES ($1, $2, 'apply', 'waiting', $3, $3, $4{json})"
        ))
        .bind(run.clone())
        .bind(req.id.clone())
        .bind(stamp)
        .bind(serde_json::to_string(&plan).expect("json"))
        .execute(&mut *tx)
        .await
        .expect("run");
        q(format!(
            "INSERT INTO outcomes (run_id, instance, step, status, due_at, body) \
             VALUES ($1, 'things/purge-period', 'things/purge-period', 'waiting', $2, $3{json})"
        ))
        .bind(run)
        .bind(later)
        .bind(serde_json::to_string(&outcome).expect("json"))
        .execute(&mut *tx)
        .await
        .expect("outcome");
    }
    tx.commit().await.expect("commit");
}

async fn one_tick(name: &str, dir: &Path, store: Arc<dyn Store>) {
    let project = Arc::new(dsrctl::load::load_project(dir).expect("project"));
    let scheduler = Scheduler::new(project, store.clone(), dir.join(".dsrctl"), "bench")
        .with_batch(DUE as u32)
        .with_concurrency(64);
    let started = Instant::now();
    let report = scheduler.tick().await.expect("tick");
    let took = started.elapsed();
    assert_eq!(report.runs.len(), DUE, "{:?}", report.problems);
    assert!(report.runs.iter().all(|r| r.started));
    let waiting = store
        .requests()
        .await
        .expect("requests")
        .iter()
        .filter(|r| r.state == RequestState::Waiting)
        .count();
    assert_eq!(waiting, QUEUED);
    println!(
        "{name}: one tick over {QUEUED} queued requests, {DUE} due: started and executed all {DUE} in {took:?}"
    );
}

/// Serves `/{uid}/items` (two items) and `/{uid}/items/{id}` (GET, DELETE) after a fixed
/// latency, counting DELETEs per path.
#[derive(Clone, Default)]
struct Emulator {
    deleted: Arc<Mutex<HashMap<String, u32>>>,
}

async fn handle(State(e): State<Emulator>, req: HttpRequest) -> Response {
    tokio::time::sleep(LATENCY).await;
    let path = req.uri().path().to_owned();
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let mut deleted = e.deleted.lock().expect("lock");
    match (req.method().as_str(), parts.as_slice()) {
        ("GET", [uid, "items"]) => axum::Json(serde_json::json!({"value": [
            {"id": format!("{uid}-0")}, {"id": format!("{uid}-1")}
        ]}))
        .into_response(),
        ("GET", [_, "items", _]) if deleted.contains_key(&path) => {
            StatusCode::NOT_FOUND.into_response()
        }
        ("GET", [_, "items", id]) => axum::Json(serde_json::json!({"id": id})).into_response(),
        ("DELETE", [_, "items", _]) => {
            *deleted.entry(path).or_default() += 1;
            StatusCode::NO_CONTENT.into_response()
        }
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn start_emulator() -> (String, Emulator) {
    let emulator = Emulator::default();
    let app = axum::Router::new()
        .fallback(handle)
        .with_state(emulator.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await.expect("serve") });
    (format!("http://{addr}"), emulator)
}

fn serve(dir: &Path, name: &str) -> Child {
    Command::new(env!("CARGO_BIN_EXE_dsrctl"))
        .arg("-C")
        .arg(dir)
        .args([
            "serve",
            "--every",
            "200ms",
            "--worker",
            name,
            "--concurrency",
            "4",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn dsrctl")
}

/// Seconds `workers` processes take to complete the requests.
async fn throughput(base: &str, workers: usize) -> f64 {
    let schema = format!("bench_lc_w{workers}_{}", std::process::id());
    let sep = if base.contains('?') { '&' } else { '?' };
    let url = format!("{base}{sep}schema={schema}");
    let (emulator_url, emulator) = start_emulator().await;
    let dir = tempfile::tempdir().expect("tempdir");
    write_project(dir.path(), &emulator_url, PLAYBOOK, Some(&url));
    let store = open(&url, dir.path()).await.expect("postgres");
    for i in 0..THROUGHPUT_REQUESTS {
        store
            .put_request(&request(i, Utc::now().date_naive()), RequestState::Approved)
            .await
            .expect("request");
    }
    let started = Instant::now();
    let mut children: Vec<Child> = (0..workers)
        .map(|n| serve(dir.path(), &format!("w{n}")))
        .collect();
    loop {
        let done = store
            .requests()
            .await
            .expect("requests")
            .iter()
            .filter(|r| r.state == RequestState::Completed)
            .count();
        if done == THROUGHPUT_REQUESTS {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let took = started.elapsed().as_secs_f64();
    for c in &mut children {
        let _ = c.kill();
        let _ = c.wait();
    }
    let deletes = emulator.deleted.lock().expect("lock").clone();
    assert_eq!(deletes.len(), THROUGHPUT_REQUESTS * 2);
    assert!(
        deletes.values().all(|n| *n == 1),
        "a deletion was sent twice"
    );
    store.close().await;
    let pool = sqlx::PgPool::connect(base).await.expect("postgres");
    let _ = sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "DROP SCHEMA \"{schema}\" CASCADE"
    )))
    .execute(&pool)
    .await;
    took
}

#[tokio::main]
async fn main() {
    let now = Utc::now();
    let dir = tempfile::tempdir().expect("tempdir");
    write_project(dir.path(), "http://127.0.0.1:9", WAIT_PLAYBOOK, None);
    let path = dir.path().join(".dsrctl/state.db");
    let store = open(&path.display().to_string(), dir.path())
        .await
        .expect("sqlite");
    let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
        .await
        .expect("sqlite");
    fill::<sqlx::Sqlite>(&mut conn, "", now).await;
    one_tick("sqlite", dir.path(), store.clone()).await;
    store.close().await;

    if std::env::var_os("DSRCTL_BENCH_SKIP_POSTGRES").is_some() {
        return;
    }
    let base = std::env::var("DSRCTL_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
    let schema = format!("bench_lc_tick_{}", std::process::id());
    let sep = if base.contains('?') { '&' } else { '?' };
    let pg_dir = tempfile::tempdir().expect("tempdir");
    write_project(pg_dir.path(), "http://127.0.0.1:9", WAIT_PLAYBOOK, None);
    let store = open(&format!("{base}{sep}schema={schema}"), pg_dir.path())
        .await
        .expect("postgres");
    let options = <sqlx::postgres::PgConnectOptions as std::str::FromStr>::from_str(&base)
        .expect("url")
        .options([("search_path", schema.as_str())]);
    let mut conn = sqlx::PgConnection::connect_with(&options)
        .await
        .expect("postgres");
    fill::<sqlx::Postgres>(&mut conn, "::json", now).await;
    sqlx::raw_sql("ANALYZE")
        .execute(&mut conn)
        .await
        .expect("analyze");
    one_tick("postgres", pg_dir.path(), store.clone()).await;
    store.close().await;
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "DROP SCHEMA \"{schema}\" CASCADE"
    )))
    .execute(&mut conn)
    .await
    .expect("drop schema");

    if std::env::var_os("DSRCTL_BENCH_TICK_ONLY").is_some() {
        return;
    }
    let one = throughput(&base, 1).await;
    let four = throughput(&base, 4).await;
    println!(
        "postgres, {THROUGHPUT_REQUESTS} deletion requests, {LATENCY:?} per call: 1 worker {one:.1}s \
         ({:.1} req/s), 4 workers {four:.1}s ({:.1} req/s): {:.2}x",
        THROUGHPUT_REQUESTS as f64 / one,
        THROUGHPUT_REQUESTS as f64 / four,
        one / four
    );
}
