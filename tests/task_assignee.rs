//! Regression: `task list` (and the evidence report) named the tenant's first manual
//! connector's assignee for every manual task, not the one of the connector the step is done
//! through.

mod support;

use support::cli::ProjectDir;

const CONFIG: &str = "tenants:
  t1:
    connectors:
      aaa-helpdesk: { kind: manual, assignee: helpdesk@example.com }
      ops: { kind: manual, assignee: secops@example.com }
";

const PLAYBOOK: &str = r#"service: alerts
connector: ops
needs_identities: [email]
dsr:
  access: { unsupported: "test" }
  export: { unsupported: "test" }
  rectify: { unsupported: "test" }
  restrict: { unsupported: "test" }
  delete:
    - id: clear
      manual:
        instructions: "Remove the subject from every open alert"
        evidence: [screenshot]
"#;

const REQUEST: &str =
    "id: r-1\nkind: delete\ntenant: t1\nreceived: 2026-11-02\nsubject:\n  email: a@example.com\n";

#[tokio::test]
async fn a_manual_task_is_assigned_through_its_own_connector() {
    let p = ProjectDir::new()
        .file("dsrctl.yaml", CONFIG)
        .file("policies/alerts.yaml", PLAYBOOK)
        .file("requests/r.yaml", REQUEST);
    p.cmd()
        .args(["run", "requests/r.yaml", "--approve", "Dana (DPO)"])
        .run()
        .await;
    let out = p
        .cmd()
        .args(["task", "list", "--format", "json"])
        .run()
        .await
        .expect_code(0);
    let tasks: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(tasks[0]["assignee"], "secops@example.com", "{tasks}");

    let run = tasks[0]["run"].as_str().unwrap().to_owned();
    let out = p
        .cmd()
        .args(["report", &run, "--format", "json"])
        .run()
        .await
        .expect_code(0);
    let report: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(
        report["services"][0]["steps"][0]["task"]["assignee"],
        "secops@example.com"
    );
}
