//! The evidence report and the export package of a run, built as `dsrctl report` builds them.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa::IntoParams;

use super::ApiState;
use super::auth::Caller;
use super::error::{ApiError, ErrorBody};
use crate::cli::cmd_report::{build_run_package, render_report};
use crate::model::ApiRole;
use crate::report::Format;

/// The report's format.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReportQuery {
    /// `json` (default), `html` or `md`.
    #[param(pattern = "^(json|html|md)$")]
    pub format: Option<String>,
}

/// The signed evidence report of a run (roles `operator`, `approver`, `auditor`).
#[utoipa::path(get, path = "/v1/runs/{run}/report", tag = "runs",
    params(("run" = String, Path, description = "Run id"), ReportQuery),
    responses((status = 200, description = "The signed report: JSON, or HTML or Markdown as `format` asks", content_type = "application/json"),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn report(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    Path(run): Path<String>,
    Query(q): Query<ReportQuery>,
) -> Result<Response, ApiError> {
    caller.require(&[ApiRole::Operator, ApiRole::Approver, ApiRole::Auditor])?;
    let (format, content_type) = match q.format.as_deref().unwrap_or("json") {
        "json" => (Format::Json, "application/json"),
        "html" => (Format::Html, "text/html; charset=utf-8"),
        "md" => (Format::Markdown, "text/markdown; charset=utf-8"),
        other => {
            return Err(ApiError::malformed(format!(
                "`format={other}`: the report is json, html or md"
            )));
        }
    };
    let run = state.visible_run(&caller, &run).await?;
    let outcomes = state.ws.store.outcomes(&run.id).await?;
    let text = render_report(
        &state.ws,
        &run,
        &outcomes,
        format,
        "evidence",
        chrono::Utc::now(),
    )
    .await?;
    Ok(([(header::CONTENT_TYPE, content_type)], text).into_response())
}

/// The export package of a run as a zip file (role `operator`: it holds the subject's data),
/// with its signed manifest and `SHA256SUMS`.
#[utoipa::path(get, path = "/v1/runs/{run}/package", tag = "runs",
    params(("run" = String, Path, description = "Run id")),
    responses((status = 200, description = "The package", content_type = "application/zip"),
        (status = 400, description = "A path that is not UTF-8", body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn package(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    Path(run): Path<String>,
) -> Result<Response, ApiError> {
    caller.require(&[ApiRole::Operator])?;
    let run = state.visible_run(&caller, &run).await?;
    let outcomes = state.ws.store.outcomes(&run.id).await?;
    let scratch = tempfile::tempdir().map_err(|e| ApiError::internal(e.to_string()))?;
    let name = format!(
        "{}.zip",
        crate::deliver::archive::safe_file_name(&run.plan.request.id)
    );
    let out = scratch.path().join(&name);
    build_run_package(&state.ws, &run, &outcomes, &out, chrono::Utc::now()).await?;
    let bytes = tokio::fs::read(&out)
        .await
        .map_err(|e| ApiError::internal(format!("reading the package: {e}")))?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/zip".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
        ],
        bytes,
    )
        .into_response())
}
