//! Google Workspace Admin SDK Directory API, users and groups (reference:
//! <https://developers.google.com/admin-sdk/directory/reference/rest/v1/users>,
//! <https://developers.google.com/admin-sdk/directory/v1/limits>).
//!
//! Reproduced: an OAuth access token as `Bearer` (401 `UNAUTHENTICATED` otherwise); Google's
//! error body (`error.code`, `.message`, `.errors[].reason`, `.status`); `users.get`
//! (`GET /users/{userKey}`, the key a primary email, an alias or the user id, emails
//! case-insensitive; 404 `notFound`); `users.list` (`GET /users?customer=my_customer`,
//! `query=email:VALUE` or `email=VALUE`, an exact match on the primary email or an alias,
//! `maxResults` 1 to 500, `pageToken`/`nextPageToken`); `users.update` (`PUT
//! /users/{userKey}`, the fields sent replaced, `suspended` included); `users.delete` (`DELETE
//! /users/{userKey}`, 204, after which the user answers 404; kept in the snapshot as
//! `deleted`, as Google keeps a deleted user restorable for 20 days); `groups.list` with
//! `userKey` (the groups the user belongs to, paged by `pageToken`/`nextPageToken` with
//! `maxResults` 1 to 200); lists leave out an empty `users`/`groups`, as Google APIs leave
//! out empty fields; when the limit is exhausted, 403 `userRateLimitExceeded` and 429
//! `rateLimitExceeded` in turn, neither with `Retry-After` (Google asks for exponential
//! backoff).
//!
//! Not reproduced: the rest of the query language (other fields, `:` prefix matches,
//! `orderBy`), `projection`/`viewType`/`customFieldMask`, `users.undelete`, data transfer of
//! a deleted user's Drive, aliases and group-membership resources, `dailyLimitExceeded`,
//! service-account delegation, Google's actual quotas (set one with
//! [`super::SaasEmulator::throttle`]).

use std::sync::atomic::{AtomicU32, Ordering};

use axum::http::Method;
use axum::response::Response;
use serde_json::{Value, json};

use super::{Api, Req, empty, json as json_resp};

/// The OAuth access token the emulator accepts.
pub const ACCESS_TOKEN: &str = "ya29.emulator-directory-token";

/// Google Directory's state.
pub struct Google {
    users: Vec<Value>,
    deleted: Vec<Value>,
    /// Group memberships: (user id, group).
    members: Vec<(String, Value)>,
    throttled: AtomicU32,
}

fn error(status: u16, reason: &str, message: &str, code: &str) -> Response {
    let domain = if status == 403 || status == 429 {
        "usageLimits"
    } else {
        "global"
    };
    json_resp(
        status,
        &json!({"error": {"code": status, "message": message,
            "errors": [{"message": message, "domain": domain, "reason": reason}],
            "status": code}}),
    )
}

fn not_found() -> Response {
    error(404, "notFound", "Resource Not Found: userKey", "NOT_FOUND")
}

fn user(id: &str, email: &str, given: &str, family: &str, aliases: &[&str]) -> Value {
    json!({
        "kind": "admin#directory#user", "id": id, "primaryEmail": email,
        "name": {"givenName": given, "familyName": family, "fullName": format!("{given} {family}")},
        "emails": [{"address": email, "primary": true}],
        "aliases": aliases, "isAdmin": false, "suspended": false, "orgUnitPath": "/",
        "creationTime": "2023-04-03T08:00:00.000Z", "lastLoginTime": "2026-11-01T07:30:00.000Z",
        "recoveryEmail": format!("{}.home@example.net", given.to_lowercase()),
    })
}

fn group(id: &str, email: &str, name: &str) -> Value {
    json!({"kind": "admin#directory#group", "id": id, "email": email, "name": name})
}

/// Pages a list: the items from `pageToken` (an index), `max` of them, and the next token.
fn page(items: &[Value], req: &Req, max: usize, key: &str, kind: &str) -> Response {
    let limit = req
        .param("maxResults")
        .and_then(|m| m.parse::<usize>().ok())
        .unwrap_or(100)
        .clamp(1, max);
    let start = match req.param("pageToken") {
        None => 0,
        Some(t) => match t.strip_prefix("tok-").and_then(|n| n.parse::<usize>().ok()) {
            Some(n) if n <= items.len() => n,
            _ => return error(400, "invalid", "Invalid pageToken", "INVALID_ARGUMENT"),
        },
    };
    let end = (start + limit).min(items.len());
    let mut body = json!({"kind": kind, "etag": "\"emulator\""});
    if end > start {
        body[key] = json!(items[start..end]);
    }
    if end < items.len() {
        body["nextPageToken"] = json!(format!("tok-{end}"));
    }
    json_resp(200, &body)
}

impl Google {
    /// Alice (with an alias) and Bob, each in groups; Alice in three, so listings page.
    pub fn seeded() -> Google {
        let everyone = group("03everyone", "everyone@example.com", "Everyone");
        Google {
            users: vec![
                user(
                    "104alice",
                    "alice@example.com",
                    "Alice",
                    "Archer",
                    &["a.archer@example.com"],
                ),
                user("104bob", "bob@example.com", "Bob", "Baker", &[]),
            ],
            deleted: Vec::new(),
            members: vec![
                ("104alice".into(), everyone.clone()),
                (
                    "104alice".into(),
                    group("03finance", "finance@example.com", "Finance"),
                ),
                (
                    "104alice".into(),
                    group("03archery", "archery-club@example.com", "Archery club"),
                ),
                ("104bob".into(), everyone),
            ],
            throttled: AtomicU32::new(0),
        }
    }

    fn position(&self, key: &str) -> Option<usize> {
        let key = key.to_lowercase();
        self.users.iter().position(|u| {
            u["id"] == key.as_str()
                || u["primaryEmail"]
                    .as_str()
                    .is_some_and(|e| e.to_lowercase() == key)
                || u["aliases"].as_array().is_some_and(|a| {
                    a.iter()
                        .any(|x| x.as_str().is_some_and(|x| x.to_lowercase() == key))
                })
        })
    }
}

impl Api for Google {
    fn authenticate(&self, req: &Req) -> Option<Response> {
        let ok = req
            .header("authorization")
            .and_then(|a| a.strip_prefix("Bearer "))
            == Some(ACCESS_TOKEN);
        (!ok).then(|| {
            error(
                401,
                "authError",
                "Request had invalid authentication credentials. Expected OAuth 2 access token.",
                "UNAUTHENTICATED",
            )
        })
    }

    fn handle(&mut self, req: &Req) -> Response {
        let path = req.path();
        match (req.method.clone(), path.as_slice()) {
            (Method::GET, ["users"]) => {
                if req.param("customer").is_none() && req.param("domain").is_none() {
                    return error(400, "badRequest", "Bad Request", "INVALID_ARGUMENT");
                }
                let found: Vec<Value> = match req.param("query") {
                    None => self.users.clone(),
                    Some(q) => {
                        let Some(v) = q
                            .strip_prefix("email:")
                            .or_else(|| q.strip_prefix("email="))
                        else {
                            return error(
                                400,
                                "invalid",
                                "Invalid Input: query",
                                "INVALID_ARGUMENT",
                            );
                        };
                        let v = v.trim_matches('\'');
                        self.position(v)
                            .filter(|&i| self.users[i]["id"] != v)
                            .map(|i| vec![self.users[i].clone()])
                            .unwrap_or_default()
                    }
                };
                page(&found, req, 500, "users", "admin#directory#users")
            }
            (Method::GET, ["users", key]) => match self.position(key) {
                Some(i) => json_resp(200, &self.users[i]),
                None => not_found(),
            },
            (Method::PUT, ["users", key]) => {
                let Some(i) = self.position(key) else {
                    return not_found();
                };
                let Some(body) = req.json().and_then(|b| b.as_object().cloned()) else {
                    return error(400, "parseError", "Parse Error", "INVALID_ARGUMENT");
                };
                for (k, v) in body {
                    if k == "id" || k == "kind" || k == "creationTime" {
                        continue;
                    }
                    self.users[i][k.as_str()] = v;
                }
                json_resp(200, &self.users[i])
            }
            (Method::DELETE, ["users", key]) => {
                let Some(i) = self.position(key) else {
                    return not_found();
                };
                let gone = self.users.remove(i);
                let id = gone["id"].as_str().unwrap_or_default().to_owned();
                self.members.retain(|(u, _)| *u != id);
                self.deleted.push(gone);
                empty(204)
            }
            (Method::GET, ["groups"]) => {
                let Some(key) = req.param("userKey") else {
                    return error(400, "badRequest", "Bad Request", "INVALID_ARGUMENT");
                };
                let Some(i) = self.position(key) else {
                    return error(404, "notFound", "Resource Not Found: userKey", "NOT_FOUND");
                };
                let id = self.users[i]["id"].clone();
                let groups: Vec<Value> = self
                    .members
                    .iter()
                    .filter(|(u, _)| id == u.as_str())
                    .map(|(_, g)| g.clone())
                    .collect();
                page(&groups, req, 200, "groups", "admin#directory#groups")
            }
            _ => error(404, "notFound", "Not Found", "NOT_FOUND"),
        }
    }

    fn throttled(&self, _retry_after: u64) -> Response {
        // The per-user rate (403) and the account's concurrent limit (429), in turn.
        if self
            .throttled
            .fetch_add(1, Ordering::SeqCst)
            .is_multiple_of(2)
        {
            error(
                403,
                "userRateLimitExceeded",
                "Quota exceeded for quota metric 'Queries' and limit 'Queries per minute per user'",
                "PERMISSION_DENIED",
            )
        } else {
            error(
                429,
                "rateLimitExceeded",
                "Rate Limit Exceeded",
                "RESOURCE_EXHAUSTED",
            )
        }
    }

    fn snapshot(&self) -> Value {
        json!({"users": self.users, "deleted": self.deleted,
            "members": self.members.iter().map(|(u, g)| json!({"userId": u, "group": g})).collect::<Vec<_>>()})
    }
}
