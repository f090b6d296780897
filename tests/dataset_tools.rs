//! The dataset tools on the real databases: `dataset introspect` drafts a dataset that
//! validates and plans (a round trip), `coverage` catches a personal column added to the
//! schema, and `import fides` plans the same rows as a hand-written playbook.

mod dataset_support;
mod sql_support;
mod support;

use std::collections::BTreeMap;

use dataset_support::{create_shop, shop_config};
use serde_json::Value;
use sql_support::{Db, Kind};
use support::cli::ProjectDir;

fn url(db: &Db) -> String {
    match db.kind {
        Kind::Lite => format!("sqlite:{}", db.base_dir().join("test.db").display()),
        _ => db.url.clone(),
    }
}

fn schema_args(db: &Db) -> Vec<String> {
    match db.kind {
        Kind::Pg => vec!["--schema".into(), db.ns.clone()],
        _ => Vec::new(),
    }
}

const DELETE_ALICE: &str = "id: r-d\nkind: delete\ntenant: t1\nreceived: 2026-11-02\nsubject: { email: alice@shop.test }\n";
const ACCESS_ALICE: &str = "id: r-a\nkind: access\ntenant: t1\nreceived: 2026-11-02\nsubject: { email: alice@shop.test }\n";

on_all_backends!(
    introspect_validate_plan_round_trip,
    coverage_catches_an_added_personal_column,
    fides_import_plans_the_same_rows_as_a_hand_written_playbook,
);

async fn introspect_validate_plan_round_trip(kind: Kind) {
    let db = Db::new(kind, "ds_introspect").await;
    create_shop(&db).await;
    let p = ProjectDir::new()
        .file("dsrctl.yaml", &shop_config(&url(&db)))
        .file("policies/README.md", "playbooks")
        .file("request.yaml", DELETE_ALICE);
    let mut args = vec![
        "dataset".to_owned(),
        "introspect".into(),
        "--connector".into(),
        "db".into(),
        "--service".into(),
        "shop".into(),
        "-o".into(),
        "policies/shop.yaml".into(),
    ];
    args.extend(schema_args(&db));
    p.cmd().args(&args).run().await.expect_code(0);
    let draft = p.read("policies/shop.yaml");
    for want in [
        "identity: email",
        "category: user.contact.email",
        "review:",
        "key: [order_id, line]",
    ] {
        assert!(draft.contains(want), "{kind:?}: {want}\n{draft}");
    }
    let t = |n: &str| db.t(n);
    assert!(
        draft.contains(&format!("references: {}.id", t("customer"))),
        "{kind:?}: foreign keys become references\n{draft}"
    );
    let out = p.cmd().arg("validate").run().await.expect_code(0);
    assert!(
        out.stdout.contains("needs-review"),
        "{kind:?}: {}",
        out.stdout
    );
    let plan = p
        .cmd()
        .args(["plan", "request.yaml", "--format", "json"])
        .run()
        .await
        .expect_code(0);
    for table in ["customer", "shop_order", "order_item", "ticket_message"] {
        let id = format!("erase-{}", dsrctl::load::dataset::kebab(&t(table)));
        assert!(plan.stdout.contains(&id), "{kind:?}: {id}\n{}", plan.stdout);
    }
    db.drop().await;
}

async fn coverage_catches_an_added_personal_column(kind: Kind) {
    let db = Db::new(kind, "ds_coverage").await;
    create_shop(&db).await;
    let p = ProjectDir::new()
        .file("dsrctl.yaml", &shop_config(&url(&db)))
        .file("policies/README.md", "playbooks");
    let mut args = vec![
        "dataset".to_owned(),
        "introspect".into(),
        "--connector".into(),
        "db".into(),
        "-o".into(),
        "policies/shop.yaml".into(),
    ];
    args.extend(schema_args(&db));
    p.cmd().args(&args).run().await.expect_code(0);
    let out = p.cmd().arg("coverage").run().await.expect_code(0);
    assert!(
        out.stdout.contains("cover their databases"),
        "{kind:?}: {}",
        out.stdout
    );
    db.exec(&format!(
        "ALTER TABLE {} ADD mobile VARCHAR(40)",
        db.q("customer")
    ))
    .await;
    let out = p.cmd().arg("coverage").run().await.expect_code(1);
    assert!(
        out.stdout.contains("undescribed-column") && out.stdout.contains("mobile"),
        "{kind:?}: {}",
        out.stdout
    );
    assert!(
        out.stdout.contains("policies/shop.yaml:"),
        "{kind:?}: {}",
        out.stdout
    );
    let json = p
        .cmd()
        .args(["coverage", "--format", "json"])
        .run()
        .await
        .expect_code(1)
        .json();
    assert!(
        json.to_string().contains("undescribed-column"),
        "{kind:?}: {json}"
    );
    let sarif = p
        .cmd()
        .args(["coverage", "--format", "sarif"])
        .run()
        .await
        .expect_code(1)
        .json();
    assert!(sarif["runs"].is_array(), "{kind:?}: {sarif}");

    // A column that looks personal but is not can be said to be so, and coverage is
    // satisfied; saying so of a column with a category is refused.
    let customer = format!("    {}:\n      columns:\n", db.t("customer"));
    let text = p.read("policies/shop.yaml");
    assert!(text.contains(&customer), "{kind:?}: {text}");
    p.write(
        "policies/shop.yaml",
        &text.replacen(
            &customer,
            &format!("{customer}        mobile: {{ personal: false }}\n"),
            1,
        ),
    );
    let out = p.cmd().arg("coverage").run().await;
    assert_eq!(out.code, 0, "{kind:?}: {out:?}");
    p.write(
        "policies/shop.yaml",
        &text.replacen(
            &customer,
            &format!(
                "{customer}        mobile: {{ personal: false, category: user.contact.phone_number }}\n"
            ),
            1,
        ),
    );
    let out = p.cmd().arg("validate").run().await.expect_code(1);
    assert!(
        out.stdout.contains("invalid-value") && out.stdout.contains("personal: false"),
        "{kind:?}: {}",
        out.stdout
    );
    db.drop().await;
}

fn fides_dataset(t: &dyn Fn(&str) -> String) -> String {
    format!(
        r#"dataset:
  - fides_key: shop_db
    name: Shop
    description: The shop, as Fides describes it.
    collections:
      - name: {customer}
        fields:
          - name: id
            data_categories: [system.operations]
            fides_meta: {{ primary_key: true }}
          - name: email
            data_categories: [user.contact.email]
            fides_meta: {{ identity: email, data_type: string }}
          - name: name
            data_categories: [user.name]
          - name: phone
            data_categories: [user.contact.phone_number]
          - name: referred_by
          - name: home_address_id
            fides_meta:
              references:
                - {{ dataset: shop_db, field: {address}.id, direction: to }}
      - name: {address}
        fields:
          - name: id
            fides_meta: {{ primary_key: true }}
          - name: street
            data_categories: [user.contact.address.street]
          - name: city
            data_categories: [user.contact.address.city]
          - name: zip
            data_categories: [user.contact.address.postal_code]
      - name: {shop_order}
        fides_meta: {{ after: [shop_db.{customer}] }}
        fields:
          - name: id
            fides_meta: {{ primary_key: true }}
          - name: customer_id
            fides_meta:
              references:
                - {{ dataset: shop_db, field: {customer}.id, direction: from }}
          - name: shipping_address_id
            fides_meta:
              references:
                - {{ dataset: shop_db, field: {address}.id, direction: to }}
          - name: placed_at
      - name: {order_item}
        fields:
          - name: order_id
            fides_meta:
              primary_key: true
              references:
                - {{ dataset: shop_db, field: {shop_order}.id, direction: from }}
          - name: line
            fides_meta: {{ primary_key: true }}
          - name: product_id
          - name: qty
"#,
        customer = t("customer"),
        address = t("address"),
        shop_order = t("shop_order"),
        order_item = t("order_item"),
    )
}

fn hand_written(t: &dyn Fn(&str) -> String) -> String {
    format!(
        r#"service: shop-db
connector: db
needs_identities: [email]
dsr:
  access:
    - id: customer
      sql: {{ select: {{ table: {customer}, where: {{ email: "{{{{subject.email}}}}" }} }} }}
      capture: {{ ids: "/*/id", homes: "/*/home_address_id" }}
      collect: {customer_c}
    - id: orders
      needs: [customer]
      sql: {{ select: {{ table: {shop_order}, where: {{ customer_id: ["{{{{json customer.ids}}}}"] }} }} }}
      capture: {{ ids: "/*/id", ships: "/*/shipping_address_id" }}
      collect: {shop_order_c}
    - id: items
      needs: [orders]
      sql: {{ select: {{ table: {order_item}, where: {{ order_id: ["{{{{json orders.ids}}}}"] }} }} }}
      collect: {order_item_c}
    - id: addresses
      needs: [customer, orders]
      sql: {{ select: {{ table: {address}, where: {{ id: ["{{{{json customer.homes}}}}", "{{{{json orders.ships}}}}"] }} }} }}
      collect: {address_c}
  export: {{ same_as: [access] }}
  rectify: {{ unsupported: "test" }}
  restrict: {{ unsupported: "test" }}
  delete: {{ unsupported: "test" }}
"#,
        customer = t("customer"),
        shop_order = t("shop_order"),
        order_item = t("order_item"),
        address = t("address"),
        customer_c = "customer",
        shop_order_c = "shop_order",
        order_item_c = "order_item",
        address_c = "address",
    )
}

/// Runs an access request and returns each collection's rows, sorted by their JSON.
async fn collected(p: &ProjectDir) -> BTreeMap<String, Vec<String>> {
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
    let mut out = BTreeMap::new();
    for f in walk(&p.path().join("pkg")) {
        let name = f
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .to_string();
        let Some(c) = name.strip_suffix(".json").filter(|c| *c != "manifest") else {
            continue;
        };
        let v: Value =
            serde_json::from_str(&std::fs::read_to_string(&f).expect("file")).expect("json");
        let rows = match v {
            Value::Array(a) => a,
            Value::Object(o) => o
                .get("records")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default(),
            _ => Vec::new(),
        };
        let mut rows: Vec<String> = rows.iter().map(Value::to_string).collect();
        rows.sort();
        out.insert(c.to_owned(), rows);
    }
    out
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

async fn fides_import_plans_the_same_rows_as_a_hand_written_playbook(kind: Kind) {
    let db = Db::new(kind, "ds_fides").await;
    create_shop(&db).await;
    let t = |n: &str| db.t(n);
    let imported = ProjectDir::new()
        .file("dsrctl.yaml", &shop_config(&url(&db)))
        .file("fides.yml", &fides_dataset(&t))
        .file("policies/README.md", "playbooks")
        .file("request.yaml", ACCESS_ALICE);
    let out = imported
        .cmd()
        .args([
            "import",
            "fides",
            "fides.yml",
            "--connector",
            "db",
            "-o",
            "policies/shop.yaml",
        ])
        .run()
        .await
        .expect_code(0);
    assert!(
        out.stderr.contains("not carried over") && out.stderr.contains("after"),
        "{kind:?}: what is lost is said: {}",
        out.stderr
    );
    imported.cmd().arg("validate").run().await.expect_code(0);
    let by_hand = ProjectDir::new()
        .file("dsrctl.yaml", &shop_config(&url(&db)))
        .file("policies/shop.yaml", &hand_written(&t))
        .file("request.yaml", ACCESS_ALICE);
    by_hand.cmd().arg("validate").run().await.expect_code(0);
    let a = collected(&imported).await;
    let b = collected(&by_hand).await;
    assert_eq!(
        a.keys().collect::<Vec<_>>(),
        ["address", "customer", "order_item", "shop_order"],
        "{kind:?}"
    );
    assert_eq!(a, b, "{kind:?}");
    assert_eq!(a["order_item"].len(), 3, "{kind:?}: {:?}", a["order_item"]);
    db.drop().await;
}
