//! Several `dsrctl serve` worker processes share one PostgreSQL state store: 200 requests
//! complete with every deletion sent exactly once, although one worker is killed with
//! SIGKILL while it holds leases.

mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use dsrctl::journal::RequestState;
use dsrctl::model::{DsrKind, Identity, Jurisdiction, Request};
use dsrctl::store::verify_chain;
use support::items::{ItemServer, things_by_uid, write_project};

const REQUESTS: usize = 200;

fn postgres_url() -> String {
    std::env::var("DSRCTL_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

fn schema_url(schema: &str) -> String {
    let base = postgres_url();
    let sep = if base.contains('?') { '&' } else { '?' };
    format!("{base}{sep}schema={schema}")
}

fn request(i: usize) -> Request {
    Request {
        id: format!("r-{i:03}"),
        kind: DsrKind::Delete,
        tenant: "t1".into(),
        jurisdiction: Jurisdiction::Gdpr,
        received: chrono::Utc::now().date_naive(),
        subject: BTreeMap::from([("uid".to_owned(), Identity::One(format!("u{i}")))]),
        corrections: None,
        note: None,
        name: None,
        language: None,
    }
}

fn worker(dir: &Path, name: &str) -> Child {
    Command::new(env!("CARGO_BIN_EXE_dsrctl"))
        .arg("-C")
        .arg(dir)
        .args([
            "serve",
            "--every",
            "1s",
            "--worker",
            name,
            "--lease",
            "2s",
            "--concurrency",
            "4",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Runs still running on which `worker` holds a live lease (a run it has finished but not yet
/// released is not among them: nobody else would take that one over).
async fn leased_running(pool: &sqlx::PgPool, schema: &str, worker: &str) -> Vec<String> {
    let sql = format!(
        "SELECT l.run_id FROM \"{schema}\".leases l JOIN \"{schema}\".runs r ON r.id = l.run_id \
         WHERE l.worker = $1 AND l.expires_at > $2 AND r.status = 'running'"
    );
    sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
        .bind(worker)
        .bind(chrono::Utc::now().timestamp_millis())
        .fetch_all(pool)
        .await
        .unwrap_or_default()
}

async fn workers_complete_every_request_once(workers: usize) {
    let schema = format!(
        "lc_workers{workers}_{}_{}",
        std::process::id(),
        chrono::Utc::now().timestamp_micros()
    );
    let server = ItemServer::start_background(Duration::from_millis(10));
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    write_project(dir, &server.url(), &[("things", things_by_uid(2))]);
    let config = dir.join("dsrctl.yaml");
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        format!("{text}state: \"{}\"\n", schema_url(&schema)),
    )
    .unwrap();

    let store = dsrctl::store::open(&schema_url(&schema), dir)
        .await
        .unwrap();
    for i in 0..REQUESTS {
        store
            .put_request(&request(i), RequestState::Approved)
            .await
            .unwrap();
    }
    let pool = sqlx::PgPool::connect(&postgres_url()).await.unwrap();

    let started = Instant::now();
    let mut children: Vec<(String, Child)> = (1..=workers)
        .map(|n| (format!("w{n}"), worker(dir, &format!("w{n}"))))
        .collect();

    // Kill w1 with SIGKILL while it holds leases, after deletions have begun. It is frozen
    // (SIGSTOP) while its leases are read, so it cannot finish its runs between the look
    // and the kill, however loaded the machine is.
    let w1 = children[0].1.id().to_string();
    let signal = |sig: &str| {
        let ok = Command::new("kill")
            .args([sig, &w1])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill {sig} {w1}");
    };
    loop {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "w1 never took a lease"
        );
        if server.delete_counts().len() >= 10 {
            signal("-STOP");
            if !leased_running(&pool, &schema, "w1").await.is_empty() {
                break;
            }
            signal("-CONT");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    children[0].1.kill().unwrap(); // SIGKILL
    children[0].1.wait().unwrap();
    // The runs w1 was in the middle of when it died.
    let orphaned = leased_running(&pool, &schema, "w1").await;
    assert!(!orphaned.is_empty(), "w1 held no lease when it was killed");

    loop {
        let records = store.requests().await.unwrap();
        let done = records
            .iter()
            .filter(|r| r.state == RequestState::Completed)
            .count();
        if done == REQUESTS {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(150),
            "{done} of {REQUESTS} completed; states: {:?}",
            records.iter().map(|r| r.state).collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let elapsed = started.elapsed();

    // SIGTERM: each worker finishes its tick and exits cleanly.
    for (name, child) in children.iter_mut().skip(1) {
        let pid = child.id().to_string();
        let status = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(status.success(), "cannot signal {name}");
    }
    for (name, child) in children.into_iter().skip(1) {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{name} exited with {}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }

    let counts = server.delete_counts();
    assert_eq!(counts.len(), REQUESTS * 2, "every item deleted");
    let repeated: Vec<_> = counts.iter().filter(|(_, n)| **n != 1).collect();
    assert!(repeated.is_empty(), "sent more than once: {repeated:?}");
    for run in &orphaned {
        let record = store.run(run).await.unwrap();
        assert_eq!(
            record.status,
            dsrctl::journal::RunStatus::Completed,
            "run {run} of the killed worker was taken over"
        );
    }
    let audit = store.audit_entries().await.unwrap();
    // The workers MAC entries with the project's audit key (made on first use).
    let key = std::fs::read_to_string(dir.join(".dsrctl/audit.key")).unwrap();
    verify_chain(&audit, Some(key.trim().as_bytes())).unwrap();
    let takers: std::collections::BTreeSet<String> = audit
        .iter()
        .filter(|e| e.kind == "run.executed" && orphaned.contains(&e.subject))
        .filter_map(|e| e.detail["worker"].as_str().map(str::to_owned))
        .collect();
    assert!(
        takers.iter().any(|w| w != "w1"),
        "another worker finished w1's runs: {takers:?}"
    );
    eprintln!(
        "{workers} workers: {REQUESTS} requests in {:.1}s ({} runs orphaned by SIGKILL)",
        elapsed.as_secs_f64(),
        orphaned.len()
    );
    store.close().await;
    let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP SCHEMA \"{schema}\" CASCADE"
    )))
    .execute(&pool)
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_workers_complete_200_requests_once_despite_sigkill() {
    workers_complete_every_request_once(2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_workers_complete_200_requests_once_despite_sigkill() {
    workers_complete_every_request_once(4).await;
}

/// `w1` of the drain test: a worker serving the API, with a long lease, so a run it holds
/// reaches another worker at once only if `w1` releases it.
async fn api_worker(dir: &Path, name: &str) -> (tokio::process::Child, String) {
    use tokio::io::AsyncBufReadExt;
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_dsrctl"))
        .arg("-C")
        .arg(dir)
        .args(["serve", "--listen", "127.0.0.1:0", "--every", "200ms"])
        .args(["--worker", name, "--lease", "60s", "--concurrency", "8"])
        .args(["--drain-timeout", "20s"])
        .env("TEST_DRAIN_TOKEN", DRAIN_TOKEN)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let base = tokio::time::timeout(Duration::from_secs(60), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if let Some(url) = line.strip_prefix("listening on ") {
                return url.trim().to_owned();
            }
        }
        panic!("{name} ended without listening");
    })
    .await
    .expect("listening within a minute");
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (child, base)
}

const DRAIN_TOKEN: &str = "drain-token-0123456789abcdef";

/// SIGTERM during runs against a slow service: the worker answers `draining` on /healthz and
/// 503 to new API calls, takes no new lease, journals the calls in flight, hands its runs
/// over with their leases released (the lease is long, so only a release lets another
/// worker in before it lapses) and exits 0; the other worker finishes them, nothing sent
/// twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_a_worker_and_another_finishes_its_runs_once() {
    // As many runs as the connector lets calls in flight (its default cap is 4).
    const RUNS: usize = 4;
    let schema = format!(
        "lc_drain_{}_{}",
        std::process::id(),
        chrono::Utc::now().timestamp_micros()
    );
    let server = ItemServer::start_background(Duration::from_millis(1500));
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    write_project(dir, &server.url(), &[("things", things_by_uid(2))]);
    let config = dir.join("dsrctl.yaml");
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        format!(
            "{text}state: \"{}\"\napi:\n  tokens:\n    \
             - {{ name: form, secret: {{ env: TEST_DRAIN_TOKEN }}, tenants: [t1], roles: [intake] }}\n",
            schema_url(&schema)
        ),
    )
    .unwrap();
    let store = dsrctl::store::open(&schema_url(&schema), dir)
        .await
        .unwrap();
    for i in 0..RUNS {
        store
            .put_request(&request(i), RequestState::Approved)
            .await
            .unwrap();
    }
    let pool = sqlx::PgPool::connect(&postgres_url()).await.unwrap();

    let (mut w1, base) = api_worker(dir, "w1").await;
    // Every run started and its first call in flight at the slow service.
    let started = Instant::now();
    while leased_running(&pool, &schema, "w1").await.len() < RUNS || server.max_in_flight() < RUNS {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "w1 never had its {RUNS} runs in flight"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut w2 = worker(dir, "w2");

    let term = Instant::now();
    let pid = w1.id().unwrap().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let http = reqwest::Client::new();
    let mut saw_draining = false;
    let mut refused_intake = false;
    while !(saw_draining && refused_intake) {
        let Ok(health) = http.get(format!("{base}/healthz")).send().await else {
            break; // it has exited
        };
        if health.status() == reqwest::StatusCode::SERVICE_UNAVAILABLE {
            let body: serde_json::Value = health.json().await.unwrap();
            assert_eq!(body["status"], "draining", "{body}");
            saw_draining = true;
            let created = http
                .post(format!("{base}/v1/requests"))
                .bearer_auth(DRAIN_TOKEN)
                .json(&serde_json::json!({"kind": "delete", "subject": {"uid": "late"}}))
                .send()
                .await;
            if let Ok(created) = created {
                assert_eq!(created.status(), reqwest::StatusCode::SERVICE_UNAVAILABLE);
                assert!(created.headers().contains_key("retry-after"));
                let body: serde_json::Value = created.json().await.unwrap();
                assert_eq!(body["error"], "draining", "{body}");
                refused_intake = true;
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(saw_draining, "/healthz never said draining");
    assert!(refused_intake, "an API call while draining was not refused");
    let status = tokio::time::timeout(Duration::from_secs(30), w1.wait())
        .await
        .expect("w1 exits within its drain bound")
        .unwrap();
    assert!(status.success(), "w1 exited with {status}");
    let drained = term.elapsed();
    assert!(
        leased_running(&pool, &schema, "w1").await.is_empty(),
        "w1 left leases behind"
    );

    loop {
        let records = store.requests().await.unwrap();
        let done = records
            .iter()
            .filter(|r| r.state == RequestState::Completed)
            .count();
        if done == RUNS {
            break;
        }
        // Well before w1's 60 s leases could lapse.
        assert!(
            term.elapsed() < Duration::from_secs(45),
            "{done} of {RUNS} completed; states: {:?}",
            records.iter().map(|r| r.state).collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    w2.kill().unwrap();
    w2.wait().unwrap();

    let counts = server.delete_counts();
    assert_eq!(counts.len(), RUNS * 2, "every item deleted");
    let repeated: Vec<_> = counts.iter().filter(|(_, n)| **n != 1).collect();
    assert!(repeated.is_empty(), "sent more than once: {repeated:?}");
    let audit = store.audit_entries().await.unwrap();
    let handed: Vec<&str> = audit
        .iter()
        .filter(|e| e.kind == "run.handed_over")
        .map(|e| e.subject.as_str())
        .collect();
    assert!(!handed.is_empty(), "w1 handed no run over");
    for run in &handed {
        let finisher = audit
            .iter()
            .find(|e| e.kind == "run.executed" && e.subject == *run)
            .and_then(|e| e.detail["worker"].as_str());
        assert_eq!(finisher, Some("w2"), "run {run} finished by w2");
    }
    eprintln!(
        "w1 drained in {:.1}s, handing over {} runs",
        drained.as_secs_f64(),
        handed.len()
    );
    store.close().await;
    let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP SCHEMA \"{schema}\" CASCADE"
    )))
    .execute(&pool)
    .await;
}

/// The soak, small: 300 requests through the API of two workers, nothing lost, nothing run
/// twice, nothing overdue; the workers' step series add up to every call unit of every run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn soak_300_requests_through_the_api_into_two_workers() {
    let soak = support::soak::Soak {
        requests: 300,
        workers: 2,
        clients: 8,
        latency: Duration::from_millis(10),
        items: 2,
        concurrency: 8,
        connector_cap: 4,
        deadline: Duration::from_secs(240),
    };
    let report = support::soak::run(&soak).await;
    eprintln!("{report:?}");
    assert_eq!(report.lost, 0, "lost: {report:?}");
    assert_eq!(report.run_twice, 0, "run twice: {report:?}");
    assert_eq!(report.overdue, 0, "overdue: {report:?}");
    // Per request: the list, and each item's deletion (the for_each step itself is not a call).
    assert_eq!(
        report.steps_observed,
        (soak.requests * (1 + soak.items as usize)) as u64,
        "step ends summed over the workers' /metrics"
    );
    assert!(report.p50 > Duration::ZERO && report.p50 <= report.p99);
}
