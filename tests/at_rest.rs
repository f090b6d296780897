//! Personal data at rest: after plan, apply, run and a recorded request, no subject value
//! (identity, collected name, address or card number) is in the bytes of the state database
//! (and its WAL), the spool files, the saved plan or the logs; `requests --subject` still
//! finds the subject; `purge` removes the personal data of a closed request and keeps its
//! evidence.

mod support;

use std::path::Path;

use serde_json::json;
use support::cli::{Output, ProjectDir};
use support::{Reply, TestServer};

const PLAYBOOK: &str = r#"service: crm
connector: api
needs_identities: [email]
dsr:
  access:
    - id: contacts
      http: { method: GET, path: /contacts, query: { email: "{{subject.email}}" } }
      capture: { id: /0/id }
      collect: contacts
  export: { same_as: [access] }
  rectify: { unsupported: "test" }
  restrict:
    - id: freeze
      manual:
        instructions: "Freeze the account of {{subject.email}} in the billing console."
        evidence: [screenshot of the frozen account]
  delete:
    - id: find
      http: { method: GET, path: /contacts, query: { email: "{{subject.email}}" } }
      capture: { id: /0/id }
    - id: erase
      needs: [find]
      http: { method: DELETE, path: "/contacts/{{seg find.id}}" }
      preview: { http: { method: GET, path: "/contacts/{{seg find.id}}" } }
"#;

const EMAIL: &str = "alice.liddell@example.com";

/// Every value of the subject the services hand back, and the identity itself.
const SUBJECT_VALUES: &[&str] = &[
    EMAIL,
    "Alice Liddell",
    "4111111111111111",
    "12 Rabbit Hole Lane",
    "cust-7781-alice",
];

fn record() -> serde_json::Value {
    json!({
        "id": "cust-7781-alice",
        "email": EMAIL,
        "name": "Alice Liddell",
        "card": "4111111111111111",
        "address": "12 Rabbit Hole Lane",
    })
}

async fn project() -> (ProjectDir, TestServer) {
    let server = TestServer::start(|call, _| {
        if call.method == "DELETE" {
            Reply::json(204, json!(null))
        } else if call.path.starts_with("/contacts/") {
            Reply::json(200, record())
        } else {
            Reply::json(200, json!([record()]))
        }
    })
    .await;
    let config = format!(
        "tenants:\n  t1:\n    connectors:\n      api:\n        kind: http\n        base_url: {}\n",
        server.url
    );
    let p = ProjectDir::new()
        .file("dsrctl.yaml", &config)
        .file("policies/crm.yaml", PLAYBOOK)
        .file(
            "requests/delete.yaml",
            &format!("id: r-del\nkind: delete\ntenant: t1\nreceived: 2026-11-02\nsubject:\n  email: {EMAIL}\n"),
        )
        .file(
            "requests/restrict.yaml",
            &format!("id: r-res\nkind: restrict\ntenant: t1\nreceived: 2026-11-02\nsubject:\n  email: {EMAIL}\n"),
        )
        .file(
            "requests/access.yaml",
            &format!("id: r-acc\nkind: access\ntenant: t1\nreceived: 2026-11-02\nsubject:\n  email: {EMAIL}\n"),
        );
    (p, server)
}

/// Runs a command with debug logs on, keeping what it printed by command.
async fn logged(p: &ProjectDir, args: &[&str], logs: &mut Vec<(String, String)>) -> Output {
    let out = p.cmd().args(args).env("DSRCTL_LOG", "debug").run().await;
    logs.push((args.join(" "), format!("{}\n{}", out.stdout, out.stderr)));
    out
}

fn files_under(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            files_under(&path, out);
        } else {
            out.push(path);
        }
    }
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w.eq_ignore_ascii_case(needle.as_bytes()))
}

/// The subject values found in `bytes`, named by where they were.
fn leaks(place: &str, bytes: &[u8]) -> Vec<String> {
    SUBJECT_VALUES
        .iter()
        .filter(|v| contains(bytes, v))
        .map(|v| format!("`{v}` in {place}"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_subject_value_is_stored_in_clear_after_plan_apply_run_and_intake() {
    let (p, _server) = project().await;
    let mut logs = Vec::new();
    // Kept open while other commands write, a reader keeps SQLite from checkpointing the WAL
    // away, so the WAL's bytes are checked too.
    let db = p.path().join(".dsrctl/state.db");
    logged(
        &p,
        &["plan", "requests/delete.yaml", "-o", "plan.json"],
        &mut logs,
    )
    .await
    .expect_code(0);
    let hold = rusqlite::Connection::open(&db).expect("open the state database");
    hold.execute_batch("BEGIN; SELECT count(*) FROM runs;")
        .expect("a read transaction");
    logged(&p, &["apply", "plan.json", "--approve", "dpo"], &mut logs)
        .await
        .expect_code(0);
    logged(&p, &["run", "requests/access.yaml"], &mut logs)
        .await
        .expect_code(0);
    logged(
        &p,
        &[
            "request", "new", "--kind", "export", "--tenant", "t1", "--email", EMAIL,
        ],
        &mut logs,
    )
    .await
    .expect_code(0);
    logged(&p, &["tick"], &mut logs).await.expect_code(0);
    let export_run = p.cmd().args(["status", "--json"]).run().await.json()["run"]
        .as_str()
        .expect("run id")
        .to_owned();
    // A manual task's evidence (a screenshot showing the subject) is kept sealed too.
    logged(
        &p,
        &["run", "requests/restrict.yaml", "--approve", "dpo"],
        &mut logs,
    )
    .await;
    let waiting = p.cmd().args(["status", "--json"]).run().await.json();
    let restrict_run = waiting["run"].as_str().expect("run id").to_owned();
    p.write(
        "freeze.txt",
        &format!("account of Alice Liddell <{EMAIL}> frozen"),
    );
    logged(
        &p,
        &[
            "task",
            "done",
            &restrict_run,
            "crm/freeze",
            "--by",
            "ops",
            "--evidence",
            "freeze.txt",
        ],
        &mut logs,
    )
    .await
    .expect_code(0);
    logged(&p, &["requests"], &mut logs).await.expect_code(0);
    logged(&p, &["status"], &mut logs).await.expect_code(0);

    let wal = p.path().join(".dsrctl/state.db-wal");
    assert!(
        std::fs::metadata(&wal).is_ok_and(|m| m.len() > 0),
        "the WAL should hold the writes made while a reader was open"
    );
    let mut files = vec![p.path().join("plan.json")];
    files_under(&p.path().join(".dsrctl"), &mut files);
    let mut found: Vec<String> = logs
        .iter()
        .flat_map(|(cmd, text)| leaks(&format!("the output of `{cmd}`: {text}"), text.as_bytes()))
        .collect();
    for f in &files {
        let bytes = std::fs::read(f).expect("read");
        found.extend(leaks(&f.display().to_string(), &bytes));
    }
    drop(hold);
    assert!(
        found.is_empty(),
        "personal data in clear:\n{}",
        found.join("\n")
    );
    assert!(
        files
            .iter()
            .any(|f| f.extension().is_some_and(|e| e == "ndjson")),
        "the run should have spooled its records: {files:?}"
    );

    // The data is all there for those who may see it: the package, and a lookup by identity.
    p.cmd()
        .args([
            "report",
            &export_run,
            "--package",
            "out",
            "-o",
            "evidence.md",
        ])
        .run()
        .await
        .expect_code(0);
    let package = std::fs::read_to_string(p.path().join("out/crm/contacts.json")).expect("package");
    assert!(package.contains("Alice Liddell"), "{package}");
    let mine = p
        .cmd()
        .args([
            "requests",
            "--format",
            "json",
            "--subject",
            &format!("email={EMAIL}"),
        ])
        .run()
        .await
        .expect_code(0)
        .json();
    assert_eq!(mine.as_array().map(Vec::len), Some(1), "{mine}");
    let nobody = p
        .cmd()
        .args([
            "requests",
            "--format",
            "json",
            "--subject",
            "email=bob@example.com",
        ])
        .run()
        .await
        .expect_code(0)
        .json();
    assert_eq!(nobody, json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn purge_removes_the_personal_data_of_closed_requests_and_keeps_the_evidence() {
    let (p, _server) = project().await;
    p.cmd()
        .args([
            "request", "new", "--kind", "export", "--tenant", "t1", "--email", EMAIL,
        ])
        .run()
        .await
        .expect_code(0);
    p.cmd().args(["tick"]).run().await.expect_code(0);
    let status = p.cmd().args(["status", "--json"]).run().await.json();
    let run = status["run"].as_str().expect("run id").to_owned();
    let spool = p.path().join(".dsrctl/runs").join(&run);
    assert!(spool.exists(), "the run spooled its records");
    let requests = p
        .cmd()
        .args(["requests", "--format", "json"])
        .run()
        .await
        .json();
    assert_eq!(requests[0]["state"], "completed", "{requests}");
    let report = |p: &ProjectDir| {
        let cmd = p.cmd().args(["report", &run, "--format", "json"]);
        async move { cmd.run().await.expect_code(0).json() }
    };
    let before = report(&p).await;
    assert_eq!(before["totals"]["found"], 1, "{before}");

    // Not yet past the retention date: nothing is purged.
    let out = p
        .cmd()
        .args(["purge", "--closed-before", "2000-01-01"])
        .run()
        .await
        .expect_code(0);
    assert!(out.stdout.contains("0 request(s) purged"), "{}", out.stdout);
    assert!(spool.exists());

    let out = p
        .cmd()
        .args(["purge", "--closed-before", "2999-01-01"])
        .run()
        .await
        .expect_code(0);
    assert!(out.stdout.contains("1 request(s) purged"), "{}", out.stdout);
    assert!(!spool.exists(), "spool files removed");

    // Personal data gone, even for those who may see it.
    let shown = p
        .cmd()
        .args(["--show-personal-data", "status", &run, "--json"])
        .run()
        .await
        .expect_code(0);
    let listed = p
        .cmd()
        .args(["--show-personal-data", "requests", "--format", "json"])
        .run()
        .await
        .expect_code(0);
    let evidence = p
        .cmd()
        .args(["--show-personal-data", "report", &run, "--format", "json"])
        .run()
        .await
        .expect_code(0);
    for text in [&shown.stdout, &listed.stdout, &evidence.stdout] {
        assert!(
            leaks("the purged request", text.as_bytes()).is_empty(),
            "{text}"
        );
    }
    // The evidence stays: the request's state, each step's status and counts, the inputs'
    // digests, the audit log.
    let after = shown.json();
    assert_eq!(after["status"], status["status"], "{after}");
    assert_eq!(after["steps"], status["steps"], "{after}");
    let purged = report(&p).await;
    for field in ["totals", "inputs", "run_status"] {
        assert_eq!(purged[field], before[field], "{field}: {purged}");
    }
    assert_eq!(listed.json()[0]["state"], "completed");
    let audit = p.cmd().args(["audit", "export"]).run().await.expect_code(0);
    assert!(audit.stdout.contains("request.purged"), "{}", audit.stdout);
    p.cmd().args(["audit", "verify"]).run().await.expect_code(0);

    // Purged once: a second purge has nothing left to do.
    let again = p
        .cmd()
        .args(["purge", "--closed-before", "2999-01-01"])
        .run()
        .await
        .expect_code(0);
    assert!(
        again.stdout.contains("0 request(s) purged"),
        "{}",
        again.stdout
    );
}
