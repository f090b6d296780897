//! The soak: requests through the HTTP API of several `dsrctl serve --listen` worker
//! processes sharing one PostgreSQL store, against an emulated service with latency; counts
//! what was lost, run twice or overdue, and measures throughput and request-to-done latency.
//! Shared by `tests/workers.rs` (small) and `benches/soak.rs` (a compressed day).

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::json;
use tokio::io::{AsyncBufReadExt, BufReader};

use super::items::{ItemServer, things_by_uid, write_project};

const INTAKE: &str = "soak-intake-0123456789abcdef";

/// What to run.
pub struct Soak {
    /// Requests posted (each a deletion, then approved: two API calls).
    pub requests: usize,
    /// Worker processes, each serving the API too.
    pub workers: usize,
    /// API calls in flight at once, spread over the workers.
    pub clients: usize,
    /// The emulated service's latency per call.
    pub latency: Duration,
    /// Items each subject holds (each deleted once, then verified gone).
    pub items: u32,
    /// Runs each worker executes at once.
    pub concurrency: usize,
    /// Calls each worker sends the service at once (the connector's `concurrency:`).
    pub connector_cap: usize,
    /// How long everything may take.
    pub deadline: Duration,
}

/// What it measured.
#[derive(Debug)]
pub struct SoakReport {
    pub requests: usize,
    pub workers: usize,
    /// Accepted (201) but not completed at the end.
    pub lost: usize,
    /// Requests with more than one run, and items deleted more than once.
    pub run_twice: usize,
    /// Open requests past their deadline at the end (`dsrctl_requests_overdue`).
    pub overdue: u64,
    /// From the first call to the last request done.
    pub elapsed: Duration,
    /// Time to post every request (and approve it).
    pub intake: Duration,
    /// Request received to completed (audit log times), 50th and 99th percentile.
    pub p50: Duration,
    pub p99: Duration,
    /// Rows the store inserted, updated or deleted (PostgreSQL statistics), and by table.
    pub store_writes: u64,
    pub writes_by_table: BTreeMap<String, u64>,
    /// The store's tables with their indexes at the end, in bytes.
    pub store_bytes: u64,
    /// Calls the emulated service answered.
    pub service_calls: usize,
    /// Step ends summed over the workers' `/metrics` (`dsrctl_step_duration_seconds_count`).
    pub steps_observed: u64,
    /// Retries summed over the workers' `/metrics`.
    pub retries: u64,
}

impl SoakReport {
    /// Requests completed per second.
    pub fn throughput(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64()
    }
}

fn postgres_url() -> String {
    std::env::var("DSRCTL_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

fn schema_url(schema: &str) -> String {
    let base = postgres_url();
    let sep = if base.contains('?') { '&' } else { '?' };
    format!("{base}{sep}schema={schema}")
}

/// A worker process with its API.
struct Worker {
    child: tokio::process::Child,
    base: String,
}

async fn worker(dir: &Path, name: &str, concurrency: usize) -> Worker {
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_dsrctl"))
        .arg("-C")
        .arg(dir)
        .args(["serve", "--listen", "127.0.0.1:0", "--every", "200ms"])
        .args(["--worker", name, "--lease", "10s"])
        .args(["--concurrency", &concurrency.to_string()])
        .env("SOAK_INTAKE_TOKEN", INTAKE)
        .env("DSRCTL_LOG", "error")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let base = tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if let Some(url) = line.strip_prefix("listening on ") {
                return url.trim().to_owned();
            }
        }
        panic!("worker {name} ended without listening");
    })
    .await
    .expect("the worker listens within a minute");
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Worker { child, base }
}

/// Posts a request and approves it, again on a connection error (the key makes it safe).
/// Returns the request id.
async fn post(http: &reqwest::Client, base: &str, i: usize) -> String {
    let body = json!({"kind": "delete", "subject": {"uid": format!("u{i}")}});
    let mut tries = 0;
    let id = loop {
        tries += 1;
        let sent = http
            .post(format!("{base}/v1/requests"))
            .bearer_auth(INTAKE)
            .header("idempotency-key", format!("soak-{i}"))
            .json(&body)
            .send()
            .await;
        match sent {
            Ok(r) if r.status() == StatusCode::CREATED || r.status() == StatusCode::OK => {
                let v: serde_json::Value = r.json().await.unwrap();
                break v["id"].as_str().unwrap().to_owned();
            }
            Ok(r) => panic!("intake of {i}: {} {}", r.status(), r.text().await.unwrap()),
            Err(e) if tries < 5 => eprintln!("intake of {i}: {e}; again"),
            Err(e) => panic!("intake of {i}: {e}"),
        }
    };
    let approved = http
        .post(format!("{base}/v1/requests/{id}/approve"))
        .bearer_auth(INTAKE)
        .json(&json!({"reason": "soak"}))
        .send()
        .await
        .unwrap();
    assert_eq!(approved.status(), StatusCode::OK, "approving {id}");
    id
}

/// Sums the series `name` (every label set) in Prometheus text.
fn metric_sum(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Runs the soak and reports; panics when the workers do not finish in time or exit badly.
pub async fn run(soak: &Soak) -> SoakReport {
    let schema = format!(
        "soak_{}_{}",
        std::process::id(),
        chrono::Utc::now().timestamp_micros()
    );
    let server = ItemServer::start_background(soak.latency);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    write_project(dir, &server.url(), &[("things", things_by_uid(soak.items))]);
    let config = dir.join("dsrctl.yaml");
    let text = std::fs::read_to_string(&config).unwrap().replace(
        "        retry:",
        &format!(
            "        concurrency: {}\n        retry:",
            soak.connector_cap
        ),
    );
    std::fs::write(
        &config,
        format!(
            "{text}state: \"{}\"\napi:\n  tokens:\n    \
             - {{ name: intake, secret: {{ env: SOAK_INTAKE_TOKEN }}, tenants: [t1], roles: [intake, approver] }}\n",
            schema_url(&schema)
        ),
    )
    .unwrap();
    let pool = sqlx::PgPool::connect(&postgres_url()).await.unwrap();

    // The first worker makes the project's keys; the others start once it listens.
    let mut workers = vec![worker(dir, "w1", soak.concurrency).await];
    for n in 2..=soak.workers {
        workers.push(worker(dir, &format!("w{n}"), soak.concurrency).await);
    }
    let bases: Arc<Vec<String>> = Arc::new(workers.iter().map(|w| w.base.clone()).collect());

    let started = Instant::now();
    let next = Arc::new(AtomicUsize::new(0));
    let http = reqwest::Client::new();
    let clients: Vec<_> = (0..soak.clients)
        .map(|_| {
            let (next, bases, http) = (next.clone(), bases.clone(), http.clone());
            let total = soak.requests;
            tokio::spawn(async move {
                let mut ids = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    if i >= total {
                        return ids;
                    }
                    ids.push(post(&http, &bases[i % bases.len()], i).await);
                }
            })
        })
        .collect();
    let mut accepted = Vec::with_capacity(soak.requests);
    for c in clients {
        accepted.extend(c.await.unwrap());
    }
    let intake = started.elapsed();

    let count_sql = format!("SELECT count(*) FROM \"{schema}\".requests WHERE state = 'completed'");
    loop {
        let done: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(count_sql.clone()))
            .fetch_one(&pool)
            .await
            .unwrap();
        if done as usize >= soak.requests {
            break;
        }
        assert!(
            started.elapsed() < soak.deadline,
            "{done} of {} requests completed in {:?}",
            soak.requests,
            soak.deadline
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let elapsed = started.elapsed();

    // The workers' own series, and the store's gauges from one of them.
    let mut steps_observed = 0.0;
    let mut retries = 0.0;
    let mut overdue = 0.0;
    for w in &workers {
        let text = http
            .get(format!("{}/metrics", w.base))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        steps_observed += metric_sum(&text, "dsrctl_step_duration_seconds_count");
        retries += metric_sum(&text, "dsrctl_step_retries_total");
        overdue = metric_sum(&text, "dsrctl_requests_overdue");
    }
    for mut w in workers {
        let pid = w.child.id().unwrap().to_string();
        let ok = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success();
        assert!(ok, "cannot signal worker {pid}");
        let status = w.child.wait().await.unwrap();
        assert!(status.success(), "worker {pid} exited with {status}");
    }

    // Lost: accepted, yet not completed (or not recorded at all).
    let states: HashMap<String, String> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT id, state FROM \"{schema}\".requests"
    )))
    .fetch_all(&pool)
    .await
    .unwrap()
    .into_iter()
    .collect();
    let lost = accepted
        .iter()
        .filter(|id| states.get(*id).map(String::as_str) != Some("completed"))
        .count();
    let twice_runs: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT count(*) FROM (SELECT request_id FROM \"{schema}\".runs \
         GROUP BY request_id HAVING count(*) > 1) t"
    )))
    .fetch_one(&pool)
    .await
    .unwrap();
    let deletes = server.delete_counts();
    let twice_items = deletes.values().filter(|n| **n > 1).count();
    assert_eq!(
        deletes.len(),
        soak.requests * soak.items as usize,
        "every item deleted"
    );

    // Request-to-done latency from the audit log's own times.
    let rows: Vec<(String, String, i64)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT subject, kind, at FROM \"{schema}\".audit_log \
         WHERE kind IN ('request.received', 'request.completed')"
    )))
    .fetch_all(&pool)
    .await
    .unwrap();
    let mut times: BTreeMap<String, (Option<i64>, Option<i64>)> = BTreeMap::new();
    for (subject, kind, at) in rows {
        let t = times.entry(subject).or_default();
        if kind == "request.received" {
            t.0 = Some(at);
        } else {
            t.1 = Some(at);
        }
    }
    let mut latencies: Vec<Duration> = times
        .values()
        .filter_map(|(r, c)| {
            Some(Duration::from_millis(
                u64::try_from(c.as_ref()? - r.as_ref()?).ok()?,
            ))
        })
        .collect();
    latencies.sort();

    // Statistics reach the views within a second or so of each transaction.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let by_table: Vec<(String, i64)> = sqlx::query_as(
        "SELECT relname::text, (n_tup_ins + n_tup_upd + n_tup_del)::bigint \
         FROM pg_stat_user_tables WHERE schemaname = $1",
    )
    .bind(&schema)
    .fetch_all(&pool)
    .await
    .unwrap();
    let writes_by_table: BTreeMap<String, u64> = by_table
        .into_iter()
        .map(|(t, n)| (t, u64::try_from(n).unwrap_or(0)))
        .collect();
    let store_bytes: Option<i64> = sqlx::query_scalar(
        "SELECT sum(pg_total_relation_size(relid))::bigint FROM pg_stat_user_tables \
         WHERE schemaname = $1",
    )
    .bind(&schema)
    .fetch_one(&pool)
    .await
    .unwrap();

    let report = SoakReport {
        requests: soak.requests,
        workers: soak.workers,
        lost,
        run_twice: usize::try_from(twice_runs).unwrap() + twice_items,
        overdue: overdue as u64,
        elapsed,
        intake,
        p50: percentile(&latencies, 0.50),
        p99: percentile(&latencies, 0.99),
        store_writes: writes_by_table.values().sum(),
        writes_by_table,
        store_bytes: u64::try_from(store_bytes.unwrap_or(0)).unwrap_or(0),
        service_calls: server.calls().len(),
        steps_observed: steps_observed as u64,
        retries: retries as u64,
    };
    assert_eq!(
        latencies.len(),
        soak.requests,
        "every request's receipt and completion are in the audit log"
    );
    let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP SCHEMA \"{schema}\" CASCADE"
    )))
    .execute(&pool)
    .await;
    report
}
