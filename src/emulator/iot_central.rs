//! IoT Central: users, roles, devices.

use std::collections::BTreeMap;

use axum::http::Method;
use axum::response::Response;
use serde_json::{Value, json};

use super::digital_twins::check_api_version;
use super::odata;
use super::request::{ApiRequest, empty, json_response, page, token};
use super::state::{Inner, Object};

/// The only api-version the emulator serves.
pub const API_VERSION: &str = "2022-07-31";

/// Handles one IoT Central request for the tenant `req.tenant`.
pub(crate) fn handle(req: &ApiRequest, inner: &mut Inner) -> Response {
    if let Some(resp) = check_api_version(req, API_VERSION) {
        return resp;
    }
    let size = inner.settings.page_size;
    let Some(tenant) = inner.tenants.get_mut(&req.tenant) else {
        return req.error(404, "NotFound", "Unknown tenant.");
    };
    let s = &mut tenant.iotc;
    let m = &req.method;
    let path = req.path();
    let Some((&"api", rest)) = path.split_first() else {
        return req.error(404, "NotFound", "IoT Central paths start with /api.");
    };
    match rest {
        ["users"] if m == Method::GET => list(req, &s.users, size, "users"),
        ["roles"] if m == Method::GET => list(req, &s.roles, size, "roles"),
        ["devices"] if m == Method::GET => list(req, &s.devices, size, "devices"),
        ["users", id] if m == Method::GET => get(req, &s.users, id, "user"),
        ["roles", id] if m == Method::GET => get(req, &s.roles, id, "role"),
        ["devices", id] if m == Method::GET => get(req, &s.devices, id, "device"),
        ["users", id] if m == Method::PUT => {
            let Some(Value::Object(mut user)) = req.json() else {
                return req.error(400, "InvalidBody", "The body must be a user object.");
            };
            if !user.get("type").is_some_and(Value::is_string) {
                return req.error(400, "InvalidBody", "A user needs a 'type'.");
            }
            user.insert("id".into(), json!(id));
            s.users.insert(id.to_string(), user.clone());
            json_response(200, &Value::Object(user))
        }
        ["users", id] if m == Method::PATCH => {
            let Some(Value::Object(changes)) = req.json() else {
                return req.error(400, "InvalidBody", "The body must be a JSON object.");
            };
            let Some(user) = s.users.get_mut(*id) else {
                return not_found(req, "user", id);
            };
            for (k, v) in changes {
                if k == "id" || k == "type" {
                    if user.get(&k) != Some(&v) {
                        return req.error(400, "InvalidBody", &format!("'{k}' cannot be changed."));
                    }
                    continue;
                }
                user.insert(k, v);
            }
            json_response(200, &Value::Object(user.clone()))
        }
        ["users", id] if m == Method::DELETE => remove(req, &mut s.users, id, "user"),
        ["devices", id] if m == Method::DELETE => remove(req, &mut s.devices, id, "device"),
        _ => req.error(404, "NotFound", "The requested resource does not exist."),
    }
}

fn not_found(req: &ApiRequest, what: &str, id: &str) -> Response {
    req.error(
        404,
        "NotFound",
        &format!("The {what} with id '{id}' was not found."),
    )
}

fn get(req: &ApiRequest, items: &BTreeMap<String, Object>, id: &str, what: &str) -> Response {
    match items.get(id) {
        Some(o) => json_response(200, &Value::Object(o.clone())),
        None => not_found(req, what, id),
    }
}

fn remove(
    req: &ApiRequest,
    items: &mut BTreeMap<String, Object>,
    id: &str,
    what: &str,
) -> Response {
    match items.remove(id) {
        Some(_) => empty(204),
        None => not_found(req, what, id),
    }
}

/// One page of a collection; `$filter` (OData) and `$top` are honoured for devices.
fn list(req: &ApiRequest, items: &BTreeMap<String, Object>, size: usize, kind: &str) -> Response {
    let filter = match req.param("$filter") {
        Some(_) if kind != "devices" => {
            return req.error(
                400,
                "InvalidFilter",
                &format!("Listing {kind} does not support $filter."),
            );
        }
        Some(f) => match odata::parse(f) {
            Ok(f) => Some(f),
            Err(msg) => return req.error(400, "InvalidFilter", &format!("Invalid $filter: {msg}")),
        },
        None => None,
    };
    let mut size = size;
    if let Some(top) = req.param("$top") {
        match top.parse::<usize>() {
            Ok(t) if t > 0 => size = size.min(t),
            _ => return req.error(400, "InvalidParameter", "$top must be a positive integer."),
        }
    }
    let offset = match req.param("$skiptoken") {
        None => 0,
        Some(t) => match token::decode(t) {
            Some((o, k)) if k == kind => o,
            _ => return req.error(400, "InvalidParameter", "The $skiptoken is not valid."),
        },
    };
    let values: Vec<Value> = items
        .values()
        .filter(|o| filter.as_ref().is_none_or(|f| f.matches(o)))
        .map(|o| Value::Object(o.clone()))
        .collect();
    let (value, next) = page(&values, offset, size);
    let mut body = json!({ "value": value });
    if let (Some(n), Some(o)) = (next, body.as_object_mut()) {
        let q = req.query_with("$skiptoken", &token::encode(n, kind));
        o.insert(
            "nextLink".into(),
            json!(format!("{}/api/{kind}?{q}", req.base)),
        );
    }
    json_response(200, &body)
}
