//! Auth0 Management API v2, users (reference: <https://auth0.com/docs/api/management/v2/users>).
//!
//! Reproduced: a Management API token as `Bearer` (401 `{"statusCode": 401, "error":
//! "Unauthorized", ...}` otherwise); error bodies (`statusCode`, `error`, `message`,
//! `errorCode`); `GET /users-by-email?email=` (exact, case-insensitive, every connection's
//! user); `GET /users/{id}` with ids such as `auth0|...` and `google-oauth2|...` (404
//! `inexistent_user`); `GET /users/{id}/roles`; `PATCH /users/{id}` (`blocked`,
//! `user_metadata` merged, `name`, `given_name`, `family_name`, `nickname`; others
//! refused with 400 `invalid_body`); `DELETE /users/{id}` answering 204, also for a user
//! that does not exist; the `x-ratelimit-limit`, `x-ratelimit-remaining` and
//! `x-ratelimit-reset` (Unix seconds) headers and 429 `too_many_requests`.
//!
//! Not reproduced: the `/oauth/token` exchange, `GET /users?q=` (Lucene search),
//! identities linking, logs, sessions, organizations, per-endpoint limits.

use axum::http::Method;
use axum::response::Response;
use serde_json::{Value, json};

use super::{Api, Req, empty, json as json_resp, set_header, unix_reset};

/// The Management API token the emulator accepts.
pub const TOKEN: &str = "auth0-emulator-management-token";

/// Auth0's state.
pub struct Auth0 {
    users: Vec<Value>,
    roles: Vec<(String, Value)>,
}

fn error(status: u16, error: &str, message: &str, code: &str) -> Response {
    json_resp(
        status,
        &json!({"statusCode": status, "error": error, "message": message, "errorCode": code}),
    )
}

fn not_found() -> Response {
    error(
        404,
        "Not Found",
        "The user does not exist.",
        "inexistent_user",
    )
}

fn user(id: &str, email: &str, name: &str, connection: &str) -> Value {
    json!({
        "user_id": id, "email": email, "email_verified": true, "name": name,
        "nickname": email.split('@').next().unwrap_or_default(), "blocked": false,
        "created_at": "2024-03-01T09:00:00.000Z", "last_login": "2026-11-01T08:00:00.000Z",
        "last_ip": "198.51.100.23", "logins_count": 42,
        "identities": [{"connection": connection, "provider": id.split('|').next().unwrap_or_default(),
            "user_id": id.split('|').nth(1).unwrap_or_default(), "isSocial": connection != "Username-Password-Authentication"}],
        "user_metadata": {"newsletter": true}, "app_metadata": {"plan": "pro"}
    })
}

impl Auth0 {
    /// Alice with a database user and a Google user, Bob with one.
    pub fn seeded() -> Auth0 {
        Auth0 {
            users: vec![
                user(
                    "auth0|64a1alice",
                    "alice@example.com",
                    "Alice Archer",
                    "Username-Password-Authentication",
                ),
                user(
                    "google-oauth2|1077alice",
                    "Alice@Example.com",
                    "Alice Archer",
                    "google-oauth2",
                ),
                user(
                    "auth0|64b2bob",
                    "bob@example.com",
                    "Bob Baker",
                    "Username-Password-Authentication",
                ),
            ],
            roles: vec![
                (
                    "auth0|64a1alice".into(),
                    json!({"id": "rol_1", "name": "Customer", "description": "Buys things"}),
                ),
                (
                    "auth0|64b2bob".into(),
                    json!({"id": "rol_2", "name": "Admin", "description": "Runs things"}),
                ),
            ],
        }
    }
}

impl Api for Auth0 {
    fn authenticate(&self, req: &Req) -> Option<Response> {
        let ok = req
            .header("authorization")
            .is_some_and(|a| a.starts_with("Bearer "))
            && req.credential().as_deref() == Some(TOKEN);
        (!ok).then(|| error(401, "Unauthorized", "Invalid token", "invalid_token"))
    }

    fn handle(&mut self, req: &Req) -> Response {
        let path = req.path();
        match (req.method.clone(), path.as_slice()) {
            (Method::GET, ["users-by-email"]) => {
                let Some(email) = req.param("email").filter(|e| !e.is_empty()) else {
                    return error(
                        400,
                        "Bad Request",
                        "Query validation error: 'Missing required property: email'",
                        "invalid_query_string",
                    );
                };
                let found: Vec<&Value> = self
                    .users
                    .iter()
                    .filter(|u| {
                        u["email"]
                            .as_str()
                            .is_some_and(|e| e.eq_ignore_ascii_case(email))
                    })
                    .collect();
                json_resp(200, &json!(found))
            }
            (Method::GET, ["users", id]) => match self.users.iter().find(|u| u["user_id"] == *id) {
                Some(u) => json_resp(200, u),
                None => not_found(),
            },
            (Method::GET, ["users", id, "roles"]) => {
                if !self.users.iter().any(|u| u["user_id"] == *id) {
                    return not_found();
                }
                let roles: Vec<&Value> = self
                    .roles
                    .iter()
                    .filter(|(u, _)| u == id)
                    .map(|(_, r)| r)
                    .collect();
                json_resp(200, &json!(roles))
            }
            (Method::PATCH, ["users", id]) => {
                let Some(body) = req.json().and_then(|b| b.as_object().cloned()) else {
                    return error(
                        400,
                        "Bad Request",
                        "Payload validation error: 'Expected type object'",
                        "invalid_body",
                    );
                };
                let Some(u) = self.users.iter_mut().find(|u| u["user_id"] == *id) else {
                    return not_found();
                };
                for (k, v) in &body {
                    match k.as_str() {
                        "blocked" | "name" | "given_name" | "family_name" | "nickname"
                        | "email" => {
                            u[k.as_str()] = v.clone();
                        }
                        "user_metadata" => {
                            if let Some(m) = v.as_object() {
                                for (mk, mv) in m {
                                    u["user_metadata"][mk.as_str()] = mv.clone();
                                }
                            }
                        }
                        other => {
                            return error(
                                400,
                                "Bad Request",
                                &format!(
                                    "Payload validation error: 'Additional properties not allowed: {other}'."
                                ),
                                "invalid_body",
                            );
                        }
                    }
                }
                json_resp(200, u)
            }
            (Method::DELETE, ["users", id]) => {
                self.users.retain(|u| u["user_id"] != *id);
                self.roles.retain(|(u, _)| u != id);
                empty(204)
            }
            _ => error(404, "Not Found", "Not Found", "not_found"),
        }
    }

    fn throttled(&self, _retry_after: u64) -> Response {
        error(
            429,
            "Too Many Requests",
            "Global limit has been reached",
            "too_many_requests",
        )
    }

    fn rate_headers(&self, resp: &mut Response, limit: u32, left: u32, reset: u64) {
        set_header(resp, "x-ratelimit-limit", &limit.to_string());
        set_header(resp, "x-ratelimit-remaining", &left.to_string());
        set_header(resp, "x-ratelimit-reset", &unix_reset(reset).to_string());
    }

    fn snapshot(&self) -> Value {
        json!({"users": self.users,
            "roles": self.roles.iter().map(|(u, r)| json!({"user_id": u, "role": r})).collect::<Vec<_>>()})
    }
}
