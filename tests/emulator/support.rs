//! A started emulator plus a small HTTP client for the tests.

use dsrctl::emulator::{self, Emulator, Fixture};
use reqwest::Method;
use reqwest::header::HeaderMap;
use serde_json::Value;

/// Digital Twins query string.
pub const ADT: &str = "api-version=2023-10-31";
/// DPS query string.
pub const DPS: &str = "api-version=2021-10-01";
/// IoT Central query string.
pub const IOTC: &str = "api-version=2022-07-31";

/// An emulator on a free port and a client.
pub struct Env {
    pub emu: Emulator,
    http: reqwest::Client,
}

/// One answer: status, headers, body as JSON (`Null` when empty or not JSON).
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Resp {
    /// A header as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The string at a JSON pointer.
    pub fn str(&self, pointer: &str) -> &str {
        self.body
            .pointer(pointer)
            .and_then(Value::as_str)
            .unwrap_or("")
    }
}

impl Env {
    /// The built-in contoso/fabrikam fixture.
    pub async fn new() -> Env {
        Env::with(Fixture::contoso()).await
    }

    /// A custom fixture.
    pub async fn with(fixture: Fixture) -> Env {
        let addr = "127.0.0.1:0".parse().expect("address");
        let emu = emulator::start(fixture, addr)
            .await
            .expect("emulator starts");
        Env {
            emu,
            http: reqwest::Client::new(),
        }
    }

    /// `http://ADDR/{tenant}/{rest}`.
    pub fn url(&self, tenant: &str, rest: &str) -> String {
        format!("{}/{rest}", self.emu.tenant_url(tenant))
    }

    /// A request with a bearer token and optional JSON body and headers.
    pub async fn call(
        &self,
        method: Method,
        url: &str,
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> Resp {
        let mut rb = self.http.request(method, url).bearer_auth("test-token");
        if let Some(b) = body {
            rb = rb.json(b);
        }
        for (k, v) in headers {
            rb = rb.header(*k, *v);
        }
        let resp = rb.send().await.expect("request is answered");
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let bytes = resp.bytes().await.expect("body");
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Resp {
            status,
            headers,
            body,
        }
    }

    /// `GET` with a bearer token.
    pub async fn get(&self, url: &str) -> Resp {
        self.call(Method::GET, url, None, &[]).await
    }

    /// `DELETE` with a bearer token.
    pub async fn delete(&self, url: &str) -> Resp {
        self.call(Method::DELETE, url, None, &[]).await
    }

    /// `POST` of a JSON body with a bearer token.
    pub async fn post(&self, url: &str, body: &Value, headers: &[(&str, &str)]) -> Resp {
        self.call(Method::POST, url, Some(body), headers).await
    }

    /// The raw client, for requests the helpers do not cover.
    pub fn client(&self) -> &reqwest::Client {
        &self.http
    }
}

/// Follows `link_field` (e.g. `/@odata.nextLink`) from `url`; returns each page's `value`.
pub async fn all_pages(env: &Env, url: &str, link_field: &str) -> Vec<Vec<Value>> {
    let mut pages = Vec::new();
    let mut next = Some(url.to_string());
    while let Some(u) = next {
        let r = env.get(&u).await;
        assert_eq!(r.status, 200, "{u}: {:?}", r.body);
        pages.push(r.body["value"].as_array().cloned().unwrap_or_default());
        next = r
            .body
            .pointer(link_field)
            .and_then(Value::as_str)
            .map(str::to_string);
        assert!(pages.len() < 50, "pagination does not end");
    }
    pages
}

/// The `field` of each item, flattened over pages.
pub fn ids(pages: &[Vec<Value>], field: &str) -> Vec<String> {
    pages
        .iter()
        .flatten()
        .map(|v| v[field].as_str().unwrap_or("").to_string())
        .collect()
}
