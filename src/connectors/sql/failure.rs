//! Failures inside the SQL connector, classified for retry and cleaned of bound values.

use std::time::Duration;

use super::row::RowError;
use super::statement::Bind;
use crate::connectors::{ConnectorError, Reach};

/// What went wrong in one attempt.
#[derive(Debug)]
pub enum Failure {
    /// The database or the connection failed.
    Db {
        /// Message with bound values removed.
        message: String,
        /// Whether the transaction was rolled back by the failure and may be re-run.
        retryable: bool,
    },
    /// The commit was sent (or an autocommitted statement ran) but its outcome is unknown:
    /// the database may have applied it.
    CommitUnknown(String),
    /// The connector refuses the operation (bad identifier, too many rows, ...).
    Refused(String),
    /// A statement did not finish in time.
    Timeout(Duration),
    /// A value could not be converted to JSON.
    Row(RowError),
    /// The export sink failed.
    Sink(std::io::Error),
}

impl Failure {
    /// Wraps a `sqlx` error; `binds` are the values that must not appear in messages.
    pub fn db(e: sqlx::Error, binds: &[Bind]) -> Failure {
        let retryable = is_retryable(&e);
        let message = match &e {
            sqlx::Error::Database(d) => {
                let code = d.code().map(|c| c.into_owned()).unwrap_or_default();
                let mut msg = redact(d.message(), binds);
                // Data and integrity errors echo the offending value in quotes.
                if code.starts_with("22") || code.starts_with("23") {
                    msg = redact_quoted(&msg);
                }
                format!("database error (SQLSTATE {code}): {msg}")
            }
            other => redact(&other.to_string(), binds),
        };
        Failure::Db { message, retryable }
    }

    /// Whether another attempt may succeed and is safe.
    pub fn retryable(&self) -> bool {
        matches!(
            self,
            Failure::Db {
                retryable: true,
                ..
            }
        )
    }

    /// The error the engine sees.
    pub fn into_connector(self, attempts: u32) -> ConnectorError {
        match self {
            Failure::Db {
                message,
                retryable: true,
            } => ConnectorError::Transport {
                message,
                attempts,
                // The failure rolled the transaction back.
                reach: Reach::NotProcessed,
            },
            Failure::Db { message, .. } => {
                ConnectorError::Refused(format!("the database rejected the statement: {message}"))
            }
            Failure::CommitUnknown(message) => ConnectorError::Transport {
                message: format!("the commit failed and its outcome is unknown: {message}"),
                attempts,
                reach: Reach::MaybeProcessed,
            },
            Failure::Refused(m) => ConnectorError::Refused(m),
            // A statement that timed out inside a transaction was rolled back with it (an
            // autocommitted one that times out is a `CommitUnknown`).
            Failure::Timeout(after) => ConnectorError::Timeout {
                after,
                attempts,
                reach: Reach::NotProcessed,
            },
            Failure::Row(e) => ConnectorError::InvalidResponse {
                message: e.to_string(),
                excerpt: String::new(),
                reach: Reach::NotProcessed,
            },
            Failure::Sink(e) => {
                ConnectorError::Refused(format!("could not write an exported row: {e}"))
            }
        }
    }
}

impl From<RowError> for Failure {
    fn from(e: RowError) -> Self {
        Failure::Row(e)
    }
}

fn is_retryable(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(d) => d.code().is_some_and(|c| {
            // connection exception, admin shutdown / crash, serialization failure, deadlock,
            // MariaDB "connection was killed"
            c.starts_with("08")
                || c.starts_with("57P0")
                || c == "40001"
                || c == "40P01"
                || c == "70100"
                // SQLite busy / locked (extended codes included)
                || matches!(c.as_ref(), "5" | "6" | "261" | "262" | "517")
        }),
        _ => false,
    }
}

fn redact(message: &str, binds: &[Bind]) -> String {
    let mut out = message.to_owned();
    for b in binds {
        if let Some(t) = b.text().filter(|t| !t.is_empty()) {
            out = out.replace(t, "<value>");
        }
    }
    out
}

fn redact_quoted(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut open: Option<char> = None;
    for c in message.chars() {
        match open {
            Some(q) if c == q => {
                out.push('…');
                out.push(c);
                open = None;
            }
            Some(_) => {}
            None => {
                out.push(c);
                if c == '\'' || c == '"' {
                    open = Some(c);
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lost_commit_may_have_been_applied_a_rolled_back_failure_was_not() {
        let lost = Failure::CommitUnknown("connection reset".into()).into_connector(1);
        assert_eq!(lost.reach(), Reach::MaybeProcessed);
        let rolled_back = Failure::Db {
            message: "connection reset".into(),
            retryable: true,
        }
        .into_connector(3);
        assert_eq!(rolled_back.reach(), Reach::NotProcessed);
        let timed_out = Failure::Timeout(Duration::from_secs(1)).into_connector(1);
        assert_eq!(timed_out.reach(), Reach::NotProcessed);
    }

    #[test]
    fn messages_lose_bound_values() {
        assert_eq!(
            redact("no row for 'a@b.c' here", &[Bind::Text("a@b.c".into())]),
            "no row for '<value>' here"
        );
        assert_eq!(
            redact_quoted("invalid input syntax for type bigint: \"x' OR 1=1\""),
            "invalid input syntax for type bigint: \"…\""
        );
    }
}
