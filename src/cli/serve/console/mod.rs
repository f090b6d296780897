//! The operator console: server-rendered HTML pages under `/console` on top of the HTTP API's
//! handlers and tokens. A person signs in with an API token; the console keeps a session for
//! it (a random id in a `Secure`, `HttpOnly`, `SameSite=Strict` cookie; the store keeps its
//! SHA-256, so every worker sharing the store knows it) and acts through the
//! API's handlers in the token's name, so roles and tenants are enforced exactly as for the
//! API. Every form carries the session's CSRF token; a POST without it is refused. No
//! JavaScript is needed; one small embedded script shows times in the browser's time zone.

mod layout;
mod pages;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use sha2::{Digest, Sha256};

use super::ApiState;
use super::auth::Caller;
use super::error::ApiError;

/// The session cookie's name.
const SESSION_COOKIE: &str = "dsrctl_console";
/// The cookie pairing the sign-in form with its CSRF token before there is a session.
const SIGNIN_COOKIE: &str = "dsrctl_console_signin";
/// How long a session lasts without use.
const IDLE: Duration = Duration::from_secs(8 * 3600);

/// What the console's handlers share: the API's state (its store keeps the sessions, so
/// every worker sharing the store knows them).
pub struct ConsoleState {
    api: Arc<ApiState>,
}

/// A signed-in person: the token's caller and the CSRF token of their forms.
#[derive(Clone)]
pub struct Session {
    caller: Caller,
    csrf: String,
}

/// The console's routes, under `/console` (and `/`, which leads there).
pub fn router<S: Clone + Send + Sync + 'static>(api: Arc<ApiState>) -> Router<S> {
    let upload_limit = usize::try_from(api.max_upload)
        .unwrap_or(usize::MAX)
        .saturating_add(64 * 1024);
    let state = Arc::new(ConsoleState { api });
    Router::new()
        .route("/", get(|| async { Redirect::to("/console") }))
        .route("/console", get(pages::queue))
        .route("/console/", get(pages::queue))
        .route("/console/login", get(pages::login_form).post(pages::login))
        .route("/console/logout", post(pages::logout))
        .route("/console/requests/{id}", get(pages::request))
        .route("/console/requests/{id}/approve", post(pages::approve))
        .route("/console/requests/{id}/decline", post(pages::decline))
        .route("/console/requests/{id}/extend", post(pages::extend))
        .route("/console/requests/{id}/preview", post(pages::preview))
        .route("/console/requests/{id}/dry-run", post(pages::dry_run))
        .route("/console/runs/{run}/changes", get(pages::changes))
        .route("/console/runs/{run}/report", get(pages::report))
        .route("/console/runs/{run}/letter", get(pages::letter))
        .route("/console/tasks", get(pages::tasks))
        .route(
            "/console/runs/{run}/tasks/{step}/done",
            post(pages::task_done).layer(axum::extract::DefaultBodyLimit::max(upload_limit)),
        )
        .route(
            "/console/runs/{run}/tasks/{step}/fail",
            post(pages::task_fail),
        )
        .route("/console/audit", get(pages::audit))
        .route("/console/assets/console.css", get(css))
        .route("/console/assets/console.js", get(js))
        .layer(axum::middleware::from_fn(security_headers))
        .with_state(state)
}

async fn css() -> Response {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        include_str!("assets/console.css"),
    )
        .into_response()
}

async fn js() -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        include_str!("assets/console.js"),
    )
        .into_response()
}

/// Headers on every console answer: nothing from elsewhere, no framing, no caching of pages
/// that may show a subject's data.
async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let h = response.headers_mut();
    if !h.contains_key(header::CONTENT_SECURITY_POLICY) {
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(
                "default-src 'none'; style-src 'self'; script-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
            ),
        );
    }
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

/// A random token, hex.
fn random_token() -> String {
    hex::encode(rand::random::<[u8; 32]>())
}

/// Compares two secrets by their digests, so the time taken says nothing about either.
fn same_secret(a: &str, b: &str) -> bool {
    let da: [u8; 32] = Sha256::digest(a.as_bytes()).into();
    let db: [u8; 32] = Sha256::digest(b.as_bytes()).into();
    da.iter()
        .zip(db.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y))
        == 0
}

/// The value of cookie `name` in the request's headers.
fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

/// A `Set-Cookie` value for the console's cookies.
fn set_cookie(name: &str, value: &str, max_age: u64) -> String {
    format!("{name}={value}; Path=/console; Max-Age={max_age}; HttpOnly; Secure; SameSite=Strict")
}

impl ConsoleState {
    /// The caller of an API token's secret, as the API resolves it.
    async fn caller_of(&self, secret: &str) -> Result<Caller, ApiError> {
        let value = HeaderValue::from_str(&format!("Bearer {}", secret.trim()))
            .map_err(|_| ApiError::unauthorized("the API token is not valid"))?;
        let (mut parts, ()) = axum::http::Request::builder()
            .header(header::AUTHORIZATION, value)
            .body(())
            .map_err(|e| ApiError::internal(e.to_string()))?
            .into_parts();
        Caller::from_request_parts(&mut parts, &self.api).await
    }

    /// Starts a session for `caller`; returns its id (for the cookie). The store keeps
    /// only the id's SHA-256.
    async fn open_session(&self, caller: &Caller) -> Result<String, ApiError> {
        let token = self
            .api
            .tokens
            .session_ref(caller)
            .ok_or_else(|| ApiError::unauthorized("the API token is not valid"))?;
        let id = random_token();
        self.api
            .ws
            .store
            .open_console_session(&session_hash(&id), &token, chrono::Utc::now(), IDLE)
            .await?;
        Ok(id)
    }

    /// The live session the request's cookie names.
    async fn session(&self, headers: &HeaderMap) -> Result<Option<Session>, ApiError> {
        let Some(id) = cookie(headers, SESSION_COOKIE) else {
            return Ok(None);
        };
        let token = self
            .api
            .ws
            .store
            .use_console_session(&session_hash(&id), chrono::Utc::now(), IDLE)
            .await?;
        Ok(token
            .and_then(|t| self.api.tokens.caller_of_session(&t))
            .map(|caller| Session {
                caller,
                csrf: csrf_of(&id),
            }))
    }

    async fn close_session(&self, headers: &HeaderMap) -> Result<(), ApiError> {
        if let Some(id) = cookie(headers, SESSION_COOKIE) {
            self.api
                .ws
                .store
                .close_console_session(&session_hash(&id))
                .await?;
        }
        Ok(())
    }
}

/// What the store keeps of a session id.
fn session_hash(id: &str) -> String {
    hex::encode(Sha256::digest(format!("console session\n{id}").as_bytes()))
}

/// The CSRF token of a session's forms, from its id: the same on every worker, and not
/// kept anywhere.
fn csrf_of(id: &str) -> String {
    hex::encode(Sha256::digest(format!("console csrf\n{id}").as_bytes()))
}

/// A signed-in person, or the way to the sign-in page.
pub struct SignedIn(Session);

impl FromRequestParts<Arc<ConsoleState>> for SignedIn {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &Arc<ConsoleState>,
    ) -> Result<Self, Self::Rejection> {
        let found = match state.session(&parts.headers).await {
            Ok(found) => found,
            Err(e) => {
                return Err(layout::error_page(
                    None,
                    e.status,
                    "The console could not read its sessions",
                    &e.message,
                ));
            }
        };
        match found {
            Some(s) => Ok(SignedIn(s)),
            None if parts.method == axum::http::Method::GET => {
                Err(Redirect::to("/console/login").into_response())
            }
            None => Err(layout::error_page(
                None,
                StatusCode::FORBIDDEN,
                "Not signed in",
                "Your session has ended. Sign in again, then repeat what you were doing.",
            )),
        }
    }
}

impl Session {
    /// The refusal of a form whose CSRF token is missing or is not this session's.
    fn csrf_refusal(&self, given: Option<&str>) -> Option<Response> {
        match given {
            Some(t) if same_secret(t, &self.csrf) => None,
            _ => Some(layout::error_page(
                Some(self),
                StatusCode::FORBIDDEN,
                "Form refused",
                "The form did not carry this session's CSRF token, so it was not acted on. Reload the page and submit the form again.",
            )),
        }
    }
}

/// An API error as a page.
fn api_error_page(session: &Session, e: ApiError) -> Response {
    let title = match e.status {
        StatusCode::NOT_FOUND => "Not found",
        StatusCode::FORBIDDEN => "Not allowed",
        StatusCode::CONFLICT => "Not possible now",
        StatusCode::UNPROCESSABLE_ENTITY | StatusCode::BAD_REQUEST => "Check the form",
        StatusCode::PAYLOAD_TOO_LARGE => "File too large",
        StatusCode::UNAUTHORIZED => "Not signed in",
        _ => "Something failed",
    };
    layout::error_page(Some(session), e.status, title, &e.message)
}

/// The console's handlers' shared state type.
type St = State<Arc<ConsoleState>>;

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(cookies: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for c in cookies {
            h.append(header::COOKIE, HeaderValue::from_str(c).unwrap());
        }
        h
    }

    #[test]
    fn cookies_are_found_by_exact_name_across_headers() {
        let h = headers(&["a=1; dsrctl_console_signin=pre", "dsrctl_console=sess"]);
        assert_eq!(cookie(&h, SESSION_COOKIE).as_deref(), Some("sess"));
        assert_eq!(cookie(&h, SIGNIN_COOKIE).as_deref(), Some("pre"));
        assert_eq!(cookie(&h, "dsrctl"), None);
        assert_eq!(cookie(&headers(&[]), SESSION_COOKIE), None);
    }

    #[test]
    fn the_cookie_is_secure_httponly_and_strict() {
        let c = set_cookie(SESSION_COOKIE, "abc", 60);
        for part in [
            "HttpOnly",
            "Secure",
            "SameSite=Strict",
            "Path=/console",
            "Max-Age=60",
        ] {
            assert!(c.split("; ").any(|p| p == part), "{c} lacks {part}");
        }
    }

    #[test]
    fn secrets_compare_whole() {
        let t = random_token();
        assert_eq!(t.len(), 64);
        assert_ne!(t, random_token());
        assert!(same_secret(&t, &t.clone()));
        assert!(!same_secret(&t, &t[..63]));
        assert!(!same_secret(&t, ""));
    }
}
