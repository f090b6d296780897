//! One HTTP call: sent under the connector's concurrency and rate limits, retried by policy,
//! refreshed once on a 401 with OAuth2, and its answer turned into a [`Response`].
//!
//! Each failure says how far the call got ([`Reach`]): a connect error sent nothing; a
//! timeout, reset or lost answer after the request was written may have been processed, and
//! is retried only when the call is idempotent ([`may_resend`]); 429 and 503 with
//! `Retry-After` are "try later" and retried whatever the method.

use std::collections::BTreeMap;
use std::error::Error as _;
use std::time::{Duration, Instant, SystemTime};

use reqwest::Method;
use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderMap, HeaderValue};
use serde_json::Value;
use url::Url;

use super::HttpClient;
use crate::connectors::retry::{
    Attempt, may_resend, parse_retry_after, status_reach, with_attempts,
};
use crate::connectors::{ConnectorError, Reach, Response, excerpt};

/// Largest body read from a service; a larger one is an invalid response.
const MAX_BODY: usize = 64 << 20;

/// Reads the body, or `None` when it is larger than [`MAX_BODY`].
async fn read_body(mut resp: reqwest::Response) -> Result<Option<Vec<u8>>, reqwest::Error> {
    if resp.content_length().is_some_and(|n| n > MAX_BODY as u64) {
        return Ok(None);
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await? {
        if body.len() + chunk.len() > MAX_BODY {
            return Ok(None);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Some(body))
}

/// A call ready to send (again, on a retry).
#[derive(Debug, Clone)]
pub(super) struct Prepared {
    pub(super) method: Method,
    pub(super) url: Url,
    pub(super) headers: HeaderMap,
    pub(super) body: Option<(Vec<u8>, &'static str)>,
    /// Whether the call may be sent again after the service may have acted on it.
    pub(super) idempotent: bool,
    /// A GraphQL call: a 200 answer that says it was throttled is retried.
    pub(super) graphql: bool,
}

/// An answer before its status is judged.
#[derive(Debug)]
pub(super) struct RawResponse {
    pub(super) status: u16,
    pub(super) headers: BTreeMap<String, String>,
    pub(super) body: Vec<u8>,
}

/// A transport failure, described without the URL (it may hold personal data). A failure
/// to connect (refused, DNS, TLS, a connect timeout) sent nothing; any later failure came
/// after the request was written, so the service may have acted on it.
pub(super) fn transport_error(e: reqwest::Error, timeout: Duration, peer: &str) -> ConnectorError {
    let reach = if e.is_connect() {
        Reach::NotSent
    } else {
        Reach::MaybeProcessed
    };
    if e.is_timeout() {
        return ConnectorError::Timeout {
            after: timeout,
            attempts: 0,
            reach,
        };
    }
    ConnectorError::Transport {
        message: format!("{peer}: {}", without_url(e)),
        attempts: 0,
        reach,
    }
}

/// A failed call and its causes, each once, without the URL (it may hold personal data or
/// a secret path).
pub fn without_url(e: reqwest::Error) -> String {
    let e = e.without_url();
    let mut message = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !message.ends_with(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        source = s.source();
    }
    message
}

fn collect_headers(map: &HeaderMap) -> BTreeMap<String, String> {
    let mut out: BTreeMap<String, String> = BTreeMap::new();
    for (name, value) in map {
        let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
        out.entry(name.as_str().to_owned())
            .and_modify(|v| {
                v.push_str(", ");
                v.push_str(&value);
            })
            .or_insert(value);
    }
    out
}

/// Parses a body: empty is `null`; JSON is parsed; plain text (not claiming to be JSON) is
/// kept as a string; anything else is an invalid response.
pub(super) fn decode_body(
    headers: &BTreeMap<String, String>,
    body: &[u8],
) -> Result<Value, String> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Null);
    }
    let content_type = headers
        .get("content-type")
        .map(|c| c.to_ascii_lowercase())
        .unwrap_or_default();
    match serde_json::from_slice(body) {
        Ok(v) => Ok(v),
        Err(e) => {
            if content_type.starts_with("text/")
                && !content_type.contains("json")
                && let Ok(text) = std::str::from_utf8(body)
            {
                return Ok(Value::String(text.to_owned()));
            }
            let ct = if content_type.is_empty() {
                "none"
            } else {
                &content_type
            };
            Err(format!(
                "the body is not valid JSON ({e}; content-type: {ct})"
            ))
        }
    }
}

/// Longest pause that rate-limit headers can impose on the connector at once; a service
/// asking for longer is waited for in several steps by the retries.
pub(super) const MAX_PAUSE: Duration = Duration::from_secs(600);

/// How a reset header counts.
#[derive(Clone, Copy)]
enum Reset {
    /// Seconds from now, or a Unix time when above 1,000,000,000.
    SecondsOrUnix,
    /// The window's length in milliseconds: the longest the window can still last.
    WindowMillis,
}

/// Response headers that report the rate limit, as pairs of what is left in the window and
/// when it resets, in the spellings services use: the IETF draft (`RateLimit-*`, Zendesk),
/// `X-RateLimit-*` (Intercom, GitHub, Auth0, SendGrid), `X-Rate-Limit-*` (Okta, Zendesk) and
/// HubSpot's `X-HubSpot-RateLimit-Remaining` with `-Interval-Milliseconds` (HubSpot names
/// no reset time, so the pause is the window's length). HubSpot's daily allowance
/// (`-Daily-Remaining`) resets at midnight in the account's time zone, which the headers do
/// not give; it is not waited for.
const LIMITS: [(&str, &str, Reset); 4] = [
    (
        "ratelimit-remaining",
        "ratelimit-reset",
        Reset::SecondsOrUnix,
    ),
    (
        "x-ratelimit-remaining",
        "x-ratelimit-reset",
        Reset::SecondsOrUnix,
    ),
    (
        "x-rate-limit-remaining",
        "x-rate-limit-reset",
        Reset::SecondsOrUnix,
    ),
    (
        "x-hubspot-ratelimit-remaining",
        "x-hubspot-ratelimit-interval-milliseconds",
        Reset::WindowMillis,
    ),
];

/// The first number of a header value (`5`, `5, 10;w=1`).
fn number(headers: &BTreeMap<String, String>, name: &str) -> Option<u64> {
    headers
        .get(name)
        .and_then(|v| v.split([',', ';']).next())
        .and_then(|v| v.trim().parse().ok())
}

/// How long every call of the connector should wait after this answer: the `Retry-After`
/// of a 429 or 503 (seconds or an HTTP date), or, when the answer says no request is left
/// in the window (a `*-Remaining` of [`LIMITS`] at `0`), until the window resets. A reset
/// value above 1,000,000,000 is a Unix time (Okta, Intercom, GitHub), a smaller one a
/// number of seconds (IETF draft, Zendesk); HubSpot's is the window's length in
/// milliseconds. Capped at [`MAX_PAUSE`].
pub(super) fn rate_limit_pause(
    status: u16,
    headers: &BTreeMap<String, String>,
    now: SystemTime,
) -> Option<Duration> {
    let pause = if matches!(status, 429 | 503)
        && let Some(d) = headers
            .get("retry-after")
            .and_then(|v| parse_retry_after(v, now))
    {
        d
    } else {
        let exhausted: Vec<&(&str, &str, Reset)> = LIMITS
            .iter()
            .filter(|(remaining, _, _)| number(headers, remaining) == Some(0))
            .collect();
        if exhausted.is_empty() {
            return None;
        }
        // The exhausted limit's own reset, else any reset the answer gives.
        let (reset, unit) = exhausted
            .iter()
            .copied()
            .chain(LIMITS.iter())
            .find_map(|(_, reset, unit)| number(headers, reset).map(|r| (r, *unit)))?;
        match unit {
            Reset::WindowMillis => Duration::from_millis(reset),
            Reset::SecondsOrUnix if reset > 1_000_000_000 => {
                let epoch = now.duration_since(SystemTime::UNIX_EPOCH).ok()?;
                Duration::from_secs(reset).saturating_sub(epoch)
            }
            Reset::SecondsOrUnix => Duration::from_secs(reset),
        }
    };
    (!pause.is_zero()).then(|| pause.min(MAX_PAUSE))
}

/// A 403 that is a documented "slow down", not a refusal: Google APIs'
/// `userRateLimitExceeded`, `rateLimitExceeded` and `quotaExceeded` reasons (in
/// `error.errors[].reason`), and Salesforce's `REQUEST_LIMIT_EXCEEDED` error code (in a
/// list of `{errorCode, message}`). The service did not act; the call is retried with the
/// backoff (Google asks for exponential backoff; Salesforce sends no time to wait). Google's
/// `dailyLimitExceeded` is not among them: retrying cannot help the same day.
fn rate_limit_refusal(status: u16, body: &[u8]) -> bool {
    if status != 403 {
        return false;
    }
    let Ok(v) = serde_json::from_slice::<Value>(body) else {
        return false;
    };
    let google = v
        .pointer("/error/errors")
        .and_then(Value::as_array)
        .is_some_and(|errors| {
            errors.iter().any(|e| {
                matches!(
                    e.get("reason").and_then(Value::as_str),
                    Some("userRateLimitExceeded" | "rateLimitExceeded" | "quotaExceeded")
                )
            })
        });
    let salesforce = v.as_array().is_some_and(|errors| {
        errors
            .iter()
            .any(|e| e.get("errorCode").and_then(Value::as_str) == Some("REQUEST_LIMIT_EXCEEDED"))
    });
    google || salesforce
}

/// Shopify's GraphQL throttling: status 200 with an error whose `extensions.code` is
/// `THROTTLED`. The wait is the missing query cost over the restore rate from
/// `extensions.cost.throttleStatus`, at least one second.
fn graphql_throttled(body: &[u8]) -> Option<Duration> {
    let v: Value = serde_json::from_slice(body).ok()?;
    let throttled = v
        .get("errors")?
        .as_array()?
        .iter()
        .any(|e| e.pointer("/extensions/code").and_then(Value::as_str) == Some("THROTTLED"));
    if !throttled {
        return None;
    }
    let cost = v.pointer("/extensions/cost");
    let num = |p: &str| cost.and_then(|c| c.pointer(p)).and_then(Value::as_f64);
    let wait = match (
        num("/requestedQueryCost"),
        num("/throttleStatus/currentlyAvailable"),
        num("/throttleStatus/restoreRate"),
    ) {
        (Some(want), Some(have), Some(rate)) if rate > 0.0 => ((want - have) / rate).max(1.0),
        _ => 1.0,
    };
    Some(Duration::from_secs_f64(wait.min(MAX_PAUSE.as_secs_f64())))
}

/// Top-level GraphQL `errors` in an answer, as one message, or `None` when there are none.
pub(super) fn graphql_errors(body: &Value) -> Option<String> {
    let errors = body.get("errors")?.as_array()?;
    if errors.is_empty() {
        return None;
    }
    let messages: Vec<&str> = errors
        .iter()
        .map(|e| {
            e.get("message")
                .and_then(Value::as_str)
                .unwrap_or("(no message)")
        })
        .collect();
    Some(messages.join("; "))
}

/// Pauses every call of a connector until a time the service's rate-limit headers named.
#[derive(Debug, Default)]
pub(super) struct Pause {
    until: std::sync::Mutex<Option<tokio::time::Instant>>,
}

impl Pause {
    /// Holds calls for `d` from now (a later pause already set stays).
    pub(super) fn hold(&self, d: Duration) {
        let until = tokio::time::Instant::now() + d;
        let mut slot = self.until.lock().unwrap_or_else(|e| e.into_inner());
        if slot.is_none_or(|u| u < until) {
            *slot = Some(until);
        }
    }

    /// Waits until no pause holds.
    pub(super) async fn wait(&self) {
        loop {
            let until = *self.until.lock().unwrap_or_else(|e| e.into_inner());
            match until {
                Some(u) if u > tokio::time::Instant::now() => tokio::time::sleep_until(u).await,
                _ => return,
            }
        }
    }
}

impl HttpClient {
    /// Sends `p` with retries; with OAuth2, a 401 refreshes the token and resends once.
    /// Returns the answer (any status not retried) and the attempts made.
    pub(super) async fn call(&self, p: &Prepared) -> Result<(RawResponse, u32), ConnectorError> {
        let mut attempts = 0;
        let mut refreshed = false;
        loop {
            // A failure to get a token comes before the call is sent.
            let cred = self
                .auth
                .credential(&self.client, self.timeout, &self.retry)
                .await
                .map_err(|e| e.with_reach(Reach::NotSent))?;
            let retried = self
                .retry
                .run(|_| self.attempt(p, cred.header.as_ref()))
                .await;
            attempts += retried.attempts;
            match retried.result {
                Ok(raw) if raw.status == 401 && self.auth.refreshes() && !refreshed => {
                    tracing::debug!(connector = %self.name, "401: refreshing the OAuth2 token once");
                    self.auth.invalidate(&cred).await;
                    refreshed = true;
                }
                Ok(raw) => return Ok((raw, attempts)),
                Err(e) => return Err(with_attempts(e, attempts)),
            }
        }
    }

    async fn attempt(
        &self,
        p: &Prepared,
        auth: Option<&(reqwest::header::HeaderName, HeaderValue)>,
    ) -> Attempt<RawResponse, ConnectorError> {
        let Ok(_permit) = self.permit().await else {
            return Attempt::Fail(ConnectorError::Refused("the connector is shut down".into()));
        };
        if let Some(limiter) = &self.limiter
            && limiter.check().is_err()
        {
            let waiting = Instant::now();
            limiter.until_ready().await;
            self.rate_waits.add(waiting.elapsed());
        }
        self.pause.wait().await;
        let mut headers = self.headers.clone();
        headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
        for (name, value) in &p.headers {
            headers.insert(name, value.clone());
        }
        let mut rb = self
            .client
            .request(p.method.clone(), p.url.clone())
            .timeout(self.timeout);
        if let Some((_, content_type)) = &p.body {
            headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
        }
        if let Some((name, value)) = auth {
            headers.insert(name, value.clone());
        }
        rb = rb.headers(headers);
        if let Some((body, _)) = &p.body {
            rb = rb.body(body.clone());
        }
        let peer = self.target.host();
        let resp = match rb.send().await {
            Ok(r) => r,
            Err(e) => return self.failed(p, transport_error(e, self.timeout, peer), None),
        };
        let status = resp.status().as_u16();
        let headers = collect_headers(resp.headers());
        let body = match read_body(resp).await {
            Ok(Some(b)) => b,
            Ok(None) => {
                return Attempt::Fail(ConnectorError::InvalidResponse {
                    message: format!("the body is larger than {} MiB", MAX_BODY >> 20),
                    excerpt: String::new(),
                    reach: Reach::MaybeProcessed,
                });
            }
            // The answer was cut short: the service acted, or began to.
            Err(e) => return self.failed(p, transport_error(e, self.timeout, peer), None),
        };
        tracing::debug!(connector = %self.name, method = %p.method, status, "http call");
        let raw = RawResponse {
            status,
            headers,
            body,
        };
        if let Some(pause) = rate_limit_pause(status, &raw.headers, SystemTime::now()) {
            tracing::debug!(connector = %self.name, pause_ms = pause.as_millis() as u64, "rate-limit headers: pausing calls");
            self.pause.hold(pause);
        }
        if p.graphql
            && (200..300).contains(&status)
            && let Some(wait) = graphql_throttled(&raw.body)
        {
            self.pause.hold(wait);
            return Attempt::Retry {
                error: ConnectorError::Status {
                    status: 429,
                    excerpt: "GraphQL: THROTTLED".into(),
                    attempts: 0,
                    reach: Reach::NotProcessed,
                },
                retry_after: Some(wait),
            };
        }
        if rate_limit_refusal(status, &raw.body) {
            let retry_after = raw
                .headers
                .get("retry-after")
                .and_then(|v| parse_retry_after(v, SystemTime::now()));
            return Attempt::Retry {
                error: ConnectorError::Status {
                    status,
                    excerpt: self.auth.redactor.redact(&excerpt(&raw.body)),
                    attempts: 0,
                    reach: Reach::NotProcessed,
                },
                retry_after,
            };
        }
        if self.retry.retries_status(status) {
            let retry_after = raw
                .headers
                .get("retry-after")
                .and_then(|v| parse_retry_after(v, SystemTime::now()));
            return self.failed(p, self.status_error(&raw, 0), retry_after);
        }
        Attempt::Done(raw)
    }

    /// A place under the connector's cap on calls in flight; the time waiting for one is
    /// counted.
    async fn permit(&self) -> Result<tokio::sync::SemaphorePermit<'_>, tokio::sync::AcquireError> {
        if let Ok(p) = self.permits.try_acquire() {
            return Ok(p);
        }
        let waiting = Instant::now();
        let p = self.permits.acquire().await;
        self.cap_waits.add(waiting.elapsed());
        p
    }

    /// A failed attempt is retried when [`may_resend`] allows it, else it ends the call.
    fn failed<T>(
        &self,
        p: &Prepared,
        error: ConnectorError,
        retry_after: Option<Duration>,
    ) -> Attempt<T, ConnectorError> {
        if may_resend(error.reach(), p.idempotent) {
            Attempt::Retry { error, retry_after }
        } else {
            Attempt::Fail(error)
        }
    }

    fn status_error(&self, raw: &RawResponse, attempts: u32) -> ConnectorError {
        ConnectorError::Status {
            status: raw.status,
            excerpt: self.auth.redactor.redact(&excerpt(&raw.body)),
            attempts,
            reach: status_reach(raw.status, raw.headers.contains_key("retry-after")),
        }
    }

    /// Judges an answer: 2xx is a result, a status in `absent_on` means nothing is held,
    /// anything else is an error with the body's start.
    pub(super) fn interpret(
        &self,
        raw: RawResponse,
        absent_on: &[u16],
        attempts: u32,
    ) -> Result<Response, ConnectorError> {
        let ok = (200..300).contains(&raw.status);
        let absent = !ok && absent_on.contains(&raw.status);
        if !ok && !absent {
            return Err(self.status_error(&raw, attempts));
        }
        let body = match decode_body(&raw.headers, &raw.body) {
            Ok(v) => v,
            // The body of a "nothing here" answer is only informative.
            Err(_) if absent => Value::Null,
            // An unreadable answer says nothing of what the service did.
            Err(message) => {
                return Err(ConnectorError::InvalidResponse {
                    message,
                    excerpt: self.auth.redactor.redact(&excerpt(&raw.body)),
                    reach: Reach::MaybeProcessed,
                });
            }
        };
        Ok(Response {
            status: Some(raw.status),
            body,
            headers: raw.headers,
            absent,
            affected: None,
            records: 0,
            attempts,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn rate_limit_headers_name_the_pause() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        // Something left: no pause.
        assert_eq!(
            rate_limit_pause(
                200,
                &headers(&[("x-ratelimit-remaining", "3"), ("x-ratelimit-reset", "9")]),
                now
            ),
            None
        );
        // Exhausted, reset in seconds (IETF draft, Zendesk).
        assert_eq!(
            rate_limit_pause(
                200,
                &headers(&[("ratelimit-remaining", "0"), ("ratelimit-reset", "7")]),
                now
            ),
            Some(Duration::from_secs(7))
        );
        // Exhausted, reset as a Unix time (Okta, Intercom, Auth0).
        assert_eq!(
            rate_limit_pause(
                200,
                &headers(&[
                    ("x-rate-limit-remaining", "0"),
                    ("x-rate-limit-reset", "1800000012")
                ]),
                now
            ),
            Some(Duration::from_secs(12))
        );
        // HubSpot: no reset time, the window's length in milliseconds.
        assert_eq!(
            rate_limit_pause(
                200,
                &headers(&[
                    ("x-hubspot-ratelimit-max", "100"),
                    ("x-hubspot-ratelimit-remaining", "0"),
                    ("x-hubspot-ratelimit-interval-milliseconds", "10000"),
                    ("x-hubspot-ratelimit-daily-remaining", "250000")
                ]),
                now
            ),
            Some(Duration::from_secs(10))
        );
        assert_eq!(
            rate_limit_pause(
                200,
                &headers(&[
                    ("x-hubspot-ratelimit-remaining", "4"),
                    ("x-hubspot-ratelimit-interval-milliseconds", "10000")
                ]),
                now
            ),
            None
        );
        // A 429's Retry-After wins; an HTTP date counts from now; the pause is capped.
        assert_eq!(
            rate_limit_pause(429, &headers(&[("retry-after", "86400")]), now),
            Some(MAX_PAUSE)
        );
        // A 200's Retry-After is not a rate-limit answer; a reset in the past is none.
        assert_eq!(
            rate_limit_pause(200, &headers(&[("retry-after", "5")]), now),
            None
        );
        assert_eq!(
            rate_limit_pause(
                200,
                &headers(&[
                    ("x-ratelimit-remaining", "0"),
                    ("x-ratelimit-reset", "1700000000")
                ]),
                now
            ),
            None
        );
    }

    #[test]
    fn graphql_errors_and_throttling_are_read_from_the_body() {
        assert_eq!(
            graphql_errors(&serde_json::json!({"errors": [{"message": "a"}, {"message": "b"}]}))
                .as_deref(),
            Some("a; b")
        );
        assert_eq!(
            graphql_errors(&serde_json::json!({"data": {}, "errors": []})),
            None
        );
        let throttled = serde_json::json!({"errors": [{"extensions": {"code": "THROTTLED"}}],
            "extensions": {"cost": {"requestedQueryCost": 300,
                "throttleStatus": {"currentlyAvailable": 100, "restoreRate": 50.0}}}});
        assert_eq!(
            graphql_throttled(throttled.to_string().as_bytes()),
            Some(Duration::from_secs(4))
        );
        assert_eq!(graphql_throttled(b"{\"data\": {}}"), None);
    }

    #[test]
    fn documented_403_slow_downs_are_recognised_and_refusals_are_not() {
        let google = |reason: &str| {
            serde_json::to_vec(&serde_json::json!({"error": {"code": 403, "message": "m",
                "errors": [{"domain": "usageLimits", "reason": reason, "message": "m"}]}}))
            .unwrap()
        };
        assert!(rate_limit_refusal(403, &google("userRateLimitExceeded")));
        assert!(rate_limit_refusal(403, &google("quotaExceeded")));
        assert!(!rate_limit_refusal(403, &google("dailyLimitExceeded")));
        assert!(!rate_limit_refusal(403, &google("forbidden")));
        let sf = br#"[{"message":"TotalRequests Limit exceeded.","errorCode":"REQUEST_LIMIT_EXCEEDED"}]"#;
        assert!(rate_limit_refusal(403, sf));
        assert!(!rate_limit_refusal(400, sf));
        assert!(!rate_limit_refusal(
            403,
            br#"[{"message":"no","errorCode":"INSUFFICIENT_ACCESS"}]"#
        ));
        assert!(!rate_limit_refusal(403, b"not json"));
    }
}
