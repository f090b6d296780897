//! Datasets on the real databases: a parent row kept because someone else's rows reference
//! it keeps what it references in turn. Alice's and Bob's orders go to one shared address
//! (1, in region 1); Alice alone has address 2 (in region 2). Erasing Alice keeps address 1
//! and so region 1, and erases address 2 and region 2. The rows under a row kept as shared
//! are kept with it too: the file of a note Alice wrote to Bob stays with the note.

mod sql_support;
mod support;

use serde_json::{Value, json};
use sql_support::{Db, Kind};
use support::cli::ProjectDir;

const TABLES: &[(&str, &str)] = &[
    (
        "region",
        "id INT NOT NULL, name VARCHAR(200), PRIMARY KEY (id)",
    ),
    (
        "address",
        "id INT NOT NULL, region_id INT, street VARCHAR(200), PRIMARY KEY (id), \
         FOREIGN KEY (region_id) REFERENCES {region}(id)",
    ),
    (
        "buyer",
        "id INT NOT NULL, email VARCHAR(200) NOT NULL, PRIMARY KEY (id)",
    ),
    (
        "purchase",
        "id INT NOT NULL, buyer_id INT NOT NULL, address_id INT, PRIMARY KEY (id), \
         FOREIGN KEY (buyer_id) REFERENCES {buyer}(id), \
         FOREIGN KEY (address_id) REFERENCES {address}(id)",
    ),
];

const ROWS: &[(&str, &str)] = &[
    ("region", "(1, 'Shared Hills'), (2, 'Alice Vale')"),
    ("address", "(1, 1, '1 Common Rd'), (2, 2, '2 Own St')"),
    ("buyer", "(1, 'alice@shop.test'), (2, 'bob@shop.test')"),
    ("purchase", "(10, 1, 1), (11, 1, 2), (20, 2, 1)"),
];

/// A project whose service `service` is `dataset` (its `tables:` block) on the test
/// database, and a delete request of `email`.
fn project(db: &Db, service: &str, tables: &str, email: &str) -> ProjectDir {
    let url = match db.kind {
        Kind::Lite => format!("sqlite:{}", db.base_dir().join("test.db").display()),
        _ => db.url.clone(),
    };
    let playbook = format!(
        "service: {service}\nconnector: db\ndataset:\n  tables:\n{tables}dsr:\n  rectify: {{ unsupported: \"by hand\" }}\n"
    );
    ProjectDir::new()
        .file(
            "dsrctl.yaml",
            &format!(
                "tenants:\n  t1:\n    connectors:\n      db:\n        kind: sql\n        url: \"{url}\"\n        timeout: 20s\n"
            ),
        )
        .file(&format!("policies/{service}.yaml"), &playbook)
        .file(
            "request.yaml",
            &format!(
                "id: r-1\nkind: delete\ntenant: t1\nreceived: 2026-11-02\nsubject: {{ email: {email} }}\n"
            ),
        )
}

fn shop(db: &Db) -> String {
    format!(
        r#"    {region}:
      columns: {{ id: , name: user.contact.address.state }}
    {address}:
      columns:
        id:
        region_id: {{ references: {region}.id }}
        street: user.contact.address.street
    {buyer}:
      columns:
        id:
        email: {{ identity: email, category: user.contact.email }}
    {purchase}:
      columns:
        id:
        buyer_id: {{ references: {buyer}.id }}
        address_id: {{ references: {address}.id }}
"#,
        region = db.t("region"),
        address = db.t("address"),
        buyer = db.t("buyer"),
        purchase = db.t("purchase"),
    )
}

fn notes(db: &Db) -> String {
    format!(
        r#"    {person}:
      columns:
        id:
        email: {{ identity: email, category: user.contact.email }}
    {note}:
      columns:
        id:
        author_id: {{ references: {person}.id }}
        reader_id: {{ references: {person}.id }}
        body: user.content
    {note_file}:
      columns:
        id:
        note_id: {{ references: {note}.id }}
        name: user.content
"#,
        person = db.t("person"),
        note = db.t("note"),
        note_file = db.t("note_file"),
    )
}

/// Validates the project, runs its delete request and expects it to complete.
async fn validate_and_erase(p: &ProjectDir, kind: Kind) -> support::cli::Output {
    p.cmd().arg("validate").run().await.expect_code(0);
    let out = p
        .cmd()
        .args(["run", "request.yaml", "--approve", "dpo"])
        .run()
        .await;
    assert_eq!(out.code, 0, "{kind:?}: {out:?}");
    out
}

async fn rows(db: &Db, table: &str) -> Vec<Value> {
    db.read(json!({ "select": { "table": db.t(table), "order_by": ["id"] } }))
        .await
        .expect("rows")
}

async fn ids(db: &Db, table: &str) -> Vec<i64> {
    rows(db, table)
        .await
        .iter()
        .map(|r| r["id"].as_i64().expect("id"))
        .collect()
}

on_all_backends!(a_parent_kept_as_shared_keeps_what_it_references);

/// Regression: region 1 was erased although the shared address 1, kept for Bob, references
/// it (the database refused where the foreign key is enforced; elsewhere Bob's address was
/// left pointing at nothing).
async fn a_parent_kept_as_shared_keeps_what_it_references(kind: Kind) {
    let db = Db::new(kind, "ds_kept_parent").await;
    db.create(TABLES, ROWS).await;
    let p = project(&db, "shop", &shop(&db), "alice@shop.test");
    validate_and_erase(&p, kind).await;
    assert_eq!(ids(&db, "buyer").await, [2], "{kind:?}");
    assert_eq!(
        ids(&db, "purchase").await,
        [20],
        "{kind:?}: Bob's order stays"
    );
    assert_eq!(
        ids(&db, "address").await,
        [1],
        "{kind:?}: the shared address stays"
    );
    assert_eq!(
        ids(&db, "region").await,
        [1],
        "{kind:?}: the shared address's region stays, Alice's own goes"
    );
    let address = rows(&db, "address").await;
    assert_eq!(address[0]["region_id"], json!(1), "{kind:?}: untouched");
    db.drop().await;
}

/// A note Alice wrote to Bob is kept for Bob (its author detached); its files are Bob's to
/// read too, so they are kept with it. Alice's note to herself goes with its file.
const NOTES: &[(&str, &str)] = &[
    (
        "person",
        "id INT NOT NULL, email VARCHAR(200) NOT NULL, PRIMARY KEY (id)",
    ),
    (
        "note",
        "id INT NOT NULL, author_id INT, reader_id INT, body VARCHAR(200), PRIMARY KEY (id), \
         FOREIGN KEY (author_id) REFERENCES {person}(id), \
         FOREIGN KEY (reader_id) REFERENCES {person}(id)",
    ),
    (
        "note_file",
        "id INT NOT NULL, note_id INT NOT NULL, name VARCHAR(200), PRIMARY KEY (id), \
         FOREIGN KEY (note_id) REFERENCES {note}(id)",
    ),
];

const NOTE_ROWS: &[(&str, &str)] = &[
    ("person", "(1, 'alice@notes.test'), (2, 'bob@notes.test')"),
    ("note", "(1, 1, 2, 'for Bob'), (2, 1, 1, 'to self')"),
    ("note_file", "(1, 1, 'plan.pdf'), (2, 2, 'diary.txt')"),
];

on_all_backends!(a_row_kept_as_shared_keeps_its_children);

/// Regression: the file of the note kept for Bob was deleted with Alice's own.
async fn a_row_kept_as_shared_keeps_its_children(kind: Kind) {
    let db = Db::new(kind, "ds_kept_child").await;
    db.create(NOTES, NOTE_ROWS).await;
    let p = project(&db, "notes", &notes(&db), "alice@notes.test");
    validate_and_erase(&p, kind).await;
    assert_eq!(ids(&db, "person").await, [2], "{kind:?}");
    assert_eq!(
        ids(&db, "note").await,
        [1],
        "{kind:?}: the note for Bob stays"
    );
    assert_eq!(
        ids(&db, "note_file").await,
        [1],
        "{kind:?}: its file stays with it, Alice's own goes"
    );
    db.drop().await;
}

/// Members referring members: Alice's two rows (found by `email` and by `alt_email`) refer
/// one to the other, and Carol, who is not erased, was referred by Alice.
const MEMBERS: &[(&str, &str)] = &[(
    "member",
    "id INT NOT NULL, email VARCHAR(200) NOT NULL, alt_email VARCHAR(200), referred_by INT, \
     PRIMARY KEY (id), FOREIGN KEY (referred_by) REFERENCES {member}(id)",
)];

const MEMBER_ROWS: &[(&str, &str)] = &[(
    "member",
    "(1, 'alice@ref.test', NULL, NULL), (2, 'al@ref.test', 'alice@ref.test', 1), \
     (3, 'carol@ref.test', NULL, 1)",
)];

on_all_backends!(rows_of_the_subject_referring_each_other_are_erased_cleanly);

/// Regression: the derived detach (`referred_by` set to NULL on every row referring an
/// erased member) also wrote Alice's own second row, which the erasure then deleted in the
/// same transaction; re-reading it by key found it missing, and the run failed although
/// everything was erased as planned.
async fn rows_of_the_subject_referring_each_other_are_erased_cleanly(kind: Kind) {
    let db = Db::new(kind, "ds_self_ref").await;
    db.create(MEMBERS, MEMBER_ROWS).await;
    let tables = format!(
        r#"    {member}:
      columns:
        id:
        email: {{ identity: email, category: user.contact.email }}
        alt_email: {{ identity: email, category: user.contact.email }}
        referred_by: {{ references: {member}.id }}
"#,
        member = db.t("member"),
    );
    let p = project(&db, "club", &tables, "alice@ref.test");
    let out = validate_and_erase(&p, kind).await;
    assert!(!out.stdout.contains("failed "), "{kind:?}: {}", out.stdout);
    let left = rows(&db, "member").await;
    assert_eq!(left.len(), 1, "{kind:?}: {left:?}");
    assert_eq!(left[0]["id"], json!(3), "{kind:?}: Carol stays");
    assert_eq!(
        left[0]["referred_by"],
        json!(null),
        "{kind:?}: no longer pointing at an erased member"
    );
    db.drop().await;
}
