//! Mailchimp Marketing API 3.0 (reference: <https://mailchimp.com/developer/marketing/api/>).
//!
//! Reproduced: HTTP Basic with any user name and the API key as password, or the key as a
//! `Bearer` token (401 "API Key Missing" / "API Key Invalid" otherwise); errors as
//! `application/problem+json` (`type`, `title`, `status`, `detail`, `instance`); audiences
//! listed by `GET /lists` with `count` (default 10, at most 1000) and `offset`, answering
//! `total_items`; members addressed by subscriber hash (the MD5 of the lower-cased
//! address), 404 "Resource Not Found" for any other; a member's notes and tags;
//! `PATCH` of `merge_fields` and `email_address`; `DELETE` archiving a member (status
//! `archived`, still readable); `POST .../actions/delete-permanent` answering 204, after
//! which the member answers 404 and adding the address again is refused with "Forgotten
//! Email Not Subscribed"; 429 "Too Many Requests" without rate-limit headers.
//!
//! Not reproduced: the email address or `contact_id` in place of the hash, `fields` and
//! `exclude_fields`, the activity feed, `search-members`, batch operations, the
//! 10-connection concurrency limit (set a rate with [`super::SaasEmulator::throttle`]),
//! data centre prefixes in keys.

use axum::http::Method;
use axum::response::Response;
use serde_json::{Value, json};

use super::{Api, Req, empty, with_type};

/// The API key the emulator accepts (`-us21` names the data centre, as real keys do).
pub const API_KEY: &str = "0123456789abcdef0123456789abcdef-us21";

/// Mailchimp's state.
pub struct Mailchimp {
    lists: Vec<Value>,
    /// Members: each carries its `list_id`.
    members: Vec<Value>,
    /// `(list_id, subscriber_hash)` permanently deleted: never to be added again.
    forgotten: Vec<(String, String)>,
}

fn problem(status: u16, title: &str, detail: &str) -> Response {
    with_type(
        status,
        json!({
            "type": "https://mailchimp.com/developer/marketing/docs/errors/",
            "title": title, "status": status, "detail": detail,
            "instance": "00000000-0000-4000-8000-000000000000"
        })
        .to_string(),
        "application/problem+json; charset=utf-8",
    )
}

fn ok(body: &Value) -> Response {
    with_type(200, body.to_string(), "application/json; charset=utf-8")
}

fn not_found() -> Response {
    problem(
        404,
        "Resource Not Found",
        "The requested resource could not be found.",
    )
}

/// The subscriber hash of an address.
pub fn subscriber_hash(email: &str) -> String {
    use md5::Digest;
    hex::encode(md5::Md5::digest(email.to_lowercase().as_bytes()))
}

fn member(
    list: &str,
    email: &str,
    first: &str,
    last: &str,
    tags: &[&str],
    notes: &[&str],
) -> Value {
    json!({
        "id": subscriber_hash(email), "email_address": email,
        "unique_email_id": format!("u{}", &subscriber_hash(email)[..9]),
        "contact_id": format!("c{}", &subscriber_hash(email)[..31]),
        "full_name": format!("{first} {last}"), "email_type": "html", "status": "subscribed",
        "merge_fields": {"FNAME": first, "LNAME": last, "PHONE": ""},
        "ip_signup": "198.51.100.7", "timestamp_signup": "2024-03-01T09:00:00+00:00",
        "language": "en", "vip": false, "location": {"country_code": "GB", "timezone": "Europe/London"},
        "tags": tags.iter().enumerate().map(|(i, t)| json!({"id": i + 1, "name": t})).collect::<Vec<_>>(),
        "list_id": list,
        "_notes": notes.iter().enumerate().map(|(i, n)| json!({"id": i + 1, "note": n,
            "created_at": "2024-04-01T10:00:00+00:00", "created_by": "support"})).collect::<Vec<_>>(),
    })
}

/// A member as the API shows it (the notes are a separate resource).
fn public(m: &Value) -> Value {
    let mut m = m.clone();
    if let Some(o) = m.as_object_mut() {
        o.remove("_notes");
    }
    m
}

impl Mailchimp {
    /// Three audiences; Alice is on two, Bob on two.
    pub fn seeded() -> Mailchimp {
        let list = |id: &str, name: &str| json!({"id": id, "web_id": 1, "name": name, "stats": {"member_count": 0}});
        Mailchimp {
            lists: vec![
                list("5a1d2c3b4e", "Newsletter"),
                list("9f8e7d6c5b", "Customers"),
                list("1b2c3d4e5f", "Events"),
            ],
            members: vec![
                member(
                    "5a1d2c3b4e",
                    "Alice@Example.com",
                    "Alice",
                    "Archer",
                    &["weekly"],
                    &["Asked for fewer emails"],
                ),
                member("5a1d2c3b4e", "bob@example.com", "Bob", "Baker", &[], &[]),
                member(
                    "9f8e7d6c5b",
                    "alice@example.com",
                    "Alice",
                    "Archer",
                    &["vip", "2024"],
                    &[],
                ),
                member(
                    "1b2c3d4e5f",
                    "bob@example.com",
                    "Bob",
                    "Baker",
                    &["speaker"],
                    &["Talk on 12 May"],
                ),
            ],
            forgotten: Vec::new(),
        }
    }

    fn find(&mut self, list: &str, hash: &str) -> Option<&mut Value> {
        self.members
            .iter_mut()
            .find(|m| m["list_id"] == list && m["id"] == hash)
    }
}

impl Api for Mailchimp {
    fn authenticate(&self, req: &Req) -> Option<Response> {
        match req.credential() {
            Some(key) if key == API_KEY => None,
            Some(_) => Some(problem(
                401,
                "API Key Invalid",
                "Your API key may be invalid, or you've attempted to access the wrong datacenter.",
            )),
            None => Some(problem(
                401,
                "API Key Missing",
                "Your request did not include an API key.",
            )),
        }
    }

    fn handle(&mut self, req: &Req) -> Response {
        let path = req.path();
        match (req.method.clone(), path.as_slice()) {
            (Method::GET, ["lists"]) => {
                let count = match req.param("count").map(str::parse::<usize>) {
                    None => 10,
                    Some(Ok(n)) if n <= 1000 => n,
                    Some(_) => {
                        return problem(400, "Invalid Resource", "count: must be at most 1000");
                    }
                };
                let offset: usize = req
                    .param("offset")
                    .and_then(|o| o.parse().ok())
                    .unwrap_or(0);
                let page: Vec<Value> = self
                    .lists
                    .iter()
                    .skip(offset)
                    .take(count)
                    .map(|l| {
                        let mut l = l.clone();
                        l["stats"]["member_count"] = json!(
                            self.members
                                .iter()
                                .filter(|m| m["list_id"] == l["id"] && m["status"] == "subscribed")
                                .count()
                        );
                        l
                    })
                    .collect();
                ok(&json!({"lists": page, "total_items": self.lists.len()}))
            }
            (Method::GET, ["lists", list]) => match self.lists.iter().find(|l| l["id"] == *list) {
                Some(l) => ok(l),
                None => not_found(),
            },
            (Method::GET, ["lists", list, "members", hash]) => match self.find(list, hash) {
                Some(m) => ok(&public(m)),
                None => not_found(),
            },
            (Method::GET, ["lists", list, "members", hash, "notes"]) => match self.find(list, hash)
            {
                Some(m) => {
                    let notes = m["_notes"].clone();
                    let n = notes.as_array().map_or(0, Vec::len);
                    ok(
                        &json!({"notes": notes, "list_id": list, "email_id": hash, "total_items": n}),
                    )
                }
                None => not_found(),
            },
            (Method::GET, ["lists", list, "members", hash, "tags"]) => {
                match self.find(list, hash) {
                    Some(m) => {
                        let tags = m["tags"].clone();
                        let n = tags.as_array().map_or(0, Vec::len);
                        ok(&json!({"tags": tags, "total_items": n}))
                    }
                    None => not_found(),
                }
            }
            (Method::PATCH, ["lists", list, "members", hash]) => {
                let Some(patch) = req.json() else {
                    return problem(
                        400,
                        "JSON Parse Exception",
                        "We encountered an unspecified JSON parsing error.",
                    );
                };
                let Some(m) = self.find(list, hash) else {
                    return not_found();
                };
                if let Some(fields) = patch.get("merge_fields").and_then(Value::as_object) {
                    for (k, v) in fields {
                        m["merge_fields"][k] = v.clone();
                    }
                }
                if let Some(email) = patch.get("email_address").and_then(Value::as_str) {
                    m["email_address"] = json!(email);
                    m["id"] = json!(subscriber_hash(email));
                }
                if let Some(status) = patch.get("status").and_then(Value::as_str) {
                    m["status"] = json!(status);
                }
                let first = m["merge_fields"]["FNAME"].as_str().unwrap_or("").to_owned();
                let last = m["merge_fields"]["LNAME"].as_str().unwrap_or("").to_owned();
                m["full_name"] = json!(format!("{first} {last}").trim().to_owned());
                ok(&public(m))
            }
            (Method::PUT | Method::POST, ["lists", list, "members", ..]) if path.len() <= 4 => {
                let Some(body) = req.json() else {
                    return problem(
                        400,
                        "JSON Parse Exception",
                        "We encountered an unspecified JSON parsing error.",
                    );
                };
                let email = body["email_address"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned();
                let hash = subscriber_hash(&email);
                if self.forgotten.iter().any(|(l, h)| l == list && *h == hash) {
                    return problem(
                        400,
                        "Forgotten Email Not Subscribed",
                        &format!(
                            "{email} was permanently deleted and cannot be re-imported. The contact must re-subscribe to get back on the list."
                        ),
                    );
                }
                if self.find(list, &hash).is_some() {
                    return problem(
                        400,
                        "Member Exists",
                        &format!("{email} is already a list member."),
                    );
                }
                let m = member(list, &email, "", "", &[], &[]);
                self.members.push(m.clone());
                ok(&public(&m))
            }
            (Method::DELETE, ["lists", list, "members", hash]) => match self.find(list, hash) {
                Some(m) => {
                    m["status"] = json!("archived");
                    empty(204)
                }
                None => not_found(),
            },
            (
                Method::POST,
                [
                    "lists",
                    list,
                    "members",
                    hash,
                    "actions",
                    "delete-permanent",
                ],
            ) => {
                let before = self.members.len();
                self.members
                    .retain(|m| !(m["list_id"] == *list && m["id"] == *hash));
                if self.members.len() == before {
                    return not_found();
                }
                self.forgotten
                    .push(((*list).to_owned(), (*hash).to_owned()));
                empty(204)
            }
            _ => not_found(),
        }
    }

    fn throttled(&self, _retry_after: u64) -> Response {
        problem(
            429,
            "Too Many Requests",
            "You have exceeded the limit of 10 simultaneous connections.",
        )
    }

    fn snapshot(&self) -> Value {
        json!({
            "lists": self.lists,
            "members": self.members.iter().map(public).collect::<Vec<_>>(),
            "forgotten": self.forgotten.iter().map(|(l, h)| json!({"list_id": l, "id": h})).collect::<Vec<_>>(),
        })
    }
}
