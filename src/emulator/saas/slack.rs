//! Slack SCIM API 2.0, users (reference:
//! <https://docs.slack.dev/reference/scim-api/scim-api-2>,
//! <https://docs.slack.dev/reference/scim-api/rate-limits>).
//!
//! Reproduced: an admin OAuth token as `Bearer` (401 otherwise); SCIM 2.0 error bodies
//! (`schemas` `...:Error`, `detail`, `status`); `GET /Users` as a `ListResponse`
//! (`totalResults`, `itemsPerPage`, `startIndex`, `Resources`) paged by 1-based `startIndex`
//! and `count` (default 10, at most 1000), with `filter=` expressions (`eq`, `co`, `sw` on
//! `userName`, `email`, `emails.value`, `id`, `externalId`, `and`/`or`, values as JSON
//! strings with their escapes, comparisons case-insensitive); a filter that does not parse
//! is 400 `invalidFilter`; `GET /Users/{id}` (404 otherwise); `PATCH /Users/{id}` with a
//! `PatchOp` (`replace` with a `value` object, or a `path` and `value`); `DELETE
//! /Users/{id}` deactivating the user (`active: false`, the profile kept and still returned),
//! answering 204; 429 with `Retry-After` (seconds) when the limit is exhausted.
//!
//! Not reproduced: groups, `POST`/`PUT`, the enterprise extension and guest schemas,
//! Enterprise Grid organisations, per-endpoint limits and bursts, `sortBy`, `attributes=`,
//! filters on other attributes, Slack's real limits (set one with
//! [`super::SaasEmulator::throttle`]).

use axum::http::Method;
use axum::response::Response;
use serde_json::{Value, json};

use super::okta::search_matches;
use super::{Api, Req, empty, json as json_resp, set_header};

/// The admin token the emulator accepts.
pub const TOKEN: &str = "xoxp-emulator-scim-admin";

const USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:User";

/// Slack's state.
pub struct Slack {
    users: Vec<Value>,
}

fn error(status: u16, detail: &str) -> Response {
    json_resp(
        status,
        &json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"],
            "detail": detail, "status": status.to_string()}),
    )
}

fn user(id: &str, user_name: &str, email: &str, given: &str, family: &str, title: &str) -> Value {
    json!({
        "schemas": [USER_SCHEMA], "id": id, "externalId": "", "userName": user_name,
        "displayName": given, "nickName": user_name,
        "name": {"givenName": given, "familyName": family},
        "title": title, "active": true, "timezone": "Europe/London",
        "emails": [{"value": email, "type": "work", "primary": true}],
        "photos": [{"value": format!("https://avatars.example/{id}.png"), "type": "photo"}],
        "groups": [{"value": "S0EVERYONE", "display": "everyone"}],
        "meta": {"created": "2024-02-01T09:00:00Z", "location": format!("https://api.slack.com/scim/v2/Users/{id}")},
    })
}

/// The attributes a filter may name, as paths into a flat view of the user.
fn view(u: &Value) -> Value {
    let email = u["emails"][0]["value"].clone();
    json!({"id": u["id"], "userName": u["userName"], "externalId": u["externalId"],
        "email": email, "emails": {"value": email}})
}

impl Slack {
    /// Alice (a member and a second, guest account with her address in another case) and Bob.
    pub fn seeded() -> Slack {
        Slack {
            users: vec![
                user(
                    "W01ALICE",
                    "alice",
                    "alice@example.com",
                    "Alice",
                    "Archer",
                    "Buyer",
                ),
                user("W02BOB", "bob", "bob@example.com", "Bob", "Baker", "Baker"),
                user(
                    "W03ALICE",
                    "alice.guest",
                    "Alice@Example.com",
                    "Alice",
                    "Archer",
                    "Guest",
                ),
            ],
        }
    }

    fn find(&mut self, id: &str) -> Option<&mut Value> {
        self.users.iter_mut().find(|u| u["id"] == id)
    }
}

impl Api for Slack {
    fn authenticate(&self, req: &Req) -> Option<Response> {
        let ok = req
            .header("authorization")
            .and_then(|a| a.strip_prefix("Bearer "))
            == Some(TOKEN);
        (!ok).then(|| error(401, "invalid_authentication"))
    }

    fn handle(&mut self, req: &Req) -> Response {
        let path = req.path();
        match (req.method.clone(), path.as_slice()) {
            (Method::GET, ["Users"]) => {
                let mut found = Vec::new();
                for u in &self.users {
                    let keep = match req.param("filter") {
                        None => true,
                        Some(f) => match search_matches(&view(u), f) {
                            Ok(m) => m,
                            Err(e) => return error(400, &format!("invalidFilter: {e}")),
                        },
                    };
                    if keep {
                        found.push(u.clone());
                    }
                }
                let start = req
                    .param("startIndex")
                    .and_then(|s| s.parse::<usize>().ok())
                    .unwrap_or(1)
                    .max(1);
                let count = req
                    .param("count")
                    .and_then(|c| c.parse::<usize>().ok())
                    .unwrap_or(10)
                    .min(1000);
                let page: Vec<Value> = found.iter().skip(start - 1).take(count).cloned().collect();
                json_resp(
                    200,
                    &json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:ListResponse"],
                        "totalResults": found.len(), "itemsPerPage": page.len(),
                        "startIndex": start, "Resources": page}),
                )
            }
            (Method::GET, ["Users", id]) => match self.find(id) {
                Some(u) => json_resp(200, u),
                None => error(404, "User not found"),
            },
            (Method::PATCH, ["Users", id]) => {
                let body = req.json().unwrap_or_default();
                let Some(ops) = body["Operations"].as_array().cloned() else {
                    return error(400, "invalidSyntax: Operations is required");
                };
                let Some(u) = self.find(id) else {
                    return error(404, "User not found");
                };
                for op in ops {
                    if !op["op"].as_str().is_some_and(|o| {
                        o.eq_ignore_ascii_case("replace") || o.eq_ignore_ascii_case("add")
                    }) {
                        return error(400, "invalidSyntax: only replace and add are supported");
                    }
                    match (op["path"].as_str(), &op["value"]) {
                        (Some(path), v) => u[path] = v.clone(),
                        (None, Value::Object(fields)) => {
                            for (k, v) in fields {
                                if k != "id" && k != "schemas" && k != "meta" {
                                    u[k.as_str()] = v.clone();
                                }
                            }
                        }
                        _ => return error(400, "invalidValue"),
                    }
                }
                json_resp(200, u)
            }
            (Method::DELETE, ["Users", id]) => match self.find(id) {
                Some(u) => {
                    u["active"] = json!(false);
                    empty(204)
                }
                None => error(404, "User not found"),
            },
            _ => error(404, "Not found"),
        }
    }

    fn throttled(&self, retry_after: u64) -> Response {
        let mut resp = error(429, "Too many requests");
        set_header(&mut resp, "retry-after", &retry_after.to_string());
        resp
    }

    fn snapshot(&self) -> Value {
        json!({"users": self.users})
    }
}
