//! Braze REST API, user data (references:
//! <https://www.braze.com/docs/api/endpoints/export/user_data/post_users_identifier/>,
//! <https://www.braze.com/docs/api/endpoints/user_data/post_user_delete/>,
//! <https://www.braze.com/docs/api/api_limits/>).
//!
//! Reproduced: a REST API key as `Bearer` (401 `{"message": "Invalid API key"}` otherwise);
//! `POST /users/export/ids` with exactly one kind of identifier (up to 50 `external_ids` or
//! `user_aliases`, or one `braze_id`, `device_id`, `email_address` or `phone`), answering
//! `{"users": [...], "invalid_user_ids": [...], "message": "success"}` with only the
//! `fields_to_export` asked for (the identifiers always), every profile that holds the
//! email address (identified and alias-only alike), `invalid_user_ids` naming the external
//! ids not found; `POST /users/delete` with exactly one kind of identifier (up to 50
//! `external_ids`, `user_aliases`, `braze_ids`, `email_addresses` or `phone_numbers`),
//! answering `{"deleted": N, "message": "success"}`, `deleted: 0` when nothing matched;
//! 400 `{"message": ...}` for a body that names no identifier, more than one kind, or too
//! many; the `X-RateLimit-Limit`, `X-RateLimit-Remaining` and `X-RateLimit-Reset` (Unix
//! seconds) headers, and 429 with the same headers.
//!
//! Not reproduced: the per-endpoint limits (250 per minute for export, 20,000 per minute
//! shared by delete), `/users/track` and the other user-data endpoints, segments and
//! campaigns, the deletion's delayed effect on analytics, the `prioritization` of profiles
//! sharing an email, email matching other than exact (Braze compares addresses lower-cased;
//! here the case must match too).

use axum::http::Method;
use axum::response::Response;
use serde_json::{Map, Value, json};

use super::{Api, Req, json as json_resp, set_header, unix_reset};

/// The REST API key the emulator accepts.
pub const API_KEY: &str = "braze-emulator-rest-api-key";

/// Most identifiers of one kind in one request.
const MAX_IDS: usize = 50;

/// Braze's state.
pub struct Braze {
    users: Vec<Value>,
}

fn error(status: u16, message: &str) -> Response {
    json_resp(status, &json!({"message": message}))
}

fn profile(braze_id: &str, external_id: Option<&str>, email: &str, first: &str) -> Value {
    json!({
        "external_id": external_id, "braze_id": braze_id,
        "user_aliases": match external_id {
            Some(_) => json!([]),
            None => json!([{"alias_name": format!("lead-{braze_id}"), "alias_label": "lead_capture"}]),
        },
        "first_name": first, "last_name": "", "email": email, "phone": null,
        "country": "GB", "language": "en", "time_zone": "Europe/London",
        "email_subscribe": "subscribed", "created_at": "2025-02-01T10:00:00.000Z",
        "custom_attributes": {"plan": "pro"},
        "custom_events": [{"name": "viewed_pricing", "first": "2026-10-01T09:00:00.000Z",
            "last": "2026-10-30T09:00:00.000Z", "count": 3}],
        "purchases": [],
        "devices": [{"model": "Pixel 8", "os": "Android 15", "carrier": null,
            "device_id": format!("dev-{braze_id}")}]
    })
}

/// The identifiers that are always exported, whatever `fields_to_export` asks.
const ALWAYS: &[&str] = &["external_id", "braze_id", "user_aliases"];

impl Braze {
    /// Alice as an identified user and as an earlier alias-only lead, Bob identified.
    pub fn seeded() -> Braze {
        Braze {
            users: vec![
                profile(
                    "65a1alice0000000000001",
                    Some("user-alice"),
                    "alice@example.com",
                    "Alice",
                ),
                profile(
                    "65a1bob000000000000002",
                    Some("user-bob"),
                    "bob@example.com",
                    "Bob",
                ),
                profile("65a1alice0000000000003", None, "alice@example.com", ""),
            ],
        }
    }

    /// The positions of the users a request's identifiers name, or the message of the 400
    /// answer.
    fn select(&self, body: &Map<String, Value>, keys: &[IdKey]) -> Result<Selected, String> {
        let given: Vec<&IdKey> = keys.iter().filter(|k| body.contains_key(k.key)).collect();
        let [key] = given.as_slice() else {
            return Err(format!(
                "Exactly one of {} must be provided.",
                keys.iter().map(|k| k.key).collect::<Vec<_>>().join(", ")
            ));
        };
        let values: Vec<Value> = if key.list {
            let Some(list) = body[key.key].as_array() else {
                return Err(format!("'{}' must be an array.", key.key));
            };
            if list.is_empty() || list.len() > MAX_IDS {
                return Err(format!("'{}' must hold 1 to {MAX_IDS} values.", key.key));
            }
            list.clone()
        } else {
            vec![body[key.key].clone()]
        };
        let mut found = Vec::new();
        let mut invalid = Vec::new();
        for v in &values {
            let hits: Vec<usize> = self
                .users
                .iter()
                .enumerate()
                .filter(|(_, u)| matches(u, key.field, v))
                .map(|(i, _)| i)
                .collect();
            if hits.is_empty() && key.field == "external_id" {
                invalid.push(v.clone());
            }
            for i in hits {
                if !found.contains(&i) {
                    found.push(i);
                }
            }
        }
        Ok(Selected { found, invalid })
    }
}

struct IdKey {
    key: &'static str,
    list: bool,
    field: &'static str,
}

struct Selected {
    found: Vec<usize>,
    invalid: Vec<Value>,
}

const EXPORT_KEYS: &[IdKey] = &[
    IdKey {
        key: "external_ids",
        list: true,
        field: "external_id",
    },
    IdKey {
        key: "user_aliases",
        list: true,
        field: "user_aliases",
    },
    IdKey {
        key: "braze_id",
        list: false,
        field: "braze_id",
    },
    IdKey {
        key: "device_id",
        list: false,
        field: "device_id",
    },
    IdKey {
        key: "email_address",
        list: false,
        field: "email",
    },
    IdKey {
        key: "phone",
        list: false,
        field: "phone",
    },
];

const DELETE_KEYS: &[IdKey] = &[
    IdKey {
        key: "external_ids",
        list: true,
        field: "external_id",
    },
    IdKey {
        key: "user_aliases",
        list: true,
        field: "user_aliases",
    },
    IdKey {
        key: "braze_ids",
        list: true,
        field: "braze_id",
    },
    IdKey {
        key: "email_addresses",
        list: true,
        field: "email",
    },
    IdKey {
        key: "phone_numbers",
        list: true,
        field: "phone",
    },
];

/// Whether user `u` holds identifier `v` in `field` (exactly: no wildcards, no patterns).
fn matches(u: &Value, field: &str, v: &Value) -> bool {
    match field {
        "user_aliases" => u["user_aliases"].as_array().is_some_and(|aliases| {
            aliases.iter().any(|a| {
                a["alias_name"] == v["alias_name"]
                    && a["alias_label"] == v["alias_label"]
                    && a["alias_name"].is_string()
            })
        }),
        "device_id" => u["devices"]
            .as_array()
            .is_some_and(|ds| ds.iter().any(|d| d["device_id"] == *v && v.is_string())),
        _ => v.as_str().is_some_and(|s| !s.is_empty()) && u[field] == *v,
    }
}

impl Api for Braze {
    fn authenticate(&self, req: &Req) -> Option<Response> {
        let ok = req
            .header("authorization")
            .is_some_and(|a| a.starts_with("Bearer "))
            && req.credential().as_deref() == Some(API_KEY);
        (!ok).then(|| error(401, "Invalid API key"))
    }

    fn handle(&mut self, req: &Req) -> Response {
        let path = req.path();
        let body = req.json();
        let body = body.as_ref().and_then(Value::as_object);
        match (req.method.clone(), path.as_slice()) {
            (Method::POST, ["users", "export", "ids"]) => {
                let Some(body) = body else {
                    return error(400, "The request body must be a JSON object.");
                };
                let selected = match self.select(body, EXPORT_KEYS) {
                    Ok(s) => s,
                    Err(message) => return error(400, &message),
                };
                let fields: Option<Vec<String>> = body
                    .get("fields_to_export")
                    .and_then(Value::as_array)
                    .map(|f| {
                        f.iter()
                            .filter_map(|v| v.as_str().map(str::to_owned))
                            .collect()
                    });
                let users: Vec<Value> = selected
                    .found
                    .iter()
                    .map(|&i| {
                        let u = &self.users[i];
                        match &fields {
                            None => u.clone(),
                            Some(fields) => {
                                let mut out = Map::new();
                                for (k, v) in u.as_object().into_iter().flatten() {
                                    if ALWAYS.contains(&k.as_str()) || fields.contains(k) {
                                        out.insert(k.clone(), v.clone());
                                    }
                                }
                                Value::Object(out)
                            }
                        }
                    })
                    .collect();
                let mut answer = json!({"users": users, "message": "success"});
                if !selected.invalid.is_empty() {
                    answer["invalid_user_ids"] = Value::Array(selected.invalid);
                }
                json_resp(201, &answer)
            }
            (Method::POST, ["users", "delete"]) => {
                let Some(body) = body else {
                    return error(400, "The request body must be a JSON object.");
                };
                let selected = match self.select(body, DELETE_KEYS) {
                    Ok(s) => s,
                    Err(message) => return error(400, &message),
                };
                let deleted = selected.found.len();
                let mut i = 0;
                self.users.retain(|_| {
                    let keep = !selected.found.contains(&i);
                    i += 1;
                    keep
                });
                json_resp(201, &json!({"deleted": deleted, "message": "success"}))
            }
            _ => error(404, "Not found"),
        }
    }

    fn throttled(&self, _retry_after: u64) -> Response {
        error(
            429,
            "API rate limit exceeded. Retry after the limit resets.",
        )
    }

    fn rate_headers(&self, resp: &mut Response, limit: u32, left: u32, reset: u64) {
        set_header(resp, "x-ratelimit-limit", &limit.to_string());
        set_header(resp, "x-ratelimit-remaining", &left.to_string());
        set_header(resp, "x-ratelimit-reset", &unix_reset(reset).to_string());
    }

    fn snapshot(&self) -> Value {
        json!({"users": self.users})
    }

    fn rename_email(&mut self, from: &str, to: &str) {
        for u in &mut self.users {
            if u["email"]
                .as_str()
                .is_some_and(|e| e.eq_ignore_ascii_case(from))
            {
                u["email"] = json!(to);
            }
        }
    }
}
