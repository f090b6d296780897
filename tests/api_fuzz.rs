//! The HTTP API fuzzed from its committed OpenAPI document (`schemas/openapi.json`) with
//! schemathesis, against `dsrctl serve --listen` on an ephemeral port: no answer may be a
//! server error, every answer must be one the document declares, of its declared content
//! type, headers and schema, data the document forbids must be refused, and so must calls
//! without the token. Bounded: 60 examples per operation and phase, well under two minutes.
//! schemathesis comes from PyPI (`tests/requirements-fuzz.txt`, installed by `.ci/run`
//! into `.venv-fuzz`; `DSRCTL_SCHEMATHESIS` points at another copy); without it the test
//! fails under CI and is skipped otherwise.

mod support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use support::items::{ItemServer, two_tenants, with_a_manual_step};
use support::serve::Serve;
use support::tools::missing;

const TOKEN: &str = "fuzz-secret-0123456789abcdef";

/// Examples per operation and phase.
const MAX_EXAMPLES: &str = "60";

/// The longest the run may take.
const BUDGET: Duration = Duration::from_secs(110);

fn schemathesis() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("DSRCTL_SCHEMATHESIS") {
        return Some(PathBuf::from(p));
    }
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv-fuzz/bin/schemathesis");
    venv.exists().then_some(venv)
}

/// A project of two tenants whose token `fuzz` has every role in `t1`, and the DRP
/// endpoints configured.
fn project(dir: &Path, base_url: &str) {
    let (config, t2) = two_tenants(dir, base_url, &with_a_manual_step(""));
    std::fs::write(
        dir.join("dsrctl.yaml"),
        format!(
            "{config}{t2}\napi:\n  tokens:\n    \
             - {{ name: fuzz, secret: {{ env: TEST_FUZZ_TOKEN }}, tenants: [t1], roles: [intake, operator, approver, auditor] }}\n\
             drp:\n  business_id: CONTOSO\n  tenant: t1\n  agents:\n    \
             - {{ id: AGENT, verify_key: \"{}\" }}\n",
            hex::encode(
                ed25519_dalek::SigningKey::from_bytes(&[3u8; 32])
                    .verifying_key()
                    .to_bytes()
            )
        ),
    )
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_answers_fuzzed_calls_as_its_openapi_document_says() {
    let Some(tool) = schemathesis() else {
        missing(
            "schemathesis",
            "install it with `python3 -m venv .venv-fuzz && .venv-fuzz/bin/pip install -r tests/requirements-fuzz.txt` or set DSRCTL_SCHEMATHESIS",
        );
        return;
    };
    let server = ItemServer::start_background(Duration::ZERO);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    project(dir, &server.url());
    let serve = Serve::start(dir, "w-fuzz", &[("TEST_FUZZ_TOKEN", TOKEN)]).await;
    let schema = Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas/openapi.json");
    let run = tokio::process::Command::new(&tool)
        .arg("run")
        .arg(&schema)
        .args(["--url", &serve.base])
        .args(["--header", &format!("Authorization: Bearer {TOKEN}")])
        // Every check but the acceptance of all schema-valid data: a request's validity
        // (identities a playbook needs, a CSV's columns) is more than a JSON Schema says,
        // and the API answers 400 or 422 for it, as documented.
        .args([
            "--checks",
            "all",
            "--exclude-checks",
            "positive_data_acceptance",
        ])
        .args(["--phases", "examples,coverage,fuzzing"])
        .args(["--max-examples", MAX_EXAMPLES])
        .args(["--seed", "20261201"])
        .args(["--workers", "2"])
        .args(["--request-timeout", "10"])
        .args(["--suppress-health-check", "all"])
        .args(["--report-dir"])
        .arg(dir.join("schemathesis-report"))
        .env("NO_COLOR", "1")
        .env("SCHEMATHESIS_HOOKS", "")
        .current_dir(dir)
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(BUDGET, run)
        .await
        .expect("schemathesis finishes within its budget")
        .expect("schemathesis runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "schemathesis found problems:\n{stdout}\n{stderr}"
    );
    assert!(
        stdout.contains("passed"),
        "schemathesis tested nothing:\n{stdout}\n{stderr}"
    );
}

/// What schemathesis found, kept as plain calls: each answer must be a status the OpenAPI
/// document declares for the operation, with a JSON error body. The reason of approve,
/// decline and extend with an unknown field, and an unknown `state` filter, were answered
/// 400 undeclared; a repeated query parameter or a path that is not UTF-8 got axum's
/// `text/plain` refusal instead of the API's JSON error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_found_by_fuzzing_are_declared_and_json() {
    let server = ItemServer::start_background(Duration::ZERO);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    project(dir, &server.url());
    let serve = Serve::start(dir, "w-fuzz-found", &[("TEST_FUZZ_TOKEN", TOKEN)]).await;
    let doc: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas/openapi.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let http = reqwest::Client::new();
    let unknown = r#"{"reason": null, "x-schemathesis-unknown-property": 42}"#;
    // The approval's body is optional, `null` included, as the document says: it was
    // refused with 400.
    let approve = http
        .post(format!("{}/v1/requests/0/approve", serve.base))
        .bearer_auth(TOKEN)
        .header("content-type", "application/json")
        .body("null")
        .send()
        .await
        .unwrap();
    assert_eq!(
        approve.status().as_u16(),
        404,
        "{}",
        approve.text().await.unwrap()
    );
    for (method, template, path, body, error_key) in [
        ("get", "/v1/requests", "/v1/requests?state=", None, "error"),
        (
            "get",
            "/v1/requests",
            "/v1/requests?state=received&state=declined",
            None,
            "error",
        ),
        (
            "post",
            "/v1/requests/{id}/approve",
            "/v1/requests/0/approve",
            Some(unknown),
            "error",
        ),
        (
            "post",
            "/v1/requests/{id}/decline",
            "/v1/requests/0/decline",
            Some(unknown),
            "error",
        ),
        (
            "post",
            "/v1/requests/{id}/extend",
            "/v1/requests/0/extend",
            Some(unknown),
            "error",
        ),
        (
            "post",
            "/v1/runs/{run}/tasks/{step}/done",
            "/v1/runs/r/tasks/s/done?note=a&note=b",
            Some(""),
            "error",
        ),
        (
            "get",
            "/v1/requests/{id}",
            "/v1/requests/%FF",
            None,
            "error",
        ),
        (
            "get",
            "/v1/requests/{id}/runs",
            "/v1/requests/%FF/runs",
            None,
            "error",
        ),
        ("get", "/v1/runs/{run}", "/v1/runs/%FF", None, "error"),
        (
            "get",
            "/v1/runs/{run}/package",
            "/v1/runs/%FF/package",
            None,
            "error",
        ),
        (
            "get",
            "/v1/runs/{run}/report",
            "/v1/runs/%FF/report",
            None,
            "error",
        ),
        ("get", "/v1/agent/{agent_id}", "/v1/agent/%FF", None, "code"),
        (
            "post",
            "/v1/agent/{agent_id}",
            "/v1/agent/%FF",
            Some("x"),
            "code",
        ),
        (
            "delete",
            "/v1/data-rights-request/{request_id}",
            "/v1/data-rights-request/%FF",
            Some("x"),
            "code",
        ),
        (
            "get",
            "/v1/data-rights-request/{request_id}",
            "/v1/data-rights-request/%FF",
            None,
            "code",
        ),
    ] {
        let mut req = http
            .request(
                reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap(),
                format!("{}{path}", serve.base),
            )
            .bearer_auth(TOKEN);
        if let Some(b) = body {
            req = req
                .header("content-type", "application/json")
                .body(b.to_owned());
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let content_type = resp
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        let text = resp.text().await.unwrap();
        let declared = &doc["paths"][template][method]["responses"];
        assert!(
            declared.get(status.to_string()).is_some(),
            "{method} {path}: {status} is not declared ({declared}): {text}"
        );
        assert_eq!(status, 400, "{method} {path}: {text}");
        assert!(
            content_type.starts_with("application/json"),
            "{method} {path}: {content_type} {text}"
        );
        let body: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert!(body[error_key].is_string(), "{method} {path}: {body}");
    }
}
