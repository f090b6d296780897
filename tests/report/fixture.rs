//! A run built by hand: a success, a failure, an exemption, a manual task, a deferred step
//! and a skipped service, with fixed timestamps.

use chrono::{DateTime, NaiveDate, Utc};
use dsrctl::journal::{Plan, RunRecord, StepOutcome};
use serde_json::json;

pub const EMAIL: &str = "ana.lopez@example.com";
pub const OBJECT_ID: &str = "6f1c2a9e-0b7d-4c3e-9a51-2d8f0e4b7c11";

pub fn ts(s: &str) -> DateTime<Utc> {
    s.parse().expect("timestamp")
}

pub fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2026, 3, 20).expect("date")
}

pub fn plan(kind: &str) -> Plan {
    serde_json::from_value(json!({
        "format_version": 1,
        "created_at": "2026-03-10T09:00:00Z",
        "request": {
            "id": "r-2026-0042", "kind": kind, "tenant": "contoso", "jurisdiction": "gdpr",
            "received": "2026-03-02",
            "subject": {"email": EMAIL, "object_id": OBJECT_ID}
        },
        "inputs": {
            "dsrctl.yaml": "1111111111111111111111111111111111111111111111111111111111111111",
            "policies/entra-users.yaml": "2222222222222222222222222222222222222222222222222222222222222222",
            "policies/shop-db.yaml": "3333333333333333333333333333333333333333333333333333333333333333"
        },
        "services": [
            {"service": "entra-users", "playbook": "policies/entra-users.yaml",
             "disposition": {"status": "run", "kinds": [kind]},
             "connector": {"tenant": "contoso", "name": "graph", "kind": "http"},
             "holds": ["user.profile", "user.contact"],
             "redact": ["/manager/displayName"]},
            {"service": "shop-db", "playbook": "policies/shop-db.yaml",
             "disposition": {"status": "run", "kinds": [kind]},
             "connector": {"tenant": "contoso", "name": "shop", "kind": "sql"}},
            {"service": "activity-logs", "playbook": "policies/activity-logs.yaml",
             "disposition": {"status": "exempt", "reason": "System-generated logs cannot be rectified or erased by the controller (seed 002)."}},
            {"service": "security-alerts", "playbook": "policies/security-alerts.yaml",
             "disposition": {"status": "run", "kinds": [kind]},
             "connector": {"tenant": "contoso", "name": "ops", "kind": "manual"},
             "notes": ["Alerts are kept 90 days."]},
            {"service": "legacy-crm", "playbook": "policies/legacy-crm.yaml",
             "disposition": {"status": "skipped", "reason": "needs identity `crm_id`, which the request does not give and no step discovers"}}
        ],
        "steps": [
            {"key": "entra-users/find-user", "service": "entra-users", "id": "find-user", "kind": kind,
             "connector": "graph", "action": {"http": {"method": "GET", "path": "/users/{{seg subject.email}}"}},
             "collect": "profile", "mutates": false, "idempotent": true},
            {"key": "entra-users/delete-user", "service": "entra-users", "id": "delete-user", "kind": kind,
             "description": "Delete the directory user", "connector": "graph",
             "action": {"http": {"method": "DELETE", "path": "/users/{{seg subject.object_id}}"}},
             "needs": ["entra-users/find-user"], "mutates": true, "idempotent": true},
            {"key": "entra-users/wait-purge", "service": "entra-users", "id": "wait-purge", "kind": kind,
             "action": {"wait": {"duration": "30d", "reason": "deleted users stay 30 days in the recycle bin"}},
             "needs": ["entra-users/delete-user"], "mutates": false, "idempotent": true},
            {"key": "entra-users/check-purge", "service": "entra-users", "id": "check-purge", "kind": kind,
             "connector": "graph", "action": {"http": {"method": "GET", "path": "/directory/deletedItems/{{seg subject.object_id}}"}},
             "needs": ["entra-users/wait-purge"], "mutates": false, "idempotent": true},
            {"key": "shop-db/erase-customer", "service": "shop-db", "id": "erase-customer", "kind": kind,
             "connector": "shop", "action": {"sql": {"delete": {"table": "customers", "where": {"email": "{{subject.email}}"}}}},
             "mutates": true, "idempotent": true},
            {"key": "security-alerts/clear-alerts", "service": "security-alerts", "id": "clear-alerts", "kind": kind,
             "connector": "ops", "action": {"manual": {"instructions": "Remove {{subject.email}} from every open alert", "evidence": ["screenshot of the alert list"], "assignee": "secops"}},
             "mutates": true, "idempotent": false}
        ]
    }))
    .expect("fixture plan")
}

pub fn run(kind: &str) -> RunRecord {
    serde_json::from_value(json!({
        "id": "01JQ0000000000000000000000",
        "request_id": "r-2026-0042",
        "mode": "apply",
        "status": "failed",
        "created_at": "2026-03-10T09:00:05Z",
        "updated_at": "2026-03-10T09:02:00Z",
        "plan": plan(kind),
    }))
    .expect("fixture run")
}

pub fn outcomes() -> Vec<StepOutcome> {
    serde_json::from_value(json!([
        {"instance": "entra-users/find-user", "step": "entra-users/find-user", "status": "succeeded",
         "started_at": "2026-03-10T09:00:06Z", "finished_at": "2026-03-10T09:00:06.250Z",
         "attempts": 1, "http_status": 200, "found": 1,
         "captures": {"id": OBJECT_ID, "mail": EMAIL},
         "collected": "spool/entra-users/profile.ndjson"},
        {"instance": "entra-users/delete-user", "step": "entra-users/delete-user", "status": "succeeded",
         "started_at": "2026-03-10T09:00:07Z", "finished_at": "2026-03-10T09:00:07.400Z",
         "attempts": 2, "http_status": 204, "affected": 1,
         "verification": {"passed": true, "detail": format!("GET /users/{OBJECT_ID} answered 404")}},
        {"instance": "entra-users/wait-purge", "step": "entra-users/wait-purge", "status": "waiting",
         "started_at": "2026-03-10T09:00:08Z", "due_at": "2026-04-09T09:00:08Z"},
        {"instance": "shop-db/erase-customer", "step": "shop-db/erase-customer", "status": "failed",
         "started_at": "2026-03-10T09:00:06Z", "finished_at": "2026-03-10T09:00:36Z", "attempts": 3,
         "message": format!("connection failed after 3 attempt(s): timeout while deleting rows where email = '{EMAIL}'")},
        {"instance": "security-alerts/clear-alerts", "step": "security-alerts/clear-alerts", "status": "succeeded",
         "started_at": "2026-03-10T09:00:06Z", "finished_at": "2026-03-12T15:30:00Z", "attempts": 1,
         "task": {"by": "jane.operator", "at": "2026-03-12T15:30:00Z", "result": "done",
                  "note": format!("removed {EMAIL} from 3 alerts"),
                  "evidence": [{"name": "alerts.png", "sha256": "abababababababababababababababababababababababababababababababab", "stored_at": "evidence/alerts.png"}]}}
    ]))
    .expect("fixture outcomes")
}
