//! The HTTP connector against local servers that record every call.

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use dsrctl::connectors::http::HttpClient;
use dsrctl::connectors::{Connector, ConnectorError, HttpRequest, Operation, RecordSink};
use dsrctl::model::{Defaults, HttpConnector, HttpMethod, Paginate, SecretRef};
use dsrctl::secret::{EnvFileResolver, SecretError, SecretResolver};
use serde_json::{Value, json};
use support::{Reply, TestServer};

fn connector(cfg: Value) -> HttpClient {
    connector_in(cfg, std::env::temp_dir())
}

fn connector_in(cfg: Value, base_dir: std::path::PathBuf) -> HttpClient {
    let cfg: HttpConnector = serde_json::from_value(cfg).expect("valid connector config");
    HttpClient::new(
        "svc",
        &cfg,
        &Defaults::default(),
        &EnvFileResolver::new(base_dir),
    )
    .expect("connector builds")
}

/// Secrets from a map: keeps tests that need many secrets off the process environment,
/// which is shared by tests running in parallel.
struct MapSecrets(Vec<(&'static str, &'static str)>);

impl SecretResolver for MapSecrets {
    fn resolve(&self, r: &SecretRef) -> Result<String, SecretError> {
        let SecretRef::Env(name) = r else {
            return Err(SecretError::new("files are not used here"));
        };
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| (*v).to_owned())
            .ok_or_else(|| SecretError::new(format!("`{name}` is not set")))
    }
}

fn connector_with(cfg: Value, secrets: &MapSecrets) -> HttpClient {
    let cfg: HttpConnector = serde_json::from_value(cfg).expect("valid connector config");
    HttpClient::new("svc", &cfg, &Defaults::default(), secrets).expect("connector builds")
}

fn fast_retry(attempts: u32) -> Value {
    json!({ "attempts": attempts, "backoff": "10ms", "max_elapsed": "30s" })
}

fn request(method: HttpMethod, path: &str) -> HttpRequest {
    HttpRequest {
        method,
        path: path.into(),
        query: vec![],
        headers: vec![],
        json: None,
        json_patch: None,
        form: None,
        graphql: false,
        if_match: None,
        paginate: None,
        absent_on: vec![],
        // As the engine marks a step by default: DELETE is idempotent.
        idempotent: method == HttpMethod::Delete,
    }
}

fn op(req: HttpRequest) -> Operation {
    Operation::Http(req)
}

fn paginate(extra: Value) -> Paginate {
    let mut v = json!({});
    if let (Some(o), Some(e)) = (v.as_object_mut(), extra.as_object()) {
        o.extend(e.clone());
    }
    serde_json::from_value(v).expect("valid paginate")
}

#[derive(Default)]
struct VecSink(Vec<Value>);

impl RecordSink for VecSink {
    fn write(&mut self, record: &Value) -> std::io::Result<()> {
        self.0.push(record.clone());
        Ok(())
    }
}

#[tokio::test]
async fn retry_after_429_is_waited_out() {
    let server = TestServer::start(|_, n| {
        if n == 0 {
            Reply::json(429, json!({"error": "slow down"})).header("Retry-After", "2")
        } else {
            Reply::json(200, json!({"id": "u1"}))
        }
    })
    .await;
    let c = connector(json!({ "base_url": server.url, "retry": fast_retry(3) }));
    let start = Instant::now();
    let resp = c
        .read(&op(request(HttpMethod::Get, "/users/u1")), None)
        .await
        .expect("succeeds after waiting");
    assert!(
        start.elapsed() >= Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(resp.body, json!({"id": "u1"}));
    assert_eq!(resp.attempts, 2);
    assert_eq!(server.count(), 2);
}

#[tokio::test]
async fn retry_after_beyond_max_elapsed_gives_up_at_once() {
    let server =
        TestServer::start(|_, _| Reply::json(429, json!({})).header("Retry-After", "120")).await;
    let retry = json!({ "attempts": 5, "backoff": "10ms", "max_elapsed": "5s" });
    let c = connector(json!({ "base_url": server.url, "retry": retry }));
    let start = Instant::now();
    let err = c
        .read(&op(request(HttpMethod::Get, "/x")), None)
        .await
        .expect_err("gives up");
    assert!(start.elapsed() < Duration::from_secs(2));
    assert!(
        matches!(
            err,
            ConnectorError::Status {
                status: 429,
                attempts: 1,
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(server.count(), 1);
}

#[tokio::test]
async fn storm_of_503s_fails_after_bounded_attempts() {
    let server =
        TestServer::start(|_, _| Reply::raw(503, "text/plain", "service overloaded")).await;
    let c = connector(json!({ "base_url": server.url, "retry": fast_retry(4) }));
    let err = c
        .mutate(&op(request(HttpMethod::Delete, "/users/u1")))
        .await
        .expect_err("fails");
    match &err {
        ConnectorError::Status {
            status,
            excerpt,
            attempts,
            ..
        } => {
            assert_eq!(*status, 503);
            assert_eq!(*attempts, 4);
            assert!(excerpt.contains("service overloaded"));
        }
        other => panic!("unexpected {other}"),
    }
    assert_eq!(
        err.to_string(),
        "the service answered 503 after 4 attempt(s): service overloaded"
    );
    assert_eq!(server.count(), 4);
}

#[tokio::test]
async fn hung_server_times_out() {
    let server =
        TestServer::start(|_, _| Reply::json(200, json!({})).after(Duration::from_secs(30))).await;
    let c =
        connector(json!({ "base_url": server.url, "timeout": "300ms", "retry": fast_retry(2) }));
    let start = Instant::now();
    let err = c
        .read(&op(request(HttpMethod::Get, "/slow")), None)
        .await
        .expect_err("times out");
    assert!(
        matches!(err, ConnectorError::Timeout { attempts: 2, after, .. } if after == Duration::from_millis(300)),
        "{err}"
    );
    assert!(start.elapsed() < Duration::from_secs(5));
    assert_eq!(server.count(), 2);
}

#[tokio::test]
async fn connection_refused_is_a_transport_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    drop(listener);
    let c = connector(json!({ "base_url": url, "retry": fast_retry(2) }));
    let err = c
        .read(&op(request(HttpMethod::Get, "/x")), None)
        .await
        .expect_err("refused");
    assert!(
        matches!(err, ConnectorError::Transport { attempts: 2, .. }),
        "{err}"
    );
    let text = err.to_string();
    assert!(text.contains("Connection refused"), "{text}");
    assert!(
        !text.contains(&url),
        "the URL stays out of messages: {text}"
    );
}

#[tokio::test]
async fn malformed_json_is_an_error_with_an_excerpt() {
    let server =
        TestServer::start(|_, _| Reply::raw(200, "application/json", r#"{"value": [1, 2,"#)).await;
    let c = connector(json!({ "base_url": server.url }));
    let err = c
        .read(&op(request(HttpMethod::Get, "/x")), None)
        .await
        .expect_err("invalid");
    match &err {
        ConnectorError::InvalidResponse {
            message, excerpt, ..
        } => {
            assert!(message.contains("not valid JSON"), "{message}");
            assert_eq!(excerpt, r#"{"value": [1, 2,"#);
        }
        other => panic!("unexpected {other}"),
    }
}

#[tokio::test]
async fn bodies_statuses_and_headers() {
    let server = TestServer::start(|call, _| match call.path.as_str() {
        "/empty" => Reply::raw(204, "application/json", ""),
        "/text" => Reply::raw(200, "text/plain", "hello"),
        "/gone" => Reply::raw(404, "text/html", "<html>not found</html>"),
        "/forbidden" => Reply::json(403, json!({"error": "no"})),
        _ => Reply::json(200, json!({"ok": true}))
            .header("ETag", "W/\"1\"")
            .header("x-ms-continuation", "c"),
    })
    .await;
    let c = connector(json!({ "base_url": server.url }));
    let empty = c
        .read(&op(request(HttpMethod::Get, "/empty")), None)
        .await
        .expect("204");
    assert_eq!((empty.status, empty.body), (Some(204), Value::Null));
    let text = c
        .read(&op(request(HttpMethod::Get, "/text")), None)
        .await
        .expect("text");
    assert_eq!(text.body, json!("hello"));
    let mut gone = request(HttpMethod::Delete, "/gone");
    gone.absent_on = vec![404];
    let gone = c.mutate(&op(gone)).await.expect("absent is not an error");
    assert!(gone.absent);
    assert_eq!(gone.status, Some(404));
    let err = c
        .read(&op(request(HttpMethod::Get, "/forbidden")), None)
        .await
        .expect_err("403");
    assert!(
        matches!(
            err,
            ConnectorError::Status {
                status: 403,
                attempts: 1,
                ..
            }
        ),
        "{err}"
    );
    let ok = c
        .read(&op(request(HttpMethod::Get, "/ok")), None)
        .await
        .expect("ok");
    assert_eq!(ok.headers.get("etag").map(String::as_str), Some("W/\"1\""));
    assert_eq!(
        ok.headers.get("x-ms-continuation").map(String::as_str),
        Some("c")
    );
    assert_eq!(
        ok.headers.get("content-type").map(String::as_str),
        Some("application/json")
    );
}

#[tokio::test]
async fn request_carries_query_headers_and_bodies() {
    let server = TestServer::start(|_, _| Reply::json(200, json!({}))).await;
    let base = format!("{}/v1.0/", server.url);
    let c = connector(json!({
        "base_url": base,
        "query": { "api-version": "2023-10-31" },
        "headers": { "x-client": "dsrctl-test" }
    }));
    let mut patch = request(HttpMethod::Patch, "/users/o%27brien%40x.com");
    patch.query = vec![("$filter".into(), "mail eq 'a&b=c d'".into())];
    patch.json_patch = Some(json!([{"op": "remove", "path": "/mail"}]));
    patch.if_match = Some("W/\"7\"".into());
    patch.headers = vec![("x-extra".into(), "1".into())];
    c.mutate(&op(patch)).await.expect("patched");
    let mut post = request(HttpMethod::Post, "query");
    post.json = Some(json!({"query": "SELECT"}));
    c.read(&op(post), None).await.expect("posted");

    let calls = server.calls();
    assert_eq!(calls[0].method, "PATCH");
    assert_eq!(
        calls[0].target,
        "/v1.0/users/o%27brien%40x.com?api-version=2023-10-31&%24filter=mail+eq+%27a%26b%3Dc+d%27"
    );
    assert_eq!(
        calls[0].header("content-type"),
        Some("application/json-patch+json")
    );
    assert_eq!(calls[0].header("if-match"), Some("W/\"7\""));
    assert_eq!(calls[0].header("x-client"), Some("dsrctl-test"));
    assert_eq!(calls[0].header("x-extra"), Some("1"));
    assert_eq!(calls[0].json(), json!([{"op": "remove", "path": "/mail"}]));
    assert_eq!(calls[1].target, "/v1.0/query?api-version=2023-10-31");
    assert_eq!(calls[1].header("content-type"), Some("application/json"));
    assert_eq!(calls[1].json(), json!({"query": "SELECT"}));
}

#[tokio::test]
async fn off_origin_absolute_url_is_refused() {
    let server = TestServer::start(|_, _| Reply::json(200, json!({}))).await;
    let c = connector(json!({ "base_url": server.url }));
    for path in [
        "http://127.0.0.2:9/steal",
        "https://example.com/x",
        "/a/%2e%2e/admin",
    ] {
        let err = c
            .read(&op(request(HttpMethod::Get, path)), None)
            .await
            .expect_err("refused");
        assert!(matches!(err, ConnectorError::Refused(_)), "{path}: {err}");
    }
    let same = format!("{}/fine", server.url);
    c.read(&op(request(HttpMethod::Get, &same)), None)
        .await
        .expect("same origin");
    assert_eq!(server.count(), 1);
    assert_eq!(server.calls()[0].path, "/fine");
}

#[tokio::test]
async fn next_link_pagination_collects_every_page() {
    let server = TestServer::start(|call, _| {
        let page: u32 = call
            .query
            .as_deref()
            .and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("page=")))
            .and_then(|p| p.parse().ok())
            .unwrap_or(1);
        let host = call.header("host").unwrap_or_default().to_owned();
        let mut body = json!({ "value": [page * 10, page * 10 + 1] });
        if page < 3 {
            body["@odata.nextLink"] = json!(format!(
                "http://{host}/v1.0/users?page={}&api-version=9",
                page + 1
            ));
        }
        Reply::json(200, body)
    })
    .await;
    let c = connector(
        json!({ "base_url": format!("{}/v1.0", server.url), "query": {"api-version": "9"} }),
    );
    let mut req = request(HttpMethod::Get, "/users");
    req.paginate = Some(paginate(json!({ "next_link": "/@odata.nextLink" })));
    let mut sink = VecSink::default();
    let resp = c.read(&op(req), Some(&mut sink)).await.expect("all pages");
    // Streamed: every record went to the sink, in order, and none is kept in the body.
    assert_eq!(sink.0, [10, 11, 20, 21, 30, 31].map(|n| json!(n)));
    assert_eq!(resp.body, Value::Null);
    assert_eq!(resp.records, 6);
    assert_eq!(resp.attempts, 3);
    let targets: Vec<String> = server.calls().into_iter().map(|c| c.target).collect();
    assert_eq!(
        targets,
        [
            "/v1.0/users?api-version=9",
            "/v1.0/users?page=2&api-version=9",
            "/v1.0/users?page=3&api-version=9"
        ]
    );
}

#[tokio::test]
async fn next_link_off_origin_is_refused() {
    let server = TestServer::start(|_, _| {
        Reply::json(
            200,
            json!({"value": [1], "nextLink": "http://evil.example/page2"}),
        )
    })
    .await;
    let c = connector(json!({ "base_url": server.url }));
    let mut req = request(HttpMethod::Get, "/x");
    req.paginate = Some(paginate(json!({ "next_link": "/nextLink" })));
    let err = c.read(&op(req), None).await.expect_err("refused");
    assert!(matches!(err, ConnectorError::Refused(_)), "{err}");
    assert_eq!(server.count(), 1);
}

#[tokio::test]
async fn continuation_token_pagination_collects_every_page() {
    let server = TestServer::start(|call, _| {
        let body = call.json();
        let (items, token) = match body.get("continuationToken").and_then(Value::as_str) {
            None => (json!([{"$dtId": "a"}]), json!("tok/1~")),
            Some("tok/1~") => (json!([{"$dtId": "b"}]), json!("tok2")),
            Some(_) => (json!([{"$dtId": "c"}]), Value::Null),
        };
        Reply::json(200, json!({"value": items, "continuationToken": token}))
    })
    .await;
    let c = connector(json!({ "base_url": server.url, "query": {"api-version": "2023-10-31"} }));
    let mut req = request(HttpMethod::Post, "/query");
    req.json = Some(json!({"query": "SELECT * FROM digitaltwins"}));
    req.paginate = Some(paginate(json!({
        "continuation_token": "/continuationToken",
        "token_field": "continuationToken"
    })));
    let resp = c.read(&op(req), None).await.expect("all pages");
    assert_eq!(
        resp.body,
        json!([{"$dtId": "a"}, {"$dtId": "b"}, {"$dtId": "c"}])
    );
    let calls = server.calls();
    assert_eq!(calls.len(), 3);
    assert_eq!(
        calls[0].json(),
        json!({"query": "SELECT * FROM digitaltwins"})
    );
    assert_eq!(
        calls[1].json(),
        json!({"query": "SELECT * FROM digitaltwins", "continuationToken": "tok/1~"})
    );
    assert_eq!(calls[2].json()["continuationToken"], json!("tok2"));
    assert!(
        calls
            .iter()
            .all(|c| c.target == "/query?api-version=2023-10-31")
    );
}

#[tokio::test]
async fn continuation_header_pagination_collects_every_page() {
    let server = TestServer::start(|call, _| match call.header("x-ms-continuation") {
        None => Reply::json(200, json!([1, 2])).header("x-ms-continuation", "c1"),
        Some("c1") => Reply::json(200, json!([3])).header("x-ms-continuation", "c2"),
        Some(_) => Reply::json(200, json!([4, 5])),
    })
    .await;
    let c = connector(json!({ "base_url": server.url }));
    let mut req = request(HttpMethod::Post, "/enrollments/query");
    req.json = Some(json!({"query": "*"}));
    req.paginate = Some(paginate(
        json!({ "items": "", "continuation_header": "x-ms-continuation" }),
    ));
    let resp = c.read(&op(req), None).await.expect("all pages");
    assert_eq!(resp.body, json!([1, 2, 3, 4, 5]));
    let seen: Vec<Option<String>> = server
        .calls()
        .iter()
        .map(|c| c.header("x-ms-continuation").map(str::to_owned))
        .collect();
    assert_eq!(seen, [None, Some("c1".into()), Some("c2".into())]);
}

#[tokio::test]
async fn endless_listing_stops_at_max_pages_with_an_error() {
    let server = TestServer::start(|_, n| {
        Reply::json(200, json!({"value": [n]})).header("x-ms-continuation", &format!("c{n}"))
    })
    .await;
    let c = connector(json!({ "base_url": server.url }));
    let mut req = request(HttpMethod::Get, "/x");
    req.paginate = Some(paginate(
        json!({ "continuation_header": "x-ms-continuation", "max_pages": 4 }),
    ));
    let err = c.read(&op(req), None).await.expect_err("endless");
    assert!(err.to_string().contains("max_pages"), "{err}");
    assert_eq!(server.count(), 4);
}

#[tokio::test]
async fn each_page_is_retried_on_its_own() {
    let server = TestServer::start(|call, n| {
        if n == 1 {
            return Reply::json(503, json!({}));
        }
        match call.header("x-ms-continuation") {
            None => Reply::json(200, json!({"value": [1]})).header("x-ms-continuation", "c1"),
            Some(_) => Reply::json(200, json!({"value": [2]})),
        }
    })
    .await;
    let c = connector(json!({ "base_url": server.url, "retry": fast_retry(3) }));
    let mut req = request(HttpMethod::Get, "/x");
    req.paginate = Some(paginate(
        json!({ "continuation_header": "x-ms-continuation" }),
    ));
    let resp = c.read(&op(req), None).await.expect("pages");
    assert_eq!(resp.body, json!([1, 2]));
    assert_eq!(resp.attempts, 3);
    let calls = server.calls();
    assert_eq!(calls[1].header("x-ms-continuation"), Some("c1"));
    assert_eq!(calls[2].header("x-ms-continuation"), Some("c1"));
}

#[tokio::test]
async fn oauth2_token_is_cached_and_refreshed_once_on_401() {
    let tokens = Arc::new(AtomicUsize::new(0));
    let accepted = Arc::new(AtomicUsize::new(1));
    let (t, a) = (tokens.clone(), accepted.clone());
    let server = TestServer::start(move |call, _| {
        if call.path == "/oauth/token" {
            let k = t.fetch_add(1, Ordering::SeqCst) + 1;
            return Reply::json(
                200,
                json!({"access_token": format!("tok-{k}"), "expires_in": 3600, "token_type": "Bearer"}),
            );
        }
        let want = format!("Bearer tok-{}", a.load(Ordering::SeqCst));
        match call.header("authorization") {
            Some(got) if got == want => Reply::json(200, json!({"ok": true})),
            got => Reply::raw(401, "text/plain", &format!("invalid token {}", got.unwrap_or(""))),
        }
    })
    .await;
    let secrets = MapSecrets(vec![("OAUTH_SECRET", "s3cret+/=value")]);
    let c = connector_with(
        json!({
            "base_url": server.url,
            "auth": {
                "type": "oauth2",
                "token_url": format!("{}/oauth/token", server.url),
                "client_id": "app-1",
                "client_secret": { "env": "OAUTH_SECRET" },
                "scope": "https://svc/.default"
            }
        }),
        &secrets,
    );
    let read = op(request(HttpMethod::Get, "/data"));
    for _ in 0..3 {
        c.read(&read, None).await.expect("authorized");
    }
    assert_eq!(
        tokens.load(Ordering::SeqCst),
        1,
        "token fetched once for three calls"
    );
    let form = server.calls()[0].body.clone();
    for part in [
        "grant_type=client_credentials",
        "client_id=app-1",
        "client_secret=s3cret%2B%2F%3Dvalue",
        "scope=https%3A%2F%2Fsvc%2F.default",
    ] {
        assert!(form.contains(part), "{part} in {form}");
    }

    // The service stops accepting the cached token: one refresh, one resend.
    accepted.store(2, Ordering::SeqCst);
    let resp = c.read(&read, None).await.expect("refreshed");
    assert_eq!(resp.attempts, 2);
    assert_eq!(tokens.load(Ordering::SeqCst), 2);

    // A fresh token that is refused too: the 401 is final, after exactly one refresh.
    accepted.store(99, Ordering::SeqCst);
    let before = server.count();
    let err = c.read(&read, None).await.expect_err("still 401");
    assert!(
        matches!(err, ConnectorError::Status { status: 401, .. }),
        "{err}"
    );
    assert_eq!(tokens.load(Ordering::SeqCst), 3);
    assert_eq!(server.count() - before, 3, "call, token, call");
    let text = err.to_string();
    assert!(
        !text.contains("tok-3") && !text.contains("s3cret"),
        "{text}"
    );
    assert!(text.contains("***"), "{text}");
}

#[tokio::test]
async fn oauth2_token_endpoint_refusal_is_a_config_error_without_the_secret() {
    let server = TestServer::start(|call, _| {
        Reply::json(400, json!({"error": "invalid_client", "echo": call.body}))
    })
    .await;
    let secrets = MapSecrets(vec![("OAUTH_BAD", "wrong-secret-42")]);
    let c = connector_with(
        json!({
            "base_url": server.url,
            "auth": {
                "type": "oauth2",
                "token_url": format!("{}/token", server.url),
                "client_id": "app",
                "client_secret": { "env": "OAUTH_BAD" }
            }
        }),
        &secrets,
    );
    let err = c
        .read(&op(request(HttpMethod::Get, "/x")), None)
        .await
        .expect_err("no token");
    let text = err.to_string();
    assert!(matches!(err, ConnectorError::Config(_)), "{text}");
    assert!(
        text.contains("invalid_client") && !text.contains("wrong-secret-42"),
        "{text}"
    );
    assert_eq!(server.count(), 1, "no call to the service without a token");
}

fn auth_echo_server() -> impl Fn(&support::Call, usize) -> Reply + Send + Sync + 'static {
    |call, _| {
        let auth = call.header("authorization").unwrap_or_default();
        let key = call.header("x-api-key").unwrap_or_default();
        if call.path == "/echo-error" {
            return Reply::raw(500, "text/plain", &format!("bad: {auth} {key}"));
        }
        Reply::json(200, json!({"authorization": auth, "x-api-key": key}))
    }
}

#[tokio::test]
async fn bearer_token_from_env_and_from_file() {
    let server = TestServer::start(auth_echo_server()).await;
    // SAFETY: a variable name used by this test only.
    unsafe { std::env::set_var("DSRCTL_TEST_HTTP_BEARER_ENV", "env-token-123") };
    let c = connector(json!({
        "base_url": server.url,
        "auth": { "type": "bearer", "token": { "env": "DSRCTL_TEST_HTTP_BEARER_ENV" } }
    }));
    let resp = c
        .read(&op(request(HttpMethod::Get, "/me")), None)
        .await
        .expect("ok");
    assert_eq!(resp.body["authorization"], json!("Bearer env-token-123"));

    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir(dir.path().join("secrets")).expect("mkdir");
    std::fs::write(dir.path().join("secrets/token"), "file-token-456\n").expect("write");
    let c = connector_in(
        json!({
            "base_url": server.url,
            "auth": { "type": "bearer", "token": { "file": "secrets/token" } }
        }),
        dir.path().to_path_buf(),
    );
    let resp = c
        .read(&op(request(HttpMethod::Get, "/me")), None)
        .await
        .expect("ok");
    assert_eq!(resp.body["authorization"], json!("Bearer file-token-456"));
}

#[tokio::test]
async fn missing_secret_names_the_variable() {
    let cfg: HttpConnector = serde_json::from_value(json!({
        "base_url": "http://127.0.0.1:9",
        "auth": { "type": "bearer", "token": { "env": "DSRCTL_TEST_HTTP_NEVER_SET" } }
    }))
    .expect("config");
    let err = HttpClient::new(
        "graph",
        &cfg,
        &Defaults::default(),
        &EnvFileResolver::new("."),
    )
    .expect_err("missing");
    let text = err.to_string();
    assert!(
        text.contains("graph") && text.contains("DSRCTL_TEST_HTTP_NEVER_SET"),
        "{text}"
    );
}

#[tokio::test]
async fn secrets_never_appear_in_error_text() {
    let server = TestServer::start(auth_echo_server()).await;
    let secrets = MapSecrets(vec![
        ("LEAK_BEARER", "bearer-secret-aaa"),
        ("LEAK_KEY", "api-key-secret-bbb"),
        ("LEAK_PW", "password-secret-ccc"),
    ]);
    let auths = [
        json!({ "type": "bearer", "token": { "env": "LEAK_BEARER" } }),
        json!({ "type": "api_key", "header": "x-api-key", "value": { "env": "LEAK_KEY" } }),
        json!({ "type": "basic", "username": "svc", "password": { "env": "LEAK_PW" } }),
    ];
    for auth in auths {
        let c = connector_with(
            json!({ "base_url": server.url, "auth": auth, "retry": fast_retry(1) }),
            &secrets,
        );
        let ok = c
            .read(&op(request(HttpMethod::Get, "/me")), None)
            .await
            .expect("ok");
        assert_ne!(
            ok.body,
            json!({"authorization": "", "x-api-key": ""}),
            "auth was sent"
        );
        let err = c
            .read(&op(request(HttpMethod::Get, "/echo-error")), None)
            .await
            .expect_err("500");
        let text = format!("{err} {err:?}");
        for secret in [
            "bearer-secret-aaa",
            "api-key-secret-bbb",
            "password-secret-ccc",
            "c3ZjOnBhc3N3b3JkLXNlY3JldC1jY2M=",
        ] {
            assert!(!text.contains(secret), "{secret} leaked: {text}");
        }
        assert!(text.contains("***"), "{text}");
        assert!(
            !format!("{c:?}").contains("secret-"),
            "Debug of the connector leaks"
        );
    }
}

#[tokio::test]
async fn per_connector_concurrency_limit_is_respected() {
    let server =
        TestServer::start(|_, _| Reply::json(200, json!({})).after(Duration::from_millis(150)))
            .await;
    let c = Arc::new(connector(
        json!({ "base_url": server.url, "concurrency": 2 }),
    ));
    let calls = (0..8).map(|i| {
        let c = c.clone();
        async move {
            c.read(&op(request(HttpMethod::Get, &format!("/item/{i}"))), None)
                .await
                .expect("ok")
        }
    });
    futures::future::join_all(calls).await;
    assert_eq!(server.count(), 8);
    assert_eq!(server.max_in_flight(), 2);
}

#[tokio::test]
async fn rate_limit_spaces_calls() {
    let server = TestServer::start(|_, _| Reply::json(200, json!({}))).await;
    let c = connector(
        json!({ "base_url": server.url, "rate_limit": { "per_second": 10, "burst": 1 } }),
    );
    let start = Instant::now();
    for _ in 0..5 {
        c.read(&op(request(HttpMethod::Get, "/x")), None)
            .await
            .expect("ok");
    }
    assert!(
        start.elapsed() >= Duration::from_millis(380),
        "{:?}",
        start.elapsed()
    );
}

#[tokio::test]
async fn sink_gets_the_body_or_the_items_of_a_bare_list() {
    let server = TestServer::start(|call, _| match call.path.as_str() {
        "/one" => Reply::json(200, json!({"id": 1})),
        "/list" => Reply::json(200, json!([{"id": 1}, {"id": 2}])),
        "/gone" => Reply::json(404, json!({"error": "none"})),
        _ => Reply::raw(204, "application/json", ""),
    })
    .await;
    let c = connector(json!({ "base_url": server.url }));
    let mut sink = VecSink::default();
    let one = c
        .read(&op(request(HttpMethod::Get, "/one")), Some(&mut sink))
        .await
        .expect("ok");
    let list = c
        .read(&op(request(HttpMethod::Get, "/list")), Some(&mut sink))
        .await
        .expect("ok");
    let none = c
        .read(&op(request(HttpMethod::Get, "/none")), Some(&mut sink))
        .await
        .expect("ok");
    let mut gone = request(HttpMethod::Get, "/gone");
    gone.absent_on = vec![404];
    let gone = c.read(&op(gone), Some(&mut sink)).await.expect("absent");
    assert_eq!(
        (one.records, list.records, none.records, gone.records),
        (1, 2, 0, 0)
    );
    assert_eq!(
        sink.0,
        [json!({"id": 1}), json!({"id": 1}), json!({"id": 2})]
    );
}
