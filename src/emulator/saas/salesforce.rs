//! Salesforce REST API, SOQL query and sObject rows (reference:
//! <https://developer.salesforce.com/docs/platform/api-rest/guide/resources-query.md>,
//! <https://developer.salesforce.com/docs/atlas.en-us.soql_sosl.meta/soql_sosl/sforce_api_calls_soql_select_quotedstringescapes.htm>).
//!
//! Reproduced: an OAuth access token as `Bearer` (401 `INVALID_SESSION_ID` otherwise);
//! error bodies as a list of `{message, errorCode}`; `GET /query?q=` with a subset of SOQL:
//! `SELECT fields FROM Contact|Lead [WHERE ...] [LIMIT n]`, conditions `=`, `!=` and `LIKE`
//! (`%`, `_`) on text fields joined by `AND`/`OR` with parentheses, text comparisons
//! case-insensitive, string literals in single quotes with the documented escape sequences
//! (`\'`, `\"`, `\\`, `\n`, `\r`, `\t`, `\b`, `\f`, `\uXXXX`; `\%` and `\_` in `LIKE`; any
//! other backslash, or an unterminated literal, is `MALFORMED_QUERY`); answers with
//! `totalSize`, `done`, `records` (each with `attributes.type` and `.url`) and, while more
//! remain, `nextRecordsUrl` (`/query/01g...-N`, fetched with no parameters); the batch size
//! from `Sforce-Query-Options: batchSize=N` (default 2000); `GET`, `PATCH` (204) and
//! `DELETE` (204) on `/sobjects/{Contact|Lead}/{id}`, a deleted row answering 404
//! `NOT_FOUND` (it is in the Recycle Bin, kept in the snapshot as `recycle_bin`);
//! `Sforce-Limit-Info: api-usage=N/M` on every answer and, when the limit is exhausted,
//! 403 `REQUEST_LIMIT_EXCEEDED`.
//!
//! Not reproduced: the rest of SOQL (relationship queries, `IN`, dates, functions, `ORDER
//! BY`), the 200 minimum of `batchSize`, `queryAll`, other sObjects, the Recycle Bin's
//! 15-day expiry and `undelete`, the real 24-hour rolling API allocation (set one with
//! [`super::SaasEmulator::throttle`]), concurrent-request limits, OAuth token issuance.

use std::collections::BTreeMap;

use axum::http::Method;
use axum::response::Response;
use serde_json::{Map, Value, json};

use super::{Api, Req, empty, json as json_resp, set_header};

/// The OAuth access token the emulator accepts.
pub const ACCESS_TOKEN: &str = "00Demulator!sf-access-token";

/// The API version of the base path (`/services/data/v62.0`).
pub const VERSION: &str = "v62.0";

/// The daily allocation `Sforce-Limit-Info` reports when no throttle is set.
const DAILY_LIMIT: u32 = 15_000;

/// Salesforce's state.
pub struct Salesforce {
    /// Rows by sObject type.
    rows: BTreeMap<&'static str, Vec<Value>>,
    recycle_bin: Vec<Value>,
    /// Open query locators: the remaining records of a query, by locator.
    cursors: BTreeMap<String, (Vec<Value>, usize, usize)>,
    used: u32,
}

fn error(status: u16, code: &str, message: &str) -> Response {
    json_resp(status, &json!([{"message": message, "errorCode": code}]))
}

fn row(kind: &str, id: &str, fields: Value) -> Value {
    let mut v = fields;
    v["Id"] = json!(id);
    v["attributes"] =
        json!({"type": kind, "url": format!("/services/data/{VERSION}/sobjects/{kind}/{id}")});
    v
}

/// One token of a SOQL statement.
#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Word(String),
    /// A string literal, decoded: each char with whether it was escaped (for `LIKE`).
    Text(Vec<(char, bool)>),
    Sym(&'static str),
}

fn lex(q: &str) -> Result<Vec<Tok>, String> {
    let mut out = Vec::new();
    let mut it = q.chars().peekable();
    while let Some(&c) = it.peek() {
        match c {
            c if c.is_whitespace() => {
                it.next();
            }
            '\'' => {
                it.next();
                let mut text = Vec::new();
                loop {
                    match it.next() {
                        None => return Err("unterminated string literal".into()),
                        Some('\'') => break,
                        Some('\\') => {
                            let e = it.next().ok_or("unterminated escape")?;
                            let ch = match e {
                                'n' | 'N' => '\n',
                                'r' | 'R' => '\r',
                                't' | 'T' => '\t',
                                'b' | 'B' => '\u{8}',
                                'f' | 'F' => '\u{c}',
                                '"' | '\'' | '\\' | '%' | '_' => e,
                                'u' => {
                                    let hex: String = (0..4).filter_map(|_| it.next()).collect();
                                    u32::from_str_radix(&hex, 16)
                                        .ok()
                                        .and_then(char::from_u32)
                                        .ok_or("invalid \\u escape")?
                                }
                                other => return Err(format!("invalid escape \\{other}")),
                            };
                            text.push((ch, true));
                        }
                        Some(ch) => text.push((ch, false)),
                    }
                }
                out.push(Tok::Text(text));
            }
            '(' | ')' | ',' | '=' => {
                it.next();
                out.push(Tok::Sym(match c {
                    '(' => "(",
                    ')' => ")",
                    ',' => ",",
                    _ => "=",
                }));
            }
            '!' => {
                it.next();
                if it.next() != Some('=') {
                    return Err("unexpected `!`".into());
                }
                out.push(Tok::Sym("!="));
            }
            _ => {
                let mut w = String::new();
                while let Some(&c) = it.peek() {
                    if c.is_alphanumeric() || c == '_' || c == '.' {
                        w.push(c);
                        it.next();
                    } else {
                        break;
                    }
                }
                if w.is_empty() {
                    return Err(format!("unexpected `{c}`"));
                }
                out.push(Tok::Word(w));
            }
        }
    }
    Ok(out)
}

/// A parsed `SELECT`.
struct Select {
    fields: Vec<String>,
    from: String,
    filter: Option<Cond>,
    limit: Option<usize>,
}

enum Cond {
    And(Box<Cond>, Box<Cond>),
    Or(Box<Cond>, Box<Cond>),
    Cmp(String, &'static str, Vec<(char, bool)>),
}

fn kw(t: Option<&Tok>, word: &str) -> bool {
    matches!(t, Some(Tok::Word(w)) if w.eq_ignore_ascii_case(word))
}

fn parse(q: &str) -> Result<Select, String> {
    let t = lex(q)?;
    let mut p = 0;
    if !kw(t.get(p), "select") {
        return Err("expected SELECT".into());
    }
    p += 1;
    let mut fields = Vec::new();
    loop {
        match t.get(p) {
            Some(Tok::Word(w)) => fields.push(w.clone()),
            _ => return Err("expected a field name".into()),
        }
        p += 1;
        if t.get(p) == Some(&Tok::Sym(",")) {
            p += 1;
            continue;
        }
        break;
    }
    if !kw(t.get(p), "from") {
        return Err("expected FROM".into());
    }
    let Some(Tok::Word(from)) = t.get(p + 1) else {
        return Err("expected an sObject after FROM".into());
    };
    p += 2;
    let mut filter = None;
    if kw(t.get(p), "where") {
        p += 1;
        filter = Some(or(&t, &mut p)?);
    }
    let mut limit = None;
    if kw(t.get(p), "limit") {
        let Some(Tok::Word(n)) = t.get(p + 1) else {
            return Err("expected a number after LIMIT".into());
        };
        limit = Some(n.parse().map_err(|_| "LIMIT is not a number")?);
        p += 2;
    }
    if p != t.len() {
        return Err(format!("unexpected token at position {p}"));
    }
    Ok(Select {
        fields,
        from: from.clone(),
        filter,
        limit,
    })
}

fn or(t: &[Tok], p: &mut usize) -> Result<Cond, String> {
    let mut c = and(t, p)?;
    while kw(t.get(*p), "or") {
        *p += 1;
        c = Cond::Or(Box::new(c), Box::new(and(t, p)?));
    }
    Ok(c)
}

fn and(t: &[Tok], p: &mut usize) -> Result<Cond, String> {
    let mut c = term(t, p)?;
    while kw(t.get(*p), "and") {
        *p += 1;
        c = Cond::And(Box::new(c), Box::new(term(t, p)?));
    }
    Ok(c)
}

fn term(t: &[Tok], p: &mut usize) -> Result<Cond, String> {
    if t.get(*p) == Some(&Tok::Sym("(")) {
        *p += 1;
        let c = or(t, p)?;
        if t.get(*p) != Some(&Tok::Sym(")")) {
            return Err("missing )".into());
        }
        *p += 1;
        return Ok(c);
    }
    let Some(Tok::Word(field)) = t.get(*p) else {
        return Err("expected a condition".into());
    };
    let op = match t.get(*p + 1) {
        Some(Tok::Sym("=")) => "=",
        Some(Tok::Sym("!=")) => "!=",
        Some(w) if kw(Some(w), "like") => "like",
        _ => return Err("expected =, != or LIKE".into()),
    };
    let Some(Tok::Text(value)) = t.get(*p + 2) else {
        return Err("expected a string literal".into());
    };
    *p += 3;
    Ok(Cond::Cmp(field.clone(), op, value.clone()))
}

/// `LIKE`: `%` any run, `_` one char, unless escaped; case-insensitive.
fn like(have: &[char], pat: &[(char, bool)]) -> bool {
    match pat.split_first() {
        None => have.is_empty(),
        Some((('%', false), rest)) => (0..=have.len()).any(|i| like(&have[i..], rest)),
        Some((('_', false), rest)) => !have.is_empty() && like(&have[1..], rest),
        Some(((c, _), rest)) => {
            have.first()
                .is_some_and(|h| h.to_lowercase().eq(c.to_lowercase()))
                && like(&have[1..], rest)
        }
    }
}

fn matches(row: &Value, c: &Cond) -> bool {
    match c {
        Cond::And(a, b) => matches(row, a) && matches(row, b),
        Cond::Or(a, b) => matches(row, a) || matches(row, b),
        Cond::Cmp(field, op, value) => {
            let have = row
                .get(field.as_str())
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_lowercase();
            let want: String = value
                .iter()
                .map(|(c, _)| c)
                .collect::<String>()
                .to_lowercase();
            match *op {
                "=" => have == want,
                "!=" => have != want,
                _ => like(&have.chars().collect::<Vec<_>>(), value),
            }
        }
    }
}

/// The rows a SOQL statement selects from `rows`, or the `MALFORMED_QUERY` message.
pub fn query(rows: &[Value], soql: &str) -> Result<Vec<Value>, String> {
    let s = parse(soql)?;
    let mut out = Vec::new();
    for r in rows {
        if r["attributes"]["type"].as_str() != Some(s.from.as_str()) {
            continue;
        }
        if s.filter.as_ref().is_some_and(|f| !matches(r, f)) {
            continue;
        }
        let mut picked = Map::new();
        picked.insert("attributes".into(), r["attributes"].clone());
        for f in &s.fields {
            picked.insert(f.clone(), r.get(f.as_str()).cloned().unwrap_or(Value::Null));
        }
        out.push(Value::Object(picked));
        if s.limit.is_some_and(|n| out.len() >= n) {
            break;
        }
    }
    Ok(out)
}

impl Salesforce {
    /// Alice as a contact (two: one per account she buys for) and a lead, Bob as a contact.
    pub fn seeded() -> Salesforce {
        let contact = |id: &str, first: &str, last: &str, email: &str, account: &str| {
            row(
                "Contact",
                id,
                json!({"FirstName": first, "LastName": last, "Email": email,
                    "Phone": "+44 20 7946 0000", "MailingCity": "Leeds", "AccountId": account,
                    "CreatedDate": "2024-03-01T09:00:00.000+0000"}),
            )
        };
        let mut rows = BTreeMap::new();
        rows.insert(
            "Contact",
            vec![
                contact(
                    "003A1alice",
                    "Alice",
                    "Archer",
                    "alice@example.com",
                    "001Archer",
                ),
                contact("003B2bob", "Bob", "Baker", "bob@example.com", "001Baker"),
                contact(
                    "003A3alice",
                    "Alice",
                    "Archer",
                    "Alice@Example.com",
                    "001Bowyer",
                ),
            ],
        );
        rows.insert(
            "Lead",
            vec![
                row(
                    "Lead",
                    "00QA1alice",
                    json!({"FirstName": "Alice", "LastName": "Archer", "Email": "alice@example.com",
                        "Company": "Archer Ltd", "Status": "Open - Not Contacted",
                        "CreatedDate": "2023-11-20T10:00:00.000+0000"}),
                ),
                row(
                    "Lead",
                    "00QB2bob",
                    json!({"FirstName": "Bob", "LastName": "Baker", "Email": "bob@example.com",
                        "Company": "Baker & Sons", "Status": "Working - Contacted",
                        "CreatedDate": "2023-12-01T10:00:00.000+0000"}),
                ),
            ],
        );
        Salesforce {
            rows,
            recycle_bin: Vec::new(),
            cursors: BTreeMap::new(),
            used: 0,
        }
    }

    fn page(&mut self, req: &Req, records: Vec<Value>, from: usize, size: usize) -> Response {
        let total = records.len();
        let end = (from + size).min(total);
        let mut body = json!({"totalSize": total, "done": end >= total,
            "records": records[from..end].to_vec()});
        if end < total {
            let locator = format!("01gEMU{:08}", req.serial);
            body["nextRecordsUrl"] =
                json!(format!("/services/data/{VERSION}/query/{locator}-{end}"));
            self.cursors.insert(locator, (records, end, size));
        }
        json_resp(200, &body)
    }

    fn kind(name: &str) -> Option<&'static str> {
        ["Contact", "Lead"].into_iter().find(|k| *k == name)
    }
}

impl Api for Salesforce {
    fn authenticate(&self, req: &Req) -> Option<Response> {
        let ok = req
            .header("authorization")
            .and_then(|a| a.strip_prefix("Bearer "))
            == Some(ACCESS_TOKEN);
        (!ok).then(|| error(401, "INVALID_SESSION_ID", "Session expired or invalid"))
    }

    fn handle(&mut self, req: &Req) -> Response {
        self.used += 1;
        let mut resp = self.answer(req);
        set_header(
            &mut resp,
            "sforce-limit-info",
            &format!("api-usage={}/{DAILY_LIMIT}", self.used),
        );
        resp
    }

    fn throttled(&self, _retry_after: u64) -> Response {
        error(
            403,
            "REQUEST_LIMIT_EXCEEDED",
            "TotalRequests Limit exceeded.",
        )
    }

    fn rate_headers(&self, resp: &mut Response, limit: u32, left: u32, _reset: u64) {
        set_header(
            resp,
            "sforce-limit-info",
            &format!("api-usage={}/{limit}", limit - left),
        );
    }

    fn snapshot(&self) -> Value {
        json!({"contacts": self.rows["Contact"], "leads": self.rows["Lead"],
            "recycle_bin": self.recycle_bin})
    }
}

impl Salesforce {
    fn answer(&mut self, req: &Req) -> Response {
        let path = req.path();
        match (req.method.clone(), path.as_slice()) {
            (Method::GET, ["query"]) => {
                let Some(q) = req.param("q") else {
                    return error(400, "MALFORMED_QUERY", "A query string is required");
                };
                let all: Vec<Value> = self.rows.values().flatten().cloned().collect();
                let records = match query(&all, q) {
                    Ok(r) => r,
                    Err(e) => return error(400, "MALFORMED_QUERY", &e),
                };
                let size = req
                    .header("sforce-query-options")
                    .and_then(|o| o.trim().strip_prefix("batchSize="))
                    .and_then(|n| n.trim().parse::<usize>().ok())
                    .unwrap_or(2000)
                    .clamp(1, 2000);
                self.page(req, records, 0, size)
            }
            (Method::GET, ["query", next]) => {
                let locator = next.split('-').next().unwrap_or_default().to_owned();
                let Some((records, from, size)) = self.cursors.remove(&locator) else {
                    return error(400, "INVALID_QUERY_LOCATOR", "invalid query locator");
                };
                self.page(req, records, from, size)
            }
            (method, ["sobjects", kind, id]) => {
                let Some(kind) = Self::kind(kind) else {
                    return error(404, "NOT_FOUND", "The requested resource does not exist");
                };
                let rows = self.rows.get_mut(kind).expect("seeded kinds");
                let Some(i) = rows.iter().position(|r| r["Id"] == *id) else {
                    return error(404, "NOT_FOUND", "The requested resource does not exist");
                };
                match method {
                    Method::GET => json_resp(200, &rows[i]),
                    Method::PATCH => {
                        let Some(fields) = req.json().and_then(|b| b.as_object().cloned()) else {
                            return error(
                                400,
                                "JSON_PARSER_ERROR",
                                "The body is not a JSON object",
                            );
                        };
                        for (k, v) in fields {
                            if k == "Id" || k == "CreatedDate" || k == "attributes" {
                                return error(
                                    400,
                                    "INVALID_FIELD_FOR_INSERT_UPDATE",
                                    &format!("Unable to create/update fields: {k}"),
                                );
                            }
                            rows[i][k.as_str()] = v;
                        }
                        empty(204)
                    }
                    Method::DELETE => {
                        let gone = rows.remove(i);
                        self.recycle_bin.push(gone);
                        empty(204)
                    }
                    _ => error(405, "METHOD_NOT_ALLOWED", "HTTP Method not allowed"),
                }
            }
            _ => error(404, "NOT_FOUND", "The requested resource does not exist"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(rows: &[Value]) -> Vec<String> {
        rows.iter()
            .map(|r| {
                r["attributes"]["url"]
                    .as_str()
                    .unwrap()
                    .rsplit('/')
                    .next()
                    .unwrap()
                    .to_owned()
            })
            .collect()
    }

    #[test]
    fn soql_subset_and_escapes() {
        let s = Salesforce::seeded();
        let all: Vec<Value> = s.rows.values().flatten().cloned().collect();
        let q = |w: &str| query(&all, &format!("SELECT Id, Email FROM Contact WHERE {w}"));
        assert_eq!(
            ids(&q("Email = 'ALICE@example.com'").unwrap()),
            ["003A1alice", "003A3alice"]
        );
        assert_eq!(ids(&q("Email LIKE 'b%'").unwrap()), ["003B2bob"]);
        // A value written in unescaped widens the query to everyone...
        let hostile = "x' OR Email != '";
        assert_eq!(q(&format!("Email = '{hostile}'")).unwrap().len(), 3);
        // ...escaped as the `soql` template helper escapes it, it is one literal that matches
        // nobody (the helper itself is tested in `compile`, and end to end in the catalogue).
        let escaped = r"x\' OR Email != \'";
        assert!(q(&format!("Email = '{escaped}'")).unwrap().is_empty());
        assert!(q("Email = 'unterminated").is_err());
        assert!(q("Email = 'bad \\q escape'").is_err());
        assert_eq!(ids(&q("Email LIKE '100\\%'").unwrap()).len(), 0);
    }
}
