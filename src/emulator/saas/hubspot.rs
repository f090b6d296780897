//! HubSpot CRM API v3, contacts (reference:
//! <https://developers.hubspot.com/docs/api/crm/contacts>).
//!
//! Reproduced: a private app's access token as `Bearer` (401 `INVALID_AUTHENTICATION`
//! otherwise); `GET /crm/v3/objects/contacts/{id}` by record id or, with
//! `idProperty=email`, by email (case-insensitive), with `properties=`; 404
//! `OBJECT_NOT_FOUND` bodies (`status`, `message`, `correlationId`, `category`);
//! `POST /crm/v3/objects/contacts/search` with `filterGroups` (`EQ` on `email`), `limit`
//! (at most 200) and `after`, answering `total`, `results` and `paging.next.after`;
//! `PATCH /crm/v3/objects/contacts/{id}` with `properties` (read-only ones refused with
//! `VALIDATION_ERROR`); `POST /crm/v3/objects/contacts/gdpr-delete` with `objectId` and
//! `idProperty` answering 204, after which the contact answers 404 and the address is
//! blocked from being created again; 429 `RATE_LIMIT` with the
//! `X-HubSpot-RateLimit-*` headers (`-Max`, `-Remaining`, `-Interval-Milliseconds` (here
//! the time left in the emulator's window), `-Daily`, `-Daily-Remaining` (fixed values)).
//!
//! Not reproduced: associations, engagements, the v1 APIs, other objects, search
//! operators other than `EQ`, the search index delay, the daily limit (the daily headers
//! never run out).

use axum::http::Method;
use axum::response::Response;
use serde_json::{Value, json};

use super::{Api, Req, empty, json as json_resp, set_header};

/// The private app token the emulator accepts.
pub const ACCESS_TOKEN: &str = "pat-eu1-emulator";

/// HubSpot's state.
pub struct Hubspot {
    contacts: Vec<Value>,
    /// Addresses erased with the GDPR delete: refused if created again.
    blocked: Vec<String>,
}

fn error(status: u16, category: &str, message: &str) -> Response {
    json_resp(
        status,
        &json!({"status": "error", "message": message,
            "correlationId": "00000000-0000-4000-8000-000000000001", "category": category}),
    )
}

fn not_found() -> Response {
    error(
        404,
        "OBJECT_NOT_FOUND",
        "Object not found.  objectId are usually numeric.",
    )
}

fn contact(id: &str, email: &str, first: &str, last: &str, phone: &str, company: &str) -> Value {
    json!({
        "id": id,
        "properties": {"email": email, "firstname": first, "lastname": last, "phone": phone,
            "company": company, "lifecyclestage": "customer", "hs_object_id": id,
            "createdate": "2024-01-10T09:00:00.000Z", "lastmodifieddate": "2024-06-01T09:00:00.000Z"},
        "createdAt": "2024-01-10T09:00:00.000Z", "updatedAt": "2024-06-01T09:00:00.000Z",
        "archived": false
    })
}

/// A contact with only the properties asked for (all when none are named).
fn shown(c: &Value, properties: Option<&str>) -> Value {
    let Some(wanted) = properties else {
        return c.clone();
    };
    let mut c = c.clone();
    if let Some(props) = c["properties"].as_object_mut() {
        let keep: Vec<&str> = wanted.split(',').map(str::trim).collect();
        props.retain(|k, _| keep.contains(&k.as_str()) || k == "hs_object_id");
    }
    c
}

impl Hubspot {
    /// Alice and Bob, each one contact.
    pub fn seeded() -> Hubspot {
        Hubspot {
            contacts: vec![
                contact(
                    "5101",
                    "alice@example.com",
                    "Alice",
                    "Archer",
                    "+447700900001",
                    "Archer Ltd",
                ),
                contact(
                    "5102",
                    "bob@example.com",
                    "Bob",
                    "Baker",
                    "+447700900002",
                    "Baker & Sons",
                ),
            ],
            blocked: Vec::new(),
        }
    }

    fn position(&self, id: &str, by_email: bool) -> Option<usize> {
        self.contacts.iter().position(|c| {
            if by_email {
                c["properties"]["email"]
                    .as_str()
                    .is_some_and(|e| e.eq_ignore_ascii_case(id))
            } else {
                c["id"] == id
            }
        })
    }
}

impl Api for Hubspot {
    fn authenticate(&self, req: &Req) -> Option<Response> {
        let ok = req
            .header("authorization")
            .is_some_and(|a| a.starts_with("Bearer "))
            && req.credential().as_deref() == Some(ACCESS_TOKEN);
        (!ok).then(|| {
            error(
                401,
                "INVALID_AUTHENTICATION",
                "Authentication credentials not found. This API supports OAuth 2.0 authentication and you can find more details at https://developers.hubspot.com/docs/methods/auth/oauth-overview",
            )
        })
    }

    fn handle(&mut self, req: &Req) -> Response {
        let path = req.path();
        match (req.method.clone(), path.as_slice()) {
            (Method::POST, ["objects", "contacts", "search"]) => {
                let Some(body) = req.json() else {
                    return error(400, "VALIDATION_ERROR", "Invalid input JSON");
                };
                let limit = body["limit"].as_u64().unwrap_or(10) as usize;
                if limit > 200 {
                    return error(400, "VALIDATION_ERROR", "limit must be at most 200");
                }
                let after: usize = body["after"]
                    .as_str()
                    .and_then(|a| a.parse().ok())
                    .unwrap_or(0);
                let groups = body["filterGroups"].as_array().cloned().unwrap_or_default();
                let matches = |c: &Value| {
                    groups.is_empty()
                        || groups.iter().any(|g| {
                            g["filters"].as_array().into_iter().flatten().all(|f| {
                                let prop = f["propertyName"].as_str().unwrap_or_default();
                                let have = c["properties"][prop].as_str().unwrap_or_default();
                                let want = f["value"].as_str().unwrap_or_default();
                                f["operator"] == "EQ" && have.eq_ignore_ascii_case(want)
                            })
                        })
                };
                let found: Vec<&Value> = self.contacts.iter().filter(|c| matches(c)).collect();
                let properties = body["properties"].as_array().map(|p| {
                    p.iter()
                        .filter_map(Value::as_str)
                        .collect::<Vec<_>>()
                        .join(",")
                });
                let page: Vec<Value> = found
                    .iter()
                    .skip(after)
                    .take(limit)
                    .map(|c| shown(c, properties.as_deref()))
                    .collect();
                let mut out = json!({"total": found.len(), "results": page});
                if after + limit < found.len() {
                    out["paging"] = json!({"next": {"after": (after + limit).to_string()}});
                }
                json_resp(200, &out)
            }
            (Method::POST, ["objects", "contacts", "gdpr-delete"]) => {
                let Some(body) = req.json() else {
                    return error(400, "VALIDATION_ERROR", "Invalid input JSON");
                };
                let id = body["objectId"].as_str().unwrap_or_default();
                let by_email = body["idProperty"] == "email";
                match self.position(id, by_email) {
                    Some(i) => {
                        let c = self.contacts.remove(i);
                        if let Some(e) = c["properties"]["email"].as_str() {
                            self.blocked.push(e.to_lowercase());
                        }
                        empty(204)
                    }
                    None => not_found(),
                }
            }
            (Method::POST, ["objects", "contacts"]) => {
                let body = req.json().unwrap_or_default();
                let email = body["properties"]["email"]
                    .as_str()
                    .unwrap_or_default()
                    .to_lowercase();
                if self.blocked.contains(&email) {
                    return error(
                        400,
                        "VALIDATION_ERROR",
                        "This contact was GDPR-deleted and cannot be recreated.",
                    );
                }
                let id = (5200 + self.contacts.len()).to_string();
                let c = contact(&id, &email, "", "", "", "");
                self.contacts.push(c.clone());
                json_resp(201, &c)
            }
            (Method::GET, ["objects", "contacts", id]) => {
                let by_email = req.param("idProperty") == Some("email");
                match self.position(id, by_email) {
                    Some(i) => json_resp(200, &shown(&self.contacts[i], req.param("properties"))),
                    None => not_found(),
                }
            }
            (Method::PATCH, ["objects", "contacts", id]) => {
                let Some(body) = req.json() else {
                    return error(400, "VALIDATION_ERROR", "Invalid input JSON");
                };
                let Some(i) = self.position(id, req.param("idProperty") == Some("email")) else {
                    return not_found();
                };
                let Some(props) = body["properties"].as_object() else {
                    return error(400, "VALIDATION_ERROR", "properties are required");
                };
                for (k, v) in props {
                    if k.starts_with("hs_") || k == "createdate" {
                        return error(
                            400,
                            "VALIDATION_ERROR",
                            &format!("Property \"{k}\" is read-only"),
                        );
                    }
                    self.contacts[i]["properties"][k.as_str()] = v.clone();
                }
                json_resp(200, &self.contacts[i])
            }
            _ => error(404, "NOT_FOUND", "Not found"),
        }
    }

    fn throttled(&self, _retry_after: u64) -> Response {
        json_resp(
            429,
            &json!({"status": "error", "message": "You have reached your secondly limit.",
                "errorType": "RATE_LIMIT", "correlationId": "00000000-0000-4000-8000-000000000002",
                "policyName": "SECONDLY"}),
        )
    }

    fn rate_headers(&self, resp: &mut Response, limit: u32, left: u32, reset: u64) {
        set_header(resp, "x-hubspot-ratelimit-max", &limit.to_string());
        set_header(resp, "x-hubspot-ratelimit-remaining", &left.to_string());
        // The window's length; the emulator's window is what is left of it, rounded up.
        set_header(
            resp,
            "x-hubspot-ratelimit-interval-milliseconds",
            &(reset * 1000).to_string(),
        );
        set_header(resp, "x-hubspot-ratelimit-daily", "250000");
        set_header(resp, "x-hubspot-ratelimit-daily-remaining", "249000");
    }

    fn snapshot(&self) -> Value {
        json!({"contacts": self.contacts, "blocked": self.blocked})
    }
}
