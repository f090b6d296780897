//! A local HTTP server on 127.0.0.1 that records every call and answers from a script, or
//! breaks the connection the way a real network does after the service acted: the answer
//! lost, the connection reset, the body cut short.
#![allow(dead_code)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::extract::connect_info::ConnectInfo;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use tokio::net::TcpListener;

use fault_io::{ConnId, Connections, FaultListener};

/// One recorded call.
#[derive(Debug, Clone)]
pub struct Call {
    pub method: String,
    /// Path and query exactly as received (still encoded).
    pub target: String,
    pub path: String,
    pub query: Option<String>,
    pub headers: HeaderMap,
    pub body: String,
}

impl Call {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

/// What happens to the connection instead of a whole answer (after the script ran, so
/// after the service acted).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The connection is closed without an answer: the answer is lost.
    LoseAnswer,
    /// The connection is reset (RST) without an answer.
    Reset,
    /// The status and headers arrive with a `Content-Length` longer than the body, then the
    /// connection closes.
    Truncate,
}

/// An answer from the script.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
    pub delay: Duration,
    pub fault: Option<Fault>,
}

impl Reply {
    pub fn json(status: u16, body: serde_json::Value) -> Self {
        Reply {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: body.to_string(),
            delay: Duration::ZERO,
            fault: None,
        }
    }
    pub fn raw(status: u16, content_type: &str, body: &str) -> Self {
        Reply {
            status,
            headers: vec![("content-type".into(), content_type.into())],
            body: body.into(),
            delay: Duration::ZERO,
            fault: None,
        }
    }
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }
    pub fn after(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }
    /// Breaks the connection instead of answering (after `delay`).
    pub fn broken(mut self, fault: Fault) -> Self {
        self.fault = Some(fault);
        self
    }
}

type Script = dyn Fn(&Call, usize) -> Reply + Send + Sync;

struct Shared {
    calls: Mutex<Vec<Call>>,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
    script: Box<Script>,
    connections: Connections,
}

/// A running server.
pub struct TestServer {
    pub url: String,
    shared: Arc<Shared>,
}

impl TestServer {
    /// Starts a server answering call number `n` (from 0) with `script(call, n)`.
    pub async fn start(script: impl Fn(&Call, usize) -> Reply + Send + Sync + 'static) -> Self {
        let shared = Arc::new(Shared {
            calls: Mutex::new(Vec::new()),
            in_flight: AtomicUsize::new(0),
            max_in_flight: AtomicUsize::new(0),
            script: Box::new(script),
            connections: Connections::default(),
        });
        let app = Router::new()
            .fallback(handle)
            .with_state(shared.clone())
            .into_make_service_with_connect_info::<ConnId>();
        let inner = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let addr = inner.local_addr().expect("local addr");
        let listener = FaultListener {
            inner,
            connections: shared.connections.clone(),
        };
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        TestServer {
            url: format!("http://{addr}"),
            shared,
        }
    }

    pub fn calls(&self) -> Vec<Call> {
        self.shared.calls.lock().expect("calls").clone()
    }

    pub fn count(&self) -> usize {
        self.shared.calls.lock().expect("calls").len()
    }

    pub fn max_in_flight(&self) -> usize {
        self.shared.max_in_flight.load(Ordering::SeqCst)
    }
}

async fn handle(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(conn): ConnectInfo<ConnId>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let now = shared.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    shared.max_in_flight.fetch_max(now, Ordering::SeqCst);
    // Decrements also when the client gives up and the handler is dropped.
    let _guard = InFlight(shared.clone());
    let call = Call {
        method: method.to_string(),
        target: uri
            .path_and_query()
            .map(|p| p.as_str().to_owned())
            .unwrap_or_default(),
        path: uri.path().to_owned(),
        query: uri.query().map(str::to_owned),
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    };
    let n = {
        let mut calls = shared.calls.lock().expect("calls");
        calls.push(call.clone());
        calls.len() - 1
    };
    let reply = (shared.script)(&call, n);
    if !reply.delay.is_zero() {
        tokio::time::sleep(reply.delay).await;
    }
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    match reply.fault {
        Some(fault @ (Fault::LoseAnswer | Fault::Reset)) => {
            // The connection fails on the first byte of the answer: nothing reaches the client.
            shared.connections.break_on_write(conn, fault);
            return status.into_response();
        }
        Some(Fault::Truncate) => {
            let full = reply.body.len().max(1) * 2;
            let half = reply.body.as_bytes()[..reply.body.len() / 2].to_vec();
            // The head and half the body go out; a moment later the connection closes.
            let chunks = futures::stream::unfold((0, half), |(n, half)| async move {
                match n {
                    0 => Some((Ok(Bytes::from(half)), (1, Vec::new()))),
                    1 => {
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        let cut = std::io::Error::other("cut short by the test server");
                        Some((Err(cut), (2, Vec::new())))
                    }
                    _ => None,
                }
            });
            return Response::builder()
                .status(status)
                .header("content-type", "application/json")
                .header("content-length", full.to_string())
                .body(Body::from_stream(chunks))
                .expect("a response");
        }
        None => {}
    }
    let mut out = HeaderMap::new();
    for (k, v) in &reply.headers {
        if let (Ok(k), Ok(v)) = (
            axum::http::HeaderName::from_bytes(k.as_bytes()),
            axum::http::HeaderValue::from_str(v),
        ) {
            out.append(k, v);
        }
    }
    (status, out, reply.body).into_response()
}

struct InFlight(Arc<Shared>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A URL on 127.0.0.1 where nothing listens: connecting is refused before anything is sent.
pub fn refused_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    let addr = listener.local_addr().expect("local addr");
    drop(listener);
    format!("http://{addr}")
}

/// A service that acts on calls and can break each call's connection after acting.
pub mod faulty_api;

/// The listener and connections that let a handler break its own connection.
mod fault_io;

/// Item server and throwaway projects for engine tests.
pub mod items;

/// A `dsrctl` command builder and project directories for CLI tests.
pub mod cli;

pub mod tools;

/// `dsrctl serve --listen` on an ephemeral port.
#[allow(dead_code)]
pub mod serve;

/// The soak: requests through the API into several worker processes.
#[allow(dead_code)]
pub mod soak;
