//! Intake at scale, on the PostgreSQL store:
//!
//! 1. Requests recorded through the HTTP API of `dsrctl serve --listen`: 16 keep-alive
//!    connections, each posting one request after another (an access request, so each is
//!    planned, approved by the rule and audited twice), with an `Idempotency-Key`.
//! 2. `dsrctl request import` of a CSV file, on PostgreSQL and on SQLite: rows per second,
//!    the process's start included.
//!
//! `cargo bench --bench api_intake` (PostgreSQL from `DSRCTL_TEST_POSTGRES_URL`, default
//! `postgres://postgres@127.0.0.1:5432/test`; `DSRCTL_BENCH_API_REQUESTS` and
//! `DSRCTL_BENCH_IMPORT_ROWS` change the counts).

use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Instant;

use sqlx::Connection;
use tokio::io::{AsyncBufReadExt, BufReader};

const CONNECTIONS: usize = 16;
const TOKEN: &str = "bench-token-0123456789abcdef";

const PLAYBOOK: &str = r#"
service: things
connector: api
needs_identities: [email]
dsr:
  access:
    - id: list
      http: { method: GET, path: /things/items, query: { owner: "{{subject.email}}" } }
      collect: items
  export: { same_as: [access] }
  rectify: { unsupported: "bench" }
  restrict: { unsupported: "bench" }
  delete: { unsupported: "bench" }
"#;

fn postgres_url() -> String {
    std::env::var("DSRCTL_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

fn count(var: &str, default: usize) -> usize {
    std::env::var(var)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A project with one tenant and one API token; its state store `state` (a URL or nothing
/// for SQLite).
fn project(dir: &Path, state: Option<&str>) {
    std::fs::create_dir_all(dir.join("policies")).unwrap();
    std::fs::write(dir.join("policies/things.yaml"), PLAYBOOK).unwrap();
    let state = state
        .map(|s| format!("state: \"{s}\"\n"))
        .unwrap_or_default();
    std::fs::write(
        dir.join("dsrctl.yaml"),
        format!(
            "tenants:\n  t1:\n    connectors:\n      api:\n        kind: http\n        \
             base_url: http://127.0.0.1:9\n{state}api:\n  tokens:\n    \
             - {{ name: bench, secret: {{ env: DSRCTL_BENCH_TOKEN }}, tenants: [t1], roles: [intake] }}\n"
        ),
    )
    .unwrap();
}

async fn api_intake(dir: &Path, requests: usize) {
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_dsrctl"))
        .arg("-C")
        .arg(dir)
        .args(["serve", "--listen", "127.0.0.1:0", "--every", "1h"])
        .env("DSRCTL_BENCH_TOKEN", TOKEN)
        .env("DSRCTL_LOG", "error")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn dsrctl serve");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let base = loop {
        let line = lines.next_line().await.unwrap().expect("serve listens");
        if let Some(url) = line.strip_prefix("listening on ") {
            break url.trim().to_owned();
        }
    };
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(CONNECTIONS)
        .build()
        .unwrap();
    let post = |client: reqwest::Client, base: String, i: usize| async move {
        let body = format!(
            r#"{{"kind": "access", "subject": {{"email": "user{i}@example.com"}}, "received": "2026-11-02"}}"#
        );
        let started = Instant::now();
        let resp = client
            .post(format!("{base}/v1/requests"))
            .bearer_auth(TOKEN)
            .header("idempotency-key", format!("k-{i}"))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .expect("post");
        assert_eq!(
            resp.status().as_u16(),
            201,
            "{}",
            resp.text().await.unwrap()
        );
        resp.bytes().await.unwrap();
        started.elapsed()
    };
    // Warm up: connections, prepared statements, the playbooks' first compile.
    for i in 0..200 {
        post(client.clone(), base.clone(), 1_000_000 + i).await;
    }
    let latencies = Arc::new(std::sync::Mutex::new(Vec::with_capacity(requests)));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..CONNECTIONS {
        let (client, base, latencies) = (client.clone(), base.clone(), latencies.clone());
        tasks.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            let mut i = c;
            while i < requests {
                mine.push(post(client.clone(), base.clone(), i).await);
                i += CONNECTIONS;
            }
            latencies.lock().unwrap().extend(mine);
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let took = start.elapsed();
    let mut l = latencies.lock().unwrap().clone();
    l.sort();
    let pct = |p: f64| l[((l.len() as f64 * p) as usize).min(l.len() - 1)];
    println!(
        "api intake (PostgreSQL, {CONNECTIONS} keep-alive connections): {requests} requests in {:.2}s = {:.0} requests/s; latency p50 {:.1} ms, p99 {:.1} ms",
        took.as_secs_f64(),
        requests as f64 / took.as_secs_f64(),
        pct(0.5).as_secs_f64() * 1000.0,
        pct(0.99).as_secs_f64() * 1000.0
    );
    let _ = child.kill().await;
}

fn import(dir: &Path, rows: usize, store: &str) {
    let mut csv = String::from("kind,tenant,email,received,note\n");
    for i in 0..rows {
        csv.push_str(&format!(
            "access,t1,import{i}@example.com,2026-11-02,ticket {i}\n"
        ));
    }
    std::fs::write(dir.join("import.csv"), csv).unwrap();
    let started = Instant::now();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_dsrctl"))
        .arg("-C")
        .arg(dir)
        .args(["request", "import", "import.csv"])
        .env("DSRCTL_BENCH_TOKEN", TOKEN)
        .env("DSRCTL_LOG", "error")
        .output()
        .expect("dsrctl request import");
    let took = started.elapsed();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains(&format!("recorded {rows} request(s)")),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    println!(
        "request import ({store}): {rows} rows in {:.2}s = {:.0} rows/s",
        took.as_secs_f64(),
        rows as f64 / took.as_secs_f64()
    );
}

fn main() {
    // `cargo bench` passes `--bench`; a filter other than this bench's name skips it.
    if std::env::args()
        .skip(1)
        .any(|a| !a.starts_with("--") && a != "api_intake")
    {
        return;
    }
    let requests = count("DSRCTL_BENCH_API_REQUESTS", 20_000);
    let rows = count("DSRCTL_BENCH_IMPORT_ROWS", 50_000);
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let base = postgres_url();
        let sep = if base.contains('?') { '&' } else { '?' };
        let schema = format!("bench_api_{}", std::process::id());
        let api_dir = tempfile::tempdir().unwrap();
        project(api_dir.path(), Some(&format!("{base}{sep}schema={schema}")));
        api_intake(api_dir.path(), requests).await;
        let import_schema = format!("{schema}_import");
        let pg_dir = tempfile::tempdir().unwrap();
        project(
            pg_dir.path(),
            Some(&format!("{base}{sep}schema={import_schema}")),
        );
        import(pg_dir.path(), rows, "PostgreSQL");
        let lite_dir = tempfile::tempdir().unwrap();
        project(lite_dir.path(), None);
        import(lite_dir.path(), rows, "SQLite");
        let mut conn = sqlx::PgConnection::connect(&base).await.unwrap();
        for s in [schema, import_schema] {
            sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP SCHEMA \"{s}\" CASCADE")))
                .execute(&mut conn)
                .await
                .unwrap();
        }
    });
}
