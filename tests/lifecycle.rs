//! The request lifecycle end to end: intake, approval, a manual task, a deferred purge
//! check driven by ticks on a controllable clock; deadlines; the audit log.

mod support;

use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use dsrctl::engine::Clock;
use dsrctl::journal::{RequestState, RunStatus, StepStatus, sha256_hex};
use dsrctl::load::load_project;
use dsrctl::store::{Store, verify_chain};
use dsrctl::workflow::Scheduler;
use serde_json::Value;
use support::items::{ItemServer, write_project};

const PLAYBOOK: &str = r#"
service: things
connector: api
needs_identities: [email]
dsr:
  access: { unsupported: "test" }
  export: { unsupported: "test" }
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
      verify:
        http: { method: GET, path: "/things/items/{{seg item.id}}" }
        expect_status: [404]
        after: 30d
"#;

fn dsrctl(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_dsrctl"))
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("DSRCTL_LOG", "warn")
        .output()
        .unwrap()
}

fn ok(dir: &Path, args: &[&str]) -> String {
    let out = dsrctl(dir, args);
    assert!(
        out.status.success(),
        "dsrctl {args:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The project's store, MACing audit entries with the key the CLI made, as the CLI does.
async fn open_store(dir: &Path) -> Arc<dyn Store> {
    let project = load_project(dir).unwrap();
    dsrctl::workflow::open_store(&project, &dir.join(".dsrctl"))
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approval_then_manual_task_then_deferred_purge_check_complete_by_ticks() {
    let server = ItemServer::start_background(Duration::ZERO);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    write_project(dir, &server.url(), &[("things", PLAYBOOK.to_owned())]);
    let today = Utc::now().date_naive().to_string();
    ok(
        dir,
        &[
            "request",
            "new",
            "--kind",
            "delete",
            "--tenant",
            "t1",
            "--email",
            "alice@example.com",
            "--id",
            "r-1",
            "--received",
            &today,
        ],
    );

    let project = Arc::new(load_project(dir).unwrap());
    let store = open_store(dir).await;
    let clock = Clock::fixed(Utc::now());
    let scheduler =
        Scheduler::new(project, store.clone(), dir.join(".dsrctl"), "w1").with_clock(clock.clone());

    // Not approved yet: a tick leaves it alone.
    let report = scheduler.tick().await.unwrap();
    assert!(report.runs.is_empty(), "{report:?}");
    assert_eq!(
        store.request("r-1").await.unwrap().state,
        RequestState::Received
    );

    ok(dir, &["request", "approve", "r-1", "--by", "dpo@contoso"]);
    let report = scheduler.tick().await.unwrap();
    assert_eq!(report.runs.len(), 1, "{report:?}");
    assert!(report.runs[0].started);
    assert_eq!(report.runs[0].status, RunStatus::Waiting);
    let run = report.runs[0].run.clone();
    assert_eq!(
        store.request("r-1").await.unwrap().state,
        RequestState::Waiting
    );
    assert!(
        server.delete_counts().is_empty(),
        "nothing is erased before the manual task"
    );

    // The task list shows the rendered instructions, masked unless asked for.
    let tasks: Value =
        serde_json::from_str(&ok(dir, &["task", "list", "--format", "json"])).unwrap();
    let tasks = tasks.as_array().unwrap();
    assert_eq!(tasks.len(), 1, "{tasks:?}");
    assert_eq!(tasks[0]["run"], run.as_str());
    assert_eq!(tasks[0]["step"], "things/alerts");
    assert_eq!(tasks[0]["assignee"], "iot-ops");
    assert_eq!(
        tasks[0]["evidence_wanted"][0],
        "screenshot of the alert list"
    );
    let masked = tasks[0]["instructions"].as_str().unwrap();
    assert!(masked.contains("IoT Central app contoso-fleet"), "{masked}");
    assert!(!masked.contains("alice@example.com"), "{masked}");
    let shown = ok(dir, &["task", "list", "--show-personal-data"]);
    assert!(
        shown.contains("Remove alice@example.com from every alert"),
        "{shown}"
    );

    // A tick before the task is done changes nothing.
    let report = scheduler.tick().await.unwrap();
    assert!(report.runs.is_empty(), "{report:?}");

    let evidence = dir.join("alerts.png");
    std::fs::write(&evidence, b"screenshot bytes").unwrap();
    let out = ok(
        dir,
        &[
            "task",
            "done",
            &run,
            "alerts",
            "--by",
            "bob@contoso",
            "--evidence",
            evidence.to_str().unwrap(),
            "--note",
            "removed from 3 alerts",
        ],
    );
    assert!(out.contains("recorded things/alerts"), "{out}");
    // Continuing the run erased both items; their purge check waits 30 days.
    let counts = server.delete_counts();
    assert_eq!(counts.len(), 2, "{counts:?}");
    assert!(counts.values().all(|n| *n == 1), "{counts:?}");
    assert_eq!(store.run(&run).await.unwrap().status, RunStatus::Waiting);
    assert_eq!(
        store.request("r-1").await.unwrap().state,
        RequestState::Waiting
    );

    let outcomes = store.outcomes(&run).await.unwrap();
    let task = outcomes
        .iter()
        .find(|o| o.instance == "things/alerts")
        .unwrap();
    assert_eq!(task.status, StepStatus::Succeeded);
    let record = task.task.as_ref().unwrap();
    assert_eq!(record.by, "bob@contoso");
    assert_eq!(record.note.as_deref(), Some("removed from 3 alerts"));
    assert_eq!(record.evidence[0].sha256, sha256_hex(b"screenshot bytes"));
    assert_eq!(
        store
            .evidence_content(&record.evidence[0].stored_at)
            .await
            .unwrap(),
        b"screenshot bytes"
    );

    // Not due yet: the purge check waits in the store, no process sleeps.
    clock.advance(chrono::Duration::days(29));
    assert!(scheduler.tick().await.unwrap().runs.is_empty());
    clock.advance(chrono::Duration::days(2));
    let report = scheduler.tick().await.unwrap();
    assert_eq!(report.runs.len(), 1, "{report:?}");
    assert!(!report.runs[0].started);
    assert_eq!(report.runs[0].status, RunStatus::Completed);
    assert_eq!(
        store.request("r-1").await.unwrap().state,
        RequestState::Completed
    );
    let verified = server
        .calls()
        .iter()
        .filter(|c| c.method == "GET" && c.path.starts_with("/things/items/"))
        .count();
    assert_eq!(verified, 2, "each purge is checked once");
    assert!(server.delete_counts().values().all(|n| *n == 1));
    assert!(scheduler.tick().await.unwrap().runs.is_empty());

    // Every state change is in the audit log, with its actor.
    let audit = store.audit_entries().await.unwrap();
    // The CLI MACs entries with the project's audit key (made on first use).
    let key = std::fs::read_to_string(dir.join(".dsrctl/audit.key")).unwrap();
    verify_chain(&audit, Some(key.trim().as_bytes())).unwrap();
    let kinds: Vec<(&str, Option<&str>)> = audit
        .iter()
        .map(|e| (e.kind.as_str(), e.actor.as_deref()))
        .collect();
    for expected in [
        ("request.received", None),
        ("request.approved", Some("dpo@contoso")),
        ("request.running", None),
        ("request.waiting", None),
        ("task.done", Some("bob@contoso")),
        ("request.completed", None),
    ] {
        assert!(
            kinds.contains(&expected),
            "{expected:?} missing in {kinds:?}"
        );
    }
    store.close().await;
}

#[test]
fn requests_lists_deadlines_for_gdpr_and_ccpa_with_extensions() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    write_project(
        dir,
        "http://127.0.0.1:9",
        &[("things", PLAYBOOK.to_owned())],
    );
    let new = |id: &str, jurisdiction: &str, received: &str| {
        ok(
            dir,
            &[
                "request",
                "new",
                "--kind",
                "access",
                "--tenant",
                "t1",
                "--email",
                "x@example.com",
                "--id",
                id,
                "--jurisdiction",
                jurisdiction,
                "--received",
                received,
            ],
        );
    };
    new("gdpr-jan31", "gdpr", "2026-01-31"); // month end: 28 February
    new("gdpr-leap", "gdpr", "2028-01-31"); // leap year: 29 February
    new("gdpr-ext", "gdpr", "2026-11-30"); // extended by two months: 28 February 2027
    new("ccpa", "ccpa", "2026-01-01"); // 45 days
    new("ccpa-ext", "ccpa", "2028-02-01"); // 90 days across 29 February
    ok(
        dir,
        &[
            "request",
            "extend",
            "gdpr-ext",
            "--reason",
            "complex: 14 systems",
        ],
    );
    ok(
        dir,
        &["request", "extend", "ccpa-ext", "--reason", "many requests"],
    );
    let again = dsrctl(dir, &["request", "extend", "ccpa-ext", "--reason", "more"]);
    assert_eq!(again.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&again.stderr).contains("already extended"));

    let rows: Value = serde_json::from_str(&ok(
        dir,
        &["requests", "--format", "json", "--today", "2026-02-20"],
    ))
    .unwrap();
    let rows = rows.as_array().unwrap();
    let got: Vec<(&str, &str, i64)> = rows
        .iter()
        .map(|r| {
            (
                r["id"].as_str().unwrap(),
                r["deadline"].as_str().unwrap(),
                r["days_left"].as_i64().unwrap(),
            )
        })
        .collect();
    // Overdue first, then by deadline.
    assert_eq!(
        got,
        [
            ("ccpa", "2026-02-15", -5),
            ("gdpr-jan31", "2026-02-28", 8),
            ("gdpr-ext", "2027-02-28", 373),
            ("gdpr-leap", "2028-02-29", 739),
            ("ccpa-ext", "2028-05-01", 801),
        ]
    );
    assert_eq!(rows[0]["overdue"], true);
    assert_eq!(rows[2]["extended"], true);
    assert_eq!(rows[2]["extension_reason"], "complex: 14 systems");
    let text = ok(dir, &["requests", "--today", "2026-02-20"]);
    assert!(text.contains("OVERDUE by 5 days"), "{text}");

    // Declining needs the lifecycle to allow it; a declined request ends the list.
    ok(
        dir,
        &[
            "request",
            "decline",
            "ccpa",
            "--reason",
            "identity not verified",
        ],
    );
    let rows: Value = serde_json::from_str(&ok(dir, &["requests", "--format", "json"])).unwrap();
    let last = rows.as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["id"], "ccpa");
    assert_eq!(last["state"], "declined");
    assert_eq!(last["reason"], "identity not verified");
    let approve = dsrctl(dir, &["request", "approve", "ccpa", "--by", "x"]);
    assert_eq!(
        approve.status.code(),
        Some(1),
        "a declined request stays declined"
    );
}

#[test]
fn request_new_validates_like_a_request_file_and_delete_waits_for_approval() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    write_project(
        dir,
        "http://127.0.0.1:9",
        &[("things", PLAYBOOK.to_owned())],
    );
    let out = ok(
        dir,
        &[
            "request",
            "new",
            "--kind",
            "delete",
            "--tenant",
            "t1",
            "--email",
            "a@b.example",
            "--id",
            "d1",
        ],
    );
    assert!(out.contains("request approve d1"), "{out}");
    let unknown = dsrctl(
        dir,
        &[
            "request",
            "new",
            "--kind",
            "access",
            "--tenant",
            "nope",
            "--email",
            "a@b.example",
        ],
    );
    assert_eq!(unknown.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("defined tenants: t1"));
    std::fs::write(
        dir.join("r.yaml"),
        "id: f1\nkind: export\ntenant: t1\nreceived: 2026-11-02\nsubject: { email: c@d.example }\n",
    )
    .unwrap();
    let out = ok(dir, &["request", "new", "--file", "r.yaml"]);
    assert!(out.contains("approved on intake"), "{out}");
    let dup = dsrctl(dir, &["request", "new", "--file", "r.yaml"]);
    assert_eq!(dup.status.code(), Some(1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_verify_catches_a_tampered_entry() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    write_project(
        dir,
        "http://127.0.0.1:9",
        &[("things", PLAYBOOK.to_owned())],
    );
    for id in ["a1", "a2", "a3"] {
        ok(
            dir,
            &[
                "request",
                "new",
                "--kind",
                "delete",
                "--tenant",
                "t1",
                "--email",
                "a@b.example",
                "--id",
                id,
            ],
        );
    }
    ok(dir, &["request", "approve", "a2", "--by", "dpo"]);
    let out = ok(dir, &["audit", "verify"]);
    assert!(out.contains("intact: 4 entries"), "{out}");
    let lines = ok(dir, &["audit", "export", "--format", "jsonl"]);
    assert_eq!(lines.lines().count(), 4);
    let entry: Value = serde_json::from_str(lines.lines().nth(3).unwrap()).unwrap();
    assert_eq!(entry["kind"], "request.approved");
    assert_eq!(entry["actor"], "dpo");

    // Someone rewrites who approved, straight in the database.
    let url = format!("sqlite:{}", dir.join(".dsrctl/state.db").display());
    let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
    sqlx::query("UPDATE audit_log SET actor = 'someone else' WHERE seq = 4")
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    let out = dsrctl(dir, &["audit", "verify"]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("BROKEN at index 3 (seq 4)"), "{text}");
}

/// An export playbook that only reads, or (`erase`) also deletes what it exported.
fn export_playbook(erase: bool) -> String {
    let drop = if erase {
        "\n    - id: drop\n      needs: [list]\n      for_each: list.ids\n      http: { method: DELETE, path: \"/things/items/{{seg item.id}}\" }\n      preview: item\n"
    } else {
        "\n"
    };
    format!(
        "service: things\nconnector: api\nneeds_identities: [email]\ndsr:\n  access: {{ unsupported: \"test\" }}\n  rectify: {{ unsupported: \"test\" }}\n  restrict: {{ unsupported: \"test\" }}\n  delete: {{ unsupported: \"test\" }}\n  export:\n    - id: list\n      http: {{ method: GET, path: /things/items, query: {{ owner: \"{{{{subject.email}}}}\", n: \"2\" }} }}\n      capture: {{ ids: /value }}\n      collect: items{drop}"
    )
}

// One approval rule: intake used the request's kind and the command line the plan, so an
// export whose playbook erased data was started by a worker without anyone approving it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_approval_rule_for_intake_workers_and_the_command_line() {
    let server = ItemServer::start_background(Duration::ZERO);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    write_project(dir, &server.url(), &[("things", export_playbook(false))]);
    let today = Utc::now().date_naive().to_string();
    let new = |id: &str| {
        dsrctl(
            dir,
            &[
                "request",
                "new",
                "--kind",
                "export",
                "--tenant",
                "t1",
                "--email",
                "a@b.example",
                "--id",
                id,
                "--received",
                &today,
            ],
        )
    };
    // Reads only: approved by the rule at intake.
    let out = new("e1");
    assert!(String::from_utf8_lossy(&out.stdout).contains("approved on intake"));

    // The playbook comes to erase what it exports: intake now waits for a person...
    write_project(dir, &server.url(), &[("things", export_playbook(true))]);
    let out = String::from_utf8_lossy(&new("e2").stdout).into_owned();
    assert!(out.contains("erases data (`things/drop`)"), "{out}");
    assert!(out.contains("request approve e2"), "{out}");

    // ...and a worker does not start e1, approved by the rule before the playbook changed.
    let project = Arc::new(load_project(dir).unwrap());
    let store = open_store(dir).await;
    let scheduler = Scheduler::new(project, store.clone(), dir.join(".dsrctl"), "w1");
    let report = scheduler.tick().await.unwrap();
    assert!(report.runs.is_empty(), "{report:?}");
    assert_eq!(report.problems.len(), 1, "{report:?}");
    assert!(
        report.problems[0].contains("request approve e1"),
        "{report:?}"
    );
    assert!(server.delete_counts().is_empty());

    // Once a person approves it, it runs.
    ok(dir, &["request", "approve", "e1", "--by", "dpo"]);
    let report = scheduler.tick().await.unwrap();
    assert_eq!(report.runs.len(), 1, "{report:?}");
    assert_eq!(report.runs[0].request, "e1");
    assert_eq!(report.runs[0].status, RunStatus::Completed);
    assert_eq!(server.delete_counts().len(), 2);
    store.close().await;
}

/// Which task each step started on.
#[derive(Default)]
struct TaskOfSteps(std::sync::Mutex<Vec<Option<tokio::task::Id>>>);

impl dsrctl::engine::Observer for TaskOfSteps {
    fn started(&self, _: &dsrctl::journal::PlannedStep, _: &str) {
        self.0.lock().unwrap().push(tokio::task::try_id());
    }
    fn finished(&self, _: &dsrctl::journal::PlannedStep, _: &dsrctl::journal::StepOutcome) {}
}

// A worker drove all the runs of a tick from one task, so the engine work of runs executed at
// once shared one thread however many the runtime had.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_run_of_a_tick_executes_on_a_task_of_its_own() {
    let server = ItemServer::start_background(Duration::ZERO);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    write_project(dir, &server.url(), &[("things", export_playbook(false))]);
    let today = Utc::now().date_naive().to_string();
    for (id, email) in [("e1", "a@b.example"), ("e2", "c@d.example")] {
        ok(
            dir,
            &[
                "request",
                "new",
                "--kind",
                "export",
                "--tenant",
                "t1",
                "--email",
                email,
                "--id",
                id,
                "--received",
                &today,
            ],
        );
    }
    let project = Arc::new(load_project(dir).unwrap());
    let store = open_store(dir).await;
    let tasks = Arc::new(TaskOfSteps::default());
    let scheduler = Scheduler::new(project, store.clone(), dir.join(".dsrctl"), "w1")
        .with_concurrency(2)
        .with_observer(tasks.clone());
    let report = scheduler.tick().await.unwrap();
    assert_eq!(report.runs.len(), 2, "{report:?}");
    assert!(
        report.runs.iter().all(|r| r.status == RunStatus::Completed),
        "{report:?}"
    );
    let seen = tasks.0.lock().unwrap().clone();
    assert_eq!(seen.len(), 2, "one step per run: {seen:?}");
    assert!(seen.iter().all(Option::is_some), "{seen:?}");
    assert_ne!(seen[0], seen[1], "both runs on one task: {seen:?}");
    // Configuring the scheduler again after a tick still works: nothing else holds it.
    let _ = scheduler.with_parallelism(2);
    store.close().await;
}
