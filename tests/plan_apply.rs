//! Dry runs, saved plans and previews through the `dsrctl` binary, against local servers
//! and databases that record what they are sent (issue 4, "Done when").

mod sql_support;
mod support;

use support::tools::git;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use sql_support::{Db, Kind};
use support::cli::ProjectDir;
use support::{Reply, TestServer};

/// A CRM holding contacts, recording every call: list by email, read, delete.
struct Crm {
    server: TestServer,
    contacts: Arc<Mutex<BTreeMap<String, Value>>>,
}

impl Crm {
    async fn start(ids: &[&str]) -> Crm {
        let contacts: BTreeMap<String, Value> = ids
            .iter()
            .map(|id| {
                (
                    (*id).to_owned(),
                    json!({ "id": id, "email": "alice@example.com", "name": format!("Alice {id}") }),
                )
            })
            .collect();
        let contacts = Arc::new(Mutex::new(contacts));
        let state = contacts.clone();
        let server = TestServer::start(move |call, _| {
            let mut m = state.lock().expect("contacts");
            let id = call.path.strip_prefix("/contacts/").map(str::to_owned);
            match (call.method.as_str(), id) {
                ("GET", None) if call.path == "/contacts" => Reply::json(
                    200,
                    json!({ "value": m.values().cloned().collect::<Vec<_>>() }),
                ),
                ("GET", Some(id)) => match m.get(&id) {
                    Some(c) => Reply::json(200, c.clone()),
                    None => Reply::json(404, json!({ "error": "not found" })),
                },
                ("DELETE", Some(id)) => match m.remove(&id) {
                    Some(_) => Reply::raw(204, "text/plain", ""),
                    None => Reply::json(404, json!({ "error": "not found" })),
                },
                _ => Reply::json(404, json!({ "error": "no such route" })),
            }
        })
        .await;
        Crm { server, contacts }
    }

    /// Calls other than GET: anything that could change data.
    fn mutations(&self) -> Vec<String> {
        self.server
            .calls()
            .iter()
            .filter(|c| c.method != "GET")
            .map(|c| format!("{} {}", c.method, c.target))
            .collect()
    }

    /// DELETE calls per path.
    fn deletes(&self) -> HashMap<String, usize> {
        let mut out = HashMap::new();
        for c in self.server.calls().iter().filter(|c| c.method == "DELETE") {
            *out.entry(c.path.clone()).or_default() += 1;
        }
        out
    }
}

const CRM: &str = r#"service: crm
connector: api
needs_identities: [email]
dsr:
  access: { unsupported: "contacts are exported instead" }
  export:
    - id: read
      http: { method: GET, path: /contacts, query: { email: "{{subject.email}}" } }
      collect: contacts
  rectify: { unsupported: "test" }
  restrict: { unsupported: "test" }
  delete:
    - id: find
      http: { method: GET, path: /contacts, query: { email: "{{subject.email}}" } }
      capture: { contacts: /value }
    - id: drop
      needs: [find]
      for_each: find.contacts
      http: { method: DELETE, path: "/contacts/{{seg item.id}}" }
      absent_on: [404]
      preview: item
      verify:
        http: { method: GET, path: "/contacts/{{seg item.id}}" }
        expect_status: [404]
"#;

const BACKUPS: &str = r#"service: backups
connector: api
needs_identities: [email]
dsr:
  access: { unsupported: "test" }
  export: { unsupported: "backups are not exported" }
  rectify: { unsupported: "test" }
  restrict: { unsupported: "test" }
  delete:
    - id: confirm-expiry
      manual:
        instructions: Confirm that backups holding the subject expire within 35 days.
"#;

const DELETE_REQUEST: &str = "id: r-1\nkind: delete\ntenant: t1\nreceived: 2026-11-02\nsubject: { email: alice@example.com }\n";
const EXPORT_REQUEST: &str = "id: r-2\nkind: export\ntenant: t1\nreceived: 2026-11-02\nsubject: { email: alice@example.com }\n";

fn config(api: &str, extra: &str) -> String {
    format!(
        "requests: requests\ntenants:\n  t1:\n    connectors:\n      api:\n        kind: http\n        base_url: {api}\n        timeout: 5s\n        retry: {{ attempts: 2, backoff: 10ms }}\n{extra}"
    )
}

/// The CRM and backups project against `api`.
fn crm_project(api: &str, extra_config: &str) -> ProjectDir {
    ProjectDir::new()
        .file("dsrctl.yaml", &config(api, extra_config))
        .file("policies/crm.yaml", CRM)
        .file("policies/backups.yaml", BACKUPS)
        .file("requests/delete-alice.yaml", DELETE_REQUEST)
        .file("requests/export-alice.yaml", EXPORT_REQUEST)
}

fn changes(plan: &Value) -> Vec<Value> {
    plan["changes"].as_array().cloned().unwrap_or_default()
}

fn actions(plan: &Value) -> Vec<(String, String)> {
    changes(plan)
        .iter()
        .map(|c| {
            (
                c["instance"].as_str().unwrap_or("").to_owned(),
                c["actions"][0].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn http_dry_run_sends_no_mutation_and_shows_what_would_go() {
    let crm = Crm::start(&["c1", "c2"]).await;
    let p = crm_project(&crm.server.url, "");
    let out = p
        .cmd()
        .args(["plan", "requests/delete-alice.yaml", "--format", "json"])
        .arg("--show-personal-data")
        .run()
        .await
        .expect_code(0);
    let plan = out.json();

    assert!(crm.mutations().is_empty(), "{:?}", crm.mutations());
    assert!(!crm.server.calls().is_empty(), "the dry run read nothing");
    assert_eq!(crm.contacts.lock().unwrap().len(), 2, "nothing deleted");
    assert_eq!(
        actions(&plan),
        [
            ("backups/confirm-expiry".to_owned(), "manual".to_owned()),
            ("crm/drop#0".to_owned(), "delete".to_owned()),
            ("crm/drop#1".to_owned(), "delete".to_owned()),
        ],
        "{plan:#}"
    );
    let first = &changes(&plan)[1];
    assert_eq!(first["before"]["id"], json!("c1"));
    assert_eq!(first["before"]["name"], json!("Alice c1"));
    let manual = &changes(&plan)[0];
    assert!(
        manual["reason"].as_str().unwrap().contains("35 days"),
        "{manual:#}"
    );
    assert_eq!(
        plan["summary_line"],
        json!("Plan: 2 to delete, 0 to update, 1 manual, 0 unknown across 2 services")
    );

    // The manual step only shows up as a change: the dry run leaves no task waiting.
    let status = p
        .cmd()
        .args(["status", "--json"])
        .run()
        .await
        .expect_code(0)
        .json();
    assert_eq!(status["mode"], json!("dry_run"), "{status:#}");
    assert_ne!(status["status"], json!("waiting"), "{status:#}");
    for s in status["steps"].as_array().unwrap() {
        assert_ne!(s["status"], json!("waiting"), "{status:#}");
    }
    // Masked by default: the subject's data is not printed.
    let masked = p
        .cmd()
        .args(["plan", "requests/delete-alice.yaml", "--format", "json"])
        .run()
        .await
        .expect_code(0);
    assert!(!masked.stdout.contains("Alice c1"), "{}", masked.stdout);
    assert!(crm.mutations().is_empty());
}

#[tokio::test]
async fn apply_sends_exactly_the_previewed_deletions() {
    let crm = Crm::start(&["c1", "c2", "c3"]).await;
    let p = crm_project(&crm.server.url, "");
    // The saved plan keeps the previews sealed: what it holds is read from the view.
    let preview = p
        .cmd()
        .args(["--show-personal-data", "plan", "requests/delete-alice.yaml"])
        .args(["-o", "plan.json", "--format", "json"])
        .run()
        .await
        .expect_code(0)
        .json();
    assert!(crm.mutations().is_empty());
    let planned: Vec<String> = preview["changes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["actions"].as_array().unwrap().contains(&json!("delete")))
        .map(|c| format!("/contacts/{}", c["before"]["id"].as_str().unwrap()))
        .collect();
    let saved = p.read("plan.json");
    assert!(!saved.contains("alice@example.com"), "{saved}");
    assert_eq!(planned.len(), 3);

    // Without an approval a non-interactive apply refuses and sends nothing.
    let refused = p
        .cmd()
        .args(["apply", "plan.json"])
        .run()
        .await
        .expect_code(1);
    assert!(refused.stderr.contains("--approve"), "{}", refused.stderr);
    assert!(crm.mutations().is_empty());

    let out = p
        .cmd()
        .args(["apply", "plan.json", "--approve", "dpo@example.com"])
        .run()
        .await
        .expect_code(0);
    let deletes = crm.deletes();
    let mut sent: Vec<&String> = deletes.keys().collect();
    sent.sort();
    let mut want: Vec<&String> = planned.iter().collect();
    want.sort();
    assert_eq!(sent, want, "{}", out.stderr);
    assert!(deletes.values().all(|n| *n == 1), "{deletes:?}");
    assert_eq!(
        crm.mutations().len(),
        planned.len(),
        "only the previewed deletions: {:?}",
        crm.mutations()
    );
    // The manual step now waits for a person.
    assert!(out.stdout.contains("waiting"), "{}", out.stdout);
}

#[tokio::test]
async fn apply_never_sends_a_deletion_that_appeared_after_the_plan() {
    let crm = Crm::start(&["c1"]).await;
    let p = crm_project(&crm.server.url, "");
    p.cmd()
        .args(["plan", "requests/delete-alice.yaml", "-o", "plan.json"])
        .run()
        .await
        .expect_code(0);
    crm.contacts.lock().unwrap().insert(
        "c9".into(),
        json!({ "id": "c9", "email": "alice@example.com", "name": "New" }),
    );
    let out = p
        .cmd()
        .args(["apply", "plan.json", "--approve", "dpo"])
        .run()
        .await
        .expect_code(1);
    assert!(
        out.stderr
            .contains("a new change that the plan did not preview"),
        "{}",
        out.stderr
    );
    assert!(crm.mutations().is_empty(), "{:?}", crm.mutations());
}

/// Plans, lets `between` make the plan stale, then checks that apply refuses, says why
/// on stderr, and sends no mutation.
async fn refused(extra_config: &str, between: impl FnOnce(&ProjectDir, &Crm), why: &str) {
    let crm = Crm::start(&["c1", "c2"]).await;
    let p = crm_project(&crm.server.url, extra_config);
    p.cmd()
        .args(["plan", "requests/delete-alice.yaml", "-o", "plan.json"])
        .run()
        .await
        .expect_code(0);
    between(&p, &crm);
    let out = p
        .cmd()
        .args(["apply", "plan.json", "--approve", "dpo"])
        .run()
        .await
        .expect_code(1);
    assert!(
        out.stderr.contains(why),
        "expected `{why}` in:\n{}",
        out.stderr
    );
    assert!(out.stderr.contains("refusing"), "{}", out.stderr);
    assert!(crm.mutations().is_empty(), "sent: {:?}", crm.mutations());
    assert_eq!(crm.contacts.lock().unwrap().len(), 2);
}

#[tokio::test]
async fn stale_plan_refused_when_a_playbook_changed() {
    refused(
        "",
        |p, _| {
            let edited = p.read("policies/crm.yaml") + "# reviewed\n";
            p.write("policies/crm.yaml", &edited);
        },
        "policies/crm.yaml changed since the plan was made",
    )
    .await;
}

#[tokio::test]
async fn stale_plan_refused_when_older_than_max_age() {
    refused(
        "plan:\n  max_age: 1s\n",
        |_, _| std::thread::sleep(Duration::from_millis(2100)),
        "more than the allowed 1s",
    )
    .await;
}

#[tokio::test]
async fn stale_plan_refused_when_the_target_changed_on_the_server() {
    refused(
        "",
        |_, crm| {
            crm.contacts.lock().unwrap().get_mut("c2").unwrap()["name"] = json!("Alice Renamed");
        },
        "crm/drop#1: the target changed since the plan was made",
    )
    .await;
}

#[tokio::test]
async fn detailed_exitcode_is_2_with_changes_and_0_without() {
    let crm = Crm::start(&["c1"]).await;
    let p = crm_project(&crm.server.url, "");
    p.cmd()
        .args(["plan", "requests/delete-alice.yaml", "--detailed-exitcode"])
        .run()
        .await
        .expect_code(2);
    // An export only reads: nothing would change.
    let out = p
        .cmd()
        .args(["plan", "requests/export-alice.yaml", "--detailed-exitcode"])
        .run()
        .await
        .expect_code(0);
    assert!(out.stdout.contains("No changes"), "{}", out.stdout);
    // Without the flag, pending changes still exit 0.
    p.cmd()
        .args(["plan", "requests/delete-alice.yaml"])
        .run()
        .await
        .expect_code(0);
    assert!(crm.mutations().is_empty());
}

#[tokio::test]
async fn compare_reports_a_step_added_in_a_playbook_as_markdown() {
    // Offline: the base URL is never contacted.
    let p = crm_project("http://127.0.0.1:9", "");
    git(p.path(), &["init", "-q", "-b", "main"]);
    git(p.path(), &["add", "-A"]);
    git(p.path(), &["commit", "-q", "-m", "playbooks"]);
    let added = p.read("policies/crm.yaml").replace(
        "    - id: drop\n",
        "    - id: audit\n      http: { method: GET, path: /audit, query: { email: \"{{subject.email}}\" } }\n    - id: drop\n",
    );
    p.write("policies/crm.yaml", &added);

    let out = p
        .cmd()
        .args(["plan", "--compare", "HEAD", "--format", "markdown"])
        .run()
        .await
        .expect_code(0);
    let md = out.stdout;
    assert!(md.starts_with("### "), "{md}");
    assert!(md.contains("`HEAD`"), "{md}");
    assert!(
        md.contains("| r-1 | crm | step added: `crm/audit` |"),
        "{md}"
    );
    assert!(md.contains("<details>"), "{md}");
    // Only the delete request reaches the added step.
    assert!(!md.contains("| r-2 |"), "{md}");

    // Against the working tree itself nothing changed.
    git(p.path(), &["commit", "-qam", "audit step"]);
    let same = p
        .cmd()
        .args(["plan", "--compare", "HEAD", "--format", "markdown"])
        .run()
        .await
        .expect_code(0);
    assert!(same.stdout.contains("No change"), "{}", same.stdout);
}

fn shop(customers: &str, orders: &str) -> String {
    format!(
        r#"service: shop
connector: db
needs_identities: [email]
dsr:
  access: {{ unsupported: "test" }}
  export: {{ unsupported: "test" }}
  restrict: {{ unsupported: "test" }}
  rectify:
    - id: fix-city
      sql:
        update: {{ table: {customers}, set: {{ city: "{{{{request.corrections.city}}}}" }}, where: {{ email: "{{{{subject.email}}}}" }} }}
        max_rows: 1
  delete:
    - id: drop-orders
      sql:
        delete:
          table: {orders}
          through: {{ table: {customers}, column: customer_id, where: {{ email: "{{{{subject.email}}}}" }} }}
    - id: drop-customer
      needs: [drop-orders]
      sql:
        delete: {{ table: {customers}, where: {{ email: "{{{{subject.email}}}}" }} }}
        max_rows: 1
"#
    )
}

/// Every row of both tables, in key order.
async fn rows(db: &Db) -> (Vec<Value>, Vec<Value>) {
    let all = |t: String| json!({ "select": { "table": t, "order_by": ["id"] } });
    (
        db.read(all(db.t("customers"))).await.expect("customers"),
        db.read(all(db.t("orders"))).await.expect("orders"),
    )
}

fn ids(rows: &[Value]) -> Vec<i64> {
    rows.iter().filter_map(|r| r["id"].as_i64()).collect()
}

fn change<'a>(plan: &'a Value, step: &str) -> &'a Value {
    plan["changes"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["step"] == json!(step)))
        .unwrap_or_else(|| panic!("no change of {step} in {plan:#}"))
}

on_all_backends!(sql_dry_run_changes_no_row_and_apply_deletes_what_it_previewed);

async fn sql_dry_run_changes_no_row_and_apply_deletes_what_it_previewed(kind: Kind) {
    let db = Db::new(kind, "planapply").await;
    let url = match kind {
        Kind::Lite => format!("sqlite:{}", db.base_dir().join("test.db").display()),
        _ => db.url.clone(),
    };
    let p = ProjectDir::new()
        .file(
            "dsrctl.yaml",
            &format!("tenants:\n  t1:\n    connectors:\n      db:\n        kind: sql\n        url: \"{url}\"\n        timeout: 20s\n"),
        )
        .file("policies/shop.yaml", &shop(&db.t("customers"), &db.t("orders")))
        .file(
            "delete.yaml",
            "id: r-1\nkind: delete\ntenant: t1\nreceived: 2026-11-02\nsubject: { email: ada@example.com }\n",
        )
        .file(
            "rectify.yaml",
            "id: r-2\nkind: rectify\ntenant: t1\nreceived: 2026-11-02\nsubject: { email: ada@example.com }\ncorrections: { city: Berlin }\n",
        );
    let before = rows(&db).await;

    let plan = p
        .cmd()
        .args([
            "plan",
            "delete.yaml",
            "--format",
            "json",
            "--show-personal-data",
        ])
        .run()
        .await
        .expect_code(0)
        .json();
    assert_eq!(rows(&db).await, before, "the dry run changed rows");
    let orders = change(&plan, "shop/drop-orders");
    assert_eq!(orders["actions"], json!(["delete"]));
    assert_eq!(orders["count"], json!(3));
    let mut previewed = ids(orders["before"].as_array().expect("rows"));
    previewed.sort_unstable();
    assert_eq!(previewed, [10, 11, 12], "{orders:#}");
    let customer = change(&plan, "shop/drop-customer");
    assert_eq!(customer["count"], json!(1));
    assert_eq!(customer["before"][0]["email"], json!("ada@example.com"));

    let plan = p
        .cmd()
        .args([
            "plan",
            "rectify.yaml",
            "--format",
            "json",
            "--show-personal-data",
        ])
        .run()
        .await
        .expect_code(0)
        .json();
    assert_eq!(rows(&db).await, before, "the dry run changed rows");
    let fix = change(&plan, "shop/fix-city");
    assert_eq!(fix["actions"], json!(["update"]));
    assert_eq!(fix["before"][0]["city"], json!("London"), "{fix:#}");
    assert_eq!(fix["after"][0]["city"], json!("Berlin"), "{fix:#}");

    // Applying the saved plan deletes exactly the previewed rows and nothing else.
    p.cmd()
        .args(["plan", "delete.yaml", "-o", "plan.json"])
        .run()
        .await
        .expect_code(0);
    assert_eq!(rows(&db).await, before);
    p.cmd()
        .args(["apply", "plan.json", "--approve", "dpo"])
        .run()
        .await
        .expect_code(0);
    let (customers, orders) = rows(&db).await;
    assert_eq!(ids(&customers), [2, 3]);
    assert_eq!(ids(&orders), [20, 30, 31]);
    db.drop().await;
}

const TESTED_CRM: &str = r#"
tests:
  - name: deletes the listed contact
    request: { id: t-1, kind: delete, subject: { email: a@example.com } }
    responses:
      find: { body: { value: [ { id: c1 } ] } }
      drop: { status: 204 }
      drop.verify: { status: 404 }
    expect_changes: { drop: delete }
    expect_outcomes: { find: succeeded, drop: succeeded }
  - name: a contact still there after the delete fails verification
    request: { id: t-4, kind: delete, subject: { email: a@example.com } }
    responses:
      find: { body: { value: [ { id: c1 } ] } }
      drop: { status: 204 }
      drop.verify: { body: { id: c1 } }
    expect_outcomes: { drop: failed }
  - name: nothing held
    request: { id: t-2, kind: delete, subject: { email: b@example.com } }
    responses:
      find: { body: { value: [] } }
    expect_outcomes: { find: succeeded }
"#;

const WRONG_EXPECTATION: &str = r#"  - name: expects <a> failure & gets none
    request: { id: t-3, kind: delete, subject: { email: a@example.com } }
    responses:
      find: { body: { value: [ { id: c1 } ] } }
      drop: { status: 204 }
    expect_outcomes: { drop: failed }
"#;

// Regression: a step with `verify` failed every playbook test ("connector `api` is not
// configured"), because the verification read went to a service instead of a recording.
#[tokio::test]
async fn playbook_tests_pass_and_a_wrong_expectation_fails_in_junit() {
    // Offline: the recorded responses answer, the base URL is never contacted.
    let p = ProjectDir::new()
        .file("dsrctl.yaml", &config("http://127.0.0.1:9", ""))
        .file("policies/crm.yaml", &format!("{CRM}{TESTED_CRM}"));
    let out = p.cmd().arg("test").run().await.expect_code(0);
    assert!(out.stdout.contains("3 passed, 0 failed"), "{}", out.stdout);
    let junit = p
        .cmd()
        .args(["test", "--format", "junit"])
        .run()
        .await
        .expect_code(0);
    well_formed(&junit.stdout);
    assert!(
        junit.stdout.contains("tests=\"3\" failures=\"0\""),
        "{}",
        junit.stdout
    );

    p.write(
        "policies/crm.yaml",
        &format!("{CRM}{TESTED_CRM}{WRONG_EXPECTATION}"),
    );
    let out = p.cmd().arg("test").run().await.expect_code(1);
    assert!(out.stdout.contains("3 passed, 1 failed"), "{}", out.stdout);
    assert!(
        out.stdout.contains("step `drop`: expected `failed`"),
        "{}",
        out.stdout
    );
    let junit = p
        .cmd()
        .args(["test", "--format", "junit"])
        .run()
        .await
        .expect_code(1);
    well_formed(&junit.stdout);
    assert!(
        junit.stdout.contains("tests=\"4\" failures=\"1\""),
        "{}",
        junit.stdout
    );
    assert_eq!(
        junit.stdout.matches("<failure ").count(),
        1,
        "{}",
        junit.stdout
    );
    assert!(
        junit
            .stdout
            .contains("name=\"expects &lt;a&gt; failure &amp; gets none\""),
        "{}",
        junit.stdout
    );
    let json: Value = serde_json::from_str(
        &p.cmd()
            .args(["test", "--format", "json"])
            .run()
            .await
            .expect_code(1)
            .stdout,
    )
    .expect("JSON results");
    assert_eq!(json.as_array().map(Vec::len), Some(4));
}

/// A small XML well-formedness check: one root, balanced tags, quoted attributes, only
/// the predefined entities.
fn well_formed(xml: &str) {
    let body = xml
        .strip_prefix("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n")
        .unwrap_or_else(|| panic!("no XML declaration:\n{xml}"));
    let mut stack: Vec<String> = Vec::new();
    let mut roots = 0;
    let mut rest = body;
    while let Some(open) = rest.find('<') {
        check_text(&rest[..open], xml);
        let close = rest[open..].find('>').expect("unclosed tag") + open;
        let tag = &rest[open + 1..close];
        rest = &rest[close + 1..];
        if let Some(name) = tag.strip_prefix('/') {
            assert_eq!(
                stack.pop().as_deref(),
                Some(name),
                "unbalanced </{name}>:\n{xml}"
            );
            continue;
        }
        let self_closing = tag.ends_with('/');
        let tag = tag.trim_end_matches('/');
        let (name, attrs) = tag.split_once(' ').unwrap_or((tag, ""));
        assert!(
            !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
            "bad element name `{name}`:\n{xml}"
        );
        let mut a = attrs.trim();
        while !a.is_empty() {
            let (key, value) = a
                .split_once("=\"")
                .unwrap_or_else(|| panic!("bad attribute in <{tag}>"));
            assert!(
                !key.trim().is_empty() && !key.contains(['<', '"']),
                "bad attribute `{key}`"
            );
            let end = value
                .find('"')
                .unwrap_or_else(|| panic!("unquoted attribute in <{tag}>"));
            check_text(&value[..end], xml);
            a = value[end + 1..].trim_start();
        }
        if stack.is_empty() {
            roots += 1;
        }
        if !self_closing {
            stack.push(name.to_owned());
        }
    }
    check_text(rest, xml);
    assert!(stack.is_empty(), "unclosed elements {stack:?}:\n{xml}");
    assert_eq!(roots, 1, "one root element:\n{xml}");
}

fn check_text(text: &str, xml: &str) {
    assert!(
        !text.contains('<') && !text.contains('>'),
        "unescaped text `{text}`:\n{xml}"
    );
    let mut parts = text.split('&');
    parts.next();
    for p in parts {
        assert!(
            ["amp;", "lt;", "gt;", "quot;", "apos;"]
                .iter()
                .any(|e| p.starts_with(e)),
            "bad entity in `{text}`:\n{xml}"
        );
    }
}

/// Run ids, timestamps and the server's port differ per run.
fn filters() -> Vec<(&'static str, &'static str)> {
    vec![
        (
            r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b",
            "[UUID]",
        ),
        (
            r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(\.\d+)?(Z|\+00:00| UTC)?",
            "[TIMESTAMP]",
        ),
        (r"127\.0\.0\.1:\d+", "127.0.0.1:[PORT]"),
    ]
}

#[tokio::test]
async fn plan_views_snapshots() {
    let crm = Crm::start(&["c1", "c2"]).await;
    let p = crm_project(&crm.server.url, "");
    let view = |format: &'static str| {
        p.cmd()
            .args(["plan", "requests/delete-alice.yaml", "--format", format])
            .run()
    };
    let text = view("text").await.expect_code(0).stdout;
    let json = view("json").await.expect_code(0).stdout;
    let markdown = view("markdown").await.expect_code(0).stdout;
    assert!(!text.contains('\u{1b}'), "no colour when not asked");
    assert!(crm.mutations().is_empty());
    insta::with_settings!({ filters => filters() }, {
        insta::assert_snapshot!("plan_text", text);
        insta::assert_snapshot!("plan_json", json);
        insta::assert_snapshot!("plan_markdown", markdown);
    });
}

// Regression: a dry run whose read failed printed "No changes: nothing would be changed" on
// stdout (and `"changes": []` in JSON) while stderr said a step failed; a reviewer reading
// the PR comment saw "no changes".
#[tokio::test]
async fn a_dry_run_with_a_failing_read_never_says_no_changes() {
    let server = TestServer::start(|_, _| Reply::json(500, json!({ "error": "down" }))).await;
    let p = crm_project(&server.url, "");
    let view = |format: &'static str, detailed: bool| {
        let mut cmd = p
            .cmd()
            .args(["plan", "requests/export-alice.yaml", "--format", format]);
        if detailed {
            cmd = cmd.arg("--detailed-exitcode");
        }
        cmd.run()
    };
    let text = view("text", true).await.expect_code(1);
    let markdown = view("markdown", false).await.expect_code(1);
    let json = view("json", false).await.expect_code(1);
    for out in [&text, &markdown, &json] {
        assert!(!out.stdout.contains("No changes"), "{}", out.stdout);
        assert!(
            out.stdout.contains("crm/read"),
            "the failure is not shown:\n{}",
            out.stdout
        );
        assert!(out.stderr.contains("incomplete"), "{}", out.stderr);
    }
    assert!(text.stdout.contains("INCOMPLETE"), "{}", text.stdout);
    assert!(
        markdown.stdout.contains("Incomplete dry run"),
        "{}",
        markdown.stdout
    );
    let doc = json.json();
    assert_eq!(doc["complete"], json!(false), "{doc:#}");
    assert_eq!(doc["errors"][0]["step"], json!("crm/read"), "{doc:#}");
    assert_eq!(doc["errors"][0]["status"], json!("failed"), "{doc:#}");
    assert!(
        doc["errors"][0]["message"]
            .as_str()
            .is_some_and(|m| m.contains("500")),
        "{doc:#}"
    );

    // A delete whose discovery read fails: the blocked deletion is listed too, and nothing
    // is saved for `apply`.
    let delete = p
        .cmd()
        .args([
            "plan",
            "requests/delete-alice.yaml",
            "--format",
            "json",
            "-o",
            "plan.json",
        ])
        .run()
        .await
        .expect_code(1)
        .json();
    assert_eq!(delete["complete"], json!(false), "{delete:#}");
    let steps: Vec<&str> = delete["errors"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["step"].as_str())
        .collect();
    assert_eq!(steps, ["crm/find", "crm/drop"], "{delete:#}");
    assert!(!p.path().join("plan.json").exists());
    assert!(server.calls().iter().all(|c| c.method == "GET"));
}

/// Two tenants whose CRMs hold the same contacts: what one tenant's plan deletes, the
/// other's connectors would delete too if the plan were pointed at them.
async fn two_tenants() -> (Crm, Crm, ProjectDir) {
    let ours = Crm::start(&["c1", "c2"]).await;
    let theirs = Crm::start(&["c1", "c2"]).await;
    let api = |url: &str| {
        format!(
            "      api:\n        kind: http\n        base_url: {url}\n        timeout: 5s\n        retry: {{ attempts: 2, backoff: 10ms }}\n"
        )
    };
    let config = format!(
        "requests: requests\ntenants:\n  t1:\n    connectors:\n{}  t2:\n    connectors:\n{}",
        api(&ours.server.url),
        api(&theirs.server.url)
    );
    let p = ProjectDir::new()
        .file("dsrctl.yaml", &config)
        .file("policies/crm.yaml", CRM)
        .file("policies/backups.yaml", BACKUPS)
        .file("requests/delete-alice.yaml", DELETE_REQUEST);
    p.cmd()
        .args(["plan", "requests/delete-alice.yaml", "-o", "plan.json"])
        .run()
        .await
        .expect_code(0);
    (ours, theirs, p)
}

/// Edits plan.json with `edit`, then checks that apply refuses naming `what`, and that
/// neither tenant's CRM was sent a mutation.
async fn edited_plan_is_refused(edit: impl FnOnce(&mut Value), what: &str) {
    let (ours, theirs, p) = two_tenants().await;
    let mut saved: Value = serde_json::from_str(&p.read("plan.json")).unwrap();
    edit(&mut saved);
    p.write("plan.json", &serde_json::to_string_pretty(&saved).unwrap());
    let out = p
        .cmd()
        .args(["apply", "plan.json", "--approve", "dpo"])
        .run()
        .await
        .expect_code(1);
    assert!(
        out.stderr.contains(what),
        "expected `{what}` in:\n{}",
        out.stderr
    );
    assert!(out.stderr.contains("edited"), "{}", out.stderr);
    assert!(ours.mutations().is_empty(), "{:?}", ours.mutations());
    assert!(theirs.mutations().is_empty(), "{:?}", theirs.mutations());
    assert_eq!(theirs.contacts.lock().unwrap().len(), 2);
}

// Regression: changing the tenant fields inside plan.json made `apply` delete records through
// the other tenant's connectors, with exit 0.
#[tokio::test]
async fn a_saved_plan_edited_to_another_tenant_is_refused() {
    edited_plan_is_refused(
        |saved| {
            saved["plan"]["request"]["tenant"] = json!("t2");
            for s in saved["plan"]["services"].as_array_mut().unwrap() {
                if s["connector"].is_object() {
                    s["connector"]["tenant"] = json!("t2");
                }
            }
        },
        "the request's `tenant`",
    )
    .await;
}

#[tokio::test]
async fn a_saved_plan_edited_to_another_request_id_is_refused() {
    edited_plan_is_refused(
        |saved| saved["plan"]["request"]["id"] = json!("r-other"),
        "the request's `id`",
    )
    .await;
}

#[tokio::test]
async fn a_saved_plan_whose_step_target_was_edited_is_refused() {
    edited_plan_is_refused(
        |saved| {
            let steps = saved["plan"]["steps"].as_array_mut().unwrap();
            let drop = steps
                .iter_mut()
                .find(|s| s["key"] == json!("crm/drop"))
                .unwrap();
            drop["action"]["http"]["path"] = json!("/admin/wipe/{{seg item.id}}");
        },
        "step `crm/drop`",
    )
    .await;
}

#[tokio::test]
async fn an_unedited_saved_plan_still_applies_after_a_round_trip_through_an_editor() {
    let (ours, theirs, p) = two_tenants().await;
    // Reformatting (an editor saving the file) changes no value: still accepted.
    let saved: Value = serde_json::from_str(&p.read("plan.json")).unwrap();
    p.write("plan.json", &serde_json::to_string(&saved).unwrap());
    p.cmd()
        .args(["apply", "plan.json", "--approve", "dpo"])
        .run()
        .await
        .expect_code(0);
    assert_eq!(ours.deletes().len(), 2, "{:?}", ours.mutations());
    assert!(theirs.mutations().is_empty());
}

#[tokio::test]
async fn a_plan_sealed_with_another_key_is_refused() {
    let crm = Crm::start(&["c1"]).await;
    let p = crm_project(&crm.server.url, "plan:\n  key: { env: TEST_PLAN_KEY }\n");
    p.cmd()
        .args(["plan", "requests/delete-alice.yaml", "-o", "plan.json"])
        .env("TEST_PLAN_KEY", "the key of the team that plans")
        .run()
        .await
        .expect_code(0);
    assert!(
        !p.path().join(".dsrctl/plan.key").exists(),
        "the configured key is used"
    );
    let out = p
        .cmd()
        .args(["apply", "plan.json", "--approve", "dpo"])
        .env("TEST_PLAN_KEY", "another key")
        .run()
        .await
        .expect_code(1);
    assert!(out.stderr.contains("another key"), "{}", out.stderr);
    assert!(crm.mutations().is_empty());
    p.cmd()
        .args(["apply", "plan.json", "--approve", "dpo"])
        .env("TEST_PLAN_KEY", "the key of the team that plans")
        .run()
        .await
        .expect_code(0);
    assert_eq!(crm.deletes().len(), 1);
}
