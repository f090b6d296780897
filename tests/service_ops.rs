//! Operating `dsrctl serve --listen`: the step series of `/metrics` after real runs, HTTPS with
//! a certificate made in the test (plain HTTP refused on that port), and intake that records
//! a request together with its audit entry or not at all, on SQLite and PostgreSQL.

mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use dsrctl::journal::RequestState;
use dsrctl::load::load_project;
use dsrctl::model::{DsrKind, Identity, Jurisdiction, Request};
use dsrctl::store::{StoreError, verify_chain};
use dsrctl::workflow::{Workflow, WorkflowError};
use reqwest::StatusCode;
use serde_json::{Value, json};
use support::items::{ItemServer, things_by_uid, write_project};
use support::serve::Serve;

const TOKEN: &str = "ops-token-0123456789abcdef";

/// A project whose service `things` deletes each subject's two items, and a token that
/// records and approves requests.
fn project(dir: &Path, base_url: &str, extra: &str) {
    write_project(dir, base_url, &[("things", things_by_uid(2))]);
    let config = dir.join("dsrctl.yaml");
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        format!(
            "{text}api:\n  tokens:\n    \
             - {{ name: ops, secret: {{ env: TEST_OPS_TOKEN }}, tenants: [t1], roles: [intake, approver, operator] }}\n{extra}"
        ),
    )
    .unwrap();
}

/// The value of one series (its name with labels, exactly), if present.
fn series(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

async fn delete_request(http: &reqwest::Client, base: &str, uid: &str) -> String {
    let resp = http
        .post(format!("{base}/v1/requests"))
        .bearer_auth(TOKEN)
        .json(&json!({"kind": "delete", "subject": {"uid": uid}}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    let id = resp.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let resp = http
        .post(format!("{base}/v1/requests/{id}/approve"))
        .bearer_auth(TOKEN)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    id
}

async fn until_state(http: &reqwest::Client, base: &str, id: &str, states: &[&str]) -> String {
    let start = Instant::now();
    loop {
        let v: Value = http
            .get(format!("{base}/v1/requests/{id}"))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let state = v["state"].as_str().unwrap_or_default().to_owned();
        if states.contains(&state.as_str()) {
            return state;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "{id} stayed {state}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// After one deletion that succeeds and one whose deletions the service refuses with 503
/// (each sent twice, as the connector's retry policy says), `/metrics` has each call's latency
/// in the connector's histogram, the retries, and the step ends by status.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_give_step_latency_retries_and_ends_per_connector_after_runs() {
    let server = ItemServer::start_background(Duration::from_millis(30));
    server.fail_path("/u2/items/", 503);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    project(dir, &server.url(), "");
    let serve = Serve::start(dir, "w-metrics", &[("TEST_OPS_TOKEN", TOKEN)]).await;
    let http = reqwest::Client::new();
    let ok = delete_request(&http, &serve.base, "u1").await;
    let refused = delete_request(&http, &serve.base, "u2").await;
    assert_eq!(
        until_state(&http, &serve.base, &ok, &["completed", "failed"]).await,
        "completed"
    );
    assert_eq!(
        until_state(&http, &serve.base, &refused, &["completed", "failed"]).await,
        "failed"
    );

    let resp = http
        .get(format!("{}/metrics", serve.base))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let text = resp.text().await.unwrap();
    let get = |name: &str| series(&text, name).unwrap_or_else(|| panic!("no {name} in\n{text}"));
    // Per request the list, then each of two items' deletion: six call units.
    assert_eq!(
        get("dsrctl_step_duration_seconds_count{connector=\"api\"}"),
        6.0
    );
    assert_eq!(
        get("dsrctl_step_duration_seconds_bucket{connector=\"api\",le=\"+Inf\"}"),
        6.0
    );
    // Every call took the service's 30 ms at least, none anywhere near a timeout.
    assert_eq!(
        get("dsrctl_step_duration_seconds_bucket{connector=\"api\",le=\"0.025\"}"),
        0.0
    );
    assert_eq!(
        get("dsrctl_step_duration_seconds_bucket{connector=\"api\",le=\"5\"}"),
        6.0
    );
    let sum = get("dsrctl_step_duration_seconds_sum{connector=\"api\"}");
    assert!((0.18..30.0).contains(&sum), "sum {sum}");
    // u2's two deletions were each sent twice.
    assert_eq!(get("dsrctl_step_retries_total{connector=\"api\"}"), 2.0);
    assert_eq!(
        get("dsrctl_steps_total{connector=\"api\",status=\"succeeded\"}"),
        4.0
    );
    assert_eq!(
        get("dsrctl_steps_total{connector=\"api\",status=\"failed\"}"),
        2.0
    );
    // From the store: requests, runs, overdue.
    assert_eq!(get("dsrctl_requests{state=\"completed\"}"), 1.0);
    assert_eq!(get("dsrctl_requests{state=\"failed\"}"), 1.0);
    assert_eq!(get("dsrctl_runs{status=\"completed\"}"), 1.0);
    assert_eq!(get("dsrctl_runs{status=\"failed\"}"), 1.0);
    assert_eq!(get("dsrctl_requests_overdue"), 0.0);
    assert!(text.contains("# TYPE dsrctl_step_duration_seconds histogram"));
    assert!(text.contains("# TYPE dsrctl_step_retries_total counter"));
}

/// With `api.tls` configured (the key by reference, from the environment), `serve` answers
/// HTTPS with that certificate; a client trusting it gets answers, one that does not is
/// refused, and plain HTTP on the port gets no answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_with_the_configured_certificate_and_no_plain_http() {
    let made = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let cert_pem = made.cert.pem();
    let key_pem = made.signing_key.serialize_pem();
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::create_dir_all(dir.join("tls")).unwrap();
    std::fs::write(dir.join("tls/cert.pem"), &cert_pem).unwrap();
    project(
        dir,
        "http://127.0.0.1:9",
        "  tls:\n    certificate: tls/cert.pem\n    key: { env: TEST_TLS_KEY }\n",
    );
    let serve = Serve::start(
        dir,
        "w-tls",
        &[("TEST_OPS_TOKEN", TOKEN), ("TEST_TLS_KEY", &key_pem)],
    )
    .await;
    let addr: std::net::SocketAddr = serve
        .base
        .strip_prefix("https://")
        .unwrap_or_else(|| panic!("serve says {}, not https", serve.base))
        .parse()
        .unwrap();

    let trusting = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(cert_pem.as_bytes()).unwrap()])
        .resolve("localhost", addr)
        .build()
        .unwrap();
    let https = format!("https://localhost:{}", addr.port());
    let health = trusting
        .get(format!("{https}/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    let listed = trusting
        .get(format!("{https}/v1/requests"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(listed.status(), StatusCode::OK);

    // The platform's roots do not know a certificate made a moment ago.
    let stranger = reqwest::Client::builder()
        .resolve("localhost", addr)
        .build()
        .unwrap();
    assert!(
        stranger
            .get(format!("{https}/healthz"))
            .send()
            .await
            .is_err(),
        "a client that does not trust the certificate got an answer"
    );

    let plain = reqwest::Client::new()
        .get(format!("http://{addr}/healthz"))
        .timeout(Duration::from_secs(10))
        .send()
        .await;
    assert!(
        plain.is_err(),
        "plain HTTP on the TLS port was answered: {:?}",
        plain.map(|r| r.status())
    );
}

/// A TLS key that cannot be read stops `serve` before it listens, naming the setting.
#[test]
fn serve_refuses_to_start_without_its_tls_key() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    std::fs::create_dir_all(dir.join("tls")).unwrap();
    std::fs::write(dir.join("tls/cert.pem"), "not a certificate").unwrap();
    project(
        dir,
        "http://127.0.0.1:9",
        "  tls:\n    certificate: tls/cert.pem\n    key: { env: TEST_TLS_KEY_UNSET }\n",
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_dsrctl"))
        .arg("-C")
        .arg(dir)
        .args(["serve", "--listen", "127.0.0.1:0", "--every", "1h"])
        .env("TEST_OPS_TOKEN", TOKEN)
        .env_remove("TEST_TLS_KEY_UNSET")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("TLS key") && err.contains("TEST_TLS_KEY_UNSET"),
        "{err}"
    );
}

fn postgres_url() -> String {
    std::env::var("DSRCTL_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

fn new_request(id: &str) -> Request {
    Request {
        id: id.to_owned(),
        kind: DsrKind::Access,
        tenant: "t1".into(),
        jurisdiction: Jurisdiction::Gdpr,
        received: chrono::Utc::now().date_naive(),
        subject: BTreeMap::from([("uid".to_owned(), Identity::One("u1".to_owned()))]),
        corrections: None,
        note: None,
        name: None,
        language: None,
    }
}

/// Intake records a request and its audit entries in one transaction. Regression: the request
/// was inserted first and audited after, so a failure between them (here the audit key
/// cannot be read, as when its secret is missing) left a request the audit log never heard
/// of.
async fn intake_is_atomic_with_its_audit_entries(state: Option<String>) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    project(dir, "http://127.0.0.1:9", "");
    if let Some(url) = &state {
        let config = dir.join("dsrctl.yaml");
        let text = std::fs::read_to_string(&config).unwrap();
        std::fs::write(&config, format!("{text}state: \"{url}\"\n")).unwrap();
    }
    let project = Arc::new(load_project(dir).unwrap());
    let state_dir = dir.join(".dsrctl");
    let store = dsrctl::workflow::open_store(&project, &state_dir)
        .await
        .unwrap();
    let workflow = Workflow::new(project.clone(), store.clone(), &state_dir, "w-intake");

    store.set_audit_key(Err("the audit key's secret is not set (test)"));
    let refused = workflow
        .receive(&new_request("r-unaudited"), Some("api:ops"))
        .await;
    assert!(
        matches!(refused, Err(WorkflowError::Store(StoreError::AuditKey(_)))),
        "{refused:?}"
    );
    assert!(
        matches!(
            store.request("r-unaudited").await,
            Err(StoreError::RequestNotFound(_))
        ),
        "a request was recorded without its audit entry"
    );

    let key = b"intake-audit-key-0123456789abcdef";
    store.set_audit_key(Ok(key));
    let received = workflow
        .receive(&new_request("r-audited"), Some("api:ops"))
        .await
        .unwrap();
    assert_eq!(received.state, RequestState::Approved);
    let record = store.request("r-audited").await.unwrap();
    assert_eq!(record.state, RequestState::Approved);
    let audit = store.audit_entries().await.unwrap();
    verify_chain(&audit, Some(key)).unwrap();
    let kinds: Vec<(&str, &str, Option<&str>)> = audit
        .iter()
        .map(|e| (e.kind.as_str(), e.subject.as_str(), e.actor.as_deref()))
        .collect();
    assert_eq!(
        kinds,
        [
            ("request.received", "r-audited", Some("api:ops")),
            ("request.approved", "r-audited", Some("intake")),
        ]
    );
    // The same id again is refused, and audited no more.
    let again = workflow
        .receive(&new_request("r-audited"), Some("api:ops"))
        .await;
    assert!(
        matches!(
            again,
            Err(WorkflowError::Store(StoreError::DuplicateRequest(_)))
        ),
        "{again:?}"
    );
    assert_eq!(store.audit_entries().await.unwrap().len(), 2);
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn intake_is_atomic_with_its_audit_entries_on_sqlite() {
    intake_is_atomic_with_its_audit_entries(None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn intake_is_atomic_with_its_audit_entries_on_postgres() {
    let schema = format!(
        "ops_intake_{}_{}",
        std::process::id(),
        chrono::Utc::now().timestamp_micros()
    );
    let base = postgres_url();
    let sep = if base.contains('?') { '&' } else { '?' };
    intake_is_atomic_with_its_audit_entries(Some(format!("{base}{sep}schema={schema}"))).await;
    let pool = sqlx::PgPool::connect(&base).await.unwrap();
    let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
        "DROP SCHEMA \"{schema}\" CASCADE"
    )))
    .execute(&pool)
    .await;
}
