//! Group commit of the PostgreSQL store's state changes: one task takes the changes queued by
//! this process (runs created and moved, requests started and moved, leases renewed and
//! released, audit entries) and makes them in one transaction. Changes of one kind share one
//! statement (their values go in as arrays), so a batch costs a round trip per kind of change,
//! not per change, and one commit (one WAL flush) for every concurrent run.
//!
//! Each change still gets its own answer (a run not found, a state change the lifecycle
//! refuses). When a batch fails as a whole (e.g. a deadlock with another worker), it is rolled
//! back and each change is made again alone.
//!
//! Audit entries go last: the batch takes the log's head row once, chains every entry onto it,
//! inserts them in one statement and moves the head. The head row is held only for the
//! commit, so batches of several workers cannot wait on each other through it.

use std::collections::{BTreeMap, HashMap, HashSet};

use async_trait::async_trait;
use chrono::Utc;
use sqlx::pool::PoolConnection;
use sqlx::postgres::PgPool;
use sqlx::{Acquire, PgConnection, Postgres, Row};
use tokio::sync::{mpsc, oneshot};

use super::group_commit::{self, Msg, closed};
use super::util::{db, millis, to_json, transition_error};
use super::{AuditEntry, StoreError};
use crate::journal::{RequestState, RunStatus};

/// Most changes in one transaction.
const MAX_BATCH: usize = 256;

/// An audit entry to append, before it is chained.
pub(crate) struct AuditDraft {
    pub(crate) kind: String,
    pub(crate) subject: String,
    pub(crate) actor: Option<String>,
    pub(crate) detail: serde_json::Value,
    /// The audit key to MAC it with.
    pub(crate) key: Option<std::sync::Arc<[u8]>>,
}

/// One change to make.
pub(crate) enum Op {
    /// Insert a run (status `running`).
    CreateRun {
        id: String,
        request: String,
        mode: &'static str,
        plan: String,
    },
    /// Set a run's status.
    SetRunStatus { run: String, status: RunStatus },
    /// Mark a run running and read its journal.
    BeginRun { run: String },
    /// Move an approved request without a run to `running`, with a new run and its lease.
    StartRequest {
        request: String,
        run: String,
        plan: String,
        worker: String,
        expires: i64,
    },
    /// Move a request to a state its current one may become.
    SetRequestState {
        id: String,
        state: RequestState,
        reason: Option<String>,
    },
    /// Extend a lease the worker holds.
    Renew {
        run: String,
        worker: String,
        expires: i64,
    },
    /// Drop a lease the worker holds.
    Release { run: String, worker: String },
    /// Record a new request unless its id is recorded, with its audit entries (appended
    /// only when it was recorded): intake, atomic with its audit.
    Intake {
        id: String,
        body: String,
        state: &'static str,
        reason: Option<String>,
        received: String,
        deadline: String,
        audit: Vec<AuditDraft>,
    },
    /// Append to the audit log.
    Audit(AuditDraft),
}

impl Op {
    /// The kind of the change (kinds run in this order within a batch) and the row it is
    /// about: no two changes of a kind in one statement may touch the same row.
    fn key(&self) -> (u8, &str) {
        match self {
            Op::CreateRun { id, .. } => (0, id),
            Op::StartRequest { request, .. } => (1, request),
            Op::BeginRun { run } => (2, run),
            Op::SetRunStatus { run, .. } => (3, run),
            Op::SetRequestState { id, .. } => (4, id),
            Op::Renew { run, .. } => (5, run),
            Op::Release { run, .. } => (6, run),
            Op::Intake { id, .. } => (7, id),
            Op::Audit(_) => (8, ""),
        }
    }
}

/// What a change answers.
pub(crate) enum Done {
    /// Made.
    Unit,
    /// Whether a row matched (a lease renewed).
    Matched(bool),
    /// A run's journal as stored, in order.
    Journal(Vec<String>),
    /// The run started for a request, if it was still to start.
    Started(Option<String>),
    /// The audit entry as chained.
    Entry(AuditEntry),
}

fn unexpected() -> StoreError {
    StoreError::Database("a batched change got an answer of another kind".into())
}

impl Done {
    pub(crate) fn unit(self) -> Result<(), StoreError> {
        match self {
            Done::Unit => Ok(()),
            _ => Err(unexpected()),
        }
    }
    pub(crate) fn matched(self) -> Result<bool, StoreError> {
        match self {
            Done::Matched(m) => Ok(m),
            _ => Err(unexpected()),
        }
    }
    pub(crate) fn journal(self) -> Result<Vec<String>, StoreError> {
        match self {
            Done::Journal(j) => Ok(j),
            _ => Err(unexpected()),
        }
    }
    pub(crate) fn started(self) -> Result<Option<String>, StoreError> {
        match self {
            Done::Started(s) => Ok(s),
            _ => Err(unexpected()),
        }
    }
    pub(crate) fn entry(self) -> Result<AuditEntry, StoreError> {
        match self {
            Done::Entry(e) => Ok(e),
            _ => Err(unexpected()),
        }
    }
}

type Answer = Result<Done, StoreError>;

struct Job {
    op: Op,
    reply: oneshot::Sender<Answer>,
}

/// Handle to the batching task.
pub(crate) struct PgBatcher {
    tx: mpsc::Sender<Msg<Job>>,
}

impl PgBatcher {
    /// Starts the task on the current runtime.
    pub(crate) fn start(pool: PgPool) -> PgBatcher {
        PgBatcher {
            tx: group_commit::start(MAX_BATCH, Jobs { pool, conn: None }),
        }
    }

    /// Makes the change in the next batch transaction; its answer once committed.
    pub(crate) async fn submit(&self, op: Op) -> Answer {
        let (reply, answer) = oneshot::channel();
        self.tx
            .send(Msg::Item(Job { op, reply }))
            .await
            .map_err(|_| closed())?;
        answer.await.map_err(|_| closed())?
    }

    /// Commits what is queued, then stops the task.
    pub(crate) async fn close(&self) {
        group_commit::close(&self.tx).await;
    }
}

/// Commits jobs on a connection of the pool that it keeps while it works (so a batch does not
/// wait for the pool behind the store's readers).
struct Jobs {
    pool: PgPool,
    conn: Option<PoolConnection<Postgres>>,
}

impl Jobs {
    /// [`attempt`] on the kept connection; after a failure the connection goes back to the
    /// pool (which checks it) and the next batch takes another.
    async fn attempt(&mut self, ops: &[Op]) -> Result<Vec<Answer>, StoreError> {
        let conn = match &mut self.conn {
            Some(conn) => conn,
            None => self.conn.insert(self.pool.acquire().await.map_err(db)?),
        };
        let result = attempt(conn, ops).await;
        if result.is_err() {
            self.conn = None;
        }
        result
    }
}

#[async_trait]
impl group_commit::Commit<Job> for Jobs {
    async fn commit_batch(&mut self, batch: Vec<Job>) {
        let (ops, replies): (Vec<Op>, Vec<_>) = batch.into_iter().map(|j| (j.op, j.reply)).unzip();
        match self.attempt(&ops).await {
            Ok(answers) => {
                for (reply, answer) in replies.into_iter().zip(answers) {
                    let _ = reply.send(answer);
                }
            }
            Err(e) if ops.len() == 1 => {
                if let Some(reply) = replies.into_iter().next() {
                    let _ = reply.send(Err(e));
                }
            }
            Err(_) => {
                // The batch could not commit as a whole: each change is made again alone,
                // so every caller gets its own answer.
                for (op, reply) in ops.iter().zip(replies) {
                    let answer = match self.attempt(std::slice::from_ref(op)).await {
                        Ok(mut answers) => answers.pop().unwrap_or_else(|| Err(closed())),
                        Err(e) => Err(e),
                    };
                    let _ = reply.send(answer);
                }
            }
        }
    }
}

/// Makes the changes in one transaction and answers each. `Err`: nothing was committed.
/// A change refused on its own (a run not found, a state change not allowed) is answered with
/// its error and does not stop the others.
async fn attempt(conn: &mut PgConnection, ops: &[Op]) -> Result<Vec<Answer>, StoreError> {
    let mut tx = conn.begin().await.map_err(db)?;
    let mut answers: Vec<Option<Answer>> = ops.iter().map(|_| None).collect();
    // Rounds: changes of a kind touching the same row go in later rounds, in the order they
    // came.
    let mut pending: Vec<usize> = (0..ops.len())
        .filter(|&i| !matches!(ops[i], Op::Audit(_)))
        .collect();
    while !pending.is_empty() {
        let mut seen = HashSet::new();
        let (round, later): (Vec<usize>, Vec<usize>) = pending
            .into_iter()
            .partition(|&i| seen.insert(ops[i].key()));
        let mut by_kind: BTreeMap<u8, Vec<usize>> = BTreeMap::new();
        for i in round {
            by_kind.entry(ops[i].key().0).or_default().push(i);
        }
        for idx in by_kind.into_values() {
            let got = apply(&mut tx, ops, &idx).await?;
            for (i, answer) in idx.into_iter().zip(got) {
                answers[i] = Some(answer);
            }
        }
        pending = later;
    }
    // Every entry in the order of its change; a request's intake entries only if it was
    // recorded now. `owners`: the change an entry answers (intake entries answer nothing).
    let mut drafts: Vec<&AuditDraft> = Vec::new();
    let mut owners: Vec<Option<usize>> = Vec::new();
    for (i, o) in ops.iter().enumerate() {
        match o {
            Op::Audit(d) => {
                drafts.push(d);
                owners.push(Some(i));
            }
            Op::Intake { audit, .. } if matches!(answers[i], Some(Ok(Done::Matched(true)))) => {
                for d in audit {
                    drafts.push(d);
                    owners.push(None);
                }
            }
            _ => {}
        }
    }
    if !drafts.is_empty() {
        let entries = append_entries(&mut tx, &drafts).await?;
        for (owner, entry) in owners.into_iter().zip(entries) {
            if let Some(i) = owner {
                answers[i] = Some(Ok(Done::Entry(entry)));
            }
        }
    }
    let answers: Vec<Answer> = answers
        .into_iter()
        .map(|a| a.unwrap_or_else(|| Err(unexpected())))
        .collect();
    if answers.iter().any(Result::is_ok) {
        tx.commit().await.map_err(db)?;
    }
    Ok(answers)
}

/// What `field` reads of each change at `idx` (all of one kind).
fn pick<'a, T>(ops: &'a [Op], idx: &[usize], field: impl Fn(&'a Op) -> Option<T>) -> Vec<T> {
    idx.iter().filter_map(|&i| field(&ops[i])).collect()
}

/// Runs a statement that returns the key of each row it changed; those keys.
async fn keys(
    conn: &mut PgConnection,
    query: sqlx::query::QueryScalar<'_, Postgres, String, sqlx::postgres::PgArguments>,
) -> Result<HashSet<String>, StoreError> {
    Ok(query
        .fetch_all(conn)
        .await
        .map_err(db)?
        .into_iter()
        .collect())
}

/// One column of picked rows, to bind as an array.
fn col<R, T>(rows: &[R], f: impl Fn(&R) -> T) -> Vec<T> {
    rows.iter().map(f).collect()
}

/// Makes the changes at `idx` (all of one kind, each on a row of its own) in one statement;
/// their answers in the same order.
async fn apply(
    conn: &mut PgConnection,
    ops: &[Op],
    idx: &[usize],
) -> Result<Vec<Answer>, StoreError> {
    let now = millis(Utc::now());
    match &ops[idx[0]] {
        Op::CreateRun { .. } => create_runs(conn, ops, idx, now).await,
        Op::SetRunStatus { .. } => set_run_statuses(conn, ops, idx, now).await,
        Op::BeginRun { .. } => begin_runs(conn, ops, idx, now).await,
        Op::StartRequest { .. } => start_requests(conn, ops, idx, now).await,
        Op::SetRequestState { .. } => set_request_states(conn, ops, idx, now).await,
        Op::Renew { .. } => renew_leases(conn, ops, idx).await,
        Op::Release { .. } => release_leases(conn, ops, idx).await,
        Op::Intake { .. } => intake_requests(conn, ops, idx, now).await,
        Op::Audit(_) => Err(unexpected()),
    }
}

/// Records new runs; an apply run of a request with a live one is refused.
async fn create_runs(
    conn: &mut PgConnection,
    ops: &[Op],
    idx: &[usize],
    now: i64,
) -> Result<Vec<Answer>, StoreError> {
    let rows = pick(ops, idx, |o| match o {
        Op::CreateRun {
            id,
            request,
            mode,
            plan,
        } => Some((id.as_str(), request.as_str(), *mode, plan.as_str())),
        _ => None,
    });
    // A second apply run of a request whose run has not ended meets the index
    // `runs_one_live` and is not made (also when another process made the first).
    let made = keys(
            conn,
            sqlx::query_scalar(
                "INSERT INTO runs (id, request_id, mode, status, created_at, updated_at, plan) \
                 SELECT id, req, mode, 'running', $5, $5, plan::json \
                 FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[]) AS t (id, req, mode, plan) \
                 ON CONFLICT DO NOTHING RETURNING id",
            )
            .bind(col(&rows, |r| r.0))
            .bind(col(&rows, |r| r.1))
            .bind(col(&rows, |r| r.2))
            .bind(col(&rows, |r| r.3))
            .bind(now),
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| {
            if made.contains(r.0) {
                Ok(Done::Unit)
            } else {
                Err(StoreError::LiveRun(r.1.to_owned()))
            }
        })
        .collect())
}

/// Moves runs to their new status.
async fn set_run_statuses(
    conn: &mut PgConnection,
    ops: &[Op],
    idx: &[usize],
    now: i64,
) -> Result<Vec<Answer>, StoreError> {
    let rows = pick(ops, idx, |o| match o {
        Op::SetRunStatus { run, status } => Some((run.as_str(), status.as_str())),
        _ => None,
    });
    let runs = col(&rows, |r| r.0);
    let found = keys(
        conn,
        sqlx::query_scalar(
            "UPDATE runs r SET status = t.status, updated_at = $3 \
                 FROM UNNEST($1::text[], $2::text[]) AS t (id, status) WHERE r.id = t.id \
                 RETURNING r.id",
        )
        .bind(&runs)
        .bind(col(&rows, |r| r.1))
        .bind(now),
    )
    .await?;
    Ok(runs
        .iter()
        .map(|r| match found.contains(*r) {
            true => Ok(Done::Unit),
            false => Err(StoreError::RunNotFound((*r).to_owned())),
        })
        .collect())
}

/// Marks runs running and reads their journals.
async fn begin_runs(
    conn: &mut PgConnection,
    ops: &[Op],
    idx: &[usize],
    now: i64,
) -> Result<Vec<Answer>, StoreError> {
    let runs = pick(ops, idx, |o| match o {
        Op::BeginRun { run } => Some(run.as_str()),
        _ => None,
    });
    let rows = sqlx::query(
        "WITH moved AS (UPDATE runs r SET status = 'running', updated_at = \
             CASE WHEN r.status = 'running' THEN r.updated_at ELSE $2 END \
             FROM UNNEST($1::text[]) AS t (id) WHERE r.id = t.id RETURNING r.id) \
             SELECT m.id, ARRAY(SELECT o.body::text FROM outcomes o WHERE o.run_id = m.id \
             ORDER BY o.seq) FROM moved m",
    )
    .bind(&runs)
    .bind(now)
    .fetch_all(conn)
    .await
    .map_err(db)?;
    let mut journals = HashMap::new();
    for row in rows {
        let id: String = row.try_get(0).map_err(db)?;
        let bodies: Vec<String> = row.try_get(1).map_err(db)?;
        journals.insert(id, bodies);
    }
    Ok(runs
        .iter()
        .map(|r| {
            journals
                .remove(*r)
                .map(Done::Journal)
                .ok_or_else(|| StoreError::RunNotFound((*r).to_owned()))
        })
        .collect())
}

/// Starts approved requests without a run: each its run and lease.
/// Records new requests (one statement); each answers whether it was recorded now (`false`:
/// its id was already recorded).
async fn intake_requests(
    conn: &mut PgConnection,
    ops: &[Op],
    idx: &[usize],
    now: i64,
) -> Result<Vec<Answer>, StoreError> {
    let rows = pick(ops, idx, |o| match o {
        Op::Intake {
            id,
            body,
            state,
            reason,
            received,
            deadline,
            ..
        } => Some((
            id.as_str(),
            body.as_str(),
            *state,
            reason.as_deref(),
            received.as_str(),
            deadline.as_str(),
        )),
        _ => None,
    });
    let added = keys(
        conn,
        sqlx::query_scalar(
            "INSERT INTO requests (id, body, state, reason, received, deadline, extended, \
             created_at, updated_at) SELECT i, b::json, s, r, rc, d, FALSE, $7, $7 FROM \
             UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[]) \
             AS t (i, b, s, r, rc, d) ON CONFLICT (id) DO NOTHING RETURNING id",
        )
        .bind(col(&rows, |r| r.0))
        .bind(col(&rows, |r| r.1))
        .bind(col(&rows, |r| r.2))
        .bind(col(&rows, |r| r.3))
        .bind(col(&rows, |r| r.4))
        .bind(col(&rows, |r| r.5))
        .bind(now),
    )
    .await?;
    Ok(rows
        .iter()
        .map(|r| Ok(Done::Matched(added.contains(r.0))))
        .collect())
}

async fn start_requests(
    conn: &mut PgConnection,
    ops: &[Op],
    idx: &[usize],
    now: i64,
) -> Result<Vec<Answer>, StoreError> {
    let rows = pick(ops, idx, |o| match o {
        Op::StartRequest {
            request,
            run,
            plan,
            worker,
            expires,
        } => Some((
            request.as_str(),
            run.as_str(),
            plan.as_str(),
            worker.as_str(),
            *expires,
        )),
        _ => None,
    });
    let runs = col(&rows, |r| r.1);
    // A request moves to `running` only if it is still approved and has no run; its
    // run and lease are made from the rows that moved, so a request another worker
    // was first to start yields nothing.
    let started = keys(
        conn,
        sqlx::query_scalar(
            "WITH input AS (SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], \
                 $4::text[], $5::bigint[]) AS t (request, run, plan, worker, expires)), \
                 claimed AS (UPDATE requests q SET state = 'running', reason = NULL, \
                 updated_at = $6 FROM input i WHERE q.id = i.request AND q.state = 'approved' \
                 AND NOT EXISTS (SELECT 1 FROM runs r WHERE r.request_id = q.id AND r.mode = 'apply') RETURNING q.id), \
                 made AS (INSERT INTO runs (id, request_id, mode, status, created_at, \
                 updated_at, plan) SELECT i.run, i.request, 'apply', 'running', $6, $6, \
                 i.plan::json FROM input i JOIN claimed c ON c.id = i.request RETURNING id) \
                 INSERT INTO leases (run_id, worker, expires_at) \
                 SELECT i.run, i.worker, i.expires FROM input i JOIN made m ON m.id = i.run \
                 RETURNING run_id",
        )
        .bind(col(&rows, |r| r.0))
        .bind(&runs)
        .bind(col(&rows, |r| r.2))
        .bind(col(&rows, |r| r.3))
        .bind(col(&rows, |r| r.4))
        .bind(now),
    )
    .await?;
    Ok(runs
        .iter()
        .map(|r| Ok(Done::Started(started.contains(*r).then(|| (*r).to_owned()))))
        .collect())
}

/// Moves requests to states their current ones may become.
async fn set_request_states(
    conn: &mut PgConnection,
    ops: &[Op],
    idx: &[usize],
    now: i64,
) -> Result<Vec<Answer>, StoreError> {
    let rows = pick(ops, idx, |o| match o {
        Op::SetRequestState { id, state, reason } => Some((id.as_str(), *state, reason.as_deref())),
        _ => None,
    });
    let ids = col(&rows, |r| r.0);
    // The states each may move from, as `a,b,c`.
    let allowed = col(&rows, |r| {
        RequestState::predecessors(r.1)
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join(",")
    });
    let moved = keys(
        &mut *conn,
        sqlx::query_scalar(
            "UPDATE requests q SET state = t.state, reason = t.reason, updated_at = $5 \
                 FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[]) \
                 AS t (id, state, reason, allowed) \
                 WHERE q.id = t.id AND q.state = ANY (string_to_array(t.allowed, ',')) \
                 RETURNING q.id",
        )
        .bind(&ids)
        .bind(col(&rows, |r| r.1.as_str()))
        .bind(col(&rows, |r| r.2))
        .bind(&allowed)
        .bind(now),
    )
    .await?;
    let refused: Vec<&str> = ids
        .iter()
        .copied()
        .filter(|i| !moved.contains(*i))
        .collect();
    let mut current: HashMap<String, String> = HashMap::new();
    if !refused.is_empty() {
        let rows = sqlx::query("SELECT id, state FROM requests WHERE id = ANY ($1)")
            .bind(&refused)
            .fetch_all(&mut *conn)
            .await
            .map_err(db)?;
        for row in rows {
            current.insert(row.try_get(0).map_err(db)?, row.try_get(1).map_err(db)?);
        }
    }
    Ok(idx
        .iter()
        .zip(&ids)
        .map(|(&i, id)| match &ops[i] {
            Op::SetRequestState { state, .. } if !moved.contains(*id) => {
                Err(transition_error(id, current.get(*id).cloned(), *state))
            }
            _ => Ok(Done::Unit),
        })
        .collect())
}

/// Extends leases their workers hold.
async fn renew_leases(
    conn: &mut PgConnection,
    ops: &[Op],
    idx: &[usize],
) -> Result<Vec<Answer>, StoreError> {
    let rows = pick(ops, idx, |o| match o {
        Op::Renew {
            run,
            worker,
            expires,
        } => Some((run.as_str(), worker.as_str(), *expires)),
        _ => None,
    });
    let runs = col(&rows, |r| r.0);
    let renewed = keys(
        conn,
        sqlx::query_scalar(
            "UPDATE leases l SET expires_at = t.expires \
                 FROM UNNEST($1::text[], $2::text[], $3::bigint[]) AS t (run, worker, expires) \
                 WHERE l.run_id = t.run AND l.worker = t.worker RETURNING l.run_id",
        )
        .bind(&runs)
        .bind(col(&rows, |r| r.1))
        .bind(col(&rows, |r| r.2)),
    )
    .await?;
    Ok(runs
        .iter()
        .map(|r| Ok(Done::Matched(renewed.contains(*r))))
        .collect())
}

/// Releases leases.
async fn release_leases(
    conn: &mut PgConnection,
    ops: &[Op],
    idx: &[usize],
) -> Result<Vec<Answer>, StoreError> {
    let made = || idx.iter().map(|_| Ok(Done::Unit)).collect::<Vec<_>>();
    let rows = pick(ops, idx, |o| match o {
        Op::Release { run, worker } => Some((run.as_str(), worker.as_str())),
        _ => None,
    });
    sqlx::query(
        "DELETE FROM leases l USING UNNEST($1::text[], $2::text[]) AS t (run, worker) \
             WHERE l.run_id = t.run AND l.worker = t.worker",
    )
    .bind(col(&rows, |r| r.0))
    .bind(col(&rows, |r| r.1))
    .execute(conn)
    .await
    .map_err(db)?;
    Ok(made())
}

/// Chains the drafts onto the audit log's head (held until the commit) and inserts them in one
/// statement.
pub(super) async fn append_entries(
    conn: &mut PgConnection,
    drafts: &[&AuditDraft],
) -> Result<Vec<AuditEntry>, StoreError> {
    let head = sqlx::query("SELECT seq, hash FROM audit_head WHERE id = 1 FOR UPDATE")
        .fetch_one(&mut *conn)
        .await
        .map_err(db)?;
    let seq: i64 = head.try_get(0).map_err(db)?;
    let hash: String = head.try_get(1).map_err(db)?;
    let mut prev = (
        u64::try_from(seq).map_err(|_| StoreError::Corrupt("audit head".into()))?,
        hash,
    );
    let now = Utc::now();
    let mut entries = Vec::with_capacity(drafts.len());
    for d in drafts {
        let entry = AuditEntry::chained(
            (prev.0, &prev.1),
            now,
            &d.kind,
            &d.subject,
            d.detail.clone(),
            d.actor.as_deref(),
            d.key.as_deref(),
        );
        prev = (entry.seq, entry.hash.clone());
        entries.push(entry);
    }
    let seqs = entries
        .iter()
        .map(|e| i64::try_from(e.seq).map_err(|_| StoreError::Corrupt("audit seq".into())))
        .collect::<Result<Vec<i64>, _>>()?;
    let details = entries
        .iter()
        .map(|e| to_json(&e.detail))
        .collect::<Result<Vec<String>, _>>()?;
    let ats: Vec<i64> = entries.iter().map(|e| millis(e.at)).collect();
    let text = |f: fn(&AuditEntry) -> &str| entries.iter().map(f).collect::<Vec<&str>>();
    let actors: Vec<Option<&str>> = entries.iter().map(|e| e.actor.as_deref()).collect();
    sqlx::query(
        "INSERT INTO audit_log (seq, at, kind, subject, actor, detail, prev_hash, hash) \
         SELECT s, a, k, sub, act, d::json, p, h FROM UNNEST($1::bigint[], $2::bigint[], \
         $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[]) \
         AS t (s, a, k, sub, act, d, p, h)",
    )
    .bind(&seqs)
    .bind(&ats)
    .bind(text(|e| &e.kind))
    .bind(text(|e| &e.subject))
    .bind(&actors)
    .bind(&details)
    .bind(text(|e| &e.prev_hash))
    .bind(text(|e| &e.hash))
    .execute(&mut *conn)
    .await
    .map_err(db)?;
    let last = seqs.last().copied().unwrap_or(seq);
    sqlx::query("UPDATE audit_head SET seq = $1, hash = $2 WHERE id = 1")
        .bind(last)
        .bind(&prev.1)
        .execute(&mut *conn)
        .await
        .map_err(db)?;
    Ok(entries)
}
