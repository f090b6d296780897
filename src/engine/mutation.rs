//! Mutations: previewed in a dry run; in apply, sent once (principle 9).
//!
//! A mutation that may have reached the service without an answer (a timeout, reset, lost
//! or garbled answer after the request was written, or a crash while it ran) is in doubt,
//! and the journal says so ([`Doubt`]). It is never sent again blindly, in this run or on
//! any resume: its verification (the step's `verify`, or the connector's own check) decides
//! whether it was done; when nothing can check it, an idempotent mutation is sent again and
//! one that is not waits for a person (`dsrctl task done|fail`).

use serde_json::Value;

use super::Engine;
use super::executor::{EngineError, RunCtx};
use crate::connectors::Operation;
use crate::journal::{
    Doubt, PlannedAction, PlannedStep, RunMode, StepOutcome, StepStatus, Verification,
};

/// One instance of a step: its key, its `for_each` element, its template context, and what
/// the journal holds for it from an earlier execution.
pub(super) struct Instance<'a> {
    pub key: &'a str,
    pub item: Option<Value>,
    pub tctx: Value,
    pub prior: Option<StepOutcome>,
}

/// What to do with a mutation in doubt on resume.
enum Decision {
    /// Settled (verified done, still waiting, or failed to check): this outcome.
    Settled(StepOutcome),
    /// Send it, with a note saying why that is safe.
    Send(Option<String>),
}

impl Engine {
    /// A mutation: previewed in a dry run; in apply, journaled as started (durably) before
    /// it is sent when a resume depends on that ([`Engine::start_matters`]), then verified.
    pub(super) async fn mutation(
        &self,
        ctx: &RunCtx<'_>,
        step: &PlannedStep,
        inst: &Instance<'_>,
        mut o: StepOutcome,
        mut op: Operation,
    ) -> Result<StepOutcome, EngineError> {
        if ctx.mode == RunMode::DryRun {
            let (change, refused) = self
                .preview_checked(
                    ctx,
                    step,
                    inst.key,
                    Some(&op),
                    inst.item.as_ref(),
                    &inst.tctx,
                )
                .await;
            o.change = Some(change);
            match refused {
                // Found before anything commits: the dry run fails, the real run never starts.
                Some(why) => {
                    o.status = StepStatus::Failed;
                    o.message = Some(why);
                }
                None => o.status = StepStatus::Previewed,
            }
            o.finished_at = Some(self.clock.now());
            return self.journal(ctx, step, o).await;
        }
        // A deferred verification that is now due.
        if let Some(p) = &inst.prior
            && p.sent
        {
            return self.verify(ctx, step, p.clone(), &op, &inst.tctx).await;
        }
        if let Some(filter) = ctx.filter {
            // A saved plan: only what it previewed is sent (its targets were compared with
            // a fresh dry run before the apply began), with the previewed ETag as If-Match.
            let Some(expected) = filter.changes.get(inst.key) else {
                return self.fail(ctx, step, o, "this change is not in the saved plan (the data changed since it was made); make a new plan".to_owned()).await;
            };
            if let (Operation::Http(h), Some(etag)) = (&mut op, &expected.etag)
                && h.if_match.is_none()
            {
                h.if_match = Some(etag.clone());
            }
            // The preview guard: a SQL mutation may change no more rows than the dry run
            // showed for this subject (more rolls its transaction back and fails the step).
            if let (Operation::Sql(a), Some(count)) = (&mut op, expected.count) {
                a.max_rows = Some(a.max_rows.map_or(count, |m| m.min(count)));
            }
        }
        if let Some(p) = &inst.prior {
            if p.in_doubt() {
                match self.resolve(ctx, step, p, &op, &inst.tctx).await? {
                    Decision::Settled(outcome) => return Ok(outcome),
                    Decision::Send(note) => o.message = note,
                }
            } else if let (Some(d), Some(t)) = (&p.doubt, &p.task) {
                o.message = Some(format!(
                    "{} recorded that it was not done after {}; sent again",
                    t.by,
                    d.describe()
                ));
            }
        }
        if let Some(why) = self.preflight(ctx, step).await {
            return self.fail(ctx, step, o, why).await;
        }
        self.send(ctx, step, o, &op, &inst.tctx).await
    }

    /// Before a service's first mutation is sent, every SQL mutation of the service is
    /// checked against its columns (a mask too long, NULL into NOT NULL): a problem in its
    /// last step then stops the service before its first step changes anything.
    async fn preflight(&self, ctx: &RunCtx<'_>, step: &PlannedStep) -> Option<String> {
        let mut seen = ctx.preflight.lock().await;
        if let Some(found) = seen.get(&step.service) {
            return found.clone();
        }
        let mut found = None;
        for s in ctx.plan.steps.iter().filter(|s| s.service == step.service) {
            let crate::journal::PlannedAction::Sql(a) = &s.action else {
                continue;
            };
            if a.update.is_none() {
                continue;
            }
            let _slot = self.call_slot().await;
            if let Err(e) = ctx.calls.preflight(s, &Operation::Sql((**a).clone())).await {
                found = Some(format!(
                    "step `{}` of service `{}` would fail ({e}); nothing of the service was changed",
                    s.id, s.service
                ));
                break;
            }
        }
        seen.insert(step.service.clone(), found.clone());
        found
    }

    /// Sends the mutation once and verifies it; a failure the service may have acted on
    /// puts it in doubt ([`Engine::unanswered`]).
    async fn send(
        &self,
        ctx: &RunCtx<'_>,
        step: &PlannedStep,
        mut o: StepOutcome,
        op: &Operation,
        tctx: &Value,
    ) -> Result<StepOutcome, EngineError> {
        if let Some(unit) = ctx.unit(step) {
            return self.send_in_unit(ctx, unit, step, o, op, tctx).await;
        }
        if self.start_matters(ctx, step, op) {
            let mut started = o.clone();
            started.status = StepStatus::Running;
            self.journal(ctx, step, started).await?;
        }
        let sent_at = self.clock.now();
        let result = {
            let _slot = self.call_slot().await;
            ctx.calls.mutate(step, op).await
        };
        match result {
            Err(e) => {
                o.attempts = e.attempts();
                o.http_status = e.status();
                if e.maybe_processed() {
                    let doubt = Doubt {
                        at: sent_at,
                        cause: e.to_string(),
                    };
                    return self.unanswered(ctx, step, o, doubt, op, tctx).await;
                }
                self.fail(ctx, step, o, e.to_string()).await
            }
            Ok(resp) => {
                o.attempts = resp.attempts;
                o.http_status = resp.status;
                // One HTTP mutation changes one resource unless the service says more.
                o.affected = match op {
                    Operation::Http(_) if !resp.absent => Some(resp.affected.unwrap_or(1)),
                    _ => resp.affected,
                };
                o.captures = super::capture::take_captures(&step.capture, &resp);
                o.sent = true;
                if let (Operation::Email(m), PlannedAction::Email(e)) = (op, &step.action) {
                    return self.await_answer(ctx, step, o, m, e).await;
                }
                if resp.absent {
                    o.status = StepStatus::Absent;
                    o.message = Some("already gone".to_owned());
                    o.finished_at = Some(self.clock.now());
                    return self.journal(ctx, step, o).await;
                }
                self.verify(ctx, step, o, op, tctx).await
            }
        }
    }

    /// A message was sent: the step waits for a person to record the processor's answer,
    /// due within the action's `answer_within`.
    async fn await_answer(
        &self,
        ctx: &RunCtx<'_>,
        step: &PlannedStep,
        mut o: StepOutcome,
        m: &crate::connectors::email::EmailMessage,
        e: &crate::model::EmailAction,
    ) -> Result<StepOutcome, EngineError> {
        let (run, instance) = (&ctx.run_id, &o.instance);
        o.status = StepStatus::Waiting;
        o.due_at = Some(self.clock.now() + e.answer_within.chrono());
        o.message = Some(format!(
            "sent to {} ({}); the answer is due within {}: record it with `dsrctl task done {run} {instance} --by NAME --evidence ANSWER-FILE`, or `dsrctl task fail {run} {instance} --by NAME --note WHY`",
            m.to.join(", "),
            m.message_id,
            e.answer_within
        ));
        self.journal(ctx, step, o).await
    }

    /// The call may have been processed but its answer is missing or unreadable. An
    /// idempotent mutation fails as any other (its connector has resent it already). One
    /// that is not is never sent again in this run: its verification decides now (or when
    /// `verify.after` is due); without one, it waits for a person.
    pub(super) async fn unanswered(
        &self,
        ctx: &RunCtx<'_>,
        step: &PlannedStep,
        mut o: StepOutcome,
        doubt: Doubt,
        op: &Operation,
        tctx: &Value,
    ) -> Result<StepOutcome, EngineError> {
        let seen = doubt.describe();
        let error = doubt.cause.clone();
        o.doubt = Some(doubt);
        if step.idempotent {
            // Sending it again is safe (the connector already did, as often as its retry
            // policy allows); a resume checks first where it can, then sends it again.
            return self.fail(ctx, step, o, error).await;
        }
        if let Some(after) = step.verify.as_ref().and_then(|v| v.after.as_ref()) {
            o.status = StepStatus::Waiting;
            o.due_at = Some(self.clock.now() + after.chrono());
            o.message = Some(format!(
                "may have been sent {seen}; its verification, due after {after}, decides whether it is sent again"
            ));
            return self.journal(ctx, step, o).await;
        }
        match self.verification(ctx, step, op, tctx).await {
            Some(Ok(v)) if v.passed => self.verified_done(ctx, step, o, v).await,
            Some(Ok(v)) => {
                let message = format!(
                    "may have been sent {seen}, but its verification shows it not done ({}); not sent again in this run: `dsrctl resume` checks again and sends it only if it is still not done",
                    v.detail
                );
                o.verification = Some(v);
                self.fail(ctx, step, o, message).await
            }
            Some(Err(e)) => {
                let message = format!(
                    "may have been sent {seen}, and its verification could not run ({e}); `dsrctl resume` verifies it before anything is sent again"
                );
                self.fail(ctx, step, o, message).await
            }
            None => self.ask_person(ctx, step, o).await,
        }
    }

    /// A mutation in doubt from an earlier execution (a crash left it `running`, or its
    /// answer was lost): verify first where it can be verified, otherwise resend only an
    /// idempotent one, and leave the others to a person.
    async fn resolve(
        &self,
        ctx: &RunCtx<'_>,
        step: &PlannedStep,
        prior: &StepOutcome,
        op: &Operation,
        tctx: &Value,
    ) -> Result<Decision, EngineError> {
        let now = self.clock.now();
        let mut o = prior.clone();
        let doubt = prior.doubt.clone().unwrap_or_else(|| Doubt {
            at: prior.started_at.unwrap_or(now),
            cause: "the run was interrupted while it was being sent".to_owned(),
        });
        if prior.status == StepStatus::Waiting && prior.due_at.is_some_and(|due| now < due) {
            // Its deferred verification is not due yet.
            return Ok(Decision::Settled(self.journal(ctx, step, o).await?));
        }
        let seen = doubt.describe();
        o.doubt = Some(doubt);
        o.due_at = None;
        let settled = match self.verification(ctx, step, op, tctx).await {
            Some(Ok(v)) if v.passed => self.verified_done(ctx, step, o, v).await?,
            Some(Ok(v)) => {
                return Ok(Decision::Send(Some(format!(
                    "its verification after it may have been sent {seen} showed it not done ({}); sent again",
                    v.detail
                ))));
            }
            Some(Err(e)) => {
                let message = format!(
                    "may have been sent {seen}, and its verification could not run ({e}); not sent again until it can: `dsrctl resume` tries again"
                );
                self.fail(ctx, step, o, message).await?
            }
            None if step.idempotent => {
                return Ok(Decision::Send(Some(format!(
                    "may have been sent {seen}; sent again (idempotent)"
                ))));
            }
            None => self.ask_person(ctx, step, o).await?,
        };
        Ok(Decision::Settled(settled))
    }

    /// The verification shows the mutation done: it succeeded, and is not sent again.
    async fn verified_done(
        &self,
        ctx: &RunCtx<'_>,
        step: &PlannedStep,
        mut o: StepOutcome,
        v: Verification,
    ) -> Result<StepOutcome, EngineError> {
        let seen = o.doubt.as_ref().map(Doubt::describe).unwrap_or_default();
        o.status = StepStatus::Succeeded;
        o.sent = true;
        o.verification = Some(v);
        o.due_at = None;
        o.message = Some(format!(
            "verified done after it may have been sent {seen}; not sent again"
        ));
        o.finished_at = Some(self.clock.now());
        self.journal(ctx, step, o).await
    }

    /// Nothing can check whether the mutation was done, and sending it again could do it
    /// twice: it waits for a person, and every resume leaves it so until one records it.
    async fn ask_person(
        &self,
        ctx: &RunCtx<'_>,
        step: &PlannedStep,
        mut o: StepOutcome,
    ) -> Result<StepOutcome, EngineError> {
        let seen = o.doubt.as_ref().map(Doubt::describe).unwrap_or_default();
        let (run, instance) = (&ctx.run_id, &o.instance);
        o.status = StepStatus::Waiting;
        o.due_at = None;
        o.finished_at = Some(self.clock.now());
        o.message = Some(format!(
            "may have been sent {seen}; it is not idempotent and declares no `verify`, so it is not sent again: check the service, then `dsrctl task done {run} {instance} --by NAME` if it was done, or `dsrctl task fail {run} {instance} --by NAME` if it was not (it is then sent again)"
        ));
        self.journal(ctx, step, o).await
    }

    /// Whether journaling that a mutation started changes what a resume does with it: a
    /// started mutation is verified before it is sent again, or not sent again when it is not
    /// idempotent. An idempotent mutation that nothing can verify is sent again either way
    /// (`absent_on` then reports it done), so its start is not journaled: one commit less.
    fn start_matters(&self, ctx: &RunCtx<'_>, step: &PlannedStep, op: &Operation) -> bool {
        !step.idempotent || step.verify.is_some() || ctx.calls.checks(step, op)
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
