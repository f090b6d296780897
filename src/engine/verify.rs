//! Checking a mutation's effect: by the step's `verify` read (status and values expected),
//! or by the connector's own check (structured SQL re-reads the rows).

use serde_json::Value;

use super::executor::{EngineError, RunCtx};
use super::{Engine, capture};
use crate::connectors::{ConnectorError, Operation};
use crate::journal::{PlannedStep, StepOutcome, StepStatus, Verification};

impl Engine {
    /// Verifies a sent mutation, now or (with `verify.after`) when due.
    pub(super) async fn verify(
        &self,
        ctx: &RunCtx<'_>,
        step: &PlannedStep,
        o: StepOutcome,
        op: &Operation,
        tctx: &Value,
    ) -> Result<StepOutcome, EngineError> {
        let o = match self.deferred(step, o) {
            Ok(waiting) => return self.journal(ctx, step, waiting).await,
            Err(o) => o,
        };
        let found = self.verification(ctx, step, op, tctx).await;
        let o = self.verified(o, found);
        self.journal(ctx, step, o).await
    }

    /// `Ok`: the outcome waiting for the step's verification, due later (`verify.after`);
    /// `Err`: the outcome unchanged, to be verified now.
    #[allow(clippy::result_large_err)]
    pub(super) fn deferred(
        &self,
        step: &PlannedStep,
        mut o: StepOutcome,
    ) -> Result<StepOutcome, StepOutcome> {
        let now = self.clock.now();
        if let Some(after) = step.verify.as_ref().and_then(|v| v.after.as_ref()) {
            let due = o.due_at.unwrap_or_else(|| now + after.chrono());
            if now < due {
                o.status = StepStatus::Waiting;
                o.due_at = Some(due);
                o.message = Some(format!("sent; verification due after {after}"));
                return Ok(o);
            }
        }
        Err(o)
    }

    /// The outcome of a sent mutation, given its verification (`None`: nothing to verify).
    pub(super) fn verified(
        &self,
        mut o: StepOutcome,
        found: Option<Result<Verification, ConnectorError>>,
    ) -> StepOutcome {
        match found {
            None => o.status = StepStatus::Succeeded,
            Some(Ok(v)) => {
                o.status = if v.passed {
                    StepStatus::Succeeded
                } else {
                    StepStatus::Failed
                };
                if !v.passed {
                    o.message = Some(format!("verification failed: {}", v.detail));
                } else if o.message.as_deref().is_some_and(|m| {
                    m.starts_with("verification ") || m.starts_with("sent; verification")
                }) {
                    // Regression (issue 16): a step verified on resume kept the earlier
                    // "verification failed" message next to `succeeded`.
                    o.message = None;
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
        o
    }

    /// Runs the step's verification read, or the connector's own. `None`: nothing to verify.
    pub(super) async fn verification(
        &self,
        ctx: &RunCtx<'_>,
        step: &PlannedStep,
        op: &Operation,
        tctx: &Value,
    ) -> Option<Result<Verification, ConnectorError>> {
        let Some(v) = &step.verify else {
            let _slot = self.call_slot().await;
            return ctx.calls.check(step, op).await.transpose();
        };
        let read = if let Some(h) = &v.http {
            super::operation::http(&self.renderer, h, tctx, &[])
        } else if let Some(s) = &v.sql {
            super::operation::sql(&self.renderer, s, tctx)
        } else {
            return None;
        };
        let read = match read {
            Ok(r) => r,
            Err(e) => return Some(Err(ConnectorError::Refused(e.to_string()))),
        };
        let resp = {
            let _slot = self.call_slot().await;
            ctx.calls.verify_read(step, &read).await?
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
}
