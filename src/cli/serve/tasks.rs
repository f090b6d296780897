//! Manual tasks: listing them, and recording one done (or failed) with an evidence upload.

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use futures::StreamExt;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use utoipa::IntoParams;

use super::ApiState;
use super::auth::Caller;
use super::error::{ApiError, ErrorBody};
use super::views::{EvidenceView, TaskList, TaskRecorded, TaskView};
use crate::model::ApiRole;
use crate::workflow::{TaskSettlement, open_tasks};

/// Most runs looked through for open tasks.
const RUNS_SCANNED: u32 = 100_000;

/// What comes with a recorded task besides the evidence (the body).
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TaskQuery {
    /// A note on what was done.
    pub note: Option<String>,
    /// The evidence file's name (default `evidence`).
    pub filename: Option<String>,
}

/// The open tasks of the token's tenants, the earliest due first (role `operator`).
#[utoipa::path(get, path = "/v1/tasks", tag = "tasks",
    responses((status = 200, body = TaskList), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn list(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
) -> Result<Json<TaskList>, ApiError> {
    caller.require(&[ApiRole::Operator])?;
    let tasks = open_tasks(state.ws.store.as_ref(), RUNS_SCANNED).await?;
    Ok(Json(TaskList {
        tasks: tasks
            .iter()
            .filter(|t| caller.sees(&t.run.plan.request.tenant))
            .map(|t| TaskView::of(t, &state.ws.project))
            .collect(),
    }))
}

/// Records a task done (role `operator`). The body, when not empty, is the evidence file
/// (any type), read as it streams in up to `api.max_upload_bytes` and stored sealed with its
/// SHA-256. A worker continues the run at its next tick.
#[utoipa::path(post, path = "/v1/runs/{run}/tasks/{step}/done", tag = "tasks",
    params(("run" = String, Path, description = "Run id"),
           ("step" = String, Path, description = "Step instance, step key or step id"), TaskQuery),
    request_body(content = Vec<u8>, content_type = "application/octet-stream", description = "The evidence file (optional)"),
    responses((status = 200, body = TaskRecorded), (status = 400, description = "A query parameter given twice", body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, description = "Not waiting for a person", body = ErrorBody),
        (status = 413, description = "Evidence too large", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn done(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    Path((run, step)): Path<(String, String)>,
    Query(q): Query<TaskQuery>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<TaskRecorded>, ApiError> {
    settle(state, caller, (run, step), q, headers, body, true).await
}

/// Records a task failed (role `operator`): it was not done, or a mutation it settles was not
/// carried out (it is then sent again).
#[utoipa::path(post, path = "/v1/runs/{run}/tasks/{step}/fail", tag = "tasks",
    params(("run" = String, Path, description = "Run id"),
           ("step" = String, Path, description = "Step instance, step key or step id"), TaskQuery),
    responses((status = 200, body = TaskRecorded), (status = 400, description = "A query parameter given twice", body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn fail(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    Path((run, step)): Path<(String, String)>,
    Query(q): Query<TaskQuery>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<TaskRecorded>, ApiError> {
    settle(state, caller, (run, step), q, headers, body, false).await
}

async fn settle(
    state: Arc<ApiState>,
    caller: Caller,
    (run, step): (String, String),
    q: TaskQuery,
    headers: HeaderMap,
    body: Body,
    done: bool,
) -> Result<Json<TaskRecorded>, ApiError> {
    caller.require(&[ApiRole::Operator])?;
    // The run first: nothing of another tenant's is read, not even the upload.
    let run = state.visible_run(&caller, &run).await?;
    let limit = state.max_upload;
    let declared = headers
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(ApiError::too_large(limit));
    }
    let mut content = Vec::new();
    let mut hasher = Sha256::new();
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let chunk =
            chunk.map_err(|e| ApiError::malformed(format!("reading the evidence upload: {e}")))?;
        if (content.len() + chunk.len()) as u64 > limit {
            return Err(ApiError::too_large(limit));
        }
        hasher.update(&chunk);
        content.extend_from_slice(&chunk);
    }
    let digest = hex::encode(hasher.finalize());
    let size = content.len() as u64;
    let name = q
        .filename
        .as_deref()
        .map(|n| n.rsplit(['/', '\\']).next().unwrap_or(n).trim().to_owned())
        .filter(|n| !n.is_empty() && n != "." && n != "..")
        .unwrap_or_else(|| "evidence".to_owned());
    let settlement = TaskSettlement {
        by: caller.actor(),
        done,
        note: q.note,
        evidence: if content.is_empty() {
            Vec::new()
        } else {
            vec![(name, content)]
        },
    };
    let (outcome, evidence) = state
        .workflow(&caller)
        .settle_task_for_worker(&run, &step, &settlement)
        .await?;
    if let Some(e) = evidence.iter().find(|e| e.sha256 != digest) {
        return Err(ApiError::internal(format!(
            "the evidence stored as {} has another SHA-256 than the upload",
            e.name
        )));
    }
    Ok(Json(TaskRecorded {
        run: run.id,
        step: outcome.instance,
        status: outcome.status.as_str().to_owned(),
        by: settlement.by,
        evidence: evidence
            .into_iter()
            .map(|e| EvidenceView {
                name: e.name,
                sha256: e.sha256,
                size,
            })
            .collect(),
    }))
}
