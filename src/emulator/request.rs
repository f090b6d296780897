//! A parsed request as the API handlers see it, and response helpers.

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::response::Response;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::faults::Api;

/// One request after the tenant and API prefix were taken off.
pub(crate) struct ApiRequest {
    pub api: Api,
    pub method: Method,
    /// Percent-decoded path segments after the API prefix.
    pub segments: Vec<String>,
    /// Decoded query pairs in order.
    pub query: Vec<(String, String)>,
    pub headers: HeaderMap,
    pub body: Bytes,
    /// `http://host:port/{tenant}/{api prefix}`, for absolute links.
    pub base: String,
    pub tenant: String,
    /// Emulator time when the request arrived.
    pub now: DateTime<Utc>,
    /// Unique id for error bodies.
    pub request_id: String,
}

impl ApiRequest {
    /// The first value of a query parameter (names compared exactly).
    pub fn param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// A header as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The body as JSON, `None` when absent or not JSON.
    pub fn json(&self) -> Option<Value> {
        serde_json::from_slice(&self.body).ok()
    }

    /// Segments as `&str` for matching.
    pub fn path(&self) -> Vec<&str> {
        self.segments.iter().map(String::as_str).collect()
    }

    /// The query string rebuilt with `name` set to `value` (other pairs kept).
    pub fn query_with(&self, name: &str, value: &str) -> String {
        let mut ser = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in self.query.iter().filter(|(k, _)| k != name) {
            ser.append_pair(k, v);
        }
        ser.append_pair(name, value);
        ser.finish().replace('+', "%20")
    }

    /// The error response in this API's documented shape.
    pub fn error(&self, status: u16, code: &str, message: &str) -> Response {
        error_response(self.api, status, code, message, &self.request_id, self.now)
    }
}

/// Builds an error in the shape `api` documents.
pub(crate) fn error_response(
    api: Api,
    status: u16,
    code: &str,
    message: &str,
    request_id: &str,
    now: DateTime<Utc>,
) -> Response {
    let date = now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let body = match api {
        Api::Graph => json!({"error": {"code": code, "message": message,
            "innerError": {"request-id": request_id, "client-request-id": request_id, "date": date}}}),
        Api::DigitalTwins => json!({"error": {"code": code, "message": message}}),
        Api::Dps => json!({"errorCode": dps_error_number(status), "trackingId": request_id,
            "message": message, "info": {"code": code}, "timestampUtc": date}),
        Api::IotCentral => json!({"error": {"code": code, "message": message,
            "requestId": request_id, "time": date}}),
        Api::OAuth => json!({"error": code, "error_description": message}),
    };
    let mut resp = json_response(status, &body);
    if matches!(api, Api::DigitalTwins | Api::Dps) {
        set_header(&mut resp, "x-ms-error-code", code);
    }
    resp
}

/// DPS reports errors with six-digit numbers: status followed by a detail number.
fn dps_error_number(status: u16) -> u32 {
    u32::from(status) * 1000 + 1
}

/// A JSON response.
pub(crate) fn json_response(status: u16, body: &Value) -> Response {
    let mut resp = Response::new(Body::from(body.to_string()));
    *resp.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    resp
}

/// An empty response (204, 202).
pub(crate) fn empty(status: u16) -> Response {
    let mut resp = Response::new(Body::empty());
    *resp.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    resp
}

/// Sets a header, ignoring values that are not valid header text.
pub(crate) fn set_header(resp: &mut Response, name: &str, value: &str) {
    if let (Ok(n), Ok(v)) = (
        HeaderName::from_bytes(name.as_bytes()),
        HeaderValue::from_str(value),
    ) {
        resp.headers_mut().insert(n, v);
    }
}

/// Whether an `If-Match` header allows a change to an object with `etag`.
/// Quotes and the weak prefix are compared loosely, `*` matches anything.
pub(crate) fn if_match_ok(req: &ApiRequest, etag: &str) -> bool {
    let Some(wanted) = req.header("if-match") else {
        return true;
    };
    let norm = |s: &str| {
        s.trim()
            .trim_start_matches("W/")
            .trim_matches('"')
            .to_string()
    };
    wanted.trim() == "*" || wanted.split(',').any(|w| norm(w) == norm(etag))
}

/// Offset-based continuation tokens: opaque text for clients, checked on the way back.
pub(crate) mod token {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    /// Encodes a position (and the query it belongs to) as an opaque token.
    pub fn encode(offset: usize, query: &str) -> String {
        URL_SAFE_NO_PAD.encode(format!("{offset}\n{query}"))
    }

    /// Decodes a token made by [`encode`]; `None` when it is not one.
    pub fn decode(token: &str) -> Option<(usize, String)> {
        let bytes = URL_SAFE_NO_PAD.decode(token.trim()).ok()?;
        let text = String::from_utf8(bytes).ok()?;
        let (offset, query) = text.split_once('\n')?;
        Some((offset.parse().ok()?, query.to_string()))
    }
}

/// The page `[offset, offset + size)` of `items` and the next offset if more remain.
pub(crate) fn page<T: Clone>(items: &[T], offset: usize, size: usize) -> (Vec<T>, Option<usize>) {
    let end = offset.saturating_add(size).min(items.len());
    let slice = items.get(offset.min(items.len())..end).unwrap_or_default();
    let next = (end < items.len()).then_some(end);
    (slice.to_vec(), next)
}
