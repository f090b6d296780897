//! Okta Users API (reference: <https://developer.okta.com/docs/api/openapi/okta-management/management/tag/User/>).
//!
//! Reproduced: `Authorization: SSWS {token}` (401 `E0000011` otherwise); error bodies
//! (`errorCode`, `errorSummary`, `errorLink`, `errorId`, `errorCauses`); `GET /users` with
//! `search=` expressions (`eq`, `sw`, `co` on `profile.*`, `id` and `status`, `and`/`or`,
//! values as JSON strings with their escapes, `eq` case-insensitive) and `limit`, paged by
//! `after` through the `Link` header (`rel="next"`, and `rel="self"`); `GET /users/{id}`
//! (404 `E0000007`); `POST /users/{id}` partial profile update; `GET /users/{id}/groups`;
//! `POST /users/{id}/lifecycle/suspend` (only an `ACTIVE` user, else 400 `E0000001`) and
//! `.../deactivate` (status `DEPROVISIONED`); `DELETE /users/{id}` deleting a
//! `DEPROVISIONED` user but only deactivating any other (as documented: the first call
//! deactivates, the second deletes); the `X-Rate-Limit-Limit`, `-Remaining` and `-Reset`
//! (Unix seconds) headers and 429 `E0000047`.
//!
//! Not reproduced: `filter=` and `q=`, sorting, factors, sessions, app links, the
//! asynchronous `sendEmail` lifecycle options, per-endpoint limits.

use axum::http::Method;
use axum::response::Response;
use serde_json::{Value, json};

use super::{Api, Req, empty, json as json_resp, set_header, unix_reset};

/// The API token the emulator accepts (sent as `SSWS {token}`).
pub const API_TOKEN: &str = "00okta-emulator-token";

/// Okta's state.
pub struct Okta {
    users: Vec<Value>,
    groups: Vec<(String, Value)>,
}

fn error(status: u16, code: &str, summary: &str) -> Response {
    json_resp(
        status,
        &json!({"errorCode": code, "errorSummary": summary, "errorLink": code,
            "errorId": "oae-emulator", "errorCauses": []}),
    )
}

fn user(id: &str, login: &str, email: &str, first: &str, last: &str) -> Value {
    json!({
        "id": id, "status": "ACTIVE", "created": "2024-01-05T09:00:00.000Z",
        "activated": "2024-01-05T09:00:00.000Z", "lastLogin": "2026-10-30T08:00:00.000Z",
        "profile": {"login": login, "email": email, "firstName": first, "lastName": last,
            "mobilePhone": null},
        "_links": {"self": {"href": format!("/api/v1/users/{id}")}}
    })
}

/// One token of a search expression.
#[derive(Debug, PartialEq)]
enum Token {
    Word(String),
    Text(String),
    Open,
    Close,
}

fn tokens(expr: &str) -> Result<Vec<Token>, String> {
    let mut out = Vec::new();
    let mut chars = expr.chars().peekable();
    while let Some(&c) = chars.peek() {
        match c {
            ' ' | '\t' => {
                chars.next();
            }
            '(' => {
                chars.next();
                out.push(Token::Open);
            }
            ')' => {
                chars.next();
                out.push(Token::Close);
            }
            '"' => {
                // A JSON string: read to the unescaped closing quote, then decode.
                let mut raw = String::from('"');
                chars.next();
                let mut escaped = false;
                loop {
                    let Some(c) = chars.next() else {
                        return Err("unterminated string".into());
                    };
                    raw.push(c);
                    if escaped {
                        escaped = false;
                    } else if c == '\\' {
                        escaped = true;
                    } else if c == '"' {
                        break;
                    }
                }
                let text: String = serde_json::from_str(&raw).map_err(|e| e.to_string())?;
                out.push(Token::Text(text));
            }
            _ => {
                let mut w = String::new();
                while let Some(&c) = chars.peek() {
                    if c == ' ' || c == '(' || c == ')' || c == '"' {
                        break;
                    }
                    w.push(c);
                    chars.next();
                }
                out.push(Token::Word(w));
            }
        }
    }
    Ok(out)
}

/// Whether `u` matches the search expression (`a op "v"` terms with `and`/`or`, `and`
/// binding tighter, parentheses).
pub fn search_matches(u: &Value, expr: &str) -> Result<bool, String> {
    let toks = tokens(expr)?;
    let mut pos = 0;
    let r = or_expr(u, &toks, &mut pos)?;
    if pos != toks.len() {
        return Err("unexpected text after the expression".into());
    }
    Ok(r)
}

fn or_expr(u: &Value, t: &[Token], pos: &mut usize) -> Result<bool, String> {
    let mut v = and_expr(u, t, pos)?;
    while matches!(t.get(*pos), Some(Token::Word(w)) if w.eq_ignore_ascii_case("or")) {
        *pos += 1;
        v |= and_expr(u, t, pos)?;
    }
    Ok(v)
}

fn and_expr(u: &Value, t: &[Token], pos: &mut usize) -> Result<bool, String> {
    let mut v = term(u, t, pos)?;
    while matches!(t.get(*pos), Some(Token::Word(w)) if w.eq_ignore_ascii_case("and")) {
        *pos += 1;
        v &= term(u, t, pos)?;
    }
    Ok(v)
}

fn term(u: &Value, t: &[Token], pos: &mut usize) -> Result<bool, String> {
    if t.get(*pos) == Some(&Token::Open) {
        *pos += 1;
        let v = or_expr(u, t, pos)?;
        if t.get(*pos) != Some(&Token::Close) {
            return Err("missing )".into());
        }
        *pos += 1;
        return Ok(v);
    }
    let (Some(Token::Word(attr)), Some(Token::Word(op)), Some(Token::Text(want))) =
        (t.get(*pos), t.get(*pos + 1), t.get(*pos + 2))
    else {
        return Err("expected `attribute op \"value\"`".into());
    };
    *pos += 3;
    let pointer = format!("/{}", attr.replace('.', "/"));
    let have = u
        .pointer(&pointer)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_lowercase();
    let want = want.to_lowercase();
    match op.as_str() {
        "eq" => Ok(have == want),
        "sw" => Ok(have.starts_with(&want)),
        "co" => Ok(have.contains(&want)),
        other => Err(format!("unsupported operator {other}")),
    }
}

impl Okta {
    /// Alice with two accounts (her own and an admin one, both with her email), Bob with
    /// one; groups for each.
    pub fn seeded() -> Okta {
        Okta {
            users: vec![
                user(
                    "00u1alice",
                    "alice@example.com",
                    "alice@example.com",
                    "Alice",
                    "Archer",
                ),
                user(
                    "00u2bob",
                    "bob@example.com",
                    "bob@example.com",
                    "Bob",
                    "Baker",
                ),
                user(
                    "00u3alice",
                    "alice.admin@example.com",
                    "alice@example.com",
                    "Alice",
                    "Archer (admin)",
                ),
            ],
            groups: vec![
                (
                    "00u1alice".into(),
                    json!({"id": "00g1", "profile": {"name": "Everyone"}}),
                ),
                (
                    "00u1alice".into(),
                    json!({"id": "00g2", "profile": {"name": "Finance"}}),
                ),
                (
                    "00u2bob".into(),
                    json!({"id": "00g1", "profile": {"name": "Everyone"}}),
                ),
                (
                    "00u3alice".into(),
                    json!({"id": "00g3", "profile": {"name": "Admins"}}),
                ),
            ],
        }
    }

    fn find(&mut self, id: &str) -> Option<&mut Value> {
        self.users
            .iter_mut()
            .find(|u| u["id"] == id || u["profile"]["login"] == id)
    }
}

impl Api for Okta {
    fn authenticate(&self, req: &Req) -> Option<Response> {
        let ok = req
            .header("authorization")
            .and_then(|a| a.strip_prefix("SSWS "))
            == Some(API_TOKEN);
        (!ok).then(|| error(401, "E0000011", "Invalid token provided"))
    }

    fn handle(&mut self, req: &Req) -> Response {
        let path = req.path();
        match (req.method.clone(), path.as_slice()) {
            (Method::GET, ["users"]) => {
                let limit = req
                    .param("limit")
                    .and_then(|l| l.parse::<usize>().ok())
                    .unwrap_or(200)
                    .clamp(1, 200);
                let mut found = Vec::new();
                for u in &self.users {
                    let keep = match req.param("search") {
                        None => true,
                        Some(expr) => match search_matches(u, expr) {
                            Ok(m) => m,
                            Err(e) => {
                                return error(
                                    400,
                                    "E0000031",
                                    &format!("Invalid search criteria: {e}"),
                                );
                            }
                        },
                    };
                    if keep {
                        found.push(u.clone());
                    }
                }
                let start = match req.param("after") {
                    None => 0,
                    Some(after) => found
                        .iter()
                        .position(|u| u["id"] == after)
                        .map_or(found.len(), |p| p + 1),
                };
                let page: Vec<Value> = found.iter().skip(start).take(limit).cloned().collect();
                let mut resp = json_resp(200, &Value::Array(page.clone()));
                let query = |after: Option<&str>| {
                    let mut ser = url::form_urlencoded::Serializer::new(String::new());
                    if let Some(a) = after {
                        ser.append_pair("after", a);
                    }
                    ser.append_pair("limit", &limit.to_string());
                    if let Some(s) = req.param("search") {
                        ser.append_pair("search", s);
                    }
                    ser.finish().replace('+', "%20")
                };
                let mut link = format!(
                    "<{}/users?{}>; rel=\"self\"",
                    req.base,
                    query(req.param("after"))
                );
                if start + page.len() < found.len()
                    && let Some(last) = page.last().and_then(|u| u["id"].as_str())
                {
                    link.push_str(&format!(
                        ", <{}/users?{}>; rel=\"next\"",
                        req.base,
                        query(Some(last))
                    ));
                }
                set_header(&mut resp, "link", &link);
                resp
            }
            (Method::GET, ["users", id]) => match self.find(id) {
                Some(u) => json_resp(200, u),
                None => error(
                    404,
                    "E0000007",
                    &format!("Not found: Resource not found: {id} (User)"),
                ),
            },
            (Method::GET, ["users", id, "groups"]) => {
                if self.find(id).is_none() {
                    return error(
                        404,
                        "E0000007",
                        &format!("Not found: Resource not found: {id} (User)"),
                    );
                }
                let groups: Vec<&Value> = self
                    .groups
                    .iter()
                    .filter(|(u, _)| u == id)
                    .map(|(_, g)| g)
                    .collect();
                json_resp(200, &json!(groups))
            }
            (Method::POST, ["users", id]) => {
                let body = req.json().unwrap_or_default();
                let Some(u) = self.find(id) else {
                    return error(
                        404,
                        "E0000007",
                        &format!("Not found: Resource not found: {id} (User)"),
                    );
                };
                if let Some(profile) = body["profile"].as_object() {
                    for (k, v) in profile {
                        u["profile"][k.as_str()] = v.clone();
                    }
                }
                json_resp(200, u)
            }
            (Method::POST, ["users", id, "lifecycle", action]) => {
                let Some(u) = self.find(id) else {
                    return error(
                        404,
                        "E0000007",
                        &format!("Not found: Resource not found: {id} (User)"),
                    );
                };
                match *action {
                    "suspend" if u["status"] == "ACTIVE" => {
                        u["status"] = json!("SUSPENDED");
                        json_resp(200, &json!({}))
                    }
                    "suspend" => error(
                        400,
                        "E0000001",
                        "Api validation failed: Cannot suspend a user that is not active",
                    ),
                    "unsuspend" => {
                        u["status"] = json!("ACTIVE");
                        json_resp(200, &json!({}))
                    }
                    "deactivate" => {
                        u["status"] = json!("DEPROVISIONED");
                        json_resp(200, &json!({}))
                    }
                    _ => error(
                        404,
                        "E0000022",
                        "The endpoint does not support the provided HTTP method",
                    ),
                }
            }
            (Method::DELETE, ["users", id]) => {
                let Some(pos) = self.users.iter().position(|u| u["id"] == *id) else {
                    return error(
                        404,
                        "E0000007",
                        &format!("Not found: Resource not found: {id} (User)"),
                    );
                };
                if self.users[pos]["status"] == "DEPROVISIONED" {
                    self.users.remove(pos);
                    self.groups.retain(|(u, _)| u != id);
                } else {
                    self.users[pos]["status"] = json!("DEPROVISIONED");
                }
                empty(204)
            }
            _ => error(
                404,
                "E0000022",
                "The endpoint does not support the provided HTTP method",
            ),
        }
    }

    fn throttled(&self, _retry_after: u64) -> Response {
        error(
            429,
            "E0000047",
            "API call exceeded rate limit due to too many requests.",
        )
    }

    fn rate_headers(&self, resp: &mut Response, limit: u32, left: u32, reset: u64) {
        set_header(resp, "x-rate-limit-limit", &limit.to_string());
        set_header(resp, "x-rate-limit-remaining", &left.to_string());
        set_header(resp, "x-rate-limit-reset", &unix_reset(reset).to_string());
    }

    fn snapshot(&self) -> Value {
        json!({"users": self.users,
            "groups": self.groups.iter().map(|(u, g)| json!({"userId": u, "group": g})).collect::<Vec<_>>()})
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaped_values_stay_one_value() {
        let bob = user("1", "bob@example.com", "bob@example.com", "Bob", "B");
        assert!(search_matches(&bob, r#"profile.email eq "BOB@example.com""#).unwrap());
        // An identifier written into the expression unescaped would add a term...
        let injected = r#"x" or profile.email sw "b"#;
        assert!(search_matches(&bob, &format!(r#"profile.email eq "{injected}""#)).unwrap());
        // ...escaped as a JSON string (the `scim` helper), it is one value that matches nobody.
        let escaped = serde_json::to_string(injected).unwrap();
        assert!(!search_matches(&bob, &format!("profile.email eq {escaped}")).unwrap());
        assert!(search_matches(&bob, "profile.email eq \"unterminated").is_err());
    }
}
