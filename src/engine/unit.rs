//! A service's SQL mutations on one connector commit together (`commit: service`, the
//! default): they are sent one after another into one transaction, each journaled as started
//! before it is sent, and journaled done (then verified) only once the transaction commits.
//! A failure in any of them rolls them all back, and each says so: the service is as it was.
//!
//! A unit holds the not yet settled mutating SQL steps of one service on one connector that
//! keeps units (see [`crate::connectors::Connector::mutate_in`]), when there are two or more,
//! and the SQL reads on that connector between two of them (a read that needs one and is
//! needed by another), which read inside the transaction. When another kind of step lies
//! between two of them, the service's steps commit step by step, as do `for_each` steps.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use serde_json::Value;

use super::Engine;
use super::calls::Calls;
use super::executor::{EngineError, RunCtx, lock};
use crate::connectors::Operation;
use crate::journal::{Doubt, Plan, PlannedAction, PlannedStep, StepOutcome, StepStatus};

/// The SQL mutations of one service on one connector, committed together.
pub(super) struct Unit {
    /// Name of the unit of work at the connector (unique per run).
    pub id: String,
    pub service: String,
    pub connector: String,
    /// Its steps, by index into the plan's steps, in plan (dependency) order.
    pub members: Vec<usize>,
    /// Sent into the transaction, awaiting its commit.
    held: Mutex<Vec<Held>>,
}

/// A mutation sent into a unit's transaction: its outcome so far and what verifies it.
struct Held {
    step: usize,
    outcome: StepOutcome,
    op: Operation,
    tctx: Value,
}

impl Unit {
    /// What the step that failed says, after its own error.
    fn failed_here(&self, e: &dyn std::fmt::Display) -> String {
        format!(
            "{e}; rolled back with the other SQL changes of service `{}` on `{}` (they commit together): none of them was kept",
            self.service, self.connector
        )
    }

    /// What a step sent before `failed` failed says (or, unsent, after it).
    fn because_of(&self, failed: &str, sent: bool) -> String {
        let what = if sent { "rolled back" } else { "not sent" };
        format!(
            "{what}: step `{failed}` failed, and the SQL changes of service `{}` on `{}` commit together, so none of them was kept",
            self.service, self.connector
        )
    }
}

/// The units of a run: for each service and connector keeping units, its unsettled mutating
/// SQL steps, when two or more can commit together.
pub(super) fn form(
    run_id: &str,
    plan: &Plan,
    calls: &dyn Calls,
    settled: &HashSet<&str>,
) -> Vec<Unit> {
    let index: HashMap<&str, usize> = plan
        .steps
        .iter()
        .enumerate()
        .map(|(i, s)| (s.key.as_str(), i))
        .collect();
    let mut groups: Vec<((&str, &str), Vec<usize>)> = Vec::new();
    for (i, s) in plan.steps.iter().enumerate() {
        let eligible = s.mutates
            && s.for_each.is_none()
            && matches!(s.action, PlannedAction::Sql(_))
            && !settled.contains(s.key.as_str())
            && calls.holds_units(s);
        if !eligible {
            continue;
        }
        let key = (s.service.as_str(), s.connector.as_deref().unwrap_or(""));
        match groups.iter_mut().find(|(k, _)| *k == key) {
            Some((_, members)) => members.push(i),
            None => groups.push((key, vec![i])),
        }
    }
    // What each step needs, directly or not.
    let mut needs: Vec<HashSet<usize>> = Vec::with_capacity(plan.steps.len());
    for s in &plan.steps {
        let mut all = HashSet::new();
        for n in &s.needs {
            if let Some(&j) = index.get(n.as_str()) {
                all.insert(j);
                // Plan order is dependency order: `j` is already computed.
                all.extend(needs[j].iter().copied());
            }
        }
        needs.push(all);
    }
    groups
        .into_iter()
        .filter(|(_, members)| members.len() > 1)
        .filter_map(|((service, conn), mut members)| {
            let inside: HashSet<usize> = members.iter().copied().collect();
            // Steps between two members (needing one, needed by another) join the unit when
            // they are SQL reads on its connector (they read inside its transaction, seeing
            // its changes); anything else there would wait for the commit forever, so the
            // service then commits step by step.
            for x in 0..plan.steps.len() {
                let s = &plan.steps[x];
                let between = !inside.contains(&x)
                    && !settled.contains(s.key.as_str())
                    && members.iter().any(|&m| needs[x].contains(&m))
                    && members.iter().any(|&m| needs[m].contains(&x));
                if !between {
                    continue;
                }
                let joins = !s.mutates
                    && s.for_each.is_none()
                    && matches!(s.action, PlannedAction::Sql(_))
                    && s.connector.as_deref().unwrap_or("") == conn;
                if !joins {
                    return None;
                }
                members.push(x);
            }
            members.sort_unstable();
            Some(Unit {
                id: format!("{run_id}/{service}/{conn}"),
                service: service.to_owned(),
                connector: conn.to_owned(),
                members,
                held: Mutex::new(Vec::new()),
            })
        })
        .collect()
}

impl Engine {
    /// Sends a mutation into its unit's transaction: it is held, uncommitted, until
    /// [`Engine::run_unit`] commits or rolls back the unit. Its dependants in the unit see its
    /// captures; the journal holds it as started.
    pub(super) async fn send_in_unit(
        &self,
        ctx: &RunCtx<'_>,
        unit: &Unit,
        step: &PlannedStep,
        mut o: StepOutcome,
        op: &Operation,
        tctx: &Value,
    ) -> Result<StepOutcome, EngineError> {
        // Not journaled as started yet: until the transaction commits nothing it holds can
        // have taken effect (a crash rolls it back). Every sent member is journaled as
        // started, together, before the commit is sent (see `run_unit`).
        let result = {
            let _slot = self.call_slot().await;
            ctx.calls.mutate_in(&unit.id, step, op).await
        };
        match result {
            Err(e) => {
                o.attempts = e.attempts();
                o.status = StepStatus::Failed;
                o.message = Some(unit.failed_here(&e));
                o.finished_at = Some(self.clock.now());
                self.journal(ctx, step, o).await
            }
            Ok(resp) => {
                o.attempts = resp.attempts;
                o.affected = resp.affected;
                o.captures = super::capture::take_captures(&step.capture, &resp);
                o.status = StepStatus::Running;
                o.message = Some(format!(
                    "sent; commits with the other SQL changes of service `{}`",
                    unit.service
                ));
                let i = ctx
                    .plan
                    .steps
                    .iter()
                    .position(|s| s.key == step.key)
                    .unwrap_or_default();
                lock(&unit.held).push(Held {
                    step: i,
                    outcome: o.clone(),
                    op: op.clone(),
                    tctx: tctx.clone(),
                });
                lock(&ctx.outcomes).insert(o.instance.clone(), o.clone());
                Ok(o)
            }
        }
    }

    /// Runs a unit's steps one after another in one transaction, then commits it and verifies
    /// each; on the first failure, rolls it back and journals every step of the unit as
    /// failed, saying why.
    pub(super) async fn run_unit<'p>(
        &self,
        ctx: &RunCtx<'p>,
        unit: &Unit,
    ) -> Result<Vec<(&'p PlannedStep, StepOutcome)>, EngineError> {
        let steps = &ctx.plan.steps;
        let lead = &steps[unit.members[0]];
        let mut ended: Vec<(&'p PlannedStep, StepOutcome)> = Vec::new();
        let mut failure: Option<String> = None;
        let mut interrupted = false;
        for &i in &unit.members {
            let step = &ctx.plan.steps[i];
            if let Some(failed) = &failure {
                let mut o = StepOutcome::new(&step.key, &step.key, StepStatus::Failed);
                o.message = Some(unit.because_of(failed, false));
                o.finished_at = Some(self.clock.now());
                ended.push((step, self.journal(ctx, step, o).await?));
                continue;
            }
            if self.stop.load(std::sync::atomic::Ordering::SeqCst) {
                interrupted = true;
                break;
            }
            let outcome = match self.run_step(ctx, step).await {
                Ok(o) => o,
                Err(e) => {
                    ctx.calls.rollback(&unit.id, lead).await;
                    return Err(e);
                }
            };
            if outcome.status == StepStatus::Failed {
                failure = Some(step.id.clone());
            }
            if outcome.status != StepStatus::Running {
                ended.push((step, outcome));
            }
        }
        let held: Vec<Held> = std::mem::take(&mut *lock(&unit.held));
        if interrupted {
            ctx.calls.rollback(&unit.id, lead).await;
            // Journaled as started: a resume verifies them before anything is sent again.
            let started = held.iter().map(|h| (&steps[h.step], h.outcome.clone()));
            self.journal_all(ctx, started.collect()).await?;
            return Ok(ended);
        }
        if let Some(failed) = failure {
            ctx.calls.rollback(&unit.id, lead).await;
            let mut rolled_back = Vec::with_capacity(held.len());
            for h in held {
                let mut o = h.outcome;
                o.status = StepStatus::Failed;
                o.message = Some(unit.because_of(&failed, true));
                o.finished_at = Some(self.clock.now());
                rolled_back.push((&steps[h.step], o));
            }
            ended.extend(self.journal_all(ctx, rolled_back).await?);
            return Ok(ended);
        }
        if held.is_empty() {
            ctx.calls.rollback(&unit.id, lead).await;
            return Ok(ended);
        }
        // Durable before the commit is sent: after a crash from here on, a resume verifies
        // each of them before anything is sent again (the commit may have happened).
        let started = held.iter().map(|h| (&steps[h.step], h.outcome.clone()));
        self.journal_all(ctx, started.collect()).await?;
        let sent_at = self.clock.now();
        let committed = ctx.calls.commit(&unit.id, lead).await;
        if committed.is_ok() {
            let verified = self.verify_committed(ctx, held).await;
            ended.extend(self.journal_all(ctx, verified).await?);
            return Ok(ended);
        }
        for h in held {
            let step = &steps[h.step];
            let mut o = h.outcome;
            o.message = None;
            let o = match &committed {
                Ok(()) => unreachable!("a committed unit is verified above"),
                Err(e) if e.maybe_processed() => {
                    o.sent = true;
                    let doubt = Doubt {
                        at: sent_at,
                        cause: format!("the commit of service `{}`: {e}", unit.service),
                    };
                    self.unanswered(ctx, step, o, doubt, &h.op, &h.tctx).await?
                }
                Err(e) => {
                    o.status = StepStatus::Failed;
                    o.message = Some(unit.failed_here(&format!("the commit failed ({e})")));
                    o.finished_at = Some(self.clock.now());
                    self.journal(ctx, step, o).await?
                }
            };
            ended.push((step, o));
        }
        Ok(ended)
    }

    /// The outcomes of a committed unit's mutations, each verified: those the connector
    /// checks itself in one call for all ([`Calls::check_many`]), the others (a `verify` of
    /// their own, maybe due later) each on its own.
    async fn verify_committed<'p>(
        &self,
        ctx: &RunCtx<'p>,
        held: Vec<Held>,
    ) -> Vec<(&'p PlannedStep, StepOutcome)> {
        let steps = &ctx.plan.steps;
        let checked: Vec<(&PlannedStep, &Operation)> = held
            .iter()
            .map(|h| (&steps[h.step], &h.op))
            .filter(|(step, _)| step.verify.is_none())
            .collect();
        let mut checks = if checked.is_empty() {
            Vec::new()
        } else {
            let _slot = self.call_slot().await;
            ctx.calls.check_many(&checked).await
        }
        .into_iter();
        let mut out = Vec::with_capacity(held.len());
        for h in held {
            let step = &steps[h.step];
            let mut o = h.outcome;
            o.message = None;
            o.sent = true;
            let o = if step.verify.is_none() {
                let found = checks.next().and_then(Result::transpose);
                self.verified(o, found)
            } else {
                match self.deferred(step, o) {
                    Ok(waiting) => waiting,
                    Err(o) => {
                        let found = self.verification(ctx, step, &h.op, &h.tctx).await;
                        self.verified(o, found)
                    }
                }
            };
            out.push((step, o));
        }
        out
    }

    /// Journals outcomes of different steps together (one durable commit for all, when the
    /// store groups concurrent writes), in order.
    async fn journal_all<'p>(
        &self,
        ctx: &RunCtx<'_>,
        outcomes: Vec<(&'p PlannedStep, StepOutcome)>,
    ) -> Result<Vec<(&'p PlannedStep, StepOutcome)>, EngineError> {
        let written =
            futures::future::try_join_all(outcomes.into_iter().map(|(step, o)| async move {
                Ok::<_, EngineError>((step, self.journal(ctx, step, o).await?))
            }))
            .await?;
        Ok(written)
    }
}
