//! An API error: its HTTP status and a JSON body `{"error": CODE, "message": TEXT}`.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::store::StoreError;
use crate::workflow::WorkflowError;

/// What the API answers when it does not do what was asked.
#[derive(Debug)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// A stable code, e.g. `not-found`.
    pub code: &'static str,
    /// What went wrong and what to do.
    pub message: String,
}

/// The body of an error answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// A stable code: `unauthorized`, `forbidden`, `not-found`, `malformed`, `invalid`,
    /// `conflict`, `too-large`, `draining` or `internal`.
    pub error: String,
    /// What went wrong and what to do.
    pub message: String,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }

    /// 401: no token, or not a valid one.
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    /// 403: the token lacks the role, or may not act for the tenant.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    /// 404: no such request or run, or one of a tenant the token does not see.
    pub fn not_found(what: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not-found",
            format!("no {what} visible to this API token"),
        )
    }

    /// 400: a body that is not JSON, or not of the expected shape.
    pub fn malformed(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "malformed", message)
    }

    /// 422: a well-formed body that is not a valid request.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid", message)
    }

    /// 409: the lifecycle or an earlier call with the same key refuses it.
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "conflict", message)
    }

    /// 413: an upload larger than allowed.
    pub fn too_large(limit: u64) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too-large",
            format!(
                "the upload is larger than {limit} bytes (`api.max_upload_bytes` in dsrctl.yaml)"
            ),
        )
    }

    /// 503: the process is draining (SIGTERM) and takes no new calls; another instance will.
    pub fn draining() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "draining",
            "this dsrctl is shutting down and takes no new calls; send it again (to another instance)",
        )
    }

    /// 500: anything else; the message says what failed (never a secret or a subject's
    /// data: store and workflow errors name ids only).
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: self.code.to_owned(),
            message: self.message,
        };
        let retry = (self.status == StatusCode::SERVICE_UNAVAILABLE)
            .then_some([(axum::http::header::RETRY_AFTER, "1")]);
        (self.status, retry, Json(body)).into_response()
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match &e {
            StoreError::RequestNotFound(_) => ApiError::not_found("such request"),
            StoreError::RunNotFound(_) | StoreError::Ambiguous(_) => {
                ApiError::not_found("such run")
            }
            StoreError::EvidenceNotFound(_) => ApiError::not_found("such evidence"),
            StoreError::InvalidTransition { .. }
            | StoreError::AlreadyExtended(_)
            | StoreError::DuplicateRequest(_)
            | StoreError::LiveRun(_) => ApiError::conflict(e.to_string()),
            StoreError::ReasonRequired { .. } => ApiError::invalid(e.to_string()),
            _ => ApiError::internal(e.to_string()),
        }
    }
}

impl From<WorkflowError> for ApiError {
    fn from(e: WorkflowError) -> Self {
        match e {
            WorkflowError::Store(s) => s.into(),
            WorkflowError::UnknownTenant { .. } | WorkflowError::ReservedId(_) => {
                ApiError::invalid(e.to_string())
            }
            WorkflowError::Task(m) => ApiError::conflict(m),
            WorkflowError::Leased { .. }
            | WorkflowError::Ended { .. }
            | WorkflowError::Declined { .. } => ApiError::conflict(e.to_string()),
            _ => ApiError::internal(e.to_string()),
        }
    }
}

impl From<anyhow::Error> for ApiError {
    fn from(e: anyhow::Error) -> Self {
        ApiError::internal(crate::cli::error_chain(&e))
    }
}
