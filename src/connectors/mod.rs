//! Connectors: ways to reach a system. They know nothing of playbooks: they receive an
//! [`Operation`] already rendered from a step's templates and return a [`Response`].
//!
//! Retries, rate limits and per-call timeouts happen inside each connector (see
//! [`retry`]); the engine only sees the final result, the number of attempts and, for a
//! failure, how far the call got ([`Reach`]): whether the service may have acted on it.

pub mod email;
pub mod http;
pub mod limits;
mod registry;
pub mod retry;
pub mod sql;

pub use registry::connectors_for_tenant;

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::journal::Verification;
use crate::model::{HttpMethod, Paginate, SqlAction};

/// An operation rendered from a step, ready to send.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Operation {
    /// An HTTP call.
    Http(HttpRequest),
    /// A SQL operation whose template strings are already replaced by values.
    Sql(SqlAction),
    /// A message through an email connector.
    Email(email::EmailMessage),
}

/// A rendered HTTP call. `path_and_query` is relative to the connector's base URL (already
/// encoded), or an absolute URL that the connector accepts only on its own origin.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HttpRequest {
    /// Method.
    pub method: HttpMethod,
    /// Encoded path (segments encoded by the `seg` helper), relative to the base URL.
    pub path: String,
    /// Query parameters, unencoded (the connector form-encodes them).
    pub query: Vec<(String, String)>,
    /// Extra headers.
    pub headers: Vec<(String, String)>,
    /// JSON body.
    pub json: Option<Value>,
    /// JSON Patch body.
    pub json_patch: Option<Value>,
    /// Form body (`application/x-www-form-urlencoded`), pairs in order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub form: Option<Vec<(String, String)>>,
    /// A GraphQL call (its body is in `json`): a 200 answer with top-level `errors` fails.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub graphql: bool,
    /// `If-Match` value.
    pub if_match: Option<String>,
    /// Pagination.
    pub paginate: Option<Paginate>,
    /// Statuses that mean "nothing held here".
    pub absent_on: Vec<u16>,
    /// Whether sending it twice does no more than sending it once (set from the step).
    /// A mutation that is not is never resent after a failure that may have reached the
    /// service; reads are always safe to resend.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub idempotent: bool,
}

/// What a connector returns.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Response {
    /// HTTP status (HTTP connector).
    pub status: Option<u16>,
    /// The body (or, when paginated, the list of every page's items; for SQL the rows).
    pub body: Value,
    /// Response headers, names lowercased.
    pub headers: BTreeMap<String, String>,
    /// The service holds nothing for this operation (a status in `absent_on`).
    pub absent: bool,
    /// Rows or resources changed by a mutation, when the connector knows.
    pub affected: Option<u64>,
    /// Records written to the sink (collecting reads).
    pub records: u64,
    /// Attempts made, the first included.
    pub attempts: u32,
}

/// What a mutation would change, derived by the connector itself (structured SQL).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChangePreview {
    /// Rows/resources before.
    pub before: Value,
    /// Their values after, for updates.
    pub after: Option<Value>,
    /// How many rows/resources would change.
    pub count: u64,
}

/// Where collected records go (the export package spool), one JSON value at a time.
pub trait RecordSink: Send {
    /// Writes one record.
    fn write(&mut self, record: &Value) -> std::io::Result<()>;

    /// Writes the records of one page, in order, handing them over (a sink may pass them
    /// to another thread; it may block until it has room for them).
    fn write_page(&mut self, records: Vec<Value>) -> std::io::Result<()> {
        records.iter().try_for_each(|r| self.write(r))
    }
}

/// How far a failed call got: whether the service may have acted on it. This decides
/// whether the call may be sent again: a call that may have been processed is resent only
/// when it is idempotent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reach {
    /// Nothing reached the service: the connection was refused, the name did not resolve,
    /// TLS failed before the request was written, or the connector refused to send it.
    NotSent,
    /// The service answered that it did not act: a refusal (4xx), or "try later" (429, or
    /// 503 with `Retry-After`); for SQL, a transaction that was rolled back.
    NotProcessed,
    /// The request was written but its answer is missing or unreadable: a timeout, a reset
    /// or closed connection, a garbled or cut-short body, a 5xx that does not say "try
    /// later", a commit whose answer was lost. The service may have acted.
    MaybeProcessed,
}

/// Errors of a connector call, after its retries.
#[derive(Debug, thiserror::Error)]
pub enum ConnectorError {
    /// The service answered with an error status.
    #[error("the service answered {status} after {attempts} attempt(s): {excerpt}")]
    Status {
        /// HTTP status.
        status: u16,
        /// The start of the body.
        excerpt: String,
        /// Attempts made.
        attempts: u32,
        /// Whether the service may have acted ([`Reach::MaybeProcessed`] for a 5xx other
        /// than 503 with `Retry-After`).
        reach: Reach,
    },
    /// The connection failed.
    #[error("connection failed after {attempts} attempt(s): {message}")]
    Transport {
        /// What failed.
        message: String,
        /// Attempts made.
        attempts: u32,
        /// Whether the request was written before it failed.
        reach: Reach,
    },
    /// The call did not finish in time.
    #[error("no answer within {after:?} after {attempts} attempt(s)")]
    Timeout {
        /// The timeout.
        after: Duration,
        /// Attempts made.
        attempts: u32,
        /// Whether the request may have been processed (a statement in a transaction
        /// that timed out was rolled back).
        reach: Reach,
    },
    /// The service answered something that is not what the API documents.
    #[error("unexpected response: {message}; body starts: {excerpt}")]
    InvalidResponse {
        /// What is wrong.
        message: String,
        /// The start of the body.
        excerpt: String,
        /// Whether the call may have been processed (an unreadable answer to a mutation).
        reach: Reach,
    },
    /// The connector refused to send the operation (e.g. off-origin URL, too many rows).
    #[error("{0}")]
    Refused(String),
    /// The connector is misconfigured (missing secret, bad URL).
    #[error("connector configuration: {0}")]
    Config(String),
}

impl From<crate::secret::SecretError> for ConnectorError {
    fn from(e: crate::secret::SecretError) -> Self {
        ConnectorError::Config(e.to_string())
    }
}

impl ConnectorError {
    /// Attempts made before the error.
    pub fn attempts(&self) -> u32 {
        match self {
            ConnectorError::Status { attempts, .. }
            | ConnectorError::Transport { attempts, .. }
            | ConnectorError::Timeout { attempts, .. } => *attempts,
            _ => 1,
        }
    }

    /// How far the failed call got.
    pub fn reach(&self) -> Reach {
        match self {
            ConnectorError::Status { reach, .. }
            | ConnectorError::Transport { reach, .. }
            | ConnectorError::Timeout { reach, .. }
            | ConnectorError::InvalidResponse { reach, .. } => *reach,
            ConnectorError::Refused(_) | ConnectorError::Config(_) => Reach::NotSent,
        }
    }

    /// Whether the service may have acted on the failed call, so that sending it again
    /// could act twice.
    pub fn maybe_processed(&self) -> bool {
        self.reach() == Reach::MaybeProcessed
    }

    /// The same error, saying the call got this far.
    pub fn with_reach(mut self, to: Reach) -> Self {
        match &mut self {
            ConnectorError::Status { reach, .. }
            | ConnectorError::Transport { reach, .. }
            | ConnectorError::Timeout { reach, .. }
            | ConnectorError::InvalidResponse { reach, .. } => *reach = to,
            ConnectorError::Refused(_) | ConnectorError::Config(_) => {}
        }
        self
    }

    /// The HTTP status the service answered, if it answered one.
    pub fn status(&self) -> Option<u16> {
        match self {
            ConnectorError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// A configured connector.
#[async_trait]
pub trait Connector: Send + Sync {
    /// Runs a read. Collected records go to `sink` when given (and need not be kept in the
    /// returned body).
    async fn read(
        &self,
        op: &Operation,
        sink: Option<&mut (dyn RecordSink + '_)>,
    ) -> Result<Response, ConnectorError>;

    /// Sends a mutation. Never called in a dry run.
    async fn mutate(&self, op: &Operation) -> Result<Response, ConnectorError>;

    /// What the mutation would change, when the connector can derive it from the operation
    /// itself (a structured SQL delete reads the rows it would delete). Reads only.
    async fn preview(&self, _op: &Operation) -> Result<Option<ChangePreview>, ConnectorError> {
        Ok(None)
    }

    /// Checks, from reads only, that a mutation can succeed whatever rows it meets (e.g. its
    /// masks fit their columns). The operation's templates need not be rendered.
    async fn preflight(&self, _op: &Operation) -> Result<(), ConnectorError> {
        Ok(())
    }

    /// Whether this connector keeps mutations in units of work ([`Connector::mutate_in`]).
    fn holds_units(&self) -> bool {
        false
    }

    /// Sends a mutation inside the unit of work `unit` (opened by its first mutation): it
    /// takes effect only when [`Connector::commit`] commits the unit, and never after
    /// [`Connector::rollback`]. An error leaves the unit to be rolled back; it changed nothing.
    async fn mutate_in(&self, _unit: &str, _op: &Operation) -> Result<Response, ConnectorError> {
        Err(ConnectorError::Refused(
            "this connector does not keep mutations in units of work".into(),
        ))
    }

    /// A read inside the unit of work `unit`, seeing its uncommitted changes; a plain read
    /// when the unit holds nothing yet (or the connector keeps no units).
    async fn read_in(
        &self,
        _unit: &str,
        op: &Operation,
        sink: Option<&mut (dyn RecordSink + '_)>,
    ) -> Result<Response, ConnectorError> {
        self.read(op, sink).await
    }

    /// Commits every mutation of the unit `unit` at once.
    async fn commit(&self, _unit: &str) -> Result<(), ConnectorError> {
        Ok(())
    }

    /// Discards every mutation of the unit `unit`.
    async fn rollback(&self, _unit: &str) {}

    /// Checks a mutation's effect when the connector can (structured SQL). Reads only.
    async fn verify(&self, _op: &Operation) -> Result<Option<Verification>, ConnectorError> {
        Ok(None)
    }

    /// [`Connector::verify`] of each of `ops`, in order, in as few calls as the connector can
    /// make it (structured SQL deletes: one query for many).
    async fn verify_many(
        &self,
        ops: &[&Operation],
    ) -> Vec<Result<Option<Verification>, ConnectorError>> {
        let mut out = Vec::with_capacity(ops.len());
        for op in ops {
            out.push(self.verify(op).await);
        }
        out
    }

    /// Whether [`Connector::verify`] can check this mutation (answered without a call).
    fn verifies(&self, _op: &Operation) -> bool {
        false
    }

    /// The connector's own limits and how long calls waited on them so far, when it has
    /// any.
    fn waits(&self) -> Option<limits::ConnectorWaits> {
        None
    }
}

/// Cuts a body to a short excerpt for error messages.
pub fn excerpt(body: &[u8]) -> String {
    const MAX: usize = 300;
    let text = String::from_utf8_lossy(&body[..body.len().min(MAX * 4)]);
    let mut out: String = text.chars().take(MAX).collect();
    if text.chars().count() > MAX {
        out.push('…');
    }
    out
}
