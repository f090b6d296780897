//! Axum's own refusals (a query string or path it cannot read: a repeated parameter, bad
//! percent-encoding) come as `text/plain`; the API promises JSON errors, so they are
//! rewritten into the error body of the call: `{"error": "malformed", ...}`, or the Data
//! Rights Protocol's `{"code": "400", ...}` on its paths.

use axum::extract::Request;
use axum::http::header::CONTENT_TYPE;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::drp::DrpError;
use super::error::ApiError;

/// The largest refusal text read back.
const LIMIT: usize = 64 * 1024;

/// Whether `path` is one of the Data Rights Protocol's.
fn is_drp(path: &str) -> bool {
    path.starts_with("/v1/data-rights-request")
        || path.starts_with("/v1/agent/")
        || path.starts_with("/.well-known/")
}

/// Rewrites a plain-text client error into the call's JSON error body.
pub async fn json_rejections(request: Request, next: Next) -> Response {
    let drp = is_drp(request.uri().path());
    let response = next.run(request).await;
    let plain = response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/plain"));
    if !response.status().is_client_error() || !plain {
        return response;
    }
    let status = response.status();
    let text = match axum::body::to_bytes(response.into_body(), LIMIT).await {
        Ok(b) => String::from_utf8_lossy(&b).into_owned(),
        Err(_) => status.to_string(),
    };
    if drp {
        let mut e = DrpError::bad(text);
        e.status = status;
        return e.into_response();
    }
    let mut e = ApiError::malformed(text);
    e.status = status;
    e.into_response()
}
