//! Requests and runs: intake (with idempotency keys), reading, and the decisions of people
//! (approve, decline, extend), each through the same workflow functions as the command line.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::{IntoParams, ToSchema};

use super::auth::Caller;
use super::error::{ApiError, ErrorBody};
use super::views::{
    ReasonBody, RequestList, RequestView, RequiredReason, RunDetail, RunList, RunSummary,
};
use super::{ApiState, READ_ROLES};
use crate::journal::{RequestRecord, RequestState};
use crate::model::{ApiRole, Request};
use crate::workflow::{ImportFormat, is_duplicate, read_rows, reject_reserved_id};

/// Most runs looked through for a request's runs.
const RUNS_SCANNED: u32 = 100_000;

/// A new request: a request file's fields as JSON. `id` is optional (one is made, or derived
/// from the `Idempotency-Key` header), and so is `tenant` for a token of one tenant.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewRequest {
    /// Request id, unique in the project. Posting the same id with the same body again
    /// returns the recorded request; with another body, 409. Not with `Idempotency-Key`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// `access`, `export`, `rectify`, `restrict` or `delete`.
    pub kind: String,
    /// The tenant whose services hold the data; may be left out by a token of one tenant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// `gdpr` (default) or `ccpa`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jurisdiction: Option<String>,
    /// The date it was received (default: today).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub received: Option<NaiveDate>,
    /// The subject's identities, e.g. `{"email": "jane@example.com"}`; a value may be a list.
    #[schema(value_type = Object)]
    pub subject: BTreeMap<String, serde_json::Value>,
    /// For `rectify`: the corrected values, by field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub corrections: Option<serde_json::Map<String, serde_json::Value>>,
    /// A free-text note from intake.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// The subject's name, for the letter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The language to answer in, e.g. `de`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
}

/// Filters of the request list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Only requests in this state.
    #[param(pattern = "^(received|approved|declined|running|waiting|completed|failed)$")]
    pub state: Option<String>,
    /// Only requests of this tenant.
    pub tenant: Option<String>,
}

/// The id of a request recorded with an `Idempotency-Key`: the key, scoped to the tenant.
fn keyed_id(tenant: &str, key: &str) -> String {
    let digest = Sha256::digest(format!("{tenant}\n{key}").as_bytes());
    format!("r-{}", &hex::encode(digest)[..24])
}

/// Records a request. Idempotent by its id: the `Idempotency-Key` header, or the body's
/// `id`. The same key with the same body returns the request recorded first (200); with
/// another body, 409.
#[utoipa::path(post, path = "/v1/requests", tag = "requests",
    request_body = NewRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe: the same key and body record one request")),
    responses(
        (status = 201, description = "Recorded", body = RequestView),
        (status = 200, description = "Recorded before with this key and body", body = RequestView),
        (status = 400, description = "Not JSON, or not a request's shape", body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 409, description = "The key or id was used with another body", body = ErrorBody),
        (status = 422, description = "Not a valid request", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn create(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    caller.require(&[ApiRole::Intake, ApiRole::Operator])?;
    let mut new: NewRequest = super::json_body(&body)?;
    let tenant = match new
        .tenant
        .take()
        .or_else(|| caller.only_tenant().map(str::to_owned))
    {
        Some(t) => t,
        None => {
            return Err(ApiError::invalid(
                "give the request's `tenant`: this token serves several",
            ));
        }
    };
    if !caller.sees(&tenant) {
        return Err(ApiError::forbidden(format!(
            "API token `{}` may not record requests of tenant `{tenant}`",
            caller.name
        )));
    }
    let key = match headers.get("idempotency-key") {
        None => None,
        Some(v) => match v.to_str() {
            Ok(k) if !k.trim().is_empty() && k.len() <= 255 => Some(k.trim().to_owned()),
            _ => {
                return Err(ApiError::malformed(
                    "the Idempotency-Key header must be 1 to 255 visible ASCII characters",
                ));
            }
        },
    };
    new.id = match (new.id.take(), key) {
        (Some(_), Some(_)) => {
            return Err(ApiError::invalid(
                "give either an `id` or an Idempotency-Key header, not both: the id is itself the idempotency key",
            ));
        }
        // The ids of requests received through the Data Rights Protocol say which agent
        // may read them; no other caller may make one.
        (Some(id), None) => {
            reject_reserved_id(&id)?;
            Some(id)
        }
        (None, Some(k)) => Some(keyed_id(&tenant, &k)),
        (None, None) => Some(format!("r-{}", uuid::Uuid::now_v7().simple())),
    };
    new.tenant = Some(tenant);
    let received_given = new.received.is_some();
    let request = state.parse_request(&new)?;
    let wf = state.workflow(&caller);
    match wf.receive(&request, Some(&caller.actor())).await {
        Ok(received) => {
            let today = chrono::Utc::now().date_naive();
            let record = RequestRecord {
                state: received.state,
                reason: None,
                received: request.received,
                deadline: request.deadline(false),
                extended: false,
                extension_reason: None,
                created_at: chrono::Utc::now(),
                updated_at: chrono::Utc::now(),
                request,
            };
            let mut view = RequestView::of(&record, today);
            view.approval_needed = received.approval_needed;
            Ok((StatusCode::CREATED, Json(view)).into_response())
        }
        Err(e) if is_duplicate(&e) => {
            let existing = state.ws.store.request(&request.id).await?;
            let mut asked = request;
            if !received_given {
                asked.received = existing.request.received;
            }
            if !caller.sees(&existing.request.tenant) || existing.request != asked {
                return Err(ApiError::conflict(format!(
                    "request `{}` is already recorded with another body; a retry must send the same body (use a new Idempotency-Key or id for a new request)",
                    asked.id
                )));
            }
            let view = state.view(&existing).await?;
            Ok((StatusCode::OK, Json(view)).into_response())
        }
        Err(e) => Err(e.into()),
    }
}

/// The requests of the token's tenants, open ones first, nearest deadline first.
#[utoipa::path(get, path = "/v1/requests", tag = "requests", params(ListQuery),
    responses((status = 200, body = RequestList), (status = 400, description = "An unknown `state`", body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn list(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    Query(q): Query<ListQuery>,
) -> Result<Json<RequestList>, ApiError> {
    caller.require(READ_ROLES)?;
    let wanted_state = match q.state.as_deref() {
        None => None,
        Some(s) => Some(RequestState::parse(s).ok_or_else(|| {
            ApiError::malformed(format!(
                "`state={s}` is not a request state (received, approved, declined, running, waiting, completed, failed)"
            ))
        })?),
    };
    let today = chrono::Utc::now().date_naive();
    let mut records: Vec<RequestRecord> = state
        .ws
        .store
        .requests()
        .await?
        .into_iter()
        .filter(|r| caller.sees(&r.request.tenant))
        .filter(|r| q.tenant.as_ref().is_none_or(|t| &r.request.tenant == t))
        .filter(|r| wanted_state.is_none_or(|s| r.state == s))
        .collect();
    records.sort_by(|a, b| {
        (a.state.is_final(), a.deadline, &a.request.id).cmp(&(
            b.state.is_final(),
            b.deadline,
            &b.request.id,
        ))
    });
    Ok(Json(RequestList {
        requests: records.iter().map(|r| RequestView::of(r, today)).collect(),
    }))
}

/// One request, with its newest run.
#[utoipa::path(get, path = "/v1/requests/{id}", tag = "requests",
    params(("id" = String, Path, description = "Request id")),
    responses((status = 200, body = RequestView), (status = 400, description = "A path that is not UTF-8", body = ErrorBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn read(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<RequestView>, ApiError> {
    caller.require(READ_ROLES)?;
    let record = state.visible_request(&caller, &id).await?;
    Ok(Json(state.view(&record).await?))
}

/// The runs of a request, newest first.
#[utoipa::path(get, path = "/v1/requests/{id}/runs", tag = "requests",
    params(("id" = String, Path, description = "Request id")),
    responses((status = 200, body = RunList), (status = 400, description = "A path that is not UTF-8", body = ErrorBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn runs(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<RunList>, ApiError> {
    caller.require(READ_ROLES)?;
    let record = state.visible_request(&caller, &id).await?;
    let runs = state.ws.store.runs(RUNS_SCANNED).await?;
    Ok(Json(RunList {
        runs: runs
            .iter()
            .filter(|r| r.request_id == record.request.id)
            .map(RunSummary::of)
            .collect(),
    }))
}

/// A run and its journaled steps.
#[utoipa::path(get, path = "/v1/runs/{run}", tag = "runs",
    params(("run" = String, Path, description = "Run id")),
    responses((status = 200, body = RunDetail), (status = 400, description = "A path that is not UTF-8", body = ErrorBody), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn run(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    Path(run): Path<String>,
) -> Result<Json<RunDetail>, ApiError> {
    caller.require(READ_ROLES)?;
    let run = state.visible_run(&caller, &run).await?;
    let outcomes = state.ws.store.outcomes(&run.id).await?;
    Ok(Json(RunDetail::of(&run, &outcomes)))
}

/// Approves a received request (role `approver`), in the token's name.
#[utoipa::path(post, path = "/v1/requests/{id}/approve", tag = "requests",
    params(("id" = String, Path, description = "Request id")), request_body(content = Option<ReasonBody>),
    responses((status = 200, body = RequestView), (status = 400, description = "Not JSON, or not a reason's shape", body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, description = "The lifecycle does not allow it", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn approve(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<RequestView>, ApiError> {
    caller.require(&[ApiRole::Approver])?;
    let reason = reason_body(&body)?.reason;
    state.visible_request(&caller, &id).await?;
    state
        .workflow(&caller)
        .approve_request_because(&id, &caller.actor(), reason.as_deref())
        .await?;
    Ok(Json(state.view(&state.ws.store.request(&id).await?).await?))
}

/// Declines a request with the reason (role `approver`).
#[utoipa::path(post, path = "/v1/requests/{id}/decline", tag = "requests",
    params(("id" = String, Path, description = "Request id")), request_body = RequiredReason,
    responses((status = 200, body = RequestView), (status = 400, description = "Not JSON, or not a reason's shape", body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, description = "No reason given", body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn decline(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<RequestView>, ApiError> {
    caller.require(&[ApiRole::Approver])?;
    let reason = required_reason(&body)?;
    state.visible_request(&caller, &id).await?;
    state
        .workflow(&caller)
        .decline_request(&id, &reason, Some(&caller.actor()))
        .await?;
    Ok(Json(state.view(&state.ws.store.request(&id).await?).await?))
}

/// Extends the deadline once, with the reason (role `approver` or `operator`).
#[utoipa::path(post, path = "/v1/requests/{id}/extend", tag = "requests",
    params(("id" = String, Path, description = "Request id")), request_body = RequiredReason,
    responses((status = 200, body = RequestView), (status = 400, description = "Not JSON, or not a reason's shape", body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, description = "Already extended", body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn extend(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<RequestView>, ApiError> {
    caller.require(&[ApiRole::Approver, ApiRole::Operator])?;
    let reason = required_reason(&body)?;
    state.visible_request(&caller, &id).await?;
    let record = state
        .workflow(&caller)
        .extend_request(&id, &reason, Some(&caller.actor()))
        .await?;
    Ok(Json(state.view(&record).await?))
}

fn reason_body(body: &[u8]) -> Result<ReasonBody, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(ReasonBody::default());
    }
    // The approval's body is optional, `null` included, as the OpenAPI document says.
    let body: Option<ReasonBody> = super::json_body(body)?;
    Ok(body.unwrap_or_default())
}

fn required_reason(body: &[u8]) -> Result<String, ApiError> {
    reason_body(body)?
        .reason
        .filter(|r| !r.trim().is_empty())
        .ok_or_else(|| ApiError::invalid("give the reason: {\"reason\": \"...\"}"))
}

impl ApiState {
    /// Validates a new request like a request file.
    pub(super) fn parse_request(&self, new: &NewRequest) -> Result<Request, ApiError> {
        let text = serde_json::to_string(new).map_err(|e| ApiError::internal(e.to_string()))?;
        crate::load::load_request_str("(request body)", &text).map_err(|d| {
            ApiError::invalid(
                d.iter()
                    .map(|d| d.message.clone())
                    .collect::<Vec<_>>()
                    .join("; "),
            )
        })
    }

    /// The view of a record with its newest run.
    async fn view(&self, record: &RequestRecord) -> Result<RequestView, ApiError> {
        let mut view = RequestView::of(record, chrono::Utc::now().date_naive());
        view.run = self
            .ws
            .store
            .latest_run(&record.request.id)
            .await?
            .as_ref()
            .map(RunSummary::of);
        Ok(view)
    }
}

/// The tenant of rows without one.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ImportQuery {
    /// The tenant of rows without a `tenant` (default: the token's, when it has one).
    pub tenant: Option<String>,
}

/// Records many requests from CSV (`text/csv`, a header row naming the columns) or JSON
/// Lines (`application/x-ndjson`) in one transaction, as `dsrctl request import` does: rows
/// that are not valid are rejected with their line numbers, the others recorded; rows
/// already imported are skipped.
#[utoipa::path(post, path = "/v1/requests/import", tag = "requests", params(ImportQuery),
    request_body(content = String, content_type = "text/csv", description = "CSV with a header, or JSON Lines with Content-Type application/x-ndjson"),
    responses((status = 200, body = ImportView), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody)),
    security(("bearer" = [])))]
pub async fn import(
    State(state): State<Arc<ApiState>>,
    caller: Caller,
    Query(q): Query<ImportQuery>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<ImportView>, ApiError> {
    caller.require(&[ApiRole::Intake, ApiRole::Operator])?;
    let content_type = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("text/csv");
    let format = if content_type.contains("ndjson") || content_type.contains("jsonl") {
        ImportFormat::JsonLines
    } else {
        ImportFormat::Csv
    };
    let rows = read_rows(&body, format).map_err(|e| ApiError::malformed(e.to_string()))?;
    let tenant = q
        .tenant
        .clone()
        .or_else(|| caller.only_tenant().map(str::to_owned));
    let report = state
        .workflow(&caller)
        .import(
            rows,
            tenant.as_deref(),
            |t| caller.sees(t),
            Some(&caller.actor()),
        )
        .await?;
    Ok(Json(ImportView {
        rows: report.rows,
        created: report.created,
        existing: report.existing.len(),
        repeated: report
            .repeated
            .into_iter()
            .map(|(line, first)| RepeatedRow { line, first })
            .collect(),
        rejected: report
            .rejected
            .into_iter()
            .map(|(line, why)| RejectedRow { line, why })
            .collect(),
    }))
}

/// What an import did.
#[derive(Debug, Serialize, ToSchema)]
pub struct ImportView {
    /// Rows read.
    pub rows: usize,
    /// The ids of the requests recorded now.
    pub created: Vec<String>,
    /// Rows recorded by an earlier import.
    pub existing: usize,
    /// Rows repeating an earlier row of the same body.
    pub repeated: Vec<RepeatedRow>,
    /// Rows rejected, with why; nothing of them was recorded.
    pub rejected: Vec<RejectedRow>,
}

/// A row repeating an earlier one.
#[derive(Debug, Serialize, ToSchema)]
pub struct RepeatedRow {
    /// Its line.
    pub line: u64,
    /// The line of the first.
    pub first: u64,
}

/// A rejected row.
#[derive(Debug, Serialize, ToSchema)]
pub struct RejectedRow {
    /// Its line.
    pub line: u64,
    /// Why.
    pub why: String,
}
