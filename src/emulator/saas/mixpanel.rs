//! Mixpanel GDPR and CCPA API v3 (reference: <https://docs.mixpanel.com/reference/gdpr-api>,
//! the OpenAPI document `gdpr.openapi.yaml` behind it).
//!
//! Reproduced: the GDPR OAuth token as `Bearer` (401 otherwise) and the project token as the
//! `token` query parameter (400 when missing or not the project's); `POST
//! /data-deletions/v3.0/` and `POST /data-retrievals/v3.0/` with `distinct_ids` (1 to 2,000)
//! and `compliance_type` (`GDPR` or `CCPA`), answering `{"status": "ok", "results":
//! {"task_id"}}`; `GET /data-deletions/v3.0/{task_id}` and `GET
//! /data-retrievals/v3.0/{task_id}` answering `{"status": "ok", "results": {"status",
//! "result", "distinct_ids"}}` with the status `PENDING` when created, `STARTED` once the
//! clock moves and `SUCCESS` one emulator day after creation (the real API takes days to
//! weeks); a finished deletion removes the events and profiles of those distinct ids; a
//! finished retrieval's `result` is the link to the archive of the subject's data, which
//! holds what the project had on them when it finished (in the snapshot, beside its task); `DELETE /data-deletions/v3.0/{task_id}` cancelling a deletion that
//! has not `STARTED` (`REVOKED`), refused with 400 after; 404 for an unknown task; 429
//! `{"status": "error", "error": ...}` when the limit (one request per second) is exceeded.
//!
//! Not reproduced: serving the archive itself (a zip on Mixpanel's storage, outside the
//! API), `disclosure_type` for CCPA retrievals, aliases resolving to their distinct id,
//! the EU and India residency hosts, `FAILURE`/`NOT_FOUND` outcomes. Mixpanel documents no
//! rate-limit headers for this API, and the emulator sends none.

use std::time::Duration;

use axum::http::Method;
use axum::response::Response;
use serde_json::{Value, json};

use super::{Api, Req, json as json_resp};

/// The GDPR OAuth token the emulator accepts.
pub const OAUTH_TOKEN: &str = "mixpanel-emulator-gdpr-oauth-token";

/// The project token (not a secret: it is in every app that tracks to the project).
pub const PROJECT_TOKEN: &str = "0f1e2d3c4b5a69788796a5b4c3d2e1f0";

/// Seconds from a task's creation until it succeeds.
pub const DURATION_SECS: u64 = 86_400;

/// Most distinct ids in one task.
const MAX_IDS: usize = 2000;

/// Mixpanel's state.
pub struct Mixpanel {
    events: Vec<Value>,
    profiles: Vec<Value>,
    tasks: Vec<Task>,
    clock: u64,
}

struct Task {
    id: String,
    kind: TaskKind,
    distinct_ids: Vec<String>,
    compliance: String,
    created: u64,
    revoked: bool,
    applied: bool,
    archive: Option<Value>,
}

#[derive(Clone, Copy, PartialEq)]
enum TaskKind {
    Deletion,
    Retrieval,
}

fn error(status: u16, message: &str) -> Response {
    json_resp(status, &json!({"status": "error", "error": message}))
}

impl Mixpanel {
    /// Events and profiles of Alice and Bob.
    pub fn seeded() -> Mixpanel {
        Mixpanel {
            events: vec![
                json!({"event": "Sign Up", "properties": {"distinct_id": "user-alice", "time": 1_761_990_000, "$city": "London"}}),
                json!({"event": "Purchase", "properties": {"distinct_id": "user-alice", "time": 1_762_000_000, "amount": 19.99}}),
                json!({"event": "Sign Up", "properties": {"distinct_id": "user-bob", "time": 1_761_995_000, "$city": "Leeds"}}),
            ],
            profiles: vec![
                json!({"$distinct_id": "user-alice", "$properties": {"$email": "alice@example.com", "$name": "Alice Archer"}}),
                json!({"$distinct_id": "user-bob", "$properties": {"$email": "bob@example.com", "$name": "Bob Baker"}}),
            ],
            tasks: Vec::new(),
            clock: 0,
        }
    }

    fn status(&self, t: &Task) -> &'static str {
        let age = self.clock.saturating_sub(t.created);
        if t.revoked {
            "REVOKED"
        } else if age >= DURATION_SECS {
            "SUCCESS"
        } else if age > 0 {
            "STARTED"
        } else {
            "PENDING"
        }
    }

    /// What the project holds on `ids`.
    fn held(&self, ids: &[String]) -> Value {
        let of = |v: &Value| ids.iter().any(|id| v == id.as_str());
        json!({
            "events": self.events.iter().filter(|e| of(&e["properties"]["distinct_id"])).collect::<Vec<_>>(),
            "profiles": self.profiles.iter().filter(|p| of(&p["$distinct_id"])).collect::<Vec<_>>(),
        })
    }

    /// Applies the tasks that have finished.
    fn settle(&mut self) {
        for i in 0..self.tasks.len() {
            if self.tasks[i].applied || self.status(&self.tasks[i]) != "SUCCESS" {
                continue;
            }
            let ids = self.tasks[i].distinct_ids.clone();
            match self.tasks[i].kind {
                TaskKind::Deletion => {
                    let of = |v: &Value| ids.iter().any(|id| v == id.as_str());
                    self.events.retain(|e| !of(&e["properties"]["distinct_id"]));
                    self.profiles.retain(|p| !of(&p["$distinct_id"]));
                }
                TaskKind::Retrieval => self.tasks[i].archive = Some(self.held(&ids)),
            }
            self.tasks[i].applied = true;
        }
    }

    fn create(&mut self, req: &Req, kind: TaskKind) -> Response {
        let Some(body) = req.json() else {
            return error(400, "The request body must be JSON.");
        };
        let ids: Vec<String> = body["distinct_ids"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect();
        if ids.is_empty() || ids.len() > MAX_IDS || ids.iter().any(String::is_empty) {
            return error(
                400,
                &format!("distinct_ids: a list of 1 to {MAX_IDS} non-empty strings is required"),
            );
        }
        let compliance = match body.get("compliance_type").and_then(Value::as_str) {
            None => "GDPR",
            Some(c @ ("GDPR" | "CCPA")) => c,
            Some(_) => return error(400, "compliance_type: must be GDPR or CCPA"),
        };
        let id = format!(
            "{}{:06}",
            if kind == TaskKind::Deletion { "d" } else { "r" },
            self.tasks.len() + 1
        );
        self.tasks.push(Task {
            id: id.clone(),
            kind,
            distinct_ids: ids,
            compliance: compliance.to_owned(),
            created: self.clock,
            revoked: false,
            applied: false,
            archive: None,
        });
        json_resp(200, &json!({"status": "ok", "results": {"task_id": id}}))
    }

    fn show(&self, req: &Req, kind: TaskKind, id: &str) -> Response {
        let Some(t) = self.tasks.iter().find(|t| t.id == id && t.kind == kind) else {
            return error(404, "Task not found.");
        };
        let status = self.status(t);
        let result = match (kind, status) {
            (TaskKind::Retrieval, "SUCCESS") => {
                let host = req
                    .base
                    .split("/api/")
                    .next()
                    .unwrap_or_default()
                    .to_owned();
                json!(format!("{host}/gdpr-exports/{}.zip", t.id))
            }
            _ => json!(""),
        };
        json_resp(
            200,
            &json!({"status": "ok", "results": {
                "status": status, "result": result, "distinct_ids": t.distinct_ids,
                "compliance_type": t.compliance,
            }}),
        )
    }
}

impl Api for Mixpanel {
    fn authenticate(&self, req: &Req) -> Option<Response> {
        let ok = req
            .header("authorization")
            .is_some_and(|a| a.starts_with("Bearer "))
            && req.credential().as_deref() == Some(OAUTH_TOKEN);
        if !ok {
            return Some(error(401, "Invalid OAuth token."));
        }
        (req.param("token") != Some(PROJECT_TOKEN))
            .then(|| error(400, "token: the project token is missing or unknown"))
    }

    fn handle(&mut self, req: &Req) -> Response {
        self.settle();
        let path = req.path();
        match (req.method.clone(), path.as_slice()) {
            (Method::POST, ["data-deletions", "v3.0"]) => self.create(req, TaskKind::Deletion),
            (Method::POST, ["data-retrievals", "v3.0"]) => self.create(req, TaskKind::Retrieval),
            (Method::GET, ["data-deletions", "v3.0", id]) => self.show(req, TaskKind::Deletion, id),
            (Method::GET, ["data-retrievals", "v3.0", id]) => {
                self.show(req, TaskKind::Retrieval, id)
            }
            (Method::DELETE, ["data-deletions", "v3.0", id]) => {
                let clock = self.clock;
                let Some(t) = self
                    .tasks
                    .iter_mut()
                    .find(|t| t.id == *id && t.kind == TaskKind::Deletion)
                else {
                    return error(404, "Task not found.");
                };
                if clock > t.created || t.applied {
                    return error(400, "The task has started and can no longer be cancelled.");
                }
                t.revoked = true;
                json_resp(
                    200,
                    &json!({"status": "ok", "results": {"status": "REVOKED"}}),
                )
            }
            _ => error(404, "Not found."),
        }
    }

    fn throttled(&self, _retry_after: u64) -> Response {
        error(429, "Rate limit exceeded: one request per second.")
    }

    fn snapshot(&self) -> Value {
        let tasks: Vec<Value> = self
            .tasks
            .iter()
            .map(|t| {
                json!({"task_id": t.id, "distinct_ids": t.distinct_ids, "status": self.status(t),
                    "kind": if t.kind == TaskKind::Deletion { "deletion" } else { "retrieval" },
                    "archive": t.archive})
            })
            .collect();
        json!({"events": self.events, "profiles": self.profiles, "tasks": tasks})
    }

    fn advance(&mut self, by: Duration) {
        self.clock += by.as_secs();
        self.settle();
    }
}
