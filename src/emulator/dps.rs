//! Device Provisioning Service: enrollments, enrollment groups, registration states.

use std::collections::BTreeMap;

use axum::http::Method;
use axum::response::Response;
use serde_json::Value;

use super::digital_twins::check_api_version;
use super::request::{ApiRequest, empty, if_match_ok, json_response, page, set_header, token};
use super::sql;
use super::state::{DpsState, Inner, Object};

/// The only api-version the emulator serves.
pub const API_VERSION: &str = "2021-10-01";

/// Handles one DPS request for the tenant `req.tenant`.
pub(crate) fn handle(req: &ApiRequest, inner: &mut Inner) -> Response {
    if let Some(resp) = check_api_version(req, API_VERSION) {
        return resp;
    }
    let page_size = match req.header("x-ms-max-item-count").map(str::parse::<usize>) {
        Some(Ok(n)) if n > 0 => n.min(inner.settings.page_size),
        Some(_) => {
            return req.error(
                400,
                "ArgumentInvalid",
                "x-ms-max-item-count must be a positive integer.",
            );
        }
        None => inner.settings.page_size,
    };
    let Some(tenant) = inner.tenants.get_mut(&req.tenant) else {
        return req.error(404, "NotFound", "Unknown tenant.");
    };
    let s = &mut tenant.dps;
    let m = &req.method;
    match req.path().as_slice() {
        ["enrollments", "query"] if m == Method::POST => {
            let all: Vec<&Object> = s.enrollments.values().collect();
            query(req, &all, page_size, "enrollments", "Enrollment")
        }
        ["enrollmentGroups", "query"] if m == Method::POST => {
            let all: Vec<&Object> = s.groups.values().collect();
            query(req, &all, page_size, "enrollmentGroups", "EnrollmentGroup")
        }
        ["registrations", group, "query"] if m == Method::POST => {
            if !s.groups.contains_key(*group) {
                return not_found(req, "EnrollmentGroupNotFound", group);
            }
            let all: Vec<&Object> = s
                .registrations
                .values()
                .filter(|r| r.get("enrollmentGroupId").and_then(Value::as_str) == Some(*group))
                .collect();
            query(req, &all, page_size, "registrations", "DeviceRegistration")
        }
        ["enrollments", id] if m == Method::GET => {
            get(req, &s.enrollments, id, "EnrollmentNotFound")
        }
        ["enrollmentGroups", id] if m == Method::GET => {
            get(req, &s.groups, id, "EnrollmentGroupNotFound")
        }
        ["registrations", id] if m == Method::GET => {
            get(req, &s.registrations, id, "DeviceRegistrationNotFound")
        }
        ["enrollments", id] if m == Method::DELETE => delete(req, s, Kind::Enrollment, id),
        ["enrollmentGroups", id] if m == Method::DELETE => delete(req, s, Kind::Group, id),
        ["registrations", id] if m == Method::DELETE => delete(req, s, Kind::Registration, id),
        _ => req.error(404, "NotFound", "The requested resource does not exist."),
    }
}

enum Kind {
    Enrollment,
    Group,
    Registration,
}

fn not_found(req: &ApiRequest, code: &str, id: &str) -> Response {
    req.error(404, code, &format!("'{id}' was not found."))
}

fn etag_of(o: &Object) -> &str {
    o.get("etag").and_then(Value::as_str).unwrap_or("")
}

fn get(req: &ApiRequest, items: &BTreeMap<String, Object>, id: &str, code: &str) -> Response {
    match items.get(id) {
        Some(o) => {
            let mut resp = json_response(200, &Value::Object(o.clone()));
            set_header(&mut resp, "etag", etag_of(o));
            resp
        }
        None => not_found(req, code, id),
    }
}

/// Deletes one item; an enrollment or group takes its registration states with it.
fn delete(req: &ApiRequest, s: &mut DpsState, kind: Kind, id: &str) -> Response {
    let (items, code) = match kind {
        Kind::Enrollment => (&mut s.enrollments, "EnrollmentNotFound"),
        Kind::Group => (&mut s.groups, "EnrollmentGroupNotFound"),
        Kind::Registration => (&mut s.registrations, "DeviceRegistrationNotFound"),
    };
    let Some(item) = items.get(id) else {
        return not_found(req, code, id);
    };
    if !if_match_ok(req, etag_of(item)) {
        return req.error(
            412,
            "PreconditionFailed",
            "The ETag in If-Match does not match the current one.",
        );
    }
    items.remove(id);
    match kind {
        Kind::Enrollment => {
            s.registrations
                .retain(|rid, r| rid != id || r.get("enrollmentGroupId").is_some());
        }
        Kind::Group => {
            s.registrations
                .retain(|_, r| r.get("enrollmentGroupId").and_then(Value::as_str) != Some(id));
        }
        Kind::Registration => {}
    }
    empty(204)
}

/// Runs a DPS query (`*` or `SELECT * FROM <collection> [WHERE ...]`) over `items`,
/// one page per call with `x-ms-continuation` in and out.
fn query(
    req: &ApiRequest,
    items: &[&Object],
    size: usize,
    collection: &str,
    item_type: &str,
) -> Response {
    let text = req
        .json()
        .and_then(|b| b.get("query").and_then(Value::as_str).map(str::to_string));
    let Some(text) = text else {
        return req.error(
            400,
            "ArgumentInvalid",
            "The body must be {\"query\": \"...\"}.",
        );
    };
    let filter = if text.trim() == "*" {
        None
    } else {
        match sql::parse(&text) {
            Ok(q) if q.from.eq_ignore_ascii_case(collection) => Some(q),
            Ok(q) => {
                let msg = format!(
                    "Cannot query '{}' here; expected FROM {collection}.",
                    q.from
                );
                return req.error(400, "ArgumentInvalid", &msg);
            }
            Err(msg) => return req.error(400, "ArgumentInvalid", &format!("Invalid query: {msg}")),
        }
    };
    let kind = format!("{}|{text}", req.segments.join("/"));
    let offset = match req.header("x-ms-continuation").filter(|c| !c.is_empty()) {
        None => 0,
        Some(c) => match token::decode(c) {
            Some((o, k)) if k == kind => o,
            _ => {
                return req.error(
                    400,
                    "ArgumentInvalid",
                    "The x-ms-continuation token is not valid.",
                );
            }
        },
    };
    let matching: Vec<Value> = items
        .iter()
        .filter(|o| filter.as_ref().is_none_or(|q| q.matches(o)))
        .map(|o| Value::Object((*o).clone()))
        .collect();
    let (value, next) = page(&matching, offset, size);
    let mut resp = json_response(200, &Value::Array(value));
    set_header(&mut resp, "x-ms-item-type", item_type);
    if let Some(n) = next {
        set_header(&mut resp, "x-ms-continuation", &token::encode(n, &kind));
    }
    resp
}
