//! `/healthz` and `/metrics` (Prometheus text format), without a token: what a load balancer
//! and a scraper ask. They hold counts only, never an id or a subject's data.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use super::ApiState;
use crate::journal::{RequestState, RunMode};

/// Most runs counted by `/metrics`.
const RUNS_COUNTED: u32 = 100_000;

/// Whether the process serves and reaches its state store.
#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    /// `ok`; `draining` after SIGTERM (the process finishes what it holds and takes nothing
    /// new); `unavailable` when the state store does not answer.
    pub status: String,
    /// The worker's name.
    pub worker: String,
}

/// 200 when the state store answers and the process is not draining, else 503: the
/// readiness check of a load balancer or Kubernetes.
#[utoipa::path(get, path = "/healthz", tag = "operations",
    responses((status = 200, body = Health), (status = 503, body = Health)))]
pub async fn healthz(State(state): State<Arc<ApiState>>) -> Response {
    let draining = state.is_draining();
    let ok = !draining && state.ws.store.audit_head().await.is_ok();
    let health = Health {
        status: if draining {
            "draining"
        } else if ok {
            "ok"
        } else {
            "unavailable"
        }
        .to_owned(),
        worker: state.worker.clone(),
    };
    let status = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(health)).into_response()
}

/// Requests by state, overdue requests and apply runs by status (read from the state store,
/// so the same in every process sharing it); the API's answers by status code, and step
/// latency, retries and ends per connector of this process's workers, since it started
/// (sum them over the processes).
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain")))]
pub async fn metrics(State(state): State<Arc<ApiState>>) -> Response {
    match render(&state).await {
        Ok(text) => ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response(),
        Err(e) => (StatusCode::SERVICE_UNAVAILABLE, e.to_string()).into_response(),
    }
}

async fn render(state: &ApiState) -> Result<String, crate::store::StoreError> {
    let today = chrono::Utc::now().date_naive();
    let requests = state.ws.store.requests().await?;
    let mut by_state: BTreeMap<&str, u64> =
        RequestState::ALL.iter().map(|s| (s.as_str(), 0)).collect();
    let mut overdue = 0u64;
    for r in &requests {
        *by_state.entry(r.state.as_str()).or_default() += 1;
        if !r.state.is_final() && r.days_left(today) < 0 {
            overdue += 1;
        }
    }
    let runs = state.ws.store.runs(RUNS_COUNTED).await?;
    let mut by_status: BTreeMap<&str, u64> = BTreeMap::new();
    for r in runs.iter().filter(|r| r.mode == RunMode::Apply) {
        *by_status.entry(r.status.as_str()).or_default() += 1;
    }
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# HELP dsrctl_requests Recorded requests by lifecycle state."
    );
    let _ = writeln!(out, "# TYPE dsrctl_requests gauge");
    for (s, n) in &by_state {
        let _ = writeln!(out, "dsrctl_requests{{state=\"{s}\"}} {n}");
    }
    let _ = writeln!(
        out,
        "# HELP dsrctl_requests_overdue Open requests past their deadline."
    );
    let _ = writeln!(out, "# TYPE dsrctl_requests_overdue gauge");
    let _ = writeln!(out, "dsrctl_requests_overdue {overdue}");
    let _ = writeln!(out, "# HELP dsrctl_runs Apply runs by status.");
    let _ = writeln!(out, "# TYPE dsrctl_runs gauge");
    for s in [
        "running",
        "waiting",
        "completed",
        "failed",
        "interrupted",
        "abandoned",
    ] {
        let n = by_status.get(s).copied().unwrap_or(0);
        let _ = writeln!(out, "dsrctl_runs{{status=\"{s}\"}} {n}");
    }
    let _ = writeln!(
        out,
        "# HELP dsrctl_api_responses_total API answers by HTTP status since start."
    );
    let _ = writeln!(out, "# TYPE dsrctl_api_responses_total counter");
    for (code, n) in state.responses.snapshot() {
        let _ = writeln!(out, "dsrctl_api_responses_total{{code=\"{code}\"}} {n}");
    }
    state.steps.render(&mut out);
    Ok(out)
}
