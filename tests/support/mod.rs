//! A local HTTP server on 127.0.0.1 that records every call and answers from a script, or
//! breaks the connection the way a real network does after the service acted: the answer
//! lost, the connection reset, the body cut short.
#![allow(dead_code)]

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::extract::connect_info::{ConnectInfo, Connected};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::serve::IncomingStream;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};

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

/// Identifies one accepted connection, so a handler can break its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct ConnId(u64);

impl Connected<IncomingStream<'_, FaultListener>> for ConnId {
    fn connect_info(stream: IncomingStream<'_, FaultListener>) -> Self {
        *stream.remote_addr()
    }
}

/// Set by a handler: the next write on its connection fails.
type Switch = Arc<Mutex<Option<Fault>>>;

/// The open connections' switches: a handler sets one, and the next write on that
/// connection fails, which makes the server drop it (reset first, for [`Fault::Reset`]).
#[derive(Default, Clone)]
struct Connections {
    next: Arc<AtomicU64>,
    switches: Arc<Mutex<HashMap<ConnId, Switch>>>,
}

impl Connections {
    fn open(&self) -> (ConnId, Switch) {
        let id = ConnId(self.next.fetch_add(1, Ordering::SeqCst));
        let switch = Arc::new(Mutex::new(None));
        self.switches
            .lock()
            .expect("switches")
            .insert(id, switch.clone());
        (id, switch)
    }
    fn break_on_write(&self, id: ConnId, fault: Fault) {
        if let Some(s) = self.switches.lock().expect("switches").get(&id) {
            *s.lock().expect("switch") = Some(fault);
        }
    }
    fn close(&self, id: ConnId) {
        self.switches.lock().expect("switches").remove(&id);
    }
}

struct FaultListener {
    inner: TcpListener,
    connections: Connections,
}

impl axum::serve::Listener for FaultListener {
    type Io = FaultyIo;
    type Addr = ConnId;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            if let Ok((stream, _)) = self.inner.accept().await {
                let _ = stream.set_nodelay(true);
                let (id, switch) = self.connections.open();
                let io = FaultyIo {
                    stream,
                    switch,
                    id,
                    connections: self.connections.clone(),
                };
                return (io, id);
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(ConnId(u64::MAX))
    }
}

/// A server-side connection whose writes fail once its switch is set.
struct FaultyIo {
    stream: TcpStream,
    switch: Switch,
    id: ConnId,
    connections: Connections,
}

impl Drop for FaultyIo {
    fn drop(&mut self) {
        self.connections.close(self.id);
    }
}

impl AsyncRead for FaultyIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for FaultyIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let fault = *self.switch.lock().expect("switch");
        match fault {
            Some(fault) => {
                if fault == Fault::Reset {
                    // SO_LINGER 0: closing sends RST instead of FIN.
                    let _ = self.stream.set_zero_linger();
                }
                Poll::Ready(Err(std::io::Error::new(
                    std::io::ErrorKind::ConnectionAborted,
                    "broken by the test server",
                )))
            }
            None => Pin::new(&mut self.stream).poll_write(cx, buf),
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
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

/// Item server and throwaway projects for engine tests.
pub mod items;

/// A `dsrctl` command builder and project directories for CLI tests.
pub mod cli;
