//! Azure Digital Twins data plane: twins, relationships, query.

use axum::http::Method;
use axum::response::Response;
use serde_json::{Value, json};

use super::patch;
use super::request::{ApiRequest, empty, if_match_ok, json_response, page, set_header, token};
use super::sql;
use super::state::{Inner, Object, TwinsState};

/// The only api-version the emulator serves.
pub const API_VERSION: &str = "2023-10-31";

/// Handles one Digital Twins request for the tenant `req.tenant`.
pub(crate) fn handle(req: &ApiRequest, inner: &mut Inner) -> Response {
    if let Some(resp) = check_api_version(req, API_VERSION) {
        return resp;
    }
    let page_size = match req.header("max-items-per-page").map(str::parse::<usize>) {
        Some(Ok(n)) if n > 0 => n.min(inner.settings.page_size),
        Some(_) => {
            return req.error(
                400,
                "BadRequest",
                "max-items-per-page must be a positive integer.",
            );
        }
        None => inner.settings.page_size,
    };
    let etag = inner.etag();
    let Some(tenant) = inner.tenants.get_mut(&req.tenant) else {
        return req.error(404, "NotFound", "Unknown tenant.");
    };
    let s = &mut tenant.twins;
    let m = &req.method;
    match req.path().as_slice() {
        ["digitaltwins", id] if m == Method::GET => match s.twins.get(*id) {
            Some(t) => with_etag(json_response(200, &Value::Object(t.clone())), t),
            None => twin_not_found(req, id),
        },
        ["digitaltwins", id] if m == Method::PATCH => patch_twin(req, s, id, etag),
        ["digitaltwins", id] if m == Method::DELETE => delete_twin(req, s, id),
        ["digitaltwins", id, "relationships"] if m == Method::GET => {
            if !s.twins.contains_key(*id) {
                return twin_not_found(req, id);
            }
            let name = req.param("relationshipName");
            let rels: Vec<Value> = s
                .relationships
                .iter()
                .filter(|((src, _), r)| {
                    src == id && name.is_none_or(|n| r.get("$relationshipName") == Some(&json!(n)))
                })
                .map(|(_, r)| Value::Object(r.clone()))
                .collect();
            list_page(
                req,
                rels,
                page_size,
                &format!("out:{id}"),
                &format!("digitaltwins/{}/relationships", enc(id)),
            )
        }
        ["digitaltwins", id, "incomingrelationships"] if m == Method::GET => {
            if !s.twins.contains_key(*id) {
                return twin_not_found(req, id);
            }
            let rels: Vec<Value> = s
                .relationships
                .values()
                .filter(|r| r.get("$targetId").and_then(Value::as_str) == Some(id))
                .map(incoming_view)
                .collect();
            list_page(
                req,
                rels,
                page_size,
                &format!("in:{id}"),
                &format!("digitaltwins/{}/incomingrelationships", enc(id)),
            )
        }
        ["digitaltwins", src, "relationships", rel] if m == Method::GET => {
            match s.relationships.get(&(src.to_string(), rel.to_string())) {
                Some(r) => with_etag(json_response(200, &Value::Object(r.clone())), r),
                None => rel_not_found(req, rel),
            }
        }
        ["digitaltwins", src, "relationships", rel] if m == Method::DELETE => {
            let k = (src.to_string(), rel.to_string());
            let Some(r) = s.relationships.get(&k) else {
                return rel_not_found(req, rel);
            };
            if !if_match_ok(req, r.get("$etag").and_then(Value::as_str).unwrap_or("")) {
                return precondition_failed(req);
            }
            s.relationships.remove(&k);
            empty(204)
        }
        ["query"] if m == Method::POST => query(req, s, page_size),
        _ => req.error(404, "NotFound", "The requested resource does not exist."),
    }
}

/// 400 when `api-version` is missing or not `version` (shared with DPS and IoT Central).
pub(crate) fn check_api_version(req: &ApiRequest, version: &str) -> Option<Response> {
    match req.param("api-version") {
        None => Some(req.error(
            400,
            "MissingApiVersionParameter",
            "The api-version query parameter (?api-version=) is required for all requests.",
        )),
        Some(v) if v != version => Some(req.error(
            400,
            "InvalidApiVersionParameter",
            &format!("The api-version '{v}' is invalid. The supported version is '{version}'."),
        )),
        Some(_) => None,
    }
}

/// Characters escaped in a path segment: all but RFC 3986 unreserved ones.
const SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

fn enc(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, SEGMENT).to_string()
}

fn with_etag(mut resp: Response, obj: &Object) -> Response {
    if let Some(e) = obj.get("$etag").and_then(Value::as_str) {
        set_header(&mut resp, "etag", e);
    }
    resp
}

fn twin_not_found(req: &ApiRequest, id: &str) -> Response {
    req.error(
        404,
        "DigitalTwinNotFound",
        &format!("There is no digital twin instance that exists with the ID {id}."),
    )
}

fn rel_not_found(req: &ApiRequest, id: &str) -> Response {
    req.error(
        404,
        "RelationshipNotFound",
        &format!("There is no relationship that exists with the ID {id}."),
    )
}

fn precondition_failed(req: &ApiRequest) -> Response {
    req.error(
        412,
        "PreconditionFailed",
        "The If-Match header does not match the current ETag of the resource.",
    )
}

/// An incoming relationship as `/incomingrelationships` lists it.
fn incoming_view(r: &Object) -> Value {
    let src = r
        .get("$sourceId")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let id = r
        .get("$relationshipId")
        .and_then(Value::as_str)
        .unwrap_or_default();
    json!({
        "$relationshipId": id,
        "$sourceId": src,
        "$relationshipName": r.get("$relationshipName"),
        "$relationshipLink": format!("/digitaltwins/{}/relationships/{}", enc(src), enc(id)),
    })
}

/// A page of a relationship list with an absolute `nextLink`.
fn list_page(req: &ApiRequest, items: Vec<Value>, size: usize, kind: &str, path: &str) -> Response {
    let offset = match req.param("continuationToken") {
        None => 0,
        Some(t) => match token::decode(t) {
            Some((o, k)) if k == kind => o,
            _ => {
                return req.error(
                    400,
                    "InvalidArgument",
                    "The continuation token is not valid.",
                );
            }
        },
    };
    let (value, next) = page(&items, offset, size);
    let next_link = next.map(|n| {
        format!(
            "{}/{}?{}",
            req.base,
            path,
            req.query_with("continuationToken", &token::encode(n, kind))
        )
    });
    json_response(200, &json!({"value": value, "nextLink": next_link}))
}

fn patch_twin(req: &ApiRequest, s: &mut TwinsState, id: &str, new_etag: String) -> Response {
    let Some(twin) = s.twins.get(id) else {
        return twin_not_found(req, id);
    };
    let ct = req.header("content-type").unwrap_or("");
    if !ct.starts_with("application/json-patch+json") {
        return req.error(
            415,
            "UnsupportedMediaType",
            "The Content-Type must be application/json-patch+json.",
        );
    }
    if !if_match_ok(req, twin.get("$etag").and_then(Value::as_str).unwrap_or("")) {
        return precondition_failed(req);
    }
    let Some(ops) = req.json() else {
        return req.error(400, "JsonPatchInvalid", "The body is not valid JSON.");
    };
    let mut updated = match patch::apply(twin, &ops) {
        Ok(t) => t,
        Err(msg) => return req.error(400, "JsonPatchInvalid", &msg),
    };
    updated.insert("$etag".into(), json!(new_etag));
    if let Some(meta) = updated.get_mut("$metadata").and_then(Value::as_object_mut) {
        let now = req.now.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        meta.insert("$lastUpdateTime".into(), json!(now));
    }
    let resp = with_etag(empty(204), &updated);
    s.twins.insert(id.to_string(), updated);
    resp
}

fn delete_twin(req: &ApiRequest, s: &mut TwinsState, id: &str) -> Response {
    let Some(twin) = s.twins.get(id) else {
        return twin_not_found(req, id);
    };
    if !if_match_ok(req, twin.get("$etag").and_then(Value::as_str).unwrap_or("")) {
        return precondition_failed(req);
    }
    let referenced = s
        .relationships
        .iter()
        .any(|((src, _), r)| src == id || r.get("$targetId").and_then(Value::as_str) == Some(id));
    if referenced {
        return req.error(
            400,
            "RelationshipsNotDeleted",
            &format!("Digital twin with ID {id} still has relationships. Delete all incoming and outgoing relationships of this twin before deleting it."),
        );
    }
    s.twins.remove(id);
    empty(204)
}

fn query(req: &ApiRequest, s: &TwinsState, size: usize) -> Response {
    let body = req.json().unwrap_or(Value::Null);
    let (text, offset) = match (
        body.get("continuationToken").and_then(Value::as_str),
        body.get("query").and_then(Value::as_str),
    ) {
        (Some(t), _) => match token::decode(t) {
            Some((o, q)) => (q, o),
            None => {
                return req.error(
                    400,
                    "InvalidArgument",
                    "The continuation token is not valid.",
                );
            }
        },
        (None, Some(q)) => (q.to_string(), 0),
        (None, None) => {
            return req.error(
                400,
                "SqlQueryError",
                "The body must contain 'query' or 'continuationToken'.",
            );
        }
    };
    let q = match sql::parse(&text) {
        Ok(q) if q.from.eq_ignore_ascii_case("DIGITALTWINS") => q,
        Ok(q) => {
            return req.error(
                400,
                "SqlQueryError",
                &format!("Querying '{}' is not supported by the emulator.", q.from),
            );
        }
        Err(msg) => {
            return req.error(
                400,
                "SqlQueryError",
                &format!("Query parsing failed: {msg}"),
            );
        }
    };
    let matching: Vec<Value> = s
        .twins
        .values()
        .filter(|t| q.matches(t))
        .map(|t| Value::Object(t.clone()))
        .collect();
    let (value, next) = page(&matching, offset, size);
    let continuation = next.map(|n| token::encode(n, &text));
    let mut resp = json_response(
        200,
        &json!({"value": value, "continuationToken": continuation}),
    );
    set_header(&mut resp, "query-charge", &format!("{}", 1 + value.len()));
    resp
}
