//! `dsrctl request import`: 10,000 CSV rows, 50 of them bad, in one transaction; the bad rows
//! named by line and nothing recorded from them; importing the file again records nothing.

mod support;

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

use dsrctl::journal::RequestState;
use dsrctl::load::load_project;
use support::cli::Dsrctl;
use support::items::{ItemServer, write_project};

const PLAYBOOK: &str = r#"
service: things
connector: api
needs_identities: [email]
dsr:
  access:
    - id: list
      http: { method: GET, path: /things/items, query: { owner: "{{subject.email}}" } }
      collect: items
  export: { same_as: [access] }
  rectify: { unsupported: "test" }
  restrict: { unsupported: "test" }
  delete:
    - id: drop
      http: { method: DELETE, path: "/things/owners/{{seg subject.email}}" }
      absent_on: [404]
      preview: { none: "test" }
"#;

/// 10,000 rows after the header; every 200th row (50 in all) is bad in one of five ways.
/// Returns the CSV and the line numbers of the bad rows.
fn csv() -> (String, BTreeSet<u64>) {
    let mut text = String::from("kind,tenant,email,received,note\n");
    let mut bad = BTreeSet::new();
    for i in 0..10_000u64 {
        let line = i + 2;
        let kind = if i % 3 == 0 { "delete" } else { "access" };
        let row = if i % 200 == 199 {
            bad.insert(line);
            match (i / 200) % 5 {
                0 => format!("erase,t1,user{i}@example.com,2026-11-02,bad kind"),
                1 => format!("access,nope,user{i}@example.com,2026-11-02,unknown tenant"),
                2 => format!("access,t1,user{i}-at-example.com,2026-11-02,not an email"),
                3 => format!("access,t1,user{i}@example.com,2026-13-45,no such date"),
                _ => format!("access,t1,user{i}@example.com"),
            }
        } else {
            format!("{kind},t1,user{i}@example.com,2026-11-02,\"ticket {i}, from the form\"")
        };
        text.push_str(&row);
        text.push('\n');
    }
    (text, bad)
}

fn rejected_lines(stderr: &str) -> BTreeSet<u64> {
    stderr
        .lines()
        .filter(|l| l.contains(": rejected: "))
        .filter_map(|l| {
            l.split("requests.csv:")
                .nth(1)?
                .split(':')
                .next()?
                .parse()
                .ok()
        })
        .collect()
}

async fn requests_in_store(dir: &Path) -> Vec<dsrctl::journal::RequestRecord> {
    let project = load_project(dir).unwrap();
    let store = dsrctl::workflow::open_store(&project, &dir.join(".dsrctl"))
        .await
        .unwrap();
    let all = store.requests().await.unwrap();
    store.close().await;
    all
}

fn postgres_url() -> String {
    std::env::var("DSRCTL_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_rows_with_fifty_bad_ones_then_a_reimport_that_records_nothing() {
    let server = ItemServer::start_background(Duration::ZERO);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    write_project(dir, &server.url(), &[("things", PLAYBOOK.to_owned())]);
    import_twice(dir).await;
}

/// The same on a PostgreSQL store: one `INSERT ... SELECT FROM UNNEST` and one audit append.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_rows_on_postgres() {
    let server = ItemServer::start_background(Duration::ZERO);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    write_project(dir, &server.url(), &[("things", PLAYBOOK.to_owned())]);
    let base = postgres_url();
    let sep = if base.contains('?') { '&' } else { '?' };
    let schema = format!("test_import_{}", std::process::id());
    let config = std::fs::read_to_string(dir.join("dsrctl.yaml")).unwrap();
    std::fs::write(
        dir.join("dsrctl.yaml"),
        format!("{config}state: \"{base}{sep}schema={schema}\"\n"),
    )
    .unwrap();
    import_twice(dir).await;
    let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&base)
        .await
        .unwrap();
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "DROP SCHEMA \"{schema}\" CASCADE"
    )))
    .execute(&mut conn)
    .await
    .unwrap();
}

async fn import_twice(dir: &Path) {
    let (text, bad) = csv();
    assert_eq!(bad.len(), 50);
    std::fs::write(dir.join("requests.csv"), &text).unwrap();

    let start = Instant::now();
    let out = Dsrctl::new(dir)
        .args(["request", "import", "requests.csv", "--by", "dana"])
        .env("DSRCTL_LOG", "warn")
        .run()
        .await;
    let took = start.elapsed();
    assert_eq!(out.code, 1, "rejected rows make it exit 1: {out:?}");
    assert!(
        out.stdout.contains(
            "10000 row(s): recorded 9950 request(s), 0 already recorded, 0 repeated, 50 rejected"
        ),
        "{}",
        out.stdout
    );
    assert_eq!(rejected_lines(&out.stderr), bad, "{}", out.stderr);
    assert!(out.stderr.contains("tenant `nope`"), "{}", out.stderr);
    eprintln!(
        "imported 10,000 rows in {took:?} ({:.0} rows/s, process start included)",
        10_000.0 / took.as_secs_f64()
    );

    let records = requests_in_store(dir).await;
    assert_eq!(records.len(), 9950);
    let notes: BTreeSet<String> = records
        .iter()
        .filter_map(|r| r.request.note.clone())
        .collect();
    assert!(notes.contains("ticket 0, from the form"));
    assert!(
        !notes
            .iter()
            .any(|n| n.contains("bad kind") || n.contains("no such date")),
        "nothing of a bad row is recorded"
    );
    let approved = records
        .iter()
        .filter(|r| r.state == RequestState::Approved)
        .count();
    let received = records
        .iter()
        .filter(|r| r.state == RequestState::Received)
        .count();
    // Access rows are approved by the rule; delete rows (every third) wait for a person.
    assert_eq!(
        received,
        (0..10_000).filter(|i| i % 3 == 0 && i % 200 != 199).count()
    );
    assert_eq!(approved + received, 9950);

    // Again: the rows' ids come from their content, so nothing new is recorded.
    let again = Dsrctl::new(dir)
        .args(["request", "import", "requests.csv"])
        .env("DSRCTL_LOG", "warn")
        .run()
        .await;
    assert!(
        again.stdout.contains(
            "10000 row(s): recorded 0 request(s), 9950 already recorded, 0 repeated, 50 rejected"
        ),
        "{}",
        again.stdout
    );
    assert_eq!(requests_in_store(dir).await.len(), 9950);

    // The audit log has each recorded request once, in the importer's name.
    let project = load_project(dir).unwrap();
    let store = dsrctl::workflow::open_store(&project, &dir.join(".dsrctl"))
        .await
        .unwrap();
    let audit = store.audit_entries().await.unwrap();
    let key = std::fs::read_to_string(dir.join(".dsrctl/audit.key")).unwrap();
    dsrctl::store::verify_chain(&audit, Some(key.trim().as_bytes())).unwrap();
    let received_entries: Vec<_> = audit
        .iter()
        .filter(|e| e.kind == "request.received")
        .collect();
    assert_eq!(received_entries.len(), 9950);
    assert!(
        received_entries
            .iter()
            .all(|e| e.actor.as_deref() == Some("dana"))
    );
    assert_eq!(
        audit
            .iter()
            .filter(|e| e.kind == "request.approved")
            .count(),
        approved
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_repeated_in_one_file_are_recorded_once_and_json_lines_work_too() {
    let server = ItemServer::start_background(Duration::ZERO);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    write_project(dir, &server.url(), &[("things", PLAYBOOK.to_owned())]);
    std::fs::write(
        dir.join("agents.jsonl"),
        concat!(
            r#"{"id": "agent-1", "kind": "access", "subject": {"email": "a@example.com"}}"#,
            "\n",
            r#"{"kind": "delete", "subject": {"email": "b@example.com"}, "received": "2026-11-02"}"#,
            "\n\n",
            r#"{"kind": "delete", "subject": {"email": "b@example.com"}, "received": "2026-11-02"}"#,
            "\n",
            r#"{"kind": "access", "subject": "#,
            "\n",
            r#"{"id": "drp-AGENT-0123456789abcdef01234567", "kind": "access", "subject": {"email": "c@example.com"}}"#,
            "\n",
        ),
    )
    .unwrap();
    let out = Dsrctl::new(dir)
        .args(["request", "import", "agents.jsonl", "--tenant", "t1"])
        .env("DSRCTL_LOG", "warn")
        .run()
        .await;
    assert!(
        out.stdout.contains(
            "5 row(s): recorded 2 request(s), 0 already recorded, 1 repeated, 2 rejected"
        ),
        "{out:?}"
    );
    assert!(
        out.stderr.contains("agents.jsonl:5: rejected: not JSON"),
        "{}",
        out.stderr
    );
    // An id of the kind the Data Rights Protocol gives would let its agent read the
    // request: only that intake makes one.
    assert!(
        out.stderr
            .contains("agents.jsonl:6: rejected: request id `drp-AGENT-0123456789abcdef01234567`: ids beginning `drp-`"),
        "{}",
        out.stderr
    );
    let ids: BTreeSet<String> = requests_in_store(dir)
        .await
        .into_iter()
        .map(|r| r.request.id)
        .collect();
    assert!(ids.contains("agent-1"), "{ids:?}");
    assert_eq!(ids.len(), 2);
}
