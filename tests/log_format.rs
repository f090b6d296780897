//! `--log-format json`: every line on stderr is one JSON log object (step lines, the run's
//! header, saved-plan notes, diagnostics of an invalid project and the final error), so a log
//! collector never meets a plain line.

mod support;

use support::cli::{Output, ProjectDir};

/// Every stderr line, parsed; fails naming a line that is not a JSON log object.
fn log_lines(out: &Output) -> Vec<serde_json::Value> {
    out.stderr
        .lines()
        .map(|line| {
            let v: serde_json::Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("not JSON ({e}): {line}\n--- stderr\n{}", out.stderr));
            assert!(
                v["level"].is_string() && v["fields"]["message"].is_string(),
                "{line}"
            );
            v
        })
        .collect()
}

const CONFIG: &str = "tenants:\n  t1:\n    connectors:\n      db: { kind: sql, url: \"sqlite://crm.db\", create_if_missing: true }\n";

const PLAYBOOK: &str = "\
service: crm
connector: db
needs_identities: [email]
dsr:
  access:
    - id: read
      sql: { select: { table: customers, where: { email: \"{{subject.email}}\" } } }
      collect: customer
  export: { unsupported: t }
  rectify: { unsupported: t }
  restrict: { unsupported: t }
  delete: { unsupported: t }
";

const REQUEST: &str = "id: r-1\nkind: access\ntenant: t1\nsubject:\n  email: jane@example.com\n";

#[tokio::test]
async fn a_run_and_its_error_are_json_lines_only() {
    let p = ProjectDir::new()
        .file("dsrctl.yaml", CONFIG)
        .file("policies/crm.yaml", PLAYBOOK)
        .file("requests/r.yaml", REQUEST);
    // The table does not exist: the step fails, the run fails, the error is a log line too.
    let out = p
        .cmd()
        .args(["--log-format", "json", "run", "requests/r.yaml"])
        .run()
        .await
        .expect_code(1);
    let lines = log_lines(&out);
    assert!(
        lines.iter().any(|l| l["fields"]["step"] == "crm/read"),
        "a step line: {}",
        out.stderr
    );
    assert!(
        lines.iter().any(|l| l["level"] == "ERROR"),
        "the error: {}",
        out.stderr
    );
    assert!(!out.stderr.contains("jane@example.com"), "{}", out.stderr);
}

#[tokio::test]
async fn diagnostics_of_an_invalid_project_are_json_lines() {
    let p = ProjectDir::new()
        .file("dsrctl.yaml", CONFIG)
        .file(
            "policies/crm.yaml",
            &PLAYBOOK.replace("needs_identities", "needs_identitys"),
        )
        .file("requests/r.yaml", REQUEST);
    let out = p
        .cmd()
        .args([
            "--log-format",
            "json",
            "plan",
            "--offline",
            "requests/r.yaml",
        ])
        .run()
        .await
        .expect_code(1);
    let lines = log_lines(&out);
    let finding = lines
        .iter()
        .find(|l| l["fields"]["code"].is_string())
        .unwrap_or_else(|| panic!("a diagnostic with its code: {}", out.stderr));
    assert_eq!(finding["level"], "ERROR");
    assert!(
        finding["fields"]["file"]
            .as_str()
            .is_some_and(|f| f.ends_with("crm.yaml"))
    );
    assert!(finding["fields"]["line"].as_u64().is_some_and(|l| l > 0));
}
