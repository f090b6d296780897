//! The HTTP connector's retry rules by what may have happened at the service: a call the
//! service may have acted on (answer lost, reset, hang past the timeout, garbage or a body
//! cut short) is resent only when it is idempotent; a call that never reached the service
//! (connection refused) or that it answered with "try later" (429, 503 with Retry-After) is
//! resent whatever the method. Every failure says which it was.

mod support;

use std::time::Duration;

use dsrctl::connectors::http::HttpClient;
use dsrctl::connectors::{Connector, ConnectorError, HttpRequest, Operation, Reach};
use dsrctl::model::{Defaults, HttpConnector, HttpMethod};
use dsrctl::secret::EnvFileResolver;
use serde_json::json;
use support::{Fault, Reply, TestServer};

fn connector(url: &str) -> HttpClient {
    let cfg: HttpConnector = serde_json::from_value(json!({
        "base_url": url,
        "timeout": "300ms",
        "retry": { "attempts": 4, "backoff": "10ms", "max_elapsed": "30s" },
    }))
    .expect("valid connector config");
    HttpClient::new(
        "svc",
        &cfg,
        &Defaults::default(),
        &EnvFileResolver::new(std::env::temp_dir()),
    )
    .expect("connector builds")
}

fn call(method: HttpMethod, idempotent: bool) -> Operation {
    Operation::Http(HttpRequest {
        method,
        path: "/erasures".into(),
        query: vec![],
        headers: vec![],
        json: Some(json!({"subject": "s-1"})),
        json_patch: None,
        form: None,
        graphql: false,
        if_match: None,
        paginate: None,
        absent_on: vec![],
        idempotent,
    })
}

/// The service acts (answers 201), then this happens to the answer.
fn doubtful() -> Vec<(&'static str, Reply)> {
    let acted = || Reply::json(201, json!({"id": "e-1"}));
    vec![
        ("answer lost", acted().broken(Fault::LoseAnswer)),
        ("reset", acted().broken(Fault::Reset)),
        ("body cut short", acted().broken(Fault::Truncate)),
        (
            "hang past the timeout",
            acted().after(Duration::from_secs(3)),
        ),
        (
            "garbage body",
            Reply::raw(200, "application/json", "<html>oops</html>"),
        ),
        (
            "502 from a gateway",
            Reply::json(502, json!({"error": "bad gateway"})),
        ),
        (
            "503 without Retry-After",
            Reply::json(503, json!({"error": "unavailable"})),
        ),
    ]
}

#[tokio::test]
async fn non_idempotent_post_is_sent_once_under_every_doubtful_fault() {
    for (name, reply) in doubtful() {
        let server = TestServer::start(move |_, _| reply.clone()).await;
        let err = connector(&server.url)
            .mutate(&call(HttpMethod::Post, false))
            .await
            .expect_err(name);
        assert_eq!(server.count(), 1, "{name}: sent again");
        assert_eq!(err.attempts(), 1, "{name}");
        assert_eq!(err.reach(), Reach::MaybeProcessed, "{name}: {err}");
        assert!(err.maybe_processed());
    }
}

#[tokio::test]
async fn idempotent_mutation_is_resent_after_a_doubtful_fault() {
    for (name, reply) in doubtful() {
        // Garbage in a 2xx answer is not retried for any method: it is an answer.
        if name == "garbage body" {
            continue;
        }
        let server = TestServer::start(move |_, n| {
            if n == 0 {
                reply.clone()
            } else {
                Reply::json(200, json!({"ok": true}))
            }
        })
        .await;
        let resp = connector(&server.url)
            .mutate(&call(HttpMethod::Put, true))
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(resp.status, Some(200), "{name}");
        assert_eq!(resp.attempts, 2, "{name}");
        assert_eq!(server.count(), 2, "{name}");
    }
}

#[tokio::test]
async fn reads_are_resent_after_a_reset() {
    let server = TestServer::start(|_, n| {
        let r = Reply::json(200, json!({"value": []}));
        if n == 0 { r.broken(Fault::Reset) } else { r }
    })
    .await;
    let resp = connector(&server.url)
        .read(&call(HttpMethod::Get, false), None)
        .await
        .expect("read");
    assert_eq!(resp.attempts, 2);
}

#[tokio::test]
async fn try_later_answers_are_retried_for_a_post() {
    for (name, first) in [
        (
            "429",
            Reply::json(429, json!({})).header("Retry-After", "0"),
        ),
        (
            "503 with Retry-After",
            Reply::json(503, json!({})).header("Retry-After", "0"),
        ),
    ] {
        let server = TestServer::start(move |_, n| {
            if n == 0 {
                first.clone()
            } else {
                Reply::json(201, json!({"id": "e-1"}))
            }
        })
        .await;
        let resp = connector(&server.url)
            .mutate(&call(HttpMethod::Post, false))
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(resp.status, Some(201), "{name}");
        assert_eq!(server.count(), 2, "{name}");
    }
    // Always "try later": the last answer says it was not processed.
    let server =
        TestServer::start(|_, _| Reply::json(429, json!({})).header("Retry-After", "0")).await;
    let err = connector(&server.url)
        .mutate(&call(HttpMethod::Post, false))
        .await
        .expect_err("throttled");
    assert_eq!(err.attempts(), 4);
    assert_eq!(err.reach(), Reach::NotProcessed);
}

#[tokio::test]
async fn refused_connection_is_retried_for_a_post_and_sent_nothing() {
    let err = connector(&support::refused_url())
        .mutate(&call(HttpMethod::Post, false))
        .await
        .expect_err("refused");
    assert!(
        matches!(err, ConnectorError::Transport { attempts: 4, .. }),
        "{err}"
    );
    assert_eq!(err.reach(), Reach::NotSent);
}

#[tokio::test]
async fn a_refusal_was_not_processed() {
    let server = TestServer::start(|_, _| Reply::json(409, json!({"error": "conflict"}))).await;
    let err = connector(&server.url)
        .mutate(&call(HttpMethod::Post, false))
        .await
        .expect_err("409");
    assert_eq!(err.status(), Some(409));
    assert_eq!(err.reach(), Reach::NotProcessed);
    assert_eq!(server.count(), 1);
}
