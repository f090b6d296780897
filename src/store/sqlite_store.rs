//! The [`Store`] operations of the SQLite store: each one job on the writer's or the
//! reader's thread (see [`super::sqlite`]).

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, params};

use super::sqlite::{
    FOREIGN_KEY, REQUEST_COLUMNS, RUN_COLUMNS, UNIQUE, lite, request_rows, run_rows, violates,
};
use super::util::*;
use super::{AuditEntry, DrpCallback, DrpOrigin, DrpSettled, SqliteStore, Store, StoreError};
use crate::journal::{
    Evidence, Plan, RequestRecord, RequestState, RunMode, RunRecord, RunStatus, StepOutcome,
    sha256_hex,
};
use crate::model::Request;

const INSERT_RUN: &str = "INSERT INTO runs (id, request_id, mode, status, created_at, \
                          updated_at, plan) VALUES (?1, ?2, ?3, ?4, ?5, ?5, ?6)";

/// A missing run for a statement that broke the foreign key to `runs`, else the error.
fn run_missing(run: &str) -> impl Fn(rusqlite::Error) -> StoreError + '_ {
    move |e| {
        if violates(&e, FOREIGN_KEY) {
            StoreError::RunNotFound(run.to_owned())
        } else {
            lite(e)
        }
    }
}

fn outcomes_of(conn: &Connection, run: &str) -> Result<Vec<StepOutcome>, StoreError> {
    let mut stmt = conn
        .prepare_cached("SELECT body FROM outcomes WHERE run_id = ?1 ORDER BY rowid")
        .map_err(lite)?;
    let bodies = stmt
        .query_map([run], |r| r.get::<_, String>(0))
        .map_err(lite)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(lite)?;
    bodies.iter().map(|b| parse_json("outcome", b)).collect()
}

fn status_of(conn: &Connection, run: &str) -> Result<String, StoreError> {
    conn.prepare_cached("SELECT status FROM runs WHERE id = ?1")
        .map_err(lite)?
        .query_row([run], |r| r.get(0))
        .optional()
        .map_err(lite)?
        .ok_or_else(|| StoreError::RunNotFound(run.to_owned()))
}

/// Sets a run's status; the number of runs changed (0: no such run).
fn update_status(conn: &Connection, run: &str, status: RunStatus) -> Result<usize, StoreError> {
    conn.prepare_cached("UPDATE runs SET status = ?1, updated_at = ?2 WHERE id = ?3")
        .map_err(lite)?
        .execute(params![status.as_str(), millis(Utc::now()), run])
        .map_err(lite)
}

fn request_by_id(conn: &Connection, id: &str) -> Result<RequestRecord, StoreError> {
    let sql = format!("SELECT {REQUEST_COLUMNS} FROM requests WHERE id = ?1");
    request_rows(conn, &sql, [id])?
        .pop()
        .ok_or_else(|| StoreError::RequestNotFound(id.to_owned()))
}

/// The DRP origin in a row's columns from `at`: agent, agent-request-id, status callback.
fn origin_at(r: &rusqlite::Row<'_>, at: usize) -> rusqlite::Result<DrpOrigin> {
    Ok(DrpOrigin {
        agent: r.get(at)?,
        agent_request_id: r.get(at + 1)?,
        status_callback: r.get(at + 2)?,
    })
}

#[async_trait]
impl Store for SqliteStore {
    async fn create_run(&self, plan: &Plan, mode: RunMode) -> Result<String, StoreError> {
        let id = new_run_id();
        let request = plan.request.id.clone();
        let body = to_json(plan)?;
        let run = id.clone();
        self.write_one(move |conn| {
            conn.prepare_cached(INSERT_RUN)
                .map_err(lite)?
                .execute(params![
                    run,
                    request,
                    mode_name(mode),
                    RunStatus::Running.as_str(),
                    millis(Utc::now()),
                    body
                ])
                .map_err(|e| {
                    if UNIQUE.iter().any(|c| violates(&e, *c)) {
                        StoreError::LiveRun(request.clone())
                    } else {
                        lite(e)
                    }
                })
        })
        .await?;
        Ok(id)
    }

    async fn unfinished_run(&self, request_id: &str) -> Result<Option<String>, StoreError> {
        let request_id = request_id.to_owned();
        self.read(move |conn| {
            conn.prepare_cached(
                "SELECT id FROM runs WHERE request_id = ?1 AND mode = 'apply' \
                 AND status NOT IN ('completed', 'abandoned') \
                 ORDER BY created_at DESC, id DESC LIMIT 1",
            )
            .map_err(lite)?
            .query_row([request_id], |r| r.get(0))
            .optional()
            .map_err(lite)
        })
        .await
    }

    async fn latest_run(&self, request_id: &str) -> Result<Option<RunRecord>, StoreError> {
        let request_id = request_id.to_owned();
        self.read(move |conn| {
            let sql = format!(
                "SELECT {RUN_COLUMNS} FROM runs WHERE request_id = ?1 AND mode = 'apply' \
                 ORDER BY created_at DESC, id DESC LIMIT 1"
            );
            Ok(run_rows(conn, &sql, [&request_id])?.pop())
        })
        .await
    }

    async fn replace_plan(&self, run: &str, plan: &Plan) -> Result<(), StoreError> {
        let run = run.to_owned();
        let body = to_json(plan)?;
        self.write_one(move |conn| {
            let changed = conn
                .prepare_cached("UPDATE runs SET plan = ?1, updated_at = ?2 WHERE id = ?3")
                .map_err(lite)?
                .execute(params![body, millis(Utc::now()), run])
                .map_err(lite)?;
            if changed == 0 {
                return Err(StoreError::RunNotFound(run));
            }
            Ok(())
        })
        .await
    }

    async fn run(&self, id: &str) -> Result<RunRecord, StoreError> {
        let id = id.to_owned();
        self.read(move |conn| {
            let exact = format!("SELECT {RUN_COLUMNS} FROM runs WHERE id = ?1");
            if let Some(run) = run_rows(conn, &exact, [&id])?.pop() {
                return Ok(run);
            }
            if id.len() < MIN_PREFIX {
                return Err(StoreError::RunNotFound(id));
            }
            let sql =
                format!("SELECT {RUN_COLUMNS} FROM runs WHERE id LIKE ?1 ESCAPE '\\' LIMIT 2");
            let mut found = run_rows(conn, &sql, [prefix_pattern(&id)])?;
            match found.len() {
                0 => Err(StoreError::RunNotFound(id)),
                1 => Ok(found.remove(0)),
                _ => Err(StoreError::Ambiguous(id)),
            }
        })
        .await
    }

    async fn runs(&self, limit: u32) -> Result<Vec<RunRecord>, StoreError> {
        self.read(move |conn| {
            let sql = format!(
                "SELECT {RUN_COLUMNS} FROM runs ORDER BY created_at DESC, id DESC LIMIT ?1"
            );
            run_rows(conn, &sql, [i64::from(limit)])
        })
        .await
    }

    async fn set_run_status(&self, run: &str, status: RunStatus) -> Result<(), StoreError> {
        let run = run.to_owned();
        self.write_one(move |conn| {
            if update_status(conn, &run, status)? == 0 {
                return Err(StoreError::RunNotFound(run));
            }
            Ok(())
        })
        .await
    }

    async fn begin_run(&self, run: &str) -> Result<Vec<StepOutcome>, StoreError> {
        // A run begins most often right after it was created, already `running`: then
        // reading its journal is enough, and the writer's commit is left to others.
        let id = run.to_owned();
        let running = self
            .read(move |conn| {
                if status_of(conn, &id)? == RunStatus::Running.as_str() {
                    outcomes_of(conn, &id).map(Some)
                } else {
                    Ok(None)
                }
            })
            .await?;
        if let Some(outcomes) = running {
            return Ok(outcomes);
        }
        let run = run.to_owned();
        self.write(move |conn| {
            if status_of(conn, &run)? != RunStatus::Running.as_str() {
                update_status(conn, &run, RunStatus::Running)?;
            }
            outcomes_of(conn, &run)
        })
        .await
    }

    async fn outcomes(&self, run: &str) -> Result<Vec<StepOutcome>, StoreError> {
        let run = run.to_owned();
        self.read(move |conn| outcomes_of(conn, &run)).await
    }

    async fn record(&self, run: &str, outcome: &StepOutcome) -> Result<(), StoreError> {
        let row = JournalRow::new(run, outcome)?;
        self.write_one(move |conn| {
            conn.prepare_cached(
                "INSERT INTO outcomes (run_id, instance, step, status, due_at, body) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6) \
                 ON CONFLICT (run_id, instance) DO UPDATE SET step = excluded.step, \
                 status = excluded.status, due_at = excluded.due_at, body = excluded.body",
            )
            .map_err(lite)?
            .execute(params![
                row.run_id,
                row.instance,
                row.step,
                row.status,
                row.due_at,
                row.body
            ])
            .map_err(run_missing(&row.run_id))?;
            Ok(())
        })
        .await
    }

    async fn put_request(&self, request: &Request, state: RequestState) -> Result<(), StoreError> {
        let id = request.id.clone();
        let body = to_json(request)?;
        let received = request.received.to_string();
        let deadline = request.deadline(false).to_string();
        self.write_one(move |conn| {
            conn.prepare_cached(
                "INSERT INTO requests (id, body, state, received, deadline, extended, \
                 created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, 0, ?6, ?6)",
            )
            .map_err(lite)?
            .execute(params![
                id,
                body,
                state.as_str(),
                received,
                deadline,
                millis(Utc::now())
            ])
            .map_err(|e| {
                if UNIQUE.iter().any(|c| violates(&e, *c)) {
                    StoreError::DuplicateRequest(id.clone())
                } else {
                    lite(e)
                }
            })?;
            Ok(())
        })
        .await
    }

    async fn import_requests(
        &self,
        batch: &[super::RequestImport],
    ) -> Result<Vec<bool>, StoreError> {
        let batch = batch.to_vec();
        let key = self.audit_key.get()?;
        self.write(move |conn| {
            let now = millis(Utc::now());
            let mut recorded = Vec::with_capacity(batch.len());
            for r in &batch {
                let added = conn
                    .prepare_cached(
                        "INSERT INTO requests (id, body, state, reason, received, deadline, \
                         extended, created_at, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, 0, ?7, ?7) \
                         ON CONFLICT (id) DO NOTHING",
                    )
                    .map_err(lite)?
                    .execute(params![
                        r.request.id,
                        to_json(&r.request)?,
                        r.state.as_str(),
                        r.reason,
                        r.request.received.to_string(),
                        r.request.deadline(false).to_string(),
                        now
                    ])
                    .map_err(lite)?;
                if added == 1 {
                    if let Some(o) = &r.drp {
                        conn.prepare_cached(&sqlite_numbered(INSERT_DRP))
                            .map_err(lite)?
                            .execute(params![
                                r.request.id,
                                o.agent,
                                o.agent_request_id,
                                o.status_callback,
                                now,
                                o.status_callback.as_ref().map(|_| now)
                            ])
                            .map_err(lite)?;
                    }
                    for a in &r.audit {
                        append_audit(
                            conn,
                            &a.kind,
                            &r.request.id,
                            a.detail.clone(),
                            a.actor.as_deref(),
                            key.as_deref(),
                        )?;
                    }
                }
                recorded.push(added == 1);
            }
            Ok(recorded)
        })
        .await
    }

    async fn request(&self, id: &str) -> Result<RequestRecord, StoreError> {
        let id = id.to_owned();
        self.read(move |conn| request_by_id(conn, &id)).await
    }

    async fn requests(&self) -> Result<Vec<RequestRecord>, StoreError> {
        self.read(|conn| {
            let sql = format!("SELECT {REQUEST_COLUMNS} FROM requests ORDER BY deadline, id");
            request_rows(conn, &sql, [])
        })
        .await
    }

    async fn replace_request(&self, request: &Request) -> Result<(), StoreError> {
        let id = request.id.clone();
        let body = to_json(request)?;
        let done = self
            .write_one(move |conn| {
                conn.prepare_cached("UPDATE requests SET body = ?1, updated_at = ?2 WHERE id = ?3")
                    .map_err(lite)?
                    .execute(params![body, millis(Utc::now()), id])
                    .map_err(lite)
            })
            .await?;
        if done == 0 {
            return Err(StoreError::RequestNotFound(request.id.clone()));
        }
        Ok(())
    }

    async fn requests_with_tag(&self, tag: &str) -> Result<Vec<RequestRecord>, StoreError> {
        let pattern = format!("%#{}\"%", tag_text(tag)?);
        self.read(move |conn| {
            let sql = format!(
                "SELECT {REQUEST_COLUMNS} FROM requests WHERE body LIKE ?1 ORDER BY deadline, id"
            );
            request_rows(conn, &sql, [pattern])
        })
        .await
    }

    async fn set_request_state(
        &self,
        id: &str,
        state: RequestState,
        reason: Option<String>,
    ) -> Result<(), StoreError> {
        reason_given(id, state, reason.as_deref())?;
        let id = id.to_owned();
        self.write_one(move |conn| set_state(conn, &id, state, reason))
            .await
    }

    async fn drp_origin(&self, request_id: &str) -> Result<Option<DrpOrigin>, StoreError> {
        let id = request_id.to_owned();
        self.read(move |conn| {
            conn.prepare_cached(
                "SELECT agent, agent_request_id, status_callback FROM drp_requests \
                 WHERE request_id = ?1",
            )
            .map_err(lite)?
            .query_row([id], |r| origin_at(r, 0))
            .optional()
            .map_err(lite)
        })
        .await
    }

    async fn claim_drp_callbacks(
        &self,
        now: DateTime<Utc>,
        hold: Duration,
        limit: u32,
    ) -> Result<Vec<DrpCallback>, StoreError> {
        self.write_one(move |conn| {
            let mut stmt = conn
                .prepare_cached(&sqlite_numbered(CLAIM_DRP))
                .map_err(lite)?;
            let rows = stmt
                .query_map(
                    params![
                        millis(now),
                        millis(now) - drp_recheck_millis(),
                        expiry(now, hold),
                        limit
                    ],
                    |r| {
                        Ok(DrpCallback {
                            request_id: r.get(0)?,
                            origin: origin_at(r, 1)?,
                            sent: r.get(4)?,
                            attempts: r.get(5)?,
                        })
                    },
                )
                .map_err(lite)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(lite)?;
            Ok(rows)
        })
        .await
    }

    async fn settle_drp_callback(
        &self,
        request_id: &str,
        settled: &DrpSettled,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let id = request_id.to_owned();
        let s = settled.clone();
        self.write_one(move |conn| {
            conn.prepare_cached(&sqlite_numbered(SETTLE_DRP))
                .map_err(lite)?
                .execute(params![
                    id,
                    s.sent,
                    millis(s.seen),
                    s.attempts,
                    s.next.map(millis),
                    millis(now)
                ])
                .map_err(lite)?;
            Ok(())
        })
        .await
    }

    async fn open_console_session(
        &self,
        id_hash: &str,
        token: &str,
        now: DateTime<Utc>,
        idle: Duration,
    ) -> Result<(), StoreError> {
        let (id, token) = (id_hash.to_owned(), token.to_owned());
        self.write(move |conn| {
            conn.prepare_cached(&sqlite_numbered(DROP_IDLE_SESSIONS))
                .map_err(lite)?
                .execute(params![lapsed_before(now, idle)])
                .map_err(lite)?;
            conn.prepare_cached(&sqlite_numbered(OPEN_SESSION))
                .map_err(lite)?
                .execute(params![id, token, millis(now)])
                .map_err(lite)?;
            Ok(())
        })
        .await
    }

    async fn use_console_session(
        &self,
        id_hash: &str,
        now: DateTime<Utc>,
        idle: Duration,
    ) -> Result<Option<String>, StoreError> {
        let id = id_hash.to_owned();
        self.write_one(move |conn| {
            conn.prepare_cached(&sqlite_numbered(USE_SESSION))
                .map_err(lite)?
                .query_row(params![id, millis(now), lapsed_before(now, idle)], |r| {
                    r.get(0)
                })
                .optional()
                .map_err(lite)
        })
        .await
    }

    async fn close_console_session(&self, id_hash: &str) -> Result<(), StoreError> {
        let id = id_hash.to_owned();
        self.write_one(move |conn| {
            conn.prepare_cached(&sqlite_numbered(CLOSE_SESSION))
                .map_err(lite)?
                .execute([id])
                .map_err(lite)?;
            Ok(())
        })
        .await
    }

    async fn extend_request(&self, id: &str, reason: &str) -> Result<RequestRecord, StoreError> {
        let id = id.to_owned();
        let reason = reason.to_owned();
        self.write(move |conn| {
            let record = request_by_id(conn, &id)?;
            if record.extended {
                return Err(StoreError::AlreadyExtended(id));
            }
            conn.execute(
                "UPDATE requests SET extended = 1, extension_reason = ?1, deadline = ?2, \
                 updated_at = ?3 WHERE id = ?4",
                params![
                    reason,
                    record.request.deadline(true).to_string(),
                    millis(Utc::now()),
                    id
                ],
            )
            .map_err(lite)?;
            request_by_id(conn, &id)
        })
        .await
    }

    async fn due_steps(&self, now: DateTime<Utc>) -> Result<Vec<(String, String)>, StoreError> {
        self.read(move |conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT run_id, instance FROM outcomes WHERE status = 'waiting' \
                     AND due_at <= ?1 ORDER BY due_at, run_id, instance",
                )
                .map_err(lite)?;
            stmt.query_map([millis(now)], |r| Ok((r.get(0)?, r.get(1)?)))
                .map_err(lite)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(lite)
        })
        .await
    }

    async fn due_requests(&self, now: DateTime<Utc>) -> Result<Vec<RequestRecord>, StoreError> {
        let today = now.date_naive().to_string();
        self.read(move |conn| {
            let sql = format!(
                "SELECT {REQUEST_COLUMNS} FROM requests q WHERE q.state = 'approved' \
                 AND q.received <= ?1 \
                 AND NOT EXISTS (SELECT 1 FROM runs r WHERE r.request_id = q.id AND r.mode = 'apply') \
                 ORDER BY q.received, q.id"
            );
            request_rows(conn, &sql, [today])
        })
        .await
    }

    async fn start_request(
        &self,
        plan: &Plan,
        worker: &str,
        ttl: Duration,
        now: DateTime<Utc>,
    ) -> Result<Option<String>, StoreError> {
        let request = plan.request.id.clone();
        let body = to_json(plan)?;
        let worker = worker.to_owned();
        self.write(move |conn| {
            let stamp = millis(Utc::now());
            let claimed = conn
                .prepare_cached(
                    "UPDATE requests SET state = 'running', reason = NULL, updated_at = ?1 \
                     WHERE id = ?2 AND state = 'approved' \
                     AND NOT EXISTS (SELECT 1 FROM runs r WHERE r.request_id = ?2 AND r.mode = 'apply')",
                )
                .map_err(lite)?
                .execute(params![stamp, request])
                .map_err(lite)?;
            if claimed != 1 {
                return Ok(None);
            }
            let id = new_run_id();
            conn.prepare_cached(INSERT_RUN)
                .map_err(lite)?
                .execute(params![
                    id,
                    request,
                    mode_name(RunMode::Apply),
                    RunStatus::Running.as_str(),
                    stamp,
                    body
                ])
                .map_err(lite)?;
            conn.prepare_cached(
                "INSERT INTO leases (run_id, worker, expires_at) VALUES (?1, ?2, ?3)",
            )
            .map_err(lite)?
            .execute(params![id, worker, expiry(now, ttl)])
            .map_err(lite)?;
            Ok(Some(id))
        })
        .await
    }

    async fn unsettled_requests(
        &self,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<(String, String, RunStatus)>, StoreError> {
        self.read(move |conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT q.id, r.id, r.status FROM requests q \
                     JOIN runs r ON r.request_id = q.id \
                     WHERE q.state IN ('running', 'waiting') AND r.mode = 'apply' \
                     AND r.status IN ('completed', 'failed', 'waiting', 'interrupted') \
                     AND NOT (q.state = 'waiting' AND r.status IN ('waiting', 'interrupted')) \
                     AND NOT EXISTS (SELECT 1 FROM runs n WHERE n.request_id = q.id \
                         AND n.mode = 'apply' AND (n.created_at > r.created_at \
                         OR (n.created_at = r.created_at AND n.id > r.id))) \
                     AND NOT EXISTS (SELECT 1 FROM leases l WHERE l.run_id = r.id \
                         AND l.expires_at > ?1) \
                     ORDER BY q.id LIMIT ?2",
                )
                .map_err(lite)?;
            let rows = stmt
                .query_map(params![millis(now), i64::from(limit)], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get::<_, String>(2)?))
                })
                .map_err(lite)?
                .collect::<Result<Vec<(String, String, String)>, _>>()
                .map_err(lite)?;
            rows.into_iter()
                .map(|(q, r, status)| Ok((q, r, parse_name::<RunStatus>("run status", &status)?)))
                .collect()
        })
        .await
    }

    async fn lease(
        &self,
        worker: &str,
        run: &str,
        ttl: Duration,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let (worker, run) = (worker.to_owned(), run.to_owned());
        self.write_one(move |conn| {
            let done = conn
                .prepare_cached(
                    "INSERT INTO leases (run_id, worker, expires_at) VALUES (?1, ?2, ?3) \
                     ON CONFLICT (run_id) DO UPDATE SET worker = excluded.worker, \
                     expires_at = excluded.expires_at \
                     WHERE leases.expires_at <= ?4 OR leases.worker = excluded.worker",
                )
                .map_err(lite)?
                .execute(params![run, worker, expiry(now, ttl), millis(now)])
                .map_err(run_missing(&run))?;
            Ok(done == 1)
        })
        .await
    }

    async fn renew(
        &self,
        worker: &str,
        run: &str,
        ttl: Duration,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let (worker, run) = (worker.to_owned(), run.to_owned());
        self.write_one(move |conn| {
            let done = conn
                .prepare_cached(
                    "UPDATE leases SET expires_at = ?1 WHERE run_id = ?2 AND worker = ?3",
                )
                .map_err(lite)?
                .execute(params![expiry(now, ttl), run, worker])
                .map_err(lite)?;
            Ok(done == 1)
        })
        .await
    }

    async fn lease_holder(&self, run: &str) -> Result<Option<String>, StoreError> {
        let run = run.to_owned();
        self.read(move |conn| {
            conn.prepare_cached("SELECT worker FROM leases WHERE run_id = ?1")
                .map_err(lite)?
                .query_row([run], |r| r.get(0))
                .optional()
                .map_err(lite)
        })
        .await
    }

    async fn release(&self, worker: &str, run: &str) -> Result<(), StoreError> {
        let (worker, run) = (worker.to_owned(), run.to_owned());
        self.write_one(move |conn| {
            conn.prepare_cached("DELETE FROM leases WHERE run_id = ?1 AND worker = ?2")
                .map_err(lite)?
                .execute(params![run, worker])
                .map_err(lite)?;
            Ok(())
        })
        .await
    }

    async fn claim_runs(
        &self,
        worker: &str,
        limit: u32,
        ttl: Duration,
        now: DateTime<Utc>,
    ) -> Result<Vec<String>, StoreError> {
        let worker = worker.to_owned();
        // Write jobs run inside `BEGIN IMMEDIATE`: the write lock is held before the
        // candidates are read, so another process cannot claim them before the leases are
        // written.
        self.write(move |conn| {
            let ids = conn
                .prepare_cached(
                    "SELECT r.id FROM runs r WHERE r.mode = 'apply' AND (r.status = 'running' \
                     OR (r.status = 'waiting' AND r.id IN (SELECT o.run_id FROM outcomes o \
                         WHERE o.status = 'waiting' AND o.due_at <= ?1))) \
                     AND NOT EXISTS (SELECT 1 FROM leases l WHERE l.run_id = r.id \
                         AND l.expires_at > ?1) \
                     ORDER BY r.updated_at, r.id LIMIT ?2",
                )
                .map_err(lite)?
                .query_map(params![millis(now), i64::from(limit)], |r| r.get(0))
                .map_err(lite)?
                .collect::<Result<Vec<String>, _>>()
                .map_err(lite)?;
            let expires = expiry(now, ttl);
            let mut upsert = conn
                .prepare_cached(
                    "INSERT INTO leases (run_id, worker, expires_at) VALUES (?1, ?2, ?3) \
                     ON CONFLICT (run_id) DO UPDATE SET worker = excluded.worker, \
                     expires_at = excluded.expires_at",
                )
                .map_err(lite)?;
            for id in &ids {
                upsert.execute(params![id, worker, expires]).map_err(lite)?;
            }
            Ok(ids)
        })
        .await
    }

    async fn append_audit(
        &self,
        kind: &str,
        subject: &str,
        detail: serde_json::Value,
        actor: Option<&str>,
    ) -> Result<AuditEntry, StoreError> {
        let (kind, subject, actor) = (
            kind.to_owned(),
            subject.to_owned(),
            actor.map(str::to_owned),
        );
        let key = self.audit_key.get()?;
        self.write(move |conn| {
            append_audit(
                conn,
                &kind,
                &subject,
                detail,
                actor.as_deref(),
                key.as_deref(),
            )
        })
        .await
    }

    fn set_audit_key(&self, key: Result<&[u8], &str>) {
        self.audit_key.set(key);
    }

    async fn audit_entries(&self) -> Result<Vec<AuditEntry>, StoreError> {
        self.read(|conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT seq, at, kind, subject, actor, detail, prev_hash, hash \
                     FROM audit_log ORDER BY seq",
                )
                .map_err(lite)?;
            let rows = stmt
                .query_map([], |r| {
                    Ok((
                        r.get(0)?,
                        r.get(1)?,
                        [r.get(2)?, r.get(3)?, r.get(5)?, r.get(6)?, r.get(7)?],
                        r.get(4)?,
                    ))
                })
                .map_err(lite)?
                .collect::<Result<Vec<(i64, i64, [String; 5], Option<String>)>, _>>()
                .map_err(lite)?;
            rows.into_iter()
                .map(|(seq, at, text, actor)| audit_row(seq, at, text, actor))
                .collect()
        })
        .await
    }

    async fn audit_head(&self) -> Result<(u64, String), StoreError> {
        self.read(|conn| {
            let (seq, hash): (i64, String) = conn
                .query_row("SELECT seq, hash FROM audit_head WHERE id = 1", [], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })
                .map_err(lite)?;
            let seq = u64::try_from(seq).map_err(|_| StoreError::Corrupt("audit head".into()))?;
            Ok((seq, hash))
        })
        .await
    }

    async fn put_evidence(
        &self,
        run: &str,
        instance: &str,
        name: &str,
        bytes: &[u8],
    ) -> Result<Evidence, StoreError> {
        let sha256 = sha256_hex(bytes);
        let (run, instance, file) = (run.to_owned(), instance.to_owned(), name.to_owned());
        let (digest, bytes) = (sha256.clone(), bytes.to_vec());
        let id: i64 = self
            .write(move |conn| {
                conn.query_row(
                    "INSERT INTO evidence (run_id, instance, name, sha256, content, created_at) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6) RETURNING id",
                    params![run, instance, file, digest, bytes, millis(Utc::now())],
                    |r| r.get(0),
                )
                .map_err(run_missing(&run))
            })
            .await?;
        Ok(Evidence {
            name: name.to_owned(),
            sha256,
            stored_at: evidence_location(id),
        })
    }

    async fn evidence_content(&self, stored_at: &str) -> Result<Vec<u8>, StoreError> {
        let id = evidence_id(stored_at)?;
        let stored_at = stored_at.to_owned();
        self.read(move |conn| {
            conn.query_row("SELECT content FROM evidence WHERE id = ?1", [id], |r| {
                r.get(0)
            })
            .optional()
            .map_err(lite)?
            .ok_or(StoreError::EvidenceNotFound(stored_at))
        })
        .await
    }

    async fn close(&self) {
        self.shutdown().await;
    }
}

/// Moves a request to `state` if the lifecycle allows it from where it stands.
fn set_state(
    conn: &Connection,
    id: &str,
    state: RequestState,
    reason: Option<String>,
) -> Result<(), StoreError> {
    let allowed = predecessor_list(state);
    let sql = format!(
        "UPDATE requests SET state = ?1, reason = ?2, updated_at = ?3 \
         WHERE id = ?4 AND state IN ({allowed})"
    );
    let done = conn
        .prepare_cached(&sql)
        .map_err(lite)?
        .execute(params![state.as_str(), reason, millis(Utc::now()), id])
        .map_err(lite)?;
    if done == 0 {
        let current: Option<String> = conn
            .prepare_cached("SELECT state FROM requests WHERE id = ?1")
            .map_err(lite)?
            .query_row([id], |r| r.get(0))
            .optional()
            .map_err(lite)?;
        return Err(transition_error(id, current, state));
    }
    Ok(())
}

/// Appends one entry after the chain's head (inside the caller's write transaction).
fn append_audit(
    conn: &Connection,
    kind: &str,
    subject: &str,
    detail: serde_json::Value,
    actor: Option<&str>,
    key: Option<&[u8]>,
) -> Result<AuditEntry, StoreError> {
    let (seq, hash): (i64, String) = conn
        .prepare_cached("SELECT seq, hash FROM audit_head WHERE id = 1")
        .map_err(lite)?
        .query_row([], |r| Ok((r.get(0)?, r.get(1)?)))
        .map_err(lite)?;
    let seq = u64::try_from(seq).map_err(|_| StoreError::Corrupt("audit head".into()))?;
    let entry = AuditEntry::chained((seq, &hash), Utc::now(), kind, subject, detail, actor, key);
    let entry_seq = i64::try_from(entry.seq).map_err(|_| StoreError::Corrupt("seq".into()))?;
    conn.prepare_cached(
        "INSERT INTO audit_log (seq, at, kind, subject, actor, detail, prev_hash, hash) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )
    .map_err(lite)?
    .execute(params![
        entry_seq,
        millis(entry.at),
        entry.kind,
        entry.subject,
        entry.actor,
        to_json(&entry.detail)?,
        entry.prev_hash,
        entry.hash
    ])
    .map_err(lite)?;
    conn.prepare_cached("UPDATE audit_head SET seq = ?1, hash = ?2 WHERE id = 1")
        .map_err(lite)?
        .execute(params![entry_seq, entry.hash])
        .map_err(lite)?;
    Ok(entry)
}
