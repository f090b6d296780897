//! Export of one subject's records over a paginated HTTP API: 1,000,000 records (1,000
//! pages of 1,000, each page linking to the next) collected by the engine into the export
//! spool, against a raw reqwest loop that follows the same links and writes the same
//! records as NDJSON lines. Reports the time, records per second and the peak RSS
//! (`VmHWM`) of each: memory must stay flat in the number of records.
//!
//! `cargo bench --bench http_export` runs the engine, then the raw loop, in one process
//! (the engine first, so the peak it reports is its own). `-- engine` or `-- raw` runs one
//! of them alone. `DSRCTL_BENCH_RECORDS=N` changes the number of records,
//! `DSRCTL_BENCH_PAGE=N` the page size. The step also captures the first record's id,
//! so the capture is taken from the stream.

use std::io::{BufRead, BufWriter, Write};
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Query, State};
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use axum::routing::get;
use dsrctl::compile::compile;
use dsrctl::connectors::connectors_for_tenant;
use dsrctl::engine::Engine;
use dsrctl::journal::{RunMode, RunStatus, StepStatus};
use dsrctl::load::{Project, load_project};
use dsrctl::model::Request;
use serde_json::json;

#[derive(Clone, Copy)]
struct Size {
    records: u64,
    page: u64,
}

fn size() -> Size {
    let env = |name: &str, default: u64| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    Size {
        records: env("DSRCTL_BENCH_RECORDS", 1_000_000),
        page: env("DSRCTL_BENCH_PAGE", 1_000).max(1),
    }
}

#[derive(serde::Deserialize)]
struct PageQuery {
    subject: String,
    #[serde(default)]
    page: u64,
}

/// One page of the subject's events, generated on the fly (the server holds none).
async fn events(
    State((addr, size)): State<(SocketAddr, Size)>,
    Query(q): Query<PageQuery>,
) -> impl IntoResponse {
    let first = q.page * size.page;
    let last = (first + size.page).min(size.records);
    let value: Vec<serde_json::Value> = (first..last)
        .map(|n| {
            json!({
                "id": format!("evt-{n:08}"),
                "subject": q.subject,
                "type": if n % 3 == 0 { "page_view" } else { "click" },
                "at": format!("2026-11-{:02}T{:02}:{:02}:{:02}Z", 1 + n % 28, n % 24, n % 60, (n / 60) % 60),
                "url": format!("https://shop.example/products/{}", n % 9973),
                "properties": { "referrer": "https://search.example/?q=shoes", "session": n / 50, "ms": n % 1000 }
            })
        })
        .collect();
    let mut body = json!({ "value": value });
    if last < size.records {
        let subject =
            url::form_urlencoded::byte_serialize(q.subject.as_bytes()).collect::<String>();
        body["nextLink"] = json!(format!(
            "http://{addr}/events?subject={subject}&page={}",
            q.page + 1
        ));
    }
    (
        [(CONTENT_TYPE, "application/json")],
        serde_json::to_vec(&body).expect("page"),
    )
}

/// Starts the server on a thread and runtime of its own.
fn server(size: Size) -> SocketAddr {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("server runtime");
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind");
            let addr = listener.local_addr().expect("addr");
            let app = Router::new()
                .route("/events", get(events))
                .with_state((addr, size));
            tx.send(addr).expect("send");
            axum::serve(listener, app).await.expect("serve");
        });
    });
    rx.recv().expect("server address")
}

const PLAYBOOK: &str = r#"service: events
connector: api
needs_identities: [email]
dsr:
  access: { unsupported: "bench" }
  rectify: { unsupported: "bench" }
  restrict: { unsupported: "bench" }
  delete: { unsupported: "bench" }
  export:
    - id: events
      http:
        method: GET
        path: /events
        query: { subject: "{{subject.email}}" }
        paginate: { next_link: /nextLink, items: /value, max_pages: 100000000 }
      capture: { first: /0/id }
      collect: events
"#;

fn write_project(dir: &Path, base_url: &str) -> Project {
    std::fs::create_dir_all(dir.join("policies")).expect("mkdir");
    std::fs::write(
        dir.join("dsrctl.yaml"),
        format!(
            "tenants:\n  t1:\n    connectors:\n      api:\n        kind: http\n        base_url: {base_url}\n        timeout: 60s\n"
        ),
    )
    .expect("config");
    std::fs::write(dir.join("policies/events.yaml"), PLAYBOOK).expect("playbook");
    load_project(dir).unwrap_or_else(|d| panic!("{}", d.render_human(false)))
}

/// Peak resident set size of this process so far, in MiB.
fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        })
        .unwrap_or(0.0)
        / 1024.0
}

/// Lines of a file, and its first and last line.
fn lines(path: &Path) -> (u64, String, String) {
    let file = std::io::BufReader::new(std::fs::File::open(path).expect("spool file"));
    let (mut n, mut first, mut last) = (0, String::new(), String::new());
    for line in file.lines() {
        let line = line.expect("line");
        if n == 0 {
            first = line.clone();
        }
        last = line;
        n += 1;
    }
    (n, first, last)
}

async fn engine_export(addr: SocketAddr, size: Size) -> Duration {
    let dir = tempfile::tempdir().expect("tempdir");
    let project = write_project(dir.path(), &format!("http://{addr}"));
    let store = dsrctl::store::open(".dsrctl/state.db", dir.path())
        .await
        .expect("store");
    let connectors = connectors_for_tenant(&project.config, "t1", dir.path())
        .await
        .expect("connectors");
    let engine = Engine::new(store.clone(), connectors, dir.path().join(".dsrctl"));
    let request: Request = serde_json::from_value(json!({
        "id": "r-export", "kind": "export", "tenant": "t1",
        "received": "2026-11-02", "subject": { "email": "alice@example.com" }
    }))
    .expect("request");
    let started = Instant::now();
    let plan = compile(&project, &request, chrono::Utc::now()).expect("compile");
    let run_id = store
        .create_run(&plan, RunMode::Apply)
        .await
        .expect("create run");
    let result = engine
        .execute(&run_id, &plan, RunMode::Apply, None)
        .await
        .expect("execute");
    let took = started.elapsed();
    assert_eq!(result.status, RunStatus::Completed, "{:?}", result.outcomes);
    let o = &result.outcomes[0];
    assert_eq!(o.status, StepStatus::Succeeded);
    assert_eq!(o.found, size.records, "records found");
    assert_eq!(o.captures.get("first"), Some(&json!("evt-00000000")));
    let spool = engine
        .run_dir(&run_id)
        .join(o.collected.as_deref().expect("collected"));
    let (n, first, last) = lines(&spool);
    assert_eq!(n, size.records, "every record spooled");
    assert!(first.contains("\"evt-00000000\""), "{first}");
    assert!(
        last.contains(&format!("\"evt-{:08}\"", size.records - 1)),
        "{last}"
    );
    store.close().await;
    took
}

/// The raw client: follows the links, parses each page, writes its records as lines.
async fn raw_export(addr: SocketAddr, size: Size) -> Duration {
    let dir = tempfile::tempdir().expect("tempdir");
    let client = reqwest::Client::new();
    let started = Instant::now();
    let mut out =
        BufWriter::new(std::fs::File::create(dir.path().join("events.ndjson")).expect("out"));
    let mut next = Some(format!("http://{addr}/events?subject=alice%40example.com"));
    let mut written = 0u64;
    while let Some(url) = next.take() {
        let bytes = client
            .get(&url)
            .send()
            .await
            .expect("GET")
            .bytes()
            .await
            .expect("body");
        let mut page: serde_json::Value = serde_json::from_slice(&bytes).expect("JSON");
        if let Some(serde_json::Value::Array(items)) =
            page.get_mut("value").map(serde_json::Value::take)
        {
            for item in items {
                serde_json::to_writer(&mut out, &item).expect("write");
                out.write_all(b"\n").expect("write");
                written += 1;
            }
        }
        next = page
            .get("nextLink")
            .and_then(serde_json::Value::as_str)
            .map(str::to_owned);
    }
    out.flush().expect("flush");
    out.get_ref().sync_data().expect("sync");
    let took = started.elapsed();
    assert_eq!(written, size.records);
    took
}

fn main() {
    let size = size();
    let mode = std::env::args()
        .skip(1)
        .find(|a| a == "engine" || a == "raw")
        .unwrap_or_default();
    let addr = server(size);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    println!(
        "http_export: {} records for one subject, {} per page",
        size.records, size.page
    );
    let rate = |d: Duration| size.records as f64 / d.as_secs_f64();
    let mut engine_rate = None;
    if mode.is_empty() || mode == "engine" {
        let took = rt.block_on(engine_export(addr, size));
        println!(
            "dsrctl engine: {took:.2?} = {:.0} records/s, peak RSS (VmHWM) {:.1} MiB",
            rate(took),
            peak_rss_mib()
        );
        engine_rate = Some(rate(took));
    }
    if mode.is_empty() || mode == "raw" {
        let took = rt.block_on(raw_export(addr, size));
        println!(
            "raw reqwest loop: {took:.2?} = {:.0} records/s, peak RSS (VmHWM) so far {:.1} MiB",
            rate(took),
            peak_rss_mib()
        );
        if let Some(e) = engine_rate {
            println!("engine / raw: {:.0}%", 100.0 * e / rate(took));
        }
    }
}
