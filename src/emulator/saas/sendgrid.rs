//! Twilio SendGrid v3: Marketing Campaigns contacts and suppressions (reference:
//! <https://www.twilio.com/docs/sendgrid/api-reference/contacts/get-contacts-by-emails>,
//! <https://www.twilio.com/docs/sendgrid/api-reference/contacts/delete-contacts>,
//! <https://www.twilio.com/docs/sendgrid/api-reference/contacts/import-contacts-status>,
//! <https://www.twilio.com/docs/sendgrid/api-reference/suppressions-global-suppressions/retrieve-a-global-suppression>,
//! <https://www.twilio.com/docs/sendgrid/api-reference/bounces-api/retrieve-a-bounce>).
//!
//! Reproduced: an API key as `Bearer` (401 `authorization required` otherwise); error bodies
//! (`errors[]` of `field`, `message`); `POST /marketing/contacts/search/emails` with
//! `emails` (at most 100): matches on the email or an alternate email, case-insensitive,
//! answered as `result` keyed by each searched address with its `contact` (or an `error`
//! for one not found), 404 when none matched, 400 for a malformed address; `DELETE
//! /marketing/contacts?ids=` (comma-separated; `ids` or `delete_all_contacts` required)
//! answering 202 with a `job_id`; the deletion is asynchronous: the contacts stay until the
//! job has run ([`JOB_SECS`] on the emulator clock, [`super::SaasEmulator::advance_clock`]);
//! `GET /marketing/contacts/imports/{id}` with the job's `status` (`pending`, then
//! `completed`), `job_type: delete` and `results.deleted_count`; `GET` and `DELETE`
//! `/asm/suppressions/global/{email}` (an unsuppressed address answers `{}`; delete 204);
//! `GET` and `DELETE` `/suppression/bounces/{email}` (a list, empty when none; delete 204);
//! `X-RateLimit-Limit`, `X-RateLimit-Remaining` and `X-RateLimit-Reset` (Unix seconds) on
//! every answer, and 429 with them when the limit is exhausted.
//!
//! Not reproduced: lists, segments, custom fields, SGQL search, exports, the contacts
//! search index delay (new contacts take minutes to be searchable), job failures
//! (`errored`/`failed`), other suppression groups, blocks, spam reports, invalid emails,
//! subusers (`on-behalf-of`), the EU region, SendGrid's actual per-endpoint limits (set one
//! with [`super::SaasEmulator::throttle`]).

use std::time::Duration;

use axum::http::Method;
use axum::response::Response;
use serde_json::{Map, Value, json};

use super::{Api, Req, empty, json as json_resp, set_header, unix_reset};

/// The API key the emulator accepts.
pub const API_KEY: &str = "SG.emulator.sendgrid-key";

/// Emulator seconds a contact deletion job takes.
pub const JOB_SECS: u64 = 15 * 60;

/// SendGrid's state.
pub struct Sendgrid {
    contacts: Vec<Value>,
    unsubscribes: Vec<Value>,
    bounces: Vec<Value>,
    /// Deletion jobs: id, contact ids, started at (emulator seconds), done.
    jobs: Vec<(String, Vec<String>, u64, bool)>,
    clock: u64,
}

fn error(status: u16, field: Option<&str>, message: &str) -> Response {
    json_resp(
        status,
        &json!({"errors": [{"field": field, "message": message}]}),
    )
}

fn contact(id: &str, email: &str, first: &str, last: &str, alternates: &[&str]) -> Value {
    json!({
        "id": id, "email": email, "first_name": first, "last_name": last,
        "alternate_emails": alternates, "city": "Leeds", "country": "UK",
        "list_ids": ["ca7a3796-e8a8-4029-9ccb-df8937940562"],
        "created_at": "2024-05-02T10:00:00Z", "updated_at": "2026-09-30T12:00:00Z",
        "custom_fields": {"e1_T": "newsletter"},
    })
}

impl Sendgrid {
    /// Alice as a contact (with an alternate address), globally unsubscribed and with one
    /// bounce; Bob as a contact, unsubscribed and bounced too.
    pub fn seeded() -> Sendgrid {
        Sendgrid {
            contacts: vec![
                contact(
                    "4d5a7c1e-0a11-4c6e-9d1a-a11ce0000001",
                    "alice@example.com",
                    "Alice",
                    "Archer",
                    &["alice.archer@example.org"],
                ),
                contact(
                    "4d5a7c1e-0b22-4c6e-9d1a-b0b000000002",
                    "bob@example.com",
                    "Bob",
                    "Baker",
                    &[],
                ),
            ],
            unsubscribes: vec![
                json!({"email": "alice@example.com", "created": 1_727_000_000}),
                json!({"email": "bob@example.com", "created": 1_727_100_000}),
            ],
            bounces: vec![
                json!({"email": "alice@example.com", "created": 1_726_000_000,
                    "reason": "550 5.1.1 mailbox full", "status": "5.1.1"}),
                json!({"email": "bob@example.com", "created": 1_726_100_000,
                    "reason": "550 5.1.1 user unknown", "status": "5.1.1"}),
            ],
            jobs: Vec::new(),
            clock: 0,
        }
    }

    fn run_jobs(&mut self) {
        let now = self.clock;
        for (_, ids, started, done) in &mut self.jobs {
            if !*done && now >= *started + JOB_SECS {
                self.contacts
                    .retain(|c| !ids.iter().any(|id| c["id"] == id.as_str()));
                *done = true;
            }
        }
    }

    fn find_contact(&self, email: &str) -> Option<&Value> {
        let email = email.to_lowercase();
        self.contacts.iter().find(|c| {
            c["email"].as_str() == Some(email.as_str())
                || c["alternate_emails"]
                    .as_array()
                    .is_some_and(|a| a.iter().any(|x| x.as_str() == Some(email.as_str())))
        })
    }
}

fn same(v: &Value, email: &str) -> bool {
    v["email"]
        .as_str()
        .is_some_and(|e| e.eq_ignore_ascii_case(email))
}

impl Api for Sendgrid {
    fn authenticate(&self, req: &Req) -> Option<Response> {
        let ok = req
            .header("authorization")
            .and_then(|a| a.strip_prefix("Bearer "))
            == Some(API_KEY);
        (!ok).then(|| error(401, None, "authorization required"))
    }

    fn handle(&mut self, req: &Req) -> Response {
        self.run_jobs();
        let path = req.path();
        match (req.method.clone(), path.as_slice()) {
            (Method::POST, ["marketing", "contacts", "search", "emails"]) => {
                let body = req.json().unwrap_or_default();
                let Some(emails) = body["emails"].as_array() else {
                    return error(400, Some("emails"), "emails is required");
                };
                if emails.len() > 100 {
                    return error(400, Some("emails"), "at most 100 emails");
                }
                let mut result = Map::new();
                let mut any = false;
                for e in emails {
                    let Some(e) = e.as_str().filter(|e| !e.is_empty()) else {
                        continue;
                    };
                    if !e.contains('@') {
                        return error(400, Some("emails"), "invalid email");
                    }
                    let key = e.to_lowercase();
                    match self.find_contact(e) {
                        Some(c) => {
                            any = true;
                            result.insert(key, json!({"contact": c}));
                        }
                        None => {
                            result.insert(key, json!({"error": "contact not found"}));
                        }
                    }
                }
                if !any {
                    return error(404, None, "No contacts found");
                }
                json_resp(200, &json!({"result": result}))
            }
            (Method::DELETE, ["marketing", "contacts"]) => {
                let ids: Vec<String> = match (req.param("ids"), req.param("delete_all_contacts")) {
                    (Some(ids), _) => ids
                        .split(',')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(str::to_owned)
                        .collect(),
                    (None, Some("true")) => self
                        .contacts
                        .iter()
                        .filter_map(|c| c["id"].as_str().map(str::to_owned))
                        .collect(),
                    _ => {
                        return error(400, None, "must provide either ids or delete_all_contacts");
                    }
                };
                if ids.is_empty() {
                    return error(400, Some("ids"), "ids must not be empty");
                }
                let job = format!("0d5e1a2b-job-4000-8000-{:012}", req.serial);
                self.jobs.push((job.clone(), ids, self.clock, false));
                json_resp(202, &json!({"job_id": job}))
            }
            (Method::GET, ["marketing", "contacts", "imports", id]) => {
                match self.jobs.iter().find(|j| j.0 == *id) {
                    Some((job, ids, _, done)) => json_resp(
                        200,
                        &json!({"id": job, "job_type": "delete",
                            "status": if *done { "completed" } else { "pending" },
                            "results": {"requested_count": ids.len(),
                                "deleted_count": if *done { ids.len() } else { 0 }, "errored_count": 0}}),
                    ),
                    None => error(404, None, "job not found"),
                }
            }
            (Method::GET, ["asm", "suppressions", "global", email]) => {
                match self.unsubscribes.iter().find(|u| same(u, email)) {
                    Some(u) => json_resp(200, &json!({"recipient_email": u["email"]})),
                    None => json_resp(200, &json!({})),
                }
            }
            (Method::DELETE, ["asm", "suppressions", "global", email]) => {
                self.unsubscribes.retain(|u| !same(u, email));
                empty(204)
            }
            (Method::GET, ["suppression", "bounces", email]) => {
                let found: Vec<&Value> = self.bounces.iter().filter(|b| same(b, email)).collect();
                json_resp(200, &json!(found))
            }
            (Method::DELETE, ["suppression", "bounces", email]) => {
                self.bounces.retain(|b| !same(b, email));
                empty(204)
            }
            _ => error(404, None, "resource not found"),
        }
    }

    fn throttled(&self, _retry_after: u64) -> Response {
        error(429, None, "too many requests")
    }

    fn rate_headers(&self, resp: &mut Response, limit: u32, left: u32, reset: u64) {
        set_header(resp, "x-ratelimit-limit", &limit.to_string());
        set_header(resp, "x-ratelimit-remaining", &left.to_string());
        set_header(resp, "x-ratelimit-reset", &unix_reset(reset).to_string());
    }

    fn snapshot(&self) -> Value {
        json!({"contacts": self.contacts, "unsubscribes": self.unsubscribes,
            "bounces": self.bounces,
            "jobs": self.jobs.iter().map(|(id, ids, _, done)| json!({"id": id, "ids": ids, "done": done})).collect::<Vec<_>>()})
    }

    fn advance(&mut self, by: Duration) {
        self.clock += by.as_secs();
        self.run_jobs();
    }
}
