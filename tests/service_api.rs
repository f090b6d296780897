//! The HTTP API of `dsrctl serve --listen`, through real HTTP on an ephemeral port, with the
//! worker loop running alongside: intake with idempotency keys, approval, a manual task done
//! with an evidence upload, the evidence report; every endpoint refused to a token of another
//! tenant, bad and missing tokens, malformed bodies and oversized uploads.

mod support;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use dsrctl::journal::{RequestState, StepStatus, sha256_hex};
use dsrctl::load::load_project;
use dsrctl::store::{Store, verify_chain};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use support::items::{ItemServer, two_tenants, with_a_manual_step};
use support::serve::Serve;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The deletion's verification, a month after it is sent (so the run waits for it).
const VERIFY: &str = r#"      verify:
        http: { method: GET, path: "/things/items/{{seg item.id}}" }
        expect_status: [404]
        after: 30d
"#;

const FORM: &str = "form-secret-0123456789abcdef";
const OPS: &str = "ops-secret-0123456789abcdef";
const OTHER: &str = "t2-secret-0123456789abcdef";

/// A project with two tenants and three tokens: an intake form of t1, t1's operations team
/// (operator, approver, auditor; its secret in a file) and a token of t2 with every role.
fn project(dir: &Path, base_url: &str) {
    let (config, t2) = two_tenants(dir, base_url, &with_a_manual_step(VERIFY));
    std::fs::create_dir_all(dir.join("keys")).unwrap();
    std::fs::write(dir.join("keys/ops.token"), format!("{OPS}\n")).unwrap();
    std::fs::write(
        dir.join("dsrctl.yaml"),
        format!(
            "{config}{t2}\napi:\n  max_upload_bytes: 4096\n  tokens:\n    \
             - {{ name: form, secret: {{ env: TEST_FORM_TOKEN }}, tenants: [t1], roles: [intake] }}\n    \
             - {{ name: ops, secret: {{ file: keys/ops.token }}, tenants: [t1], roles: [operator, approver, auditor] }}\n    \
             - {{ name: other, secret: {{ env: TEST_OTHER_TOKEN }}, tenants: [t2], roles: [intake, operator, approver, auditor] }}\n"
        ),
    )
    .unwrap();
}

struct Api {
    base: String,
    http: reqwest::Client,
}

impl Api {
    async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&str>,
    ) -> (StatusCode, Value) {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req
                .header("content-type", "application/json")
                .body(b.to_owned());
        }
        let resp = req.send().await.unwrap();
        let status = resp.status();
        let text = resp.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    async fn get(&self, path: &str, token: &str) -> (StatusCode, Value) {
        self.call(Method::GET, path, Some(token), None).await
    }

    async fn post(&self, path: &str, token: &str, body: &str) -> (StatusCode, Value) {
        self.call(Method::POST, path, Some(token), Some(body)).await
    }

    async fn create(&self, token: &str, key: &str, body: &Value) -> (StatusCode, Value) {
        let resp = self
            .http
            .post(format!("{}/v1/requests", self.base))
            .bearer_auth(token)
            .header("idempotency-key", key)
            .json(body)
            .send()
            .await
            .unwrap();
        let status = resp.status();
        (status, resp.json().await.unwrap())
    }

    async fn upload(&self, path: &str, token: &str, bytes: Vec<u8>) -> (StatusCode, Value) {
        let resp = self
            .http
            .post(format!("{}{path}", self.base))
            .bearer_auth(token)
            .header("content-type", "application/octet-stream")
            .body(bytes)
            .send()
            .await
            .unwrap();
        let status = resp.status();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    /// Polls `path` until `ready` holds for its JSON, for at most 30 s.
    async fn until(&self, path: &str, token: &str, ready: impl Fn(&Value) -> bool) -> Value {
        let start = Instant::now();
        loop {
            let (status, body) = self.get(path, token).await;
            if status == StatusCode::OK && ready(&body) {
                return body;
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "{path} never got there: {status} {body}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// The items service, the project in `dir` against it, and `dsrctl serve --listen` on it as
/// worker `worker`, with a client of its API.
async fn serving(dir: &Path, worker: &str) -> (ItemServer, Serve, Api) {
    let server = ItemServer::start_background(Duration::ZERO);
    project(dir, &server.url());
    let serve = Serve::start(
        dir,
        worker,
        &[("TEST_FORM_TOKEN", FORM), ("TEST_OTHER_TOKEN", OTHER)],
    )
    .await;
    let api = Api {
        base: serve.base.clone(),
        http: reqwest::Client::new(),
    };
    (server, serve, api)
}

async fn open_store(dir: &Path) -> Arc<dyn Store> {
    let project = load_project(dir).unwrap();
    dsrctl::workflow::open_store(&project, &dir.join(".dsrctl"))
        .await
        .unwrap()
}

/// An upload in chunks without a Content-Length, over a raw connection: the server must stop
/// at the limit as the body streams in. Returns the answer's status code.
async fn chunked_upload(base: &str, path: &str, token: &str, total: usize) -> u16 {
    let addr = base.trim_start_matches("http://");
    let mut conn = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\
         Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    );
    conn.write_all(head.as_bytes()).await.unwrap();
    let chunk = vec![b'x'; 1024];
    let mut sent = 0;
    while sent < total {
        let frame = format!("{:x}\r\n", chunk.len());
        // The server may answer and close before everything is sent.
        if conn.write_all(frame.as_bytes()).await.is_err()
            || conn.write_all(&chunk).await.is_err()
            || conn.write_all(b"\r\n").await.is_err()
        {
            break;
        }
        sent += chunk.len();
    }
    let _ = conn.write_all(b"0\r\n\r\n").await;
    let mut answer = Vec::new();
    let _ = conn.read_to_end(&mut answer).await;
    let text = String::from_utf8_lossy(&answer);
    text.split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP answer: {text:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn intake_approval_task_with_evidence_and_report_through_http() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (server, serve, api) = serving(dir, "w-api").await;

    // Intake, idempotent by its key.
    let body = json!({"kind": "delete", "subject": {"email": "alice@example.com"}, "received": "2026-11-02"});
    let (status, created) = api.create(FORM, "ticket-4711", &body).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(created["tenant"], "t1");
    assert_eq!(created["state"], "received");
    assert_eq!(created["deadline"], "2026-12-02");
    assert!(
        created["approval_needed"]
            .as_str()
            .unwrap()
            .contains("delete request"),
        "{created}"
    );
    let (status, again) = api.create(FORM, "ticket-4711", &body).await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(again["id"], id.as_str());
    let other_body = json!({"kind": "delete", "subject": {"email": "bob@example.com"}, "received": "2026-11-02"});
    let (status, conflict) = api.create(FORM, "ticket-4711", &other_body).await;
    assert_eq!(status, StatusCode::CONFLICT, "{conflict}");
    let (_, list) = api.get("/v1/requests", OPS).await;
    assert_eq!(list["requests"].as_array().unwrap().len(), 1, "{list}");
    // The same key in another tenant is another request.
    let (status, t2) = api.create(OTHER, "ticket-4711", &body).await;
    assert_eq!(status, StatusCode::CREATED, "{t2}");
    assert_ne!(t2["id"], id.as_str());
    assert_eq!(t2["tenant"], "t2");

    // The intake form may not approve; the operations team may.
    let approve = format!("/v1/requests/{id}/approve");
    let (status, _) = api.post(&approve, FORM, "{}").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, approved) = api
        .post(&approve, OPS, r#"{"reason": "identity checked"}"#)
        .await;
    assert_eq!(status, StatusCode::OK, "{approved}");
    assert_eq!(approved["state"], "approved");

    // The worker starts it; its manual task appears.
    let tasks = api
        .until("/v1/tasks", OPS, |b| {
            b["tasks"].as_array().is_some_and(|t| !t.is_empty())
        })
        .await;
    let task = &tasks["tasks"][0];
    let run = task["run"].as_str().unwrap().to_owned();
    assert_eq!(task["step"], "things/alerts");
    assert_eq!(task["assignee"], "iot-ops");
    let instructions = task["instructions"].as_str().unwrap();
    assert!(
        !instructions.contains("alice@example.com"),
        "{instructions}"
    );
    let done = format!("/v1/runs/{run}/tasks/alerts/done");

    // Too large, announced or streamed: refused, nothing recorded.
    let (status, refused) = api.upload(&done, OPS, vec![7u8; 5000]).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{refused}");
    assert_eq!(chunked_upload(&api.base, &done, OPS, 64 * 1024).await, 413);
    let (_, still) = api.get("/v1/tasks", OPS).await;
    assert_eq!(still["tasks"].as_array().unwrap().len(), 1, "{still}");

    // Every endpoint refuses the other tenant's token as if the request did not exist.
    let reason = r#"{"reason": "x"}"#;
    for (method, path, body) in [
        ("GET", format!("/v1/requests/{id}"), None),
        ("GET", format!("/v1/requests/{id}/runs"), None),
        ("POST", format!("/v1/requests/{id}/approve"), Some("{}")),
        ("POST", format!("/v1/requests/{id}/decline"), Some(reason)),
        ("POST", format!("/v1/requests/{id}/extend"), Some(reason)),
        ("GET", format!("/v1/runs/{run}"), None),
        ("GET", format!("/v1/runs/{run}/report"), None),
        ("GET", format!("/v1/runs/{run}/package"), None),
        (
            "POST",
            format!("/v1/runs/{run}/tasks/alerts/done"),
            Some(""),
        ),
        (
            "POST",
            format!("/v1/runs/{run}/tasks/alerts/fail"),
            Some(""),
        ),
    ] {
        let method = Method::from_bytes(method.as_bytes()).unwrap();
        let (status, answer) = api.call(method, &path, Some(OTHER), body).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}: {answer}");
        assert_eq!(answer["error"], "not-found", "{path}: {answer}");
    }
    let (_, theirs) = api.get("/v1/requests", OTHER).await;
    let ids: Vec<&str> = theirs["requests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [t2["id"].as_str().unwrap()]);
    let (_, their_tasks) = api.get("/v1/tasks", OTHER).await;
    assert_eq!(their_tasks["tasks"], json!([]));
    let (status, _) = api
        .post(
            "/v1/requests",
            OTHER,
            r#"{"kind": "access", "tenant": "t1", "subject": {"email": "eve@example.com"}}"#,
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (mine, _) = api.get(&format!("/v1/requests/{id}"), OPS).await;
    assert_eq!(mine, StatusCode::OK);

    // Done, with the evidence; the worker continues the run.
    let evidence = b"screenshot bytes".repeat(100);
    let (status, recorded) = api
        .upload(
            &format!("{done}?filename=alerts.png&note=removed%20from%203%20alerts"),
            OPS,
            evidence.clone(),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{recorded}");
    assert_eq!(recorded["status"], "succeeded");
    assert_eq!(recorded["by"], "api:ops");
    assert_eq!(recorded["evidence"][0]["name"], "alerts.png");
    assert_eq!(recorded["evidence"][0]["sha256"], sha256_hex(&evidence));
    assert_eq!(recorded["evidence"][0]["size"], evidence.len());
    let (status, _) = api.upload(&done, OPS, Vec::new()).await;
    assert_eq!(status, StatusCode::CONFLICT, "a task is recorded once");
    // Erased; the purge check waits 30 days.
    api.until(&format!("/v1/requests/{id}"), OPS, |b| {
        b["state"] == "waiting" && b["run"]["status"] == "waiting"
    })
    .await;
    assert_eq!(server.delete_counts().len(), 2);
    let (_, detail) = api.get(&format!("/v1/runs/{run}"), FORM).await;
    let alerts = detail["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["instance"] == "things/alerts")
        .unwrap();
    assert_eq!(alerts["status"], "succeeded");
    let (_, runs) = api.get(&format!("/v1/requests/{id}/runs"), FORM).await;
    assert_eq!(runs["runs"][0]["id"], run.as_str());

    // The evidence report, for the auditor; not for the intake form.
    let (status, _) = api.get(&format!("/v1/runs/{run}/report"), FORM).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, report) = api.get(&format!("/v1/runs/{run}/report"), OPS).await;
    assert_eq!(status, StatusCode::OK);
    assert!(report["signature"].is_object(), "signed: {report}");
    assert!(
        report.to_string().contains(&sha256_hex(&evidence)),
        "the report names the evidence's digest"
    );
    let resp = api
        .http
        .get(format!("{}/v1/runs/{run}/report?format=html", api.base))
        .bearer_auth(OPS)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(resp.text().await.unwrap().contains("<html"));

    // Extended once, with its reason.
    let extend = format!("/v1/requests/{id}/extend");
    let (status, _) = api.post(&extend, OPS, "{}").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, extended) = api
        .post(&extend, OPS, r#"{"reason": "complex request"}"#)
        .await;
    assert_eq!(status, StatusCode::OK, "{extended}");
    assert_eq!(extended["extended"], true);
    assert_eq!(extended["deadline"], "2027-02-02");
    let (status, _) = api.post(&extend, OPS, r#"{"reason": "again"}"#).await;
    assert_eq!(status, StatusCode::CONFLICT);

    // Operations endpoints.
    let (status, health) = api.call(Method::GET, "/healthz", None, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(health["status"], "ok");
    let (_, metrics) = api.call(Method::GET, "/metrics", None, None).await;
    let metrics = metrics.as_str().unwrap().to_owned();
    assert!(
        metrics.contains("dsrctl_requests{state=\"waiting\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("dsrctl_requests{state=\"received\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("dsrctl_runs{status=\"waiting\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("dsrctl_requests_overdue 0"), "{metrics}");

    // Every action is in the audit log in the token's name.
    drop(serve);
    let store = open_store(dir).await;
    let audit = store.audit_entries().await.unwrap();
    let key = std::fs::read_to_string(dir.join(".dsrctl/audit.key")).unwrap();
    verify_chain(&audit, Some(key.trim().as_bytes())).unwrap();
    let of = |kind: &str| {
        audit
            .iter()
            .filter(|e| e.kind == kind && (e.subject == id || e.subject == run))
            .map(|e| e.actor.clone().unwrap_or_default())
            .collect::<Vec<_>>()
    };
    assert_eq!(of("request.received"), ["api:form"]);
    assert_eq!(of("request.approved"), ["api:ops"]);
    assert_eq!(of("task.done"), ["api:ops"]);
    assert_eq!(of("request.extended"), ["api:ops"]);
    let approved = audit
        .iter()
        .find(|e| e.kind == "request.approved" && e.subject == id)
        .unwrap();
    assert_eq!(approved.detail["reason"], "identity checked");
    let outcomes = store.outcomes(&run).await.unwrap();
    let alerts = outcomes
        .iter()
        .find(|o| o.instance == "things/alerts")
        .unwrap();
    assert_eq!(alerts.status, StepStatus::Succeeded);
    let stored = &alerts.task.as_ref().unwrap().evidence[0];
    assert_eq!(
        store.evidence_content(&stored.stored_at).await.unwrap(),
        evidence
    );
    assert_eq!(
        store.request(&id).await.unwrap().state,
        RequestState::Waiting
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_tokens_and_malformed_bodies_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (_server, _serve, api) = serving(dir, "w-api").await;
    let body = r#"{"kind": "access", "subject": {"email": "alice@example.com"}}"#;

    for (token, what) in [
        (None, "no token"),
        (Some("not-a-token-at-all-0123456789"), "a wrong token"),
    ] {
        for (method, path) in [
            (Method::POST, "/v1/requests"),
            (Method::GET, "/v1/requests"),
            (Method::GET, "/v1/requests/r-1"),
            (Method::GET, "/v1/tasks"),
            (Method::GET, "/v1/runs/x/report"),
        ] {
            let (status, answer) = api.call(method, path, token, Some(body)).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{what} {path}: {answer}");
            assert_eq!(answer["error"], "unauthorized");
        }
    }
    let resp = api
        .http
        .get(format!("{}/v1/requests", api.base))
        .header("authorization", format!("Basic {FORM}"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.status(),
        StatusCode::UNAUTHORIZED,
        "not a bearer token"
    );

    for (bad, want) in [
        ("{\"kind\": \"access\", ", StatusCode::BAD_REQUEST),
        ("[1, 2]", StatusCode::BAD_REQUEST),
        ("", StatusCode::BAD_REQUEST),
        (r#"{"kind": 5, "subject": {}}"#, StatusCode::BAD_REQUEST),
        (
            r#"{"kind": "access", "subject": {"email": "a@example.com"}, "colour": "red"}"#,
            StatusCode::BAD_REQUEST,
        ),
        (
            r#"{"kind": "access", "subject": {"email": "a@example.com"}, "received": "yesterday"}"#,
            StatusCode::BAD_REQUEST,
        ),
        (
            r#"{"kind": "erase", "subject": {"email": "a@example.com"}}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            r#"{"kind": "access", "subject": {"email": "a@example.com"}, "jurisdiction": "mars"}"#,
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
    ] {
        let (status, answer) = api.post("/v1/requests", FORM, bad).await;
        assert_eq!(status, want, "{bad}: {answer}");
        assert!(answer["message"].as_str().is_some(), "{answer}");
    }
    let (status, _) = api
        .post(
            "/v1/requests",
            FORM,
            r#"{"id": "r-own", "kind": "access", "subject": {"email": "a@example.com"}}"#,
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, _) = api
        .post("/v1/requests/r-own/decline", OPS, r#"{"reason": 3}"#)
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = api.post("/v1/requests/r-own/decline", OPS, "").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, _) = api.post("/v1/requests/r-nope/approve", OPS, "").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = api.get("/v1/requests?state=sideways", OPS).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    // Nothing malformed was recorded.
    let (_, list) = api.get("/v1/requests", OPS).await;
    assert_eq!(list["requests"].as_array().unwrap().len(), 1, "{list}");

    // An import: rows of another tenant and malformed rows are rejected by line; a second
    // post of the same body records nothing.
    let lines = concat!(
        r#"{"kind": "access", "subject": {"email": "c@example.com"}}"#,
        "\n",
        r#"{"kind": "access", "tenant": "t2", "subject": {"email": "d@example.com"}}"#,
        "\n",
        r#"{"kind": "access", "#,
        "\n",
    );
    for (created, existing) in [(1, 0), (0, 1)] {
        let resp = api
            .http
            .post(format!("{}/v1/requests/import", api.base))
            .bearer_auth(FORM)
            .header("content-type", "application/x-ndjson")
            .body(lines)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        let report: Value = resp.json().await.unwrap();
        assert_eq!(report["rows"], 3, "{report}");
        assert_eq!(
            report["created"].as_array().unwrap().len(),
            created,
            "{report}"
        );
        assert_eq!(report["existing"], existing, "{report}");
        let lines: Vec<u64> = report["rejected"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["line"].as_u64().unwrap())
            .collect();
        assert_eq!(lines, [2, 3], "{report}");
    }
    let (_, list) = api.get("/v1/requests", OTHER).await;
    assert_eq!(
        list["requests"],
        json!([]),
        "nothing recorded in t2: {list}"
    );

    // The access request was approved on intake and run by the worker: its export package
    // is for the operator, not for the intake form.
    let done = api
        .until("/v1/requests/r-own", OPS, |b| b["state"] == "completed")
        .await;
    let run = done["run"]["id"].as_str().unwrap();
    let package = format!("/v1/runs/{run}/package");
    let (status, _) = api.get(&package, FORM).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let resp = api
        .http
        .get(format!("{}{package}", api.base))
        .bearer_auth(OPS)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["content-type"], "application/zip");
    let zip = resp.bytes().await.unwrap();
    assert!(zip.starts_with(b"PK"), "a zip file");
    let names = zip::ZipArchive::new(std::io::Cursor::new(zip.to_vec()))
        .unwrap()
        .file_names()
        .map(|n| n.map(|n| n.into_owned()))
        .collect::<Result<Vec<String>, _>>()
        .unwrap();
    assert!(
        names.iter().any(|n| n.ends_with("manifest.json")),
        "{names:?}"
    );
    assert!(
        names.iter().any(|n| n.ends_with("things/items.json")),
        "{names:?}"
    );
}

/// A manual task a person records failed ("it could not be done") is not handed out again by
/// the worker: the run ends failed and the request says so, with the reason, until a person
/// resumes the run (`dsrctl resume`), which issues the task once more.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_recorded_failed_fails_the_run_until_a_person_resumes_it() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (_server, serve, api) = serving(dir, "w-api-fail").await;
    let body = json!({"kind": "delete", "subject": {"email": "alice@example.com"}});
    let (status, created) = api.create(FORM, "ticket-failed-task", &body).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    let (status, _) = api
        .post(&format!("/v1/requests/{id}/approve"), OPS, "{}")
        .await;
    assert_eq!(status, StatusCode::OK);
    let tasks = api
        .until("/v1/tasks", OPS, |b| {
            b["tasks"].as_array().is_some_and(|t| !t.is_empty())
        })
        .await;
    let run = tasks["tasks"][0]["run"].as_str().unwrap().to_owned();
    // 409 while the worker still holds the run's lease (it has just issued the task).
    let start = Instant::now();
    loop {
        let (status, failed) = api
            .post(
                &format!("/v1/runs/{run}/tasks/alerts/fail?note=the%20app%20was%20unreachable"),
                OPS,
                "",
            )
            .await;
        if status == StatusCode::OK {
            break;
        }
        assert_eq!(status, StatusCode::CONFLICT, "{failed}");
        assert!(start.elapsed() < Duration::from_secs(30), "{failed}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The worker takes the run up again; the failed task stays failed, so the deletion it
    // gates is blocked and the run fails.
    let request = api
        .until(&format!("/v1/requests/{id}"), OPS, |b| {
            b["state"] == "failed"
        })
        .await;
    assert_eq!(request["state"], "failed", "{request}");
    let (_, tasks) = api.get("/v1/tasks", OPS).await;
    assert_eq!(
        tasks["tasks"],
        json!([]),
        "the failed task is not issued again"
    );
    let store = open_store(dir).await;
    let outcomes = store.outcomes(&run).await.unwrap();
    let status_of = |step: &str| {
        outcomes
            .iter()
            .find(|o| o.instance == step)
            .map(|o| o.status)
    };
    assert_eq!(status_of("things/alerts"), Some(StepStatus::Failed));
    assert_eq!(status_of("things/drop"), Some(StepStatus::Blocked));
    let failures = store
        .audit_entries()
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == "task.failed")
        .count();
    assert_eq!(failures, 1, "recorded failed once, not over and over");
    store.close().await;
    drop(store);

    // A person resumes it: the task is issued again.
    let resumed = tokio::process::Command::new(env!("CARGO_BIN_EXE_dsrctl"))
        .arg("-C")
        .arg(dir)
        .args(["resume", &run])
        .env("TEST_FORM_TOKEN", FORM)
        .env("TEST_OTHER_TOKEN", OTHER)
        .output()
        .await
        .unwrap();
    assert!(
        resumed.status.success(),
        "{:?} {} {}",
        resumed.status,
        String::from_utf8_lossy(&resumed.stdout),
        String::from_utf8_lossy(&resumed.stderr)
    );
    let tasks = api
        .until("/v1/tasks", OPS, |b| {
            b["tasks"].as_array().is_some_and(|t| !t.is_empty())
        })
        .await;
    assert_eq!(tasks["tasks"][0]["step"], "things/alerts");
    drop(serve);
}
