//! A [`Store`] that keeps personal data sealed at rest: requests, plans and step outcomes
//! are sealed with the project's [`DataKey`] before the store beneath writes them (and
//! evidence files whole), and opened when read (see `journal::sealing` for which parts). Lookups by identity use the
//! keyed index beside each sealed identity, so the database answers them without holding
//! the value. Works the same over SQLite and PostgreSQL; rows written in clear (before a
//! key was configured) are still read.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::{AuditEntry, Store, StoreError};
use crate::journal::{
    DataKey, Evidence, Plan, RequestRecord, RequestState, RunMode, RunRecord, RunStatus,
    StepOutcome, open_outcome, open_plan, open_request, seal_outcome, seal_plan, seal_request,
    sha256_hex,
};
use crate::model::Request;

/// The store beneath, with personal data sealed under `key`.
pub struct SealedStore {
    inner: Arc<dyn Store>,
    key: DataKey,
}

impl SealedStore {
    /// Wraps `inner` so that what it stores of personal data is sealed under `key`.
    pub fn wrap(inner: Arc<dyn Store>, key: DataKey) -> Arc<dyn Store> {
        Arc::new(SealedStore { inner, key })
    }

    fn open_run(&self, mut run: RunRecord) -> Result<RunRecord, StoreError> {
        run.plan = open_plan(Some(&self.key), &run.plan)?;
        Ok(run)
    }

    fn open_request(&self, mut r: RequestRecord) -> Result<RequestRecord, StoreError> {
        r.request = open_request(Some(&self.key), &r.request)?;
        Ok(r)
    }

    fn open_requests(&self, rs: Vec<RequestRecord>) -> Result<Vec<RequestRecord>, StoreError> {
        rs.into_iter().map(|r| self.open_request(r)).collect()
    }

    fn open_outcomes(&self, os: Vec<StepOutcome>) -> Result<Vec<StepOutcome>, StoreError> {
        os.iter()
            .map(|o| open_outcome(Some(&self.key), o).map_err(StoreError::from))
            .collect()
    }
}

#[async_trait]
impl Store for SealedStore {
    async fn create_run(&self, plan: &Plan, mode: RunMode) -> Result<String, StoreError> {
        self.inner
            .create_run(&seal_plan(&self.key, plan), mode)
            .await
    }
    async fn unfinished_run(&self, request_id: &str) -> Result<Option<String>, StoreError> {
        self.inner.unfinished_run(request_id).await
    }
    async fn latest_run(&self, request_id: &str) -> Result<Option<RunRecord>, StoreError> {
        self.inner
            .latest_run(request_id)
            .await?
            .map(|r| self.open_run(r))
            .transpose()
    }
    async fn replace_plan(&self, run: &str, plan: &Plan) -> Result<(), StoreError> {
        self.inner
            .replace_plan(run, &seal_plan(&self.key, plan))
            .await
    }
    async fn run(&self, id: &str) -> Result<RunRecord, StoreError> {
        self.open_run(self.inner.run(id).await?)
    }
    async fn runs(&self, limit: u32) -> Result<Vec<RunRecord>, StoreError> {
        self.inner
            .runs(limit)
            .await?
            .into_iter()
            .map(|r| self.open_run(r))
            .collect()
    }
    async fn set_run_status(&self, run: &str, status: RunStatus) -> Result<(), StoreError> {
        self.inner.set_run_status(run, status).await
    }
    async fn begin_run(&self, run: &str) -> Result<Vec<StepOutcome>, StoreError> {
        self.open_outcomes(self.inner.begin_run(run).await?)
    }
    async fn outcomes(&self, run: &str) -> Result<Vec<StepOutcome>, StoreError> {
        self.open_outcomes(self.inner.outcomes(run).await?)
    }
    async fn record(&self, run: &str, outcome: &StepOutcome) -> Result<(), StoreError> {
        self.inner
            .record(run, &seal_outcome(&self.key, outcome))
            .await
    }

    async fn put_request(&self, request: &Request, state: RequestState) -> Result<(), StoreError> {
        self.inner
            .put_request(&seal_request(&self.key, request), state)
            .await
    }
    async fn request(&self, id: &str) -> Result<RequestRecord, StoreError> {
        self.open_request(self.inner.request(id).await?)
    }
    async fn requests(&self) -> Result<Vec<RequestRecord>, StoreError> {
        let all = self.inner.requests().await?;
        self.open_requests(all)
    }
    async fn set_request_state(
        &self,
        id: &str,
        state: RequestState,
        reason: Option<String>,
    ) -> Result<(), StoreError> {
        self.inner.set_request_state(id, state, reason).await
    }
    async fn import_requests(
        &self,
        batch: &[super::RequestImport],
    ) -> Result<Vec<bool>, StoreError> {
        let sealed: Vec<super::RequestImport> = batch
            .iter()
            .map(|r| super::RequestImport {
                request: seal_request(&self.key, &r.request),
                ..r.clone()
            })
            .collect();
        self.inner.import_requests(&sealed).await
    }
    async fn extend_request(&self, id: &str, reason: &str) -> Result<RequestRecord, StoreError> {
        self.open_request(self.inner.extend_request(id, reason).await?)
    }
    async fn drp_origin(&self, request_id: &str) -> Result<Option<super::DrpOrigin>, StoreError> {
        self.inner.drp_origin(request_id).await
    }
    async fn open_console_session(
        &self,
        id_hash: &str,
        token: &str,
        now: DateTime<Utc>,
        idle: Duration,
    ) -> Result<(), StoreError> {
        self.inner
            .open_console_session(id_hash, token, now, idle)
            .await
    }
    async fn use_console_session(
        &self,
        id_hash: &str,
        now: DateTime<Utc>,
        idle: Duration,
    ) -> Result<Option<String>, StoreError> {
        self.inner.use_console_session(id_hash, now, idle).await
    }
    async fn close_console_session(&self, id_hash: &str) -> Result<(), StoreError> {
        self.inner.close_console_session(id_hash).await
    }
    async fn claim_drp_callbacks(
        &self,
        now: DateTime<Utc>,
        hold: Duration,
        limit: u32,
    ) -> Result<Vec<super::DrpCallback>, StoreError> {
        self.inner.claim_drp_callbacks(now, hold, limit).await
    }
    async fn settle_drp_callback(
        &self,
        request_id: &str,
        settled: &super::DrpSettled,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.inner
            .settle_drp_callback(request_id, settled, now)
            .await
    }
    async fn replace_request(&self, request: &Request) -> Result<(), StoreError> {
        self.inner
            .replace_request(&seal_request(&self.key, request))
            .await
    }
    async fn requests_with_tag(&self, tag: &str) -> Result<Vec<RequestRecord>, StoreError> {
        let found = self.inner.requests_with_tag(tag).await?;
        self.open_requests(found)
    }
    async fn requests_for_subject(
        &self,
        name: &str,
        value: &str,
    ) -> Result<Vec<RequestRecord>, StoreError> {
        let found = self
            .requests_with_tag(&self.key.index_tag(name, value))
            .await?;
        // The index narrows the search; the opened value decides.
        Ok(found
            .into_iter()
            .filter(|r| {
                r.request
                    .subject
                    .get(name)
                    .is_some_and(|i| i.values().contains(&value))
            })
            .collect())
    }

    async fn due_steps(&self, now: DateTime<Utc>) -> Result<Vec<(String, String)>, StoreError> {
        self.inner.due_steps(now).await
    }
    async fn due_requests(&self, now: DateTime<Utc>) -> Result<Vec<RequestRecord>, StoreError> {
        let due = self.inner.due_requests(now).await?;
        self.open_requests(due)
    }
    async fn start_request(
        &self,
        plan: &Plan,
        worker: &str,
        ttl: Duration,
        now: DateTime<Utc>,
    ) -> Result<Option<String>, StoreError> {
        self.inner
            .start_request(&seal_plan(&self.key, plan), worker, ttl, now)
            .await
    }
    async fn unsettled_requests(
        &self,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<(String, String, RunStatus)>, StoreError> {
        self.inner.unsettled_requests(now, limit).await
    }
    async fn lease(
        &self,
        worker: &str,
        run: &str,
        ttl: Duration,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        self.inner.lease(worker, run, ttl, now).await
    }
    async fn renew(
        &self,
        worker: &str,
        run: &str,
        ttl: Duration,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        self.inner.renew(worker, run, ttl, now).await
    }
    async fn lease_holder(&self, run: &str) -> Result<Option<String>, StoreError> {
        self.inner.lease_holder(run).await
    }
    async fn release(&self, worker: &str, run: &str) -> Result<(), StoreError> {
        self.inner.release(worker, run).await
    }
    async fn claim_runs(
        &self,
        worker: &str,
        limit: u32,
        ttl: Duration,
        now: DateTime<Utc>,
    ) -> Result<Vec<String>, StoreError> {
        self.inner.claim_runs(worker, limit, ttl, now).await
    }

    fn set_audit_key(&self, key: Result<&[u8], &str>) {
        self.inner.set_audit_key(key)
    }
    async fn append_audit(
        &self,
        kind: &str,
        subject: &str,
        detail: serde_json::Value,
        actor: Option<&str>,
    ) -> Result<AuditEntry, StoreError> {
        self.inner.append_audit(kind, subject, detail, actor).await
    }
    async fn audit_entries(&self) -> Result<Vec<AuditEntry>, StoreError> {
        self.inner.audit_entries().await
    }
    async fn audit_head(&self) -> Result<(u64, String), StoreError> {
        self.inner.audit_head().await
    }

    async fn put_evidence(
        &self,
        run: &str,
        instance: &str,
        name: &str,
        bytes: &[u8],
    ) -> Result<Evidence, StoreError> {
        // Stored sealed; the digest recorded with the task is the file's own.
        let mut evidence = self
            .inner
            .put_evidence(run, instance, name, &self.key.seal_bytes(bytes))
            .await?;
        evidence.sha256 = sha256_hex(bytes);
        Ok(evidence)
    }
    async fn evidence_content(&self, stored_at: &str) -> Result<Vec<u8>, StoreError> {
        let stored = self.inner.evidence_content(stored_at).await?;
        Ok(self.key.open_bytes(&stored)?)
    }

    async fn close(&self) {
        self.inner.close().await
    }
}
