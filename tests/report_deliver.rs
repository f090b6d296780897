//! `dsrctl report RUN --deliver` through the command line. Regression: without `--package` it
//! printed a path, exited 0 and delivered nothing; it now builds the package itself and
//! delivers it, and says why when there is nowhere to deliver.

mod support;

use serde_json::json;
use support::cli::{CONTACTS_PLAYBOOK, ProjectDir};
use support::{Reply, TestServer};

const REQUEST: &str = "id: r-7\nkind: access\ntenant: t1\nreceived: 2026-11-02\nsubject:\n  email: alice@example.com\n";

async fn project(export: &str) -> (ProjectDir, TestServer) {
    let server = TestServer::start(|_, _| {
        Reply::json(200, json!([{ "id": 1, "email": "alice@example.com" }]))
    })
    .await;
    let config = format!(
        "tenants:\n  t1:\n    connectors:\n      api:\n        kind: http\n        base_url: {}\n{export}",
        server.url
    );
    let p = ProjectDir::new()
        .file("dsrctl.yaml", &config)
        .file("policies/crm.yaml", CONTACTS_PLAYBOOK)
        .file("requests/access.yaml", REQUEST);
    p.cmd()
        .args(["run", "requests/access.yaml"])
        .run()
        .await
        .expect_code(0);
    (p, server)
}

fn run_id(p: &ProjectDir) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_dsrctl"))
        .arg("-C")
        .arg(p.path())
        .args(["status", "--json"])
        .output()
        .expect("status");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("status JSON");
    v["run"]
        .as_str()
        .unwrap_or_else(|| panic!("no run id in {v}"))
        .to_owned()
}

#[tokio::test]
async fn deliver_without_package_builds_and_delivers_it() {
    let (p, _server) = project("    export: { type: directory, path: exports }\n").await;
    let run = run_id(&p);
    let out = p
        .cmd()
        .args(["report", &run, "--deliver", "-o", "evidence.md"])
        .run()
        .await
        .expect_code(0);
    let delivered = p.path().join("exports/r-7");
    let manifest = std::fs::read_to_string(delivered.join("manifest.json"))
        .unwrap_or_else(|e| panic!("no package delivered ({e}):\n{}", out.stderr));
    assert!(manifest.contains("contacts"), "{manifest}");
    let records = std::fs::read_to_string(delivered.join("crm/contacts.json")).expect("records");
    assert!(records.contains("alice@example.com"), "{records}");
    assert!(out.stderr.contains("delivered"), "{}", out.stderr);
}

#[tokio::test]
async fn deliver_without_a_destination_says_so_and_fails() {
    let (p, _server) = project("").await;
    let run = run_id(&p);
    let out = p
        .cmd()
        .args(["report", &run, "--deliver", "-o", "evidence.md"])
        .run()
        .await
        .expect_code(1);
    assert!(
        out.stderr.contains("no export destination"),
        "{}",
        out.stderr
    );
}
