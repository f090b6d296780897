use dsrctl::journal::{Change, ChangeAction};
use dsrctl::report::plan_view::{
    MARKDOWN_LIMIT, PlanViewOptions, Summary, render_json, render_markdown, render_text,
};
use serde_json::{Value, json};

use crate::fixture::{self, EMAIL, OBJECT_ID};

fn change(step: &str, action: ChangeAction, target: &str) -> Change {
    Change {
        step: step.into(),
        instance: step.into(),
        service: step.split('/').next().unwrap_or_default().into(),
        target: target.into(),
        action,
        before: None,
        after: None,
        count: None,
        reason: None,
        etag: None,
        fingerprint: None,
    }
}

pub fn changes() -> Vec<Change> {
    let mut del = change(
        "entra-users/delete-user",
        ChangeAction::Delete,
        "DELETE /users/{…}",
    );
    del.before = Some(
        json!({"id": OBJECT_ID, "displayName": "Ana Lopez", "mail": EMAIL, "accountEnabled": true}),
    );
    del.count = Some(1);
    let mut upd = change(
        "entra-users/fix-name",
        ChangeAction::Update,
        "PATCH /users/{…}",
    );
    upd.before = Some(json!({"displayName": "Ana Lopes", "jobTitle": "Engineer"}));
    upd.after = Some(json!({"displayName": "Ana Lopez", "jobTitle": "Engineer"}));
    let mut rows = change(
        "shop-db/erase-customer",
        ChangeAction::Delete,
        "DELETE FROM customers",
    );
    rows.before = Some(json!([{"id": 17, "email": EMAIL}, {"id": 18, "email": EMAIL}]));
    rows.count = Some(2);
    let mut orders = change(
        "shop-db/erase-orders",
        ChangeAction::Delete,
        "DELETE FROM orders",
    );
    orders.count = Some(0);
    let mut manual = change(
        "security-alerts/clear-alerts",
        ChangeAction::Manual,
        "manual task for secops",
    );
    manual.reason = Some(format!("Remove {EMAIL} from every open alert"));
    let mut unknown = change(
        "adt/export-twins",
        ChangeAction::Unknown,
        "POST /jobs/export",
    );
    unknown.reason = Some("the playbook gives no preview for this asynchronous export".into());
    vec![del, upd, rows, orders, manual, unknown]
}

#[test]
fn summary_line() {
    assert_eq!(
        Summary::of(&changes()).line(),
        "Plan: 3 to delete, 1 to update, 1 manual, 1 unknown across 4 services"
    );
}

#[test]
fn text_view() {
    let out = render_text(
        &fixture::plan("delete"),
        &changes(),
        &[],
        PlanViewOptions::default(),
    );
    assert!(!out.contains(EMAIL) && !out.contains(OBJECT_ID) && !out.contains("Ana"));
    assert!(!out.contains('\u{1b}'), "no colour unless asked");
    insta::assert_snapshot!(out);
    let coloured = render_text(
        &fixture::plan("delete"),
        &changes(),
        &[],
        PlanViewOptions {
            color: true,
            ..Default::default()
        },
    );
    assert!(coloured.contains("\u{1b}["));
}

#[test]
fn json_view() {
    let out = render_json(
        &fixture::plan("delete"),
        &changes(),
        &[],
        PlanViewOptions::default(),
    );
    assert!(!out.contains(EMAIL) && !out.contains(OBJECT_ID));
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["format_version"], 1);
    // Booleans and numbers are masked too (issue 16): only NULL is not sensitive.
    assert_eq!(
        v["changes"][0]["sensitive"]["before"]["accountEnabled"],
        true
    );
    assert_eq!(v["changes"][0]["sensitive"]["before"]["mail"], true);
    insta::assert_snapshot!(out);
}

#[test]
fn personal_data_only_when_asked() {
    let opts = PlanViewOptions {
        show_personal_data: true,
        color: false,
    };
    let out = render_json(&fixture::plan("delete"), &changes(), &[], opts);
    assert!(out.contains(EMAIL));
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        v["changes"][0]["sensitive"]["before"]["mail"], true,
        "still marked sensitive"
    );
    let md = render_markdown(&fixture::plan("delete"), &changes(), &[], opts).join("");
    assert!(md.contains(EMAIL) && md.contains("[!CAUTION]"));
}

#[test]
fn markdown_view() {
    let bodies = render_markdown(
        &fixture::plan("delete"),
        &changes(),
        &[],
        PlanViewOptions::default(),
    );
    assert_eq!(bodies.len(), 1);
    let body = &bodies[0];
    assert!(!body.contains(EMAIL) && !body.contains(OBJECT_ID));
    let warning = body.find("Warning: this plan deletes data").unwrap();
    let summary = body.find("**Plan: 3 to delete").unwrap();
    let fold = body.find("<details>").unwrap();
    assert!(
        warning < fold && summary < fold,
        "warning and summary sit outside the fold"
    );
    insta::assert_snapshot!(body.as_str());
}

#[test]
fn markdown_without_deletions_has_no_warning() {
    let only_update: Vec<Change> = changes()
        .into_iter()
        .filter(|c| c.action == ChangeAction::Update)
        .collect();
    let bodies = render_markdown(
        &fixture::plan("rectify"),
        &only_update,
        &[],
        PlanViewOptions::default(),
    );
    assert!(!bodies[0].contains("Warning"));
    assert!(
        bodies[0]
            .contains("**Plan: 0 to delete, 1 to update, 0 manual, 0 unknown across 1 service**")
    );
}

/// A request touching thousands of records must still post: every body stays below the
/// comment limit, every change appears exactly once, and every fold is closed.
#[test]
fn markdown_splits_below_the_limit() {
    let many: Vec<Change> = (0..3000)
        .map(|i| {
            let mut c = change(
                &format!("shop-db/erase-customer#{i}"),
                ChangeAction::Delete,
                "DELETE FROM customers",
            );
            c.service = "shop-db".into();
            c.before = Some(
                json!({"id": i, "email": EMAIL, "name": "Ana Lopez", "notes": "x".repeat(40)}),
            );
            c
        })
        .chain(std::iter::once({
            let mut huge = change(
                "entra-users/delete-user",
                ChangeAction::Delete,
                "DELETE /users/{…}",
            );
            huge.before =
                Some(json!({"blob": (0..5000).map(|i| format!("v{i}")).collect::<Vec<_>>()}));
            huge
        }))
        .collect();
    let bodies = render_markdown(
        &fixture::plan("delete"),
        &many,
        &[],
        PlanViewOptions::default(),
    );
    assert!(bodies.len() > 3, "{} bodies", bodies.len());
    for (i, b) in bodies.iter().enumerate() {
        assert!(
            b.chars().count() < MARKDOWN_LIMIT,
            "body {i} has {} chars",
            b.chars().count()
        );
        assert_eq!(b.matches("<details>").count(), 1);
        assert_eq!(b.matches("</details>").count(), 1);
        assert!(!b.contains(EMAIL));
        if i > 0 {
            assert!(b.contains(&format!("(part {} of {})", i + 1, bodies.len())));
        }
    }
    let all = bodies.join("");
    for i in [0, 1, 1500, 2999] {
        assert_eq!(
            all.matches(&format!("(`shop-db/erase-customer#{i}`)"))
                .count(),
            1,
            "change {i}"
        );
    }
    assert!(all.contains("Before/after too large to show here"));
    assert!(bodies[0].contains("Plan: 3001 to delete"));
}

#[test]
fn no_changes() {
    let out = render_text(
        &fixture::plan("delete"),
        &[],
        &[],
        PlanViewOptions::default(),
    );
    assert!(out.contains("No changes"));
    assert!(
        out.ends_with("Plan: 0 to delete, 0 to update, 0 manual, 0 unknown across 0 services\n")
    );
    let md = render_markdown(
        &fixture::plan("delete"),
        &[],
        &[],
        PlanViewOptions::default(),
    );
    assert_eq!(md.len(), 1);
    assert!(!md[0].contains("<details>"));
}

#[test]
fn incomplete_views_list_the_failures_masked_and_never_say_no_changes() {
    use dsrctl::report::plan_view::Failure;
    let failures = [Failure {
        step: "entra-users/find-user".into(),
        status: "failed".into(),
        message: format!("the service answered 500 for {EMAIL}"),
    }];
    let plan = fixture::plan("delete");
    let opts = PlanViewOptions::default();
    let text = render_text(&plan, &[], &failures, opts);
    let json: Value = serde_json::from_str(&render_json(&plan, &[], &failures, opts)).unwrap();
    let md = render_markdown(&plan, &[], &failures, opts).join("");
    for out in [&text, &md, &json.to_string()] {
        assert!(!out.contains("No changes"), "{out}");
        assert!(out.contains("entra-users/find-user"), "{out}");
        assert!(!out.contains(EMAIL), "a subject value in a failure: {out}");
        assert!(
            out.contains("INCOMPLETE") || out.contains("Incomplete"),
            "{out}"
        );
    }
    assert_eq!(json["complete"], false);
    assert_eq!(json["errors"][0]["status"], "failed");
    let shown = render_text(
        &plan,
        &[],
        &failures,
        PlanViewOptions {
            show_personal_data: true,
            color: false,
        },
    );
    assert!(shown.contains(EMAIL), "{shown}");
}
