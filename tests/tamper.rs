//! Tampering with the record as someone with write access to the state store would, on the
//! SQLite and the PostgreSQL store, each caught by the commands an auditor runs: a step's
//! journaled outcome edited from failed to succeeded (`status`, `report`, `audit verify`), the
//! newest audit entry deleted and the head rewound (`audit verify --against CHECKPOINT`), and
//! an entry edited with the chain recomputed (`audit verify`, with or without a checkpoint).
//! Before this, the last two passed as "audit log intact" and the first was not looked at.

mod support;

#[path = "store_harness/mod.rs"]
#[allow(dead_code)]
mod harness;

use std::path::Path;
use std::time::Duration;

use dsrctl::store::{AuditEntry, GENESIS_HASH};
use harness::{Ctx, both};
use support::cli::{Dsrctl, Output};
use support::items::{ItemServer, things_by_uid, write_project};

const AUDIT_KEY: &str = "an audit key kept in the secrets manager, never in the store";

/// A project on the test's store with its evidence keys from secrets, after two runs: one
/// completed, one whose deletion the service refused (failed), then a signed checkpoint.
async fn project_with_history(ctx: &Ctx, server: &ItemServer) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    write_project(dir, &server.url(), &[("things", things_by_uid(1))]);
    let config = dir.join("dsrctl.yaml");
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(
        &config,
        format!(
            "{text}state: \"{}\"\nevidence:\n  audit_key: {{ env: DSRCTL_TEST_AUDIT_KEY }}\n  signing_key: {{ file: keys/signing.key }}\n",
            ctx.location()
        ),
    )
    .unwrap();
    std::fs::create_dir_all(dir.join("keys")).unwrap();
    std::fs::write(dir.join("keys/signing.key"), "5a".repeat(32)).unwrap();
    std::fs::create_dir_all(dir.join("requests")).unwrap();
    for (name, uid) in [("ok", "alice"), ("bad", "bob")] {
        std::fs::write(
            dir.join(format!("requests/{name}.yaml")),
            format!(
                "id: r-{name}\nkind: delete\ntenant: t1\nreceived: 2026-11-02\nsubject:\n  uid: {uid}\n"
            ),
        )
        .unwrap();
    }
    dsrctl(dir, &["run", "requests/ok.yaml", "--approve", "Dana (DPO)"])
        .await
        .expect_code(0);
    server.fail_path("/bob/items/", 400);
    dsrctl(
        dir,
        &["run", "requests/bad.yaml", "--approve", "Dana (DPO)"],
    )
    .await
    .expect_code(1);
    server.fail_path("", 0);
    let out = dsrctl(dir, &["audit", "verify"]).await.expect_code(0);
    assert!(out.stdout.contains("audit log intact"), "{}", out.stdout);
    dsrctl(dir, &["audit", "checkpoint", "-o", "checkpoint.json"])
        .await
        .expect_code(0);
    let out = dsrctl(dir, &["audit", "verify", "--against", "checkpoint.json"])
        .await
        .expect_code(0);
    assert!(
        out.stdout.contains("checkpoint.json holds"),
        "{}",
        out.stdout
    );
    tmp
}

async fn dsrctl(dir: &Path, args: &[&str]) -> Output {
    Dsrctl::new(dir)
        .args(args)
        .env("DSRCTL_TEST_AUDIT_KEY", AUDIT_KEY)
        .run()
        .await
}

both!(a_journaled_outcome_edited_from_failed_to_succeeded_is_caught);
async fn a_journaled_outcome_edited_from_failed_to_succeeded_is_caught(ctx: &Ctx) {
    let server = ItemServer::start(Duration::ZERO).await;
    let tmp = project_with_history(ctx, &server).await;
    let dir = tmp.path();
    let set_status = match ctx.backend() {
        "sqlite" => "json_set(body, '$.status', 'succeeded')",
        _ => "jsonb_set(body::jsonb, '{status}', '\"succeeded\"')::json",
    };
    ctx.exec(&format!(
        "UPDATE outcomes SET status = 'succeeded', body = {set_status} WHERE status = 'failed'"
    ))
    .await;

    let out = dsrctl(dir, &["status"]).await.expect_code(1);
    assert!(
        out.stdout.contains(
            "JOURNAL DOES NOT MATCH THE AUDIT LOG: things/drop#0: journaled as succeeded but audit entry"
        ) && out.stdout.contains("recorded failed"),
        "{}",
        out.stdout
    );
    let out = dsrctl(
        dir,
        &["report", "--format", "json", &run_of(dir, "r-bad").await],
    )
    .await
    .expect_code(0);
    let report: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(report["audit"]["intact"], false, "{}", out.stdout);
    assert!(
        out.stderr.contains("journal does not match"),
        "{}",
        out.stderr
    );
    let out = dsrctl(dir, &["audit", "verify"]).await.expect_code(1);
    assert!(out.stdout.contains("journal of run"), "{}", out.stdout);
}

both!(the_newest_entry_deleted_and_the_head_rewound_is_caught_by_the_checkpoint);
async fn the_newest_entry_deleted_and_the_head_rewound_is_caught_by_the_checkpoint(ctx: &Ctx) {
    let server = ItemServer::start(Duration::ZERO).await;
    let tmp = project_with_history(ctx, &server).await;
    let dir = tmp.path();
    ctx.exec("DELETE FROM audit_log WHERE seq = (SELECT MAX(seq) FROM audit_log)")
        .await;
    ctx.exec(
        "UPDATE audit_head SET seq = (SELECT MAX(seq) FROM audit_log), \
         hash = (SELECT hash FROM audit_log WHERE seq = (SELECT MAX(seq) FROM audit_log))",
    )
    .await;
    let out = dsrctl(dir, &["audit", "verify", "--against", "checkpoint.json"])
        .await
        .expect_code(1);
    assert!(out.stdout.contains("history was rewound"), "{}", out.stdout);
}

both!(an_entry_edited_and_the_chain_recomputed_is_caught);
async fn an_entry_edited_and_the_chain_recomputed_is_caught(ctx: &Ctx) {
    let server = ItemServer::start(Duration::ZERO).await;
    let tmp = project_with_history(ctx, &server).await;
    let dir = tmp.path();
    // Who approved is rewritten, and every hash from there on recomputed, as anyone who can
    // write the store but does not hold the audit key can.
    let store = ctx.open().await;
    let mut entries = store.audit_entries().await.unwrap();
    store.close().await;
    let first = entries
        .iter()
        .position(|e| e.kind == "approved")
        .expect("an approval");
    entries[first].actor = Some("Mallory".into());
    for i in first..entries.len() {
        let prev = if i == 0 {
            GENESIS_HASH.to_owned()
        } else {
            entries[i - 1].hash.clone()
        };
        entries[i].prev_hash = prev;
        entries[i].hash = entries[i].expected_hash(None);
    }
    for e in &entries[first..] {
        ctx.exec(&rewrite(e)).await;
    }
    let last = entries.last().unwrap();
    ctx.exec(&format!(
        "UPDATE audit_head SET seq = {}, hash = '{}'",
        last.seq, last.hash
    ))
    .await;

    let out = dsrctl(dir, &["audit", "verify"]).await.expect_code(1);
    assert!(
        out.stdout.contains("BROKEN") && out.stdout.contains("MAC under the audit key"),
        "{}",
        out.stdout
    );
    let out = dsrctl(dir, &["audit", "verify", "--against", "checkpoint.json"])
        .await
        .expect_code(1);
    assert!(
        out.stdout.contains("history was rewritten"),
        "{}",
        out.stdout
    );
}

fn rewrite(e: &AuditEntry) -> String {
    let quote = |s: &str| s.replace('\'', "''");
    format!(
        "UPDATE audit_log SET actor = {}, prev_hash = '{}', hash = '{}' WHERE seq = {}",
        e.actor
            .as_deref()
            .map_or("NULL".to_owned(), |a| format!("'{}'", quote(a))),
        e.prev_hash,
        e.hash,
        e.seq
    )
}

/// The id of the run of a request, from `dsrctl runs --json`.
async fn run_of(dir: &Path, request: &str) -> String {
    let out = dsrctl(dir, &["runs", "--json"]).await.expect_code(0);
    let runs: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    runs.as_array()
        .unwrap()
        .iter()
        .find(|r| r["request_id"] == request || r["request"] == request)
        .and_then(|r| r["id"].as_str().or(r["run"].as_str()))
        .unwrap_or_else(|| panic!("no run of {request} in {}", out.stdout))
        .to_owned()
}

/// The plan the shared store harness's crash child records against (not used here).
#[allow(dead_code)]
fn plan(request_id: &str) -> dsrctl::journal::Plan {
    serde_json::from_value(serde_json::json!({
        "format_version": dsrctl::journal::PLAN_FORMAT_VERSION,
        "created_at": "2026-01-31T00:00:00Z",
        "request": {"id": request_id, "kind": "delete", "tenant": "t1", "received": "2026-01-31",
                    "subject": {"uid": "x"}},
        "inputs": {}, "services": [], "steps": []
    }))
    .unwrap()
}
