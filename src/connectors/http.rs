//! HTTP/REST connector: `reqwest` with rustls, one client per configured connector.
//!
//! Each connector keeps its calls on its own origin, adds its configured query parameters
//! and headers, authenticates (bearer, API key, basic, OAuth2 client credentials), limits
//! concurrency and rate, times out every call and retries transient failures
//! ([`crate::connectors::retry`]). It knows nothing of playbooks: it sends rendered
//! [`HttpRequest`]s.

mod auth;
mod exchange;
pub use exchange::without_url;
mod paginate;
mod redactor;
mod target;

use std::num::NonZeroU32;
use std::time::Duration;

use async_trait::async_trait;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use reqwest::Method;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, IF_MATCH};
use serde_json::Value;
use tokio::sync::Semaphore;

use self::auth::Authenticator;
use self::exchange::{Pause, Prepared, graphql_errors};
use self::target::Target;
use crate::connectors::limits::{ConnectorWaits, WaitTally};
use crate::connectors::retry::Retrier;
use crate::connectors::{Connector, ConnectorError, HttpRequest, Operation, RecordSink, Response};
use crate::model::{Defaults, HttpConnector, HttpMethod};
use crate::secret::SecretResolver;

/// A configured HTTP connector.
#[derive(Debug)]
pub struct HttpClient {
    name: String,
    client: reqwest::Client,
    target: Target,
    query: Vec<(String, String)>,
    headers: HeaderMap,
    auth: Authenticator,
    timeout: Duration,
    retry: Retrier,
    permits: Semaphore,
    concurrency: usize,
    limiter: Option<DefaultDirectRateLimiter>,
    /// Set from the service's rate-limit headers; every call waits for it.
    pause: Pause,
    per_second: Option<u32>,
    /// Waits for a place under `concurrency`.
    cap_waits: WaitTally,
    /// Waits for the rate limit.
    rate_waits: WaitTally,
}

impl HttpClient {
    /// Builds the connector `name` from its config; secrets are resolved now. Sends nothing.
    pub fn new(
        name: &str,
        cfg: &HttpConnector,
        defaults: &Defaults,
        secrets: &dyn SecretResolver,
    ) -> Result<Self, ConnectorError> {
        Self::build(name, cfg, defaults, secrets).map_err(|e| match e {
            ConnectorError::Config(m) => ConnectorError::Config(format!("connector `{name}`: {m}")),
            other => other,
        })
    }

    fn build(
        name: &str,
        cfg: &HttpConnector,
        defaults: &Defaults,
        secrets: &dyn SecretResolver,
    ) -> Result<Self, ConnectorError> {
        let target = Target::new(&cfg.base_url)?;
        let timeout = cfg.timeout.as_ref().unwrap_or(&defaults.timeout).get();
        if timeout.is_zero() {
            return Err(ConnectorError::Config(
                "`timeout` must be longer than zero".into(),
            ));
        }
        let retry = Retrier::from_policy(cfg.retry.as_ref().unwrap_or(&defaults.retry));
        let concurrency = cfg
            .concurrency
            .unwrap_or(defaults.connector_concurrency)
            .max(1);
        let limiter = match &cfg.rate_limit {
            None => None,
            Some(rl) => {
                let per_second = NonZeroU32::new(rl.per_second).ok_or_else(|| {
                    ConnectorError::Config("`rate_limit.per_second` must be at least 1".into())
                })?;
                let burst =
                    NonZeroU32::new(rl.burst.unwrap_or(rl.per_second)).ok_or_else(|| {
                        ConnectorError::Config("`rate_limit.burst` must be at least 1".into())
                    })?;
                Some(RateLimiter::direct(
                    Quota::per_second(per_second).allow_burst(burst),
                ))
            }
        };
        let mut headers = HeaderMap::new();
        for (k, v) in &cfg.headers {
            let (name, value) = header(k, v).map_err(ConnectorError::Config)?;
            headers.insert(name, value);
        }
        let auth = Authenticator::new(&cfg.auth, secrets)?;
        let client = reqwest::Client::builder()
            .user_agent(concat!("dsrctl/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(timeout)
            .pool_max_idle_per_host(concurrency as usize)
            .redirect(same_origin_redirects())
            .build()
            .map_err(|e| ConnectorError::Config(format!("cannot build the HTTP client ({e})")))?;
        Ok(HttpClient {
            name: name.to_owned(),
            client,
            target,
            query: cfg
                .query
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            headers,
            auth,
            timeout,
            retry,
            permits: Semaphore::new(concurrency as usize),
            concurrency: concurrency as usize,
            limiter,
            pause: Pause::default(),
            per_second: cfg.rate_limit.as_ref().map(|rl| rl.per_second),
            cap_waits: WaitTally::default(),
            rate_waits: WaitTally::default(),
        })
    }

    /// The connector's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    fn prepare(&self, req: &HttpRequest) -> Result<Prepared, ConnectorError> {
        let url = self.target.url_for(&req.path, &req.query, &self.query)?;
        let mut headers = HeaderMap::new();
        for (k, v) in &req.headers {
            let (name, value) = header(k, v).map_err(ConnectorError::Refused)?;
            headers.insert(name, value);
        }
        if let Some(etag) = &req.if_match {
            let value = HeaderValue::from_str(etag).map_err(|_| {
                ConnectorError::Refused("the `if_match` value is not a valid header value".into())
            })?;
            headers.insert(IF_MATCH, value);
        }
        let bodies = usize::from(req.json.is_some())
            + usize::from(req.json_patch.is_some())
            + usize::from(req.form.is_some());
        if bodies > 1 {
            return Err(ConnectorError::Refused(
                "a call has one body: `json`, `json_patch`, `form` or `graphql`".into(),
            ));
        }
        let body = if let Some(json) = &req.json {
            Some((json.to_string().into_bytes(), "application/json"))
        } else if let Some(patch) = &req.json_patch {
            Some((
                patch.to_string().into_bytes(),
                "application/json-patch+json",
            ))
        } else {
            req.form.as_ref().map(|pairs| {
                let mut ser = url::form_urlencoded::Serializer::new(String::new());
                for (k, v) in pairs {
                    ser.append_pair(k, v);
                }
                (
                    ser.finish().into_bytes(),
                    "application/x-www-form-urlencoded",
                )
            })
        };
        Ok(Prepared {
            method: method(req.method),
            url,
            headers,
            body,
            idempotent: req.idempotent,
            graphql: req.graphql,
        })
    }

    /// Sends `req`. `idempotent`: whether it may be sent again after a failure the service
    /// may have acted on (reads always may).
    async fn execute(
        &self,
        req: &HttpRequest,
        idempotent: bool,
        sink: Option<&mut (dyn RecordSink + '_)>,
    ) -> Result<Response, ConnectorError> {
        let mut first = self.prepare(req)?;
        first.idempotent = idempotent;
        if let Some(pages) = &req.paginate {
            if req.graphql {
                return Err(ConnectorError::Refused(
                    "a GraphQL call cannot use `paginate`; page with a cursor in `variables` and `for_each`".into(),
                ));
            }
            return self.paginate(req, pages, first, sink).await;
        }
        let (raw, attempts) = self.call(&first).await?;
        let mut resp = self.interpret(raw, &req.absent_on, attempts)?;
        if req.graphql
            && !resp.absent
            && let Some(message) = graphql_errors(&resp.body)
        {
            // Errors before execution leave no `data`: nothing was done. With `data`, part
            // of the operation may have run.
            let executed = resp.body.get("data").is_some_and(|d| !d.is_null());
            return Err(ConnectorError::InvalidResponse {
                message: format!(
                    "the GraphQL answer has errors: {}",
                    self.auth.redactor.redact(&message)
                ),
                excerpt: String::new(),
                reach: if executed {
                    crate::connectors::Reach::MaybeProcessed
                } else {
                    crate::connectors::Reach::NotProcessed
                },
            });
        }
        if let Some(sink) = sink
            && !resp.absent
        {
            // A bare list is its items (as the engine spools a returned body); anything else
            // but `null` is one record.
            match &resp.body {
                Value::Null => {}
                Value::Array(items) => {
                    for item in items {
                        sink.write(item).map_err(sink_error)?;
                    }
                    resp.records = items.len() as u64;
                }
                other => {
                    sink.write(other).map_err(sink_error)?;
                    resp.records = 1;
                }
            }
        }
        Ok(resp)
    }

    fn unsupported(&self, op: &Operation) -> ConnectorError {
        let kind = match op {
            Operation::Http(_) => "HTTP",
            Operation::Sql(_) => "SQL",
            Operation::Email(_) => "email",
        };
        ConnectorError::Refused(format!(
            "connector `{}` is an HTTP connector and cannot run a {kind} operation",
            self.name
        ))
    }
}

#[async_trait]
impl Connector for HttpClient {
    async fn read(
        &self,
        op: &Operation,
        sink: Option<&mut (dyn RecordSink + '_)>,
    ) -> Result<Response, ConnectorError> {
        match op {
            Operation::Http(req) => self.execute(req, true, sink).await,
            other => Err(self.unsupported(other)),
        }
    }

    async fn mutate(&self, op: &Operation) -> Result<Response, ConnectorError> {
        match op {
            Operation::Http(req) => self.execute(req, req.idempotent, None).await,
            other => Err(self.unsupported(other)),
        }
    }

    fn waits(&self) -> Option<ConnectorWaits> {
        Some(ConnectorWaits {
            concurrency: self.concurrency,
            concurrency_waited: self.cap_waits.get(),
            per_second: self.per_second,
            rate_waited: self.rate_waits.get(),
        })
    }
}

fn method(m: HttpMethod) -> Method {
    match m {
        HttpMethod::Get => Method::GET,
        HttpMethod::Head => Method::HEAD,
        HttpMethod::Post => Method::POST,
        HttpMethod::Put => Method::PUT,
        HttpMethod::Patch => Method::PATCH,
        HttpMethod::Delete => Method::DELETE,
    }
}

fn header(name: &str, value: &str) -> Result<(HeaderName, HeaderValue), String> {
    let n = HeaderName::from_bytes(name.as_bytes())
        .map_err(|_| format!("`{name}` is not a valid header name"))?;
    let v = HeaderValue::from_str(value)
        .map_err(|_| format!("the value of header `{name}` is not a valid header value"))?;
    Ok((n, v))
}

fn sink_error(e: std::io::Error) -> ConnectorError {
    ConnectorError::Refused(format!(
        "could not write a collected record to the export spool: {e}"
    ))
}

/// Redirects are followed only on the same origin, so a service cannot send a call (and
/// its credentials) elsewhere.
fn same_origin_redirects() -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(|attempt| {
        let same = attempt
            .previous()
            .first()
            .is_some_and(|first| first.origin() == attempt.url().origin());
        if !same || attempt.previous().len() > 5 {
            attempt.stop()
        } else {
            attempt.follow()
        }
    })
}
