//! The state store: runs, step outcomes (the journal), requests and the audit log.
//!
//! Two implementations share one trait: SQLite (embedded, WAL, under `.dsrctl/`) and
//! PostgreSQL (shared by several workers, with leases). An outcome is durable when the
//! call that records it returns.

mod audit;
mod group_commit;
mod journal_writer;
mod open;
mod pg_batch;
mod postgres;
mod postgres_schema;
mod postgres_store;
mod sealed;
mod sqlite;
mod sqlite_schema;
mod sqlite_store;
mod util;

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::journal::{
    Evidence, Plan, RequestRecord, RequestState, RunMode, RunRecord, RunStatus, StepOutcome,
};
use crate::model::Request;

pub use audit::{
    AuditBreak, AuditEntry, AuditKey, GENESIS_HASH, STEP_OUTCOME, record_audited, verify_chain,
    verify_chain_to,
};
pub use open::{DEFAULT_SQLITE_PATH, open};
pub use postgres::PostgresStore;
pub use sealed::SealedStore;
pub use sqlite::SqliteStore;

/// Store errors.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database failed.
    #[error("state store: {0}")]
    Database(String),
    /// No such run.
    #[error("no run `{0}` in the state store; `dsrctl runs` lists them")]
    RunNotFound(String),
    /// A run id prefix matches several runs.
    #[error("run id `{0}` is ambiguous; give more characters")]
    Ambiguous(String),
    /// Stored data could not be read back.
    #[error("state store holds unreadable data: {0}")]
    Corrupt(String),
    /// No such request.
    #[error("no request `{0}` in the state store; `dsrctl requests` lists them")]
    RequestNotFound(String),
    /// A request with this id is already recorded.
    #[error("request `{0}` is already recorded; request ids must be unique")]
    DuplicateRequest(String),
    /// A request state change that the lifecycle does not allow.
    #[error("request `{id}` is {from} and cannot become {to}")]
    InvalidTransition {
        /// Request id.
        id: String,
        /// Its current state.
        from: RequestState,
        /// The refused state.
        to: RequestState,
    },
    /// A state change that needs a reason was given none.
    #[error("request `{id}` can only become {state} with a reason (`--reason`)")]
    ReasonRequired {
        /// Request id.
        id: String,
        /// The state asked for.
        state: RequestState,
    },
    /// The deadline of a request was already extended once.
    #[error("the deadline of request `{0}` is already extended; the law allows one extension")]
    AlreadyExtended(String),
    /// A request already has an apply run that has not ended (one request, one live run).
    #[error("request `{0}` already has a run that has not ended")]
    LiveRun(String),
    /// No such evidence file.
    #[error("no evidence `{0}` in the state store")]
    EvidenceNotFound(String),
    /// A sealed value in the store does not open with the project's data key.
    #[error("state store: {0}")]
    Sealed(#[from] crate::journal::SealError),
    /// The audit key could not be read, so nothing can be appended to the audit log.
    #[error("the audit log cannot be written: {0}")]
    AuditKey(String),
    /// The store location could not be used.
    #[error("state store location `{0}`: {1}")]
    Location(String, String),
}

/// A new request for [`Store::import_requests`]: recorded in `state` with `reason`, and the
/// audit entries about it (their subject is the request) appended with it.
#[derive(Debug, Clone)]
pub struct RequestImport {
    /// The request.
    pub request: Request,
    /// The state it is recorded in.
    pub state: RequestState,
    /// Why it is in that state (e.g. the approval rule's reason).
    pub reason: Option<String>,
    /// Its audit entries.
    pub audit: Vec<AuditNote>,
    /// Where it came from, when an Authorized Agent sent it through the Data Rights Protocol.
    pub drp: Option<DrpOrigin>,
}

/// A request received through the Data Rights Protocol: the agent managing it, the agent's
/// own id for it and the URL its status changes are pushed to (section 2.03). Recorded in
/// the transaction that records the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DrpOrigin {
    /// The agent's id (`agent-id`).
    pub agent: String,
    /// The agent's `agent-request-id`, when it gave one.
    pub agent_request_id: Option<String>,
    /// The agent's `status_callback` URL, when it gave one.
    pub status_callback: Option<String>,
}

/// A status callback claimed by [`Store::claim_drp_callbacks`]: the request whose status
/// may have changed since the agent last heard of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DrpCallback {
    /// The request.
    pub request_id: String,
    /// Where it came from (its `status_callback` is set).
    pub origin: DrpOrigin,
    /// A digest of the last Exercise Status the agent acknowledged, if any.
    pub sent: Option<String>,
    /// Failed attempts to deliver since the last one that succeeded.
    pub attempts: u32,
}

/// What a status callback attempt left, for [`Store::settle_drp_callback`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DrpSettled {
    /// The digest of the status the agent now has (unchanged when the attempt failed).
    pub sent: Option<String>,
    /// The request's `updated_at` the attempt read: the callback is due again when the
    /// request changes after it.
    pub seen: DateTime<Utc>,
    /// Failed attempts since the last success.
    pub attempts: u32,
    /// Not before this time; `None`: nothing more is sent (a final status delivered, or
    /// given up).
    pub next: Option<DateTime<Utc>>,
}

/// An audit entry to append about a request.
#[derive(Debug, Clone)]
pub struct AuditNote {
    /// What happened, e.g. `request.received`.
    pub kind: String,
    /// Details.
    pub detail: serde_json::Value,
    /// Who did it.
    pub actor: Option<String>,
}

/// How long a status callback's request goes unread when nothing marks it changed: a
/// change within the millisecond of the last check is still sent this long after.
pub const DRP_RECHECK: Duration = Duration::from_secs(300);

/// The journal the engine writes and reports read.
#[async_trait]
pub trait Store: Send + Sync {
    /// Records a new run of a plan and returns its id. An apply run is refused with
    /// [`StoreError::LiveRun`] while the request has another that has not ended (completed
    /// or abandoned), however many processes try at once.
    async fn create_run(&self, plan: &Plan, mode: RunMode) -> Result<String, StoreError>;
    /// The newest unfinished apply run of a request (neither completed nor abandoned), if any.
    async fn unfinished_run(&self, request_id: &str) -> Result<Option<String>, StoreError>;
    /// The newest apply run of a request, whatever its status.
    async fn latest_run(&self, request_id: &str) -> Result<Option<RunRecord>, StoreError>;
    /// Replaces the plan a run executes (`dsrctl replan`), keeping its journal and status.
    async fn replace_plan(&self, run: &str, plan: &Plan) -> Result<(), StoreError>;
    /// A run by id or unique id prefix.
    async fn run(&self, id: &str) -> Result<RunRecord, StoreError>;
    /// Runs, newest first.
    async fn runs(&self, limit: u32) -> Result<Vec<RunRecord>, StoreError>;
    /// Sets a run's status.
    async fn set_run_status(&self, run: &str, status: RunStatus) -> Result<(), StoreError>;
    /// Marks a run `running` (unless it is already) and returns its journal, in one
    /// transaction: what the engine does when it starts or resumes a run.
    async fn begin_run(&self, run: &str) -> Result<Vec<StepOutcome>, StoreError>;
    /// Every journaled step instance of a run.
    async fn outcomes(&self, run: &str) -> Result<Vec<StepOutcome>, StoreError>;
    /// Records a step instance's start or end (insert or replace by instance key). Durable
    /// when it returns.
    async fn record(&self, run: &str, outcome: &StepOutcome) -> Result<(), StoreError>;

    /// Records a new request in `state`. A request id already recorded is refused
    /// ([`StoreError::DuplicateRequest`]).
    async fn put_request(&self, request: &Request, state: RequestState) -> Result<(), StoreError>;
    /// A request by id.
    async fn request(&self, id: &str) -> Result<RequestRecord, StoreError>;
    /// Every request, the nearest deadline (so the overdue ones) first.
    async fn requests(&self) -> Result<Vec<RequestRecord>, StoreError>;
    /// Moves a request to `state`, atomically checking the lifecycle allows it (see
    /// [`RequestState::can_become`]); `declined` needs a reason. Setting the current state
    /// again is allowed and only replaces the reason.
    async fn set_request_state(
        &self,
        id: &str,
        state: RequestState,
        reason: Option<String>,
    ) -> Result<(), StoreError>;
    /// Replaces the body of a recorded request (same id), keeping its state and dates: how
    /// `dsrctl purge` removes the personal data of a closed request.
    async fn replace_request(&self, request: &Request) -> Result<(), StoreError>;
    /// Requests holding an identity sealed with this keyed index beside it (see
    /// [`DataKey::index_tag`](crate::journal::DataKey::index_tag)): a lookup by identity that
    /// the database answers without holding the value.
    async fn requests_with_tag(&self, tag: &str) -> Result<Vec<RequestRecord>, StoreError>;
    /// The requests of the subject whose identity `name` is `value` (bytes equal).
    async fn requests_for_subject(
        &self,
        name: &str,
        value: &str,
    ) -> Result<Vec<RequestRecord>, StoreError> {
        let all = self.requests().await?;
        Ok(all
            .into_iter()
            .filter(|r| {
                r.request
                    .subject
                    .get(name)
                    .is_some_and(|i| i.values().contains(&value))
            })
            .collect())
    }
    /// Records many new requests at once with their audit entries, in one transaction where
    /// the store has them: a request whose id is already recorded is skipped (nothing of it is
    /// written). Returns, for each, whether it was recorded now. This default records them one
    /// by one; the SQLite and PostgreSQL stores do it in one transaction.
    async fn import_requests(&self, batch: &[RequestImport]) -> Result<Vec<bool>, StoreError> {
        let mut recorded = Vec::with_capacity(batch.len());
        for r in batch {
            match self.put_request(&r.request, r.state).await {
                Ok(()) => {}
                Err(StoreError::DuplicateRequest(_)) => {
                    recorded.push(false);
                    continue;
                }
                Err(e) => return Err(e),
            }
            if r.reason.is_some() {
                self.set_request_state(&r.request.id, r.state, r.reason.clone())
                    .await?;
            }
            for a in &r.audit {
                self.append_audit(&a.kind, &r.request.id, a.detail.clone(), a.actor.as_deref())
                    .await?;
            }
            recorded.push(true);
        }
        Ok(recorded)
    }
    /// Where a request received through the Data Rights Protocol came from; `None` for any
    /// other request.
    async fn drp_origin(&self, request_id: &str) -> Result<Option<DrpOrigin>, StoreError>;
    /// Claims at most `limit` status callbacks due at `now`: requests with a
    /// `status_callback` that changed since their last check (or were last checked more
    /// than [`DRP_RECHECK`] ago), whose next attempt is due. Each is held until `now + hold`,
    /// so another worker does not make the same callback meanwhile.
    async fn claim_drp_callbacks(
        &self,
        now: DateTime<Utc>,
        hold: Duration,
        limit: u32,
    ) -> Result<Vec<DrpCallback>, StoreError>;
    /// Records what a status callback attempt left (checked at `now`).
    async fn settle_drp_callback(
        &self,
        request_id: &str,
        settled: &DrpSettled,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError>;
    /// Records a console session: the SHA-256 of its id (the id itself is only in the
    /// person's cookie) and the API token it acts for; sessions unused for `idle` are
    /// dropped meanwhile.
    async fn open_console_session(
        &self,
        id_hash: &str,
        token: &str,
        now: DateTime<Utc>,
        idle: Duration,
    ) -> Result<(), StoreError>;
    /// The API token of a console session used within `idle` of `now`, marking it used now;
    /// `None` when there is no such session or it lapsed.
    async fn use_console_session(
        &self,
        id_hash: &str,
        now: DateTime<Utc>,
        idle: Duration,
    ) -> Result<Option<String>, StoreError>;
    /// Ends a console session.
    async fn close_console_session(&self, id_hash: &str) -> Result<(), StoreError>;
    /// Extends a request's deadline (once) and returns the updated record.
    async fn extend_request(&self, id: &str, reason: &str) -> Result<RequestRecord, StoreError>;

    /// Step instances waiting for a due time that has come: `(run id, instance)`, the
    /// earliest due first.
    async fn due_steps(&self, now: DateTime<Utc>) -> Result<Vec<(String, String)>, StoreError>;
    /// Approved requests received by `now` that have no run yet, oldest first.
    async fn due_requests(&self, now: DateTime<Utc>) -> Result<Vec<RequestRecord>, StoreError>;

    /// Atomically starts an approved request that has no run yet: moves it to `running`,
    /// records a new apply run of `plan` (for `plan.request.id`) and leases that run to
    /// `worker` until `now + ttl`, all in one transaction. `None`: the request is not
    /// approved any more or already has a run (another worker started it first).
    async fn start_request(
        &self,
        plan: &Plan,
        worker: &str,
        ttl: Duration,
        now: DateTime<Utc>,
    ) -> Result<Option<String>, StoreError>;

    /// Requests whose recorded state lags behind their newest apply run (a worker died
    /// between ending the run and updating the request): `(request id, run id, run status)`
    /// for requests `running` or `waiting` whose run ended or waits and holds no live lease.
    async fn unsettled_requests(
        &self,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<(String, String, RunStatus)>, StoreError>;

    /// Takes the lease on a run for `worker` until `now + ttl`, unless another worker holds a
    /// live lease on it. Taking a lease one already holds renews it. `false`: held by another.
    async fn lease(
        &self,
        worker: &str,
        run: &str,
        ttl: Duration,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError>;
    /// Extends a lease `worker` still holds to `now + ttl`. `false`: the lease was lost
    /// (released, or taken over by another worker after it lapsed).
    async fn renew(
        &self,
        worker: &str,
        run: &str,
        ttl: Duration,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError>;
    /// Who holds (or last held, if it lapsed and nobody took it since) the lease on a run.
    async fn lease_holder(&self, run: &str) -> Result<Option<String>, StoreError>;
    /// Gives up a lease `worker` holds (no-op when it holds none).
    async fn release(&self, worker: &str, run: &str) -> Result<(), StoreError>;
    /// Atomically leases up to `limit` runnable apply runs that no live lease holds: runs
    /// `running` (e.g. left by a dead worker) and runs `waiting` with a step due by `now`.
    /// Returns their ids; two workers claiming at once never get the same run.
    async fn claim_runs(
        &self,
        worker: &str,
        limit: u32,
        ttl: Duration,
        now: DateTime<Utc>,
    ) -> Result<Vec<String>, StoreError>;

    /// The key the audit entries appended from now on are MACed with (the project's audit
    /// key, from its secrets; never stored with the log).
    /// `Err`: it could not be read; appending then fails with why.
    fn set_audit_key(&self, key: Result<&[u8], &str>);
    /// Appends an entry to the keyed, hash-chained audit log. Appends are serialised, so several
    /// workers keep one chain.
    async fn append_audit(
        &self,
        kind: &str,
        subject: &str,
        detail: serde_json::Value,
        actor: Option<&str>,
    ) -> Result<AuditEntry, StoreError>;
    /// The audit log, oldest first; check it with [`verify_chain`].
    async fn audit_entries(&self) -> Result<Vec<AuditEntry>, StoreError>;
    /// The sequence number and hash of the newest entry appended, as the store's head row
    /// keeps them ([`GENESIS_HASH`] and 0 before the first): removing the newest entries
    /// leaves the chain whole but no longer ending at the head.
    async fn audit_head(&self) -> Result<(u64, String), StoreError>;

    /// Stores an evidence file of a step instance (e.g. a manual task's screenshot) with its
    /// SHA-256.
    async fn put_evidence(
        &self,
        run: &str,
        instance: &str,
        name: &str,
        bytes: &[u8],
    ) -> Result<Evidence, StoreError>;
    /// The content of a stored evidence file, by its `stored_at`.
    async fn evidence_content(&self, stored_at: &str) -> Result<Vec<u8>, StoreError>;

    /// Waits for queued journal writes and closes the connections.
    async fn close(&self);
}
