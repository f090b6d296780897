//! Hostile subject values, rendered by the template layer and sent by the HTTP connector to
//! a server that records the raw request: each value addresses exactly the resource meant.

mod support;

use std::collections::BTreeMap;

use dsrctl::compile::Renderer;
use dsrctl::connectors::http::HttpClient;
use dsrctl::connectors::{Connector, ConnectorError, HttpRequest, Operation};
use dsrctl::model::{Defaults, HttpAction, HttpConnector};
use dsrctl::secret::EnvFileResolver;
use percent_encoding::percent_decode_str;
use proptest::prelude::*;
use serde_json::{Value, json};
use support::{Reply, TestServer};

/// Renders an action the way the engine does: path, query and header templates to text,
/// JSON body strings in place.
fn render(action: &Value, subject: &str) -> Result<HttpRequest, String> {
    let h: HttpAction = serde_json::from_value(action.clone()).map_err(|e| e.to_string())?;
    let r = Renderer::new();
    let ctx = json!({ "subject": { "id": subject } });
    let pairs = |m: &BTreeMap<String, String>| {
        m.iter()
            .map(|(k, v)| Ok((k.clone(), r.render(v, &ctx).map_err(|e| e.to_string())?)))
            .collect::<Result<Vec<_>, String>>()
    };
    Ok(HttpRequest {
        method: h.method,
        path: r.render(&h.path, &ctx).map_err(|e| e.to_string())?,
        query: pairs(&h.query)?,
        headers: pairs(&h.headers)?,
        json: match &h.json {
            Some(j) => Some(r.render_json(j, &ctx).map_err(|e| e.to_string())?),
            None => None,
        },
        json_patch: None,
        form: None,
        graphql: false,
        if_match: None,
        paginate: None,
        absent_on: vec![],
        idempotent: false,
    })
}

fn connector(url: &str) -> HttpClient {
    let cfg: HttpConnector = serde_json::from_value(json!({
        "base_url": format!("{url}/v1.0"),
        "query": { "api-version": "1" },
        "retry": { "attempts": 1 }
    }))
    .expect("config");
    HttpClient::new(
        "svc",
        &cfg,
        &Defaults::default(),
        &EnvFileResolver::new("."),
    )
    .expect("connector")
}

fn hostile() -> Vec<String> {
    vec![
        "a/../../admin".into(),
        "x?y=1".into(),
        "x#frag".into(),
        "o'brien@x.com".into(),
        "%2e%2e".into(),
        "..%2F..%2Fadmin".into(),
        "a\\..\\admin".into(),
        "http://evil.example/x".into(),
        "//evil.example/x".into(),
        "Zoë 山田 🙂".into(),
        "x&api-version=0&y=".into(),
        "  spaces + plus  ".into(),
        "x".repeat(10 * 1024),
    ]
}

/// Decodes the one segment between `/v1.0/users/` and `/messages` of a raw path.
fn the_segment(raw_path: &str) -> Option<String> {
    let rest = raw_path.strip_prefix("/v1.0/users/")?;
    let seg = rest.strip_suffix("/messages")?;
    if seg.contains('/') {
        return None;
    }
    Some(percent_decode_str(seg).decode_utf8().ok()?.into_owned())
}

fn query_of(raw: Option<&str>) -> Vec<(String, String)> {
    url::form_urlencoded::parse(raw.unwrap_or("").as_bytes())
        .into_owned()
        .collect()
}

#[tokio::test]
async fn hostile_values_address_only_what_was_meant() {
    let server = TestServer::start(|_, _| Reply::json(200, json!({}))).await;
    let c = connector(&server.url);
    let action = json!({
        "method": "POST",
        "path": "/users/{{seg subject.id}}/messages",
        "query": { "$filter": "mail eq '{{odata subject.id}}'" },
        "json": { "mail": "{{subject.id}}", "note": "for {{subject.id}}" }
    });
    for value in hostile() {
        let req = render(&action, &value).expect("renders");
        c.mutate(&Operation::Http(req)).await.expect("sent");
        let call = server.calls().pop().expect("one call");
        assert_eq!(call.method, "POST");
        assert_eq!(
            the_segment(&call.path).as_deref(),
            Some(value.as_str()),
            "path {}",
            call.path
        );
        let query = query_of(call.query.as_deref());
        let literal = format!("mail eq '{}'", value.replace('\'', "''"));
        assert_eq!(
            query,
            [
                ("api-version".to_owned(), "1".to_owned()),
                ("$filter".to_owned(), literal)
            ],
            "query of {value:?}"
        );
        assert_eq!(
            call.json(),
            json!({ "mail": value, "note": format!("for {value}") })
        );
    }
    assert_eq!(server.count(), hostile().len());
}

#[tokio::test]
async fn dot_and_empty_segments_are_refused_before_sending() {
    let server = TestServer::start(|_, _| Reply::json(200, json!({}))).await;
    let action = json!({ "method": "DELETE", "path": "/users/{{seg subject.id}}" });
    for value in ["..", ".", ""] {
        let err = render(&action, value).expect_err("refused by the template layer");
        assert!(err.contains("path segment"), "{value:?}: {err}");
    }
    // Even a path built without `seg` cannot climb out: the connector refuses dot segments.
    let c = connector(&server.url);
    let raw = json!({ "method": "DELETE", "path": "/users/{{subject.id}}" });
    for value in ["../admin", "%2e%2e/admin", "..\\admin"] {
        let req = render(&raw, value).expect("renders unsafely");
        let err = c.mutate(&Operation::Http(req)).await.expect_err("refused");
        assert!(matches!(err, ConnectorError::Refused(_)), "{value}: {err}");
    }
    assert_eq!(server.count(), 0);
}

#[tokio::test]
async fn header_injection_is_refused() {
    let server = TestServer::start(|_, _| Reply::json(200, json!({}))).await;
    let c = connector(&server.url);
    let action = json!({
        "method": "GET",
        "path": "/users",
        "headers": { "x-subject": "{{subject.id}}" }
    });
    let req = render(&action, "a\r\nAuthorization: Bearer stolen").expect("renders");
    let err = c
        .read(&Operation::Http(req), None)
        .await
        .expect_err("refused");
    assert!(matches!(err, ConnectorError::Refused(_)), "{err}");
    assert_eq!(server.count(), 0);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Any non-dot value sent through `seg` arrives as exactly one path segment holding it.
    #[test]
    fn any_value_is_one_segment(value in "\\PC{1,40}") {
        prop_assume!(value != "." && value != "..");
        let rt = tokio::runtime::Runtime::new().expect("runtime");
        rt.block_on(async {
            let server = TestServer::start(|_, _| Reply::json(200, json!({}))).await;
            let c = connector(&server.url);
            let action = json!({ "method": "GET", "path": "/users/{{seg subject.id}}/messages" });
            let req = render(&action, &value).expect("renders");
            c.read(&Operation::Http(req), None).await.expect("sent");
            let call = server.calls().pop().expect("one call");
            prop_assert_eq!(the_segment(&call.path), Some(value.clone()));
            Ok(())
        })?;
    }
}
