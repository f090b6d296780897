//! The HTTP connector features SaaS APIs need, against local servers that record every
//! call: form bodies, GraphQL (errors in a 200, Shopify's throttling), cursor, `Link`
//! header and offset pagination, and rate-limit headers that pause the connector.

mod support;

use std::time::{Duration, Instant};

use dsrctl::connectors::http::HttpClient;
use dsrctl::connectors::{Connector, ConnectorError, HttpRequest, Operation, Reach};
use dsrctl::model::{Defaults, HttpConnector, HttpMethod, Paginate};
use dsrctl::secret::EnvFileResolver;
use serde_json::{Value, json};
use support::{Reply, TestServer};

fn connector(cfg: Value) -> HttpClient {
    let cfg: HttpConnector = serde_json::from_value(cfg).expect("valid connector config");
    HttpClient::new(
        "svc",
        &cfg,
        &Defaults::default(),
        &EnvFileResolver::new(std::env::temp_dir()),
    )
    .expect("connector builds")
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
        idempotent: false,
    }
}

fn paginate(v: Value) -> Option<Paginate> {
    Some(serde_json::from_value(v).expect("valid paginate"))
}

fn param(call: &support::Call, name: &str) -> Option<String> {
    url::form_urlencoded::parse(call.query.as_deref().unwrap_or("").as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

#[tokio::test]
async fn a_form_body_is_url_encoded_with_its_content_type() {
    let server = TestServer::start(|_, _| Reply::json(200, json!({"id": "cus_1"}))).await;
    let c = connector(json!({ "base_url": server.url }));
    let mut req = request(HttpMethod::Post, "/v1/customers/cus_1");
    req.form = Some(vec![
        ("name".into(), "Zoë O'Brien & Co".into()),
        ("metadata[dsr]".into(), "r-1".into()),
    ]);
    c.mutate(&Operation::Http(req)).await.expect("sent");
    let call = &server.calls()[0];
    assert_eq!(
        call.header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
    let pairs: Vec<(String, String)> = url::form_urlencoded::parse(call.body.as_bytes())
        .into_owned()
        .collect();
    assert_eq!(
        pairs,
        [
            ("name".to_owned(), "Zoë O'Brien & Co".to_owned()),
            ("metadata[dsr]".to_owned(), "r-1".to_owned())
        ]
    );
    let mut both = request(HttpMethod::Post, "/x");
    both.form = Some(vec![]);
    both.json = Some(json!({}));
    assert!(matches!(
        c.mutate(&Operation::Http(both)).await,
        Err(ConnectorError::Refused(_))
    ));
}

#[tokio::test]
async fn graphql_errors_in_a_200_answer_fail_the_call() {
    let server = TestServer::start(|call, _| {
        let body = call.json();
        match body["variables"]["id"].as_str() {
            // A request error: nothing executed, no `data`.
            Some("bad") => Reply::json(
                200,
                json!({"errors": [{"message": "Variable $id of type ID! was provided invalid value"}]}),
            ),
            // A field error during execution: `data` is there, part of it may have run.
            Some("partial") => Reply::json(
                200,
                json!({"data": {"customerRequestDataErasure": null},
                       "errors": [{"message": "Internal error", "path": ["customerRequestDataErasure"]}]}),
            ),
            _ => Reply::json(
                200,
                json!({"data": {"customerRequestDataErasure": {"customerId": "gid://shopify/Customer/1", "userErrors": []}}}),
            ),
        }
    })
    .await;
    let c = connector(json!({ "base_url": server.url }));
    let gql = |id: &str| {
        let mut req = request(HttpMethod::Post, "/admin/api/2024-07/graphql.json");
        req.json = Some(json!({
            "query": "mutation erase($id: ID!) { customerRequestDataErasure(customerId: $id) { customerId userErrors { field message } } }",
            "variables": {"id": id}
        }));
        req.graphql = true;
        Operation::Http(req)
    };
    let ok = c
        .mutate(&gql("gid://shopify/Customer/1"))
        .await
        .expect("no errors");
    assert_eq!(
        ok.body["data"]["customerRequestDataErasure"]["customerId"],
        "gid://shopify/Customer/1"
    );
    let call = &server.calls()[0];
    assert_eq!(call.header("content-type"), Some("application/json"));
    assert!(
        call.json()["query"]
            .as_str()
            .unwrap()
            .starts_with("mutation erase")
    );
    match c.mutate(&gql("bad")).await {
        Err(ConnectorError::InvalidResponse { message, reach, .. }) => {
            assert!(message.contains("provided invalid value"), "{message}");
            assert_eq!(reach, Reach::NotProcessed);
        }
        other => panic!("expected a GraphQL error, got {other:?}"),
    }
    match c.mutate(&gql("partial")).await {
        Err(ConnectorError::InvalidResponse { reach, .. }) => {
            assert_eq!(reach, Reach::MaybeProcessed)
        }
        other => panic!("expected a GraphQL error, got {other:?}"),
    }
}

#[tokio::test]
async fn graphql_throttled_is_retried_after_the_cost_restores() {
    let server = TestServer::start(|_, n| {
        if n == 0 {
            Reply::json(
                200,
                json!({"errors": [{"message": "Throttled", "extensions": {"code": "THROTTLED"}}],
                       "extensions": {"cost": {"requestedQueryCost": 101, "actualQueryCost": null,
                           "throttleStatus": {"maximumAvailable": 1000.0, "currentlyAvailable": 51, "restoreRate": 50.0}}}}),
            )
        } else {
            Reply::json(200, json!({"data": {"customers": {"nodes": []}}}))
        }
    })
    .await;
    let c =
        connector(json!({ "base_url": server.url, "retry": {"attempts": 3, "backoff": "10ms"} }));
    let mut req = request(HttpMethod::Post, "/graphql.json");
    req.json = Some(json!({"query": "{ customers(first: 1) { nodes { id } } }", "variables": {}}));
    req.graphql = true;
    let start = Instant::now();
    let resp = c.read(&Operation::Http(req), None).await.expect("retried");
    // (101 - 51) / 50 = 1 second.
    assert!(
        start.elapsed() >= Duration::from_millis(950),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(resp.body["data"]["customers"]["nodes"], json!([]));
    assert_eq!(server.count(), 2);
}

#[tokio::test]
async fn stripe_style_cursor_from_the_last_item_until_has_more_is_false() {
    let server = TestServer::start(|call, _| {
        let ids = ["cus_3", "cus_2", "cus_1"];
        let start = param(call, "starting_after")
            .and_then(|after| ids.iter().position(|i| *i == after).map(|p| p + 1))
            .unwrap_or(0);
        let page: Vec<Value> = ids[start..]
            .iter()
            .take(2)
            .map(|id| json!({"id": id}))
            .collect();
        let has_more = start + page.len() < ids.len();
        Reply::json(
            200,
            json!({"object": "list", "data": page, "has_more": has_more}),
        )
    })
    .await;
    let c = connector(json!({ "base_url": server.url }));
    let mut req = request(HttpMethod::Get, "/v1/customers");
    req.query = vec![
        ("email".into(), "a@x.com".into()),
        ("limit".into(), "2".into()),
    ];
    req.paginate = paginate(json!({"items": "/data", "has_more": "/has_more",
        "cursor_param": "starting_after", "cursor_item": "/id"}));
    let resp = c.read(&Operation::Http(req), None).await.expect("pages");
    assert_eq!(
        resp.body,
        json!([{"id": "cus_3"}, {"id": "cus_2"}, {"id": "cus_1"}])
    );
    let calls = server.calls();
    assert_eq!(calls.len(), 2);
    assert_eq!(param(&calls[1], "starting_after").as_deref(), Some("cus_2"));
    assert_eq!(param(&calls[1], "email").as_deref(), Some("a@x.com"));
    assert_eq!(param(&calls[1], "limit").as_deref(), Some("2"));
}

#[tokio::test]
async fn a_cursor_in_the_body_is_sent_back_as_a_query_parameter() {
    // HubSpot: `paging.next.after`, sent back as `after`.
    let server = TestServer::start(|call, _| match param(call, "after").as_deref() {
        None => Reply::json(
            200,
            json!({"results": [1, 2], "paging": {"next": {"after": "MjA="}}}),
        ),
        Some("MjA=") => Reply::json(200, json!({"results": [3]})),
        Some(other) => Reply::json(400, json!({"message": format!("bad cursor {other}")})),
    })
    .await;
    let c = connector(json!({ "base_url": server.url }));
    let mut req = request(HttpMethod::Get, "/crm/v3/objects/contacts");
    req.paginate = paginate(
        json!({"items": "/results", "cursor": "/paging/next/after", "cursor_param": "after"}),
    );
    let resp = c.read(&Operation::Http(req), None).await.expect("pages");
    assert_eq!(resp.body, json!([1, 2, 3]));
}

#[tokio::test]
async fn has_more_without_a_cursor_is_an_invalid_response() {
    let server =
        TestServer::start(|_, _| Reply::json(200, json!({"data": [], "has_more": true}))).await;
    let c = connector(json!({ "base_url": server.url }));
    let mut req = request(HttpMethod::Get, "/v1/customers");
    req.paginate = paginate(json!({"items": "/data", "has_more": "/has_more",
        "cursor_param": "starting_after", "cursor_item": "/id"}));
    assert!(matches!(
        c.read(&Operation::Http(req), None).await,
        Err(ConnectorError::InvalidResponse { .. })
    ));
}

#[tokio::test]
async fn the_link_header_next_is_followed_on_the_same_origin_only() {
    let server = TestServer::start(|call, _| {
        let host = call.header("host").unwrap_or_default().to_owned();
        match param(call, "page_info").as_deref() {
            None => Reply::json(200, json!({"customers": [{"id": 1}]})).header(
                "Link",
                &format!("<http://{host}/admin/customers.json?page_info=p2&limit=1>; rel=\"next\""),
            ),
            Some("p2") => Reply::json(200, json!({"customers": [{"id": 2}]})).header(
                "Link",
                &format!("<http://{host}/admin/customers.json?page_info=p1>; rel=\"previous\", <http://evil.example/steal?page_info=p3>; rel=\"next\""),
            ),
            Some(_) => Reply::json(200, json!({"customers": []})),
        }
    })
    .await;
    let c = connector(json!({ "base_url": server.url }));
    let mut req = request(HttpMethod::Get, "/admin/customers.json");
    req.paginate = paginate(json!({"items": "/customers", "link_header": true}));
    let err = c
        .read(&Operation::Http(req.clone()), None)
        .await
        .expect_err("an off-origin next link is refused");
    assert!(matches!(err, ConnectorError::Refused(_)), "{err:?}");
    assert_eq!(server.count(), 2, "nothing sent to the other origin");
}

#[tokio::test]
async fn offset_pages_advance_by_the_items_received_until_a_short_page() {
    let server = TestServer::start(|call, _| {
        let offset: usize = param(call, "offset")
            .and_then(|o| o.parse().ok())
            .unwrap_or(0);
        let all = ["a", "b", "c", "d", "e"];
        let page: Vec<Value> = all
            .iter()
            .skip(offset)
            .take(2)
            .map(|id| json!({"id": id}))
            .collect();
        Reply::json(200, json!({"lists": page, "total_items": all.len()}))
    })
    .await;
    let c = connector(json!({ "base_url": server.url }));
    let mut req = request(HttpMethod::Get, "/3.0/lists");
    req.query = vec![("count".into(), "2".into())];
    req.paginate = paginate(json!({"items": "/lists", "offset_param": "offset", "page_size": 2}));
    let resp = c.read(&Operation::Http(req), None).await.expect("pages");
    assert_eq!(resp.body.as_array().unwrap().len(), 5);
    let offsets: Vec<Option<String>> = server.calls().iter().map(|c| param(c, "offset")).collect();
    assert_eq!(
        offsets,
        [None, Some("2".to_owned()), Some("4".to_owned())],
        "the short third page ends the listing"
    );
}

#[tokio::test]
async fn exhausted_rate_limit_headers_pause_the_next_call_until_the_reset() {
    // Zendesk: `ratelimit-remaining: 0` with `ratelimit-reset` in seconds.
    let server = TestServer::start(|_, n| {
        let remaining = if n == 0 { "0" } else { "5" };
        Reply::json(200, json!({"users": []}))
            .header("ratelimit-remaining", remaining)
            .header("ratelimit-reset", "1")
    })
    .await;
    let c = connector(json!({ "base_url": server.url }));
    let first = Instant::now();
    c.read(&Operation::Http(request(HttpMethod::Get, "/users")), None)
        .await
        .unwrap();
    c.read(&Operation::Http(request(HttpMethod::Get, "/users")), None)
        .await
        .unwrap();
    assert!(
        first.elapsed() >= Duration::from_millis(950),
        "the second call waited for the window to reset ({:?})",
        first.elapsed()
    );
}

#[tokio::test]
async fn retry_after_as_an_http_date_is_honoured() {
    let server = TestServer::start(|_, n| {
        if n == 0 {
            let at = chrono::Utc::now() + chrono::Duration::seconds(2);
            Reply::json(429, json!({"error": "slow down"})).header(
                "Retry-After",
                &at.format("%a, %d %b %Y %H:%M:%S GMT").to_string(),
            )
        } else {
            Reply::json(200, json!({"ok": true}))
        }
    })
    .await;
    let c =
        connector(json!({ "base_url": server.url, "retry": {"attempts": 3, "backoff": "10ms"} }));
    let start = Instant::now();
    c.read(&Operation::Http(request(HttpMethod::Get, "/x")), None)
        .await
        .expect("retried after the date");
    assert!(
        start.elapsed() >= Duration::from_millis(900),
        "{:?}",
        start.elapsed()
    );
}

#[tokio::test]
async fn hubspot_rate_limit_headers_pause_for_the_interval() {
    // HubSpot names no reset time: `X-HubSpot-RateLimit-Remaining: 0` pauses for the
    // window's length, `X-HubSpot-RateLimit-Interval-Milliseconds`.
    let server = TestServer::start(|_, n| {
        let remaining = if n == 0 { "0" } else { "99" };
        Reply::json(200, json!({"results": []}))
            .header("X-HubSpot-RateLimit-Max", "100")
            .header("X-HubSpot-RateLimit-Remaining", remaining)
            .header("X-HubSpot-RateLimit-Interval-Milliseconds", "1000")
            .header("X-HubSpot-RateLimit-Daily", "250000")
            .header("X-HubSpot-RateLimit-Daily-Remaining", "249000")
    })
    .await;
    let c = connector(json!({ "base_url": server.url }));
    let first = Instant::now();
    for _ in 0..2 {
        c.read(
            &Operation::Http(request(HttpMethod::Get, "/contacts")),
            None,
        )
        .await
        .unwrap();
    }
    assert!(
        first.elapsed() >= Duration::from_millis(950),
        "the second call waited for the interval ({:?})",
        first.elapsed()
    );
}

#[tokio::test]
async fn documented_403_rate_limits_are_retried_and_other_403s_are_not() {
    // Google: 403 with reason userRateLimitExceeded; Salesforce: 403 REQUEST_LIMIT_EXCEEDED.
    let server = TestServer::start(|call, n| match (call.path.as_str(), n) {
        ("/google", 0) => Reply::json(
            403,
            json!({"error": {"code": 403, "message": "slow down",
                "errors": [{"domain": "usageLimits", "reason": "userRateLimitExceeded"}]}}),
        ),
        ("/salesforce", 2) => Reply::json(
            403,
            json!([{"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}]),
        ),
        ("/forbidden", _) => Reply::json(
            403,
            json!({"error": {"code": 403, "errors": [{"reason": "forbidden"}]}}),
        ),
        _ => Reply::json(200, json!({"ok": true})),
    })
    .await;
    let c =
        connector(json!({ "base_url": server.url, "retry": {"attempts": 3, "backoff": "10ms"} }));
    for path in ["/google", "/salesforce"] {
        let resp = c
            .read(&Operation::Http(request(HttpMethod::Get, path)), None)
            .await
            .unwrap_or_else(|e| panic!("{path}: {e}"));
        assert_eq!(resp.attempts, 2, "{path}");
    }
    let err = c
        .read(
            &Operation::Http(request(HttpMethod::Get, "/forbidden")),
            None,
        )
        .await
        .expect_err("a refusal");
    assert_eq!(err.status(), Some(403));
    assert_eq!(err.attempts(), 1, "a refusal is not retried");
}

#[tokio::test]
async fn keyed_results_and_missing_lists_are_read_as_records() {
    let server = TestServer::start(|call, _| match call.path.as_str() {
        // SendGrid's search/emails: records keyed by the address searched.
        "/search" => Reply::json(
            200,
            json!({"result": {"a@example.com": {"contact": {"id": "c1"}}}}),
        ),
        // Google leaves an empty list out.
        _ => Reply::json(200, json!({"kind": "admin#directory#groups"})),
    })
    .await;
    let c = connector(json!({ "base_url": server.url }));
    let mut keyed = request(HttpMethod::Post, "/search");
    keyed.paginate = paginate(json!({"items": "/result", "keyed": true}));
    let resp = c.read(&Operation::Http(keyed), None).await.expect("keyed");
    assert_eq!(resp.body, json!([{"contact": {"id": "c1"}}]));

    let mut missing = request(HttpMethod::Get, "/groups");
    missing.paginate = paginate(json!({"items": "/groups", "cursor_param": "pageToken",
        "cursor": "/nextPageToken", "missing_is_empty": true}));
    let resp = c
        .read(&Operation::Http(missing), None)
        .await
        .expect("empty");
    assert_eq!(resp.body, json!([]));
    // Without the flag, a missing list is a misconfiguration, reported.
    let mut strict = request(HttpMethod::Get, "/groups");
    strict.paginate = paginate(json!({"items": "/groups", "cursor_param": "pageToken",
        "cursor": "/nextPageToken"}));
    assert!(c.read(&Operation::Http(strict), None).await.is_err());
}
