//! Authentication of an HTTP connector: a fixed header (bearer token, API key, basic) or an
//! OAuth2 client-credentials token, cached until shortly before it expires.
//!
//! Secrets live only in sensitive header values and in a [`Redactor`] that scrubs them from
//! any text that could reach an error message.

use std::time::{Duration, Instant};

use base64::Engine as _;
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderName, HeaderValue};
use serde_json::Value;
use url::Url;

use super::redactor::Redactor;
use crate::connectors::retry::{Attempt, Retrier, parse_retry_after, with_attempts};
use crate::connectors::{ConnectorError, Reach, excerpt};
use crate::model::Auth as AuthConfig;
use crate::secret::{SecretResolver, describe};

/// Refresh a cached token this long before it expires (less for very short-lived tokens).
const EXPIRY_MARGIN: Duration = Duration::from_secs(60);

/// The authorization header of one call, and which cached token it came from.
#[derive(Debug, Clone)]
pub(super) struct Credential {
    pub(super) header: Option<(HeaderName, HeaderValue)>,
    generation: u64,
}

#[derive(Debug)]
struct Token {
    header: HeaderValue,
    expires: Instant,
    generation: u64,
}

struct OAuth2 {
    token_url: Url,
    /// The form body, client secret included.
    form: String,
    cache: tokio::sync::Mutex<Option<Token>>,
}

impl std::fmt::Debug for OAuth2 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OAuth2")
            .field("token_url", &self.token_url.as_str())
            .finish_non_exhaustive()
    }
}

#[derive(Debug)]
enum Kind {
    None,
    Fixed(HeaderName, HeaderValue),
    OAuth2(Box<OAuth2>),
}

/// A connector's authentication.
#[derive(Debug)]
pub(super) struct Authenticator {
    kind: Kind,
    pub(super) redactor: Redactor,
}

fn sensitive(value: &str, what: &str) -> Result<HeaderValue, ConnectorError> {
    let mut v = HeaderValue::from_str(value).map_err(|_| {
        ConnectorError::Config(format!(
            "{what} holds characters not allowed in an HTTP header"
        ))
    })?;
    v.set_sensitive(true);
    Ok(v)
}

impl Authenticator {
    /// Resolves the secrets the config refers to.
    pub(super) fn new(
        cfg: &AuthConfig,
        secrets: &dyn SecretResolver,
    ) -> Result<Self, ConnectorError> {
        let redactor = Redactor::default();
        let kind = match cfg {
            AuthConfig::None => Kind::None,
            AuthConfig::Bearer { token } => {
                let t = secrets.resolve(token)?;
                redactor.add(&t);
                let what = format!("the bearer token ({})", describe(token));
                Kind::Fixed(AUTHORIZATION, sensitive(&format!("Bearer {t}"), &what)?)
            }
            AuthConfig::ApiKey { header, value } => {
                let key = secrets.resolve(value)?;
                redactor.add(&key);
                let name = HeaderName::from_bytes(header.as_bytes()).map_err(|_| {
                    ConnectorError::Config(format!("`auth.header` `{header}` is not a header name"))
                })?;
                let what = format!("the API key ({})", describe(value));
                Kind::Fixed(name, sensitive(&key, &what)?)
            }
            AuthConfig::Basic { username, password } => {
                let pw = secrets.resolve(password)?;
                let encoded =
                    base64::engine::general_purpose::STANDARD.encode(format!("{username}:{pw}"));
                redactor.add(&pw);
                redactor.add(&encoded);
                let what = format!("the basic credentials ({})", describe(password));
                Kind::Fixed(
                    AUTHORIZATION,
                    sensitive(&format!("Basic {encoded}"), &what)?,
                )
            }
            AuthConfig::Oauth2 {
                token_url,
                client_id,
                client_secret,
                scope,
            } => {
                let token_url = Url::parse(token_url).map_err(|e| {
                    ConnectorError::Config(format!("`auth.token_url` is not a valid URL ({e})"))
                })?;
                let secret = secrets.resolve(client_secret)?;
                let mut form = url::form_urlencoded::Serializer::new(String::new());
                form.append_pair("grant_type", "client_credentials");
                form.append_pair("client_id", client_id);
                form.append_pair("client_secret", &secret);
                if let Some(scope) = scope {
                    form.append_pair("scope", scope);
                }
                redactor.add(&secret);
                redactor.add(
                    &url::form_urlencoded::byte_serialize(secret.as_bytes()).collect::<String>(),
                );
                Kind::OAuth2(Box::new(OAuth2 {
                    token_url,
                    form: form.finish(),
                    cache: tokio::sync::Mutex::new(None),
                }))
            }
        };
        Ok(Authenticator { kind, redactor })
    }

    /// Whether a 401 is worth one refresh of the token.
    pub(super) fn refreshes(&self) -> bool {
        matches!(self.kind, Kind::OAuth2(_))
    }

    /// The header for the next call; an OAuth2 token is fetched when none is cached or the
    /// cached one is about to expire. Concurrent callers wait for one fetch.
    pub(super) async fn credential(
        &self,
        client: &reqwest::Client,
        timeout: Duration,
        retry: &Retrier,
    ) -> Result<Credential, ConnectorError> {
        match &self.kind {
            Kind::None => Ok(Credential {
                header: None,
                generation: 0,
            }),
            Kind::Fixed(name, value) => Ok(Credential {
                header: Some((name.clone(), value.clone())),
                generation: 0,
            }),
            Kind::OAuth2(o) => {
                let mut cache = o.cache.lock().await;
                if let Some(t) = cache.as_ref()
                    && t.expires > Instant::now()
                {
                    return Ok(Credential {
                        header: Some((AUTHORIZATION, t.header.clone())),
                        generation: t.generation,
                    });
                }
                let generation = cache.as_ref().map_or(1, |t| t.generation + 1);
                let token = self.fetch(o, client, timeout, retry, generation).await?;
                let cred = Credential {
                    header: Some((AUTHORIZATION, token.header.clone())),
                    generation,
                };
                *cache = Some(token);
                Ok(cred)
            }
        }
    }

    /// Drops the cached token the failed call used (unless another call already replaced it).
    pub(super) async fn invalidate(&self, used: &Credential) {
        if let Kind::OAuth2(o) = &self.kind {
            let mut cache = o.cache.lock().await;
            if cache
                .as_ref()
                .is_some_and(|t| t.generation == used.generation)
            {
                *cache = None;
            }
        }
    }

    async fn fetch(
        &self,
        o: &OAuth2,
        client: &reqwest::Client,
        timeout: Duration,
        retry: &Retrier,
        generation: u64,
    ) -> Result<Token, ConnectorError> {
        let endpoint = format!(
            "{}://{}{}",
            o.token_url.scheme(),
            o.token_url.host_str().unwrap_or(""),
            o.token_url.path()
        );
        let retried = retry
            .run(|_| async {
                let sent = client
                    .post(o.token_url.clone())
                    .timeout(timeout)
                    .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
                    .header(ACCEPT, "application/json")
                    .body(o.form.clone())
                    .send()
                    .await;
                let resp = match sent {
                    Ok(r) => r,
                    Err(e) => return Attempt::Retry {
                        error: super::exchange::transport_error(e, timeout, "the OAuth2 token endpoint"),
                        retry_after: None,
                    },
                };
                let status = resp.status().as_u16();
                let retry_after = resp
                    .headers()
                    .get("retry-after")
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| parse_retry_after(v, std::time::SystemTime::now()));
                let body = match resp.bytes().await {
                    Ok(b) => b,
                    Err(e) => return Attempt::Retry {
                        error: super::exchange::transport_error(e, timeout, "the OAuth2 token endpoint"),
                        retry_after: None,
                    },
                };
                let text = self.redactor.redact(&excerpt(&body));
                if retry.retries_status(status) || status >= 500 {
                    return Attempt::Retry {
                        error: ConnectorError::Status { status, excerpt: format!("token endpoint {endpoint}: {text}"), attempts: 0, reach: Reach::NotSent },
                        retry_after,
                    };
                }
                if !(200..300).contains(&status) {
                    return Attempt::Fail(ConnectorError::Config(format!(
                        "the OAuth2 token endpoint {endpoint} answered {status}; check `client_id` and the client secret: {text}"
                    )));
                }
                Attempt::Done(body)
            })
            .await;
        let body = retried
            .result
            .map_err(|e| with_attempts(e, retried.attempts))?;
        let parsed: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        let Some(token) = parsed.get("access_token").and_then(Value::as_str) else {
            return Err(ConnectorError::InvalidResponse {
                message: format!(
                    "the OAuth2 token endpoint {endpoint} answered without `access_token`"
                ),
                excerpt: String::new(),
                reach: Reach::NotSent,
            });
        };
        self.redactor.add(token);
        let lifetime = match parsed.get("expires_in") {
            Some(Value::Number(n)) => n.as_u64(),
            Some(Value::String(s)) => s.parse().ok(),
            _ => None,
        }
        .map_or(Duration::from_secs(300), Duration::from_secs);
        let margin = EXPIRY_MARGIN.min(lifetime / 2);
        Ok(Token {
            header: sensitive(&format!("Bearer {token}"), "the OAuth2 access token")?,
            expires: Instant::now() + lifetime - margin,
            generation,
        })
    }
}
