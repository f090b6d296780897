//! The [`Store`] operations of the PostgreSQL store.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::Row;

use super::pg_batch::{AuditDraft, Op};
use super::postgres::{REQUEST_COLUMNS, RUN_COLUMNS, request_row, run_row};
use super::util::*;
use super::{AuditEntry, DrpCallback, DrpOrigin, DrpSettled, PostgresStore, Store, StoreError};
use crate::journal::{
    Evidence, Plan, RequestRecord, RequestState, RunMode, RunRecord, RunStatus, StepOutcome,
    sha256_hex,
};
use crate::model::Request;

/// The DRP origin in a row's columns from `at`: agent, agent-request-id, status callback.
fn origin_at(r: &sqlx::postgres::PgRow, at: usize) -> Result<DrpOrigin, StoreError> {
    Ok(DrpOrigin {
        agent: r.try_get(at).map_err(db)?,
        agent_request_id: r.try_get(at + 1).map_err(db)?,
        status_callback: r.try_get(at + 2).map_err(db)?,
    })
}

#[async_trait]
impl Store for PostgresStore {
    async fn create_run(&self, plan: &Plan, mode: RunMode) -> Result<String, StoreError> {
        let id = super::util::new_run_id();
        self.batch
            .submit(Op::CreateRun {
                id: id.clone(),
                request: plan.request.id.clone(),
                mode: mode_name(mode),
                plan: to_json(plan)?,
            })
            .await?
            .unit()?;
        Ok(id)
    }

    async fn unfinished_run(&self, request_id: &str) -> Result<Option<String>, StoreError> {
        sqlx::query_scalar(
            "SELECT id FROM runs WHERE request_id = $1 AND mode = 'apply' \
             AND status NOT IN ('completed', 'abandoned') \
             ORDER BY created_at DESC, id DESC LIMIT 1",
        )
        .bind(request_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(db)
    }

    async fn latest_run(&self, request_id: &str) -> Result<Option<RunRecord>, StoreError> {
        let sql = format!(
            "SELECT {RUN_COLUMNS} FROM runs WHERE request_id = $1 AND mode = 'apply' \
             ORDER BY created_at DESC, id DESC LIMIT 1"
        );
        Ok(self.run_rows(sql, request_id).await?.pop())
    }

    async fn replace_plan(&self, run: &str, plan: &Plan) -> Result<(), StoreError> {
        let done = sqlx::query("UPDATE runs SET plan = $1::json, updated_at = $2 WHERE id = $3")
            .bind(to_json(plan)?)
            .bind(millis(Utc::now()))
            .bind(run)
            .execute(&self.pool)
            .await
            .map_err(db)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::RunNotFound(run.to_owned()));
        }
        Ok(())
    }

    async fn run(&self, id: &str) -> Result<RunRecord, StoreError> {
        let exact = format!("SELECT {RUN_COLUMNS} FROM runs WHERE id = $1");
        if let Some(run) = self.run_rows(exact, id).await?.pop() {
            return Ok(run);
        }
        if id.len() < MIN_PREFIX {
            return Err(StoreError::RunNotFound(id.to_owned()));
        }
        let sql = format!("SELECT {RUN_COLUMNS} FROM runs WHERE id LIKE $1 ESCAPE '\\' LIMIT 2");
        let mut found = self.run_rows(sql, &prefix_pattern(id)).await?;
        match found.len() {
            0 => Err(StoreError::RunNotFound(id.to_owned())),
            1 => Ok(found.remove(0)),
            _ => Err(StoreError::Ambiguous(id.to_owned())),
        }
    }

    async fn runs(&self, limit: u32) -> Result<Vec<RunRecord>, StoreError> {
        let sql =
            format!("SELECT {RUN_COLUMNS} FROM runs ORDER BY created_at DESC, id DESC LIMIT $1");
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(db)?;
        rows.into_iter()
            .map(|r| run_row(&r)?.into_record())
            .collect()
    }

    async fn set_run_status(&self, run: &str, status: RunStatus) -> Result<(), StoreError> {
        let run = run.to_owned();
        self.batch
            .submit(Op::SetRunStatus { run, status })
            .await?
            .unit()
    }

    async fn begin_run(&self, run: &str) -> Result<Vec<StepOutcome>, StoreError> {
        let run = run.to_owned();
        let bodies = self.batch.submit(Op::BeginRun { run }).await?.journal()?;
        bodies.iter().map(|b| parse_json("outcome", b)).collect()
    }

    async fn outcomes(&self, run: &str) -> Result<Vec<StepOutcome>, StoreError> {
        let bodies: Vec<String> =
            sqlx::query_scalar("SELECT body::text FROM outcomes WHERE run_id = $1 ORDER BY seq")
                .bind(run)
                .fetch_all(&self.pool)
                .await
                .map_err(db)?;
        bodies.iter().map(|b| parse_json("outcome", b)).collect()
    }

    async fn record(&self, run: &str, outcome: &StepOutcome) -> Result<(), StoreError> {
        self.journal.write(JournalRow::new(run, outcome)?).await
    }

    async fn put_request(&self, request: &Request, state: RequestState) -> Result<(), StoreError> {
        let now = millis(Utc::now());
        sqlx::query(
            "INSERT INTO requests (id, body, state, received, deadline, extended, created_at, \
             updated_at) VALUES ($1, $2::json, $3, $4, $5, FALSE, $6, $6)",
        )
        .bind(&request.id)
        .bind(to_json(request)?)
        .bind(state.as_str())
        .bind(request.received.to_string())
        .bind(request.deadline(false).to_string())
        .bind(now)
        .execute(&self.pool)
        .await
        .map_err(|e| {
            if is_unique_violation(&e) {
                StoreError::DuplicateRequest(request.id.clone())
            } else {
                db(e)
            }
        })?;
        Ok(())
    }

    async fn import_requests(
        &self,
        batch: &[super::RequestImport],
    ) -> Result<Vec<bool>, StoreError> {
        let key = self.audit_key.get()?;
        // One request (intake through the API or `request new`): group-committed with the
        // other workers' changes, still in one transaction with its audit entries.
        if let [one] = batch
            && one.drp.is_none()
        {
            let id = one.request.id.clone();
            let audit = one
                .audit
                .iter()
                .map(|a| AuditDraft {
                    kind: a.kind.clone(),
                    subject: id.clone(),
                    actor: a.actor.clone(),
                    detail: a.detail.clone(),
                    key: key.clone(),
                })
                .collect();
            let op = Op::Intake {
                body: to_json(&one.request)?,
                state: one.state.as_str(),
                reason: one.reason.clone(),
                received: one.request.received.to_string(),
                deadline: one.request.deadline(false).to_string(),
                audit,
                id,
            };
            return Ok(vec![self.batch.submit(op).await?.matched()?]);
        }
        let mut tx = self.write_tx().await?;
        let ids: Vec<&str> = batch.iter().map(|r| r.request.id.as_str()).collect();
        let bodies = batch
            .iter()
            .map(|r| to_json(&r.request))
            .collect::<Result<Vec<String>, _>>()?;
        let states: Vec<&str> = batch.iter().map(|r| r.state.as_str()).collect();
        let reasons: Vec<Option<&str>> = batch.iter().map(|r| r.reason.as_deref()).collect();
        let received: Vec<String> = batch
            .iter()
            .map(|r| r.request.received.to_string())
            .collect();
        let deadlines: Vec<String> = batch
            .iter()
            .map(|r| r.request.deadline(false).to_string())
            .collect();
        let rows = sqlx::query(
            "INSERT INTO requests (id, body, state, reason, received, deadline, extended, \
             created_at, updated_at) SELECT i, b::json, s, r, rc, d, FALSE, $7, $7 FROM \
             UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[]) \
             AS t (i, b, s, r, rc, d) ON CONFLICT (id) DO NOTHING RETURNING id",
        )
        .bind(&ids)
        .bind(&bodies)
        .bind(&states)
        .bind(&reasons)
        .bind(&received)
        .bind(&deadlines)
        .bind(millis(Utc::now()))
        .fetch_all(&mut *tx)
        .await
        .map_err(db)?;
        let added = rows
            .iter()
            .map(|r| r.try_get::<String, _>(0).map_err(db))
            .collect::<Result<std::collections::HashSet<String>, _>>()?;
        let drafts: Vec<AuditDraft> = batch
            .iter()
            .filter(|r| added.contains(&r.request.id))
            .flat_map(|r| {
                r.audit.iter().map(|a| AuditDraft {
                    kind: a.kind.clone(),
                    subject: r.request.id.clone(),
                    actor: a.actor.clone(),
                    detail: a.detail.clone(),
                    key: key.clone(),
                })
            })
            .collect();
        if !drafts.is_empty() {
            let refs: Vec<&AuditDraft> = drafts.iter().collect();
            super::pg_batch::append_entries(&mut tx, &refs).await?;
        }
        let now = millis(Utc::now());
        for r in batch.iter().filter(|r| added.contains(&r.request.id)) {
            if let Some(o) = &r.drp {
                sqlx::query(INSERT_DRP)
                    .bind(&r.request.id)
                    .bind(&o.agent)
                    .bind(&o.agent_request_id)
                    .bind(&o.status_callback)
                    .bind(now)
                    .bind(o.status_callback.as_ref().map(|_| now))
                    .execute(&mut *tx)
                    .await
                    .map_err(db)?;
            }
        }
        tx.commit().await.map_err(db)?;
        Ok(batch
            .iter()
            .map(|r| added.contains(&r.request.id))
            .collect())
    }

    async fn request(&self, id: &str) -> Result<RequestRecord, StoreError> {
        let sql = format!("SELECT {REQUEST_COLUMNS} FROM requests WHERE id = $1");
        self.request_rows(sql, Some(id))
            .await?
            .pop()
            .ok_or_else(|| StoreError::RequestNotFound(id.to_owned()))
    }

    async fn requests(&self) -> Result<Vec<RequestRecord>, StoreError> {
        let sql = format!("SELECT {REQUEST_COLUMNS} FROM requests ORDER BY deadline, id");
        self.request_rows(sql, None).await
    }

    async fn replace_request(&self, request: &Request) -> Result<(), StoreError> {
        let done =
            sqlx::query("UPDATE requests SET body = $1::json, updated_at = $2 WHERE id = $3")
                .bind(to_json(request)?)
                .bind(millis(Utc::now()))
                .bind(&request.id)
                .execute(&self.pool)
                .await
                .map_err(db)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::RequestNotFound(request.id.clone()));
        }
        Ok(())
    }

    async fn requests_with_tag(&self, tag: &str) -> Result<Vec<RequestRecord>, StoreError> {
        let pattern = format!("%#{}\"%", tag_text(tag)?);
        let sql = format!(
            "SELECT {REQUEST_COLUMNS} FROM requests WHERE body::text LIKE $1 ORDER BY deadline, id"
        );
        self.request_rows(sql, Some(&pattern)).await
    }

    async fn set_request_state(
        &self,
        id: &str,
        state: RequestState,
        reason: Option<String>,
    ) -> Result<(), StoreError> {
        reason_given(id, state, reason.as_deref())?;
        self.batch
            .submit(Op::SetRequestState {
                id: id.to_owned(),
                state,
                reason,
            })
            .await?
            .unit()
    }

    async fn drp_origin(&self, request_id: &str) -> Result<Option<DrpOrigin>, StoreError> {
        let row = sqlx::query(
            "SELECT agent, agent_request_id, status_callback FROM drp_requests \
             WHERE request_id = $1",
        )
        .bind(request_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(db)?;
        row.map(|r| origin_at(&r, 0)).transpose()
    }

    async fn claim_drp_callbacks(
        &self,
        now: DateTime<Utc>,
        hold: Duration,
        limit: u32,
    ) -> Result<Vec<DrpCallback>, StoreError> {
        let rows = sqlx::query(CLAIM_DRP)
            .bind(millis(now))
            .bind(millis(now) - drp_recheck_millis())
            .bind(expiry(now, hold))
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await
            .map_err(db)?;
        rows.iter()
            .map(|r| {
                let attempts: i64 = r.try_get(5).map_err(db)?;
                Ok(DrpCallback {
                    request_id: r.try_get(0).map_err(db)?,
                    origin: origin_at(r, 1)?,
                    sent: r.try_get(4).map_err(db)?,
                    attempts: u32::try_from(attempts).unwrap_or(u32::MAX),
                })
            })
            .collect()
    }

    async fn settle_drp_callback(
        &self,
        request_id: &str,
        settled: &DrpSettled,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        sqlx::query(SETTLE_DRP)
            .bind(request_id)
            .bind(&settled.sent)
            .bind(millis(settled.seen))
            .bind(i64::from(settled.attempts))
            .bind(settled.next.map(millis))
            .bind(millis(now))
            .execute(&self.pool)
            .await
            .map_err(db)?;
        Ok(())
    }

    async fn open_console_session(
        &self,
        id_hash: &str,
        token: &str,
        now: DateTime<Utc>,
        idle: Duration,
    ) -> Result<(), StoreError> {
        sqlx::query(DROP_IDLE_SESSIONS)
            .bind(lapsed_before(now, idle))
            .execute(&self.pool)
            .await
            .map_err(db)?;
        sqlx::query(OPEN_SESSION)
            .bind(id_hash)
            .bind(token)
            .bind(millis(now))
            .execute(&self.pool)
            .await
            .map_err(db)?;
        Ok(())
    }

    async fn use_console_session(
        &self,
        id_hash: &str,
        now: DateTime<Utc>,
        idle: Duration,
    ) -> Result<Option<String>, StoreError> {
        sqlx::query_scalar(USE_SESSION)
            .bind(id_hash)
            .bind(millis(now))
            .bind(lapsed_before(now, idle))
            .fetch_optional(&self.pool)
            .await
            .map_err(db)
    }

    async fn close_console_session(&self, id_hash: &str) -> Result<(), StoreError> {
        sqlx::query(CLOSE_SESSION)
            .bind(id_hash)
            .execute(&self.pool)
            .await
            .map_err(db)?;
        Ok(())
    }

    async fn extend_request(&self, id: &str, reason: &str) -> Result<RequestRecord, StoreError> {
        let mut tx = self.write_tx().await?;
        let sql = format!("SELECT {REQUEST_COLUMNS} FROM requests WHERE id = $1 FOR UPDATE");
        let row = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(db)?
            .ok_or_else(|| StoreError::RequestNotFound(id.to_owned()))?;
        let record = request_row(&row)?.into_record()?;
        if record.extended {
            return Err(StoreError::AlreadyExtended(id.to_owned()));
        }
        sqlx::query(
            "UPDATE requests SET extended = TRUE, extension_reason = $1, deadline = $2, \
             updated_at = $3 WHERE id = $4",
        )
        .bind(reason)
        .bind(record.request.deadline(true).to_string())
        .bind(millis(Utc::now()))
        .bind(id)
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        self.request(id).await
    }

    async fn due_steps(&self, now: DateTime<Utc>) -> Result<Vec<(String, String)>, StoreError> {
        let rows = sqlx::query(
            "SELECT run_id, instance FROM outcomes WHERE status = 'waiting' AND due_at <= $1 \
             ORDER BY due_at, run_id, instance",
        )
        .bind(millis(now))
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        rows.iter()
            .map(|r| Ok((r.try_get(0).map_err(db)?, r.try_get(1).map_err(db)?)))
            .collect()
    }

    async fn due_requests(&self, now: DateTime<Utc>) -> Result<Vec<RequestRecord>, StoreError> {
        let sql = format!(
            "SELECT {REQUEST_COLUMNS} FROM requests q WHERE q.state = 'approved' \
             AND q.received <= $1 AND NOT EXISTS (SELECT 1 FROM runs r WHERE r.request_id = q.id AND r.mode = 'apply') \
             ORDER BY q.received, q.id"
        );
        let today = now.date_naive().to_string();
        self.request_rows(sql, Some(&today)).await
    }

    async fn start_request(
        &self,
        plan: &Plan,
        worker: &str,
        ttl: Duration,
        now: DateTime<Utc>,
    ) -> Result<Option<String>, StoreError> {
        self.batch
            .submit(Op::StartRequest {
                request: plan.request.id.clone(),
                run: super::util::new_run_id(),
                plan: to_json(plan)?,
                worker: worker.to_owned(),
                expires: expiry(now, ttl),
            })
            .await?
            .started()
    }

    async fn unsettled_requests(
        &self,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<(String, String, RunStatus)>, StoreError> {
        let rows = sqlx::query(
            "SELECT q.id, r.id, r.status FROM requests q JOIN runs r ON r.request_id = q.id \
             WHERE q.state IN ('running', 'waiting') AND r.mode = 'apply' \
             AND r.status IN ('completed', 'failed', 'waiting', 'interrupted') \
             AND NOT (q.state = 'waiting' AND r.status IN ('waiting', 'interrupted')) \
             AND NOT EXISTS (SELECT 1 FROM runs n WHERE n.request_id = q.id AND n.mode = 'apply' \
                 AND (n.created_at > r.created_at OR (n.created_at = r.created_at AND n.id > r.id))) \
             AND NOT EXISTS (SELECT 1 FROM leases l WHERE l.run_id = r.id AND l.expires_at > $1) \
             ORDER BY q.id LIMIT $2",
        )
        .bind(millis(now))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        rows.iter()
            .map(|r| {
                let status: String = r.try_get(2).map_err(db)?;
                Ok((
                    r.try_get(0).map_err(db)?,
                    r.try_get(1).map_err(db)?,
                    parse_name::<RunStatus>("run status", &status)?,
                ))
            })
            .collect()
    }

    async fn lease(
        &self,
        worker: &str,
        run: &str,
        ttl: Duration,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "INSERT INTO leases (run_id, worker, expires_at) VALUES ($1, $2, $3) \
             ON CONFLICT (run_id) DO UPDATE SET worker = excluded.worker, \
             expires_at = excluded.expires_at \
             WHERE leases.expires_at <= $4 OR leases.worker = excluded.worker",
        )
        .bind(run)
        .bind(worker)
        .bind(expiry(now, ttl))
        .bind(millis(now))
        .execute(&self.pool)
        .await
        .map_err(|e| {
            if is_foreign_key_violation(&e) {
                StoreError::RunNotFound(run.to_owned())
            } else {
                db(e)
            }
        })?;
        Ok(done.rows_affected() == 1)
    }

    async fn renew(
        &self,
        worker: &str,
        run: &str,
        ttl: Duration,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        self.batch
            .submit(Op::Renew {
                run: run.to_owned(),
                worker: worker.to_owned(),
                expires: expiry(now, ttl),
            })
            .await?
            .matched()
    }

    async fn lease_holder(&self, run: &str) -> Result<Option<String>, StoreError> {
        sqlx::query_scalar("SELECT worker FROM leases WHERE run_id = $1")
            .bind(run)
            .fetch_optional(&self.pool)
            .await
            .map_err(db)
    }

    async fn release(&self, worker: &str, run: &str) -> Result<(), StoreError> {
        self.batch
            .submit(Op::Release {
                run: run.to_owned(),
                worker: worker.to_owned(),
            })
            .await?
            .unit()
    }

    async fn claim_runs(
        &self,
        worker: &str,
        limit: u32,
        ttl: Duration,
        now: DateTime<Utc>,
    ) -> Result<Vec<String>, StoreError> {
        // Candidates are locked with SKIP LOCKED, so a concurrent claim passes over them;
        // the conflict clause re-checks the lease against the latest committed row, so a
        // lease taken since this statement's snapshot is never overwritten.
        let ids: Vec<String> = sqlx::query_scalar(
            "WITH candidates AS ( \
                 SELECT r.id, r.updated_at FROM runs r WHERE r.mode = 'apply' \
                 AND (r.status = 'running' OR (r.status = 'waiting' AND r.id IN \
                     (SELECT o.run_id FROM outcomes o WHERE o.status = 'waiting' AND o.due_at <= $1))) \
                 AND NOT EXISTS (SELECT 1 FROM leases l WHERE l.run_id = r.id AND l.expires_at > $1) \
                 ORDER BY r.updated_at, r.id LIMIT $2 \
                 FOR NO KEY UPDATE OF r SKIP LOCKED) \
             INSERT INTO leases (run_id, worker, expires_at) \
             SELECT id, $3, $4 FROM candidates ORDER BY updated_at, id \
             ON CONFLICT (run_id) DO UPDATE SET worker = EXCLUDED.worker, \
                 expires_at = EXCLUDED.expires_at WHERE leases.expires_at <= $1 \
             RETURNING run_id",
        )
        .bind(millis(now))
        .bind(i64::from(limit))
        .bind(worker)
        .bind(expiry(now, ttl))
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        Ok(ids)
    }

    async fn append_audit(
        &self,
        kind: &str,
        subject: &str,
        detail: serde_json::Value,
        actor: Option<&str>,
    ) -> Result<AuditEntry, StoreError> {
        self.batch
            .submit(Op::Audit(AuditDraft {
                kind: kind.to_owned(),
                subject: subject.to_owned(),
                actor: actor.map(str::to_owned),
                detail,
                key: self.audit_key.get()?,
            }))
            .await?
            .entry()
    }

    fn set_audit_key(&self, key: Result<&[u8], &str>) {
        self.audit_key.set(key);
    }

    async fn audit_entries(&self) -> Result<Vec<AuditEntry>, StoreError> {
        let rows = sqlx::query(
            "SELECT seq, at, kind, subject, actor, detail::text, prev_hash, hash FROM audit_log \
             ORDER BY seq",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(db)?;
        rows.iter()
            .map(|r| {
                audit_row(
                    r.try_get(0).map_err(db)?,
                    r.try_get(1).map_err(db)?,
                    [
                        r.try_get(2).map_err(db)?,
                        r.try_get(3).map_err(db)?,
                        r.try_get(5).map_err(db)?,
                        r.try_get(6).map_err(db)?,
                        r.try_get(7).map_err(db)?,
                    ],
                    r.try_get(4).map_err(db)?,
                )
            })
            .collect()
    }

    async fn audit_head(&self) -> Result<(u64, String), StoreError> {
        let row = sqlx::query("SELECT seq, hash FROM audit_head WHERE id = 1")
            .fetch_one(&self.pool)
            .await
            .map_err(db)?;
        let seq: i64 = row.try_get(0).map_err(db)?;
        let seq = u64::try_from(seq).map_err(|_| StoreError::Corrupt("audit head".into()))?;
        Ok((seq, row.try_get(1).map_err(db)?))
    }

    async fn put_evidence(
        &self,
        run: &str,
        instance: &str,
        name: &str,
        bytes: &[u8],
    ) -> Result<Evidence, StoreError> {
        let sha256 = sha256_hex(bytes);
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO evidence (run_id, instance, name, sha256, content, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
        )
        .bind(run)
        .bind(instance)
        .bind(name)
        .bind(&sha256)
        .bind(bytes)
        .bind(millis(Utc::now()))
        .fetch_one(&self.pool)
        .await
        .map_err(|e| {
            if is_foreign_key_violation(&e) {
                StoreError::RunNotFound(run.to_owned())
            } else {
                db(e)
            }
        })?;
        Ok(Evidence {
            name: name.to_owned(),
            sha256,
            stored_at: evidence_location(id),
        })
    }

    async fn evidence_content(&self, stored_at: &str) -> Result<Vec<u8>, StoreError> {
        let id = evidence_id(stored_at)?;
        sqlx::query_scalar("SELECT content FROM evidence WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(db)?
            .ok_or_else(|| StoreError::EvidenceNotFound(stored_at.to_owned()))
    }

    async fn close(&self) {
        self.journal.close().await;
        self.batch.close().await;
        self.pool.close().await;
    }
}
