//! Emulators of the SaaS APIs the catalogue's playbooks (`policies/saas/`) use, one server
//! per service, each answering as its published API reference documents where a playbook
//! depends on it: the auth scheme, the paths and bodies, pagination, error bodies, rate
//! limits and their headers. Each starts with the same people: Alice
//! (`alice@example.com`, data in the service), Bob (`bob@example.com`, data that must
//! survive Alice's requests) and nobody else.
//!
//! `dsrctl emulate --service NAME` serves one; tests start them in process with [`start`],
//! inspect [`SaasEmulator::calls`] and [`SaasEmulator::snapshot`], and throttle them with
//! [`SaasEmulator::throttle`]. What each reproduces, and what it does not, is in its
//! module's documentation.

pub mod auth0;
pub mod braze;
pub mod google;
pub mod hubspot;
pub mod intercom;
pub mod mailchimp;
pub mod mixpanel;
pub mod okta;
pub mod salesforce;
pub mod segment;
pub mod sendgrid;
pub mod shopify;
pub mod slack;
pub mod stripe;
pub mod zendesk;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::response::Response;
use percent_encoding::percent_decode_str;
use serde_json::Value;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Largest request body read.
const MAX_BODY: usize = 4 * 1024 * 1024;

/// The services with an emulator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    /// Stripe (customers, charges).
    Stripe,
    /// Mailchimp Marketing API (audiences and their members).
    Mailchimp,
    /// Zendesk Support (users, tickets, deleted users).
    Zendesk,
    /// HubSpot CRM (contacts, GDPR delete).
    Hubspot,
    /// Shopify Admin GraphQL (customers, orders, data erasure).
    Shopify,
    /// Segment Public API (regulations: suppression and deletion, asynchronous).
    Segment,
    /// Okta Users API (search, lifecycle, delete).
    Okta,
    /// Auth0 Management API (users by email, block, delete).
    Auth0,
    /// Intercom (contacts, conversations).
    Intercom,
    /// Salesforce REST API (SOQL query, Contact and Lead rows).
    Salesforce,
    /// Google Workspace Admin SDK Directory API (users, group memberships).
    GoogleWorkspace,
    /// Slack SCIM API 2.0 (users, deactivation).
    Slack,
    /// Twilio SendGrid (Marketing contacts, asynchronous deletion, suppressions).
    Sendgrid,
    /// Braze REST API (user profiles: export by identifier, delete).
    Braze,
    /// Mixpanel GDPR API (deletion and retrieval tasks, asynchronous).
    Mixpanel,
}

impl Service {
    /// Every emulated service.
    pub const ALL: [Service; 15] = [
        Service::Stripe,
        Service::Mailchimp,
        Service::Zendesk,
        Service::Hubspot,
        Service::Shopify,
        Service::Segment,
        Service::Okta,
        Service::Auth0,
        Service::Intercom,
        Service::Salesforce,
        Service::GoogleWorkspace,
        Service::Slack,
        Service::Sendgrid,
        Service::Braze,
        Service::Mixpanel,
    ];

    /// The service's name, as in `policies/saas/NAME.yaml` and `--service NAME`.
    pub fn name(self) -> &'static str {
        match self {
            Service::Stripe => "stripe",
            Service::Mailchimp => "mailchimp",
            Service::Zendesk => "zendesk",
            Service::Hubspot => "hubspot",
            Service::Shopify => "shopify",
            Service::Segment => "segment",
            Service::Okta => "okta",
            Service::Auth0 => "auth0",
            Service::Intercom => "intercom",
            Service::Salesforce => "salesforce",
            Service::GoogleWorkspace => "google-workspace",
            Service::Slack => "slack",
            Service::Sendgrid => "sendgrid",
            Service::Braze => "braze",
            Service::Mixpanel => "mixpanel",
        }
    }

    /// The service named `name`.
    pub fn from_name(name: &str) -> Option<Service> {
        Service::ALL.into_iter().find(|s| s.name() == name)
    }

    /// The path under the server's root that plays the service's base URL (for Zendesk
    /// `https://SUBDOMAIN.zendesk.com/api/v2`, here `http://ADDR/api/v2`).
    pub fn base_path(self) -> &'static str {
        match self {
            Service::Stripe => "/v1",
            Service::Mailchimp => "/3.0",
            Service::Zendesk => "/api/v2",
            Service::Hubspot => "/crm/v3",
            Service::Shopify => "/admin/api/2024-10",
            Service::Segment => "",
            Service::Okta => "/api/v1",
            Service::Auth0 => "/api/v2",
            Service::Intercom => "",
            Service::Salesforce => "/services/data/v62.0",
            Service::GoogleWorkspace => "/admin/directory/v1",
            Service::Slack => "/scim/v2",
            Service::Sendgrid => "/v3",
            Service::Braze => "",
            Service::Mixpanel => "/api/app",
        }
    }

    /// The credential the emulator accepts, as the connector stub in the catalogue
    /// configures it.
    pub fn credential(self) -> &'static str {
        match self {
            Service::Stripe => stripe::SECRET_KEY,
            Service::Mailchimp => mailchimp::API_KEY,
            Service::Zendesk => zendesk::API_TOKEN,
            Service::Hubspot => hubspot::ACCESS_TOKEN,
            Service::Shopify => shopify::ACCESS_TOKEN,
            Service::Segment => segment::TOKEN,
            Service::Okta => okta::API_TOKEN,
            Service::Auth0 => auth0::TOKEN,
            Service::Intercom => intercom::TOKEN,
            Service::Salesforce => salesforce::ACCESS_TOKEN,
            Service::GoogleWorkspace => google::ACCESS_TOKEN,
            Service::Slack => slack::TOKEN,
            Service::Sendgrid => sendgrid::API_KEY,
            Service::Braze => braze::API_KEY,
            Service::Mixpanel => mixpanel::OAUTH_TOKEN,
        }
    }

    fn api(self) -> Box<dyn Api> {
        match self {
            Service::Stripe => Box::new(stripe::Stripe::seeded()),
            Service::Mailchimp => Box::new(mailchimp::Mailchimp::seeded()),
            Service::Zendesk => Box::new(zendesk::Zendesk::seeded()),
            Service::Hubspot => Box::new(hubspot::Hubspot::seeded()),
            Service::Shopify => Box::new(shopify::Shopify::seeded()),
            Service::Segment => Box::new(segment::Segment::seeded()),
            Service::Okta => Box::new(okta::Okta::seeded()),
            Service::Auth0 => Box::new(auth0::Auth0::seeded()),
            Service::Intercom => Box::new(intercom::Intercom::seeded()),
            Service::Salesforce => Box::new(salesforce::Salesforce::seeded()),
            Service::GoogleWorkspace => Box::new(google::Google::seeded()),
            Service::Slack => Box::new(slack::Slack::seeded()),
            Service::Sendgrid => Box::new(sendgrid::Sendgrid::seeded()),
            Service::Braze => Box::new(braze::Braze::seeded()),
            Service::Mixpanel => Box::new(mixpanel::Mixpanel::seeded()),
        }
    }
}

/// A request as a service module sees it.
pub struct Req {
    /// Method.
    pub method: Method,
    /// Percent-decoded path segments after the service's base path.
    pub segments: Vec<String>,
    /// Decoded query pairs, in order.
    pub query: Vec<(String, String)>,
    /// Headers.
    pub headers: HeaderMap,
    /// Body.
    pub body: Bytes,
    /// `http://host:port` plus the base path, for absolute links.
    pub base: String,
    /// The emulator's serial number of this request.
    pub serial: u64,
}

impl Req {
    /// The first value of a query parameter.
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

    /// The path segments as `&str`.
    pub fn path(&self) -> Vec<&str> {
        self.segments.iter().map(String::as_str).collect()
    }

    /// The body as JSON.
    pub fn json(&self) -> Option<Value> {
        serde_json::from_slice(&self.body).ok()
    }

    /// The body as form pairs (`application/x-www-form-urlencoded`).
    pub fn form(&self) -> Vec<(String, String)> {
        url::form_urlencoded::parse(&self.body)
            .into_owned()
            .collect()
    }

    /// The credential of a `Basic` or `Bearer` authorization: for Basic, the password
    /// (or, when it is empty, the user name, as Stripe takes its key).
    pub fn credential(&self) -> Option<String> {
        use base64::Engine;
        let auth = self.header("authorization")?.trim();
        if let Some(token) = auth.strip_prefix("Bearer ") {
            return Some(token.trim().to_owned());
        }
        let encoded = auth.strip_prefix("Basic ")?;
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(encoded.trim())
            .ok()?;
        let text = String::from_utf8(decoded).ok()?;
        let (user, password) = text.split_once(':')?;
        Some(if password.is_empty() { user } else { password }.to_owned())
    }

    /// The `Basic` user name, if any.
    pub fn basic_user(&self) -> Option<String> {
        use base64::Engine;
        let encoded = self
            .header("authorization")?
            .trim()
            .strip_prefix("Basic ")?;
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(encoded.trim())
            .ok()?;
        let text = String::from_utf8(decoded).ok()?;
        Some(text.split_once(':')?.0.to_owned())
    }
}

/// What a service module implements.
pub trait Api: Send {
    /// `None` when the request's credentials are good, else the service's 401 answer.
    fn authenticate(&self, req: &Req) -> Option<Response>;
    /// Answers an authenticated request.
    fn handle(&mut self, req: &Req) -> Response;
    /// The service's answer when the rate limit is exhausted; `retry_after` in seconds.
    fn throttled(&self, retry_after: u64) -> Response;
    /// Adds the service's rate-limit headers to an answer (only services that document
    /// some send them): the limit, what is left in the window and the seconds until it
    /// resets.
    fn rate_headers(&self, _resp: &mut Response, _limit: u32, _left: u32, _reset: u64) {}
    /// The whole state as JSON.
    fn snapshot(&self) -> Value;
    /// The emulator clock moved forward (asynchronous jobs advance).
    fn advance(&mut self, _by: Duration) {}
    /// Moves a seeded person to another email address, whatever its letter case (the demo's
    /// project knows Alice as `alice@contoso.com`); a service that does not support it
    /// keeps its seed.
    fn rename_email(&mut self, _from: &str, _to: &str) {}
}

/// One received call.
#[derive(Debug, Clone)]
pub struct SaasCall {
    /// Method.
    pub method: Method,
    /// Path, as sent (still encoded).
    pub path: String,
    /// Query string, as sent.
    pub query: String,
    /// Answer status.
    pub status: u16,
    /// When it arrived.
    pub at: Instant,
    /// The body, as text (first 64 KiB).
    pub body: String,
}

/// A fixed-window rate limit: `limit` calls per `window`, the next answered as the
/// service answers an exhausted limit.
#[derive(Debug, Clone, Copy)]
pub struct Throttle {
    /// Calls allowed in one window.
    pub limit: u32,
    /// The window.
    pub window: Duration,
}

struct Inner {
    api: Box<dyn Api>,
    calls: Vec<SaasCall>,
    throttle: Option<Throttle>,
    window_start: Instant,
    used: u32,
    serial: u64,
}

struct Shared {
    service: Service,
    inner: Mutex<Inner>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A running SaaS emulator; dropping it stops the server.
pub struct SaasEmulator {
    /// Address the server listens on.
    pub addr: SocketAddr,
    /// The service it emulates.
    pub service: Service,
    shared: Arc<Shared>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

/// Starts the emulator of `service` on `addr` (port 0 picks a free one), seeded with the
/// catalogue's people.
pub async fn start(service: Service, addr: SocketAddr) -> std::io::Result<SaasEmulator> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    let shared = Arc::new(Shared {
        service,
        inner: Mutex::new(Inner {
            api: service.api(),
            calls: Vec::new(),
            throttle: None,
            window_start: Instant::now(),
            used: 0,
            serial: 0,
        }),
    });
    let app = Router::new().fallback(dispatch).with_state(shared.clone());
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let serve = axum::serve(listener, app).with_graceful_shutdown(async move {
            let _ = stopped.await;
        });
        if let Err(e) = serve.await {
            tracing::warn!(error = %e, "SaaS emulator stopped with an error");
        }
    });
    Ok(SaasEmulator {
        addr,
        service,
        shared,
        stop: Some(stop),
        task: Some(task),
    })
}

impl SaasEmulator {
    /// The base URL a connector for the service is configured with.
    pub fn base_url(&self) -> String {
        format!("http://{}{}", self.addr, self.service.base_path())
    }

    /// Every call received so far.
    pub fn calls(&self) -> Vec<SaasCall> {
        self.shared.lock().calls.clone()
    }

    /// Rate-limits the service from now on (`None` lifts the limit).
    pub fn throttle(&self, throttle: Option<Throttle>) {
        let mut inner = self.shared.lock();
        inner.throttle = throttle;
        inner.window_start = Instant::now();
        inner.used = 0;
    }

    /// The service's whole state as JSON.
    pub fn snapshot(&self) -> Value {
        self.shared.lock().api.snapshot()
    }

    /// Moves the emulator clock forward (asynchronous jobs advance).
    pub fn advance_clock(&self, by: Duration) {
        self.shared.lock().api.advance(by);
    }

    /// Moves a seeded person to another email address (see [`Api::rename_email`]).
    pub fn rename_email(&self, from: &str, to: &str) {
        self.shared.lock().api.rename_email(from, to);
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

impl Drop for SaasEmulator {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

async fn dispatch(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, MAX_BODY)
        .await
        .unwrap_or_default();
    let raw_path = parts.uri.path().to_owned();
    let raw_query = parts.uri.query().unwrap_or("").to_owned();
    let host = parts
        .headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1")
        .to_owned();
    let base_path = shared.service.base_path();
    let body_text = String::from_utf8_lossy(&body[..body.len().min(64 * 1024)]).into_owned();
    let mut inner = shared.lock();
    inner.serial += 1;
    let resp = match raw_path.strip_prefix(base_path) {
        None => json(
            404,
            &serde_json::json!({"error": format!("not under {base_path}")}),
        ),
        Some(rest) => {
            let req = Req {
                method: parts.method.clone(),
                segments: rest
                    .trim_start_matches('/')
                    .split('/')
                    .filter(|s| !s.is_empty())
                    .map(|s| percent_decode_str(s).decode_utf8_lossy().into_owned())
                    .collect(),
                query: url::form_urlencoded::parse(raw_query.as_bytes())
                    .into_owned()
                    .collect(),
                headers: parts.headers.clone(),
                body,
                base: format!("http://{host}{base_path}"),
                serial: inner.serial,
            };
            answer(&mut inner, &req)
        }
    };
    tracing::debug!(service = shared.service.name(), method = %parts.method, status = resp.status().as_u16(), "SaaS emulator call");
    inner.calls.push(SaasCall {
        method: parts.method,
        path: raw_path,
        query: raw_query,
        status: resp.status().as_u16(),
        at: Instant::now(),
        body: body_text,
    });
    resp
}

/// Authenticates, applies the rate limit, then lets the service answer.
fn answer(inner: &mut Inner, req: &Req) -> Response {
    if let Some(refused) = inner.api.authenticate(req) {
        return refused;
    }
    let Some(t) = inner.throttle else {
        return inner.api.handle(req);
    };
    let now = Instant::now();
    if now.duration_since(inner.window_start) >= t.window {
        inner.window_start = now;
        inner.used = 0;
    }
    let reset = t
        .window
        .saturating_sub(now.duration_since(inner.window_start))
        .as_secs_f64()
        .ceil() as u64;
    if inner.used >= t.limit {
        let mut resp = inner.api.throttled(reset.max(1));
        inner.api.rate_headers(&mut resp, t.limit, 0, reset.max(1));
        return resp;
    }
    inner.used += 1;
    let mut resp = inner.api.handle(req);
    inner
        .api
        .rate_headers(&mut resp, t.limit, t.limit - inner.used, reset.max(1));
    resp
}

/// A JSON answer.
pub fn json(status: u16, body: &Value) -> Response {
    with_type(status, body.to_string(), "application/json")
}

/// An answer with a body of the given content type.
pub fn with_type(status: u16, body: String, content_type: &'static str) -> Response {
    let mut resp = Response::new(Body::from(body));
    *resp.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp
}

/// An answer without a body.
pub fn empty(status: u16) -> Response {
    let mut resp = Response::new(Body::empty());
    *resp.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    resp
}

/// Sets a header on an answer.
pub fn set_header(resp: &mut Response, name: &str, value: &str) {
    if let (Ok(n), Ok(v)) = (
        HeaderName::from_bytes(name.as_bytes()),
        HeaderValue::from_str(value),
    ) {
        resp.headers_mut().insert(n, v);
    }
}

/// The Unix time (seconds) at which a window that resets in `secs` seconds has reset:
/// rounded up, so a client waiting until then never calls into the old window.
pub fn unix_reset(secs: u64) -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs_f64().ceil() as u64)
        + secs
}
