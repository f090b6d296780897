//! One request, one live run; a failed run repaired (`replan`) or given up (`abandon`):
//! through the `dsrctl` binary, against a local CRM that records every call (issue 15).

mod support;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use support::cli::ProjectDir;
use support::{Reply, TestServer};

/// A CRM holding Alice's contacts: list, delete, and a non-idempotent `POST /notify` that
/// tells the CRM's owner (each call is one more email sent). Anything else answers 400.
struct Crm {
    server: TestServer,
    contacts: Arc<Mutex<BTreeMap<String, Value>>>,
    /// Refuse to delete `c2` (400).
    keep_c2: Arc<AtomicBool>,
}

impl Crm {
    async fn start() -> Crm {
        let contacts: BTreeMap<String, Value> = ["c1", "c2"]
            .iter()
            .map(|id| {
                (
                    (*id).to_owned(),
                    json!({ "id": id, "email": "alice@example.com" }),
                )
            })
            .collect();
        let contacts = Arc::new(Mutex::new(contacts));
        let keep_c2 = Arc::new(AtomicBool::new(false));
        let (state, keep) = (contacts.clone(), keep_c2.clone());
        let server = TestServer::start(move |call, _| {
            let mut m = state.lock().expect("contacts");
            let id = call.path.strip_prefix("/contacts/").map(str::to_owned);
            match (call.method.as_str(), call.path.as_str(), id) {
                ("GET", "/contacts", _) => Reply::json(
                    200,
                    json!({ "value": m.values().cloned().collect::<Vec<_>>() }),
                ),
                ("POST", "/notify", _) => Reply::json(201, json!({ "sent": true })),
                ("DELETE", _, Some(id)) if id == "c2" && keep.load(Ordering::SeqCst) => {
                    Reply::json(400, json!({ "error": "c2 is on legal hold" }))
                }
                ("DELETE", _, Some(id)) => match m.remove(&id) {
                    Some(_) => Reply::raw(204, "text/plain", ""),
                    None => Reply::json(404, json!({ "error": "not found" })),
                },
                _ => Reply::json(400, json!({ "error": "no such route" })),
            }
        })
        .await;
        Crm {
            server,
            contacts,
            keep_c2,
        }
    }

    fn count(&self, method: &str, prefix: &str) -> usize {
        self.server
            .calls()
            .iter()
            .filter(|c| c.method == method && c.path.starts_with(prefix))
            .count()
    }
}

/// The playbook; `drop_path` is where contacts are deleted (a typo in it fails the run) and
/// `note` goes into the notification's body.
fn playbook(drop_path: &str, note: &str) -> String {
    format!(
        r#"service: crm
connector: api
needs_identities: [email]
dsr:
  access: {{ unsupported: "test" }}
  export: {{ unsupported: "test" }}
  rectify: {{ unsupported: "test" }}
  restrict: {{ unsupported: "test" }}
  delete:
    - id: notify
      http: {{ method: POST, path: /notify, json: {{ note: "{note}" }} }}
      idempotent: false
      preview: {{ none: "a notification has no before" }}
    - id: find
      http: {{ method: GET, path: /contacts, query: {{ email: "{{{{subject.email}}}}" }} }}
      capture: {{ contacts: /value }}
    - id: drop
      needs: [find, notify]
      for_each: find.contacts
      http: {{ method: DELETE, path: "{drop_path}/{{{{seg item.id}}}}" }}
      absent_on: [404]
      preview: item
"#
    )
}

/// The playbook without the notification step.
fn playbook_without_notify(drop_path: &str) -> String {
    playbook(drop_path, "x")
        .replace(
            "    - id: notify\n      http: { method: POST, path: /notify, json: { note: \"x\" } }\n      idempotent: false\n      preview: { none: \"a notification has no before\" }\n",
            "",
        )
        .replace("needs: [find, notify]", "needs: [find]")
}

/// The playbook without the deletion step.
fn playbook_without_drop() -> String {
    let text = playbook(FIXED, "erasure");
    text[..text.find("    - id: drop").expect("drop step")].to_owned()
}

const FIXED: &str = "/contacts";
const TYPO: &str = "/contact";

fn project(crm: &Crm, drop_path: &str) -> ProjectDir {
    ProjectDir::new()
        .file(
            "dsrctl.yaml",
            &format!(
                "tenants:\n  t1:\n    connectors:\n      api:\n        kind: http\n        base_url: {}\n        timeout: 5s\n        retry: {{ attempts: 2, backoff: 10ms }}\n",
                crm.server.url
            ),
        )
        .file("policies/crm.yaml", &playbook(drop_path, "erasure"))
        .file(
            "requests/delete-alice.yaml",
            "id: r-1\nkind: delete\ntenant: t1\nreceived: 2026-11-02\nsubject: { email: alice@example.com }\n",
        )
}

/// The run id a `run`/`resume`/`replan` summary names.
fn run_id(stdout: &str) -> String {
    stdout
        .lines()
        .find_map(|l| l.strip_prefix("Run "))
        .and_then(|l| l.split(':').next())
        .unwrap_or_else(|| panic!("no run in:\n{stdout}"))
        .to_owned()
}

/// Runs the deletion, which fails (the typo in the playbook), and returns its run id.
async fn failed_run(p: &ProjectDir) -> String {
    let out = p
        .expect(
            1,
            &["run", "requests/delete-alice.yaml", "--approve", "dpo"],
        )
        .await;
    run_id(&out.stdout)
}

async fn audit(p: &ProjectDir) -> Vec<Value> {
    let out = p.expect(0, &["audit", "export", "--format", "json"]).await;
    out.json().as_array().cloned().unwrap_or_default()
}

fn kinds<'a>(audit: &'a [Value], kind: &str) -> Vec<&'a Value> {
    audit.iter().filter(|e| e["kind"] == json!(kind)).collect()
}

async fn apply_runs(p: &ProjectDir) -> Vec<Value> {
    let runs = p.expect(0, &["runs", "--json"]).await.json();
    runs.as_array()
        .unwrap()
        .iter()
        .filter(|r| r["mode"] == json!("apply"))
        .cloned()
        .collect()
}

// Regression: `dsrctl run` on a request whose run had completed started a new run and sent
// everything again (the non-idempotent POST too), with a second `approved` audit entry.
#[tokio::test]
async fn a_completed_request_run_again_sends_nothing_and_shows_its_run() {
    let crm = Crm::start().await;
    let p = project(&crm, FIXED);
    let run = |extra: &[&str]| {
        p.cmd()
            .args(["run", "requests/delete-alice.yaml", "--approve", "dpo"])
            .args(extra)
            .run()
    };
    let first = run(&[]).await.expect_code(0);
    let done = run_id(&first.stdout);
    assert!(first.stdout.contains("completed"), "{}", first.stdout);
    let calls = crm.server.count();
    assert_eq!(crm.count("POST", "/notify"), 1);

    let again = run(&[]).await.expect_code(0);
    assert!(
        again
            .stdout
            .contains(&format!("request r-1 was completed by run {done}")),
        "{}",
        again.stdout
    );
    assert_eq!(run_id(&again.stdout), done, "shows the completed run");
    assert_eq!(crm.server.count(), calls, "nothing sent, not even a read");
    assert_eq!(kinds(&audit(&p).await, "approved").len(), 1);
    assert_eq!(apply_runs(&p).await.len(), 1);

    // Running it once more takes an explicit `--again` with a reason, audited.
    p.expect(64, &["run", "requests/delete-alice.yaml", "--again"])
        .await;
    let once_more = run(&["--again", "--reason", "the subject wrote again"])
        .await
        .expect_code(0);
    assert_ne!(run_id(&once_more.stdout), done);
    assert_eq!(crm.count("POST", "/notify"), 2, "sent again, as asked");
    let log = audit(&p).await;
    let again = kinds(&log, "run.again");
    assert_eq!(again.len(), 1, "{log:#?}");
    assert_eq!(again[0]["actor"], json!("dpo"));
    assert_eq!(
        again[0]["detail"]["reason"],
        json!("the subject wrote again")
    );
    assert_eq!(again[0]["detail"]["previous"], json!(done));
}

// Regression: after fixing the playbook that made a step fail, `resume` and `run` executed the
// frozen plan and failed the same way; nothing could repair the run.
#[tokio::test]
async fn replan_after_a_playbook_fix_finishes_without_resending_a_finished_step() {
    let crm = Crm::start().await;
    let p = project(&crm, TYPO);
    let failed = p
        .expect(
            1,
            &["run", "requests/delete-alice.yaml", "--approve", "dpo"],
        )
        .await;
    let run = run_id(&failed.stdout);
    assert_eq!(crm.count("POST", "/notify"), 1);
    assert_eq!(crm.count("DELETE", "/contact/"), 2, "the typo fails both");

    // Running the request again resumes that run (one request, one live run): the frozen
    // plan fails the same way, and the notification is not sent again.
    let resumed = p
        .expect(
            1,
            &["run", "requests/delete-alice.yaml", "--approve", "dpo"],
        )
        .await;
    assert!(
        resumed.stderr.contains(&format!("resuming run {run}")),
        "{}",
        resumed.stderr
    );
    assert!(
        resumed.stdout.contains("dsrctl replan"),
        "{}",
        resumed.stdout
    );
    assert_eq!(apply_runs(&p).await.len(), 1);
    assert_eq!(crm.count("POST", "/notify"), 1);

    // The fix, and an edit of the step that already succeeded.
    p.write("policies/crm.yaml", &playbook(FIXED, "erasure, reworded"));
    let calls = crm.server.count();
    let unapproved = p.expect(1, &["replan", &run]).await;
    let diff = unapproved.stdout;
    assert!(diff.contains("~ crm/drop"), "{diff}");
    assert!(
        diff.contains("action.http.path: `/contact/{{seg item.id}}` → `/contacts/{{seg item.id}}`"),
        "{diff}"
    );
    assert!(
        diff.contains("= crm/notify") && diff.contains("already done, kept"),
        "{diff}"
    );
    assert!(
        unapproved.stderr.contains("--approve"),
        "{}",
        unapproved.stderr
    );
    assert_eq!(
        crm.server.count(),
        calls,
        "nothing sent before the approval"
    );

    let repaired = p.expect(0, &["replan", &run, "--approve", "dpo"]).await;
    assert_eq!(run_id(&repaired.stdout), run, "the same run continues");
    assert!(repaired.stdout.contains("completed"), "{}", repaired.stdout);
    assert_eq!(
        crm.count("POST", "/notify"),
        1,
        "a finished mutation is never re-sent"
    );
    assert_eq!(crm.count("DELETE", "/contacts/"), 2);
    assert!(crm.contacts.lock().unwrap().is_empty());
    let log = audit(&p).await;
    let replanned = kinds(&log, "run.replanned");
    assert_eq!(replanned.len(), 1, "{log:#?}");
    assert_eq!(replanned[0]["actor"], json!("dpo"));
    assert_eq!(replanned[0]["subject"], json!(run));
}

#[tokio::test]
async fn resume_replan_is_replan() {
    let crm = Crm::start().await;
    let p = project(&crm, TYPO);
    let run = failed_run(&p).await;
    p.write("policies/crm.yaml", &playbook(FIXED, "erasure"));
    let out = p
        .expect(0, &["resume", &run, "--replan", "--approve", "dpo"])
        .await;
    assert!(out.stdout.contains("~ crm/drop"), "{}", out.stdout);
    assert!(out.stdout.contains("completed"), "{}", out.stdout);
    assert_eq!(crm.count("POST", "/notify"), 1);
}

#[tokio::test]
async fn abandon_then_run_starts_afresh() {
    let crm = Crm::start().await;
    let p = project(&crm, TYPO);
    let run = failed_run(&p).await;
    p.expect(64, &["abandon", &run]).await;
    let out = p
        .expect(
            0,
            &[
                "abandon",
                &run,
                "--reason",
                "wrong path in the playbook",
                "--by",
                "dpo",
            ],
        )
        .await;
    assert!(out.stdout.contains("abandoned run"), "{}", out.stdout);
    assert!(
        out.stdout.contains("crm/notify"),
        "names what was already sent: {}",
        out.stdout
    );
    let status = p.expect(0, &["status", &run, "--json"]).await.json();
    assert_eq!(status["status"], json!("abandoned"));
    let refused = p.expect(1, &["resume", &run]).await;
    assert!(refused.stderr.contains("abandoned"), "{}", refused.stderr);
    let log = audit(&p).await;
    let abandoned = kinds(&log, "run.abandoned");
    assert_eq!(abandoned.len(), 1, "{log:#?}");
    assert_eq!(abandoned[0]["actor"], json!("dpo"));
    assert_eq!(
        abandoned[0]["detail"]["reason"],
        json!("wrong path in the playbook")
    );

    p.write("policies/crm.yaml", &playbook(FIXED, "erasure"));
    let fresh = p
        .expect(
            0,
            &["run", "requests/delete-alice.yaml", "--approve", "dpo"],
        )
        .await;
    let fresh_run = run_id(&fresh.stdout);
    assert_ne!(fresh_run, run, "a new run");
    assert!(fresh.stdout.contains("completed"), "{}", fresh.stdout);
    assert!(crm.contacts.lock().unwrap().is_empty());
    assert_eq!(apply_runs(&p).await.len(), 2);
    // An ended run cannot be abandoned.
    p.expect(1, &["abandon", &fresh_run, "--reason", "too late"])
        .await;
}

#[tokio::test]
async fn a_finished_step_the_playbooks_dropped_stays_in_the_run_as_its_record() {
    let crm = Crm::start().await;
    let p = project(&crm, TYPO);
    let run = failed_run(&p).await;
    let without = playbook_without_notify(FIXED);
    assert!(!without.contains("notify"), "{without}");
    p.write("policies/crm.yaml", &without);
    let out = p.expect(0, &["replan", &run, "--approve", "dpo"]).await;
    assert!(
        out.stdout
            .contains("- crm/notify: no longer in the playbooks; it finished"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("completed"), "{}", out.stdout);
    assert_eq!(crm.count("POST", "/notify"), 1);
    let report = p.expect(0, &["report", &run, "--format", "json"]).await;
    assert!(
        report.stdout.contains("crm/notify"),
        "the evidence keeps it:\n{}",
        report.stdout
    );
}

#[tokio::test]
async fn replan_refuses_to_drop_a_step_it_has_partly_carried_out() {
    let crm = Crm::start().await;
    crm.keep_c2.store(true, Ordering::SeqCst);
    let p = project(&crm, FIXED);
    let run = failed_run(&p).await;
    assert_eq!(crm.count("DELETE", "/contacts/c1"), 1, "c1 went");
    p.write("policies/crm.yaml", &playbook_without_drop());
    let calls = crm.server.count();
    let out = p.expect(1, &["replan", &run, "--approve", "dpo"]).await;
    assert!(out.stderr.contains("`crm/drop`"), "{}", out.stderr);
    assert!(out.stderr.contains("abandon"), "{}", out.stderr);
    assert_eq!(crm.server.count(), calls, "nothing sent");
}

/// Across `run`, `replan` (with the mutation's own action edited), a second `run` and, once a
/// person settles it, one more `run`: a POST without `verify` whose answer was lost after the
/// service acted has exactly one effect under every such fault.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_post_in_doubt_is_not_sent_again_by_replan_or_a_second_run() {
    use support::faulty_api::{FILE, FaultyApi, Mishap, config, playbook as vendor};
    for mishap in [
        Mishap::LoseAnswer,
        Mishap::Reset,
        Mishap::Hang,
        Mishap::Garbage,
        Mishap::Truncated,
    ] {
        let api = FaultyApi::start().await;
        api.always(FILE, mishap);
        let p = ProjectDir::new()
            .file("dsrctl.yaml", &config(api.url()))
            .file("policies/vendor.yaml", &vendor(false))
            .file(
                "request.yaml",
                "id: r-1\nkind: delete\ntenant: t1\nreceived: 2026-11-02\nsubject: { email: alice@example.com }\n",
            );
        let run = |p: &ProjectDir| {
            p.cmd()
                .args(["run", "request.yaml", "--approve", "dpo"])
                .run()
        };
        let first = run(&p).await.expect_code(0);
        let id = run_id(&first.stdout);
        let mut effects = vec![api.effects(FILE)];

        p.write(
            "policies/vendor.yaml",
            &vendor(false).replace(
                "json: { subject: \"{{subject.email}}\" }",
                "json: { subject: \"{{subject.email}}\", reason: erasure }",
            ),
        );
        let replanned = p.expect(0, &["replan", &id, "--approve", "dpo"]).await;
        assert!(
            replanned.stdout.contains("1 in doubt (may have been sent)"),
            "{mishap:?}:\n{}",
            replanned.stdout
        );
        effects.push(api.effects(FILE));
        run(&p).await.expect_code(0);
        effects.push(api.effects(FILE));
        p.expect(0, &["task", "done", &id, "file-erasure", "--by", "ops"])
            .await;
        let done = run(&p).await.expect_code(0);
        assert!(
            done.stdout.contains(&format!("was completed by run {id}")),
            "{mishap:?}:\n{}",
            done.stdout
        );
        effects.push(api.effects(FILE));
        eprintln!("{mishap:?}: effects after run, replan, run, (task done) run: {effects:?}");
        assert_eq!(effects, [1, 1, 1, 1], "{mishap:?}");
    }
}

#[tokio::test]
async fn apply_refuses_a_second_live_run_of_a_request() {
    let crm = Crm::start().await;
    let p = project(&crm, TYPO);
    let run = failed_run(&p).await;
    p.expect(
        0,
        &["plan", "requests/delete-alice.yaml", "-o", "plan.json"],
    )
    .await;
    let sent = crm
        .server
        .calls()
        .iter()
        .filter(|c| c.method != "GET")
        .count();
    let out = p
        .expect(1, &["apply", "plan.json", "--approve", "dpo"])
        .await;
    assert!(
        out.stderr.contains(&format!("has an unfinished run {run}")),
        "{}",
        out.stderr
    );
    let now = crm
        .server
        .calls()
        .iter()
        .filter(|c| c.method != "GET")
        .count();
    assert_eq!(now, sent, "nothing sent");
    assert_eq!(apply_runs(&p).await.len(), 1);
}

// Regression: `run` checked for a live run, then created one, so two started at the same
// moment (two terminals, a person and a worker) both ran the request and the non-idempotent
// notification went out twice. Now the store lets one of them create the run.
#[tokio::test(flavor = "multi_thread")]
async fn two_runs_started_at_once_send_each_mutation_once() {
    let crm = Crm::start().await;
    let p = project(&crm, FIXED);
    for round in 0..3 {
        let starts: Vec<_> = (0..4)
            .map(|_| {
                p.cmd()
                    .args(["run", "requests/delete-alice.yaml", "--approve", "dpo"])
                    .run()
            })
            .collect();
        let outs = futures::future::join_all(starts).await;
        let ran = outs.iter().filter(|o| o.stdout.contains("Run ")).count();
        assert!(ran >= 1, "{outs:#?}");
        assert_eq!(crm.count("POST", "/notify"), 1, "round {round}: {outs:#?}");
        assert_eq!(apply_runs(&p).await.len(), 1, "{outs:#?}");
    }
}
