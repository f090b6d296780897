//! Conversions shared by the SQLite and PostgreSQL stores.

use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use serde::de::DeserializeOwned;

use super::StoreError;
use crate::journal::{
    Plan, RequestRecord, RequestState, RunMode, RunRecord, RunStatus, StepOutcome,
};
use crate::model::Request;

/// Schema version both stores migrate to.
pub(crate) const SCHEMA_VERSION: i64 = 2;

/// Milliseconds since the epoch: how every time is stored (same on both databases, cheap to
/// index and compare).
pub(crate) fn millis(at: DateTime<Utc>) -> i64 {
    at.timestamp_millis()
}

pub(crate) fn from_millis(ms: i64) -> Result<DateTime<Utc>, StoreError> {
    DateTime::from_timestamp_millis(ms)
        .ok_or_else(|| StoreError::Corrupt(format!("timestamp {ms} out of range")))
}

pub(crate) fn expiry(now: DateTime<Utc>, ttl: Duration) -> i64 {
    millis(now).saturating_add(i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX))
}

pub(crate) fn db(e: sqlx::Error) -> StoreError {
    StoreError::Database(e.to_string())
}

pub(crate) fn is_foreign_key_violation(e: &sqlx::Error) -> bool {
    e.as_database_error()
        .is_some_and(|d| matches!(d.kind(), sqlx::error::ErrorKind::ForeignKeyViolation))
}

pub(crate) fn is_unique_violation(e: &sqlx::Error) -> bool {
    e.as_database_error()
        .is_some_and(|d| matches!(d.kind(), sqlx::error::ErrorKind::UniqueViolation))
}

/// A snake_case enum from its stored name.
pub(crate) fn parse_name<T: DeserializeOwned>(what: &str, name: &str) -> Result<T, StoreError> {
    serde_json::from_value(serde_json::Value::String(name.to_owned()))
        .map_err(|_| StoreError::Corrupt(format!("unknown {what} `{name}`")))
}

pub(crate) fn parse_json<T: DeserializeOwned>(what: &str, text: &str) -> Result<T, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt(format!("{what}: {e}")))
}

pub(crate) fn to_json<T: serde::Serialize>(value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value).map_err(|e| StoreError::Corrupt(e.to_string()))
}

pub(crate) fn mode_name(mode: RunMode) -> &'static str {
    match mode {
        RunMode::DryRun => "dry_run",
        RunMode::Apply => "apply",
    }
}

/// A `LIKE` pattern matching ids starting with `prefix` (escape character `\`).
pub(crate) fn prefix_pattern(prefix: &str) -> String {
    let mut out = String::with_capacity(prefix.len() + 1);
    for c in prefix.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

/// A keyed index tag, checked to be hex (so it needs no escaping in a `LIKE` pattern).
pub(crate) fn tag_text(tag: &str) -> Result<&str, StoreError> {
    if !tag.is_empty() && tag.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(tag)
    } else {
        Err(StoreError::Corrupt(format!("index tag `{tag}` is not hex")))
    }
}

/// Shortest id prefix `run()` accepts.
pub(crate) const MIN_PREFIX: usize = 4;

/// One run row as read.
pub(crate) struct RunRow {
    pub id: String,
    pub request_id: String,
    pub mode: String,
    pub status: String,
    pub created_at: i64,
    pub updated_at: i64,
    pub plan: String,
}

impl RunRow {
    pub(crate) fn into_record(self) -> Result<RunRecord, StoreError> {
        Ok(RunRecord {
            mode: parse_name::<RunMode>("run mode", &self.mode)?,
            status: parse_name::<RunStatus>("run status", &self.status)?,
            created_at: from_millis(self.created_at)?,
            updated_at: from_millis(self.updated_at)?,
            plan: parse_json::<Plan>(&format!("plan of run {}", self.id), &self.plan)?,
            id: self.id,
            request_id: self.request_id,
        })
    }
}

/// One request row as read.
pub(crate) struct RequestRow {
    pub body: String,
    pub state: String,
    pub reason: Option<String>,
    pub received: String,
    pub deadline: String,
    pub extended: bool,
    pub extension_reason: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

impl RequestRow {
    pub(crate) fn into_record(self) -> Result<RequestRecord, StoreError> {
        let request: Request = parse_json("request", &self.body)?;
        Ok(RequestRecord {
            state: RequestState::parse(&self.state).ok_or_else(|| {
                StoreError::Corrupt(format!("unknown request state `{}`", self.state))
            })?,
            reason: self.reason,
            received: parse_date(&self.received)?,
            deadline: parse_date(&self.deadline)?,
            extended: self.extended,
            extension_reason: self.extension_reason,
            created_at: from_millis(self.created_at)?,
            updated_at: from_millis(self.updated_at)?,
            request,
        })
    }
}

fn parse_date(text: &str) -> Result<NaiveDate, StoreError> {
    text.parse()
        .map_err(|_| StoreError::Corrupt(format!("date `{text}`")))
}

/// A journal write: one step instance's outcome, ready for the database.
#[derive(Debug, Clone)]
pub(crate) struct JournalRow {
    pub run_id: String,
    pub instance: String,
    pub step: String,
    pub status: &'static str,
    pub due_at: Option<i64>,
    pub body: String,
}

impl JournalRow {
    pub(crate) fn new(run: &str, outcome: &StepOutcome) -> Result<JournalRow, StoreError> {
        Ok(JournalRow {
            run_id: run.to_owned(),
            instance: outcome.instance.clone(),
            step: outcome.step.clone(),
            status: outcome.status.as_str(),
            due_at: outcome.due_at.map(millis),
            body: to_json(outcome)?,
        })
    }
}

/// The states a request may move to `state` from, as an SQL list (`'a', 'b'`).
pub(crate) fn predecessor_list(state: RequestState) -> String {
    RequestState::predecessors(state)
        .iter()
        .map(|s| format!("'{}'", s.as_str()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Refuses a move to a state that needs a reason (see [`RequestState::needs_reason`]) made
/// without one; the lifecycle's other rules are checked by the statement itself.
pub(crate) fn reason_given(
    id: &str,
    state: RequestState,
    reason: Option<&str>,
) -> Result<(), StoreError> {
    if state.needs_reason() && reason.is_none_or(|r| r.trim().is_empty()) {
        return Err(StoreError::ReasonRequired {
            id: id.to_owned(),
            state,
        });
    }
    Ok(())
}

/// The error for a state change the lifecycle refuses, given the current state.
pub(crate) fn transition_error(id: &str, current: Option<String>, to: RequestState) -> StoreError {
    match current.as_deref().and_then(RequestState::parse) {
        Some(from) => StoreError::InvalidTransition {
            id: id.to_owned(),
            from,
            to,
        },
        None => StoreError::RequestNotFound(id.to_owned()),
    }
}

/// An audit entry from its stored columns: `text` is kind, subject, detail, prev hash, hash.
pub(crate) fn audit_row(
    seq: i64,
    at: i64,
    text: [String; 5],
    actor: Option<String>,
) -> Result<super::AuditEntry, StoreError> {
    let [kind, subject, detail, prev_hash, hash] = text;
    Ok(super::AuditEntry {
        seq: u64::try_from(seq)
            .map_err(|_| StoreError::Corrupt(format!("audit sequence number {seq}")))?,
        at: from_millis(at)?,
        kind,
        subject,
        actor,
        detail: parse_json("audit detail", &detail)?,
        prev_hash,
        hash,
    })
}

/// Where an evidence file is kept: `evidence/<id>` (a row of the store's evidence table).
pub(crate) fn evidence_location(id: i64) -> String {
    format!("evidence/{id}")
}

pub(crate) fn evidence_id(stored_at: &str) -> Result<i64, StoreError> {
    stored_at
        .strip_prefix("evidence/")
        .and_then(|id| id.parse().ok())
        .ok_or_else(|| StoreError::EvidenceNotFound(stored_at.to_owned()))
}

/// A new run id: 12 random hex digits (from a UUIDv7's random part), short enough to type
/// and distinct from the first characters on.
pub(crate) fn new_run_id() -> String {
    let simple = uuid::Uuid::now_v7().simple().to_string();
    simple[simple.len() - 12..].to_owned()
}

/// Records a request's DRP origin: `(request, agent, agent-request-id, callback, now, next)`.
/// The request as recorded now counts as seen: its first status is the exercise's answer.
pub(crate) const INSERT_DRP: &str = "INSERT INTO drp_requests (request_id, agent, \
    agent_request_id, status_callback, seen_at, checked_at, next_at) \
    VALUES ($1, $2, $3, $4, $5, $5, $6) ON CONFLICT (request_id) DO NOTHING";

/// Claims due status callbacks: `(now, recheck before, hold until, limit)`. A callback is
/// due when its request changed since it was last seen (or was last checked before the
/// recheck time) and its next attempt is due; it is held until the hold time. The outer
/// `next_at` test makes a second worker's concurrent claim, which waits for the first's row
/// locks and then reads the rows again, skip what the first took.
pub(crate) const CLAIM_DRP: &str = "UPDATE drp_requests SET next_at = $3 \
    WHERE next_at <= $1 AND request_id IN (\
    SELECT d.request_id FROM drp_requests d JOIN requests r ON r.id = d.request_id \
    WHERE d.next_at IS NOT NULL AND d.next_at <= $1 AND d.status_callback IS NOT NULL \
    AND (r.updated_at > d.seen_at OR d.checked_at <= $2) ORDER BY d.next_at LIMIT $4) \
    RETURNING request_id, agent, agent_request_id, status_callback, sent, attempts";

/// Settles a status callback attempt: `(request, sent, seen, attempts, next, now)`.
pub(crate) const SETTLE_DRP: &str = "UPDATE drp_requests SET sent = $2, seen_at = $3, \
    attempts = $4, next_at = $5, checked_at = $6 WHERE request_id = $1";

/// A statement of these numbered with `$N` as SQLite numbers them (`?N`): SQLite reads
/// `$N` as a name, numbered by first appearance.
pub(crate) fn sqlite_numbered(sql: &str) -> String {
    sql.replace('$', "?")
}

/// [`super::DRP_RECHECK`] in milliseconds.
pub(crate) fn drp_recheck_millis() -> i64 {
    i64::try_from(super::DRP_RECHECK.as_millis()).unwrap_or(i64::MAX)
}

/// Drops the console sessions unused since `$1`.
pub(crate) const DROP_IDLE_SESSIONS: &str = "DELETE FROM console_sessions WHERE last_used <= $1";

/// Records a console session: `(id hash, token, now)`.
pub(crate) const OPEN_SESSION: &str =
    "INSERT INTO console_sessions (id_hash, token, last_used) VALUES ($1, $2, $3)";

/// Marks a live console session used: `(id hash, now, unused since)`; its token.
pub(crate) const USE_SESSION: &str = "UPDATE console_sessions SET last_used = $2 \
    WHERE id_hash = $1 AND last_used > $3 RETURNING token";

/// Ends a console session: `(id hash)`.
pub(crate) const CLOSE_SESSION: &str = "DELETE FROM console_sessions WHERE id_hash = $1";

/// `now - idle` in milliseconds: sessions last used at or before it have lapsed.
pub(crate) fn lapsed_before(now: DateTime<Utc>, idle: Duration) -> i64 {
    millis(now).saturating_sub(i64::try_from(idle.as_millis()).unwrap_or(i64::MAX))
}
