//! Emulators of the seed services' REST APIs, for end-to-end tests and demos.
//!
//! One axum server on 127.0.0.1 serves every API, with in-memory state per tenant
//! seeded from a [`Fixture`]. The first path segment selects the tenant (unknown → 404),
//! the second the API:
//!
//! | API | base URL |
//! |---|---|
//! | Microsoft Graph | `http://ADDR/{tenant}/graph/v1.0` |
//! | Azure Digital Twins | `http://ADDR/{tenant}/adt` (`?api-version=2023-10-31`) |
//! | Device Provisioning Service | `http://ADDR/{tenant}/dps` (`?api-version=2021-10-01`) |
//! | IoT Central | `http://ADDR/{tenant}/iotc/api` (`?api-version=2022-07-31`) |
//! | OAuth2 token (client credentials) | `POST http://ADDR/{tenant}/oauth2/token` |
//!
//! Every API call needs `Authorization: Bearer <non-empty token>` (DPS and IoT Central
//! also take `SharedAccessSignature ...`). Tests inspect [`Emulator::calls`], inject
//! throttling with [`Emulator::set_fault`], read state with [`Emulator::snapshot`] and
//! move the emulator clock with [`Emulator::advance_clock`].
//!
//! Conventions worth knowing:
//! - Lists and queries return at most [`Settings::page_size`] items per page (default 2);
//!   `$top`, `max-items-per-page` and `x-ms-max-item-count` can only make pages smaller,
//!   as the real services may return fewer items than asked for.
//! - The emulator clock is frozen unless [`Settings::realtime_clock`] is set; deleted
//!   Graph users are purged [`Settings::purge_after_days`] after deletion, and a
//!   personal-data export completes [`Settings::export_duration_secs`] after submission
//!   (`notStarted` before any time passed, `running` in between).
//! - IoT Central has no owner on devices; the fixture's devices carry an `owner` email
//!   (stand-in for a cloud property) that `GET /api/devices?$filter=owner eq '...'` matches.
//! - Tokens from the token endpoint name their tenant; another tenant answers them 401.

mod auth;
mod contoso;
mod data_policy;
pub mod digital_twins;
pub mod dps;
mod faults;
mod fixture;
pub mod graph;
pub mod iot_central;
mod odata;
mod patch;
mod request;
#[cfg(feature = "saas-emulators")]
pub mod saas;
mod sql;
mod state;
mod yaml;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::header;
use axum::response::Response;
use percent_encoding::percent_decode_str;
use serde_json::Value;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use faults::{Api, Fault, RecordedCall};
pub use fixture::{
    DpsFixture, Fixture, FixtureError, GraphFixture, IotCentralFixture, Settings, TenantFixture,
    TwinsFixture,
};

use request::{ApiRequest, error_response, set_header};
use state::Shared;

/// Largest request body the emulator reads.
const MAX_BODY: usize = 8 * 1024 * 1024;

/// A running emulator. Dropping it (or [`Emulator::shutdown`]) stops the server.
pub struct Emulator {
    /// Address the server listens on.
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

/// Starts an emulator on `addr` (port 0 picks a free port) serving `fixture`.
pub async fn start(fixture: Fixture, addr: SocketAddr) -> std::io::Result<Emulator> {
    fixture
        .check()
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    let shared = Arc::new(Shared::new(fixture, format!("http://{addr}")));
    let app = Router::new().fallback(dispatch).with_state(shared.clone());
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let serve = axum::serve(listener, app).with_graceful_shutdown(async move {
            let _ = stopped.await;
        });
        if let Err(e) = serve.await {
            tracing::warn!(error = %e, "emulator server stopped with an error");
        }
    });
    Ok(Emulator {
        addr,
        shared,
        stop: Some(stop),
        task: Some(task),
    })
}

impl Emulator {
    /// `http://ADDR/{tenant}`: the root under which the tenant's APIs live.
    pub fn tenant_url(&self, tenant: &str) -> String {
        format!("http://{}/{tenant}", self.addr)
    }

    /// The base URL a connector for `api` of `tenant` is configured with, matching the
    /// real services' bases: `.../graph/v1.0`, `.../adt`, `.../dps`, `.../iotc/api`,
    /// and for [`Api::OAuth`] the token endpoint `.../oauth2/v2.0/token`.
    pub fn api_base(&self, tenant: &str, api: Api) -> String {
        let rest = match api {
            Api::IotCentral => "iotc/api",
            Api::OAuth => "oauth2/v2.0/token",
            other => base_prefix(other),
        };
        format!("{}/{rest}", self.tenant_url(tenant))
    }

    /// Every call received so far, in order.
    pub fn calls(&self) -> Vec<RecordedCall> {
        self.shared.lock().calls.clone()
    }

    /// Forgets the recorded calls.
    pub fn clear_calls(&self) {
        self.shared.lock().calls.clear();
    }

    /// Adds a fault; faults are matched in the order they were added.
    pub fn set_fault(&self, fault: Fault) {
        self.shared.lock().faults.push(fault);
    }

    /// Removes every pending fault.
    pub fn clear_faults(&self) {
        self.shared.lock().faults.clear();
    }

    /// The tenant's whole state as JSON (`Value::Null` for an unknown tenant):
    /// `{graph: {users, deletedItems, dataPolicyOperations}, digitalTwins: {twins,
    /// relationships}, dps: {enrollments, enrollmentGroups, registrations},
    /// iotCentral: {users, roles, devices}}`.
    pub fn snapshot(&self, tenant: &str) -> Value {
        let mut inner = self.shared.lock();
        inner.tick();
        let now = inner.now();
        let secs = inner.settings.export_duration_secs;
        inner
            .tenants
            .get(tenant)
            .map_or(Value::Null, |t| t.snapshot(now, secs))
    }

    /// Moves the emulator clock forward (purges expired deleted users, advances exports).
    pub fn advance_clock(&self, d: Duration) {
        let mut inner = self.shared.lock();
        inner.clock.offset += chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX);
        inner.tick();
    }

    /// The emulator clock now.
    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.shared.lock().now()
    }

    /// Stops the server and waits until it has stopped.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

fn decode(segment: &str) -> String {
    percent_decode_str(segment).decode_utf8_lossy().into_owned()
}

/// Entry point of every request: record, resolve tenant and API, inject faults,
/// check credentials, then hand over to the API module.
async fn dispatch(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    // A body over the limit is dropped; the handlers then see an empty body and answer 400.
    let body = axum::body::to_bytes(body, MAX_BODY)
        .await
        .unwrap_or_default();
    let raw_path = parts.uri.path().to_string();
    let raw_query = parts.uri.query().unwrap_or("").to_string();
    let segments: Vec<String> = raw_path
        .trim_start_matches('/')
        .split('/')
        .map(decode)
        .collect();
    let tenant = segments.first().cloned().unwrap_or_default();
    let api = segments.get(1).and_then(|s| Api::from_segment(s));
    let host = parts
        .headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok());
    let body_text = String::from_utf8_lossy(&body[..body.len().min(64 * 1024)]).into_owned();
    let authorized = auth::credential(
        parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|h| h.to_str().ok()),
    )
    .is_some();

    let mut inner = shared.lock();
    let origin = host.map_or_else(|| inner.origin.clone(), |h| format!("http://{h}"));
    inner.tick();
    let now = inner.now();
    let serial = inner.next();
    let request_id = format!("00000000-0000-4000-a000-{serial:012x}");
    let mut faulted = false;

    let resp = match api {
        _ if !inner.tenants.contains_key(&tenant) => error_response(
            api.unwrap_or(Api::Graph),
            404,
            "TenantNotFound",
            &format!("The emulator has no tenant '{tenant}'."),
            &request_id,
            now,
        ),
        None => error_response(
            Api::Graph,
            404,
            "NotFound",
            "Unknown API; use graph, adt, dps, iotc or oauth2 after the tenant.",
            &request_id,
            now,
        ),
        Some(api) => {
            let fault = faults::take_fault(&mut inner.faults, api, &parts.method, &raw_path);
            let req = ApiRequest {
                api,
                method: parts.method.clone(),
                segments: segments.get(2..).unwrap_or_default().to_vec(),
                query: url::form_urlencoded::parse(raw_query.as_bytes())
                    .into_owned()
                    .collect(),
                headers: parts.headers.clone(),
                body,
                base: format!("{origin}/{tenant}/{}", base_prefix(api)),
                tenant: tenant.clone(),
                now,
                request_id,
            };
            if let Some(f) = fault {
                faulted = true;
                fault_response(&req, &f)
            } else if api == Api::OAuth {
                auth::token(&req, serial)
            } else if let Some(refused) = auth::check(&req) {
                refused
            } else {
                match api {
                    Api::Graph => graph::handle(&req, &mut inner),
                    Api::DigitalTwins => digital_twins::handle(&req, &mut inner),
                    Api::Dps => dps::handle(&req, &mut inner),
                    Api::IotCentral => iot_central::handle(&req, &mut inner),
                    Api::OAuth => auth::token(&req, serial),
                }
            }
        }
    };
    tracing::debug!(
        tenant = %tenant,
        method = %parts.method,
        path = %raw_path,
        status = resp.status().as_u16(),
        faulted,
        "emulator call"
    );
    inner.calls.push(RecordedCall {
        tenant,
        api,
        method: parts.method,
        path: raw_path,
        query: raw_query,
        status: resp.status().as_u16(),
        authorized,
        faulted,
        body: body_text,
    });
    resp
}

/// The path after the tenant that the API's links are built on.
fn base_prefix(api: Api) -> &'static str {
    match api {
        Api::Graph => "graph/v1.0",
        Api::DigitalTwins => "adt",
        Api::Dps => "dps",
        Api::IotCentral => "iotc",
        Api::OAuth => "oauth2",
    }
}

/// The answer to a call hit by an injected fault, in the API's error shape.
fn fault_response(req: &ApiRequest, f: &Fault) -> Response {
    let code = match (req.api, f.status) {
        (Api::OAuth, _) => "temporarily_unavailable",
        (Api::DigitalTwins, 429) => "QuotaReachedError",
        (Api::Dps, 429) => "ThrottlingException",
        (_, 429) => "TooManyRequests",
        (_, 503) => "ServiceUnavailable",
        _ => "InjectedFault",
    };
    let mut resp = req.error(f.status, code, "Fault injected by the emulator.");
    if let Some(secs) = f.retry_after {
        set_header(&mut resp, "retry-after", &secs.to_string());
    }
    resp
}
