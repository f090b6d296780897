//! Zendesk Support API v2 (reference:
//! <https://developer.zendesk.com/api-reference/ticketing/users/users/>).
//!
//! Reproduced: HTTP Basic as `{email}/token` with an API token, or an OAuth `Bearer`
//! token (401 `{"error": "Couldn't authenticate you"}` otherwise); paths with or without
//! `.json`; `GET /users/search?query=` with the search syntax a playbook meets
//! (`email:` with `*` wildcards, case-insensitive, bare words on name and email, terms
//! ANDed); offset pages of `per_page` (default and most 100) with absolute `next_page`
//! URLs and `count`; `GET /users/{id}` (a soft-deleted user still answers, `active:
//! false`); `GET /users/{id}/tickets/requested`; `PUT /users/{id}` with `{"user": {...}}`;
//! `DELETE /users/{id}` (soft delete: the user moves to deleted users);
//! `DELETE /deleted_users/{id}` (permanent: only a soft-deleted user, else 404; the
//! record keeps its id as "Permanently Deleted User" with no email); `DELETE
//! /tickets/{id}` (204; the ticket moves to deleted tickets); 404 `RecordNotFound`
//! bodies; the rate-limit headers (`X-Rate-Limit`, `X-Rate-Limit-Remaining`,
//! `ratelimit-limit`, `ratelimit-remaining`, `ratelimit-reset` in seconds) and 429 with
//! `Retry-After` in seconds.
//!
//! Not reproduced: cursor pagination (`page[size]`), sideloads, organizations, user
//! identities and fields, the 30-day purge of deleted tickets, `DELETE
//! /deleted_tickets/{id}` and its job status, the search index delay.

use axum::http::Method;
use axum::response::Response;
use serde_json::{Value, json};

use super::{Api, Req, empty, json as json_resp, set_header};

/// The API token the emulator accepts (user name `{email}/token`).
pub const API_TOKEN: &str = "zendesk-emulator-token";

/// Zendesk's state.
pub struct Zendesk {
    users: Vec<Value>,
    deleted_users: Vec<Value>,
    tickets: Vec<Value>,
    deleted_tickets: Vec<Value>,
}

/// Whether a numeric id equals a path segment.
fn id_is(v: &Value, id: &str) -> bool {
    v.as_u64().is_some_and(|n| id.parse() == Ok(n))
}

fn not_found() -> Response {
    json_resp(
        404,
        &json!({"error": "RecordNotFound", "description": "Not found"}),
    )
}

fn user(id: u64, name: &str, email: &str, phone: &str) -> Value {
    json!({
        "id": id, "url": format!("https://example.zendesk.com/api/v2/users/{id}.json"),
        "name": name, "email": email, "phone": phone, "role": "end-user", "active": true,
        "verified": true, "locale": "en-gb", "time_zone": "London",
        "created_at": "2024-02-01T09:00:00Z", "notes": "", "details": "", "tags": [],
        "user_fields": {}
    })
}

fn ticket(id: u64, requester: u64, subject: &str, description: &str) -> Value {
    json!({
        "id": id, "url": format!("https://example.zendesk.com/api/v2/tickets/{id}.json"),
        "subject": subject, "description": description, "status": "solved",
        "requester_id": requester, "submitter_id": requester, "priority": "normal",
        "created_at": "2024-05-01T09:00:00Z", "tags": []
    })
}

/// Whether `value` matches a search `pattern` with `*` wildcards, ignoring case.
fn wildcard(pattern: &str, value: &str) -> bool {
    let (p, v) = (pattern.to_lowercase(), value.to_lowercase());
    let parts: Vec<&str> = p.split('*').collect();
    if parts.len() == 1 {
        return p == v;
    }
    let mut rest = v.as_str();
    for (i, part) in parts.iter().enumerate() {
        if i == 0 {
            let Some(r) = rest.strip_prefix(part) else {
                return false;
            };
            rest = r;
        } else if i == parts.len() - 1 {
            return rest.ends_with(part);
        } else {
            let Some(at) = rest.find(part) else {
                return false;
            };
            rest = &rest[at + part.len()..];
        }
    }
    true
}

fn matches(u: &Value, query: &str) -> bool {
    let text = |k: &str| u[k].as_str().unwrap_or_default().to_owned();
    query.split_whitespace().all(|term| {
        let term = term.trim_matches('"');
        match term.split_once(':') {
            Some(("type", v)) => v.eq_ignore_ascii_case("user"),
            Some(("email", v)) => wildcard(v.trim_matches('"'), &text("email")),
            Some(("name", v)) => wildcard(v, &text("name")),
            Some(("phone", v)) => wildcard(v, &text("phone")),
            Some(_) => false,
            None => {
                let t = term.to_lowercase();
                text("name").to_lowercase().contains(&t)
                    || text("email").to_lowercase() == t
                    || wildcard(term, &text("email"))
            }
        }
    })
}

impl Zendesk {
    /// Alice with two tickets, Bob with one.
    pub fn seeded() -> Zendesk {
        Zendesk {
            users: vec![
                user(
                    372_001,
                    "Alice Archer",
                    "alice@example.com",
                    "+447700900001",
                ),
                user(372_002, "Bob Baker", "bob@example.com", "+447700900002"),
            ],
            deleted_users: Vec::new(),
            tickets: vec![
                ticket(
                    51,
                    372_001,
                    "Refund for order 1001",
                    "Hi, I'm Alice; please refund order 1001 to my card.",
                ),
                ticket(52, 372_002, "Password reset", "Bob here, I cannot log in."),
                ticket(
                    53,
                    372_001,
                    "Change my address",
                    "Please use 1 Example Street, London.",
                ),
            ],
            deleted_tickets: Vec::new(),
        }
    }

    fn user_mut(&mut self, id: &str) -> Option<&mut Value> {
        self.users.iter_mut().find(|u| id_is(&u["id"], id))
    }
}

impl Api for Zendesk {
    fn authenticate(&self, req: &Req) -> Option<Response> {
        let ok = match req.header("authorization") {
            Some(a) if a.starts_with("Bearer ") => req.credential().as_deref() == Some(API_TOKEN),
            Some(_) => {
                req.basic_user().is_some_and(|u| u.ends_with("/token"))
                    && req.credential().as_deref() == Some(API_TOKEN)
            }
            None => false,
        };
        (!ok).then(|| json_resp(401, &json!({"error": "Couldn't authenticate you"})))
    }

    fn handle(&mut self, req: &Req) -> Response {
        let mut segments: Vec<String> = req.segments.clone();
        if let Some(last) = segments.last_mut()
            && let Some(stripped) = last.strip_suffix(".json")
        {
            *last = stripped.to_owned();
        }
        let path: Vec<&str> = segments.iter().map(String::as_str).collect();
        match (req.method.clone(), path.as_slice()) {
            (Method::GET, ["users", "search"]) => {
                let Some(query) = req.param("query").filter(|q| !q.trim().is_empty()) else {
                    return json_resp(
                        400,
                        &json!({"error": "InvalidEndpoint", "description": "Missing query"}),
                    );
                };
                let per_page = req
                    .param("per_page")
                    .and_then(|p| p.parse::<usize>().ok())
                    .unwrap_or(100)
                    .clamp(1, 100);
                let page = req
                    .param("page")
                    .and_then(|p| p.parse::<usize>().ok())
                    .unwrap_or(1)
                    .max(1);
                let found: Vec<&Value> = self.users.iter().filter(|u| matches(u, query)).collect();
                let slice: Vec<Value> = found
                    .iter()
                    .skip((page - 1) * per_page)
                    .take(per_page)
                    .map(|u| (*u).clone())
                    .collect();
                let link = |p: usize| {
                    let q: String = url::form_urlencoded::Serializer::new(String::new())
                        .append_pair("query", query)
                        .append_pair("page", &p.to_string())
                        .append_pair("per_page", &per_page.to_string())
                        .finish();
                    format!("{}/users/search.json?{q}", req.base)
                };
                let next = (page * per_page < found.len()).then(|| link(page + 1));
                let previous = (page > 1).then(|| link(page - 1));
                json_resp(
                    200,
                    &json!({"users": slice, "next_page": next, "previous_page": previous, "count": found.len()}),
                )
            }
            (Method::GET, ["users", id]) => match self.user_mut(id) {
                Some(u) => json_resp(200, &json!({"user": u})),
                None => not_found(),
            },
            (Method::GET, ["users", id, "tickets", "requested"]) => {
                if self.user_mut(id).is_none() {
                    return not_found();
                }
                let tickets: Vec<&Value> = self
                    .tickets
                    .iter()
                    .filter(|t| id_is(&t["requester_id"], id))
                    .collect();
                json_resp(
                    200,
                    &json!({"tickets": tickets, "next_page": null, "previous_page": null, "count": tickets.len()}),
                )
            }
            (Method::PUT, ["users", id]) => {
                let Some(body) = req.json() else {
                    return json_resp(
                        400,
                        &json!({"error": "InvalidEndpoint", "description": "Invalid JSON"}),
                    );
                };
                let Some(u) = self.user_mut(id) else {
                    return not_found();
                };
                if let Some(fields) = body.get("user").and_then(Value::as_object) {
                    for (k, v) in fields {
                        if matches!(
                            k.as_str(),
                            "name"
                                | "email"
                                | "phone"
                                | "notes"
                                | "details"
                                | "locale"
                                | "time_zone"
                        ) {
                            u[k.as_str()] = v.clone();
                        }
                    }
                }
                json_resp(200, &json!({"user": u}))
            }
            (Method::DELETE, ["users", id]) => {
                let Some(pos) = self
                    .users
                    .iter()
                    .position(|u| id_is(&u["id"], id) && u["active"] == true)
                else {
                    return not_found();
                };
                self.users[pos]["active"] = json!(false);
                let u = self.users[pos].clone();
                self.deleted_users.push(u.clone());
                json_resp(200, &json!({"user": u}))
            }
            (Method::GET, ["deleted_users", id]) => {
                match self.deleted_users.iter().find(|u| id_is(&u["id"], id)) {
                    Some(u) => json_resp(200, &json!({"deleted_user": u})),
                    None => not_found(),
                }
            }
            (Method::DELETE, ["deleted_users", id]) => {
                let Some(d) = self
                    .deleted_users
                    .iter_mut()
                    .find(|u| id_is(&u["id"], id) && u["name"] != "Permanently Deleted User")
                else {
                    return not_found();
                };
                let nid = d["id"].clone();
                *d = json!({"id": nid, "name": "Permanently Deleted User", "email": null, "phone": null,
                    "active": false, "role": "end-user", "url": d["url"].clone()});
                let out = d.clone();
                self.users.retain(|u| u["id"] != nid);
                json_resp(200, &json!({"deleted_user": out}))
            }
            (Method::GET, ["tickets", id]) => {
                match self.tickets.iter().find(|t| id_is(&t["id"], id)) {
                    Some(t) => json_resp(200, &json!({"ticket": t})),
                    None => not_found(),
                }
            }
            (Method::DELETE, ["tickets", id]) => {
                let Some(pos) = self.tickets.iter().position(|t| id_is(&t["id"], id)) else {
                    return not_found();
                };
                let t = self.tickets.remove(pos);
                self.deleted_tickets.push(t);
                empty(204)
            }
            _ => json_resp(
                404,
                &json!({"error": "InvalidEndpoint", "description": "Not found"}),
            ),
        }
    }

    fn throttled(&self, retry_after: u64) -> Response {
        let mut resp = json_resp(
            429,
            &json!({"error": "APIRateLimitExceeded", "description": "Number of allowed API requests per minute exceeded"}),
        );
        set_header(&mut resp, "retry-after", &retry_after.to_string());
        resp
    }

    fn rate_headers(&self, resp: &mut Response, limit: u32, left: u32, reset: u64) {
        set_header(resp, "x-rate-limit", &limit.to_string());
        set_header(resp, "x-rate-limit-remaining", &left.to_string());
        set_header(resp, "ratelimit-limit", &limit.to_string());
        set_header(resp, "ratelimit-remaining", &left.to_string());
        set_header(resp, "ratelimit-reset", &reset.to_string());
    }

    fn snapshot(&self) -> Value {
        json!({"users": self.users, "deleted_users": self.deleted_users,
            "tickets": self.tickets, "deleted_tickets": self.deleted_tickets})
    }
}

#[cfg(test)]
mod tests {
    use super::wildcard;

    #[test]
    fn wildcards_match_as_zendesk_search_does() {
        assert!(wildcard("alice@example.com", "Alice@Example.com"));
        assert!(wildcard("*@example.com", "bob@example.com"));
        assert!(wildcard("a*e@*.com", "alice@example.com"));
        assert!(!wildcard("alice@example.com", "bob@example.com"));
        assert!(!wildcard("*@example.org", "bob@example.com"));
    }
}
