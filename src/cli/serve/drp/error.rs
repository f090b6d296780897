//! DRP's error answer (section 3.06): `{"code": "400", "message": "...", "fatal": true}`, the
//! HTTP status repeated as a string for clients that cannot read headers.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::cli::serve::ApiError;

/// A DRP call refused.
#[derive(Debug)]
pub struct DrpError {
    /// The HTTP status.
    pub status: StatusCode,
    /// What went wrong.
    pub message: String,
    /// Whether retrying cannot help (`fatal` of the error body).
    pub fatal: bool,
    /// Answer with no body (the pair-wise key setup's refusal, section 2.05.1).
    pub bare: bool,
}

/// The body of a DRP error answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DrpErrorBody {
    /// The HTTP status code, as a string.
    pub code: String,
    /// What went wrong.
    pub message: String,
    /// `true` when sending the same message again cannot succeed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fatal: Option<bool>,
}

impl DrpError {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        DrpError {
            status,
            message: message.into(),
            fatal: false,
            bare: false,
        }
    }

    /// 400: not a message of the protocol; sending it again cannot help.
    pub fn bad(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message).fatal()
    }

    /// 401: no bearer token.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, message)
    }

    /// 403: an unknown agent or token, a signature that does not verify, a message for
    /// another agent or business, a request of another agent.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, message).fatal()
    }

    /// 404: no such request.
    pub fn not_found(id: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            format!("no data rights request `{id}`"),
        )
        .fatal()
    }

    /// 404: an endpoint this server does not serve.
    pub fn not_found_endpoint(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }

    /// 409: the request's state (or an earlier message) refuses it.
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, message).fatal()
    }

    /// Marks the error as one a retry cannot mend.
    pub fn fatal(mut self) -> Self {
        self.fatal = true;
        self
    }

    /// Answers with the status alone.
    pub fn bare(mut self) -> Self {
        self.bare = true;
        self
    }
}

impl From<ApiError> for DrpError {
    fn from(e: ApiError) -> Self {
        let fatal = e.status.is_client_error();
        DrpError {
            status: e.status,
            message: e.message,
            fatal,
            bare: false,
        }
    }
}

impl IntoResponse for DrpError {
    fn into_response(self) -> Response {
        if self.bare {
            return self.status.into_response();
        }
        let body = DrpErrorBody {
            code: self.status.as_u16().to_string(),
            message: self.message,
            fatal: self.fatal.then_some(true),
        };
        (self.status, Json(body)).into_response()
    }
}
