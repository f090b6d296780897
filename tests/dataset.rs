//! Datasets on the real databases: a 14-table shop described once, its access and erasure
//! derived. Access finds exactly the subject's rows; erasure deletes children first (the
//! databases enforce the foreign keys and refuse any other order), keeps the address shared
//! with another customer and the consent log, masks the invoice, and leaves the bystanders'
//! rows as they were.

mod dataset_support;
mod sql_support;
mod support;

use std::collections::BTreeMap;

use dataset_support::{create_shop, shop_config, shop_dataset};
use dsrctl::connectors::Connector;
use serde_json::{Value, json};
use sql_support::{Db, Kind};
use support::cli::ProjectDir;

fn project(db: &Db, request: &str) -> ProjectDir {
    let url = match db.kind {
        Kind::Lite => format!("sqlite:{}", db.base_dir().join("test.db").display()),
        _ => db.url.clone(),
    };
    ProjectDir::new()
        .file("dsrctl.yaml", &shop_config(&url))
        .file("policies/shop.yaml", &shop_dataset(db))
        .file("request.yaml", request)
}

const ACCESS_ALICE: &str = "id: r-a\nkind: access\ntenant: t1\nreceived: 2026-11-02\nsubject: { email: alice@shop.test }\n";
const DELETE_ALICE: &str = "id: r-d\nkind: delete\ntenant: t1\nreceived: 2026-11-02\nsubject: { email: alice@shop.test }\n";

/// The key of each row of `table`, sorted: `id`, or the composite key joined by `/`.
async fn keys(db: &Db, table: &str) -> Vec<String> {
    let rows = db
        .read(json!({ "select": { "table": db.t(table) } }))
        .await
        .expect("rows");
    let mut out: Vec<String> = rows.iter().map(row_key).collect();
    out.sort();
    out
}

fn row_key(row: &Value) -> String {
    let pick = |k: &str| row.get(k).map(|v| v.to_string()).unwrap_or_default();
    if row.get("id").is_some() {
        pick("id")
    } else if row.get("line").is_some() {
        format!("{}/{}", pick("order_id"), pick("line"))
    } else {
        format!("{}/{}", pick("customer_id"), pick("tag_id"))
    }
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

fn walk(p: &std::path::Path) -> Vec<std::path::PathBuf> {
    if p.is_dir() {
        std::fs::read_dir(p)
            .map(|d| d.flatten().flat_map(|e| walk(&e.path())).collect())
            .unwrap_or_default()
    } else {
        vec![p.to_path_buf()]
    }
}

/// The records of each collection in an export package, by collection name.
fn package(dir: &std::path::Path) -> BTreeMap<String, Vec<Value>> {
    let mut out = BTreeMap::new();
    for f in walk(dir) {
        let name = f
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .to_string();
        let Some(collection) = name.strip_suffix(".json") else {
            continue;
        };
        if collection == "manifest" {
            continue;
        }
        let text = std::fs::read_to_string(&f).expect("package file");
        let v: Value = serde_json::from_str(&text).expect("package JSON");
        let records = match v {
            Value::Array(a) => a,
            Value::Object(o) => o
                .get("records")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default(),
            _ => Vec::new(),
        };
        out.insert(collection.to_owned(), records);
    }
    out
}

on_all_backends!(
    derived_access_finds_exactly_the_subjects_rows,
    derived_erasure_deletes_children_first_and_keeps_shared_rows,
);

async fn derived_access_finds_exactly_the_subjects_rows(kind: Kind) {
    let db = Db::new(kind, "ds_access").await;
    create_shop(&db).await;
    let p = project(&db, ACCESS_ALICE);
    p.cmd().arg("validate").run().await.expect_code(0);
    let out = p
        .cmd()
        .args(["run", "request.yaml", "--show-personal-data"])
        .run()
        .await
        .expect_code(0);
    let run = run_id(&out.stdout);
    p.cmd()
        .args(["report", &run, "--package", "pkg", "--show-personal-data"])
        .run()
        .await
        .expect_code(0);
    let pkg = package(&p.path().join("pkg"));
    let found: BTreeMap<String, Vec<String>> = pkg
        .iter()
        .map(|(c, rows)| {
            let mut k: Vec<String> = rows.iter().map(row_key).collect();
            k.sort();
            (c.clone(), k)
        })
        .collect();
    let expected: BTreeMap<String, Vec<String>> = [
        ("address", vec!["1", "2"]),
        ("customer", vec!["1"]),
        ("shop_order", vec!["101", "102"]),
        ("order_item", vec!["101/1", "101/2", "102/1"]),
        ("payment", vec!["1", "2"]),
        ("support_ticket", vec!["1", "3"]),
        ("ticket_message", vec!["1", "2", "4"]),
        ("customer_tag", vec!["1/1", "1/2"]),
        ("login_event", vec!["1", "2"]),
        ("review", vec!["1"]),
        ("invoice", vec!["1"]),
        ("consent_log", vec!["1"]),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.into_iter().map(str::to_owned).collect()))
    .collect();
    assert_eq!(found, expected, "{kind:?}: collections {:?}", pkg.keys());
    db.drop().await;
}

async fn derived_erasure_deletes_children_first_and_keeps_shared_rows(kind: Kind) {
    let db = Db::new(kind, "ds_erase").await;
    create_shop(&db).await;
    let mut before = BTreeMap::new();
    for t in dataset_support::tables() {
        before.insert(t, keys(&db, t).await);
    }
    // The database enforces the foreign keys: the parent first is refused.
    let refused = db
        .client
        .mutate(&sql_support::op(json!({
            "execute": format!("DELETE FROM {} WHERE id = 1", db.q("customer"))
        })))
        .await;
    assert!(refused.is_err(), "{kind:?}: foreign keys are not enforced");
    let p = project(&db, DELETE_ALICE);
    // The dry run shows every table's rows and changes, and changes nothing.
    let plan = p
        .cmd()
        .args(["plan", "request.yaml", "--format", "json"])
        .run()
        .await
        .expect_code(0);
    let text = plan.stdout.clone();
    for step in ["erase-", "mask-", "detach-"] {
        assert!(text.contains(step), "{kind:?}: plan lacks {step}: {text}");
    }
    for t in dataset_support::tables() {
        assert_eq!(
            keys(&db, t).await,
            before[t],
            "{kind:?}: dry run changed {t}"
        );
    }
    p.cmd()
        .args(["run", "request.yaml", "--approve", "dpo"])
        .run()
        .await
        .expect_code(0);
    let after: BTreeMap<&str, Vec<String>> = {
        let mut m = BTreeMap::new();
        for t in dataset_support::tables() {
            m.insert(t, keys(&db, t).await);
        }
        m
    };
    let expect = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert_eq!(after["customer"], expect(&["2", "3"]), "{kind:?}");
    assert_eq!(
        after["address"],
        expect(&["2", "3"]),
        "{kind:?}: the shared address stays"
    );
    assert_eq!(after["shop_order"], expect(&["201", "301"]), "{kind:?}");
    assert_eq!(after["order_item"], expect(&["201/1", "301/1"]), "{kind:?}");
    assert_eq!(after["payment"], expect(&["3"]), "{kind:?}");
    assert_eq!(
        after["support_ticket"],
        expect(&["2", "4"]),
        "{kind:?}: exact match"
    );
    assert_eq!(after["ticket_message"], expect(&["3", "5"]), "{kind:?}");
    assert_eq!(after["customer_tag"], expect(&["2/2"]), "{kind:?}");
    assert_eq!(after["login_event"], expect(&["3"]), "{kind:?}");
    assert_eq!(after["review"], expect(&["2"]), "{kind:?}");
    assert_eq!(
        after["invoice"],
        expect(&["1", "2"]),
        "{kind:?}: masked, kept"
    );
    assert_eq!(after["consent_log"], expect(&["1", "2"]), "{kind:?}: kept");
    assert_eq!(after["product"], before["product"], "{kind:?}");
    assert_eq!(after["tag"], before["tag"], "{kind:?}");
    let invoice = db
        .read(json!({ "select": { "table": db.t("invoice"), "order_by": ["id"] } }))
        .await
        .expect("invoice");
    assert_eq!(invoice[0]["billing_email"], Value::Null, "{kind:?}");
    assert_eq!(invoice[0]["billing_name"], json!("erased"), "{kind:?}");
    assert_eq!(
        invoice[1]["billing_name"],
        json!("Bob"),
        "{kind:?}: bystander"
    );
    let carol = db
        .read(json!({ "select": { "table": db.t("customer"), "where": { "id": 3 } } }))
        .await
        .expect("carol");
    assert_eq!(carol[0]["referred_by"], Value::Null, "{kind:?}: detached");
    assert_eq!(carol[0]["name"], json!("Carol"), "{kind:?}");
    let bob = db
        .read(json!({ "select": { "table": db.t("address"), "where": { "id": 2 } } }))
        .await
        .expect("address 2");
    assert_eq!(
        bob[0]["street"],
        json!("2 Bob St"),
        "{kind:?}: shared row untouched"
    );
    db.drop().await;
}
