//! Run throughput: 1,000 delete requests × 5 services (a GET then a DELETE each, 10,000
//! HTTP calls) through the library (compile + `Engine::execute`, SQLite journal on) versus
//! a minimal reqwest loop making the same calls, both at most 10 calls in flight, against
//! a local server that answers instantly. Also reports the peak RSS (VmHWM) after 250, 500
//! and 1,000 requests, to show that memory stays flat as requests grow.
//!
//! `cargo bench --bench run_throughput` (results in `benches/README-run.md`).
//! `DSRCTL_BENCH_REQUESTS=N` changes the number of requests per round;
//! `DSRCTL_BENCH_LATENCY_MS=N` makes the server answer after N ms;
//! `DSRCTL_BENCH_ENGINE_ONLY=1` skips the raw loop.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Path as UrlPath, Query, State};
use axum::http::StatusCode;
use axum::routing::get;
use dsrctl::compile::compile;
use dsrctl::connectors::connectors_for_tenant;
use dsrctl::engine::Engine;
use dsrctl::journal::{RunMode, RunStatus};
use dsrctl::load::{Project, load_project};
use dsrctl::model::Request;
use dsrctl::store::Store;
use futures::StreamExt;
use serde_json::json;

const SERVICES: usize = 5;
const CONCURRENCY: usize = 10;
const ROUNDS: usize = 3;

/// Calls the server answered.
#[derive(Clone, Default)]
struct Counter(Arc<AtomicU64>);

impl Counter {
    fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

#[derive(serde::Deserialize)]
struct Email {
    email: String,
}

async fn find(State(n): State<Counter>, Query(q): Query<Email>) -> axum::Json<serde_json::Value> {
    n.0.fetch_add(1, Ordering::Relaxed);
    answer_delay().await;
    let id = q.email.split('@').next().unwrap_or_default().to_owned();
    axum::Json(json!({ "id": id, "displayName": "Someone" }))
}

async fn drop_user(State(n): State<Counter>, UrlPath(_): UrlPath<(String, String)>) -> StatusCode {
    n.0.fetch_add(1, Ordering::Relaxed);
    answer_delay().await;
    StatusCode::NO_CONTENT
}

/// `DSRCTL_BENCH_LATENCY_MS=N`: the server answers after N ms instead of at once, like a
/// service across a network (the issue's benchmark is the default, 0).
async fn answer_delay() {
    static LATENCY: std::sync::OnceLock<Duration> = std::sync::OnceLock::new();
    let latency = *LATENCY.get_or_init(|| {
        let ms = std::env::var("DSRCTL_BENCH_LATENCY_MS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        Duration::from_millis(ms)
    });
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
}

/// Starts the server on a thread and runtime of its own.
fn server() -> (SocketAddr, Counter) {
    let counter = Counter::default();
    let c = counter.clone();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("server runtime");
        rt.block_on(async move {
            let app = Router::new()
                .route("/{svc}/users", get(find))
                .route("/{svc}/users/{id}", axum::routing::delete(drop_user))
                .with_state(c);
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind");
            tx.send(listener.local_addr().expect("addr")).expect("send");
            axum::serve(listener, app).await.expect("serve");
        });
    });
    (rx.recv().expect("server address"), counter)
}

fn playbook(n: usize) -> String {
    format!(
        r#"service: svc{n}
connector: api
needs_identities: [email]
dsr:
  access: {{ unsupported: "bench" }}
  export: {{ unsupported: "bench" }}
  rectify: {{ unsupported: "bench" }}
  restrict: {{ unsupported: "bench" }}
  delete:
    - id: find
      http: {{ method: GET, path: /svc{n}/users, query: {{ email: "{{{{subject.email}}}}" }} }}
      capture: {{ id: /id }}
    - id: drop
      needs: [find]
      http: {{ method: DELETE, path: "/svc{n}/users/{{{{seg find.id}}}}" }}
      absent_on: [404]
      preview: {{ step: find }}
"#
    )
}

fn write_project(dir: &Path, base_url: &str) -> Project {
    std::fs::create_dir_all(dir.join("policies")).expect("mkdir");
    std::fs::write(
        dir.join("dsrctl.yaml"),
        format!(
            "tenants:\n  t1:\n    connectors:\n      api:\n        kind: http\n        base_url: {base_url}\n        concurrency: {CONCURRENCY}\n        timeout: 10s\n"
        ),
    )
    .expect("config");
    for n in 0..SERVICES {
        std::fs::write(
            dir.join("policies").join(format!("svc{n}.yaml")),
            playbook(n),
        )
        .expect("playbook");
    }
    load_project(dir).unwrap_or_else(|d| panic!("{}", d.render_human(false)))
}

fn request(round: usize, i: usize) -> Request {
    serde_json::from_value(json!({
        "id": format!("r-{round}-{i}"), "kind": "delete", "tenant": "t1",
        "received": "2026-11-02", "subject": { "email": format!("user{i}@example.com") }
    }))
    .expect("request")
}

/// The raw loop: per request and service, GET the user and DELETE it, 10 in flight.
async fn raw_loop(base: &str, requests: usize) -> Duration {
    let client = reqwest::Client::new();
    let started = Instant::now();
    let pairs = (0..requests).flat_map(|i| (0..SERVICES).map(move |s| (i, s)));
    futures::stream::iter(pairs)
        .map(|(i, s)| {
            let client = &client;
            async move {
                let query = url::form_urlencoded::Serializer::new(String::new())
                    .append_pair("email", &format!("user{i}@example.com"))
                    .finish();
                let found: serde_json::Value = client
                    .get(format!("{base}/svc{s}/users?{query}"))
                    .send()
                    .await
                    .expect("GET")
                    .json()
                    .await
                    .expect("JSON");
                let id = found["id"].as_str().expect("id");
                let status = client
                    .delete(format!("{base}/svc{s}/users/{id}"))
                    .send()
                    .await
                    .expect("DELETE")
                    .status();
                assert_eq!(status, 204);
            }
        })
        .buffer_unordered(CONCURRENCY)
        .collect::<Vec<()>>()
        .await;
    started.elapsed()
}

/// Peak resident set size of this process so far, in KiB.
fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// Compiles and executes `requests` requests through one engine (its semaphore keeps at
/// most 10 steps in flight across the requests running at once). Returns the elapsed time
/// and the peak RSS after each checkpoint.
async fn engine_loop(
    project: &Project,
    engine: &Engine,
    store: &Arc<dyn Store>,
    round: usize,
    requests: usize,
    checkpoints: &[usize],
) -> (Duration, Vec<(usize, u64)>) {
    let started = Instant::now();
    let mut runs = futures::stream::iter(0..requests)
        .map(|i| async move {
            let plan = compile(project, &request(round, i), chrono::Utc::now()).expect("compile");
            let run_id = store
                .create_run(&plan, RunMode::Apply)
                .await
                .expect("create run");
            let result = engine
                .execute(&run_id, &plan, RunMode::Apply, None)
                .await
                .expect("execute");
            assert_eq!(result.status, RunStatus::Completed, "{:?}", result.outcomes);
        })
        .buffer_unordered(requests_at_once());
    let mut done = 0;
    let mut peaks = Vec::new();
    while runs.next().await.is_some() {
        done += 1;
        if checkpoints.contains(&done) {
            peaks.push((done, peak_rss_kib()));
        }
    }
    (started.elapsed(), peaks)
}

/// Requests executing at once (`DSRCTL_BENCH_REQUESTS_AT_ONCE`, default 10): enough that
/// the engine's 10 permits stay busy while some requests wait on their journal.
fn requests_at_once() -> usize {
    std::env::var("DSRCTL_BENCH_REQUESTS_AT_ONCE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(CONCURRENCY)
}

/// `DSRCTL_BENCH_ENGINE_ONLY=1`: skip the raw loop (its numbers are then meaningless), to
/// profile the engine alone.
fn engine_only() -> bool {
    std::env::var_os("DSRCTL_BENCH_ENGINE_ONLY").is_some()
}

fn per_second(calls: u64, d: Duration) -> f64 {
    calls as f64 / d.as_secs_f64()
}

fn main() {
    let requests: usize = std::env::var("DSRCTL_BENCH_REQUESTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000);
    let checkpoints = [requests / 4, requests / 2, requests];
    let (addr, counter) = server();
    let base = format!("http://{addr}");
    let dir = tempfile::tempdir().expect("tempdir");
    let project = Arc::new(write_project(dir.path(), &base));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let store = dsrctl::store::open(".dsrctl/state.db", dir.path())
            .await
            .expect("store");
        let connectors = connectors_for_tenant(&project.config, "t1", dir.path())
            .await
            .expect("connectors");
        let engine = Arc::new(
            Engine::new(store.clone(), connectors, dir.path().join(".dsrctl"))
                .with_parallelism(CONCURRENCY),
        );

        println!(
            "run_throughput: {requests} requests x {SERVICES} services (GET + DELETE), {CONCURRENCY} calls in flight, {ROUNDS} rounds"
        );
        let mut raw_best = 0f64;
        let mut engine_best = 0f64;
        for round in 0..ROUNDS {
            let before = counter.get();
            // Both loops run as a task on the runtime's workers (as the scheduler runs runs),
            // not on the thread that blocks on the runtime.
            let raw = if engine_only() {
                Duration::from_secs(1)
            } else {
                tokio::spawn({
                    let base = base.clone();
                    async move { raw_loop(&base, requests).await }
                })
                .await
                .expect("raw loop")
            };
            let raw_calls = counter.get() - before;
            let before = counter.get();
            let (took, peaks) = tokio::spawn({
                let (project, engine, store) = (project.clone(), engine.clone(), store.clone());
                let checkpoints = checkpoints.to_vec();
                async move {
                    engine_loop(&project, &engine, &store, round, requests, &checkpoints).await
                }
            })
            .await
            .expect("engine loop");
            let engine_calls = counter.get() - before;
            let raw_calls = if engine_only() { engine_calls } else { raw_calls };
            assert_eq!(raw_calls, engine_calls, "both make the same calls");
            let (r, e) = (per_second(raw_calls, raw), per_second(engine_calls, took));
            raw_best = raw_best.max(r);
            engine_best = engine_best.max(e);
            println!(
                "round {round}: raw reqwest {raw_calls} calls in {raw:.2?} = {r:.0} calls/s; dsrctl engine {engine_calls} calls in {took:.2?} = {e:.0} calls/s ({:.0}%)",
                100.0 * e / r
            );
            let peaks: Vec<String> = peaks
                .iter()
                .map(|(n, kib)| format!("{n} requests: {:.1} MiB", *kib as f64 / 1024.0))
                .collect();
            println!("  peak RSS (VmHWM) after {}", peaks.join(", "));
        }
        println!(
            "best: raw {raw_best:.0} calls/s, dsrctl {engine_best:.0} calls/s, ratio {:.0}% (target >= 80%)",
            100.0 * engine_best / raw_best
        );
        store.close().await;
    });
}
