//! The HTTP connector against the service emulators: the three pagination styles of the
//! real APIs (Graph `@odata.nextLink`, Digital Twins query continuation token, DPS
//! `x-ms-continuation`) and the OAuth2 token endpoint, with one item per page.

use dsrctl::connectors::http::HttpClient;
use dsrctl::connectors::{Connector, HttpRequest, Operation};
use dsrctl::emulator::{self, Emulator, Fixture};
use dsrctl::model::{Defaults, HttpConnector, HttpMethod, Paginate, SecretRef};
use dsrctl::secret::{SecretError, SecretResolver};
use serde_json::{Value, json};

struct Fixed;

impl SecretResolver for Fixed {
    fn resolve(&self, _: &SecretRef) -> Result<String, SecretError> {
        Ok("emulator-secret".into())
    }
}

async fn emulator() -> Emulator {
    emulator::start(Fixture::contoso(), "127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("emulator starts")
}

fn connector(emu: &Emulator, api: &str, query: Value) -> HttpClient {
    let root = emu.tenant_url("contoso");
    let cfg: HttpConnector = serde_json::from_value(json!({
        "base_url": format!("{root}/{api}"),
        "query": query,
        "auth": {
            "type": "oauth2",
            "token_url": format!("{root}/oauth2/v2.0/token"),
            "client_id": "dsrctl",
            "client_secret": { "env": "UNUSED" },
            "scope": "https://example/.default"
        },
        "retry": { "attempts": 2, "backoff": "10ms" }
    }))
    .expect("config");
    HttpClient::new(api, &cfg, &Defaults::default(), &Fixed).expect("connector")
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
        idempotent: method == HttpMethod::Delete,
    }
}

fn paginate(v: Value) -> Option<Paginate> {
    Some(serde_json::from_value(v).expect("paginate"))
}

fn ids(items: &Value, field: &str) -> Vec<String> {
    let mut out: Vec<String> = items
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|i| i[field].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

#[tokio::test]
async fn graph_next_link_pages() {
    let emu = emulator().await;
    let c = connector(&emu, "graph/v1.0", json!({}));
    let mut default_pages = request(HttpMethod::Get, "/users");
    default_pages.paginate = paginate(json!({ "next_link": "/@odata.nextLink" }));
    let all = c
        .read(&Operation::Http(default_pages.clone()), None)
        .await
        .expect("pages");
    let expected = ids(&all.body, "id");
    assert!(expected.len() >= 3, "several users: {expected:?}");

    let mut paged = default_pages;
    paged.query = vec![("$top".into(), "1".into())];
    let resp = c.read(&Operation::Http(paged), None).await.expect("pages");
    assert_eq!(ids(&resp.body, "id"), expected);
    assert_eq!(resp.attempts as usize, expected.len(), "one call per page");
    let token_calls = emu
        .calls()
        .iter()
        .filter(|c| c.path.ends_with("/oauth2/v2.0/token"))
        .count();
    assert_eq!(token_calls, 1, "one token for every call");
    let api_calls: Vec<_> = emu
        .calls()
        .into_iter()
        .filter(|c| !c.path.ends_with("/token"))
        .collect();
    assert_eq!(api_calls.len(), 2 + expected.len());
    assert!(
        api_calls.iter().all(|c| c.authorized && c.status == 200),
        "{api_calls:?}"
    );
}

#[tokio::test]
async fn digital_twins_query_continuation_token_pages() {
    let emu = emulator().await;
    let c = connector(&emu, "adt", json!({ "api-version": "2023-10-31" }));
    let mut req = request(HttpMethod::Post, "/query");
    req.json = Some(json!({ "query": "SELECT * FROM digitaltwins" }));
    req.paginate = paginate(json!({
        "continuation_token": "/continuationToken",
        "token_field": "continuationToken"
    }));
    let all = c
        .read(&Operation::Http(req.clone()), None)
        .await
        .expect("pages");
    let expected = ids(&all.body, "$dtId");
    assert!(expected.len() >= 3, "several twins: {expected:?}");

    req.headers = vec![("max-items-per-page".into(), "1".into())];
    let resp = c.read(&Operation::Http(req), None).await.expect("pages");
    assert_eq!(ids(&resp.body, "$dtId"), expected);
    assert_eq!(resp.attempts as usize, expected.len(), "one call per page");
}

#[tokio::test]
async fn dps_x_ms_continuation_pages() {
    let emu = emulator().await;
    let c = connector(&emu, "dps", json!({ "api-version": "2021-10-01" }));
    let mut req = request(HttpMethod::Post, "/enrollments/query");
    req.json = Some(json!({ "query": "*" }));
    req.paginate = paginate(json!({ "items": "", "continuation_header": "x-ms-continuation" }));
    let all = c
        .read(&Operation::Http(req.clone()), None)
        .await
        .expect("pages");
    let expected = ids(&all.body, "registrationId");
    assert!(expected.len() >= 3, "several enrollments: {expected:?}");

    req.headers = vec![("x-ms-max-item-count".into(), "1".into())];
    let resp = c.read(&Operation::Http(req), None).await.expect("pages");
    assert_eq!(ids(&resp.body, "registrationId"), expected);
    assert_eq!(resp.attempts as usize, expected.len(), "one call per page");
}
