//! Test support: a recording item server and throwaway projects.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use dsrctl::compile::compile;
use dsrctl::connectors::connectors_for_tenant;
use dsrctl::engine::{Engine, RunResult};
use dsrctl::journal::RunMode;
use dsrctl::load::{Project, load_project};
use dsrctl::model::Request as DsrRequest;
use dsrctl::store::Store;
use serde_json::json;

/// One call the server saw.
#[derive(Debug, Clone)]
pub struct Call {
    pub method: String,
    pub path: String,
    pub query: String,
    pub started: Instant,
    pub finished: Instant,
}

#[derive(Default)]
struct Inner {
    calls: Vec<Call>,
    deleted: HashSet<String>,
    delete_counts: HashMap<String, u32>,
    in_flight: usize,
    max_in_flight: usize,
    fail: Option<(String, u16)>,
}

/// Serves `/{svc}/items` (list, `?n=` items), `/{svc}/items/{id}` (GET, DELETE), with a
/// fixed latency, recording every call.
#[derive(Clone)]
pub struct ItemServer {
    addr: SocketAddr,
    inner: Arc<Mutex<Inner>>,
    delay: Duration,
}

impl ItemServer {
    pub async fn start(delay: Duration) -> Self {
        let inner = Arc::new(Mutex::new(Inner::default()));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = ItemServer { addr, inner, delay };
        let app = Router::new().fallback(handle).with_state(server.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        server
    }

    /// Starts the server on a thread of its own (for tests that block on a child process).
    pub fn start_background(delay: Duration) -> Self {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Runtime::new().unwrap();
            rt.block_on(async move {
                tx.send(ItemServer::start(delay).await).unwrap();
                std::future::pending::<()>().await;
            });
        });
        rx.recv().unwrap()
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
    pub fn calls(&self) -> Vec<Call> {
        self.inner.lock().unwrap().calls.clone()
    }
    pub fn max_in_flight(&self) -> usize {
        self.inner.lock().unwrap().max_in_flight
    }
    /// DELETE calls per path.
    pub fn delete_counts(&self) -> HashMap<String, u32> {
        self.inner.lock().unwrap().delete_counts.clone()
    }
    /// Answers `status` for every path starting with `prefix` (empty prefix: stop failing).
    pub fn fail_path(&self, prefix: &str, status: u16) {
        self.inner.lock().unwrap().fail = (!prefix.is_empty()).then(|| (prefix.to_owned(), status));
    }
}

async fn handle(State(s): State<ItemServer>, req: Request) -> Response {
    let started = Instant::now();
    let method = req.method().to_string();
    let path = req.uri().path().to_owned();
    let query = req.uri().query().unwrap_or("").to_owned();
    let fail = {
        let mut i = s.inner.lock().unwrap();
        i.in_flight += 1;
        i.max_in_flight = i.max_in_flight.max(i.in_flight);
        i.fail.clone()
    };
    // The service acts on receipt and is slow to answer, like a real one: a client killed
    // while waiting has still had its deletion applied (and counted).
    let response = match fail {
        Some((prefix, status)) if path.starts_with(&prefix) => (
            StatusCode::from_u16(status).unwrap(),
            "{\"error\":\"injected\"}",
        )
            .into_response(),
        _ => {
            if method == "DELETE" {
                *s.inner
                    .lock()
                    .unwrap()
                    .delete_counts
                    .entry(path.clone())
                    .or_default() += 1;
            }
            respond(&s, &method, &path, &query)
        }
    };
    tokio::time::sleep(s.delay).await;
    let mut i = s.inner.lock().unwrap();
    i.in_flight -= 1;
    i.calls.push(Call {
        method,
        path,
        query,
        started,
        finished: Instant::now(),
    });
    response
}

fn respond(s: &ItemServer, method: &str, path: &str, query: &str) -> Response {
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let mut i = s.inner.lock().unwrap();
    match (method, parts.as_slice()) {
        ("GET", [svc, "items"]) => {
            let n: usize = query
                .split('&')
                .find_map(|kv| kv.strip_prefix("n="))
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            let items: Vec<_> = (0..n)
                .map(|k| format!("{svc}-{k}"))
                .filter(|id| !i.deleted.contains(&format!("/{svc}/items/{id}")))
                .map(|id| json!({"id": id}))
                .collect();
            axum::Json(json!({ "value": items })).into_response()
        }
        ("GET", [_, "items", id]) => {
            if i.deleted.contains(path) {
                StatusCode::NOT_FOUND.into_response()
            } else {
                axum::Json(json!({"id": id})).into_response()
            }
        }
        ("DELETE", [_, "items", _]) => {
            if i.deleted.insert(path.to_owned()) {
                StatusCode::NO_CONTENT.into_response()
            } else {
                StatusCode::NOT_FOUND.into_response()
            }
        }
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}

/// A playbook for `service` on the connector `api`, needing the subject's `email`: `export`
/// and `delete` are its step lists for those kinds (YAML, indented under the kind), or empty
/// for kinds the service does not support, as are access, rectify and restrict.
pub fn playbook(service: &str, export: &str, delete: &str) -> String {
    let steps = |yaml: &str| {
        if yaml.is_empty() {
            " { unsupported: \"test\" }".to_owned()
        } else {
            format!("\n{yaml}")
        }
    };
    format!(
        "service: {service}\nconnector: api\nneeds_identities: [email]\ndsr:\n  \
         access: {{ unsupported: \"test\" }}\n  export:{}\n  \
         rectify: {{ unsupported: \"test\" }}\n  restrict: {{ unsupported: \"test\" }}\n  \
         delete:{}\n",
        steps(export),
        steps(delete)
    )
}

/// The playbook of the service `things` on the connector `api` that [`ItemServer`] serves,
/// found by the subject's `uid`: its deletion lists `items` items per subject and deletes
/// each, verified gone.
pub fn things_by_uid(items: u32) -> String {
    format!(
        r#"service: things
connector: api
needs_identities: [uid]
dsr:
  access: {{ unsupported: "test" }}
  export: {{ unsupported: "test" }}
  rectify: {{ unsupported: "test" }}
  restrict: {{ unsupported: "test" }}
  delete:
    - id: list
      http: {{ method: GET, path: "/{{{{seg subject.uid}}}}/items", query: {{ n: "{items}" }} }}
      capture: {{ ids: /value }}
    - id: drop
      needs: [list]
      for_each: list.ids
      http: {{ method: DELETE, path: "/{{{{seg subject.uid}}}}/items/{{{{seg item.id}}}}" }}
      absent_on: [404]
      preview: item
      verify:
        http: {{ method: GET, path: "/{{{{seg subject.uid}}}}/items/{{{{seg item.id}}}}" }}
        expect_status: [404]
"#
    )
}

/// A project in a temporary directory.
pub struct TestProject {
    pub dir: tempfile::TempDir,
    pub project: Project,
}

/// Writes a project with one tenant `t1` whose connector `api` points at `base_url`, and
/// the given playbooks.
pub fn project_with(base_url: &str, playbooks: &[(&str, String)]) -> TestProject {
    let dir = tempfile::tempdir().unwrap();
    write_project(dir.path(), base_url, playbooks);
    let project = load_project(dir.path()).unwrap_or_else(|d| panic!("{}", d.render_human(false)));
    TestProject { dir, project }
}

pub fn write_project(dir: &Path, base_url: &str, playbooks: &[(&str, String)]) {
    std::fs::create_dir_all(dir.join("policies")).unwrap();
    std::fs::write(
        dir.join("dsrctl.yaml"),
        format!(
            "tenants:\n  t1:\n    connectors:\n      api:\n        kind: http\n        base_url: {base_url}\n        timeout: 5s\n        retry: {{ attempts: 2, backoff: 10ms }}\n"
        ),
    )
    .unwrap();
    for (name, text) in playbooks {
        std::fs::write(dir.join("policies").join(format!("{name}.yaml")), text).unwrap();
    }
}

pub fn request(kind: &str) -> DsrRequest {
    serde_json::from_value(json!({
        "id": "r-1", "kind": kind, "tenant": "t1", "received": "2026-11-02",
        "subject": {"email": "alice@example.com"}
    }))
    .unwrap()
}

impl TestProject {
    pub fn state_dir(&self) -> PathBuf {
        self.dir.path().join(".dsrctl")
    }

    pub async fn store(&self) -> Arc<dyn Store> {
        dsrctl::workflow::open_store(&self.project, &self.state_dir())
            .await
            .unwrap()
    }

    pub async fn engine(&self, store: Arc<dyn Store>) -> Engine {
        let connectors = connectors_for_tenant(&self.project.config, "t1", self.dir.path())
            .await
            .unwrap();
        Engine::new(store, connectors, self.state_dir())
    }

    /// Compiles and applies a request of `kind`.
    pub async fn run(&self, kind: &str) -> RunResult {
        self.execute(kind, RunMode::Apply).await
    }

    pub async fn execute(&self, kind: &str, mode: RunMode) -> RunResult {
        let plan = compile(&self.project, &request(kind), chrono::Utc::now()).unwrap();
        let store = self.store().await;
        let run_id = store.create_run(&plan, mode).await.unwrap();
        let engine = self.engine(store.clone()).await;
        let result = engine.execute(&run_id, &plan, mode, None).await.unwrap();
        store.close().await;
        result
    }

    /// Resumes a run.
    pub async fn resume(&self, run_id: &str) -> RunResult {
        let store = self.store().await;
        let run = store.run(run_id).await.unwrap();
        let engine = self.engine(store.clone()).await;
        let result = engine
            .execute(run_id, &run.plan, run.mode, None)
            .await
            .unwrap();
        store.close().await;
        result
    }
}

/// A service whose erasure lists the subject's items, waits for a person (a manual step with
/// the subject's email in its instructions), then deletes each item; `verify` (YAML lines
/// indented as the step's keys, or empty) is added to the delete step.
#[allow(dead_code)]
pub fn with_a_manual_step(verify: &str) -> String {
    format!(
        r#"
service: things
connector: api
needs_identities: [email]
dsr:
  access:
    - id: list
      http: {{ method: GET, path: /things/items, query: {{ owner: "{{{{subject.email}}}}", n: "2" }} }}
      collect: items
  export: {{ same_as: [access] }}
  rectify: {{ unsupported: "test" }}
  restrict: {{ unsupported: "test" }}
  delete:
    - id: list
      http: {{ method: GET, path: /things/items, query: {{ owner: "{{{{subject.email}}}}", n: "2" }} }}
      capture: {{ ids: /value }}
    - id: alerts
      manual:
        instructions: "Remove {{{{subject.email}}}} from every alert in IoT Central app contoso-fleet."
        evidence: [screenshot of the alert list]
        assignee: iot-ops
    - id: drop
      needs: [list, alerts]
      for_each: list.ids
      http: {{ method: DELETE, path: "/things/items/{{{{seg item.id}}}}" }}
      absent_on: [404]
      preview: item
{verify}"#
    )
}

/// Writes a project of `playbook` in `dir` whose tenant `t2` has the same connectors as `t1`;
/// returns the written config and the `t2` lines (to write back with more appended).
#[allow(dead_code)]
pub fn two_tenants(dir: &Path, base_url: &str, playbook: &str) -> (String, String) {
    write_project(dir, base_url, &[("things", playbook.to_owned())]);
    let config = std::fs::read_to_string(dir.join("dsrctl.yaml")).unwrap();
    let t2 = config
        .lines()
        .skip(1)
        .map(|l| l.replacen("t1:", "t2:", 1))
        .collect::<Vec<_>>()
        .join("\n");
    (config, t2)
}
