//! Signed evidence checked offline as an auditor would, with only the public key: the evidence
//! report (JSON and HTML) and the export package verify with `dsrctl evidence verify`, the
//! package also with the real `sha256sum -c SHA256SUMS`; one byte altered anywhere is refused.
//! A package built from a run that failed says in its manifest that it is incomplete, and why.

mod support;

use std::path::Path;

use serde_json::json;
use support::cli::{CONTACTS_PLAYBOOK, ProjectDir};
use support::{Reply, TestServer};

const BILLING: &str = r#"service: billing
connector: api
needs_identities: [email]
dsr:
  access:
    - id: invoices
      http: { method: GET, path: /invoices, query: { email: "{{subject.email}}" } }
      collect: invoices
  export: { same_as: [access] }
  rectify: { unsupported: "test" }
  restrict: { unsupported: "test" }
  delete: { unsupported: "test" }
"#;

const REQUEST: &str = "id: r-7\nkind: access\ntenant: t1\nreceived: 2026-11-02\nsubject:\n  email: alice@example.com\n";

/// A project whose billing service answers `billing_status`, after running the request.
async fn project(billing_status: u16) -> (ProjectDir, TestServer) {
    let server = TestServer::start(move |call, _| {
        if call.path.starts_with("/invoices") {
            Reply::json(billing_status, json!([{ "invoice": 12, "total": 30 }]))
        } else {
            Reply::json(200, json!([{ "id": 1, "email": "alice@example.com" }]))
        }
    })
    .await;
    let config = format!(
        "tenants:\n  t1:\n    connectors:\n      api:\n        kind: http\n        base_url: {}\n        retry: {{ attempts: 1 }}\nevidence:\n  signing_key: {{ env: DSRCTL_TEST_SIGNING_KEY }}\n",
        server.url
    );
    let p = ProjectDir::new()
        .file("dsrctl.yaml", &config)
        .file(
            "policies/crm.yaml",
            &CONTACTS_PLAYBOOK.replacen("connector:", "title: Customer records\nconnector:", 1),
        )
        .file("policies/billing.yaml", BILLING)
        .file("requests/access.yaml", REQUEST);
    let code = if billing_status == 200 { 0 } else { 1 };
    p.cmd()
        .args(["run", "requests/access.yaml"])
        .env("DSRCTL_TEST_SIGNING_KEY", &"3c".repeat(32))
        .run()
        .await
        .expect_code(code);
    (p, server)
}

async fn dsrctl(p: &ProjectDir, args: &[&str], code: i32) -> support::cli::Output {
    p.cmd()
        .args(args)
        .env("DSRCTL_TEST_SIGNING_KEY", &"3c".repeat(32))
        .run()
        .await
        .expect_code(code)
}

fn run_id(p: &ProjectDir) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_dsrctl"))
        .arg("-C")
        .arg(p.path())
        .args(["status", "--json"])
        .output()
        .expect("status");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("status JSON");
    v["run"].as_str().expect("run id").to_owned()
}

/// Flips one byte of a file (an ASCII letter's case, or a digit), as a careless or
/// dishonest edit would.
fn alter_one_byte(path: &Path, after: &str) {
    let mut bytes = std::fs::read(path).unwrap();
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let start = text.find(after).expect("anchor") + after.len();
    let i = (start..bytes.len())
        .find(|&i| bytes[i].is_ascii_alphanumeric())
        .expect("a byte to alter");
    bytes[i] = match bytes[i] {
        b'0'..=b'8' => bytes[i] + 1,
        b'9' => b'0',
        b => b ^ 0x20,
    };
    std::fs::write(path, bytes).unwrap();
}

/// The auditor's check, offline: `dsrctl evidence verify` outside any project, with the key.
async fn verify(path: &Path, key: &str) -> support::cli::Output {
    let elsewhere = tempfile::tempdir().unwrap();
    support::cli::Dsrctl::new(elsewhere.path())
        .args(["evidence", "verify"])
        .arg(path.display().to_string())
        .args(["--public-key", key])
        .run()
        .await
}

#[tokio::test]
async fn signed_report_and_package_verify_offline_and_one_byte_altered_is_refused() {
    let (p, _server) = project(200).await;
    let run = run_id(&p);
    let key = dsrctl(&p, &["evidence", "public-key"], 0)
        .await
        .stdout
        .trim()
        .to_owned();
    assert_eq!(key.len(), 64, "{key}");
    dsrctl(
        &p,
        &["report", &run, "--format", "json", "-o", "evidence.json"],
        0,
    )
    .await;
    dsrctl(
        &p,
        &["report", &run, "--format", "html", "-o", "evidence.html"],
        0,
    )
    .await;
    let out = dsrctl(&p, &["report", &run, "--package", "out"], 0).await;
    assert!(out.stderr.contains("SHA256SUMS"), "{}", out.stderr);

    for file in ["evidence.json", "evidence.html", "out"] {
        let path = p.path().join(file);
        let ok = verify(&path, &key).await.expect_code(0);
        assert!(ok.stdout.contains("evidence verified"), "{}", ok.stdout);
    }
    // The real sha256sum accepts the package as delivered.
    let sums = std::process::Command::new("sha256sum")
        .args(["-c", "SHA256SUMS"])
        .current_dir(p.path().join("out"))
        .output()
        .expect("sha256sum is installed");
    assert!(
        sums.status.success(),
        "{}",
        String::from_utf8_lossy(&sums.stdout)
    );
    let listed = String::from_utf8_lossy(&sums.stdout);
    assert!(
        listed.contains("crm/contacts.json: OK") && listed.contains("manifest.json: OK"),
        "{listed}"
    );
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(p.path().join("out/manifest.json")).unwrap())
            .unwrap();
    assert_eq!(manifest["complete"], true, "{manifest}");

    // Another key is refused.
    let other = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";
    verify(&p.path().join("evidence.json"), other)
        .await
        .expect_code(1);

    // One byte altered in each: the report's run status, the HTML's request id, a record.
    alter_one_byte(&p.path().join("evidence.json"), "\"run_status\": \"");
    let refused = verify(&p.path().join("evidence.json"), &key)
        .await
        .expect_code(1);
    assert!(refused.stdout.contains("REFUSED"), "{}", refused.stdout);
    alter_one_byte(
        &p.path().join("evidence.html"),
        "<h1>Evidence report: request ",
    );
    verify(&p.path().join("evidence.html"), &key)
        .await
        .expect_code(1);
    alter_one_byte(&p.path().join("out/crm/contacts.json"), "\"email\": \"");
    let refused = verify(&p.path().join("out"), &key).await.expect_code(1);
    assert!(
        refused.stdout.contains("crm/contacts.json"),
        "{}",
        refused.stdout
    );
    let sums = std::process::Command::new("sha256sum")
        .args(["-c", "SHA256SUMS"])
        .current_dir(p.path().join("out"))
        .output()
        .unwrap();
    assert!(!sums.status.success(), "sha256sum must refuse it too");
}

/// Regression: a package built from a failed run listed the failed service with no files
/// and nothing saying the package was incomplete.
#[tokio::test]
async fn a_package_from_a_failed_run_says_it_is_incomplete_and_why() {
    let (p, _server) = project(403).await;
    let run = run_id(&p);
    let out = dsrctl(&p, &["report", &run, "--package", "out"], 0).await;
    assert!(out.stderr.contains("INCOMPLETE"), "{}", out.stderr);
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(p.path().join("out/manifest.json")).unwrap())
            .unwrap();
    assert_eq!(manifest["complete"], false, "{manifest}");
    let why = manifest["incomplete_because"].to_string();
    assert!(
        why.contains("billing: step `invoices` failed"),
        "{manifest}"
    );
    // Still signed and checkable: incomplete is what it honestly says.
    let key = dsrctl(&p, &["evidence", "public-key"], 0).await.stdout;
    let ok = verify(&p.path().join("out"), key.trim())
        .await
        .expect_code(0);
    assert!(ok.stdout.contains("INCOMPLETE"), "{}", ok.stdout);
}
