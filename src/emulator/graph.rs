//! Microsoft Graph v1.0: users, deleted items, personal-data export operations.

use axum::http::Method;
use axum::response::Response;
use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

use super::data_policy;
use super::odata;
use super::request::{ApiRequest, empty, json_response, page, token};
use super::state::{DeletedUser, GraphState, Inner, Object};

/// Properties Graph returns for a user when no `$select` is given.
const DEFAULT_PROPERTIES: &[&str] = &[
    "businessPhones",
    "displayName",
    "givenName",
    "jobTitle",
    "mail",
    "mobilePhone",
    "officeLocation",
    "preferredLanguage",
    "surname",
    "userPrincipalName",
    "id",
];

/// Handles one Graph request for the tenant `req.tenant`.
pub(crate) fn handle(req: &ApiRequest, inner: &mut Inner) -> Response {
    let page_size = inner.settings.page_size;
    let export_secs = inner.settings.export_duration_secs;
    let retry_after = inner.settings.export_retry_after_secs;
    let op_number = inner.next();
    let Some(tenant) = inner.tenants.get_mut(&req.tenant) else {
        return req.error(404, "Request_ResourceNotFound", "Unknown tenant.");
    };
    let g = &mut tenant.graph;
    let path = req.path();
    let Some((&"v1.0", rest)) = path.split_first() else {
        return req.error(
            400,
            "BadRequest",
            "Invalid version: the path must start with /v1.0.",
        );
    };
    let m = &req.method;
    match rest {
        ["users"] if m == Method::GET => list_users(req, g, page_size),
        ["users", id] if m == Method::GET => match find(g, id) {
            Some(u) => match select(req, u) {
                Ok(body) => json_response(200, &body),
                Err(msg) => req.error(400, "BadRequest", &msg),
            },
            None => not_found(req, id),
        },
        ["users", id] if m == Method::PATCH => patch_user(req, g, id),
        ["users", id] if m == Method::DELETE => match find(g, id).map(key) {
            Some(k) => {
                if let Some(user) = g.users.remove(&k) {
                    let deleted_at = req.now;
                    g.deleted.insert(k, DeletedUser { user, deleted_at });
                }
                empty(204)
            }
            None => not_found(req, id),
        },
        ["users", id, "exportPersonalData"] if m == Method::POST => {
            let Some(user_id) = find(g, id).map(key) else {
                return not_found(req, id);
            };
            data_policy::export(req, g, user_id, op_number, retry_after)
        }
        ["directory", "deletedItems"] => req.error(
            400,
            "Request_BadRequest",
            "The requested operation requires a type cast, e.g. /directory/deletedItems/microsoft.graph.user.",
        ),
        ["directory", "deletedItems", "microsoft.graph.user"] if m == Method::GET => {
            list_deleted(req, g, page_size)
        }
        ["directory", "deletedItems", id] if m == Method::GET => match g.deleted.get(*id) {
            Some(d) => json_response(200, &deleted_view(d)),
            None => not_found(req, id),
        },
        ["directory", "deletedItems", id] if m == Method::DELETE => match g.deleted.remove(*id) {
            Some(_) => empty(204),
            None => not_found(req, id),
        },
        ["directory", "deletedItems", id, "restore"] if m == Method::POST => {
            let Some(d) = g.deleted.remove(*id) else {
                return not_found(req, id);
            };
            let mut body = d.user.clone();
            body.insert("@odata.type".into(), json!("#microsoft.graph.user"));
            g.users.insert(key(&d.user), d.user);
            json_response(200, &Value::Object(body))
        }
        ["dataPolicyOperations", id] if m == Method::GET => match g.operations.get(*id) {
            Some(op) => {
                let mut body = data_policy::operation_view(op, req.now, export_secs);
                if let Some(o) = body.as_object_mut() {
                    let ctx = format!("{}/$metadata#dataPolicyOperations/$entity", req.base);
                    o.insert("@odata.context".into(), json!(ctx));
                }
                json_response(200, &body)
            }
            None => not_found(req, id),
        },
        _ => req.error(
            400,
            "BadRequest",
            &format!("Resource not found for the segment '{}'.", rest.join("/")),
        ),
    }
}

fn key(u: &Object) -> String {
    u.get("id")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

/// A user by object id or (case-insensitive) userPrincipalName.
fn find<'a>(g: &'a GraphState, id_or_upn: &str) -> Option<&'a Object> {
    g.users.get(id_or_upn).or_else(|| {
        g.users.values().find(|u| {
            u.get("userPrincipalName")
                .and_then(Value::as_str)
                .is_some_and(|upn| upn.eq_ignore_ascii_case(id_or_upn))
        })
    })
}

fn not_found(req: &ApiRequest, id: &str) -> Response {
    req.error(
        404,
        "Request_ResourceNotFound",
        &format!(
            "Resource '{id}' does not exist or one of its queried reference-property objects are not present."
        ),
    )
}

/// The user's properties as `$select` (or the default set) asks.
fn select(req: &ApiRequest, user: &Object) -> Result<Value, String> {
    let wanted: Vec<String> = match req.param("$select") {
        Some(s) => s
            .split(',')
            .map(|p| p.trim().to_string())
            .filter(|p| !p.is_empty())
            .collect(),
        None => DEFAULT_PROPERTIES.iter().map(|p| p.to_string()).collect(),
    };
    let mut out = Map::new();
    for prop in wanted {
        if prop.contains(['/', '(', ' ', '\'']) {
            return Err(format!(
                "Parsing OData Select and Expand failed: Term '{prop}' is not valid in a $select or $expand expression."
            ));
        }
        let found = user.iter().find(|(k, _)| k.eq_ignore_ascii_case(&prop));
        match found {
            Some((k, v)) => out.insert(k.clone(), v.clone()),
            None if prop == "businessPhones" => out.insert(prop, json!([])),
            None => out.insert(prop, Value::Null),
        };
    }
    Ok(Value::Object(out))
}

fn list_users(req: &ApiRequest, g: &GraphState, page_size: usize) -> Response {
    let filter = match req.param("$filter").map(odata::parse).transpose() {
        Ok(f) => f,
        Err(msg) => return req.error(400, "BadRequest", &format!("Invalid filter clause: {msg}")),
    };
    let users: Vec<&Object> = g
        .users
        .values()
        .filter(|u| filter.as_ref().is_none_or(|f| f.matches(u)))
        .collect();
    let mut values = Vec::new();
    for u in users {
        match select(req, u) {
            Ok(v) => values.push(v),
            Err(msg) => return req.error(400, "BadRequest", &msg),
        }
    }
    paged(req, values, page_size, "users", "users")
}

fn list_deleted(req: &ApiRequest, g: &GraphState, page_size: usize) -> Response {
    let filter = match req.param("$filter").map(odata::parse).transpose() {
        Ok(f) => f,
        Err(msg) => return req.error(400, "BadRequest", &format!("Invalid filter clause: {msg}")),
    };
    let values: Vec<Value> = g
        .deleted
        .values()
        .filter(|d| filter.as_ref().is_none_or(|f| f.matches(&d.user)))
        .map(deleted_view)
        .collect();
    paged(
        req,
        values,
        page_size,
        "directory/deletedItems/microsoft.graph.user",
        "deleted",
    )
}

/// One page of a collection with `@odata.nextLink` (`$top` and `$skiptoken` honoured).
fn paged(
    req: &ApiRequest,
    values: Vec<Value>,
    page_size: usize,
    path: &str,
    kind: &str,
) -> Response {
    let mut size = page_size;
    if let Some(top) = req.param("$top") {
        match top.parse::<usize>() {
            Ok(t) if (1..=999).contains(&t) => size = size.min(t),
            _ => {
                return req.error(
                    400,
                    "Request_BadRequest",
                    "Invalid page size specified: '$top' must be between 1 and 999.",
                );
            }
        }
    }
    let offset = match req.param("$skiptoken") {
        None => 0,
        Some(t) => match token::decode(t) {
            Some((o, k)) if k == kind => o,
            _ => return req.error(400, "Request_BadRequest", "Invalid paging token."),
        },
    };
    let (items, next) = page(&values, offset, size);
    let mut body = json!({
        "@odata.context": format!("{}/$metadata#{}", req.base, path),
        "value": items,
    });
    if let (Some(n), Some(o)) = (next, body.as_object_mut()) {
        let link = format!(
            "{}/{}?{}",
            req.base,
            path,
            req.query_with("$skiptoken", &token::encode(n, kind))
        );
        o.insert("@odata.nextLink".into(), json!(link));
    }
    json_response(200, &body)
}

fn patch_user(req: &ApiRequest, g: &mut GraphState, id: &str) -> Response {
    let Some(k) = find(g, id).map(key) else {
        return not_found(req, id);
    };
    let Some(Value::Object(changes)) = req.json() else {
        return req.error(
            400,
            "BadRequest",
            "Write requests must contain a JSON object body.",
        );
    };
    if changes.contains_key("id") {
        return req.error(
            400,
            "Request_BadRequest",
            "Property 'id' is read-only and cannot be set.",
        );
    }
    if let Some(user) = g.users.get_mut(&k) {
        for (name, value) in changes {
            user.insert(name, value);
        }
    }
    empty(204)
}

/// A deleted user as `deletedItems` shows it.
pub(crate) fn deleted_view(d: &DeletedUser) -> Value {
    let mut body = d.user.clone();
    body.insert("@odata.type".into(), json!("#microsoft.graph.user"));
    body.insert("deletedDateTime".into(), json!(fmt(d.deleted_at)));
    Value::Object(body)
}

pub(crate) fn fmt(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}
