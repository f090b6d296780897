//! The email connector: messages to processors without an API, sent through an SMTP relay
//! (STARTTLS or TLS with rustls, unencrypted only to a relay on this machine).
//!
//! A send is a mutation that is not idempotent: the engine journals it as started before it
//! is sent and never sends it again blindly. The connector says how far a failed send got
//! ([`Reach`]): a failure before the message's content was written (connection, TLS,
//! authentication, a refused sender or recipient) was not sent; a reply refusing the
//! content was not accepted; a connection lost or a timeout while the content was written or
//! its reply awaited may have been delivered. A send the relay deferred (4xx) or that could
//! not be handed over is made again within the connector's retry policy.

use std::path::Path;
use std::time::Duration;

use async_trait::async_trait;
use lettre::message::header::ContentType;
use lettre::message::{Attachment, Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::{Credentials, DEFAULT_MECHANISMS};
use lettre::transport::smtp::client::{AsyncSmtpConnection, Certificate, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::retry::{Attempt, Retrier, with_attempts};
use super::{Connector, ConnectorError, Operation, Reach, RecordSink, Response};
use crate::model::{EmailConnector, EmailTls};
use crate::secret::SecretResolver;

/// A message, its templates rendered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EmailMessage {
    /// Recipients.
    pub to: Vec<String>,
    /// Subject (holding the request id).
    pub subject: String,
    /// Plain-text body.
    pub body: String,
    /// Attached files.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<EmailFile>,
    /// The `Message-ID`, the same for every attempt at the same step instance, so the
    /// processor's system can tell a resend from a new request.
    pub message_id: String,
}

/// An attached file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EmailFile {
    /// File name.
    pub name: String,
    /// MIME type, e.g. `text/csv`.
    pub content_type: String,
    /// Content.
    pub content: String,
}

/// Sends messages through one SMTP relay.
pub struct EmailClient {
    name: String,
    host: String,
    port: u16,
    tls: EmailTls,
    tls_parameters: Option<TlsParameters>,
    credentials: Option<Credentials>,
    from: Mailbox,
    timeout: Duration,
    retry: Retrier,
}

/// A send that failed, and whether making it again may succeed.
struct Failed {
    error: ConnectorError,
    again: bool,
}

impl Failed {
    /// A failure that sending again cannot change.
    fn fatal(error: ConnectorError) -> Self {
        Failed {
            error,
            again: false,
        }
    }
}

fn config(name: &str, message: impl std::fmt::Display) -> ConnectorError {
    ConnectorError::Config(format!("email connector `{name}`: {message}"))
}

impl EmailClient {
    /// The connector for `cfg`; secrets and the CA file are read now.
    pub fn new(
        name: &str,
        cfg: &EmailConnector,
        base_dir: &Path,
        secrets: &dyn SecretResolver,
    ) -> Result<EmailClient, ConnectorError> {
        let from: Mailbox = cfg
            .from
            .parse()
            .map_err(|e| config(name, format_args!("`from` is not an address ({e})")))?;
        if cfg.tls == EmailTls::None && !cfg.host_is_loopback() {
            return Err(config(
                name,
                format_args!(
                    "`tls: none` is only allowed to a relay on this machine, not `{}`",
                    cfg.host
                ),
            ));
        }
        let tls_parameters = match cfg.tls {
            EmailTls::None => None,
            EmailTls::Starttls | EmailTls::Tls => {
                let mut builder = TlsParameters::builder(cfg.host.clone());
                if let Some(file) = &cfg.ca_file {
                    let path = base_dir.join(file);
                    let pem = std::fs::read(&path).map_err(|e| {
                        config(name, format_args!("reading `{}`: {e}", path.display()))
                    })?;
                    let cert = Certificate::from_pem(&pem).map_err(|e| {
                        config(
                            name,
                            format_args!("`{}` is not a PEM certificate ({e})", path.display()),
                        )
                    })?;
                    builder = builder.add_root_certificate(cert);
                }
                Some(
                    builder
                        .build_rustls()
                        .map_err(|e| config(name, format_args!("TLS settings: {e}")))?,
                )
            }
        };
        let credentials = match (&cfg.username, &cfg.password) {
            (Some(user), Some(password)) => {
                Some(Credentials::new(user.clone(), secrets.resolve(password)?))
            }
            (None, None) => None,
            _ => return Err(config(name, "`username` and `password` go together")),
        };
        Ok(EmailClient {
            name: name.to_owned(),
            host: cfg.host.clone(),
            port: cfg.port_or_default(),
            tls: cfg.tls,
            tls_parameters,
            credentials,
            from,
            timeout: cfg
                .timeout
                .as_ref()
                .map_or(Duration::from_secs(60), |t| t.get()),
            retry: Retrier::from_policy(&cfg.retry.clone().unwrap_or_default()),
        })
    }

    /// The message as it is sent.
    fn build(&self, m: &EmailMessage) -> Result<lettre::Message, ConnectorError> {
        let mut builder = lettre::Message::builder()
            .from(self.from.clone())
            .subject(m.subject.clone())
            .message_id(Some(m.message_id.clone()));
        for to in &m.to {
            let mailbox: Mailbox = to.parse().map_err(|e| {
                ConnectorError::Refused(format!("a recipient is not an email address ({e})"))
            })?;
            builder = builder.to(mailbox);
        }
        let text = SinglePart::plain(m.body.clone());
        let message = if m.attachments.is_empty() {
            builder.singlepart(text)
        } else {
            let mut parts = MultiPart::mixed().singlepart(text);
            for f in &m.attachments {
                let kind = ContentType::parse(&f.content_type).map_err(|e| {
                    ConnectorError::Refused(format!("attachment `{}`: {e}", f.name))
                })?;
                parts = parts.singlepart(
                    Attachment::new(f.name.clone()).body(f.content.clone().into_bytes(), kind),
                );
            }
            builder.multipart(parts)
        };
        message.map_err(|e| ConnectorError::Refused(format!("the message cannot be built: {e}")))
    }

    /// Connects, protects the connection as configured and signs in: nothing is sent yet,
    /// so any failure here is [`Reach::NotSent`].
    /// A refusal for good (a 5xx reply, e.g. a wrong password) is not tried again.
    async fn connect(&self) -> Result<AsyncSmtpConnection, Failed> {
        let not_sent = |what: &str, e: lettre::transport::smtp::Error| Failed {
            again: !e.is_permanent(),
            error: ConnectorError::Transport {
                message: format!("{what} {}:{}: {e}", self.host, self.port),
                attempts: 1,
                reach: Reach::NotSent,
            },
        };
        let hello = ClientId::Domain("dsrctl.localhost".to_owned());
        let wrapped = match self.tls {
            EmailTls::Tls => self.tls_parameters.clone(),
            _ => None,
        };
        let mut conn = tokio::time::timeout(
            self.timeout,
            AsyncSmtpConnection::connect_tokio1(
                (self.host.as_str(), self.port),
                Some(self.timeout),
                &hello,
                wrapped,
                None,
            ),
        )
        .await
        .map_err(|_| Failed {
            error: ConnectorError::Timeout {
                after: self.timeout,
                attempts: 1,
                reach: Reach::NotSent,
            },
            again: true,
        })?
        .map_err(|e| not_sent("connecting to", e))?;
        if self.tls == EmailTls::Starttls {
            let Some(params) = self.tls_parameters.clone() else {
                return Err(Failed::fatal(config(
                    &self.name,
                    "STARTTLS without TLS settings",
                )));
            };
            if !conn.can_starttls() {
                let _ = tokio::time::timeout(self.timeout, conn.abort()).await;
                return Err(Failed::fatal(ConnectorError::Transport {
                    message: format!(
                        "{}:{} does not offer STARTTLS; nothing was sent in clear",
                        self.host, self.port
                    ),
                    attempts: 1,
                    reach: Reach::NotSent,
                }));
            }
            conn.starttls(params, &hello)
                .await
                .map_err(|e| not_sent("STARTTLS with", e))?;
        }
        if let Some(credentials) = &self.credentials {
            conn.auth(DEFAULT_MECHANISMS, credentials)
                .await
                .map_err(|e| not_sent("signing in to", e))?;
        }
        Ok(conn)
    }
}

#[async_trait]
impl Connector for EmailClient {
    async fn read(
        &self,
        _op: &Operation,
        _sink: Option<&mut (dyn RecordSink + '_)>,
    ) -> Result<Response, ConnectorError> {
        Err(ConnectorError::Refused(
            "an email connector only sends messages".into(),
        ))
    }

    async fn mutate(&self, op: &Operation) -> Result<Response, ConnectorError> {
        let Operation::Email(m) = op else {
            return Err(ConnectorError::Refused(
                "an email connector only sends messages".into(),
            ));
        };
        let message = self.build(m)?;
        let retried = self
            .retry
            .run(|_| async {
                match self.send_once(m, &message).await {
                    Ok(r) => Attempt::Done(r),
                    Err(f) if f.again => Attempt::Retry {
                        error: f.error,
                        retry_after: None,
                    },
                    Err(f) => Attempt::Fail(f.error),
                }
            })
            .await;
        match retried.result {
            Ok(mut r) => {
                r.attempts = retried.attempts;
                Ok(r)
            }
            Err(e) => Err(with_attempts(e, retried.attempts)),
        }
    }

    async fn preview(
        &self,
        op: &Operation,
    ) -> Result<Option<super::ChangePreview>, ConnectorError> {
        let Operation::Email(m) = op else {
            return Ok(None);
        };
        Ok(Some(super::ChangePreview {
            before: Value::Null,
            after: Some(json!({
                "to": m.to, "subject": m.subject,
                "attachments": m.attachments.iter().map(|f| f.name.clone()).collect::<Vec<_>>(),
            })),
            count: 1,
        }))
    }
}

impl EmailClient {
    /// One attempt at handing `message` to the relay.
    async fn send_once(
        &self,
        m: &EmailMessage,
        message: &lettre::Message,
    ) -> Result<Response, Failed> {
        let mut conn = self.connect().await?;
        let sent = tokio::time::timeout(
            self.timeout,
            conn.send(message.envelope(), &message.formatted()),
        )
        .await;
        let reply = match sent {
            Err(_) => {
                // No QUIT: a relay that stopped answering would hang it; dropping the
                // connection closes it.
                drop(conn);
                return Err(Failed::fatal(ConnectorError::Timeout {
                    after: self.timeout,
                    attempts: 1,
                    reach: Reach::MaybeProcessed,
                }));
            }
            Ok(Err(e)) => {
                // QUIT is sent only to a relay still in step with us (`abort` skips it
                // after a broken exchange), and not waited for longer than the timeout.
                let _ = tokio::time::timeout(self.timeout, conn.abort()).await;
                // A reply refusing the sender, a recipient or the content: not accepted. A
                // check before anything was written: not sent. A lost connection or an
                // unreadable reply: it may have been accepted.
                let reach = if e.is_transient() || e.is_permanent() {
                    Reach::NotProcessed
                } else if e.is_client() {
                    Reach::NotSent
                } else {
                    Reach::MaybeProcessed
                };
                // Only a deferral (4xx) is worth asking again: the relay said it did not
                // take the message, and may take it later.
                return Err(Failed {
                    again: e.is_transient(),
                    error: ConnectorError::Transport {
                        message: format!("sending through {}:{}: {e}", self.host, self.port),
                        attempts: 1,
                        reach,
                    },
                });
            }
            Ok(Ok(reply)) => reply,
        };
        // The relay took the message; the end of the session is not part of the send.
        let _ = tokio::time::timeout(self.timeout, conn.quit()).await;
        Ok(Response {
            status: Some(reply.code().into()),
            body: json!({
                "accepted": reply.message().collect::<Vec<_>>().join(" "),
                "message_id": m.message_id,
                "to": m.to,
            }),
            affected: Some(1),
            attempts: 1,
            ..Response::default()
        })
    }
}
