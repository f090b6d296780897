//! The HTTP API of `dsrctl serve --listen ADDR`: intake, the request lifecycle, manual tasks,
//! evidence reports and export packages for other systems, scoped by API tokens to tenants
//! and roles. Every handler acts through the same workflow functions as the command line,
//! in the token's name (`api:NAME` in the audit log); the worker loop of `serve` runs
//! alongside and executes what the API approves.

mod auth;
mod console;
mod drp;
mod error;
mod metrics;
mod openapi;
mod rejection;
mod reports;
mod requests;
mod step_metrics;
mod tasks;
mod tls;
mod views;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::Request;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::de::DeserializeOwned;

pub use auth::{Caller, Tokens};
pub use drp::{CallbackPass, GIVE_UP_AFTER as CALLBACK_GIVE_UP_AFTER, Notifier};
pub use error::ApiError;
pub use openapi::openapi_json;
pub use step_metrics::StepMetrics;
pub use tls::TlsFiles;

use super::workspace::Workspace;
use crate::journal::{RequestRecord, RunRecord};
use crate::model::ApiRole;
use crate::workflow::Workflow;

/// Roles that may read requests and runs.
const READ_ROLES: &[ApiRole] = &[
    ApiRole::Intake,
    ApiRole::Operator,
    ApiRole::Approver,
    ApiRole::Auditor,
];

/// The largest import body.
const IMPORT_LIMIT: usize = 64 * 1024 * 1024;

/// What every handler shares.
pub struct ApiState {
    ws: Arc<Workspace>,
    tokens: Tokens,
    max_upload: u64,
    worker: String,
    responses: Counts,
    /// The Data Rights Protocol endpoints, when `drp` is configured.
    drp: Option<drp::Drp>,
    /// Step latency and retries of this process's workers.
    steps: Arc<StepMetrics>,
    /// Set on SIGTERM: every call but /healthz and /metrics answers 503.
    draining: Arc<AtomicBool>,
}

/// Answers by HTTP status.
#[derive(Default)]
struct Counts(Mutex<BTreeMap<u16, u64>>);

impl Counts {
    fn add(&self, code: u16) {
        *self
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(code)
            .or_default() += 1;
    }

    fn snapshot(&self) -> Vec<(u16, u64)> {
        let map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        map.iter().map(|(k, v)| (*k, *v)).collect()
    }
}

impl ApiState {
    /// The state of the API over a workspace, acting for `worker`; resolves the tokens'
    /// secrets.
    pub(super) fn new(ws: Arc<Workspace>, worker: &str) -> anyhow::Result<Self> {
        let tokens = Tokens::resolve(&ws.project)?;
        let max_upload = ws
            .project
            .config
            .api
            .as_ref()
            .map_or(25 * 1024 * 1024, |a| a.max_upload_bytes);
        let drp = drp::Drp::resolve(&ws)?;
        Ok(ApiState {
            drp,
            ws,
            tokens,
            max_upload,
            worker: worker.to_owned(),
            responses: Counts::default(),
            steps: Arc::default(),
            draining: Arc::default(),
        })
    }

    /// Renders these step metrics on `/metrics` (the ones the worker loop observes).
    pub(super) fn with_steps(mut self, steps: Arc<StepMetrics>) -> Self {
        self.steps = steps;
        self
    }

    /// Drains when `flag` is set: new calls answer 503 and `/healthz` says `draining`.
    pub(super) fn with_draining(mut self, flag: Arc<AtomicBool>) -> Self {
        self.draining = flag;
        self
    }

    fn is_draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }

    /// How many tokens may call the API.
    pub fn token_count(&self) -> usize {
        self.tokens.len()
    }

    /// Whether the Data Rights Protocol endpoints answer.
    pub fn drp_configured(&self) -> bool {
        self.drp.is_some()
    }

    /// The workflow acting for the caller, under this worker (leases name both).
    fn workflow(&self, caller: &Caller) -> Workflow {
        self.ws
            .workflow_as(&format!("{}@{}", caller.actor(), self.worker), None)
    }

    /// A request the caller may see: another tenant's does not exist for it.
    async fn visible_request(&self, caller: &Caller, id: &str) -> Result<RequestRecord, ApiError> {
        let record = self.ws.store.request(id).await?;
        if !caller.sees(&record.request.tenant) {
            return Err(ApiError::not_found("such request"));
        }
        Ok(record)
    }

    /// A run (by its whole id) the caller may see.
    async fn visible_run(&self, caller: &Caller, id: &str) -> Result<RunRecord, ApiError> {
        let run = self.ws.store.run(id).await?;
        if run.id != id || !caller.sees(&run.plan.request.tenant) {
            return Err(ApiError::not_found("such run"));
        }
        Ok(run)
    }
}

/// The API's routes.
pub fn router(state: Arc<ApiState>) -> Router {
    Router::new()
        .route("/healthz", get(metrics::healthz))
        .route("/metrics", get(metrics::metrics))
        .route("/v1/requests", get(requests::list).post(requests::create))
        .route(
            "/v1/requests/import",
            post(requests::import).layer(axum::extract::DefaultBodyLimit::max(IMPORT_LIMIT)),
        )
        .route("/v1/requests/{id}", get(requests::read))
        .route("/v1/requests/{id}/runs", get(requests::runs))
        .route("/v1/requests/{id}/approve", post(requests::approve))
        .route("/v1/requests/{id}/decline", post(requests::decline))
        .route("/v1/requests/{id}/extend", post(requests::extend))
        .route("/v1/runs/{run}", get(requests::run))
        .route("/v1/runs/{run}/report", get(reports::report))
        .route("/v1/runs/{run}/package", get(reports::package))
        .route("/v1/tasks", get(tasks::list))
        .route("/v1/runs/{run}/tasks/{step}/done", post(tasks::done))
        .route("/v1/runs/{run}/tasks/{step}/fail", post(tasks::fail))
        .route("/.well-known/data-rights.json", get(drp::discovery))
        .route("/v1/agent/{agent_id}", get(drp::agent).post(drp::pair))
        .route("/v1/data-rights-request", post(drp::exercise))
        .route("/v1/data-rights-request/", post(drp::exercise))
        .route(
            "/v1/data-rights-request/{request_id}",
            get(drp::status).delete(drp::revoke),
        )
        .layer(axum::middleware::from_fn(rejection::json_rejections))
        .merge(console::router(state.clone()))
        .fallback(|| async { ApiError::not_found("such endpoint") })
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            refuse_while_draining,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            count_responses,
        ))
        .with_state(state)
}

async fn count_responses(
    axum::extract::State(state): axum::extract::State<Arc<ApiState>>,
    request: Request,
    next: Next,
) -> Response {
    let response = next.run(request).await;
    state.responses.add(response.status().as_u16());
    response
}

/// While the process drains (SIGTERM), refuses every call but `/healthz` and `/metrics` with
/// 503 and `Retry-After`, so a load balancer sends it elsewhere and nothing half-done is
/// started.
async fn refuse_while_draining(
    axum::extract::State(state): axum::extract::State<Arc<ApiState>>,
    request: Request,
    next: Next,
) -> Response {
    let path = request.uri().path();
    if state.is_draining() && path != "/healthz" && path != "/metrics" {
        return ApiError::draining().into_response();
    }
    next.run(request).await
}

/// Parses a JSON body, refusing what is not JSON or not of the shape with 400.
fn json_body<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::malformed(format!("the body is not valid JSON of this call: {e}")))
}

/// Serves the API on `addr` until `shutdown` turns true, over HTTPS when `tls` is given;
/// returns the address bound (the port chosen when `addr` asks for port 0) and the server's
/// task.
pub(super) async fn start(
    state: ApiState,
    addr: SocketAddr,
    tls: Option<axum_server::tls_rustls::RustlsConfig>,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<(SocketAddr, tokio::task::JoinHandle<std::io::Result<()>>)> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("listening on {addr}: {e}"))?;
    let bound = listener.local_addr()?;
    let app = router(Arc::new(state));
    let task = match tls {
        None => tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = shutdown.wait_for(|stop| *stop).await;
                })
                .await
        }),
        Some(config) => {
            let handle = axum_server::Handle::new();
            let server =
                axum_server::from_tcp_rustls(listener.into_std()?, config)?.handle(handle.clone());
            tokio::spawn(async move {
                let _ = shutdown.wait_for(|stop| *stop).await;
                // The calls in flight finish; new connections are refused.
                handle.graceful_shutdown(None);
            });
            tokio::spawn(async move { server.serve(app.into_make_service()).await })
        }
    };
    Ok((bound, task))
}
