//! Segment Public API, deletion and suppression (reference:
//! <https://docs.segmentapis.com/tag/Deletion-and-Suppression>).
//!
//! Reproduced: a workspace token as `Bearer` (401 `{"errors": [{"type": "unauthorized",
//! ...}]}` otherwise); `POST /regulations` with `regulationType` (`SUPPRESS`,
//! `SUPPRESS_WITH_DELETE`, `DELETE_INTERNAL`, `UNSUPPRESS`, ...), `subjectType` (`USER_ID`)
//! and `subjectIds`, answering `{"data": {"regulateId"}}`, 400 `validation` errors for a
//! bad type or an empty list; `GET /regulations/{regulateId}` with `overallStatus`
//! `INITIALIZED`, then `RUNNING`, then `FINISHED` one emulator day after creation, and the
//! per-destination `streamStatus`; `GET /suppressions` listing the suppressed user ids;
//! 404 `not-found` errors; the `X-RateLimit-Limit`, `X-RateLimit-Remaining` and
//! `X-RateLimit-Reset` (Unix seconds) headers and 429 with `Retry-After`.
//!
//! Not reproduced: pagination of regulation lists, `OBJECT_ID` subjects, source-level
//! regulations, cancelling a regulation, the 30-day deletion window of real destinations
//! (a day here, so a test can move the clock), failed or partial regulations.

use std::time::Duration;

use axum::http::Method;
use axum::response::Response;
use serde_json::{Value, json};

use super::{Api, Req, json as json_resp, set_header, unix_reset};

/// The workspace token the emulator accepts.
pub const TOKEN: &str = "sgp_emulator";

/// Seconds from a regulation's creation until it is finished.
pub const DURATION_SECS: u64 = 86_400;

const TYPES: &[&str] = &[
    "SUPPRESS",
    "UNSUPPRESS",
    "SUPPRESS_WITH_DELETE",
    "DELETE_INTERNAL",
    "DELETE_ONLY",
    "SUPPRESS_WITH_DELETE_INTERNAL",
    "DELETE_ARCHIVE_ONLY",
];

/// Segment's state.
pub struct Segment {
    /// Events collected per user id (what a deletion removes).
    events: Vec<Value>,
    regulations: Vec<Value>,
    suppressed: Vec<String>,
    clock: u64,
}

fn error(status: u16, kind: &str, message: &str) -> Response {
    json_resp(
        status,
        &json!({"errors": [{"type": kind, "message": message}]}),
    )
}

impl Segment {
    /// Events of Alice and Bob.
    pub fn seeded() -> Segment {
        Segment {
            events: vec![
                json!({"userId": "user-alice", "event": "Order Completed", "properties": {"total": 19.99}}),
                json!({"userId": "user-bob", "event": "Signed Up"}),
                json!({"userId": "user-alice", "event": "Page Viewed", "properties": {"path": "/pricing"}}),
            ],
            regulations: Vec::new(),
            suppressed: Vec::new(),
            clock: 0,
        }
    }

    fn status(&self, r: &Value) -> &'static str {
        let age = self
            .clock
            .saturating_sub(r["_created"].as_u64().unwrap_or(0));
        if age >= DURATION_SECS {
            "FINISHED"
        } else if age > 0 {
            "RUNNING"
        } else {
            "INITIALIZED"
        }
    }

    fn settle(&mut self) {
        let finished: Vec<Value> = self
            .regulations
            .iter()
            .filter(|r| r["_applied"] != true && self.status(r) == "FINISHED")
            .cloned()
            .collect();
        for r in finished {
            let ids: Vec<String> = r["subjectIds"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect();
            let kind = r["regulationType"].as_str().unwrap_or_default();
            if kind.contains("DELETE") {
                self.events
                    .retain(|e| !ids.iter().any(|id| e["userId"] == id.as_str()));
            }
            if kind == "UNSUPPRESS" {
                self.suppressed.retain(|s| !ids.contains(s));
            }
            for reg in &mut self.regulations {
                if reg["id"] == r["id"] {
                    reg["_applied"] = json!(true);
                }
            }
        }
    }
}

impl Api for Segment {
    fn authenticate(&self, req: &Req) -> Option<Response> {
        let ok = req
            .header("authorization")
            .is_some_and(|a| a.starts_with("Bearer "))
            && req.credential().as_deref() == Some(TOKEN);
        (!ok).then(|| {
            error(
                401,
                "unauthorized",
                "The provided token is invalid or expired.",
            )
        })
    }

    fn handle(&mut self, req: &Req) -> Response {
        self.settle();
        let path = req.path();
        match (req.method.clone(), path.as_slice()) {
            (Method::POST, ["regulations"]) => {
                let Some(body) = req.json() else {
                    return error(400, "validation", "The request body is not valid JSON.");
                };
                let kind = body["regulationType"].as_str().unwrap_or_default();
                if !TYPES.contains(&kind) {
                    return error(
                        400,
                        "validation",
                        &format!("regulationType: must be one of {}", TYPES.join(", ")),
                    );
                }
                if body["subjectType"] != "USER_ID" {
                    return error(400, "validation", "subjectType: must be USER_ID");
                }
                let ids: Vec<String> = body["subjectIds"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect();
                if ids.is_empty() || ids.iter().any(String::is_empty) {
                    return error(
                        400,
                        "validation",
                        "subjectIds: must hold at least one non-empty id",
                    );
                }
                if kind.starts_with("SUPPRESS") {
                    for id in &ids {
                        if !self.suppressed.contains(id) {
                            self.suppressed.push(id.clone());
                        }
                    }
                }
                let id = format!("reg_{}", self.regulations.len() + 1);
                self.regulations
                    .push(json!({"id": id, "workspaceId": "ws_emulator",
                    "regulationType": kind, "subjectType": "USER_ID", "subjectIds": ids,
                    "_created": self.clock}));
                json_resp(200, &json!({"data": {"regulateId": id}}))
            }
            (Method::GET, ["regulations", id]) => {
                let Some(r) = self.regulations.iter().find(|r| r["id"] == *id) else {
                    return error(404, "not-found", "Regulation not found.");
                };
                let status = self.status(r);
                let stream = if status == "FINISHED" {
                    "FINISHED"
                } else {
                    "RUNNING"
                };
                json_resp(
                    200,
                    &json!({"data": {"regulation": {
                        "id": r["id"], "workspaceId": r["workspaceId"], "overallStatus": status,
                        "createdAt": "2026-11-02T10:00:00Z",
                        "finishedAt": if status == "FINISHED" { json!("2026-11-03T10:00:00Z") } else { Value::Null },
                        "streamStatus": [{"id": "stream_1", "status": stream,
                            "destinations": [{"id": "dest_1", "name": "Amplitude", "status": stream}]}]
                    }}}),
                )
            }
            (Method::GET, ["suppressions"]) => {
                json_resp(200, &json!({"data": {"suppressions": self.suppressed}}))
            }
            _ => error(404, "not-found", "Resource not found."),
        }
    }

    fn throttled(&self, retry_after: u64) -> Response {
        let mut resp = error(429, "too-many-requests", "Too many requests. Slow down.");
        set_header(&mut resp, "retry-after", &retry_after.to_string());
        resp
    }

    fn rate_headers(&self, resp: &mut Response, limit: u32, left: u32, reset: u64) {
        set_header(resp, "x-ratelimit-limit", &limit.to_string());
        set_header(resp, "x-ratelimit-remaining", &left.to_string());
        set_header(resp, "x-ratelimit-reset", &unix_reset(reset).to_string());
    }

    fn snapshot(&self) -> Value {
        let regulations: Vec<Value> = self
            .regulations
            .iter()
            .map(|r| {
                let mut r = r.clone();
                r["overallStatus"] = json!(self.status(&r));
                r
            })
            .collect();
        json!({"events": self.events, "regulations": regulations, "suppressions": self.suppressed})
    }

    fn advance(&mut self, by: Duration) {
        self.clock += by.as_secs();
        self.settle();
    }
}
