//! Reads and mutations of one instance through its connector (or a recording).

use std::sync::Arc;

use serde_json::Value;

use super::executor::{EngineError, RunCtx, lock};
use super::select::Matcher;
use super::{Engine, capture, spool};
use crate::connectors::{
    ChangePreview, Connector, ConnectorError, Operation, RecordSink, Response,
};
use crate::journal::{PlannedStep, RunMode, StepOutcome, StepStatus, Verification};

impl Engine {
    fn connector(&self, step: &PlannedStep) -> Result<&Arc<dyn Connector>, ConnectorError> {
        let name = step.connector.as_deref().unwrap_or("");
        self.connectors.get(name).ok_or_else(|| {
            ConnectorError::Config(format!(
                "connector `{name}` is not configured for this request's tenant"
            ))
        })
    }

    fn recorded(
        &self,
        step: &PlannedStep,
        absent_on: &[u16],
    ) -> Option<Result<Response, ConnectorError>> {
        let recordings = self.recordings.as_ref()?;
        Some(match recordings.get(&step.id) {
            None => Err(ConnectorError::Refused(format!(
                "the test records no response for step `{}`",
                step.id
            ))),
            Some(r) => {
                let status = r.status.unwrap_or(200);
                if absent_on.contains(&status) {
                    Ok(Response {
                        absent: true,
                        attempts: 1,
                        ..r.clone()
                    })
                } else if status >= 400 {
                    Err(ConnectorError::Status {
                        status,
                        excerpt: r.body.to_string(),
                        attempts: 1,
                        reach: crate::connectors::Reach::NotProcessed,
                    })
                } else {
                    Ok(Response {
                        attempts: 1,
                        ..r.clone()
                    })
                }
            }
        })
    }

    pub(super) async fn call_read(
        &self,
        step: &PlannedStep,
        op: &Operation,
        sink: Option<&mut (dyn RecordSink + '_)>,
    ) -> Result<Response, ConnectorError> {
        if let Some(r) = self.recorded(step, &step.absent_on) {
            return r;
        }
        let _slot = self.call_slot().await;
        self.connector(step)?.read(op, sink).await
    }

    /// A slot of the engine-wide limit on calls in flight (`--parallelism`). Only calls
    /// hold one: a step waiting for its journal write does not, so a slow disk does not
    /// leave the services idle while commits are grouped.
    async fn call_slot(&self) -> Option<tokio::sync::SemaphorePermit<'_>> {
        self.parallelism.acquire().await.ok()
    }

    async fn call_mutate(
        &self,
        step: &PlannedStep,
        op: &Operation,
    ) -> Result<Response, ConnectorError> {
        if let Some(r) = self.recorded(step, &step.absent_on) {
            return r;
        }
        let _slot = self.call_slot().await;
        self.connector(step)?.mutate(op).await
    }

    pub(super) async fn connector_preview(
        &self,
        step: &PlannedStep,
        op: &Operation,
    ) -> Result<Option<ChangePreview>, ConnectorError> {
        if self.recordings.is_some() {
            return Ok(None);
        }
        let _slot = self.call_slot().await;
        self.connector(step)?.preview(op).await
    }

    /// A read: captures, counts, spooled records; polling when the step polls. With a
    /// `select`, records are matched before anything is captured or spooled.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn read(
        &self,
        ctx: &RunCtx<'_>,
        step: &PlannedStep,
        instance: &str,
        mut o: StepOutcome,
        op: Operation,
        matcher: Option<&Matcher>,
    ) -> Result<StepOutcome, EngineError> {
        let spool_rel = match (&step.collect, ctx.mode) {
            (Some(c), RunMode::Apply) => {
                let index = instance
                    .rsplit_once('#')
                    .and_then(|(_, i)| i.parse().ok())
                    .unwrap_or(0);
                Some(spool::spool_path(&step.service, c, index))
            }
            _ => None,
        };
        let result = match &spool_rel {
            // Matched records are written after the read: the others never reach the disk.
            Some(rel) if matcher.is_none() => {
                let path = self.run_dir(&ctx.run_id).join(rel);
                let spool_err = |source| EngineError::Spool {
                    path: rel.display().to_string(),
                    source,
                };
                let mut sink = spool::NdjsonSink::create(&path).map_err(spool_err)?;
                let r = self.call_read(step, &op, Some(&mut sink)).await;
                sink.finish().map_err(spool_err)?;
                r
            }
            _ => self.call_read(step, &op, None).await,
        };
        let result = result.map(|mut resp| {
            if let Some(m) = matcher
                && !resp.absent
            {
                m.apply(&mut resp.body);
            }
            resp
        });
        let now = self.clock.now();
        match result {
            Err(e) => {
                o.status = StepStatus::Failed;
                o.attempts = e.attempts();
                if let ConnectorError::Status { status, .. } = &e {
                    o.http_status = Some(*status);
                }
                o.message = Some(e.to_string());
            }
            Ok(resp) => {
                o.attempts = resp.attempts;
                o.http_status = resp.status;
                o.captures = capture::take_captures(&step.capture, &resp);
                if resp.absent {
                    o.status = StepStatus::Absent;
                    o.message = Some("nothing held here".to_owned());
                } else {
                    o.found = if resp.records > 0 {
                        resp.records
                    } else {
                        capture::count_records(&resp.body)
                    };
                    if let Some(rel) = &spool_rel
                        && resp.records == 0
                        && !resp.body.is_null()
                    {
                        // The connector returned the records instead of streaming them.
                        let path = self.run_dir(&ctx.run_id).join(rel);
                        write_body(&path, &resp.body).map_err(|source| EngineError::Spool {
                            path: path.display().to_string(),
                            source,
                        })?;
                    }
                    o.collected = spool_rel.as_ref().map(|p| p.display().to_string());
                    if let Some(poll) = &step.poll {
                        let started = o.started_at.unwrap_or(now);
                        if let Some(reason) = poll
                            .fail_when
                            .iter()
                            .find_map(|c| capture::check(c, &resp.body).ok().map(|_| c))
                        {
                            o.status = StepStatus::Failed;
                            o.message = Some(format!(
                                "the operation reports failure (`{}`)",
                                reason.pointer
                            ));
                        } else if let Err(seen) = capture::check(&poll.until, &resp.body) {
                            if now - started > poll.timeout.chrono() {
                                o.status = StepStatus::Failed;
                                o.message =
                                    Some(format!("gave up polling after {}: {seen}", poll.timeout));
                            } else {
                                let every = poll.every.get();
                                let retry_after = resp
                                    .headers
                                    .get("retry-after")
                                    .and_then(|v| v.parse::<u64>().ok())
                                    .map(std::time::Duration::from_secs)
                                    .unwrap_or_default();
                                o.status = StepStatus::Waiting;
                                o.due_at = Some(
                                    now + chrono::Duration::from_std(every.max(retry_after))
                                        .unwrap_or_default(),
                                );
                                o.message = Some(format!("polling: {seen}"));
                            }
                        }
                    }
                    if super::step::body_needed(ctx, &step.key) {
                        lock(&ctx.bodies).insert(
                            step.key.clone(),
                            (resp.body, resp.headers.get("etag").cloned()),
                        );
                    }
                }
            }
        }
        o.finished_at = Some(self.clock.now());
        self.journal(ctx, step, o).await
    }

    /// A mutation: previewed in a dry run; in apply, journaled as started (durably) before
    /// it is sent when a resume depends on that ([`Engine::start_matters`]), then verified.
    #[allow(clippy::too_many_arguments)]
    pub(super) async fn mutation(
        &self,
        ctx: &RunCtx<'_>,
        step: &PlannedStep,
        instance: &str,
        mut o: StepOutcome,
        prior: Option<StepOutcome>,
        mut op: Operation,
        item: Option<Value>,
        tctx: Value,
    ) -> Result<StepOutcome, EngineError> {
        if ctx.mode == RunMode::DryRun {
            o.status = StepStatus::Previewed;
            o.change = Some(
                self.preview_change(ctx, step, instance, Some(&op), item.as_ref(), &tctx)
                    .await,
            );
            o.finished_at = Some(self.clock.now());
            return self.journal(ctx, step, o).await;
        }
        // A deferred verification that is now due.
        if let Some(p) = &prior
            && p.sent
        {
            return self.verify(ctx, step, p.clone(), &op, &tctx).await;
        }
        if let Some(filter) = ctx.filter {
            // A saved plan: only what it previewed is sent (its targets were compared with
            // a fresh dry run before the apply began), with the previewed ETag as If-Match.
            let Some(expected) = filter.changes.get(instance) else {
                return self.fail(ctx, step, o, "this change is not in the saved plan (the data changed since it was made); make a new plan".to_owned()).await;
            };
            if let (Operation::Http(h), Some(etag)) = (&mut op, &expected.etag)
                && h.if_match.is_none()
            {
                h.if_match = Some(etag.clone());
            }
        }
        if let Some(p) = &prior
            && p.status == StepStatus::Running
        {
            // It may have been sent before an interruption: check before sending again, so
            // a resumed run sends each mutation once. Without a way to check, only an
            // idempotent mutation is sent again.
            match self.verification(step, &op, &tctx).await {
                Some(Ok(v)) if v.passed => {
                    o.verification = Some(v);
                    o.sent = true;
                    o.message = Some("found done after an interruption; not sent again".to_owned());
                    o.finished_at = Some(self.clock.now());
                    return self.journal(ctx, step, o).await;
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => {
                    return self
                        .fail(
                            ctx,
                            step,
                            o,
                            format!("was interrupted and cannot be verified: {e}"),
                        )
                        .await;
                }
                None if step.idempotent => {}
                None => {
                    // The journal keeps `running`: the truth is unknown until a person
                    // records it, so no later resume sends it again either.
                    let mut kept = p.clone();
                    kept.message = Some("was interrupted after it started and may have been sent; it is not idempotent and declares no `verify`, so it is not sent again: check the service, then record the result with `dsrctl task done`".to_owned());
                    let mut shown = self.journal(ctx, step, kept).await?;
                    shown.status = StepStatus::Failed;
                    return Ok(shown);
                }
            }
        }
        if self.start_matters(step, &op) {
            let mut started = o.clone();
            started.status = StepStatus::Running;
            self.journal(ctx, step, started).await?;
        }
        match self.call_mutate(step, &op).await {
            Err(e) => {
                o.attempts = e.attempts();
                if let ConnectorError::Status { status, .. } = &e {
                    o.http_status = Some(*status);
                }
                self.fail(ctx, step, o, e.to_string()).await
            }
            Ok(resp) => {
                o.attempts = resp.attempts;
                o.http_status = resp.status;
                // One HTTP mutation changes one resource unless the service says more.
                o.affected = match &op {
                    Operation::Http(_) if !resp.absent => Some(resp.affected.unwrap_or(1)),
                    _ => resp.affected,
                };
                o.captures = capture::take_captures(&step.capture, &resp);
                o.sent = true;
                if resp.absent {
                    o.status = StepStatus::Absent;
                    o.message = Some("already gone".to_owned());
                    o.finished_at = Some(self.clock.now());
                    return self.journal(ctx, step, o).await;
                }
                self.verify(ctx, step, o, &op, &tctx).await
            }
        }
    }

    /// Whether journaling that a mutation started changes what a resume does with it: a
    /// started mutation is verified before it is sent again, or not sent again when it is not
    /// idempotent. An idempotent mutation that nothing can verify is sent again either way
    /// (`absent_on` then reports it done), so its start is not journaled: one commit less.
    fn start_matters(&self, step: &PlannedStep, op: &Operation) -> bool {
        !step.idempotent
            || step.verify.is_some()
            || (self.recordings.is_none() && self.connector(step).is_ok_and(|c| c.verifies(op)))
    }

    /// Verifies a sent mutation, now or (with `verify.after`) when due.
    async fn verify(
        &self,
        ctx: &RunCtx<'_>,
        step: &PlannedStep,
        mut o: StepOutcome,
        op: &Operation,
        tctx: &Value,
    ) -> Result<StepOutcome, EngineError> {
        let now = self.clock.now();
        if let Some(after) = step.verify.as_ref().and_then(|v| v.after.as_ref()) {
            let due = o.due_at.unwrap_or_else(|| now + after.chrono());
            if now < due {
                o.status = StepStatus::Waiting;
                o.due_at = Some(due);
                o.message = Some(format!("sent; verification due after {after}"));
                return self.journal(ctx, step, o).await;
            }
        }
        match self.verification(step, op, tctx).await {
            None => o.status = StepStatus::Succeeded,
            Some(Ok(v)) => {
                o.status = if v.passed {
                    StepStatus::Succeeded
                } else {
                    StepStatus::Failed
                };
                if !v.passed {
                    o.message = Some(format!("verification failed: {}", v.detail));
                }
                o.verification = Some(v);
            }
            Some(Err(e)) => {
                o.status = StepStatus::Failed;
                o.message = Some(format!("verification could not run: {e}"));
            }
        }
        o.due_at = None;
        o.finished_at = Some(self.clock.now());
        self.journal(ctx, step, o).await
    }

    /// Runs the step's verification read, or the connector's own. `None`: nothing to verify.
    async fn verification(
        &self,
        step: &PlannedStep,
        op: &Operation,
        tctx: &Value,
    ) -> Option<Result<Verification, ConnectorError>> {
        let Some(v) = &step.verify else {
            if self.recordings.is_some() {
                return None;
            }
            let conn = self.connector(step).ok()?;
            let _slot = self.call_slot().await;
            return conn.verify(op).await.transpose();
        };
        let read = if let Some(h) = &v.http {
            super::render::http(&self.renderer, h, tctx, &[])
        } else if let Some(s) = &v.sql {
            super::render::sql(&self.renderer, s, tctx)
        } else {
            return None;
        };
        let read = match read {
            Ok(r) => r,
            Err(e) => return Some(Err(ConnectorError::Refused(e.to_string()))),
        };
        let resp = match &self.recordings {
            // A playbook test calls no service: the verification read is answered by the
            // response recorded as `STEP.verify`, and not made when none is recorded.
            Some(recordings) => match recordings.get(&format!("{}.verify", step.id)) {
                Some(r) => Ok(r.clone()),
                None => return None,
            },
            None => match self.connector(step) {
                Ok(c) => {
                    let _slot = self.call_slot().await;
                    c.read(&read, None).await
                }
                Err(e) => Err(e),
            },
        };
        let (status, body) = match resp {
            Ok(r) => (r.status, r.body),
            Err(ConnectorError::Status { status, .. }) => (Some(status), Value::Null),
            Err(e) => return Some(Err(e)),
        };
        let mut problems = Vec::new();
        if !v.expect_status.is_empty() && !status.is_some_and(|s| v.expect_status.contains(&s)) {
            problems.push(format!(
                "status {} (expected {:?})",
                status.map_or("none".to_owned(), |s| s.to_string()),
                v.expect_status
            ));
        }
        for e in &v.expect {
            if let Err(seen) = capture::check(e, &body) {
                problems.push(seen);
            }
        }
        Some(Ok(Verification {
            passed: problems.is_empty(),
            detail: if problems.is_empty() {
                format!(
                    "checked: status {}",
                    status.map_or("-".to_owned(), |s| s.to_string())
                )
            } else {
                problems.join("; ")
            },
        }))
    }

    async fn fail(
        &self,
        ctx: &RunCtx<'_>,
        step: &PlannedStep,
        mut o: StepOutcome,
        message: String,
    ) -> Result<StepOutcome, EngineError> {
        o.status = StepStatus::Failed;
        o.message = Some(message);
        o.finished_at = Some(self.clock.now());
        self.journal(ctx, step, o).await
    }
}

fn write_body(path: &std::path::Path, body: &Value) -> std::io::Result<()> {
    let mut sink = spool::NdjsonSink::create(path)?;
    match body {
        Value::Array(items) => {
            for item in items {
                sink.write(item)?;
            }
        }
        other => sink.write(other)?,
    }
    sink.finish()
}
