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
use support::items::{ItemServer, two_tenants, with_a_manual_step};
use support::serve::Serve;
use support::tools::missing;
use tokio::io::{AsyncBufReadExt, BufReader};

const OPS: &str = "ops-secret-0123456789abcdef";
const REVIEW: &str = "review-secret-0123456789abcdef";
const OTHER: &str = "t2-secret-0123456789abcdef";

/// Two tenants; t1's operations team (operator, approver, auditor), t1's reviewer (approver
/// and auditor: no personal data), and a token of t2 with every role.
fn project(dir: &Path, base_url: &str) {
    let (config, t2) = two_tenants(dir, base_url, &with_a_manual_step(""));
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
    let serve = Serve::start(
        &dir,
        "w-console",
        &[
            ("TEST_OPS_TOKEN", OPS),
            ("TEST_REVIEW_TOKEN", REVIEW),
            ("TEST_OTHER_TOKEN", OTHER),
        ],
    )
    .await;

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

/// The value of cookie `name` set by a response.
fn set_cookie(resp: &reqwest::Response, name: &str) -> Option<String> {
    resp.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.split(';').next()?.split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

/// `dsrctl demo --serve`: the console on the example project, signed in with the token it
/// prints, shows sample requests in each state the demo records.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_serve_opens_the_console_on_sample_requests() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("demo");
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_dsrctl"))
        .arg("demo")
        .arg("--dir")
        .arg(&dir)
        .args(["--serve", "127.0.0.1:0"])
        .env("DSRCTL_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let (base, token) = tokio::time::timeout(Duration::from_secs(180), async {
        let mut token = None;
        while let Some(line) = lines.next_line().await.unwrap() {
            if let Some(t) = line.strip_prefix("Sign in with the API token ") {
                token = Some(t.trim().to_owned());
            }
            if let Some(url) = line.strip_prefix("listening on ") {
                return (url.trim().to_owned(), token.expect("the token is printed"));
            }
        }
        panic!("demo --serve ended without listening");
    })
    .await
    .expect("demo --serve listens within 3 minutes");
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    assert_eq!(
        std::fs::read_to_string(dir.join("console.token"))
            .unwrap()
            .trim(),
        token
    );

    let (http, session) = sign_in(&base, &token).await;
    // The worker finishes the completed sample's run shortly after the console opens.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let queue = http
            .get(format!("{base}/console"))
            .header("cookie", format!("dsrctl_console={session}"))
            .send()
            .await
            .unwrap();
        assert_eq!(queue.status(), 200);
        let page = queue.text().await.unwrap();
        let states: Vec<&str> = ["received", "waiting", "completed", "declined", "failed"]
            .into_iter()
            .filter(|s| !page.contains(&format!("state-{s}")))
            .collect();
        if states.is_empty() {
            assert!(page.contains("days overdue"), "{page}");
            assert!(page.contains("(extended)"), "{page}");
            assert_eq!(page.matches("href=\"/console/requests/").count(), 10);
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no request {states:?} in the queue: {page}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let _ = child.start_kill();
}

/// Signs in to the console at `base` with an API token, as a browser without JavaScript
/// does: returns a client that does not follow redirects and the session cookie's value.
async fn sign_in(base: &str, token: &str) -> (reqwest::Client, String) {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let form = http
        .get(format!("{base}/console/login"))
        .send()
        .await
        .unwrap();
    assert_eq!(form.status(), 200);
    let csrf = set_cookie(&form, "dsrctl_console_signin").expect("the sign-in cookie");
    let html = form.text().await.unwrap();
    assert!(html.contains(&format!("value=\"{csrf}\"")), "{html}");
    let signed = http
        .post(format!("{base}/console/login"))
        .header("cookie", format!("dsrctl_console_signin={csrf}"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("csrf={csrf}&token={token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(signed.status(), 303);
    let session = set_cookie(&signed, "dsrctl_console").expect("the session cookie");
    (http, session)
}

/// The CSRF token of the forms of a console page.
fn csrf_of(html: &str) -> String {
    let at = html
        .find("name=\"csrf\" value=\"")
        .expect("a form with its CSRF token");
    let rest = &html[at + "name=\"csrf\" value=\"".len()..];
    rest[..rest.find('"').unwrap()].to_owned()
}

/// A dry run whose service cannot be read is shown incomplete in the console, naming the step
/// and why, and never as "No changes" (the console's view of `dsrctl plan`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_that_could_not_read_is_shown_incomplete() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("project");
    std::fs::create_dir_all(&dir).unwrap();
    // Nothing listens there: every read fails.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    project(&dir, &url);
    let serve = Serve::start(
        &dir,
        "w-console-dry",
        &[
            ("TEST_OPS_TOKEN", OPS),
            ("TEST_REVIEW_TOKEN", REVIEW),
            ("TEST_OTHER_TOKEN", OTHER),
        ],
    )
    .await;
    let today = chrono::Utc::now().date_naive().to_string();
    let id = create(
        &serve.base,
        OPS,
        json!({"id": "del-unreadable", "kind": "delete", "received": today,
               "subject": {"email": "erin@example.com"}}),
    )
    .await;
    let (http, session) = sign_in(&serve.base, OPS).await;
    let cookie = format!("dsrctl_console={session}");
    let page = http
        .get(format!("{}/console/requests/{id}", serve.base))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("Preview the changes"), "{page}");
    let csrf = csrf_of(&page);
    let posted = http
        .post(format!("{}/console/requests/{id}/dry-run", serve.base))
        .header("cookie", &cookie)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("csrf={csrf}"))
        .send()
        .await
        .unwrap();
    assert_eq!(posted.status(), 303, "{}", posted.text().await.unwrap());
    let to = posted.headers()["location"].to_str().unwrap().to_owned();
    assert!(
        to.starts_with("/console/runs/") && to.ends_with("/changes"),
        "{to}"
    );
    let changes = http
        .get(format!("{}{to}", serve.base))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(changes.status(), 200);
    let html = changes.text().await.unwrap();
    assert!(
        html.contains("Incomplete: 2 step(s) could not be previewed"),
        "{html}"
    );
    assert!(html.contains("<code>things/list</code> (failed)"), "{html}");
    assert!(
        html.contains("<code>things/drop</code> (blocked)"),
        "{html}"
    );
    // The manual step is previewed with its instructions as the person gets them.
    assert!(
        html.contains("Remove erin@example.com from every alert"),
        "{html}"
    );
    assert!(!html.contains("No changes"), "{html}");
    assert!(
        html.contains("INCOMPLETE"),
        "the summary line says so too: {html}"
    );
    // Without the CSRF token nothing runs.
    let forged = http
        .post(format!("{}/console/requests/{id}/dry-run", serve.base))
        .header("cookie", &cookie)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("csrf=")
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403);
    drop(serve);
}

/// Two `serve` processes sharing one store (two machines behind one address): a person
/// signed in through one is signed in on the other, and signing out on either ends the
/// session on both; a restart keeps it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_holds_on_every_worker_sharing_the_store() {
    let server = ItemServer::start_background(Duration::ZERO);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("project");
    std::fs::create_dir_all(&dir).unwrap();
    project(&dir, &server.url());
    let env = [
        ("TEST_OPS_TOKEN", OPS),
        ("TEST_REVIEW_TOKEN", REVIEW),
        ("TEST_OTHER_TOKEN", OTHER),
    ];
    let a = Serve::start(&dir, "w-console-a", &env).await;
    let b = Serve::start(&dir, "w-console-b", &env).await;
    let (http, session) = sign_in(&a.base, OPS).await;
    let cookie = format!("dsrctl_console={session}");
    let queue = |base: String| {
        let http = http.clone();
        let cookie = cookie.clone();
        async move {
            let r = http
                .get(format!("{base}/console"))
                .header("cookie", &cookie)
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            (status, r.text().await.unwrap())
        }
    };
    let (status, on_a) = queue(a.base.clone()).await;
    assert_eq!(status, 200, "{on_a}");
    let (status, on_b) = queue(b.base.clone()).await;
    assert_eq!(status, 200, "signed in on the other worker too: {on_b}");
    // The forms of one worker's pages are accepted by the other.
    assert_eq!(csrf_of(&on_a), csrf_of(&on_b));

    // A restart of the worker that signed the person in keeps the session.
    drop(a);
    let a = Serve::start(&dir, "w-console-a", &env).await;
    let (status, page) = queue(a.base.clone()).await;
    assert_eq!(status, 200, "{page}");

    // Signed out on b: signed out on a as well.
    let out = http
        .post(format!("{}/console/logout", b.base))
        .header("cookie", &cookie)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("csrf={}", csrf_of(&on_b)))
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), 303);
    for base in [a.base.clone(), b.base.clone()] {
        let (status, _) = queue(base.clone()).await;
        assert_eq!(status, 303, "{base} still knew the session");
    }
}
