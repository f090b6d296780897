//! What one `dsrctl tick` asks the state store: 10,000 queued requests, each with a run
//! waiting on a deferred step, of which 500 are due. Measures `due_requests` + `due_steps`
//! + `claim_runs` of the 500 on SQLite and on PostgreSQL.
//!
//! `cargo bench --bench tick` (PostgreSQL from `DSRCTL_TEST_POSTGRES_URL`, default
//! `postgres://postgres@127.0.0.1:5432/test`; `DSRCTL_BENCH_SKIP_POSTGRES=1` skips it).

use std::collections::BTreeMap;
use std::str::FromStr;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use dsrctl::journal::{PLAN_FORMAT_VERSION, Plan, StepOutcome, StepStatus};
use dsrctl::model::{DsrKind, Identity, Jurisdiction, Request};
use dsrctl::store::{Store, open};
use sqlx::Connection;

const REQUESTS: usize = 10_000;
const DUE: usize = 500;
const ROUNDS: u32 = 5;

/// One queued request's rows: request JSON, run id, plan JSON, outcome JSON, due time.
struct Queued {
    id: String,
    request: String,
    run: String,
    plan: String,
    outcome: String,
    due_at: i64,
}

fn queued(now: DateTime<Utc>) -> Vec<Queued> {
    (0..REQUESTS)
        .map(|i| {
            let request = Request {
                id: format!("r-{i:05}"),
                kind: DsrKind::Delete,
                tenant: "contoso".into(),
                jurisdiction: Jurisdiction::Gdpr,
                received: now.date_naive(),
                subject: BTreeMap::from([(
                    "email".to_owned(),
                    Identity::One(format!("user{i}@contoso.com")),
                )]),
                corrections: None,
                note: None,
                name: None,
                language: None,
            };
            // Every 20th request's purge check is due; the others wait 30 days.
            let due = if i % (REQUESTS / DUE) == 0 {
                now - chrono::Duration::minutes(5)
            } else {
                now + chrono::Duration::days(30)
            };
            let mut outcome = StepOutcome::new("purge/check", "purge/check", StepStatus::Waiting);
            outcome.due_at = Some(due);
            let plan = Plan {
                format_version: PLAN_FORMAT_VERSION,
                created_at: now,
                request: request.clone(),
                inputs: BTreeMap::new(),
                services: Vec::new(),
                steps: Vec::new(),
            };
            Queued {
                id: request.id.clone(),
                request: serde_json::to_string(&request).expect("json"),
                run: uuid::Uuid::now_v7().to_string(),
                plan: serde_json::to_string(&plan).expect("json"),
                outcome: serde_json::to_string(&outcome).expect("json"),
                due_at: due.timestamp_millis(),
            }
        })
        .collect()
}

/// Inserts the queue in one transaction, around the store (creating 10,000 runs through
/// the API would only measure fsyncs).
async fn fill<DB: sqlx::Database>(conn: &mut DB::Connection, rows: &[Queued], json: &str, now: i64)
where
    for<'c> &'c mut DB::Connection: sqlx::Executor<'c, Database = DB>,
    for<'q> <DB as sqlx::Database>::Arguments: sqlx::IntoArguments<DB>,
    for<'q> String: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> i64: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    let mut tx = conn.begin().await.expect("begin");
    let q = |sql: String| sqlx::query::<DB>(sqlx::AssertSqlSafe(sql));
    for r in rows {
        q(format!(
            "INSERT INTO requests (id, body, state, received, deadline, created_at, updated_at) \
             VALUES ($1, $2{json}, 'waiting', '2026-01-01', '2026-02-01', $3, $3)"
        ))
        .bind(r.id.clone())
        .bind(r.request.clone())
        .bind(now)
        .execute(&mut *tx)
        .await
        .expect("request");
        q(format!(
            "INSERT INTO runs (id, request_id, mode, status, created_at, updated_at, plan) \
             VALUES ($1, $2, 'apply', 'waiting', $3, $3, $4{json})"
        ))
        .bind(r.run.clone())
        .bind(r.id.clone())
        .bind(now)
        .bind(r.plan.clone())
        .execute(&mut *tx)
        .await
        .expect("run");
        q(format!(
            "INSERT INTO outcomes (run_id, instance, step, status, due_at, body) \
             VALUES ($1, 'purge/check', 'purge/check', 'waiting', $2, $3{json})"
        ))
        .bind(r.run.clone())
        .bind(r.due_at)
        .bind(r.outcome.clone())
        .execute(&mut *tx)
        .await
        .expect("outcome");
    }
    tx.commit().await.expect("commit");
}

/// Runs `ROUNDS` ticks, each at a later clock so the previous round's leases have lapsed.
async fn ticks(name: &str, store: &dyn Store, now: DateTime<Utc>) {
    let ttl = Duration::from_millis(500);
    let mut times = Vec::new();
    for round in 0..ROUNDS {
        let at = now + chrono::Duration::seconds(i64::from(round));
        let started = Instant::now();
        let requests = store.due_requests(at).await.expect("due requests");
        let steps = store.due_steps(at).await.expect("due steps");
        let claimed = store
            .claim_runs("bench", 1_000, ttl, at)
            .await
            .expect("claim");
        let t = started.elapsed();
        assert_eq!(requests.len(), 0);
        assert_eq!(steps.len(), DUE);
        assert_eq!(claimed.len(), DUE);
        times.push(t);
    }
    times.sort();
    println!(
        "{name}: {REQUESTS} queued, {DUE} due: due_requests + due_steps + claim_runs \
         min {:?}, median {:?}, max {:?} ({ROUNDS} rounds)",
        times[0],
        times[times.len() / 2],
        times[times.len() - 1]
    );
}

#[tokio::main]
async fn main() {
    let now = Utc::now();
    let rows = queued(now);

    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("state.db");
    let store = open(&path.display().to_string(), dir.path())
        .await
        .expect("sqlite");
    let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display()))
        .await
        .expect("sqlite");
    fill::<sqlx::Sqlite>(&mut conn, &rows, "", now.timestamp_millis()).await;
    ticks("sqlite", store.as_ref(), now).await;
    store.close().await;

    if std::env::var_os("DSRCTL_BENCH_SKIP_POSTGRES").is_some() {
        return;
    }
    let base = std::env::var("DSRCTL_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
    let schema = format!("bench_tick_{}", std::process::id());
    let sep = if base.contains('?') { '&' } else { '?' };
    let store = open(&format!("{base}{sep}schema={schema}"), dir.path())
        .await
        .expect("postgres");
    let options = sqlx::postgres::PgConnectOptions::from_str(&base)
        .expect("url")
        .options([("search_path", schema.as_str())]);
    let mut conn = sqlx::PgConnection::connect_with(&options)
        .await
        .expect("postgres");
    fill::<sqlx::Postgres>(&mut conn, &rows, "::json", now.timestamp_millis()).await;
    sqlx::raw_sql("ANALYZE")
        .execute(&mut conn)
        .await
        .expect("analyze");
    ticks("postgres", store.as_ref(), now).await;
    store.close().await;
    let drop = format!("DROP SCHEMA \"{schema}\" CASCADE");
    sqlx::raw_sql(sqlx::AssertSqlSafe(drop))
        .execute(&mut conn)
        .await
        .expect("drop schema");
}
