//! Intercom REST API 2.x, contacts and conversations (reference:
//! <https://developers.intercom.com/docs/references/rest-api/api.intercom.io/contacts>).
//!
//! Reproduced: an access token as `Bearer` (401 `{"type": "error.list", "errors":
//! [{"code": "unauthorized", ...}]}` otherwise); error lists (`type`, `request_id`,
//! `errors` with `code` and `message`); `POST /contacts/search` with a `query` of `field`,
//! `operator` (`=`, case-insensitive on `email`) and `value`, answering a `list` with
//! `data`, `total_count` and `pages`; `GET /contacts/{id}` (404 `not_found`);
//! `PUT /contacts/{id}` (`name`, `phone`, `email`, `custom_attributes`);
//! `POST /contacts/{id}/archive` (`archived: true`, still readable);
//! `DELETE /contacts/{id}` answering the `deleted: true` stub, after which the contact
//! answers 404; `POST /conversations/search` on `contact_ids`; the `X-RateLimit-Limit`,
//! `X-RateLimit-Remaining` and `X-RateLimit-Reset` (Unix seconds) headers and 429
//! `rate_limit_exceeded`.
//!
//! Not reproduced: nested `AND`/`OR` queries, pagination past one page (`per_page` up to
//! 150 covers a subject), companies, tags, notes, `Intercom-Version` differences, the
//! asynchronous user delete requests of API 1.x.

use axum::http::Method;
use axum::response::Response;
use serde_json::{Value, json};

use super::{Api, Req, json as json_resp, set_header, unix_reset};

/// The access token the emulator accepts.
pub const TOKEN: &str = "dG9rOmludGVyY29tLWVtdWxhdG9y";

/// Intercom's state.
pub struct Intercom {
    contacts: Vec<Value>,
    conversations: Vec<Value>,
}

fn error(status: u16, code: &str, message: &str) -> Response {
    json_resp(
        status,
        &json!({"type": "error.list", "request_id": "000emulator",
            "errors": [{"code": code, "message": message}]}),
    )
}

fn contact(id: &str, email: &str, name: &str, role: &str) -> Value {
    json!({
        "type": "contact", "id": id, "workspace_id": "ecahpwf5", "external_id": null,
        "role": role, "email": email, "phone": null, "name": name, "avatar": null,
        "created_at": 1_700_000_000, "last_seen_at": 1_730_000_000, "archived": false,
        "location": {"type": "location", "country": "United Kingdom", "city": "London"},
        "custom_attributes": {"plan": "pro"}
    })
}

impl Intercom {
    /// Alice as a user and as an earlier lead; Bob as a user; their conversations.
    pub fn seeded() -> Intercom {
        Intercom {
            contacts: vec![
                contact("6571alice", "alice@example.com", "Alice Archer", "user"),
                contact("6572bob", "bob@example.com", "Bob Baker", "user"),
                contact("6573alice", "ALICE@example.com", "Alice", "lead"),
            ],
            conversations: vec![
                json!({"type": "conversation", "id": "c101", "title": "Billing question",
                    "contacts": {"contacts": [{"type": "contact", "id": "6571alice"}]},
                    "source": {"body": "<p>Hi, I was charged twice.</p>"}}),
                json!({"type": "conversation", "id": "c102", "title": "Login help",
                    "contacts": {"contacts": [{"type": "contact", "id": "6572bob"}]},
                    "source": {"body": "<p>Cannot log in</p>"}}),
            ],
        }
    }

    fn position(&self, id: &str) -> Option<usize> {
        self.contacts.iter().position(|c| c["id"] == id)
    }
}

/// Whether `item` matches a simple search query (`field`, `operator`, `value`).
fn matches(item: &Value, query: &Value, field_of: impl Fn(&Value, &str) -> Vec<String>) -> bool {
    let field = query["field"].as_str().unwrap_or_default();
    let want = query["value"].as_str().unwrap_or_default();
    let op = query["operator"].as_str().unwrap_or_default();
    let have = field_of(item, field);
    match op {
        "=" => have.iter().any(|h| h.eq_ignore_ascii_case(want)),
        "~" => have
            .iter()
            .any(|h| h.to_lowercase().contains(&want.to_lowercase())),
        _ => false,
    }
}

impl Api for Intercom {
    fn authenticate(&self, req: &Req) -> Option<Response> {
        let ok = req
            .header("authorization")
            .is_some_and(|a| a.starts_with("Bearer "))
            && req.credential().as_deref() == Some(TOKEN);
        (!ok).then(|| error(401, "unauthorized", "Access Token Invalid"))
    }

    fn handle(&mut self, req: &Req) -> Response {
        let path = req.path();
        match (req.method.clone(), path.as_slice()) {
            (Method::POST, ["contacts", "search"]) => {
                let Some(body) = req.json() else {
                    return error(400, "parameter_invalid", "Invalid JSON");
                };
                let found: Vec<Value> = self
                    .contacts
                    .iter()
                    .filter(|c| {
                        matches(c, &body["query"], |c, f| {
                            c[f].as_str().map(str::to_owned).into_iter().collect()
                        })
                    })
                    .cloned()
                    .collect();
                let per_page = body["pagination"]["per_page"].as_u64().unwrap_or(50);
                if per_page > 150 {
                    return error(400, "parameter_invalid", "per_page must be at most 150");
                }
                json_resp(
                    200,
                    &json!({"type": "list", "total_count": found.len(), "data": found,
                    "pages": {"type": "pages", "page": 1, "per_page": per_page, "total_pages": 1}}),
                )
            }
            (Method::POST, ["conversations", "search"]) => {
                let Some(body) = req.json() else {
                    return error(400, "parameter_invalid", "Invalid JSON");
                };
                let found: Vec<&Value> = self
                    .conversations
                    .iter()
                    .filter(|c| {
                        matches(c, &body["query"], |c, f| match f {
                            "contact_ids" => c["contacts"]["contacts"]
                                .as_array()
                                .into_iter()
                                .flatten()
                                .filter_map(|x| x["id"].as_str().map(str::to_owned))
                                .collect(),
                            _ => Vec::new(),
                        })
                    })
                    .collect();
                json_resp(
                    200,
                    &json!({"type": "conversation.list", "total_count": found.len(),
                    "conversations": found, "pages": {"type": "pages", "page": 1, "total_pages": 1}}),
                )
            }
            (Method::GET, ["contacts", id]) => match self.position(id) {
                Some(i) => json_resp(200, &self.contacts[i]),
                None => error(404, "not_found", "User Not Found"),
            },
            (Method::PUT, ["contacts", id]) => {
                let Some(body) = req.json().and_then(|b| b.as_object().cloned()) else {
                    return error(400, "parameter_invalid", "Invalid JSON");
                };
                let Some(i) = self.position(id) else {
                    return error(404, "not_found", "User Not Found");
                };
                for (k, v) in &body {
                    match k.as_str() {
                        "name" | "phone" | "email" | "avatar" => {
                            self.contacts[i][k.as_str()] = v.clone()
                        }
                        "custom_attributes" => {
                            for (ck, cv) in v.as_object().into_iter().flatten() {
                                self.contacts[i]["custom_attributes"][ck.as_str()] = cv.clone();
                            }
                        }
                        other => {
                            return error(
                                400,
                                "parameter_invalid",
                                &format!("{other} is not a valid attribute"),
                            );
                        }
                    }
                }
                json_resp(200, &self.contacts[i])
            }
            (Method::POST, ["contacts", id, "archive"]) => match self.position(id) {
                Some(i) => {
                    self.contacts[i]["archived"] = json!(true);
                    json_resp(
                        200,
                        &json!({"id": id, "external_id": null, "type": "contact", "archived": true}),
                    )
                }
                None => error(404, "not_found", "User Not Found"),
            },
            (Method::DELETE, ["contacts", id]) => match self.position(id) {
                Some(i) => {
                    self.contacts.remove(i);
                    json_resp(
                        200,
                        &json!({"id": id, "external_id": null, "type": "contact", "deleted": true}),
                    )
                }
                None => error(404, "not_found", "User Not Found"),
            },
            _ => error(404, "not_found", "Resource Not Found"),
        }
    }

    fn throttled(&self, _retry_after: u64) -> Response {
        error(429, "rate_limit_exceeded", "Exceeded rate limit")
    }

    fn rate_headers(&self, resp: &mut Response, limit: u32, left: u32, reset: u64) {
        set_header(resp, "x-ratelimit-limit", &limit.to_string());
        set_header(resp, "x-ratelimit-remaining", &left.to_string());
        set_header(resp, "x-ratelimit-reset", &unix_reset(reset).to_string());
    }

    fn snapshot(&self) -> Value {
        json!({"contacts": self.contacts, "conversations": self.conversations})
    }

    fn rename_email(&mut self, from: &str, to: &str) {
        for c in &mut self.contacts {
            if c["email"]
                .as_str()
                .is_some_and(|e| e.eq_ignore_ascii_case(from))
            {
                c["email"] = json!(to);
            }
        }
    }
}
