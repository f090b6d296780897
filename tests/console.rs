//! The operator console of `dsrctl serve --listen`, in headless Chromium driven by
//! playwright-core (`tests/console/console.cjs`): sign in, find the overdue request, approve
//! it, complete its manual task with an uploaded file, see the run finish and download the
//! evidence report; another tenant's token gets 404 for the request's URL; forms without the
//! CSRF token are refused; identities masked for a role without personal data; each page
//! screenshotted and checked with axe-core.
//!
//! Needs `chromium` (`DSRCTL_CHROMIUM`, else on PATH), `node`, and `npm ci` (playwright-core,
//! axe-core). `DSRCTL_CONSOLE_SCREENSHOTS=DIR` keeps the screenshots there.

mod support;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};
use support::items::{ItemServer, write_project};
use support::tools::missing;
use tokio::io::{AsyncBufReadExt, BufReader};

const PLAYBOOK: &str = r#"
service: things
connector: api
needs_identities: [email]
dsr:
  access:
    - id: list
      http: { method: GET, path: /things/items, query: { owner: "{{subject.email}}", n: "2" } }
      collect: items
  export: { same_as: [access] }
  rectify: { unsupported: "test" }
  restrict: { unsupported: "test" }
  delete:
    - id: list
      http: { method: GET, path: /things/items, query: { owner: "{{subject.email}}", n: "2" } }
      capture: { ids: /value }
    - id: alerts
      manual:
        instructions: "Remove {{subject.email}} from every alert in IoT Central app contoso-fleet."
        evidence: [screenshot of the alert list]
        assignee: iot-ops
    - id: drop
      needs: [list, alerts]
      for_each: list.ids
      http: { method: DELETE, path: "/things/items/{{seg item.id}}" }
      absent_on: [404]
      preview: item
"#;

const OPS: &str = "ops-secret-0123456789abcdef";
const REVIEW: &str = "review-secret-0123456789abcdef";
const OTHER: &str = "t2-secret-0123456789abcdef";

/// Two tenants; t1's operations team (operator, approver, auditor), t1's reviewer (approver
/// and auditor: no personal data), and a token of t2 with every role.
fn project(dir: &Path, base_url: &str) {
    write_project(dir, base_url, &[("things", PLAYBOOK.to_owned())]);
    let config = std::fs::read_to_string(dir.join("dsrctl.yaml")).unwrap();
    let t2 = config
        .lines()
        .skip(1)
        .map(|l| l.replacen("t1:", "t2:", 1))
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(
        dir.join("dsrctl.yaml"),
        format!(
            "{config}{t2}\napi:\n  max_upload_bytes: 65536\n  tokens:\n    \
             - {{ name: ops, secret: {{ env: TEST_OPS_TOKEN }}, tenants: [t1], roles: [operator, approver, auditor] }}\n    \
             - {{ name: review, secret: {{ env: TEST_REVIEW_TOKEN }}, tenants: [t1], roles: [approver, auditor] }}\n    \
             - {{ name: other, secret: {{ env: TEST_OTHER_TOKEN }}, tenants: [t2], roles: [intake, operator, approver, auditor] }}\n"
        ),
    )
    .unwrap();
}

/// The browser, node and the npm packages, or `None` after saying what is missing.
fn tools(root: &Path) -> Option<PathBuf> {
    let chromium = std::env::var_os("DSRCTL_CHROMIUM")
        .map(PathBuf::from)
        .or_else(|| which("chromium"));
    let Some(chromium) = chromium.filter(|p| p.exists()) else {
        missing(
            "chromium",
            "install Debian's `chromium` or set DSRCTL_CHROMIUM",
        );
        return None;
    };
    if which("node").is_none() {
        missing("node", "install Node.js");
        return None;
    }
    for package in ["playwright-core", "axe-core"] {
        if !root.join("node_modules").join(package).exists() {
            missing(package, "run `npm ci`");
            return None;
        }
    }
    Some(chromium)
}

fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(name))
            .find(|p| p.is_file())
    })
}

/// `dsrctl serve --listen 127.0.0.1:0`, killed when dropped.
struct Serve {
    child: tokio::process::Child,
    base: String,
}

impl Serve {
    async fn start(dir: &Path) -> Serve {
        let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_dsrctl"))
            .arg("-C")
            .arg(dir)
            .args([
                "serve",
                "--listen",
                "127.0.0.1:0",
                "--every",
                "200ms",
                "--worker",
                "w-console",
            ])
            .env("TEST_OPS_TOKEN", OPS)
            .env("TEST_REVIEW_TOKEN", REVIEW)
            .env("TEST_OTHER_TOKEN", OTHER)
            .env("DSRCTL_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
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
            panic!("serve ended without listening");
        })
        .await
        .expect("serve listens within a minute");
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Serve { child, base }
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
    }
}

async fn create(base: &str, token: &str, body: Value) -> String {
    let resp = reqwest::Client::new()
        .post(format!("{base}/v1/requests"))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let v: Value = resp.json().await.unwrap();
    v["id"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_in_headless_chromium() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let Some(chromium) = tools(&root) else {
        return;
    };
    let server = ItemServer::start_background(Duration::ZERO);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("project");
    std::fs::create_dir_all(&dir).unwrap();
    project(&dir, &server.url());
    let serve = Serve::start(&dir).await;

    let today = chrono::Utc::now().date_naive();
    let long_ago = (today - chrono::Days::new(45)).to_string();
    let recent = (today - chrono::Days::new(2)).to_string();
    // The overdue one (a 30-day GDPR deadline, 45 days ago), an access request (which needs
    // no approval: it runs at once), a deletion awaiting approval, and one of t2.
    let overdue = create(
        &serve.base,
        OPS,
        json!({"id": "del-overdue", "kind": "delete", "received": long_ago,
               "subject": {"email": "alice@example.com"}}),
    )
    .await;
    let later = create(
        &serve.base,
        OPS,
        json!({"id": "acc-later", "kind": "access", "received": recent,
               "subject": {"email": "bob@example.com"}}),
    )
    .await;
    let pending = create(
        &serve.base,
        OPS,
        json!({"id": "del-pending", "kind": "delete", "received": recent,
               "subject": {"email": "dave@example.com"}}),
    )
    .await;
    let foreign = create(
        &serve.base,
        OTHER,
        json!({"id": "t2-secret-request", "kind": "delete", "received": recent,
               "subject": {"email": "carol@example.com"}}),
    )
    .await;

    let shots = match std::env::var_os("DSRCTL_CONSOLE_SCREENSHOTS") {
        Some(d) => PathBuf::from(d),
        None => tmp.path().join("screenshots"),
    };
    std::fs::create_dir_all(&shots).unwrap();
    let out = tokio::time::timeout(
        Duration::from_secs(240),
        tokio::process::Command::new("node")
            .arg(root.join("tests/console/console.cjs"))
            .current_dir(&root)
            .env("CHROMIUM", &chromium)
            .env("BASE", &serve.base)
            .env("SHOTS", &shots)
            .env("OPS_TOKEN", OPS)
            .env("REVIEW_TOKEN", REVIEW)
            .env("OTHER_TOKEN", OTHER)
            .env("OVERDUE", &overdue)
            .env("LATER", &later)
            .env("PENDING", &pending)
            .env("FOREIGN", &foreign)
            .env("SUBJECT_EMAIL", "alice@example.com")
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("the browser test ends within 4 minutes")
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    eprintln!("{stderr}");
    assert!(out.status.success(), "the browser scenarios failed");
    assert!(
        stdout.contains("all scenarios passed"),
        "the script did not finish"
    );
    // Each page was screenshotted.
    for name in [
        "01-sign-in",
        "02-queue",
        "03-request",
        "05-tasks",
        "07-request-completed",
        "08-audit",
        "10-queue-320px",
    ] {
        let file = shots.join(format!("{name}.png"));
        assert!(
            std::fs::metadata(&file).is_ok_and(|m| m.len() > 1000),
            "{} missing",
            file.display()
        );
    }
    // The approval and the task are in the audit log in the token's name.
    let audit = std::process::Command::new(env!("CARGO_BIN_EXE_dsrctl"))
        .arg("-C")
        .arg(&dir)
        .args(["audit", "export", "--format", "jsonl"])
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&audit.stdout);
    assert!(
        log.lines()
            .any(|l| l.contains("request.approved") && l.contains("api:ops")),
        "{log}"
    );
    assert!(
        log.lines()
            .any(|l| l.contains("task.done") && l.contains("api:ops")),
        "{log}"
    );
    drop(serve);
}
