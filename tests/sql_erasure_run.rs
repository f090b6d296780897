//! SQL erasure through the command line, as a new user runs it: playbooks in YAML, `plan`,
//! `run`, on the real PostgreSQL and MariaDB servers and SQLite. What a playbook says reaches
//! the database as it means: `mask: null` is NULL, a mask that cannot fit is found by the dry
//! run, a read that collects and captures feeds its dependants in a real run, and a raw
//! `execute` is re-checked against the subject before it changes anything.

mod sql_support;
mod support;

use serde_json::{Value, json};
use sql_support::{Db, Kind};
use support::cli::ProjectDir;

fn project(db: &Db, playbook: &str, request: &str) -> ProjectDir {
    let url = match db.kind {
        Kind::Lite => format!("sqlite:{}", db.base_dir().join("test.db").display()),
        _ => db.url.clone(),
    };
    let hmac = if playbook.contains("hmac") {
        "        hmac_key: { env: SHOP_HMAC }\n"
    } else {
        ""
    };
    ProjectDir::new()
        .file(
            "dsrctl.yaml",
            &format!(
                "tenants:\n  t1:\n    connectors:\n      db:\n        kind: sql\n        url: \"{url}\"\n        timeout: 20s\n{hmac}"
            ),
        )
        .file("policies/shop.yaml", playbook)
        .file("request.yaml", request)
}

/// The address table: a street that is personal data, a `varchar(40)` and a NOT NULL column.
async fn address(db: &Db) -> String {
    let a = db.q("address");
    let charset = if db.kind == Kind::My {
        " DEFAULT CHARSET = utf8mb4"
    } else {
        ""
    };
    db.exec(&format!(
        "CREATE TABLE {a} (id INT PRIMARY KEY, customer_id INT NOT NULL, street VARCHAR(100), \
         house VARCHAR(40), zip VARCHAR(10) NOT NULL){charset}"
    ))
    .await;
    db.exec(&format!(
        "INSERT INTO {a} VALUES (1, 1, 'Main St', '12a', '10115'), (2, 2, 'Side St', '7', '75001')"
    ))
    .await;
    db.t("address")
}

async fn street_rows(db: &Db) -> Vec<Value> {
    db.read(json!({ "select": { "table": db.t("address"), "columns": ["id", "street", "house"], "order_by": ["id"] } }))
        .await
        .expect("address")
}

const DELETE_ADA: &str = "id: r-1\nkind: delete\ntenant: t1\nreceived: 2026-11-02\nsubject: { email: ada@example.com }\n";

fn masking(customers: &str, address: &str, set: &str) -> String {
    shop_delete(&format!(
        r#"    - id: find
      sql: {{ select: {{ table: {customers}, columns: [id], where: {{ email: "{{{{subject.email}}}}" }} }} }}
      capture: {{ id: /0/id }}
    - id: mask-address
      needs: [find]
      sql:
        update:
          table: {address}
          set: {set}
          where: {{ customer_id: "{{{{find.id}}}}" }}
        max_rows: 1
"#
    ))
}

on_all_backends!(
    unquoted_mask_null_writes_sql_null,
    hmac_into_a_varchar_40_fails_the_dry_run_not_the_run,
    collect_and_capture_feed_the_next_step_in_a_real_run,
    raw_execute_in_a_playbook_never_erases_a_stranger,
    a_constraint_failure_in_a_later_step_rolls_the_service_back,
    apply_erases_no_row_the_saved_plan_did_not_show,
    a_read_between_two_mutations_joins_their_transaction,
);

// Regression (issue 16): `street: { mask: null }`, unquoted, passed `validate` and wrote the
// text `{"mask":null}` into the street.
async fn unquoted_mask_null_writes_sql_null(kind: Kind) {
    let db = Db::new(kind, "cli_masknull").await;
    let a = address(&db).await;
    let p = project(
        &db,
        &masking(&db.t("customers"), &a, "{ street: { mask: null } }"),
        DELETE_ADA,
    );
    p.cmd().arg("validate").run().await.expect_code(0);
    p.cmd()
        .args(["run", "request.yaml", "--approve", "dpo"])
        .env("SHOP_HMAC", "k")
        .run()
        .await
        .expect_code(0);
    assert_eq!(
        street_rows(&db).await,
        [
            json!({ "id": 1, "street": null, "house": "12a" }),
            json!({ "id": 2, "street": "Side St", "house": "7" })
        ],
        "{kind:?}"
    );
    let bad = project(
        &db,
        &masking(&db.t("customers"), &a, "{ street: { mask: nul } }"),
        DELETE_ADA,
    );
    let out = bad.cmd().arg("validate").run().await.expect_code(1);
    let all = format!("{}{}", out.stdout, out.stderr);
    assert!(
        all.contains("shop.yaml:18:34") && all.contains("`hmac`"),
        "points at the mask: {all}"
    );
    db.drop().await;
}

// Regression (issue 16): `hmac` into a `varchar(40)` passed the dry run and failed the run
// with SQLSTATE 22001 after other steps had committed.
async fn hmac_into_a_varchar_40_fails_the_dry_run_not_the_run(kind: Kind) {
    if kind == Kind::Lite {
        // SQLite does not enforce declared lengths: there is nothing to fail.
        return;
    }
    let db = Db::new(kind, "cli_hmac40").await;
    let a = address(&db).await;
    let p = project(
        &db,
        &masking(&db.t("customers"), &a, "{ house: { mask: hmac } }"),
        DELETE_ADA,
    );
    let out = p
        .cmd()
        .args(["plan", "request.yaml"])
        .env("SHOP_HMAC", "k")
        .run()
        .await
        .expect_code(1);
    let all = format!("{}{}", out.stdout, out.stderr);
    assert!(all.contains("length: 40"), "{kind:?}: {all}");
    let before = street_rows(&db).await;
    let fixed = project(
        &db,
        &masking(
            &db.t("customers"),
            &a,
            "{ house: { mask: hmac, length: 40 } }",
        ),
        DELETE_ADA,
    );
    fixed
        .cmd()
        .args(["plan", "request.yaml"])
        .env("SHOP_HMAC", "k")
        .run()
        .await
        .expect_code(0);
    assert_eq!(
        street_rows(&db).await,
        before,
        "the dry run changed nothing"
    );
    db.drop().await;
}

// Regression (issue 16): a SQL read with both `collect` and `capture` lost its capture in a
// real run (the dry run had it); its dependants were skipped as "nothing held" and the access
// request silently missed the subject's orders.
async fn collect_and_capture_feed_the_next_step_in_a_real_run(kind: Kind) {
    let db = Db::new(kind, "cli_capture").await;
    let (c, o) = (db.t("customers"), db.t("orders"));
    let playbook = format!(
        r#"service: shop
connector: db
needs_identities: [email]
dsr:
  access:
    - id: customer
      sql: {{ select: {{ table: {c}, columns: [id, email], where: {{ email: "{{{{subject.email}}}}" }} }} }}
      capture: {{ id: /0/id }}
      collect: customer
    - id: orders
      needs: [customer]
      sql: {{ select: {{ table: {o}, where: {{ customer_id: "{{{{customer.id}}}}" }}, order_by: [id] }} }}
      collect: orders
  export: {{ same_as: [access] }}
  restrict: {{ unsupported: "test" }}
  rectify: {{ unsupported: "test" }}
  delete: {{ unsupported: "test" }}
"#
    );
    let p = project(
        &db,
        &playbook,
        "id: r-2\nkind: access\ntenant: t1\nreceived: 2026-11-02\nsubject: { email: ada@example.com }\n",
    );
    let out = p
        .cmd()
        .args(["run", "request.yaml", "--show-personal-data"])
        .run()
        .await
        .expect_code(0);
    assert!(
        !out.stdout.contains("skipped") || out.stdout.contains("0 skipped"),
        "{kind:?}: {}",
        out.stdout
    );
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
    let orders = std::fs::read_dir(p.path().join("pkg"))
        .expect("package")
        .flatten()
        .flat_map(|e| walk(&e.path()))
        .find(|f| f.to_string_lossy().contains("orders"))
        .map(|f| std::fs::read_to_string(f).expect("orders file"))
        .unwrap_or_default();
    for item in ["book", "pen", "ink"] {
        assert!(orders.contains(item), "{kind:?}: orders package: {orders}");
    }
    db.drop().await;
}

fn walk(p: &std::path::Path) -> Vec<std::path::PathBuf> {
    if p.is_dir() {
        std::fs::read_dir(p)
            .map(|d| d.flatten().flat_map(|e| walk(&e.path())).collect())
            .unwrap_or_default()
    } else {
        vec![p.to_path_buf()]
    }
}

// Regression (issue 16): a raw `execute` erased `a@x.com` and `A@x.com` with `A@X.COM`.
// The engine re-reads the step's preview in the mutation's transaction and stops it.
async fn raw_execute_in_a_playbook_never_erases_a_stranger(kind: Kind) {
    let db = Db::new(kind, "cli_guard").await;
    let t = db.q("logins");
    let ddl = match kind {
        Kind::Pg => "email TEXT COLLATE \"C\"".to_owned(),
        Kind::My => "email VARCHAR(100)".to_owned(),
        Kind::Lite => "email TEXT COLLATE NOCASE".to_owned(),
    };
    let charset = if kind == Kind::My {
        " DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_general_ci"
    } else {
        ""
    };
    db.exec(&format!(
        "CREATE TABLE {t} (id INT PRIMARY KEY, {ddl}){charset}"
    ))
    .await;
    db.exec(&format!(
        "INSERT INTO {t} VALUES (1, 'a@x.com'), (2, 'A@x.com'), (3, 'A@X.COM'), (4, 'a@x.com ')"
    ))
    .await;
    // PostgreSQL compares text exactly unless told otherwise; the playbook tells it.
    let cmp = if kind == Kind::Pg {
        "lower(email) = lower(:email)"
    } else {
        "email = :email"
    };
    let playbook = shop_delete(&format!(
        r#"    - id: drop-logins
      sql:
        execute: "DELETE FROM {t} WHERE {cmp}"
        params: {{ email: "{{{{subject.email}}}}" }}
      preview:
        sql:
          query: "SELECT id, email FROM {t} WHERE {cmp}"
          params: {{ email: "{{{{subject.email}}}}" }}
"#,
        t = t.replace('"', "\\\"")
    ));
    let p = project(
        &db,
        &playbook,
        "id: r-3\nkind: delete\ntenant: t1\nreceived: 2026-11-02\nsubject: { email: A@X.COM }\n",
    );
    let out = p
        .cmd()
        .args(["run", "request.yaml", "--approve", "dpo"])
        .run()
        .await
        .expect_code(1);
    let all = format!("{}{}", out.stdout, out.stderr);
    assert!(all.contains("not exactly"), "{kind:?}: {all}");
    assert_eq!(db.count("logins").await, 4, "{kind:?}: nothing erased");
    db.drop().await;
}

// Regression (issue 16): an erasure stopped half-way: the last step failed (SQLSTATE 22001)
// after the steps before it had committed. Its failure is now found before the service's
// first mutation, and the database is as it was.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failure_in_the_last_step_of_a_service_leaves_the_database_unchanged() {
    for kind in [Kind::Pg, Kind::My] {
        let db = Db::new(kind, "cli_halfway").await;
        let a = address(&db).await;
        let (c, o) = (db.t("customers"), db.t("orders"));
        let playbook = shop_delete(&format!(
            r#"    - id: drop-orders
      sql:
        delete:
          table: {o}
          through: {{ table: {c}, column: customer_id, where: {{ email: "{{{{subject.email}}}}" }} }}
    - id: find
      needs: [drop-orders]
      sql: {{ select: {{ table: {c}, columns: [id], where: {{ email: "{{{{subject.email}}}}" }} }} }}
      capture: {{ id: /0/id }}
    - id: mask-house
      needs: [find]
      sql:
        update: {{ table: {a}, set: {{ house: {{ mask: hmac }} }}, where: {{ customer_id: "{{{{find.id}}}}" }} }}
        max_rows: 1
"#
        ));
        let p = project(&db, &playbook, DELETE_ADA);
        let orders = db.count("orders").await;
        let out = p
            .cmd()
            .args(["run", "request.yaml", "--approve", "dpo"])
            .env("SHOP_HMAC", "k")
            .run()
            .await
            .expect_code(1);
        let all = format!("{}{}", out.stdout, out.stderr);
        assert!(
            all.contains("nothing of the service was changed"),
            "{kind:?}: {all}"
        );
        assert_eq!(
            db.count("orders").await,
            orders,
            "{kind:?}: no order erased"
        );
        assert_eq!(street_rows(&db).await[0]["house"], json!("12a"), "{kind:?}");
        db.drop().await;
    }
}

// A structured delete found through an identity has a row limit even when its step sets none:
// a predicate that matches far more than one person's rows is rolled back, not committed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_identity_delete_without_max_rows_has_a_safe_default() {
    let db = Db::new(Kind::Lite, "cli_maxrows").await;
    let t = db.q("events");
    db.exec(&format!(
        "CREATE TABLE {t} (id INTEGER PRIMARY KEY, email TEXT)"
    ))
    .await;
    db.exec(&format!(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 10001) \
         INSERT INTO {t} SELECT i, 'ada@example.com' FROM n"
    ))
    .await;
    let playbook = &shop_delete(
        r#"    - id: drop-events
      sql: { delete: { table: events, where: { email: "{{subject.email}}" } } }
"#,
    );
    let p = project(&db, playbook, DELETE_ADA);
    let out = p
        .cmd()
        .args(["run", "request.yaml", "--approve", "dpo"])
        .run()
        .await
        .expect_code(1);
    let all = format!("{}{}", out.stdout, out.stderr);
    assert!(all.contains("max_rows 10000"), "{all}");
    assert_eq!(db.count("events").await, 10_001, "rolled back");
    db.drop().await;
}

// Regression (issue 16): card numbers, codes and house numbers appeared in text, Markdown and
// JSON previews without `--show-personal-data` (only strings were masked).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn previews_mask_numbers_and_booleans_too() {
    let db = Db::new(Kind::Lite, "cli_previewmask").await;
    db.exec(&format!(
        "UPDATE {} SET score = 4111111111, balance = 987654.32 WHERE id = 1",
        db.q("customers")
    ))
    .await;
    let playbook = &shop_delete(
        r#"    - id: drop-customer
      sql: { delete: { table: customers, where: { email: "{{subject.email}}" } }, max_rows: 1 }
"#,
    );
    let p = project(&db, playbook, DELETE_ADA);
    for format in ["text", "markdown", "json"] {
        let out = p
            .cmd()
            .args(["plan", "request.yaml", "--format", format])
            .run()
            .await
            .expect_code(0);
        for secret in ["4111111111", "987654"] {
            assert!(!out.stdout.contains(secret), "{format}: {}", out.stdout);
        }
        if format == "json" {
            assert!(out.stdout.contains("<number>"), "{}", out.stdout);
        }
    }
    let shown = p
        .cmd()
        .args([
            "plan",
            "request.yaml",
            "--format",
            "json",
            "--show-personal-data",
        ])
        .run()
        .await
        .expect_code(0);
    assert!(shown.stdout.contains("4111111111"), "{}", shown.stdout);
    db.drop().await;
}

// Regression (issue 16): a step whose verification failed, verified on `resume`, showed
// `succeeded` with the "verification failed" message still attached.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_step_verified_on_resume_drops_the_old_failure_message() {
    let db = Db::new(Kind::Lite, "cli_reverify").await;
    db.exec(&format!(
        "CREATE TABLE {} (id INTEGER PRIMARY KEY, email TEXT)",
        db.q("copies")
    ))
    .await;
    db.exec(&format!(
        "INSERT INTO {} VALUES (1, 'ada@example.com')",
        db.q("copies")
    ))
    .await;
    let playbook = &shop_delete(
        r#"    - id: drop-tag
      sql:
        execute: "UPDATE customers SET city = NULL WHERE email = :email COLLATE BINARY"
        params: { email: "{{subject.email}}" }
      preview:
        sql: { query: "SELECT id, email FROM customers WHERE email = :email COLLATE BINARY", params: { email: "{{subject.email}}" } }
      verify:
        sql: { query: "SELECT COUNT(*) AS n FROM copies WHERE email = :email", params: { email: "{{subject.email}}" } }
        expect: [ { pointer: /0/n, equals: 0 } ]
"#,
    );
    let p = project(&db, playbook, DELETE_ADA);
    let out = p
        .cmd()
        .args(["run", "request.yaml", "--approve", "dpo"])
        .run()
        .await
        .expect_code(1);
    assert!(out.stdout.contains("verification failed"), "{}", out.stdout);
    db.exec(&format!("DELETE FROM {}", db.q("copies"))).await;
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
    let report = p
        .cmd()
        .args(["report", &run, "--format", "json"])
        .run()
        .await
        .expect_code(0);
    assert!(report.stdout.contains("succeeded"), "{}", report.stdout);
    assert!(
        !report.stdout.contains("verification failed"),
        "{}",
        report.stdout
    );
    db.drop().await;
}

/// Three tables for one service's erasure: the subject's log lines, the subject's row, and a
/// row of another table that still refers to it (so deleting it breaks a foreign key).
async fn logs_and_parent(db: &Db) -> (String, String) {
    let (l, p, c) = (db.q("srv_logs"), db.q("srv_parent"), db.q("srv_child"));
    db.exec(&format!(
        "CREATE TABLE {l} (id INT PRIMARY KEY, email VARCHAR(100))"
    ))
    .await;
    db.exec(&format!(
        "CREATE TABLE {p} (id INT PRIMARY KEY, email VARCHAR(100))"
    ))
    .await;
    db.exec(&format!(
        "CREATE TABLE {c} (id INT PRIMARY KEY, parent_id INT NOT NULL REFERENCES {p} (id))"
    ))
    .await;
    db.exec(&format!(
        "INSERT INTO {l} VALUES (1, 'ada@example.com'), (2, 'ada@example.com'), (3, 'bob@example.com')"
    ))
    .await;
    db.exec(&format!(
        "INSERT INTO {p} VALUES (1, 'ada@example.com'), (2, 'bob@example.com')"
    ))
    .await;
    db.exec(&format!("INSERT INTO {c} VALUES (1, 1)")).await;
    let playbook = shop_delete(&format!(
        r#"    - id: drop-logs
      sql: {{ delete: {{ table: {l}, where: {{ email: "{{{{subject.email}}}}" }} }} }}
    - id: drop-parent
      needs: [drop-logs]
      sql: {{ delete: {{ table: {p}, where: {{ email: "{{{{subject.email}}}}" }} }} }}
"#,
        l = db.t("srv_logs"),
        p = db.t("srv_parent"),
    ));
    (playbook, c)
}

/// The same erasure with a read between the two deletes: the subject's row is found (by id)
/// after the log lines are deleted, and deleted by that id.
fn with_a_read_between(db: &Db) -> String {
    shop_delete(&format!(
        r#"    - id: drop-logs
      sql: {{ delete: {{ table: {l}, where: {{ email: "{{{{subject.email}}}}" }} }} }}
    - id: find
      needs: [drop-logs]
      sql: {{ select: {{ table: {p}, columns: [id], where: {{ email: "{{{{subject.email}}}}" }} }} }}
      capture: {{ id: /0/id }}
    - id: drop-parent
      needs: [find]
      sql: {{ delete: {{ table: {p}, where: {{ id: "{{{{find.id}}}}" }} }}, max_rows: 1 }}
"#,
        l = db.t("srv_logs"),
        p = db.t("srv_parent"),
    ))
}

// A read between two mutations of a service reads inside the service's transaction, so the
// service still commits (or rolls back) as one.
async fn a_read_between_two_mutations_joins_their_transaction(kind: Kind) {
    let db = Db::new(kind, "cli_unitread").await;
    let (_, child) = logs_and_parent(&db).await;
    let p = project(&db, &with_a_read_between(&db), DELETE_ADA);
    let out = p
        .cmd()
        .args(["run", "request.yaml", "--approve", "dpo"])
        .run()
        .await
        .expect_code(1);
    assert!(
        out.stdout.contains("rolled back"),
        "{kind:?}: {}",
        out.stdout
    );
    assert_eq!(db.count("srv_logs").await, 3, "{kind:?}: {}", out.stdout);
    db.exec(&format!("DELETE FROM {child}")).await;
    let run = run_id(&out.stdout);
    let out = p.cmd().args(["resume", &run]).run().await.expect_code(0);
    assert_eq!(db.count("srv_logs").await, 1, "{kind:?}: {}", out.stdout);
    assert_eq!(db.count("srv_parent").await, 1, "{kind:?}");
    db.drop().await;
}

fn run_id(stdout: &str) -> String {
    stdout
        .split("Run ")
        .nth(1)
        .and_then(|r| r.split(':').next())
        .expect("run id")
        .trim()
        .to_owned()
}

// Regression (issue 16): a failure the columns cannot predict (a foreign key) in the last step
// of a service left the steps before it committed. The SQL steps of one service on one
// connector now commit together: the database is as it was, every view says so, and once the
// cause is gone `resume` erases everything.
async fn a_constraint_failure_in_a_later_step_rolls_the_service_back(kind: Kind) {
    let db = Db::new(kind, "cli_unit").await;
    let (playbook, child) = logs_and_parent(&db).await;
    let p = project(&db, &playbook, DELETE_ADA);
    let out = p
        .cmd()
        .args(["run", "request.yaml", "--approve", "dpo"])
        .run()
        .await
        .expect_code(1);
    let all = format!("{}{}", out.stdout, out.stderr);
    assert!(all.contains("rolled back"), "{kind:?}: {all}");
    assert_eq!(
        db.count("srv_logs").await,
        3,
        "{kind:?}: no log line erased: {all}"
    );
    assert_eq!(db.count("srv_parent").await, 2, "{kind:?}");
    let run = run_id(&out.stdout);
    let status = p.cmd().args(["status", &run]).run().await;
    assert!(
        status.stdout.contains("rolled back"),
        "{kind:?}: {}",
        status.stdout
    );

    db.exec(&format!("DELETE FROM {child}")).await;
    let out = p.cmd().args(["resume", &run]).run().await.expect_code(0);
    assert_eq!(db.count("srv_logs").await, 1, "{kind:?}: {}", out.stdout);
    assert_eq!(db.count("srv_parent").await, 1, "{kind:?}: bob's row stays");
    db.drop().await;
}

// `commit: step` on a connector (very large erasures): each step commits on its own, and the
// run says which finished.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_step_commits_are_a_choice_the_connector_states() {
    let db = Db::new(Kind::Lite, "cli_perstep").await;
    let (playbook, _) = logs_and_parent(&db).await;
    let p = project(&db, &playbook, DELETE_ADA);
    let cfg = std::fs::read_to_string(p.path().join("dsrctl.yaml")).expect("config");
    p.write_bytes(
        "dsrctl.yaml",
        format!("{cfg}        commit: step\n").as_bytes(),
    );
    let out = p
        .cmd()
        .args(["run", "request.yaml", "--approve", "dpo"])
        .run()
        .await
        .expect_code(1);
    assert_eq!(db.count("srv_logs").await, 1, "{}", out.stdout);
    assert_eq!(db.count("srv_parent").await, 2);
    assert!(out.stdout.contains("1 succeeded"), "{}", out.stdout);
    assert!(!out.stdout.contains("rolled back"), "{}", out.stdout);
    db.drop().await;
}

/// A playbook of the service `shop` on the connector `db`, needing the subject's email,
/// whose deletion is `steps` (list items under `delete:`); it supports nothing else.
fn shop_delete(steps: &str) -> String {
    format!(
        "service: shop\nconnector: db\nneeds_identities: [email]\ndsr:\n  \
         access: {{ unsupported: \"test\" }}\n  export: {{ unsupported: \"test\" }}\n  \
         restrict: {{ unsupported: \"test\" }}\n  rectify: {{ unsupported: \"test\" }}\n  \
         delete:\n{steps}"
    )
}

// A run killed (SIGKILL) while its service's transaction is open changed nothing: the log
// lines deleted first were never committed. Run again, it resumes, verifies each step (not
// done), and sends them again together.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_killed_inside_a_service_transaction_changed_nothing() {
    let db = Db::new(Kind::Pg, "cli_unitkill").await;
    let (playbook, child) = logs_and_parent(&db).await;
    db.exec(&format!("DELETE FROM {child}")).await;
    // While the gate holds a row, deleting the subject's row takes a long time.
    let (gate, parent) = (db.q("srv_gate"), db.q("srv_parent"));
    db.exec(&format!("CREATE TABLE {gate} (open INT)")).await;
    db.exec(&format!("INSERT INTO {gate} VALUES (1)")).await;
    let schema = db.t("srv_gate").replace(".srv_gate", "");
    let func = format!("\"{schema}\".slow_delete");
    db.exec(&format!(
        "CREATE FUNCTION {func}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN \
         IF EXISTS (SELECT 1 FROM {gate}) THEN PERFORM pg_sleep(60); END IF; RETURN OLD; END $$"
    ))
    .await;
    db.exec(&format!(
        "CREATE TRIGGER slow BEFORE DELETE ON {parent} FOR EACH ROW EXECUTE FUNCTION {func}()"
    ))
    .await;
    let p = project(&db, &playbook, DELETE_ADA);
    let run = || {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_dsrctl"));
        cmd.arg("-C")
            .arg(p.path())
            .args(["run", "request.yaml", "--approve", "dpo"])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        cmd
    };
    let mut proc = run().spawn().expect("dsrctl runs");
    let sleeping = format!(
        "SELECT pid FROM pg_stat_activity WHERE state = 'active' AND query LIKE 'DELETE FROM \"{schema}\".\"srv_parent\"%'"
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let rows = db
            .read(json!({ "query": sleeping }))
            .await
            .expect("activity");
        if !rows.is_empty() {
            break;
        }
        assert!(
            proc.try_wait().expect("wait").is_none(),
            "the run ended before it was killed"
        );
        assert!(
            std::time::Instant::now() < deadline,
            "the run never reached its second step"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    proc.kill().expect("SIGKILL");
    proc.wait().expect("reaped");
    // The server notices the lost client when its statement ends; end it now.
    db.read(json!({ "query": sleeping.replace("SELECT pid", "SELECT pg_terminate_backend(pid) AS ended") }))
        .await
        .expect("terminate");
    assert_eq!(
        db.count("srv_logs").await,
        3,
        "nothing of the service was committed"
    );
    assert_eq!(db.count("srv_parent").await, 2);

    db.exec(&format!("DELETE FROM {gate}")).await;
    let out = run().output().expect("dsrctl runs again");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stderr.contains("resuming run"), "{stderr}");
    assert_eq!(db.count("srv_logs").await, 1, "{stdout}");
    assert_eq!(db.count("srv_parent").await, 1, "{stdout}");
    db.drop().await;
}

// `apply` changes no more than its saved dry run showed: a row of the subject's that appeared
// after the plan was made is not erased by it (the apply refuses; nothing changes).
async fn apply_erases_no_row_the_saved_plan_did_not_show(kind: Kind) {
    let db = Db::new(kind, "cli_applycap").await;
    let (playbook, child) = logs_and_parent(&db).await;
    db.exec(&format!("DELETE FROM {child}")).await;
    let p = project(&db, &playbook, DELETE_ADA);
    p.cmd()
        .args(["plan", "request.yaml", "-o", "plan.json"])
        .run()
        .await
        .expect_code(0);
    db.exec(&format!(
        "INSERT INTO {} VALUES (9, 'ada@example.com')",
        db.q("srv_logs")
    ))
    .await;
    let out = p
        .cmd()
        .args(["apply", "plan.json", "--approve", "dpo"])
        .run()
        .await
        .expect_code(1);
    assert_eq!(
        db.count("srv_logs").await,
        4,
        "{kind:?}: {}{}",
        out.stdout,
        out.stderr
    );
    assert_eq!(db.count("srv_parent").await, 2, "{kind:?}");
    db.drop().await;
}
