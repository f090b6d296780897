//! Datasets on the real databases: a composite foreign key is followed as pairs, and a row
//! found downward that also references another person's row is kept, reported and
//! detached, unless the dataset says `shared_rows: erase`.
//!
//! The bank: Alice (customer 1) owns accounts (1, 10) and (2, 20), Bob owns (1, 20) and
//! (2, 10): column by column, Alice's regions and numbers reach all four accounts' transfers.
//! Messages 1 and 2 are between Alice and Bob; 3 and 4 are Alice's alone; 5 is Bob's.

mod sql_support;
mod support;

use serde_json::{Value, json};
use sql_support::{Db, Kind};
use support::cli::ProjectDir;

const TABLES: &[(&str, &str)] = &[
    (
        "customer",
        "id INT NOT NULL, email VARCHAR(200) NOT NULL, name VARCHAR(200), PRIMARY KEY (id)",
    ),
    (
        "account",
        "region INT NOT NULL, no INT NOT NULL, owner_id INT NOT NULL, iban VARCHAR(40), \
         PRIMARY KEY (region, no), FOREIGN KEY (owner_id) REFERENCES {customer}(id)",
    ),
    (
        "transfer",
        "id INT NOT NULL, region INT NOT NULL, account_no INT NOT NULL, note VARCHAR(200), \
         PRIMARY KEY (id), FOREIGN KEY (region, account_no) REFERENCES {account}(region, no)",
    ),
    (
        "message",
        "id INT NOT NULL, sender_id INT, recipient_id INT, body VARCHAR(200), PRIMARY KEY (id), \
         FOREIGN KEY (sender_id) REFERENCES {customer}(id), \
         FOREIGN KEY (recipient_id) REFERENCES {customer}(id)",
    ),
];

const ROWS: &[(&str, &str)] = &[
    (
        "customer",
        "(1, 'alice@bank.test', 'Alice'), (2, 'bob@bank.test', 'Bob')",
    ),
    (
        "account",
        "(1, 10, 1, 'FR-A1'), (2, 20, 1, 'FR-A2'), (1, 20, 2, 'GB-B1'), (2, 10, 2, 'GB-B2')",
    ),
    (
        "transfer",
        "(1, 1, 10, 'rent'), (2, 2, 20, 'gift'), (3, 1, 20, 'Bob pays'), (4, 2, 10, 'Bob saves')",
    ),
    (
        "message",
        "(1, 1, 2, 'Hi Bob'), (2, 2, 1, 'Hi Alice'), (3, 1, 1, 'note to self'), \
         (4, 1, NULL, 'draft'), (5, 2, 2, 'Bob alone')",
    ),
];

async fn create_bank(db: &Db) {
    db.create(TABLES, ROWS).await;
}

fn dataset(db: &Db, message_shared_rows: &str) -> String {
    format!(
        r#"service: bank
connector: db
dataset:
  tables:
    {customer}:
      columns:
        id:
        email: {{ identity: email, category: user.contact.email }}
        name: user.name
    {account}:
      key: [region, no]
      columns:
        region:
        no:
        owner_id: {{ references: {customer}.id }}
        iban: user.financial.bank_account
    {transfer}:
      columns: {{ id: , region: , account_no: , note: user.content }}
    {message}:{message_shared_rows}
      columns:
        id:
        sender_id: {{ references: {customer}.id }}
        recipient_id: {{ references: {customer}.id }}
        body: user.content
  references:
    - {transfer}.region -> {account}.region
    - {transfer}.account_no -> {account}.no
dsr:
  rectify: {{ unsupported: "by hand" }}
"#,
        customer = db.t("customer"),
        account = db.t("account"),
        transfer = db.t("transfer"),
        message = db.t("message"),
    )
}

fn project(db: &Db, kind: &str, message_shared_rows: &str) -> ProjectDir {
    let url = match db.kind {
        Kind::Lite => format!("sqlite:{}", db.base_dir().join("test.db").display()),
        _ => db.url.clone(),
    };
    ProjectDir::new()
        .file(
            "dsrctl.yaml",
            &format!(
                "tenants:\n  t1:\n    connectors:\n      db:\n        kind: sql\n        url: \"{url}\"\n        timeout: 20s\n"
            ),
        )
        .file("policies/bank.yaml", &dataset(db, message_shared_rows))
        .file(
            "request.yaml",
            &format!(
                "id: r-1\nkind: {kind}\ntenant: t1\nreceived: 2026-11-02\nsubject: {{ email: alice@bank.test }}\n"
            ),
        )
}

/// The rows of a table, ordered by their key, as `db.read` gives them.
async fn rows(db: &Db, table: &str, key: &[&str]) -> Vec<Value> {
    db.read(json!({ "select": { "table": db.t(table), "order_by": key } }))
        .await
        .expect("rows")
}

async fn ids(db: &Db, table: &str) -> Vec<i64> {
    rows(db, table, &["id"])
        .await
        .iter()
        .map(|r| r["id"].as_i64().expect("id"))
        .collect()
}

async fn accounts(db: &Db) -> Vec<(i64, i64)> {
    rows(db, "account", &["region", "no"])
        .await
        .iter()
        .map(|r| {
            (
                r["region"].as_i64().expect("region"),
                r["no"].as_i64().expect("no"),
            )
        })
        .collect()
}

on_all_backends!(
    composite_foreign_key_is_followed_as_pairs_in_access,
    erasure_keeps_rows_shared_downward_and_follows_composite_keys_as_pairs,
    shared_rows_erase_opts_out_of_keeping_shared_rows,
);

/// Regression: `(region, account_no) -> account(region, no)` was followed as two IN lists
/// ORed, so Alice's export held Bob's transfers 3 and 4.
async fn composite_foreign_key_is_followed_as_pairs_in_access(kind: Kind) {
    let db = Db::new(kind, "ds_pairs").await;
    create_bank(&db).await;
    let p = project(&db, "access", "");
    p.cmd().arg("validate").run().await.expect_code(0);
    let out = p
        .cmd()
        .args(["run", "request.yaml", "--show-personal-data"])
        .run()
        .await
        .expect_code(0);
    let run = out
        .stdout
        .split("Run ")
        .nth(1)
        .and_then(|r| r.split(':').next())
        .expect("run id")
        .trim()
        .to_owned();
    p.cmd()
        .args(["report", &run, "--package", "pkg", "--show-personal-data"])
        .run()
        .await
        .expect_code(0);
    let transfers = std::fs::read_dir(p.path().join("pkg"))
        .expect("package")
        .flatten()
        .flat_map(|e| {
            if e.path().is_dir() {
                std::fs::read_dir(e.path())
                    .map(|d| d.flatten().map(|f| f.path()).collect::<Vec<_>>())
                    .unwrap_or_default()
            } else {
                vec![e.path()]
            }
        })
        .find(|f| f.file_name().is_some_and(|n| n == "transfer.json"))
        .expect("transfer.json in the package");
    let v: Value =
        serde_json::from_str(&std::fs::read_to_string(transfers).expect("read")).expect("JSON");
    let records = match &v {
        Value::Array(a) => a.clone(),
        other => other["records"].as_array().cloned().unwrap_or_default(),
    };
    let mut notes: Vec<&str> = records
        .iter()
        .map(|r| r["note"].as_str().expect("note"))
        .collect();
    notes.sort();
    assert_eq!(notes, ["gift", "rent"], "{kind:?}: only Alice's transfers");
    db.drop().await;
}

/// Regression: messages between Alice and Bob were deleted with Alice's, and Bob's
/// transfers with hers (the composite key followed column by column).
async fn erasure_keeps_rows_shared_downward_and_follows_composite_keys_as_pairs(kind: Kind) {
    let db = Db::new(kind, "ds_shared").await;
    create_bank(&db).await;
    let p = project(&db, "delete", "");
    p.cmd().arg("validate").run().await.expect_code(0);
    let plan = p
        .cmd()
        .args(["plan", "request.yaml", "--format", "json"])
        .run()
        .await
        .expect_code(0);
    let plan: Value = serde_json::from_str(&plan.stdout).expect("plan JSON");
    let counts: Vec<(String, u64)> = plan["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .map(|c| {
            (
                c["step"].as_str().unwrap_or_default().to_owned(),
                c["count"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    // Step ids carry the table's name (schema-qualified on PostgreSQL).
    let count = |step: &str| {
        let (prefix, suffix) = step.split_once('*').expect("a pattern");
        counts
            .iter()
            .find(|(s, _)| s.starts_with(prefix) && s.ends_with(suffix))
            .map(|(_, n)| *n)
            .unwrap_or_else(|| panic!("{kind:?}: no `{step}` in the dry run: {counts:?}"))
    };
    assert_eq!(
        count("bank/erase-*message"),
        2,
        "{kind:?}: messages 3 and 4"
    );
    assert_eq!(
        count("bank/erase-*transfer"),
        2,
        "{kind:?}: Alice's pairs only"
    );
    // The messages kept as shared, shown as what happens to them: their reference to Alice
    // is set to NULL.
    assert_eq!(
        count("bank/detach-shared-*message-sender-id"),
        1,
        "{kind:?}"
    );
    assert_eq!(
        count("bank/detach-shared-*message-recipient-id"),
        1,
        "{kind:?}"
    );
    assert_eq!(
        ids(&db, "message").await,
        [1, 2, 3, 4, 5],
        "{kind:?}: dry run"
    );
    // A message that becomes shared after the dry run is kept too: the guard is in the
    // statement.
    db.exec(&format!(
        "UPDATE {} SET recipient_id = 2 WHERE id = 4",
        db.q("message")
    ))
    .await;
    let out = p
        .cmd()
        .args(["run", "request.yaml", "--approve", "dpo"])
        .run()
        .await
        .expect_code(0);
    let run = out
        .stdout
        .split("Run ")
        .nth(1)
        .and_then(|r| r.split(':').next())
        .expect("run id")
        .trim()
        .to_owned();
    assert_eq!(ids(&db, "customer").await, [2], "{kind:?}");
    assert_eq!(
        accounts(&db).await,
        [(1, 20), (2, 10)],
        "{kind:?}: Bob's accounts stay"
    );
    assert_eq!(
        ids(&db, "transfer").await,
        [3, 4],
        "{kind:?}: Bob's transfers stay"
    );
    assert_eq!(
        ids(&db, "message").await,
        [1, 2, 4, 5],
        "{kind:?}: the messages with Bob stay"
    );
    let messages = rows(&db, "message", &["id"]).await;
    assert_eq!(messages[0]["sender_id"], Value::Null, "{kind:?}: detached");
    assert_eq!(messages[0]["recipient_id"], json!(2), "{kind:?}");
    assert_eq!(
        messages[1]["recipient_id"],
        Value::Null,
        "{kind:?}: detached"
    );
    assert_eq!(messages[1]["sender_id"], json!(2), "{kind:?}");
    assert_eq!(
        messages[3]["body"],
        json!("Bob alone"),
        "{kind:?}: bystander"
    );
    let report = p.cmd().args(["report", &run]).run().await.expect_code(0);
    // The report lists the rows kept as shared by their own step: messages 1, 2 and 4.
    let kept = report
        .stdout
        .lines()
        .find(|l| l.starts_with("| bank/shared-") && l.contains("message |"))
        .unwrap_or_else(|| panic!("{kind:?}: no shared step in the report: {}", report.stdout));
    let cells: Vec<&str> = kept.split('|').map(str::trim).collect();
    assert_eq!(cells[7], "3", "{kind:?}: found column of {kept}");
    db.drop().await;
}

async fn shared_rows_erase_opts_out_of_keeping_shared_rows(kind: Kind) {
    let db = Db::new(kind, "ds_shared_erase").await;
    create_bank(&db).await;
    let p = project(&db, "delete", "\n      shared_rows: erase");
    p.cmd().arg("validate").run().await.expect_code(0);
    let plan = p
        .cmd()
        .args(["plan", "request.yaml", "--format", "json"])
        .run()
        .await
        .expect_code(0);
    assert!(
        !plan.stdout.contains("shared-message"),
        "{kind:?}: nothing kept as shared: {}",
        plan.stdout
    );
    p.cmd()
        .args(["run", "request.yaml", "--approve", "dpo"])
        .run()
        .await
        .expect_code(0);
    assert_eq!(
        ids(&db, "message").await,
        [5],
        "{kind:?}: every message of Alice's erased"
    );
    assert_eq!(ids(&db, "transfer").await, [3, 4], "{kind:?}");
    db.drop().await;
}
