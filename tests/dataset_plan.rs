//! Datasets without a database: the derived plans (snapshotted, so a change to the
//! derivation shows in review), and the findings of `validate` at `file:line:col`.

mod dataset_support;
mod sql_support;
mod support;

use chrono::TimeZone;
use dsrctl::compile::compile;
use dsrctl::load::{load_project, load_request_str};
use serde_json::{Value, json};
use support::cli::ProjectDir;

fn shop_project(dataset: &str) -> ProjectDir {
    ProjectDir::new()
        .file(
            "dsrctl.yaml",
            &dataset_support::shop_config("sqlite:shop.db"),
        )
        .file("policies/shop.yaml", dataset)
}

/// The steps of a compiled plan, as a reviewer reads them: key, needs, action, captures.
fn derived(kind: &str) -> Value {
    let p = shop_project(&dataset_support::shop_dataset_named(&|n| n.to_owned()));
    let project = load_project(p.path()).unwrap_or_else(|d| panic!("{d:?}"));
    let request = load_request_str(
        "r.yaml",
        &format!("id: r-1\nkind: {kind}\ntenant: t1\nreceived: 2026-11-02\nsubject: {{ email: alice@shop.test }}\n"),
    )
    .expect("request");
    let now = chrono::Utc.with_ymd_and_hms(2026, 11, 2, 0, 0, 0).unwrap();
    let plan = compile(&project, &request, now).expect("compiles");
    Value::Array(
        plan.steps
            .iter()
            .map(|s| {
                let v = serde_json::to_value(s).expect("step");
                json!({
                    "key": s.key,
                    "needs": s.needs,
                    "action": v["action"],
                    "capture": v.get("capture"),
                    "collect": v.get("collect"),
                })
            })
            .collect(),
    )
}

#[test]
fn derived_access_plan() {
    insta::assert_json_snapshot!(derived("access"));
}

#[test]
fn derived_erasure_plan() {
    insta::assert_json_snapshot!(derived("delete"));
}

#[test]
fn erasure_deletes_children_before_parents() {
    let steps = derived("delete");
    let list = steps.as_array().expect("steps");
    let pos = |key: &str| {
        list.iter()
            .position(|s| s["key"] == key)
            .unwrap_or_else(|| panic!("no step {key}"))
    };
    for (child, parent) in [
        ("shop/erase-order-item", "shop/erase-shop-order"),
        ("shop/erase-payment", "shop/erase-shop-order"),
        ("shop/erase-shop-order", "shop/erase-customer"),
        ("shop/erase-shop-order", "shop/erase-address"),
        ("shop/erase-customer", "shop/erase-address"),
        ("shop/erase-ticket-message", "shop/erase-support-ticket"),
        ("shop/erase-support-ticket", "shop/erase-customer"),
        ("shop/erase-customer-tag", "shop/erase-customer"),
        ("shop/detach-customer-referred-by", "shop/erase-customer"),
    ] {
        assert!(pos(child) < pos(parent), "{child} before {parent}");
    }
    assert!(
        !list.iter().any(|s| s["key"] == "shop/erase-consent-log"),
        "a kept table is not erased"
    );
}

const BROKEN: &str = r#"service: shop
connector: db
dataset:
  tables:
    customer:
      columns:
        id:
        email: { category: user.contact.email }
    orders:
      erasure: mask
      columns:
        id:
        customer_id: { references: customers.id }
        note: user.content
dsr:
  rectify: { unsupported: "test" }
"#;

#[tokio::test]
async fn validate_points_at_what_is_wrong_in_a_dataset() {
    let p = shop_project(BROKEN);
    let out = p.cmd().arg("validate").run().await.expect_code(1);
    let all = format!("{}{}", out.stdout, out.stderr);
    for want in [
        "policies/shop.yaml:13:36",
        "unknown-column",
        "did you mean `customer`",
        "no-identity-column",
    ] {
        assert!(all.contains(want), "{want}: {all}");
    }
}

const CYCLE: &str = r#"service: shop
connector: db
dataset:
  tables:
    customer:
      columns:
        id:
        email: { identity: email, category: user.contact.email }
        last_order_id: { references: orders.id }
    orders:
      columns:
        id:
        customer_id: { references: customer.id }
        note: user.content
dsr:
  rectify: { unsupported: "test" }
"#;

#[tokio::test]
async fn validate_reports_a_reference_cycle_and_a_missing_mask() {
    let p = shop_project(CYCLE);
    let out = p.cmd().arg("validate").run().await.expect_code(1);
    let all = format!("{}{}", out.stdout, out.stderr);
    assert!(all.contains("reference-cycle"), "{all}");
    assert!(all.contains("traverse: false"), "{all}");
    let fixed = CYCLE.replace(
        "last_order_id: { references: orders.id }",
        "last_order_id:\n  references:\n    - { from: customer.last_order_id, to: orders.id, traverse: false }",
    );
    // `references` as a list belongs under the dataset, not the column: move it there.
    let fixed = fixed
        .replace(
            "        last_order_id:\n  references:\n    - { from: customer.last_order_id, to: orders.id, traverse: false }",
            "        last_order_id:",
        )
        .replace(
            "dsr:",
            "  references:\n    - { from: customer.last_order_id, to: orders.id, traverse: false }\ndsr:",
        );
    p.write("policies/shop.yaml", &fixed);
    p.cmd().arg("validate").run().await.expect_code(0);
    let masked = fixed.replace("    orders:\n", "    orders:\n      erasure: mask\n");
    p.write("policies/shop.yaml", &masked);
    let out = p.cmd().arg("validate").run().await.expect_code(1);
    let all = format!("{}{}", out.stdout, out.stderr);
    assert!(all.contains("missing-erasure-strategy"), "{all}");
    assert!(all.contains("user.content"), "{all}");
}
