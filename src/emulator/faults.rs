//! Injected failures (throttling, unavailability) and the log of every call.

use axum::http::Method;
use serde::Serialize;

/// Which emulated API a call addressed (the path segment after the tenant).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Api {
    /// Microsoft Graph, prefix `/{tenant}/graph/v1.0`.
    Graph,
    /// Azure Digital Twins, prefix `/{tenant}/adt`.
    DigitalTwins,
    /// Device Provisioning Service, prefix `/{tenant}/dps`.
    Dps,
    /// IoT Central, prefix `/{tenant}/iotc/api`.
    IotCentral,
    /// OAuth2 token endpoint, `/{tenant}/oauth2/token` or `/{tenant}/oauth2/v2.0/token`.
    OAuth,
}

impl Api {
    /// The API for a path segment after the tenant.
    pub fn from_segment(s: &str) -> Option<Api> {
        match s {
            "graph" => Some(Api::Graph),
            "adt" => Some(Api::DigitalTwins),
            "dps" => Some(Api::Dps),
            "iotc" => Some(Api::IotCentral),
            "oauth2" => Some(Api::OAuth),
            _ => None,
        }
    }
}

/// A failure to inject: the next `times` calls matching every given filter get
/// `status` (e.g. 429 or 503) with an optional `Retry-After`, then calls behave normally.
#[derive(Debug, Clone)]
pub struct Fault {
    /// Only calls to this API (any when `None`).
    pub api: Option<Api>,
    /// Only calls with this method (any when `None`).
    pub method: Option<Method>,
    /// Only calls whose path contains this text (any when `None`).
    pub path_contains: Option<String>,
    /// Status to answer with.
    pub status: u16,
    /// `Retry-After` header value in seconds.
    pub retry_after: Option<u64>,
    /// How many matching calls fail.
    pub times: u32,
}

impl Fault {
    /// A fault on any call of `api`: `status` for the next `times` calls.
    pub fn new(api: Option<Api>, status: u16, times: u32) -> Fault {
        Fault {
            api,
            method: None,
            path_contains: None,
            status,
            retry_after: None,
            times,
        }
    }

    /// The same fault with a `Retry-After` header.
    pub fn retry_after(mut self, secs: u64) -> Fault {
        self.retry_after = Some(secs);
        self
    }

    /// The same fault restricted to one method.
    pub fn method(mut self, method: Method) -> Fault {
        self.method = Some(method);
        self
    }

    /// The same fault restricted to paths containing `text`.
    pub fn path_contains(mut self, text: &str) -> Fault {
        self.path_contains = Some(text.to_string());
        self
    }

    fn matches(&self, api: Api, method: &Method, path: &str) -> bool {
        self.times > 0
            && self.api.is_none_or(|a| a == api)
            && self.method.as_ref().is_none_or(|m| m == method)
            && self
                .path_contains
                .as_deref()
                .is_none_or(|p| path.contains(p))
    }
}

/// Takes one use of the first fault matching the call, if any.
pub(crate) fn take_fault(
    faults: &mut Vec<Fault>,
    api: Api,
    method: &Method,
    path: &str,
) -> Option<Fault> {
    let i = faults.iter().position(|f| f.matches(api, method, path))?;
    let fault = faults[i].clone();
    faults[i].times -= 1;
    if faults[i].times == 0 {
        faults.remove(i);
    }
    Some(fault)
}

/// One call the emulator received, as recorded for tests.
#[derive(Debug, Clone, Serialize)]
pub struct RecordedCall {
    /// First path segment (the tenant, known or not).
    pub tenant: String,
    /// API addressed, `None` when the path named none.
    pub api: Option<Api>,
    /// HTTP method.
    #[serde(serialize_with = "ser_method")]
    pub method: Method,
    /// Raw request path (percent-encoded as sent).
    pub path: String,
    /// Raw query string (empty when none).
    pub query: String,
    /// Status the emulator answered with.
    pub status: u16,
    /// Whether the call carried a non-empty `Authorization` credential.
    pub authorized: bool,
    /// Whether an injected fault answered the call.
    pub faulted: bool,
    /// Request body as text (lossy UTF-8, cut at 64 KiB), e.g. to check a patch sent.
    pub body: String,
}

fn ser_method<S: serde::Serializer>(m: &Method, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(m.as_str())
}

impl RecordedCall {
    /// True for a call that would change state if it succeeded: any non-GET except
    /// queries (ADT `/query`, DPS `.../query`) and token requests.
    pub fn is_mutation(&self) -> bool {
        let safe = self.method == Method::GET || self.method == Method::HEAD;
        let query_post = self.method == Method::POST
            && (self.path.ends_with("/query") || self.api == Some(Api::OAuth));
        !safe && !query_post
    }
}
